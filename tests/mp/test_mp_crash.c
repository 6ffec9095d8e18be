/* SPDX-License-Identifier: MIT */
/*
 * test_mp_crash.c - a process killed at every store of every change to the
 * shared region leaves a region the next process repairs, and the change
 * happened wholly or not at all.
 *
 * A child takes the share's lock and makes one change (an allocation that
 * splits, a free that merges, a zone made, a zone freed, a dead process
 * reaped) with the library's crash countdown set to n: it dies at the n-th
 * crash point (mp_internal.h), holding the lock. The parent then takes the
 * lock (the robust mutex says its holder died), and checks the repaired
 * heap: whole (mp_heap_check), and its allocated blocks exactly those
 * before the change or those after it. n goes 1, 2, ... until the change
 * completes: every point is tried. Then a model test: random changes,
 * checked against a plain list of blocks.
 *
 * The region lives in shared anonymous memory: the library's structures,
 * without sockets or memfds around them.
 */
#include <stdlib.h>
#include <sys/mman.h>

#include "mp_region.h"

#ifndef IOVM_DEBUG_CHECKS
int main(void)
{
	printf("# SKIP: crash points exist only in builds with debug checks (this one is a release build)\n");
	return TEST_SKIP;
}
#else

#define MAX_BLOCKS 16384

struct block {
	uint64_t grain;
	uint8_t order, owner, lender;
};

struct snap {
	unsigned n;
	struct block b[MAX_BLOCKS];
	uint8_t zone_used[MP_MAX_ZONES];
};

static struct region R;

static void snap_take(const struct region *r, struct snap *sn)
{
	const struct mp_heap *h = &r->s.h;

	sn->n = 0;
	for (uint64_t g = 0; g < h->c->ngrains; g += UINT64_C(1) << (h->state[g] & MP_ORDER_MASK)) {
		if (!(h->state[g] & MP_ALLOCATED))
			continue;
		CHECK(sn->n < MAX_BLOCKS);
		sn->b[sn->n++] = (struct block){ g, h->state[g] & MP_ORDER_MASK, h->owner[g], h->lender[g] };
	}
	for (unsigned i = 0; i < MP_MAX_ZONES; i++)
		sn->zone_used[i] = h->c->zones[i].used;
}

static bool snap_eq(const struct snap *a, const struct snap *b)
{
	return a->n == b->n && !memcmp(a->b, b->b, a->n * sizeof(a->b[0])) &&
	       !memcmp(a->zone_used, b->zone_used, sizeof(a->zone_used));
}

/* Zones hold blocks of the share's, and nothing else is kept but the setup's two kept blocks. */
static void zones_whole(const struct region *r)
{
	const struct mp_heap *h = &r->s.h;
	unsigned keep = 0, zones = 0;

	for (unsigned i = 0; i < MP_MAX_ZONES; i++) {
		const struct mp_zone_rec *z = &h->c->zones[i];
		unsigned order;
		uint8_t owner;

		if (!z->used) {
			CHECK_EQ(z->grain, MP_NO_GRAIN);
			continue;
		}
		zones++;
		CHECK_OK(mp_heap_block(h, z->grain, &order, &owner));
		CHECK_EQ(owner, MP_OWNER_KEEP);
	}
	CHECK_EQ(h->c->nr_zones, zones);
	for (uint64_t g = 0; g < h->c->ngrains; g += UINT64_C(1) << (h->state[g] & MP_ORDER_MASK))
		keep += (h->state[g] & MP_ALLOCATED) && h->owner[g] == MP_OWNER_KEEP &&
			h->lender[g] != MP_LENDER_DOMAINS;
	CHECK_EQ(keep, zones + 2);
	CHECK_EQ(h->c->zone_pending, 0);
}

