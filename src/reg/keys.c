/* SPDX-License-Identifier: MIT */
/*
 * keys.c - the keys that name MRs: a slot number and a generation, so that
 * a key of a deregistered MR never names the next MR in its slot.
 *
 *   key = slot << 12 | generation << 1 | remote
 *
 * A slot's generation moves on each time it is taken, and free slots are
 * taken in the order they were freed: with 2^20 slots of 2^11 generations,
 * a key comes back only after 2^31 registrations. The local and the remote
 * key of an MR differ in their last bit, so that neither passes for the
 * other. A device resolves keys without a lock: the slot's key is cleared
 * before its MR goes, and MRs go only after a grace period of the
 * device-side epoch.
 */
#include <errno.h>
#include <stdlib.h>

#include "base/compiler.h"
#include <iovm/iommu.h>

#include "base/fault_inject.h"
#include "reg/reg_internal.h"

static_assert(KEY_SLOTS * (uint64_t)(1u << KEY_GEN_BITS) * 2 == UINT64_C(1) << 32, "a key is 32 bits");

void keys_init(struct key_table *t)
{
	for (unsigned i = 0; i < KEY_CHUNKS; i++)
		atomic_init(&t->chunks[i], NULL);
	t->free_fifo = NULL;
	t->fifo_head = t->fifo_len = t->fifo_cap = 0;
	t->nr_slots = 0;
	t->gen = NULL;
}

void keys_destroy(struct key_table *t)
{
	for (unsigned i = 0; i < KEY_CHUNKS; i++)
		free(atomic_load_explicit(&t->chunks[i], memory_order_relaxed));
	free(t->free_fifo);
	free(t->gen);
	keys_init(t);
}

/* A chunk more of slots, all free. */
static int grow(struct key_table *t)
{
	uint32_t chunk = t->nr_slots / KEY_CHUNK, cap = t->fifo_cap + KEY_CHUNK;
	struct key_slot *slots;
	uint32_t *fifo;
	uint16_t *gen;

	if (chunk == KEY_CHUNKS)
		return -ENOSPC;
	slots = fi_calloc(KEY_CHUNK, sizeof(*slots));
	fifo = fi_calloc(cap, sizeof(*fifo));
	gen = fi_realloc(t->gen, (size_t)(t->nr_slots + KEY_CHUNK) * sizeof(*gen));
	if (!slots || !fifo || !gen) {
		free(slots);
		free(fifo);
		if (gen)
			t->gen = gen; /* the larger array serves as well */
		return -ENOMEM;
	}
	t->gen = gen;
	/* The queue, unrolled into the larger array, with the new slots at its tail. */
	for (uint32_t i = 0; i < t->fifo_len; i++)
		fifo[i] = t->free_fifo[(t->fifo_head + i) % t->fifo_cap];
	for (uint32_t i = 0; i < KEY_CHUNK; i++) {
		fifo[t->fifo_len + i] = t->nr_slots + i;
		/* Generation 1 first: no key is zero, the mark of a free slot. */
		gen[t->nr_slots + i] = 1;
	}
	free(t->free_fifo);
	t->free_fifo = fifo;
	t->fifo_head = 0;
	t->fifo_len += KEY_CHUNK;
	t->fifo_cap = cap;
	t->nr_slots += KEY_CHUNK;
	atomic_store_explicit(&t->chunks[chunk], slots, memory_order_release);
	return 0;
}

static struct key_slot *slot_of(struct key_table *t, uint32_t slot)
{
	struct key_slot *chunk = atomic_load_explicit(&t->chunks[slot / KEY_CHUNK], memory_order_acquire);

	return chunk ? &chunk[slot % KEY_CHUNK] : NULL;
}

int keys_alloc(struct key_table *t, struct iovm_mr *mr, uint32_t *lkey, uint32_t *rkey)
{
	uint32_t slot, key;
	struct key_slot *s;
	int ret;

	if (!t->fifo_len && (ret = grow(t)))
		return ret;
	slot = t->free_fifo[t->fifo_head];
	t->fifo_head = (t->fifo_head + 1) % t->fifo_cap;
	t->fifo_len--;
	key = slot << KEY_SLOT_SHIFT | (uint32_t)t->gen[slot] << KEY_GEN_SHIFT;
	/* The generation wraps past zero: slot 0 at generation 0 would be key 0. */
	t->gen[slot] = (uint16_t)((t->gen[slot] + 1) & ((1u << KEY_GEN_BITS) - 1));
	if (!t->gen[slot])
		t->gen[slot] = 1;
	s = slot_of(t, slot);
	atomic_store_explicit(&s->mr, mr, memory_order_relaxed);
	atomic_store_explicit(&s->lkey, key, memory_order_release);
	*lkey = key;
	*rkey = key | KEY_REMOTE;
	return 0;
}

void keys_free(struct key_table *t, uint32_t lkey)
{
	uint32_t slot = lkey >> KEY_SLOT_SHIFT;
	struct key_slot *s = slot_of(t, slot);

	if (!s || atomic_load_explicit(&s->lkey, memory_order_relaxed) != lkey)
		return;
	atomic_store_explicit(&s->lkey, 0, memory_order_release);
	atomic_store_explicit(&s->mr, NULL, memory_order_relaxed);
	t->free_fifo[(t->fifo_head + t->fifo_len) % t->fifo_cap] = slot;
	t->fifo_len++;
}

struct iovm_mr *keys_lookup(struct key_table *t, uint32_t key, bool *remote)
{
	struct key_slot *s = slot_of(t, key >> KEY_SLOT_SHIFT);
	struct iovm_mr *mr;

	if (!s || !key || atomic_load_explicit(&s->lkey, memory_order_acquire) != (key & ~KEY_REMOTE))
		return NULL;
	mr = atomic_load_explicit(&s->mr, memory_order_acquire);
	/* Freed and taken again between the two loads: the key is no longer its. */
	if (atomic_load_explicit(&s->lkey, memory_order_acquire) != (key & ~KEY_REMOTE))
		return NULL;
	*remote = key & KEY_REMOTE;
	return mr;
}

int reg_key_iova(struct reg_space *rs, uint32_t key, uint64_t va, uint64_t len, unsigned access,
		 const struct iovm_domain *dom, iova_t *iova, uint64_t *contig)
{
	bool remote = false;
	struct iovm_mr *mr = keys_lookup(&rs->keys, key, &remote), *child;
	uint32_t need;

	if (!mr || atomic_load_explicit(&mr->state, memory_order_acquire) != MR_LIVE)
		return -ENOKEY;
	if (mr->dom != dom)
		return -EXDEV;
	if (access & IOVM_MAP_WRITE)
		need = remote ? IOVM_ACCESS_REMOTE_WRITE : IOVM_ACCESS_LOCAL_WRITE;
	else
		need = remote ? IOVM_ACCESS_REMOTE_READ : IOVM_ACCESS_LOCAL_READ;
	if (!(mr->access & need))
		return -EACCES;
	if (va + len < va)
		return -ERANGE;
	if (mr->implicit) {
		if (va < mr->start || va + len > mr->end)
			return -ERANGE;
		child = implicit_child_find(mr, va);
		if (!child)
			return -EAGAIN;
		*iova = iova_add(child->iova, va - child->start);
		*contig = child->end - va;
		return 0;
	}
	/* What the registration was asked for, not the pages around it. */
	if (va < mr->addr || va + len > mr->addr + mr->len)
		return -ERANGE;
	*iova = iova_add(mr->iova, va - mr->start);
	*contig = mr->addr + mr->len - va;
	return 0;
}
