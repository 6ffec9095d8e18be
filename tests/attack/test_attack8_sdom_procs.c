/* SPDX-License-Identifier: MIT */
/*
 * test_attack8_sdom_procs.c - shared domains between real processes:
 * memory freed in one process while another maps it, a process killed
 * with its mappings in place, the last view dying, the owner dying, a
 * forked child on its parent's view (EPERM), iovm_domain_stats() the same
 * everywhere, and IOVAs free to any process once unmapped.
 */
#include "attack/attack8_sdom.h"

#define HEAP (UINT64_C(16) << 20)

static const char *g_name; /* the share */
static struct iovm_ctx *ctx;
static uint64_t base_free, base_blocks;

/* Nothing held, the heap back where the test began, and sound. */
#define settled(when) a8_settled(ctx, base_free, base_blocks, (when))

/* Child: free the block at the PA it is told; say the result. */
static void kid_free(int rd, int wr, void *arg)
{
	struct iovm_ctx *c = attach_ok(g_name);
	iovm_pa_t pa = IOVM_PA(get64(rd));
	void *p = iovm_dma_ptr(c, pa);

	(void)arg;
	CHECK(p != NULL);
	put64(wr, (uint64_t)(int64_t)iovm_dma_free(c, p));
	put64(wr, (uint64_t)(int64_t)iovm_dma_free(c, p));
	get64(rd);
	iovm_close(c);
}

/* Child: open domain @arg, unmap what it is told, say the result. */
static void kid_unmap(int rd, int wr, void *arg)
{
	struct iovm_ctx *c = attach_ok(g_name);
	struct iovm_domain *d = a8_open(c, arg);
	uint64_t iova = get64(rd), len = get64(rd);

	put64(wr, (uint64_t)(int64_t)iovm_domain_unmap(d, IOVM_IOVA(iova), len));
	get64(rd);
	CHECK_OK(iovm_domain_destroy(d));
	iovm_close(c);
}

/* Mapped by the parent, freed by one child, unmapped by another. */
TEST(free_here_unmap_there)
{
	struct iovm_domain *d = a8_create(ctx, "fu", NULL);
	uint8_t *b = a8_alloc(ctx, 3 * A8_K4, A8_K4, 0);
	iovm_pa_t pa = a8_pa(ctx, b);
	uint64_t iova = a8_map(d, IOVM_PA(pa.addr + A8_K4), A8_K4, IOVM_ADDR_INVALID);
	uint64_t f0 = a8_free(ctx);
	struct child f = child_start(kid_free, NULL);

	put64(f.wr, pa.addr);
	EXPECT_EQ((int64_t)get64(f.rd), 0);
	EXPECT_EQ((int64_t)get64(f.rd), -EINVAL);
	uint64_t held = a8_held(ctx);

	EXPECT(held >= 3 * A8_K4);
	EXPECT_EQ(a8_free(ctx), f0);
	EXPECT_EQ(iovm_dma_free(ctx, b), -EINVAL);
	put64(f.wr, 0);
	child_ok(&f);
	/* The freeing process gone: still held. */
	EXPECT_EQ(a8_held(ctx), held);
	EXPECT_EQ(a8_free(ctx), f0);

	struct child u = child_start(kid_unmap, "fu");

	put64(u.wr, iova);
	put64(u.wr, A8_K4);
	EXPECT_EQ((int64_t)get64(u.rd), 0);
	EXPECT_EQ(a8_held(ctx), 0);
	EXPECT_EQ(a8_free(ctx), f0 + held);
	EXPECT_EQ(a8_xlate(d, iova, NULL), -ENOENT);
	put64(u.wr, 0);
	child_ok(&u);
	CHECK_OK(iovm_domain_destroy(d));
	settled("free here, unmap there");
}

/* Child: allocate, map in domain @arg, fill; report PA, IOVA, size; wait to be killed. */
static void kid_map_and_wait(int rd, int wr, void *arg)
{
	struct iovm_ctx *c = attach_ok(g_name);
	struct iovm_domain *d;
	int r = iovm_share_domain_open(c, arg, &d);
	uint8_t *b = a8_alloc(c, 4 * A8_K4, A8_K4, 0);
	iovm_iova_t iova = IOVM_IOVA_ANY;

	if (r == -ENOENT)
		d = a8_create(c, arg, NULL);
	else
		CHECK_OK(r);
	memset(b, 0x61, 4 * A8_K4);
	CHECK_OK(iovm_domain_map(d, &iova, a8_pa(c, b), 4 * A8_K4, A8_RW));
	if (get64(rd) == 1) /* free it too, still mapped */
		CHECK_OK(iovm_dma_free(c, b));
	put64(wr, a8_pa(c, b).addr);
	put64(wr, iova.addr);
	for (;;)
		pause();
}

