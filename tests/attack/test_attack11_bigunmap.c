/* SPDX-License-Identifier: MIT */
/*
 * test_attack11_bigunmap.c - one unmap call that clears more pieces than
 * the journal holds (iovm/mp.h: "at least 1024, at most 16384 pieces"):
 * N pages, each its own 4 KiB block (freed while mapped: held), mapped
 * at consecutive IOVAs, unmapped by another process in one call, strict
 * or deferred (which then finds no room and is flushed at once), and
 * killed while a third process, stopped, has not answered. mp.h: every
 * unmap in flight is recorded, before its entries are cleared (a release
 * killed mid-step is resumed). So the survivor's next strict unmap (or
 * flush) must free everything that is no longer mapped.
 *
 * This round found that beyond the journal's room the pieces were not
 * recorded, and stayed held and taken until the domain went (about 1000
 * pages). Fixed since: an unmap of more than 256 leaves goes in parts,
 * each invalidated before the next is cleared, so that what the dead one
 * had not cleared is still mapped (held and taken for that, as any
 * mapping), and nothing beyond it is left. The domain's end always
 * leaves the heap whole.
 */
#include "attack11.h"

#define MAXN 3072
#define BASE ((UINT64_C(4) << 30) + (UINT64_C(1) << 20))

static void *g_blk[MAXN];

struct result {
	uint64_t held, iova; /* left after the survivor's trigger */
};

static struct result big_unmap_killed(bool deferred, unsigned n)
{
	struct iovm_share_domain_params p = a11_params(deferred ? IOVM_DOMAIN_DEFERRED : 0, 0, 0);
	struct iovm_domain *dom;
	struct iovm_ctx *ctx;
	struct child a, s;
	struct result r;
	uint64_t mapped;
	uint8_t *other;

	CHECK(n <= MAXN);
	p.iova_size = UINT64_C(64) << 20; /* room for 3072 pages; a small oracle shadow, so that they fit the heap */
	p.tables = 256;
	ctx = a11_share("a11-big", &p, &dom);
	for (unsigned i = 0; i < n; i++) {
		iovm_iova_t at = IOVM_IOVA(BASE + (uint64_t)i * A11_PAGE);

		g_blk[i] = iovm_dma_alloc(ctx, A11_PAGE, 4096, 0);
		CHECK(g_blk[i] != NULL);
		CHECK_OK(iovm_domain_map(dom, &at, IOVM_PA(a11_pa(ctx, g_blk[i])), A11_PAGE, IOVM_MAP_READ));
	}
	for (unsigned i = 0; i < n; i++)
		CHECK_OK(iovm_dma_free(ctx, g_blk[i]));
	CHECK_EQ(a11_held(ctx), (uint64_t)n * A11_PAGE);
	other = iovm_dma_alloc(ctx, A11_PAGE, 4096, 0);
	CHECK(other != NULL);
	a = a11_agent();
	s = a11_agent();
	a11_stop(&s);
	a11_send(&a, A11_UNMAP, BASE, (uint64_t)n * A11_PAGE, 0);
	/*
	 * Cleared as far as it goes before it waits for the stopped one: all of
	 * it (a deferred unmap, which then flushes), or its first part (a strict
	 * one goes in parts of at most 256 leaves, each invalidated before the
	 * next is cleared). Seen still for a while: it waits.
	 */
	WAIT_UNTIL(a11_leaves(dom) < n);
	for (uint64_t seen = UINT64_MAX; seen != a11_leaves(dom);) {
		seen = a11_leaves(dom);
		a11_nap(30);
	}
	CHECK_MSG(!a11_said(a.rd), "the unmap returned while a process with the domain open was stopped");
	child_kill(&a);
	a11_cont(&s);
	a11_reaped(ctx, 2);
	CHECK_MSG(iovm_share_check(ctx) == 0, "%s", iovm_error_detail());
	/* The survivor's strict unmap (and flush). */
	{
		uint64_t iova = a11_map_pa(dom, a11_pa(ctx, other), A11_PAGE);

		CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(iova), A11_PAGE));
		CHECK_OK(iovm_domain_flush(dom));
	}
	/* What the dead one had not cleared yet is still mapped: held and taken for that, as any mapping. */
	mapped = a11_leaves(dom) * A11_PAGE;
	r.held = a11_held(ctx) - mapped;
	r.iova = a11_iova(dom) - mapped;
	printf("# %s unmap of %u pieces killed waiting, %llu still mapped: %llu pages held and %llu of IOVA taken "
	       "beyond them after the trigger\n",
	       deferred ? "a deferred" : "a strict", n, (unsigned long long)(mapped / A11_PAGE),
	       (unsigned long long)(r.held / A11_PAGE), (unsigned long long)(r.iova / A11_PAGE));
	a11_agent_close(&s);
	CHECK_OK(iovm_dma_free(ctx, other));
	a11_end(ctx, dom); /* the domain's end: held 0, the heap whole */
	return r;
}

/* Within the journal's room (strict: 1024 at least; deferred, batch 256: 2048): all freed. */
TEST(within_the_journal_all_is_freed)
{
	struct result r;

	r = big_unmap_killed(false, 900);
	CHECK_EQ(r.held, 0);
	CHECK_EQ(r.iova, 0);
	r = big_unmap_killed(true, 1000);
	CHECK_EQ(r.held, 0);
	CHECK_EQ(r.iova, 0);
}

/* Both kinds run before the one check, so that each one's leftover is printed. */
TEST(beyond_the_journal)
{
	struct result st = big_unmap_killed(false, 2048), df = big_unmap_killed(true, 3072);

	CHECK_MSG(st.held == 0 && st.iova == 0 && df.held == 0 && df.iova == 0,
		  "one unmap killed while a process had not answered leaves held/taken until the domain goes: "
		  "strict (2048 pieces) %llu/%llu bytes, deferred (3072 pieces) %llu/%llu bytes (mp.h: nothing)",
		  (unsigned long long)st.held, (unsigned long long)st.iova, (unsigned long long)df.held,
		  (unsigned long long)df.iova);
}

int main(void)
{
	test_init();
	a11_watchdog(280);
	RUN(within_the_journal_all_is_freed);
	RUN(beyond_the_journal);
	return 0;
}