/* A fragmented heap: blocks of four owners and of the share, zones, holes. */
static void setup(struct region *r)
{
	struct mp_heap *h = &r->s.h;
	uint64_t seed = 42, g[200];
	const struct iovm_zone *z;

	CHECK_OK(mp_lock(h));
	for (unsigned i = 0; i < 200; i++) {
		uint64_t size = 64u << (test_rand(&seed) % 9);

		CHECK_OK(mp_heap_alloc(h, size, 0, (uint8_t)(i % 4), NULL, &g[i]));
	}
	for (unsigned i = 0; i < 200; i += 3)
		CHECK_OK(mp_heap_free(h, g[i]));
	CHECK_OK(mp_heap_alloc(h, 4096, 0, MP_OWNER_KEEP, NULL, &g[0]));
	CHECK_OK(mp_heap_alloc(h, 100, 0, MP_OWNER_KEEP, NULL, &g[0]));
	r->s.c->slots[2] = (struct mp_slot){ .state = MP_SLOT_LIVE, .pid = 0x7ffffff0, .start_time = 7 };
	mp_unlock(h);
	CHECK_EQ(mp_zone_reserve(&r->s, "ring-a", 8192, 4096, 0, &z), 0);
	CHECK_EQ(mp_zone_reserve(&r->s, "ring-b", 300, 64, 0, &z), 0);
	CHECK_OK(mp_lock(h));
	CHECK_OK(mp_heap_check(h));
	mp_unlock(h);
}

enum change { ALLOC_SPLIT, FREE_MERGE, ZONE_MAKE, ZONE_FREE, REAP, LEND, GIVE_BACK, REAP_BORROWER, REAP_LENDER,
	      FREE_MAPPED, FREE_HELD, REAP_MAPPED, NR_CHANGES };
static const char *const change_name[] = {
	"an allocation that splits", "a free that merges", "a zone made", "a zone freed",
	"a dead process reaped", "a block lent", "a block given back", "a dead borrower reaped",
	"a dead lender reaped", "a free of a block a shared domain maps", "a held block's last unmap",
	"a dead process reaped, a domain mapping its blocks",
};

/* Say that a shared domain maps (or no longer maps) the first page of the block at @g. */
static void mark_mapped(struct mp_heap *h, uint64_t g, uint32_t n)
{
	h->maps[(g << MP_GRAIN_SHIFT) / 4096] = n;
}

/* The @n-th allocated block of @owner, not lent. */
static uint64_t nth_block(const struct mp_heap *h, uint8_t owner, unsigned n)
{
	for (uint64_t g = 0; g < h->c->ngrains; g += UINT64_C(1) << (h->state[g] & MP_ORDER_MASK))
		if ((h->state[g] & MP_ALLOCATED) && h->owner[g] == owner && h->lender[g] == MP_LENDER_NONE && !n--)
			return g;
	test_fail("no block %u of owner %u", n, (unsigned)owner);
}

