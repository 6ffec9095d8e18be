/* SPDX-License-Identifier: MIT */
/*
 * test_place.c - placement policies of the physical address space: blocks
 * below a limit, allocation at given addresses, the halving fallback of
 * Xen's allocate_memory_11 (largest blocks first, halved down to a minimum
 * chunk, memory below a limit first, adjacent blocks merged into banks, at
 * most N banks, all or nothing), and reserved pools (carved from the
 * buddy, out of its reach, reusable on the same banks, exhausted cleanly).
 */
#include "base/compiler.h"
#include "phys/phys.h"
#include "harness.h"

#define PG 4096
#define REGION 2048 /* frames: one 8 MiB bank, at a 2 MiB-aligned PA */

struct rig {
	struct phys_space *ps;
	struct phys_arena *a;
	uint64_t base; /* first frame number of the region */
};

/* A space whose 4 KiB arena holds one free 8 MiB bank, and nothing may grow it. */
static struct rig rig_open(void)
{
	struct phys_params p = { .limit = REGION * PG };
	struct phys_req r = { .nframes = REGION, .align = 1 };
	struct rig g;
	pa_t pa;

	CHECK_OK(phys_create(&p, &g.ps));
	CHECK_OK(phys_arena_get(g.ps, PG, -1, &g.a));
	CHECK_OK(phys_alloc_contig(g.a, &r, &pa, NULL));
	CHECK_OK(phys_free(g.a, pa, REGION, false));
	/* The block alignments below are counted from a 2 MiB boundary. */
	CHECK(is_aligned(pa_val(pa), 2 << 20));
	g.base = pa_val(pa) / PG;
	return g;
}

static uint64_t free_frames(struct rig *g)
{
	struct iovm_phys_stats st;

	CHECK_OK(phys_stats(g->ps, &st));
	return st.arenas[0].free / PG;
}

static pa_t at(struct rig *g, uint64_t frame)
{
	return pa_make((g->base + frame) * PG);
}

/*
 * What every placement must be: @n banks holding @frames frames in all,
 * sorted, none adjacent to the next (they would have merged), each a
 * multiple of @chunk frames, inside the region.
 */
static void check_banks(struct rig *g, const struct phys_range *b, unsigned n, uint64_t frames, uint64_t chunk)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < n; i++) {
		CHECK(b[i].len && b[i].len % (chunk * PG) == 0);
		CHECK(pa_val(b[i].pa) >= g->base * PG && pa_val(b[i].pa) + b[i].len <= (g->base + REGION) * PG);
		if (i)
			CHECK(pa_val(b[i - 1].pa) + b[i - 1].len < pa_val(b[i].pa));
		sum += b[i].len / PG;
	}
	CHECK_EQ(sum, frames);
}

TEST(below_a_limit)
{
	struct rig g = rig_open();
	struct phys_req r = { .nframes = 1, .align = 1, .limit = g.base + 16, .no_grow = true };
	pa_t pa;

	/* The free lists would give any block; the limit makes it one of the first 16 frames. */
	for (int i = 0; i < 16; i++) {
		CHECK_OK(phys_alloc_contig(g.a, &r, &pa, NULL));
		CHECK(pa_val(pa) >= g.base * PG && pa_val(pa) < (g.base + 16) * PG);
	}
	CHECK_EQ(phys_alloc_contig(g.a, &r, &pa, NULL), -ENOMEM);
	r.nframes = 32;
	CHECK_EQ(phys_alloc_contig(g.a, &r, &pa, NULL), -ENOMEM); /* no 32 free frames below it */
	phys_destroy(g.ps);
}

