/* SPDX-License-Identifier: MIT */
/*
 * test_attack8_sdom_deaths.c - a process killed in the middle of a strict
 * unmap of a shared domain, made deterministic: a third process with the
 * domain open is stopped (SIGSTOP), so the unmap waits for its answer
 * with the entries cleared; then the unmapping process is killed. What it
 * unmapped is mapped nowhere: this test first expected the block free
 * (iovm/mp.h: "frees it when the last mapping of its pages goes"), and
 * found it held until the domain went. The header now says it is held
 * "until the next strict unmap or flush in any process": the test holds
 * the library to exactly that.
 */
#include "attack/attack8_sdom.h"

#define HEAP (UINT64_C(16) << 20)

static const char *g_name;
static struct iovm_ctx *ctx;
static uint64_t base_free, base_blocks;

/*
 * Whether @pid's main thread sleeps in a futex: the unmap's wait for the
 * stopped view's answer. Cleared entries alone are not enough to kill it
 * on: the unmap records its pieces in the domain's journal just after it
 * clears them, and a kill in between leaves them held until the domain
 * goes (docs/known-gaps.md), not the promise this test holds it to.
 * Seen three times in a row, a millisecond apart: a short wait for the
 * share's lock, before the record, is a futex too.
 */
static bool waits_in_futex(pid_t pid)
{
	for (unsigned seen = 0; seen < 3; seen++) {
		char path[64], wchan[64] = "";
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/task/%d/wchan", (int)pid, (int)pid);
		f = fopen(path, "r");
		if (!f)
			return false;
		if (!fgets(wchan, sizeof(wchan), f))
			wchan[0] = 0;
		fclose(f);
		if (!strstr(wchan, "futex"))
			return false;
		usleep(1000);
	}
	return true;
}

/* Child: open "mid", then wait (it is stopped meanwhile). */
static void kid_staller(int rd, int wr, void *arg)
{
	struct iovm_ctx *c = attach_ok(g_name);
	struct iovm_domain *d = a8_open(c, "mid");

	(void)arg;
	put64(wr, 1);
	get64(rd);
	CHECK_OK(iovm_domain_destroy(d));
	iovm_close(c);
}

/* Child: allocate, map, free it if @arg, say where, then unmap (which waits). */
static void kid_unmapper(int rd, int wr, void *arg)
{
	struct iovm_ctx *c = attach_ok(g_name);
	struct iovm_domain *d = a8_open(c, "mid");
	uint8_t *b = a8_alloc(c, 2 * A8_K4, A8_K4, 0);
	uint64_t iova = a8_map(d, a8_pa(c, b), 2 * A8_K4, IOVM_ADDR_INVALID);

	(void)rd;
	if (arg)
		CHECK_OK(iovm_dma_free(c, b));
	put64(wr, iova);
	iovm_domain_unmap(d, IOVM_IOVA(iova), 2 * A8_K4);
	put64(wr, 2);
	for (;;)
		pause();
}

TEST(killed_mid_unmap)
{
	for (uintptr_t freed = 0; freed < 2; freed++) {
		struct iovm_domain *d = a8_create(ctx, "mid", NULL);
		struct iovm_domain_stats st;
		uint64_t f0 = a8_free(ctx), reaped0 = share_info(ctx).reaped;
		struct child s = child_start(kid_staller, NULL);

		get64(s.rd);
		CHECK(kill(s.pid, SIGSTOP) == 0);
		struct child u = child_start(kid_unmapper, (void *)freed);
		uint64_t iova = get64(u.rd);

		/* Its unmap has cleared the entries and waits for the stopped view. */
		WAIT_UNTIL(a8_xlate(d, iova, NULL) == -ENOENT);
		/* Where the kernel does not say (wchan reads "0"), on after a while, as before. */
		for (unsigned ms = 0; !waits_in_futex(u.pid) && ms < 5000; ms++)
			usleep(1000);
		child_kill(&u);
		WAIT_UNTIL(share_info(ctx).reaped >= reaped0 + 1);
		CHECK(kill(s.pid, SIGCONT) == 0);
		put64(s.wr, 0);
		child_ok(&s);
		CHECK_OK(iovm_domain_stats(d, &st));
		EXPECT_EQ(st.leaves_4k + st.leaves_2m, 0);
		EXPECT_EQ(iovm_domain_unmap(d, IOVM_IOVA(iova), 2 * A8_K4), -ENOENT);
		struct iovm_share_info in = share_info(ctx);

		EXPECT_MSG(in.domain_held == 2 * A8_K4 && in.heap_free == f0 - 2 * A8_K4,
			   "%s block, its process killed mid-unmap: domain_held %llu, heap_free %llu (was %llu): "
			   "held until the next unmap, as the header says, is 8192 and 8192 less",
			   freed ? "a freed" : "an allocated", (unsigned long long)in.domain_held,
			   (unsigned long long)in.heap_free, (unsigned long long)f0);
		CHECK_OK(iovm_domain_stats(d, &st));
		EXPECT_EQ(st.iova_allocated, 2 * A8_K4);
		EXPECT_SOUND(ctx);
		/* A strict unmap still goes through afterwards, and frees what the dead one left. */
		void *pb = a8_alloc(ctx, A8_K4, A8_K4, 0);
		uint64_t pio = a8_map(d, a8_pa(ctx, pb), A8_K4, IOVM_ADDR_INVALID);

		a8_unmap(d, pio, A8_K4);
		in = share_info(ctx);
		EXPECT_MSG(in.domain_held == 0 && in.heap_free == f0 - A8_K4,
			   "after the next unmap: domain_held %llu, heap_free %llu (want %llu)",
			   (unsigned long long)in.domain_held, (unsigned long long)in.heap_free,
			   (unsigned long long)(f0 - A8_K4));
		CHECK_OK(iovm_domain_stats(d, &st));
		EXPECT_EQ(st.iova_allocated, 0);
		CHECK_OK(iovm_dma_free(ctx, pb));
		CHECK_OK(iovm_domain_destroy(d));
		in = share_info(ctx);
		EXPECT_EQ(in.domain_held, 0);
		EXPECT_EQ(in.heap_free, base_free);
		EXPECT_EQ(in.blocks, base_blocks);
	}
}

int main(void)
{
	a8_init();
	g_name = share_name("a8deaths");
	ctx = share_ok(g_name, HEAP);
	base_free = a8_free(ctx);
	base_blocks = share_info(ctx).blocks;

	RUN(killed_mid_unmap);

	iovm_close(ctx);
	return a8_status();
}