/* The change, in the calling process; the lock is taken here (reap: by the reap). */
static void change(struct region *r, enum change what)
{
	struct mp_heap *h = &r->s.h;
	const struct iovm_zone *z;
	uint64_t g;

	switch (what) {
	case ALLOC_SPLIT:
		CHECK_OK(mp_lock(h));
		/* prepare() left no free block below 16 KiB: 64 bytes split one at every order on the way. */
		CHECK_OK(mp_heap_alloc(h, 64, 0, 1, NULL, &g));
		mp_unlock(h);
		break;
	case FREE_MERGE:
		CHECK_OK(mp_lock(h));
		/* The first block of owner 1 whose buddy is free: its free merges. */
		for (g = 0; g < h->c->ngrains; g += UINT64_C(1) << (h->state[g] & MP_ORDER_MASK)) {
			unsigned order = h->state[g] & MP_ORDER_MASK;
			uint64_t buddy = g ^ (UINT64_C(1) << order);

			if ((h->state[g] & MP_ALLOCATED) && h->owner[g] == 1 && buddy < h->c->ngrains &&
			    h->state[buddy] == (MP_BLOCK | order))
				break;
		}
		CHECK(g < h->c->ngrains);
		CHECK_OK(mp_heap_free(h, g));
		mp_unlock(h);
		break;
	case ZONE_MAKE:
		CHECK_EQ(mp_zone_reserve(&r->s, "ring-new", 20000, 4096, 0, &z), 0);
		break;
	case ZONE_FREE:
		CHECK_OK(mp_zone_lookup(&r->s, "ring-a", &z));
		CHECK_OK(mp_zone_free(&r->s, z));
		break;
	case REAP:
	case REAP_BORROWER:
	case REAP_LENDER:
	case REAP_MAPPED:
		CHECK_EQ(mp_reap_pid(h, 0x7ffffff0, 7), 1);
		break;
	case LEND:
		CHECK_OK(mp_lock(h));
		CHECK_OK(mp_heap_lend(h, nth_block(h, 1, 5), 3));
		mp_unlock(h);
		break;
	case FREE_MAPPED:
		CHECK_OK(mp_lock(h));
		CHECK_OK(mp_heap_free(h, nth_block(h, 1, 7)));
		mp_unlock(h);
		break;
	case FREE_HELD:
		CHECK_OK(mp_lock(h));
		for (g = 0; g < h->c->ngrains; g += UINT64_C(1) << (h->state[g] & MP_ORDER_MASK))
			if ((h->state[g] & MP_ALLOCATED) && h->lender[g] == MP_LENDER_DOMAINS)
				break;
		CHECK(g < h->c->ngrains);
		CHECK_OK(mp_heap_free_held(h, g));
		mp_unlock(h);
		break;
	case GIVE_BACK:
		CHECK_OK(mp_lock(h));
		for (g = 0; g < h->c->ngrains; g += UINT64_C(1) << (h->state[g] & MP_ORDER_MASK))
			if ((h->state[g] & MP_ALLOCATED) && h->lender[g] != MP_LENDER_NONE)
				break;
		CHECK_OK(mp_heap_give_back(h, g));
		mp_unlock(h);
		break;
	default:
		break;
	}
}

/* Before the change: for the split, no small free block, so that the allocation splits a large one. */
static void prepare(struct region *r, enum change what)
{
	struct mp_heap *h = &r->s.h;
	uint64_t g;

	setup(r);
	if (what == GIVE_BACK || what == REAP_BORROWER || what == REAP_LENDER) {
		/* GIVE_BACK: owner 1 lent a block to 3. BORROWER: 1 lent three to 2 (which dies). LENDER: 2 lent three to 3. */
		uint8_t from = what == REAP_LENDER ? 2 : 1, to = what == REAP_BORROWER ? 2 : 3;

		CHECK_OK(mp_lock(h));
		for (unsigned i = 0; i < (what == GIVE_BACK ? 1u : 3u); i++)
			CHECK_OK(mp_heap_lend(h, nth_block(h, from, 0), to));
		CHECK_EQ(mp_heap_free(h, nth_block(h, 3, 0)), 0);
		mp_unlock(h);
	}
	if (what == FREE_MAPPED || what == FREE_HELD) {
		/* Owner 1's eighth block mapped; FREE_HELD: freed while mapped (held), then unmapped. */
		uint64_t g1 = nth_block(h, 1, 7);

		mark_mapped(h, g1, 1);
		if (what == FREE_HELD) {
			CHECK_OK(mp_lock(h));
			CHECK_OK(mp_heap_free(h, g1));
			CHECK_EQ(h->lender[g1], MP_LENDER_DOMAINS);
			mp_unlock(h);
			mark_mapped(h, g1, 0);
		}
	}
	if (what == REAP_MAPPED) {
		/* Three of the dying owner 2's blocks mapped. */
		for (unsigned i = 0; i < 3; i++)
			mark_mapped(h, nth_block(h, 2, 4 * i), 1);
	}
	if (what != ALLOC_SPLIT)
		return;
	CHECK_OK(mp_lock(h));
	for (unsigned order = 0; order < 8; order++)
		while (h->c->free_head[order])
			CHECK_OK(mp_heap_alloc(h, MP_GRAIN << order, 0, 3, NULL, &g));
	mp_unlock(h);
}