TEST(at_given_addresses)
{
	struct rig g = rig_open();
	bool zero;

	CHECK_OK(phys_alloc_at(g.a, at(&g, 100), 10, &zero));
	CHECK(!zero); /* rig_open() gave them back as written */
	CHECK_EQ(free_frames(&g), REGION - 10);
	CHECK_EQ(phys_alloc_at(g.a, at(&g, 100), 10, NULL), -EBUSY);
	CHECK_EQ(phys_alloc_at(g.a, at(&g, 105), 10, NULL), -EBUSY);
	CHECK_EQ(free_frames(&g), REGION - 10); /* a refusal takes nothing */
	CHECK_EQ(phys_alloc_at(g.a, at(&g, REGION - 4), 8, NULL), -ENOENT); /* runs off the bank */
	CHECK_EQ(phys_alloc_at(g.a, pa_make(g.base * PG + 1), 1, NULL), -EINVAL);
	CHECK_EQ(phys_alloc_at(g.a, at(&g, 0), 0, NULL), -EINVAL);
	/* Either side of the taken range is still whole. */
	CHECK_OK(phys_alloc_at(g.a, at(&g, 90), 10, NULL));
	CHECK_OK(phys_alloc_at(g.a, at(&g, 110), 10, NULL));
	CHECK_OK(phys_free(g.a, at(&g, 90), 30, false));
	CHECK_EQ(free_frames(&g), REGION);
	phys_destroy(g.ps);
}

TEST(halving_merges_adjacent_blocks)
{
	struct rig g = rig_open();
	struct phys_placement pl = { .min_chunk = 16, .max_banks = 4, .no_grow = true };
	struct phys_range b[4];
	unsigned n;

	/* 768 frames: a block of 512 and one of 256, adjacent in a free region: one bank. */
	CHECK_OK(phys_alloc_banks(g.a, NULL, 768, &pl, b, &n));
	check_banks(&g, b, n, 768, 16);
	CHECK_EQ(n, 1);
	CHECK_EQ(free_frames(&g), REGION - 768);
	CHECK_OK(phys_free_banks(g.a, NULL, b, n));
	CHECK_EQ(free_frames(&g), REGION);
	/* More than there is: all or nothing. */
	CHECK_EQ(phys_alloc_banks(g.a, NULL, REGION + 1, &pl, b, &n), -ENOMEM);
	CHECK_EQ(n, 0);
	CHECK_EQ(free_frames(&g), REGION);
	phys_destroy(g.ps);
}

/* One frame taken at 32 + 64k for every k below @upto: no free run of the low part reaches 64 frames. */
static void fragment(struct rig *g, uint64_t upto)
{
	for (uint64_t f = 32; f < upto; f += 64)
		CHECK_OK(phys_alloc_at(g->a, at(g, f), 1, NULL));
}

TEST(halving_down_to_the_minimum_chunk)
{
	struct rig g = rig_open();
	struct phys_placement pl = { .min_chunk = 64, .max_banks = 8, .no_grow = true };
	struct phys_range b[16];
	uint64_t before;
	unsigned n;

	fragment(&g, REGION);
	before = free_frames(&g);
	/* Nothing of 64 frames is left anywhere: refused, and nothing taken. */
	CHECK_EQ(phys_alloc_banks(g.a, NULL, 256, &pl, b, &n), -ENOMEM);
	CHECK_EQ(free_frames(&g), before);
	/* Down to 32 frames: eight blocks, none adjacent: eight banks, but not within four. */
	pl.min_chunk = 32;
	pl.max_banks = 4;
	CHECK_EQ(phys_alloc_banks(g.a, NULL, 256, &pl, b, &n), -ENOMEM);
	CHECK_EQ(free_frames(&g), before);
	pl.max_banks = 8;
	CHECK_OK(phys_alloc_banks(g.a, NULL, 256, &pl, b, &n));
	check_banks(&g, b, n, 256, 32);
	CHECK_EQ(n, 8);
	CHECK_OK(phys_free_banks(g.a, NULL, b, n));
	CHECK_EQ(free_frames(&g), before);
	phys_destroy(g.ps);
}

