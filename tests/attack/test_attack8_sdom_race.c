/* SPDX-License-Identifier: MIT */
/*
 * test_attack8_sdom_race.c - shared domains under races between
 * processes: a free racing the last unmap of the same block, threads of
 * several processes mapping, unmapping and freeing at once, a strict
 * unmap racing a device's fills in another process, and processes killed
 * in the middle of all that. The accounting must come out exact.
 */
#include "attack/attack8_sdom.h"

#define HEAP (UINT64_C(32) << 20)

static const char *g_name;
static struct iovm_ctx *ctx;
static uint64_t base_free, base_blocks;

/* Rendezvous with the children, in memory mapped before they are forked. */
struct shm {
	_Atomic uint64_t go, done, stop;
	_Atomic uint64_t pa;
	_Atomic int64_t ret;
	_Atomic uint64_t fills, faults;
};
static struct shm *sh;

/* Nothing held, the heap back where the test began, and sound. */
#define settled(when) a8_settled(ctx, base_free, base_blocks, (when))

#define SPIN_UNTIL(cond) WAIT_UNTIL(cond)

/* Child: at each go, free the block at sh->pa. */
static void kid_freer(int rd, int wr, void *arg)
{
	struct iovm_ctx *c = attach_ok(g_name);
	uint64_t round = 0;

	(void)rd, (void)wr, (void)arg;
	for (;;) {
		while (atomic_load(&sh->go) == round)
			if (atomic_load(&sh->stop))
				goto out;
		round = atomic_load(&sh->go);
		void *p = iovm_dma_ptr(c, IOVM_PA(atomic_load(&sh->pa)));

		atomic_store(&sh->ret, p ? iovm_dma_free(c, p) : -ENOENT);
		atomic_store(&sh->done, round);
	}
out:
	iovm_close(c);
}

/* A free in one process against the last unmap in another, 400 times. */
TEST(free_races_last_unmap)
{
	static const size_t sizes[] = { 64, 256, 4096, 3 * 4096 };
	struct iovm_domain *d = a8_create(ctx, "fr", NULL);
	uint64_t f0 = a8_free(ctx), bad = 0;
	struct child k;

	memset(sh, 0, sizeof(*sh));
	k = child_start(kid_freer, NULL);
	for (uint64_t r = 1; r <= 400; r++) {
		size_t sz = sizes[r % 4];
		void *b = a8_alloc(ctx, sz, 0, 0);
		iovm_pa_t pa = a8_pa(ctx, b);
		uint64_t pg = pa.addr & ~(A8_K4 - 1), len = ((pa.addr + sz + A8_K4 - 1) & ~(A8_K4 - 1)) - pg;
		uint64_t iova = a8_map(d, IOVM_PA(pg), len, IOVM_ADDR_INVALID);

		atomic_store(&sh->pa, pa.addr);
		atomic_store(&sh->go, r);
		a8_unmap(d, iova, len);
		SPIN_UNTIL(atomic_load(&sh->done) == r);
		EXPECT_EQ(atomic_load(&sh->ret), 0);
		struct iovm_share_info in = share_info(ctx);

		if (in.domain_held || in.heap_free != f0) {
			if (!bad++)
				EXPECT_MSG(0, "round %llu (%zu bytes): after free and unmap, domain_held %llu heap_free %llu (was %llu)",
					   (unsigned long long)r, sz, (unsigned long long)in.domain_held,
					   (unsigned long long)in.heap_free, (unsigned long long)f0);
		}
	}
	EXPECT_MSG(bad == 0, "%llu of 400 rounds left the accounting wrong", (unsigned long long)bad);
	atomic_store(&sh->stop, 1);
	child_ok(&k);
	CHECK_OK(iovm_domain_destroy(d));
	settled("free vs unmap");
}

/* Child: two threads, each a loop of alloc, map (twice, once by pages), free and unmap in either order. */
static struct iovm_ctx *kctx;
static struct iovm_domain *kdom;

static void *churn(void *arg)
{
	uint64_t seed = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;

	for (unsigned i = 0; i < 300; i++) {
		size_t sz = 64 + test_rand(&seed) % 16384;
		uint8_t *b = iovm_dma_alloc(kctx, sz, 0, test_rand(&seed) % 4 == 0 ? IOVM_DMA_KEEP : 0);

		if (!b)
			continue;
		iovm_pa_t pa = a8_pa(kctx, b);
		uint64_t pg = pa.addr & ~(A8_K4 - 1), len = ((pa.addr + sz + A8_K4 - 1) & ~(A8_K4 - 1)) - pg;
		iovm_iova_t i1 = IOVM_IOVA_ANY, i2 = IOVM_IOVA_ANY;
		iovm_pa_t pages[8];
		unsigned np = (unsigned)(len / A8_K4) > 8 ? 8 : (unsigned)(len / A8_K4);

		for (unsigned j = 0; j < np; j++)
			pages[np - 1 - j] = IOVM_PA(pg + j * A8_K4);
		CHECK_OK(iovm_domain_map(kdom, &i1, IOVM_PA(pg), len, A8_RW));
		CHECK_OK(iovm_domain_map_pages(kdom, &i2, pages, np, A8_RW));
		switch (test_rand(&seed) % 3) {
		case 0:
			CHECK_OK(iovm_dma_free(kctx, b));
			CHECK_OK(iovm_domain_unmap(kdom, i1, len));
			CHECK_OK(iovm_domain_unmap(kdom, i2, np * A8_K4));
			break;
		case 1:
			CHECK_OK(iovm_domain_unmap(kdom, i2, np * A8_K4));
			CHECK_OK(iovm_dma_free(kctx, b));
			EXPECT_EQ(iovm_dma_free(kctx, b), -EINVAL);
			CHECK_OK(iovm_domain_unmap(kdom, i1, len));
			break;
		default:
			CHECK_OK(iovm_domain_unmap(kdom, i1, len));
			CHECK_OK(iovm_domain_unmap(kdom, i2, np * A8_K4));
			CHECK_OK(iovm_dma_free(kctx, b));
		}
	}
	return NULL;
}