/* A process killed with its mapping in place: its memory is reaped but held. */
TEST(killed_with_mapping)
{
	struct iovm_domain *d = a8_create(ctx, "kill", NULL);
	struct devq dq = devq_open(ctx, d);
	uint64_t f0 = a8_free(ctx), reaped0 = share_info(ctx).reaped;
	struct child k = child_start(kid_map_and_wait, "kill");

	put64(k.wr, 0);
	iovm_pa_t pa = IOVM_PA(get64(k.rd));
	uint64_t iova = get64(k.rd);
	uint8_t *b = iovm_dma_ptr(ctx, pa);

	CHECK(b != NULL);
	child_kill(&k);
	WAIT_UNTIL(share_info(ctx).reaped > reaped0);
	uint64_t held = a8_held(ctx);

	EXPECT_MSG(held >= 4 * A8_K4, "killed with its block mapped: domain_held %llu", (unsigned long long)held);
	EXPECT_MSG(a8_free(ctx) + held == f0, "heap_free %llu + held %llu != %llu", (unsigned long long)a8_free(ctx),
		   (unsigned long long)held, (unsigned long long)f0);
	EXPECT_SOUND(ctx);
	/* Still mapped, to the same memory, which nobody gets. */
	iovm_pa_t got;

	EXPECT_EQ(a8_xlate(d, iova, &got), 0);
	EXPECT_EQ(got.addr, pa.addr);
	void *v = a8_alloc(ctx, 4 * A8_K4, A8_K4, 0);

	EXPECT(!a8_overlap(a8_pa(ctx, v).addr, 4 * A8_K4, pa.addr, 4 * A8_K4));
	CHECK_EQ(devq_fill(&dq, iova, 4 * A8_K4, 0x62), IOVM_STATUS_SUCCESS);
	EXPECT(all_bytes(b, 4 * A8_K4, 0x62));
	CHECK_OK(iovm_dma_free(ctx, v));
	EXPECT_EQ(iovm_dma_free(ctx, b), -EINVAL);
	a8_unmap(d, iova + A8_K4, A8_K4);
	EXPECT_EQ(a8_held(ctx), held);
	a8_unmap(d, iova, A8_K4);
	a8_unmap(d, iova + 2 * A8_K4, 2 * A8_K4);
	EXPECT_EQ(a8_held(ctx), 0);
	EXPECT_EQ(a8_free(ctx), f0);
	devq_close(&dq);
	CHECK_OK(iovm_domain_destroy(d));
	/* The dead child's view went with it: the domain went with ours. */
	struct iovm_domain *x;

	EXPECT_EQ(iovm_share_domain_open(ctx, "kill", &x), -ENOENT);
	settled("killed with a mapping");
}

/* The only view dies, holding a freed block: the domain, its name and the block go. */
TEST(last_view_killed)
{
	for (unsigned how = 0; how < 2; how++) {
		uint64_t reaped0 = share_info(ctx).reaped;
		struct child k = child_start(kid_map_and_wait, "solo");
		struct iovm_domain *x = NULL;

		put64(k.wr, how);
		get64(k.rd);
		get64(k.rd);
		if (how)
			EXPECT(a8_held(ctx) >= 4 * A8_K4);
		child_kill(&k);
		WAIT_UNTIL(share_info(ctx).reaped > reaped0);
		WAIT_UNTIL(a8_held(ctx) == 0);
		int r = iovm_share_domain_open(ctx, "solo", &x);

		EXPECT_MSG(r == -ENOENT, "the last view died (%s): open says %d", how ? "freed" : "mapped", r);
		if (r == 0)
			CHECK_OK(iovm_domain_destroy(x));
		settled("last view killed");
	}
}

/* A forked child on its parent's view: EPERM; attached, it opens by name. */
static struct iovm_domain *g_dom;

static void kid_forked(int rd, int wr, void *arg)
{
	iovm_pa_t pa = IOVM_PA(get64(rd));
	iovm_iova_t iova = IOVM_IOVA(A8_WIN + 0x40000);
	struct iovm_domain *d = NULL;

	(void)arg;
	EXPECT_EQ(iovm_domain_map(g_dom, &iova, pa, A8_K4, A8_RW), -EPERM);
	EXPECT_EQ(iovm_share_domain_open(ctx, "fork", &d), -EPERM);
	EXPECT_EQ(iovm_share_domain_create(ctx, "fork2", NULL, &d), -EPERM);
	struct iovm_ctx *c = attach_ok(g_name);

	d = a8_open(c, "fork");
	iovm_pa_t got;

	EXPECT_EQ(a8_xlate(d, A8_WIN + 0x40000, NULL), -ENOENT);
	iova = IOVM_IOVA(A8_WIN + 0x40000);
	EXPECT_EQ(iovm_domain_map(d, &iova, pa, A8_K4, A8_RW), 0);
	EXPECT_EQ(a8_xlate(d, A8_WIN + 0x40000, &got), 0);
	EXPECT_EQ(got.addr, pa.addr);
	put64(wr, 1);
	get64(rd);
	CHECK_OK(iovm_domain_destroy(d));
	iovm_close(c);
	a8_child_exit();
}