TEST(halving_below_a_limit_first)
{
	struct rig g = rig_open();
	struct phys_placement pl = { .min_chunk = 32, .below = 0, .max_banks = 16, .no_grow = true };
	struct phys_range b[16];
	unsigned n;

	/* The low half fragmented, the high half whole. */
	fragment(&g, REGION / 2);
	/* No preference: the high half's large block, one bank. */
	CHECK_OK(phys_alloc_banks(g.a, NULL, 256, &pl, b, &n));
	CHECK_EQ(n, 1);
	CHECK(pa_val(b[0].pa) >= pa_val(at(&g, REGION / 2)));
	CHECK_OK(phys_free_banks(g.a, NULL, b, n));
	/* Below the middle first: small blocks, all of them low. */
	pl.below = g.base + REGION / 2;
	CHECK_OK(phys_alloc_banks(g.a, NULL, 256, &pl, b, &n));
	check_banks(&g, b, n, 256, 32);
	CHECK_EQ(n, 8);
	CHECK(pa_val(b[n - 1].pa) + b[n - 1].len <= pa_val(at(&g, REGION / 2)));
	CHECK_OK(phys_free_banks(g.a, NULL, b, n));
	/* Not even the minimum chunk below it: above it then, from the largest block again. */
	pl.min_chunk = 64;
	CHECK_OK(phys_alloc_banks(g.a, NULL, 256, &pl, b, &n));
	CHECK_EQ(n, 1);
	CHECK(pa_val(b[0].pa) >= pa_val(at(&g, REGION / 2)));
	CHECK_OK(phys_free_banks(g.a, NULL, b, n));
	phys_destroy(g.ps);
}

TEST(reserved_pool)
{
	struct rig g = rig_open();
	struct phys_placement one = { .min_chunk = 1024, .max_banks = 1, .no_grow = true };
	struct phys_placement pl = { .min_chunk = 64, .max_banks = 4 };
	struct iovm_phys_stats st;
	struct phys_range b[4], first;
	struct phys_pool *pool;
	unsigned n;
	pa_t pool_pa;

	CHECK_OK(phys_pool_create(g.a, "guests", 1024, &one, &pool));
	CHECK(phys_pool_arena(pool) == g.a);
	CHECK_OK(phys_stats(g.ps, &st));
	CHECK_EQ(st.nr_pools, 1);
	CHECK(!strcmp(st.pools[0].name, "guests"));
	CHECK_EQ(st.pools[0].nr_ranges, 1);
	CHECK_EQ(st.pools[0].total, 1024 * PG);
	CHECK_EQ(st.pools[0].free, 1024 * PG);
	CHECK_EQ(st.pools[0].largest_free_run, 1024 * PG);
	CHECK_EQ(free_frames(&g), REGION - 1024);

	/* The buddy's users cannot reach the pool's frames. */
	CHECK_OK(phys_alloc_banks(g.a, pool, 1024, &one, b, &n));
	pool_pa = b[0].pa;
	CHECK_OK(phys_free_banks(g.a, pool, b, n));
	CHECK_EQ(phys_alloc_at(g.a, pool_pa, 1, NULL), -EBUSY);
	CHECK_EQ(phys_free(g.a, pool_pa, 1, false), -EINVAL);
	/* The rest of the machine used up, frame by frame. */
	{
		struct phys_req r = { .nframes = 1, .align = 1, .no_grow = true };
		pa_t x;

		while (!phys_alloc_contig(g.a, &r, &x, NULL))
			;
		CHECK_EQ(free_frames(&g), 0);
	}
	/* A guest from the pool all the same, and again on the same banks after a "reboot". */
	CHECK_OK(phys_alloc_banks(g.a, pool, 512, &pl, b, &n));
	CHECK_EQ(n, 1);
	first = b[0];
	CHECK_OK(phys_free_banks(g.a, pool, b, n));
	CHECK_OK(phys_pool_alloc_at(pool, first.pa, first.len / PG));
	CHECK_EQ(phys_pool_alloc_at(pool, first.pa, first.len / PG), -EBUSY);
	CHECK_EQ(phys_pool_alloc_at(pool, pa_make(g.base * PG - 4 * PG), 1), -ENOENT);
	/* Exhausted: a clean refusal. */
	CHECK_OK(phys_alloc_banks(g.a, pool, 512, &pl, b, &n));
	CHECK_EQ(phys_alloc_banks(g.a, pool, 1, &pl, &b[1], &n), -ENOMEM);
	CHECK_OK(phys_stats(g.ps, &st));
	CHECK_EQ(st.pools[0].free, 0);
	/* Giving back: only what the pool holds and lent, all or nothing. */
	{
		struct phys_range two[2] = { first, { pa_make(g.base * PG - 4 * PG), PG } };

		CHECK_EQ(phys_free_banks(g.a, pool, two, 2), -EINVAL);
		CHECK_EQ(phys_pool_destroy(pool), -EBUSY);
		CHECK_OK(phys_free_banks(g.a, pool, &first, 1));
		CHECK_EQ(phys_free_banks(g.a, pool, &first, 1), -EINVAL); /* twice */
		CHECK_OK(phys_free_banks(g.a, pool, b, 1));
	}
	CHECK_OK(phys_pool_destroy(pool));
	CHECK_EQ(free_frames(&g), 1024);
	CHECK_OK(phys_stats(g.ps, &st));
	CHECK_EQ(st.nr_pools, 0);
	phys_destroy(g.ps);
}

