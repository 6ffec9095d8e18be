/* SPDX-License-Identifier: MIT */
/*
 * slab.c - small sizes: 40 size classes from 16 bytes to 32 KiB, each served
 * from slabs, page runs cut into equal objects.
 *
 * Classes: 16 to 128 in steps of 16, then four per doubling (160, 192, 224,
 * 256, 320, ...), as jemalloc spaces them: at most 25% waste. Every class
 * above 64 bytes is a multiple of 64, so objects are cache-line aligned,
 * and every power of two is a class, so any alignment up to 32 KiB has one.
 *
 * A slab is aligned to its size and physically contiguous (a single
 * contiguous commit, or inside one hugepage), so every small object is
 * physically contiguous.
 *
 * Frees are checked without an atomic instruction on the fast path. Each
 * slab keeps one bit per object, set while the object is out of the slab
 * (with the user, or in a thread cache), changed only under the class lock.
 * A freed object's second word holds a stamp: the context's secret XOR its
 * address, cleared when it is handed out again. A free is refused when the
 * bit is clear (the object is back in its slab) or the stamp is there (it
 * sits in a thread cache): a double free is caught whichever thread does
 * it, unless two frees of one object race each other. The stamp could only
 * be forged by data that guesses a 64-bit secret.
 *
 * A class's slabs and free lists are under its lock; objects move to and
 * from the per-thread caches in batches.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/log.h"
#include "mem/mem_internal.h"

/* A slab holds at least 8 objects and is at least 64 KiB. */
#define SLAB_MIN_SIZE SZ_64K
#define SLAB_MIN_OBJECTS 8
/* A thread caches up to 64 KiB of each class, between 4 and 64 objects. */
#define CACHE_BYTES SZ_64K
#define CACHE_MIN 4
#define CACHE_MAX 64

uint32_t class_size(unsigned idx)
{
	unsigned g, k;

	if (idx < 8)
		return 16u * (idx + 1);
	g = (idx - 8) / 4;
	k = (idx - 8) % 4;
	return (128u << g) + (k + 1) * (32u << g);
}

uint32_t class_cache_max(unsigned idx)
{
	return (uint32_t)MIN(MAX(CACHE_BYTES / class_size(idx), CACHE_MIN), CACHE_MAX);
}

int class_of(uint64_t size, uint64_t align)
{
	unsigned idx;

	if (!size || size > MEM_SMALL_MAX || align > MEM_SMALL_MAX)
		return -1;
	idx = class_of_small(size);
	/* Objects of a class are aligned to the largest power of two dividing its size. */
	while (idx < MEM_NR_CLASSES && lowbit(class_size(idx)) < align)
		idx++;
	return idx < MEM_NR_CLASSES ? (int)idx : -1;
}

void class_init(struct mem_class *c, unsigned idx)
{
	uint64_t slab = MAX(SLAB_MIN_SIZE, roundup_pow2((uint64_t)class_size(idx) * SLAB_MIN_OBJECTS));

	mutex_init(&c->lock);
	c->size = class_size(idx);
	c->slab_size = (uint32_t)slab;
	c->nobj = (uint32_t)(slab / c->size);
	c->magic = (uint32_t)((UINT64_C(1) << 32) / c->size + 1);
	c->cache_max = class_cache_max(idx);
	list_init(&c->partial);
	list_init(&c->all);
}

/* Needs the class lock: writers are serialised, readers see whole words. */
static void bit_set(struct mem_slab *s, uint32_t idx, bool out)
{
	uint64_t w = atomic_load_explicit(&s->used[idx / 64], memory_order_relaxed);
	uint64_t bit = UINT64_C(1) << (idx % 64);

	lock_assert_held(&s->sl->classes[s->cls].lock);
	atomic_store_explicit(&s->used[idx / 64], out ? w | bit : w & ~bit, memory_order_relaxed);
}

static uint32_t obj_index(const struct mem_slab *s, const void *obj)
{
	return (uint32_t)(((uint64_t)((const uint8_t *)obj - s->base) * s->magic) >> 32);
}

