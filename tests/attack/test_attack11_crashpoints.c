/* SPDX-License-Identifier: MIT */
/*
 * test_attack11_crashpoints.c - the flush (or strict unmap) that claims a
 * dead process's recorded unmaps, itself killed at each of its stores
 * (the library's crash countdown, as tests/mp/test_mp_domain_held.c uses
 * it on the unmapping process): a third process (the survivor) must then
 * finish the job. iovm/mp.h: freed exactly once (the survivor's own
 * mapping of the same block keeps its hold to the byte throughout), a
 * release killed mid-step is resumed and takes that step once, and what
 * stays until the domain goes is nothing, also when the claimer dies in
 * its own unmap: that unmap records each piece before it clears it, so
 * that what it had not recorded is still mapped (the survivor unmaps it)
 * and what it had is the survivor's to clear and free. (Before releases
 * counted half-steps, a page stayed per release killed mid-step, and
 * attack11_orphans saw it now and then; before unmaps recorded first, a
 * piece stayed per claimer killed between clearing and recording.)
 */
#include "mp/mp_internal.h" /* mp_crash_countdown */
#include "attack11.h"

#ifdef IOVM_DEBUG_CHECKS

#define NP 8
#define BLOCK (NP * A11_PAGE)
#define DEAD_EXTRA 24 /* more one-page unmaps the first dead one leaves recorded */

static unsigned long g_countdown;
static bool g_deferred;

/*
 * The claimer: its own unmap of @arg pages of the block (0: none), then,
 * deferred, a flush; armed to die at the g_countdown-th crash point.
 */
static void claimer(int rd, int wr, void *arg)
{
	unsigned own = (unsigned)(uintptr_t)arg;
	struct iovm_domain *dom;
	struct iovm_ctx *ctx = a11_attach(&dom);
	uint64_t pa = get64(rd), iova = 0;

	(void)ctx;
	if (own)
		iova = a11_map_pa(dom, pa + 4 * A11_PAGE, own * A11_PAGE);
	put64(wr, iova | 1); /* 4 KiB aligned: the low bit says it is ready */
	(void)get64(rd);
	mp_crash_countdown = g_countdown;
	if (own)
		CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(iova), own * A11_PAGE));
	if (g_deferred)
		CHECK_OK(iovm_domain_flush(dom));
	mp_crash_countdown = 0;
	put64(wr, 2); /* lived through it */
	pause();
}

struct tally {
	unsigned long points, left, left_both;
};