TEST(bad_arguments)
{
	struct rig g = rig_open();
	struct phys_placement pl = { .min_chunk = 16, .max_banks = 4, .no_grow = true };
	struct phys_range b[4];
	struct phys_pool *pool;
	unsigned n;

	CHECK_EQ(phys_alloc_banks(NULL, NULL, 16, &pl, b, &n), -EINVAL);
	CHECK_EQ(phys_alloc_banks(g.a, NULL, 0, &pl, b, &n), -EINVAL);
	CHECK_EQ(phys_alloc_banks(g.a, NULL, 16, NULL, b, &n), -EINVAL);
	CHECK_EQ(phys_alloc_banks(g.a, NULL, 16, &pl, NULL, &n), -EINVAL);
	pl.min_chunk = 24;
	CHECK_EQ(phys_alloc_banks(g.a, NULL, 16, &pl, b, &n), -EINVAL);
	pl.min_chunk = 16;
	pl.max_banks = 0;
	CHECK_EQ(phys_alloc_banks(g.a, NULL, 16, &pl, b, &n), -EINVAL);
	pl.max_banks = 4;
	CHECK_EQ(phys_pool_create(g.a, NULL, 16, &pl, &pool), -EINVAL);
	CHECK_EQ(phys_pool_create(g.a, "a name far too long for a pool's statistics", 16, &pl, &pool), -EINVAL);
	CHECK_EQ(phys_pool_create(g.a, "p", 0, &pl, &pool), -EINVAL);
	CHECK_EQ(phys_pool_create(g.a, "p", REGION + 1, &pl, &pool), -ENOMEM);
	CHECK_EQ(phys_pool_destroy(NULL), -EINVAL);
	CHECK_EQ(phys_pool_alloc_at(NULL, pa_make(0), 1), -EINVAL);
	CHECK_EQ(phys_free_banks(g.a, NULL, NULL, 1), -EINVAL);
	b[0] = (struct phys_range){ at(&g, 0), 0 };
	CHECK_EQ(phys_free_banks(g.a, NULL, b, 1), -EINVAL);
	CHECK_EQ(free_frames(&g), REGION);
	phys_destroy(g.ps);
}

int main(void)
{
	test_init();
	RUN(below_a_limit);
	RUN(at_given_addresses);
	RUN(halving_merges_adjacent_blocks);
	RUN(halving_down_to_the_minimum_chunk);
	RUN(halving_below_a_limit_first);
	RUN(reserved_pool);
	RUN(bad_arguments);
	return 0;
}