TEST(forked_child_eperm)
{
	g_dom = a8_create(ctx, "fork", NULL);
	void *b = a8_alloc(ctx, A8_K4, A8_K4, 0);
	struct child k = child_start(kid_forked, NULL);
	iovm_pa_t got;

	put64(k.wr, a8_pa(ctx, b).addr);
	get64(k.rd);
	EXPECT_EQ(a8_xlate(g_dom, A8_WIN + 0x40000, &got), 0);
	EXPECT_EQ(got.addr, a8_pa(ctx, b).addr);
	put64(k.wr, 0);
	child_ok(&k);
	a8_unmap(g_dom, A8_WIN + 0x40000, A8_K4);
	struct iovm_domain *x;

	EXPECT_EQ(iovm_share_domain_open(ctx, "fork2", &x), -ENOENT);
	CHECK_OK(iovm_dma_free(ctx, b));
	CHECK_OK(iovm_domain_destroy(g_dom));
	settled("fork");
}

/* Child: map @n pages of its own at the domain's choice, then report stats; unmap what it is told. */
static void kid_stats(int rd, int wr, void *arg)
{
	struct iovm_ctx *c = attach_ok(g_name);
	struct iovm_domain *d = a8_open(c, arg);
	struct iovm_domain_stats st;
	uint64_t cmd;

	while ((cmd = get64(rd)) != 0) {
		if (cmd == 2) {
			uint64_t iova = get64(rd), len = get64(rd);

			put64(wr, (uint64_t)(int64_t)iovm_domain_unmap(d, IOVM_IOVA(iova), len));
			continue;
		}
		if (cmd == 3) {
			iovm_iova_t iova = IOVM_IOVA(get64(rd));
			iovm_pa_t pa = IOVM_PA(get64(rd));

			put64(wr, (uint64_t)(int64_t)iovm_domain_map(d, &iova, pa, A8_K4, A8_RW));
			continue;
		}
		CHECK_OK(iovm_domain_stats(d, &st));
		put64(wr, st.iova_allocated);
		put64(wr, st.iova_free);
		put64(wr, st.iova_largest_gap);
	}
	CHECK_OK(iovm_domain_destroy(d));
	iovm_close(c);
}

static void same_stats(struct iovm_domain *d, struct child *k, const char *when)
{
	struct iovm_domain_stats st;

	put64(k->wr, 1);
	uint64_t a = get64(k->rd), f = get64(k->rd), g = get64(k->rd);

	CHECK_OK(iovm_domain_stats(d, &st));
	EXPECT_MSG(st.iova_allocated == a && st.iova_free == f && st.iova_largest_gap == g,
		   "%s: here allocated %llu free %llu gap %llu, there %llu %llu %llu", when,
		   (unsigned long long)st.iova_allocated, (unsigned long long)st.iova_free,
		   (unsigned long long)st.iova_largest_gap, (unsigned long long)a, (unsigned long long)f,
		   (unsigned long long)g);
}