static size_t slab_struct_size(const struct mem_class *c)
{
	return sizeof(struct mem_slab) + (c->nobj + 63) / 64 * sizeof(uint64_t);
}

/* Point every unit of the slab at it, or at nothing. */
static void slab_units_set(struct mem_slab *s, uintptr_t val)
{
	const struct mem_class *c = &s->sl->classes[s->cls];
	uint64_t first = (uint64_t)(s->base - s->sl->base) >> MEM_UNIT_SHIFT;

	for (uint64_t u = 0; u < c->slab_size >> MEM_UNIT_SHIFT; u++)
		atomic_store_explicit(&s->sl->units[first + u], val, memory_order_release);
}

/* Needs the class lock. */
static struct mem_slab *slab_create(struct mem_seglist *sl, unsigned cls, bool allow_grow)
{
	struct mem_class *c = &sl->classes[cls];
	struct mem_req req = { .size = c->slab_size, .align = c->slab_size, .contig = true };
	struct mem_slab *s;
	void *mem;
	bool zero;

	lock_assert_held(&sl->classes[cls].lock);
	/* Aligned so that its unit entries carry its class (mem_internal.h). */
	s = fi_aligned_alloc(UNIT_SLAB_ALIGN, align_up(slab_struct_size(c), UNIT_SLAB_ALIGN));
	if (!s)
		return NULL;
	memset(s, 0, slab_struct_size(c));
	if (run_alloc(sl, &req, allow_grow, &mem, &zero)) {
		free(s);
		return NULL;
	}
	s->sl = sl;
	s->base = mem;
	s->size = c->size;
	s->magic = c->magic;
	s->span = c->nobj * c->size;
	s->cls = cls;
	s->cached = sl->in_default_set;
	s->nobj = c->nobj;
	s->nfree = c->nobj;
	s->zero = zero;
	slab_units_set(s, unit_slab(s));
	list_add(&c->partial, &s->link);
	list_add(&c->all, &s->all_link);
	c->nr_slabs++;
	return s;
}

/* Needs the class lock. The slab's objects are all free. */
static void slab_release(struct mem_class *c, struct mem_slab *s)
{
	uint64_t first = (uint64_t)(s->base - s->sl->base) >> MEM_UNIT_SHIFT;

	lock_assert_held(&c->lock);
	IOVM_ASSERT(s->nfree == s->nobj);
	list_del(&s->link);
	list_del(&s->all_link);
	slab_units_set(s, 0);
	/* run_free() finds the run by its first unit. */
	atomic_store_explicit(&s->sl->units[first], unit_run(c->slab_size >> MEM_UNIT_SHIFT),
			      memory_order_release);
	run_free(s->sl, s->base);
	c->nr_slabs--;
	free(s);
}

/* An object of the slab, or NULL. Needs the class lock. */
static void *slab_take(struct mem_class *c, struct mem_slab *s, bool *zero)
{
	void *obj;

	lock_assert_held(&c->lock);
	if (s->free) {
		obj = s->free;
		s->free = *(void **)obj;
		if (zero)
			*zero = false;
	} else if (s->bump < s->nobj) {
		obj = s->base + (uint64_t)s->bump++ * c->size;
		if (zero)
			*zero = s->zero;
	} else {
		return NULL;
	}
	/* An object handed out is one the slab counted free, and not out already. */
	IOVM_ASSERT(s->nfree > 0 && !slab_is_out(s, obj_index(s, obj)));
	if (--s->nfree == 0)
		list_del(&s->link);
	if (c->spare == s)
		c->spare = NULL;
	bit_set(s, obj_index(s, obj), true);
	return obj;
}

/* Needs the class lock. */
static void slab_put(struct mem_class *c, struct mem_slab *s, void *obj)
{
	lock_assert_held(&c->lock);
	IOVM_ASSERT(s->nfree < s->nobj && slab_is_out(s, obj_index(s, obj)));
	bit_set(s, obj_index(s, obj), false);
	((uintptr_t *)obj)[0] = (uintptr_t)s->free;
	((uintptr_t *)obj)[1] = dfree_key(s->sl->ms, obj);
	s->free = obj;
	if (s->nfree++ == 0)
		list_add(&c->partial, &s->link);
	if (s->nfree == s->nobj) {
		/* Keep one empty slab, so that a class going empty and back does not churn. */
		if (!c->spare)
			c->spare = s;
		else
			slab_release(c, s);
	}
}