TEST(every_crash_point)
{
	static struct snap before, after, now;

	for (enum change what = 0; what < NR_CHANGES; what++) {
		unsigned long n;

		/* What the change does when nothing kills it. */
		region_init(&R);
		prepare(&R, what);
		snap_take(&R, &before);
		change(&R, what);
		snap_take(&R, &after);
		CHECK(!snap_eq(&before, &after));

		for (n = 1;; n++) {
			uint64_t recoveries;
			struct child c;
			int st;

			region_init(&R);
			prepare(&R, what);
			recoveries = R.s.c->recoveries;
			fflush(NULL);
			c.pid = fork();
			CHECK(c.pid >= 0);
			if (!c.pid) {
				R.s.fork_gen = mp_fork_gen();
				mp_crash_countdown = n;
				change(&R, what);
				mp_crash_countdown = 0;
				_exit(0);
			}
			c.rd = dup(0);
			c.wr = dup(0);
			st = child_wait(&c);
			CHECK_MSG(st == 0 || st == MP_CRASH_EXIT, "%s, killed at point %lu: child ended with %d",
				  change_name[what], n, st);
			CHECK_OK(mp_lock(&R.s.h));
			if (st == MP_CRASH_EXIT && what != REAP && what != REAP_BORROWER && what != REAP_LENDER &&
			    what != REAP_MAPPED)
				CHECK_MSG(R.s.c->recoveries == recoveries + 1,
					  "%s, killed at point %lu: the lock did not say its holder died",
					  change_name[what], n);
			CHECK_MSG(mp_heap_check(&R.s.h) == 0, "%s, killed at point %lu: %s", change_name[what], n,
				  iovm_error_detail());
			zones_whole(&R);
			mp_unlock(&R.s.h);
			/* A reap killed half way is finished by the repair itself, not left for a later reap. */
			snap_take(&R, &now);
			CHECK_MSG(snap_eq(&now, &before) || snap_eq(&now, &after),
				  "%s, killed at point %lu: the heap is neither as before nor as after (%u blocks; %u before, %u after)",
				  change_name[what], n, now.n, before.n, after.n);
			if (what == REAP || what == REAP_BORROWER || what == REAP_LENDER || what == REAP_MAPPED)
				CHECK(snap_eq(&now, &after));
			if (st == 0)
				break;
		}
		printf("# %s: killed at each of its %lu points, repaired every time\n", change_name[what], n - 1);
		/* The split went through eight orders at least; every change has several stores. */
		CHECK(n > (what == ALLOC_SPLIT ? 24u : what == LEND || what == GIVE_BACK ? 1u : 3u));
	}
}

