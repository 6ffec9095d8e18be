/* SPDX-License-Identifier: MIT */
/*
 * test_attack11_storm.c - processes mapping and unmapping in a shared
 * domain (deferred, with their own flushes now and then; or strict)
 * killed at random moments, one after another, each replaced by a new one
 * (its slot reused), while the survivor flushes in a loop of its own. The
 * heap is sound after every death (iovm_share_check()); at the end the
 * survivor unmaps whatever the dead left mapped (found by translating
 * the window) and flushes: what stays is within iovm/mp.h's bound (a few
 * pages per process killed), its own mapping's block is held to the byte
 * throughout, and the domain's end leaves the heap whole.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "attack11.h"

#define NW 4
#define ROUNDS 24
#define NPAGES 8
#define BLOCK (NPAGES * A11_PAGE)
#define WINDOW (UINT64_C(64) << 20) /* IOVA space: small, to translate it whole */
#define BASE (UINT64_C(4) << 30)

static atomic_bool g_stop;
static struct iovm_domain *g_dom;
static atomic_ulong g_flushes;

static void *flush_loop(void *arg)
{
	(void)arg;
	while (!atomic_load(&g_stop)) {
		CHECK_OK(iovm_domain_flush(g_dom));
		atomic_fetch_add(&g_flushes, 1);
		a11_nap(1);
	}
	return NULL;
}

/*
 * The pages the window maps, by translation. Not the domain's leaf count:
 * a process killed between clearing an entry and counting it leaves the
 * count one too high (iovm/mp.h says so).
 */
static unsigned mapped_pages(struct iovm_domain *dom)
{
	unsigned n = 0;

	for (uint64_t at = BASE; at < BASE + WINDOW; at += A11_PAGE) {
		iovm_pa_t to;

		n += !iovm_domain_translate(dom, IOVM_IOVA(at), &to, NULL);
	}
	return n;
}

static void storm(bool deferred, bool survivor_flushes)
{
	struct iovm_share_domain_params p = a11_params(deferred ? IOVM_DOMAIN_DEFERRED : 0, 32, 1000);
	uint64_t seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull + deferred, mine, pa, left;
	unsigned kills = 0, stray = 0;
	struct iovm_domain *dom;
	struct iovm_ctx *ctx;
	struct child w[NW];
	pthread_t th;
	uint8_t *buf;

	p.iova_size = WINDOW;
	ctx = a11_share(deferred ? "a11-storm-d" : "a11-storm-s", &p, &dom);
	buf = iovm_dma_alloc(ctx, BLOCK, 4096, 0);
	CHECK(buf != NULL);
	pa = a11_pa(ctx, buf);
	mine = a11_map_pa(dom, pa + (NPAGES - 1) * A11_PAGE, A11_PAGE);
	CHECK_OK(iovm_dma_free(ctx, buf));
	for (int i = 0; i < NW; i++) {
		w[i] = a11_agent();
		a11_send(&w[i], A11_STORM, pa, NPAGES, test_rand(&seed));
	}
	g_dom = dom;
	atomic_store(&g_stop, false);
	if (survivor_flushes)
		CHECK_OK(pthread_create(&th, NULL, flush_loop, NULL));
	for (int r = 0; r < ROUNDS; r++) {
		int i = (int)(test_rand(&seed) % NW);

		a11_nap(1 + (unsigned)(test_rand(&seed) % 15));
		if (getenv("A11_DEBUG"))
			printf("# round %d: iova %llu leaves %llu\n", r, (unsigned long long)a11_iova(dom),
			       (unsigned long long)a11_leaves(dom));
		child_kill(&w[i]);
		kills++;
		a11_reaped(ctx, NW);
		CHECK_MSG(iovm_share_check(ctx) == 0, "round %d: %s", r, iovm_error_detail());
		CHECK_MSG(a11_held(ctx) == BLOCK, "round %d: held %llu, not the block", r,
			  (unsigned long long)a11_held(ctx));
		w[i] = a11_agent();
		a11_send(&w[i], A11_STORM, pa, NPAGES, test_rand(&seed));
	}
	for (int i = 0; i < NW; i++)
		CHECK_OK(kill(w[i].pid, SIGKILL));
	for (int i = 0; i < NW; i++)
		CHECK_EQ(child_wait(&w[i]), -SIGKILL);
	kills += NW;
	atomic_store(&g_stop, true);
	if (survivor_flushes)
		CHECK_OK(pthread_join(th, NULL));
	a11_reaped(ctx, 1);
	CHECK_MSG(iovm_share_check(ctx) == 0, "%s", iovm_error_detail());
	/* What the dead left mapped: unmap it (any process may). */
	for (uint64_t at = BASE; at < BASE + WINDOW; at += A11_PAGE) {
		iovm_pa_t to;
		uint32_t perm;

		if (at == mine || iovm_domain_translate(dom, IOVM_IOVA(at), &to, &perm))
			continue;
		CHECK(to.addr >= pa && to.addr < pa + BLOCK);
		CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(at), A11_PAGE));
		stray++;
	}
	CHECK_OK(iovm_domain_flush(dom));
	/* One page (and at most one more being unmapped) per process killed mid-map. */
	CHECK_MSG(stray <= 2 * kills, "%u pages left mapped by %u dead", stray, kills);
	CHECK_EQ(mapped_pages(dom), 1);
	CHECK(a11_leaves(dom) >= 1);
	CHECK_MSG(a11_held(ctx) == BLOCK, "held %llu, not the block the survivor maps", (unsigned long long)a11_held(ctx));
	left = a11_iova(dom) - A11_PAGE;
	CHECK_MSG(left <= kills * 4 * A11_PAGE, "%llu bytes of IOVA left by %u dead", (unsigned long long)left, kills);
	CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(mine), A11_PAGE));
	CHECK_OK(iovm_domain_flush(dom));
	CHECK_EQ(mapped_pages(dom), 0);
	printf("# %s%s: %u killed, %u pages left mapped, then %llu bytes of IOVA and %llu held left to the domain's "
	       "end; %lu flushes of the survivor's loop\n",
	       deferred ? "deferred" : "strict", survivor_flushes ? ", the survivor flushing" : "", kills, stray,
	       (unsigned long long)a11_iova(dom), (unsigned long long)a11_held(ctx), atomic_load(&g_flushes));
	CHECK(a11_held(ctx) == 0 || a11_held(ctx) == BLOCK);
	a11_end(ctx, dom);
}

TEST(deferred_storm_with_kills)
{
	storm(true, true);
	storm(true, false);
}

TEST(strict_storm_with_kills)
{
	storm(false, false);
	storm(false, true);
}

int main(void)
{
	test_init();
	a11_watchdog(280);
	RUN(deferred_storm_with_kills);
	RUN(strict_storm_with_kills);
	return 0;
}