/* Stats agree between views; a range one process unmaps is the other's at once. */
TEST(stats_and_iovas_shared)
{
	struct iovm_domain *d = a8_create(ctx, "stats", NULL);
	struct child k = child_start(kid_stats, "stats");
	struct iovm_domain_stats st0, st;
	uint8_t *b = a8_alloc(ctx, 64 * A8_K4, A8_K4, 0);
	iovm_pa_t pa = a8_pa(ctx, b);
	uint64_t at[8];

	CHECK_OK(iovm_domain_stats(d, &st0));
	EXPECT_EQ(st0.iova_allocated, 0);
	EXPECT_EQ(st0.iova_free, UINT64_C(1) << 30);
	same_stats(d, &k, "empty");
	for (unsigned i = 0; i < 8; i++)
		at[i] = a8_map(d, IOVM_PA(pa.addr + i * A8_K4), (size_t)(i + 1) * A8_K4, IOVM_ADDR_INVALID);
	CHECK_OK(iovm_domain_stats(d, &st));
	EXPECT_EQ(st.iova_allocated, 36 * A8_K4);
	EXPECT_EQ(st.iova_free + st.iova_allocated, st0.iova_free);
	same_stats(d, &k, "8 maps");
	/* The child unmaps a hole in the middle; we map into it at once. */
	put64(k.wr, 2);
	put64(k.wr, at[3]);
	put64(k.wr, 4 * A8_K4);
	EXPECT_EQ((int64_t)get64(k.rd), 0);
	same_stats(d, &k, "after the child's unmap");
	CHECK_EQ(a8_map(d, pa, 4 * A8_K4, at[3]), at[3]);
	/* The child maps at an IOVA we unmapped: at once too. */
	a8_unmap(d, at[7], 8 * A8_K4);
	put64(k.wr, 3);
	put64(k.wr, at[7]);
	put64(k.wr, pa.addr);
	EXPECT_EQ((int64_t)get64(k.rd), 0);
	EXPECT_EQ(a8_xlate(d, at[7], NULL), 0);
	/* Its second map there collides. */
	put64(k.wr, 3);
	put64(k.wr, at[7]);
	put64(k.wr, pa.addr);
	EXPECT_EQ((int64_t)get64(k.rd), -EEXIST);
	same_stats(d, &k, "after the child's map");
	for (unsigned i = 0; i < 7; i++)
		a8_unmap(d, at[i], (size_t)(i + 1) * A8_K4);
	a8_unmap(d, at[7], A8_K4);
	CHECK_OK(iovm_domain_stats(d, &st));
	EXPECT_EQ(st.iova_allocated, 0);
	EXPECT_EQ(st.iova_largest_gap, st0.iova_largest_gap);
	same_stats(d, &k, "all unmapped");
	put64(k.wr, 0);
	child_ok(&k);
	CHECK_OK(iovm_dma_free(ctx, b));
	CHECK_OK(iovm_domain_destroy(d));
	settled("stats");
}

/* Child: own the share named @arg, make domain "own", map a block of its own, wait. */
static void kid_owner(int rd, int wr, void *arg)
{
	struct iovm_ctx *c = share_ok(arg, HEAP);
	struct iovm_domain *d = a8_create(c, "own", NULL);
	uint8_t *b = a8_alloc(c, 2 * A8_K4, A8_K4, 0);
	uint64_t iova = a8_map(d, a8_pa(c, b), 2 * A8_K4, IOVM_ADDR_INVALID);

	memset(b, 0x71, 2 * A8_K4);
	put64(wr, a8_pa(c, b).addr);
	put64(wr, iova);
	get64(rd);
	for (;;)
		pause();
}

/* The owner dies with its block mapped; the survivor reaps, finds it held, unmaps. */
TEST(owner_dies_mapped)
{
	const char *name = share_name("a8own");
	struct child o = child_start(kid_owner, (void *)name);
	iovm_pa_t pa = IOVM_PA(get64(o.rd));
	uint64_t iova = get64(o.rd);
	struct iovm_ctx *c = attach_ok(name);
	struct iovm_domain *d = a8_open(c, "own");
	uint64_t f0 = share_info(c).heap_free;

	put64(o.wr, 0);
	child_kill(&o);
	EXPECT_EQ(iovm_share_reap(c), 1);
	struct iovm_share_info in = share_info(c);

	EXPECT_MSG(in.domain_held >= 2 * A8_K4, "the owner's mapped block: domain_held %llu",
		   (unsigned long long)in.domain_held);
	EXPECT_EQ(in.heap_free, f0);
	EXPECT_SOUND(c);
	uint8_t *b = iovm_dma_ptr(c, pa);

	CHECK(b != NULL);
	EXPECT(all_bytes(b, 2 * A8_K4, 0x71));
	void *v = a8_alloc(c, 2 * A8_K4, A8_K4, 0);

	EXPECT(!a8_overlap(a8_pa(c, v).addr, 2 * A8_K4, pa.addr, 2 * A8_K4));
	CHECK_OK(iovm_dma_free(c, v));
	uint64_t f1 = share_info(c).heap_free, h1 = share_info(c).domain_held;

	a8_unmap(d, iova, 2 * A8_K4);
	EXPECT_EQ(share_info(c).domain_held, 0);
	EXPECT_EQ(share_info(c).heap_free, f1 + h1);
	CHECK_OK(iovm_domain_destroy(d));
	EXPECT_EQ(iovm_share_domain_open(c, "own", &d), -ENOENT);
	in = share_info(c);
	EXPECT_EQ(in.heap_free, in.heap_size);
	EXPECT_EQ(in.blocks, 0);
	EXPECT_SOUND(c);
	iovm_close(c);
}

int main(void)
{
	a8_init();
	g_name = share_name("a8procs");
	ctx = share_ok(g_name, HEAP);
	base_free = a8_free(ctx);
	base_blocks = share_info(ctx).blocks;

	RUN(free_here_unmap_there);
	RUN(killed_with_mapping);
	RUN(last_view_killed);
	RUN(forked_child_eperm);
	RUN(stats_and_iovas_shared);
	RUN(owner_dies_mapped);

	iovm_close(ctx);
	return a8_status();
}