static void kid_churn(int rd, int wr, void *arg)
{
	pthread_t t[2];

	(void)rd, (void)wr;
	kctx = attach_ok(g_name);
	kdom = a8_open(kctx, "churn");
	for (uintptr_t i = 0; i < 2; i++)
		CHECK(pthread_create(&t[i], NULL, churn, (void *)((uintptr_t)arg * 2 + i)) == 0);
	for (unsigned i = 0; i < 2; i++)
		CHECK(pthread_join(t[i], NULL) == 0);
	CHECK_OK(iovm_domain_destroy(kdom));
	iovm_close(kctx);
	a8_child_exit();
}

TEST(churn_many_processes)
{
	struct iovm_domain *d = a8_create(ctx, "churn", NULL);
	struct child k[4];
	struct iovm_domain_stats st;

	for (uintptr_t i = 0; i < 4; i++)
		k[i] = child_start(kid_churn, (void *)(i + 1));
	for (unsigned i = 0; i < 4; i++)
		child_ok(&k[i]);
	CHECK_OK(iovm_domain_stats(d, &st));
	EXPECT_EQ(st.iova_allocated, 0);
	EXPECT_EQ(st.leaves_4k + st.leaves_2m + st.leaves_1g, 0);
	CHECK_OK(iovm_domain_destroy(d));
	settled("churn");
}

/* Child: fill IOVA @arg through its device, over and over, until stopped. */
static void kid_filler(int rd, int wr, void *arg)
{
	struct iovm_ctx *c = attach_ok(g_name);
	struct iovm_domain *d = a8_open(c, "fill");
	struct devq dq = devq_open(c, d);
	uint64_t iova = (uint64_t)(uintptr_t)arg;

	(void)rd, (void)wr;
	while (!atomic_load(&sh->stop)) {
		uint8_t s = devq_fill(&dq, iova, 4 * A8_K4, 0xee);

		if (s != IOVM_STATUS_SUCCESS)
			atomic_fetch_add(&sh->faults, 1);
		atomic_fetch_add(&sh->fills, 1);
	}
	devq_close(&dq);
	CHECK_OK(iovm_domain_destroy(d));
	iovm_close(c);
}

/* A strict unmap in one process against a device filling in another: after it returns, no write lands. */
TEST(unmap_races_device_fill)
{
	struct iovm_domain *d = a8_create(ctx, "fill", NULL);
	uint64_t at = A8_WIN + 16 * A8_M2;
	uint8_t *b = a8_alloc(ctx, 4 * A8_K4, A8_K4, 0);
	iovm_pa_t pa = a8_pa(ctx, b);
	unsigned late = 0;
	struct child k;

	memset(sh, 0, sizeof(*sh));
	k = child_start(kid_filler, (void *)(uintptr_t)at);
	for (unsigned r = 0; r < 60; r++) {
		uint64_t n;

		CHECK_EQ(a8_map(d, pa, 4 * A8_K4, at), at);
		n = atomic_load(&sh->fills);
		SPIN_UNTIL(atomic_load(&sh->fills) >= n + 2);
		a8_unmap(d, at, 4 * A8_K4);
		memset(b, 0x11, 4 * A8_K4);
		n = atomic_load(&sh->fills);
		SPIN_UNTIL(atomic_load(&sh->fills) >= n + 2);
		if (!all_bytes(b, 4 * A8_K4, 0x11))
			late++;
		/* Freed while the device goes on faulting: an ordinary free. */
		if (r == 59) {
			uint64_t f = a8_free(ctx);

			CHECK_OK(iovm_dma_free(ctx, b));
			EXPECT_EQ(a8_held(ctx), 0);
			EXPECT(a8_free(ctx) > f);
		}
	}
	EXPECT_MSG(late == 0, "%u of 60 rounds: the device wrote after the strict unmap returned", late);
	EXPECT(atomic_load(&sh->faults) > 0);
	atomic_store(&sh->stop, 1);
	child_ok(&k);
	CHECK_OK(iovm_domain_destroy(d));
	settled("unmap vs fill");
}