/* Random changes against a plain list: the allocator gives what it promises, and frees what it took. */
TEST(model)
{
	static struct { uint64_t grain, size; uint8_t owner; } live[4096];
	unsigned nlive = 0, steps = getenv("IOVM_MP_MODEL_STEPS") ? (unsigned)atoi(getenv("IOVM_MP_MODEL_STEPS")) : 20000;
	uint64_t seed = getenv("IOVM_MP_SEED") ? strtoull(getenv("IOVM_MP_SEED"), NULL, 0) : 0x5eed;
	struct mp_heap *h = &R.s.h;

	printf("# seed %#llx, %u steps\n", (unsigned long long)seed, steps);
	region_init(&R);
	CHECK_OK(mp_lock(h));
	for (unsigned step = 0; step < steps; step++) {
		uint64_t r = test_rand(&seed), g;

		if (nlive && (r % 3 == 0 || nlive == 4096)) {
			unsigned i = (unsigned)(test_rand(&seed) % nlive);

			CHECK_OK(mp_heap_free(h, live[i].grain));
			CHECK_EQ(mp_heap_free(h, live[i].grain) == -EINVAL || (h->state[live[i].grain] & MP_ALLOCATED), 1);
			live[i] = live[--nlive];
		} else if (r % 29 == 1) {
			uint8_t owner = (uint8_t)(test_rand(&seed) % 4);
			uint64_t freed = mp_heap_free_owned(h, owner), expect = 0;

			for (unsigned i = 0; i < nlive;)
				if (live[i].owner == owner) {
					live[i] = live[--nlive];
					expect++;
				} else {
					i++;
				}
			CHECK_EQ(freed, expect);
		} else {
			uint64_t size = 1 + test_rand(&seed) % (r % 5 ? 512 : 65536);
			uint64_t align = r % 7 ? 0 : UINT64_C(64) << (test_rand(&seed) % 8);
			uint8_t owner = (uint8_t)(test_rand(&seed) % 4);
			int ret = mp_heap_alloc(h, size, align, owner, NULL, &g);
			unsigned order;
			uint8_t o;

			if (ret) {
				CHECK_EQ(ret, -ENOMEM);
				continue;
			}
			CHECK_OK(mp_heap_block(h, g, &order, &o));
			CHECK(MP_GRAIN << order >= size);
			CHECK_EQ(o, owner);
			if (align)
				CHECK(((g << MP_GRAIN_SHIFT) & (align - 1)) == 0);
			/* No overlap with any live block. */
			for (unsigned i = 0; i < nlive; i++) {
				uint64_t a0 = live[i].grain << MP_GRAIN_SHIFT, a1 = a0 + live[i].size;
				uint64_t b0 = g << MP_GRAIN_SHIFT, b1 = b0 + (MP_GRAIN << order);

				CHECK_MSG(a1 <= b0 || b1 <= a0, "step %u: new block at %#llx overlaps a live one at %#llx", step,
					  (unsigned long long)b0, (unsigned long long)a0);
			}
			live[nlive].grain = g;
			live[nlive].size = MP_GRAIN << order;
			live[nlive].owner = owner;
			nlive++;
		}
		if (step % 256 == 0)
			CHECK_MSG(mp_heap_check(h) == 0, "step %u: %s", step, iovm_error_detail());
	}
	/*
	 * What one owner held, freed at once as when it dies: exactly its
	 * blocks, the merges of each free notwithstanding (the walk goes on
	 * over a block a free merged beyond the one it freed).
	 */
	{
		uint64_t mine = 0;

		for (unsigned i = 0; i < nlive; i++)
			mine += live[i].owner == 2;
		CHECK_EQ(mp_heap_free_owned(h, 2), mine);
		for (unsigned i = 0; i < nlive;)
			if (live[i].owner == 2)
				live[i] = live[--nlive];
			else
				i++;
		CHECK_MSG(mp_heap_check(h) == 0, "after the owner's blocks went: %s", iovm_error_detail());
	}
	while (nlive)
		CHECK_OK(mp_heap_free(h, live[--nlive].grain));
	CHECK_OK(mp_heap_check(h));
	/* A block start inside a free block, at its second grain or its last: the check finds it. */
	{
		uint64_t len = UINT64_C(1) << (h->state[0] & MP_ORDER_MASK);

		CHECK(len > 2);
		for (uint64_t at = 1; at < len; at += len - 2) {
			h->state[at] = MP_BLOCK;
			CHECK_EQ(mp_heap_check(h), -EUCLEAN);
			h->state[at] = 0;
		}
		CHECK_OK(mp_heap_check(h));
	}
	/* Everything free again: one block per power of two the heap tiles into. */
	CHECK_EQ(h->c->free_grains, h->c->ngrains);
	CHECK_EQ(h->c->nr_blocks, 0);
	CHECK_EQ(h->c->free_head[14], 1);
	mp_unlock(h);
}

int main(void)
{
	test_init();
	RUN(every_crash_point);
	RUN(model);
	return 0;
}
#endif