/* A slab with a free object, made if needed. Needs the class lock. */
static struct mem_slab *slab_partial(struct mem_seglist *sl, unsigned cls, bool allow_grow)
{
	struct mem_class *c = &sl->classes[cls];

	lock_assert_held(&sl->classes[cls].lock);
	if (!list_empty(&c->partial))
		return list_first(&c->partial, struct mem_slab, link);
	return slab_create(sl, cls, allow_grow);
}

void *slab_alloc(struct mem_seglist *sl, unsigned cls, bool allow_grow, bool *zero)
{
	struct mem_class *c = &sl->classes[cls];
	struct mem_slab *s;
	void *obj = NULL;

	mutex_lock(&c->lock);
	s = slab_partial(sl, cls, allow_grow);
	if (s) {
		obj = slab_take(c, s, zero);
		((uintptr_t *)obj)[1] = 0; /* no stamp on a live object */
	}
	mutex_unlock(&c->lock);
	return obj;
}

int slab_free(struct mem_seglist *sl, struct mem_slab *s, void *obj)
{
	struct mem_class *c = &sl->classes[s->cls];
	int ret = -EINVAL;

	mutex_lock(&c->lock);
	/* Checked again under the lock: of two racing frees, one fails here. */
	if (slab_is_out(s, obj_index(s, obj)) && ((uintptr_t *)obj)[1] != dfree_key(sl->ms, obj)) {
		slab_put(c, s, obj);
		ret = 0;
	}
	mutex_unlock(&c->lock);
	return ret;
}

int slab_refill(struct mem_seglist *sl, unsigned cls, bool allow_grow, void **head, unsigned want)
{
	struct mem_class *c = &sl->classes[cls];
	unsigned got = 0;

	mutex_lock(&c->lock);
	while (got < want) {
		struct mem_slab *s = slab_partial(sl, cls, allow_grow);
		void *obj;

		if (!s)
			break;
		while (got < want && (obj = slab_take(c, s, NULL))) {
			/* A cached object holds its next pointer and the free stamp. */
			((uintptr_t *)obj)[0] = (uintptr_t)*head;
			((uintptr_t *)obj)[1] = dfree_key(sl->ms, obj);
			*head = obj;
			got++;
		}
	}
	mutex_unlock(&c->lock);
	return (int)got;
}

struct mem_slab *slab_of(const struct mem_space *ms, const void *obj)
{
	struct mem_seglist *sl = mem_list_of(ms, obj);
	uintptr_t e;

	if (!sl)
		return NULL;
	e = atomic_load_explicit(&sl->units[(uint64_t)((const uint8_t *)obj - sl->base) >> MEM_UNIT_SHIFT],
				 memory_order_acquire);
	return e && !unit_is_run(e) ? unit_slab_ptr(e) : NULL;
}

void slab_flush(const struct mem_space *ms, unsigned cls, void *head, unsigned n)
{
	struct mem_class *locked = NULL;

	/* Cached objects may come from several lists: hold one class lock at a time. */
	while (n-- && head) {
		void *next = (void *)((uintptr_t *)head)[0];
		struct mem_slab *s = slab_of(ms, head);
		struct mem_class *c = &s->sl->classes[cls];

		if (c != locked) {
			if (locked)
				mutex_unlock(&locked->lock);
			mutex_lock(&c->lock);
			locked = c;
		}
		slab_put(c, s, head);
		head = next;
	}
	if (locked)
		mutex_unlock(&locked->lock);
}

void slab_destroy_all(struct mem_seglist *sl)
{
	for (unsigned i = 0; i < MEM_NR_CLASSES; i++) {
		struct mem_class *c = &sl->classes[i];
		struct list_node *n, *t;

		list_for_each_safe(n, t, &c->all) {
			list_del(n);
			free(list_entry(n, struct mem_slab, all_link));
		}
	}
}