/* One point: returns whether the claimer lived through its call. */
static bool one_point(unsigned long n, unsigned own, struct tally *t)
{
	struct iovm_share_domain_params p =
		a11_params(g_deferred ? IOVM_DOMAIN_DEFERRED : 0, 4096, A11_NEVER);
	uint64_t iova_b, mine, iova_left, held_left, theirs;
	struct iovm_domain *dom;
	struct iovm_ctx *ctx;
	struct child b, s, c;
	uint8_t *buf, *other;
	uint64_t said;
	bool lived;

	ctx = a11_share("a11-crash", &p, &dom);
	buf = iovm_dma_alloc(ctx, BLOCK, 4096, 0);
	other = iovm_dma_alloc(ctx, A11_PAGE, 4096, 0);
	CHECK(buf && other);
	mine = a11_map_pa(dom, a11_pa(ctx, buf), A11_PAGE);
	/* The claimer first (its own mapping made while the block is allocated), armed later. */
	g_countdown = n;
	c = child_start(claimer, (void *)(uintptr_t)own);
	put64(c.wr, a11_pa(ctx, buf));
	theirs = get64(c.rd);
	CHECK_EQ(theirs & 1, 1);
	theirs &= ~UINT64_C(1);
	b = a11_agent();
	iova_b = a11_cmd(&b, A11_MAP, a11_pa(ctx, buf), BLOCK, 0);
	if (g_deferred)
		(void)a11_cmd(&b, A11_QUEUE, a11_pa(ctx, buf) + 2 * A11_PAGE, A11_PAGE, DEAD_EXTRA);
	CHECK_OK(iovm_dma_free(ctx, buf));
	/* The first dead one: its 8 pages recorded (queued, or cleared and waiting for the stopped s). */
	if (g_deferred) {
		CHECK_EQ(a11_cmd(&b, A11_UNMAP, iova_b, BLOCK, 0), 0);
		child_kill(&b);
	} else {
		s = a11_agent();
		a11_stop(&s);
		a11_send(&b, A11_UNMAP, iova_b, BLOCK, 0);
		WAIT_UNTIL(a11_leaves(dom) == 1 + own);
		a11_nap(5);
		child_kill(&b);
		child_kill(&s);
	}
	a11_reaped(ctx, 2);
	CHECK_EQ(a11_held(ctx), BLOCK);
	lived = child_go_lives(&c, n, &said);
	a11_reaped(ctx, 1);
	CHECK_MSG(iovm_share_check(ctx) == 0, "point %lu: %s", n, iovm_error_detail());
	/* The survivor finishes the job. */
	{
		uint64_t i2 = a11_map_pa(dom, a11_pa(ctx, other), A11_PAGE);

		CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(i2), A11_PAGE));
		CHECK_OK(iovm_domain_flush(dom));
	}
	/* Never freed twice: the survivor's mapping holds the block, to the byte. */
	CHECK_MSG(a11_held(ctx) == BLOCK, "point %lu: held %llu while the survivor maps the block", n,
		  (unsigned long long)a11_held(ctx));
	CHECK_MSG(iovm_share_check(ctx) == 0, "point %lu: %s", n, iovm_error_detail());
	CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(mine), A11_PAGE));
	/* What the claimer's own unmap had not recorded is still mapped: the survivor unmaps it. */
	if (own && a11_leaves(dom)) {
		CHECK_MSG(a11_leaves(dom) == own, "point %lu: %llu leaves, the claimer mapped %u", n,
			  (unsigned long long)a11_leaves(dom), own);
		CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(theirs), own * A11_PAGE));
	}
	CHECK_OK(iovm_domain_flush(dom));
	CHECK_EQ(a11_leaves(dom), 0);
	iova_left = a11_iova(dom);
	held_left = a11_held(ctx);
	/* Nothing: each piece was mapped, or recorded and freed by the survivor. */
	CHECK_MSG(iova_left == 0, "point %lu: %llu bytes of IOVA left", n, (unsigned long long)iova_left);
	CHECK_MSG(held_left == 0, "point %lu: held %llu", n, (unsigned long long)held_left);
	t->left += iova_left || held_left;
	t->left_both += iova_left && held_left;
	CHECK_OK(iovm_dma_free(ctx, other));
	a11_end(ctx, dom);
	return lived;
}

static void every_point(bool deferred, unsigned own)
{
	struct tally t = { 0, 0, 0 };
	unsigned long n;

	g_deferred = deferred;
	for (n = 1;; n++) {
		if (one_point(n, own, &t))
			break;
		CHECK_MSG(n < 20000, "the claimer never lived through its call");
	}
	printf("# %s claimer%s killed at each of its %lu crash points: something left to the domain's end at %lu "
	       "(hold and IOVA both at %lu)\n",
	       deferred ? "a deferred" : "a strict", own ? " with its own unmap" : "", n - 1, t.left, t.left_both);
	CHECK(n > 2);
	CHECK_EQ(t.left, 0);
}

TEST(a_deferred_claimer_killed_at_each_point)
{
	every_point(true, 0);
	every_point(true, 2);
}

TEST(a_strict_claimer_killed_at_each_point)
{
	every_point(false, 2);
}

int main(void)
{
	test_init();
	a11_watchdog(290);
	RUN(a_deferred_claimer_killed_at_each_point);
	RUN(a_strict_claimer_killed_at_each_point);
	return 0;
}

#else

int main(void)
{
	printf("# SKIP: crash points exist only in builds with debug checks\n");
	return TEST_SKIP;
}

#endif