static unsigned g_slot; /* the child's own 8 MiB of IOVA: overlapping maps are the caller's to serialize */

/* Child: loop alloc, map at a fixed IOVA, free while mapped, unmap; until killed. */
static void kid_cycle(int rd, int wr, void *arg)
{
	struct iovm_ctx *c = attach_ok(g_name);
	struct iovm_domain *d = a8_open(c, arg);
	uint64_t seed = (uint64_t)getpid();

	(void)rd;
	put64(wr, 1);
	for (uint64_t i = 0;; i++) {
		size_t sz = 64 + test_rand(&seed) % 20000;
		uint8_t *b = iovm_dma_alloc(c, sz, 0, 0);

		if (!b)
			continue;
		iovm_pa_t pa = a8_pa(c, b);
		uint64_t pg = pa.addr & ~(A8_K4 - 1), len = ((pa.addr + sz + A8_K4 - 1) & ~(A8_K4 - 1)) - pg;
		iovm_iova_t io = IOVM_IOVA(A8_WIN + (g_slot * 8 + i % 8) * (UINT64_C(1) << 20));

		if (iovm_domain_map(d, &io, IOVM_PA(pg), len, A8_RW)) {
			iovm_dma_free(c, b);
			continue;
		}
		if (i % 2) {
			iovm_dma_free(c, b);
			iovm_domain_unmap(d, io, len);
		} else {
			iovm_domain_unmap(d, io, len);
			iovm_dma_free(c, b);
		}
		atomic_fetch_add(&sh->fills, 1);
	}
}

/* Processes killed at random points of that loop; the last view's end must free all. */
TEST(killed_mid_cycle)
{
	uint64_t seed = 12345;
	unsigned held_rounds = 0, said = 0;

	memset(sh, 0, sizeof(*sh));
	for (unsigned r = 0; r < 25; r++) {
		char nm[16];
		struct child k[3];
		uint64_t reaped0 = share_info(ctx).reaped;

		snprintf(nm, sizeof(nm), "cyc%u", r);
		struct iovm_domain *d = a8_create(ctx, nm, NULL);

		for (unsigned i = 0; i < 3; i++) {
			g_slot = i;
			k[i] = child_start(kid_cycle, nm);
			get64(k[i].rd);
		}
		uint64_t n = atomic_load(&sh->fills) + test_rand(&seed) % 200;

		SPIN_UNTIL(atomic_load(&sh->fills) >= n);
		for (unsigned i = 0; i < 3; i++)
			child_kill(&k[i]);
		WAIT_UNTIL(share_info(ctx).reaped >= reaped0 + 3);
		EXPECT_SOUND(ctx);
		/* Unmap whatever they left; then close the last view. */
		for (unsigned i = 0; i < 24; i++) {
			int ur = iovm_domain_unmap(d, IOVM_IOVA(A8_WIN + i * (UINT64_C(1) << 20)), UINT64_C(1) << 20);

			EXPECT(ur == 0 || ur == -ENOENT);
		}
		/* A strict unmap still goes through: no post was left behind by the dead. */
		void *pb = a8_alloc(ctx, A8_K4, A8_K4, 0);
		uint64_t pio = a8_map(d, a8_pa(ctx, pb), A8_K4, IOVM_ADDR_INVALID);

		a8_unmap(d, pio, A8_K4);
		struct iovm_domain_stats dst;
		struct iovm_share_info in = share_info(ctx);

		CHECK_OK(iovm_domain_stats(d, &dst));
		/*
		 * Held with nothing mapped: what a process killed inside an unmap
		 * leaves until the next unmap (iovm/mp.h says so since this test
		 * found it; the survivor's just above is the next), or, where it
		 * had not recorded it yet, until the domain goes: the end below
		 * frees all.
		 */
		if (in.domain_held)
			held_rounds++;
		if (in.domain_held && !said++)
			printf("# round %u: nothing mapped (%llu leaves), domain_held %llu (iova_allocated %llu)\n", r,
			       (unsigned long long)(dst.leaves_4k + dst.leaves_2m), (unsigned long long)in.domain_held,
			       (unsigned long long)dst.iova_allocated);
		CHECK_OK(iovm_dma_free(ctx, pb));
		CHECK_OK(iovm_domain_destroy(d));
		in = share_info(ctx);
		if (in.heap_free != base_free || in.domain_held || in.blocks != base_blocks) {
			settled("killed mid-cycle");
			break;
		}
	}
	printf("# %u of 25 rounds: memory held with nothing mapped, until the domain went\n", held_rounds);
	settled("killed mid-cycle");
}

int main(void)
{
	a8_init();
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(sh != MAP_FAILED);
	g_name = share_name("a8race");
	ctx = share_ok(g_name, HEAP);
	base_free = a8_free(ctx);
	base_blocks = share_info(ctx).blocks;

	RUN(free_races_last_unmap);
	RUN(churn_many_processes);
	RUN(unmap_races_device_fill);
	RUN(killed_mid_cycle);

	iovm_close(ctx);
	return a8_status();
}
