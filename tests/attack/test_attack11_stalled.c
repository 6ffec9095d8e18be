/* SPDX-License-Identifier: MIT */
/*
 * test_attack11_stalled.c - a process killed inside a shared domain's
 * unmap or flush while the other processes have not answered, caught there
 * for sure: a third process that has the domain open is stopped
 * (SIGSTOP), so nobody's post can be answered. The unmapper, or the
 * flusher (one that claims a dead process's orphans too), is killed while
 * it waits. iovm/mp.h: what its entries named stays held and taken until
 * the next strict unmap or flush in any surviving process, which frees it
 * exactly once (the survivor's own mapping of the same block keeps its
 * hold to the byte), and the heap is whole at the end.
 */
#include <pthread.h>

#include "attack11.h"

#define NP 8 /* pages the dying process maps */
#define BLOCK (NP * A11_PAGE)

struct srig {
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	uint8_t *buf;   /* NP pages, freed at once: held while anyone maps them */
	uint64_t pa;
	uint64_t mine;  /* the survivor's own mapping of buf's first page */
	uint8_t *other; /* a page the survivor maps and unmaps to trigger */
};

static void rig_up(struct srig *r, const char *what, uint32_t flags)
{
	struct iovm_share_domain_params p = a11_params(flags, 4096, A11_NEVER);

	r->ctx = a11_share(what, &p, &r->dom);
	r->buf = iovm_dma_alloc(r->ctx, BLOCK, 4096, 0);
	r->other = iovm_dma_alloc(r->ctx, A11_PAGE, 4096, 0);
	CHECK(r->buf && r->other);
	r->pa = a11_pa(r->ctx, r->buf);
	r->mine = a11_map_pa(r->dom, r->pa, A11_PAGE);
}

/* The survivor frees buf while mapped: held, the whole block. */
static void rig_free_buf(struct srig *r)
{
	CHECK_OK(iovm_dma_free(r->ctx, r->buf));
	CHECK_EQ(a11_held(r->ctx), BLOCK);
}

/* A strict unmap or a flush of the survivor's own, with nothing of the dead's. */
static void rig_trigger(struct srig *r, bool deferred, bool by_flush)
{
	if (by_flush) {
		CHECK_OK(iovm_domain_flush(r->dom));
		return;
	}
	uint64_t iova = a11_map_pa(r->dom, a11_pa(r->ctx, r->other), A11_PAGE);

	CHECK_OK(iovm_domain_unmap(r->dom, IOVM_IOVA(iova), A11_PAGE));
	if (deferred)
		CHECK_OK(iovm_domain_flush(r->dom));
}

/* After the trigger: the dead's entries freed, once; the survivor's mapping holds the block still. */
static void rig_down(struct srig *r, bool deferred)
{
	CHECK_MSG(a11_iova(r->dom) == A11_PAGE, "%llu bytes of IOVA taken after the trigger, not the survivor's page",
		  (unsigned long long)a11_iova(r->dom));
	CHECK_MSG(a11_held(r->ctx) == BLOCK, "held %llu after the trigger, not the block the survivor maps",
		  (unsigned long long)a11_held(r->ctx));
	CHECK_MSG(iovm_share_check(r->ctx) == 0, "%s", iovm_error_detail());
	CHECK_OK(iovm_domain_unmap(r->dom, IOVM_IOVA(r->mine), A11_PAGE));
	if (deferred)
		CHECK_OK(iovm_domain_flush(r->dom));
	CHECK_EQ(a11_iova(r->dom), 0);
	CHECK_EQ(a11_held(r->ctx), 0);
	CHECK_EQ(a11_leaves(r->dom), 0);
	CHECK_OK(iovm_dma_free(r->ctx, r->other));
	a11_end(r->ctx, r->dom);
}

/* A third process, fresh: its own strict unmap (and flush, in a deferred domain), or a flush alone. */
static void third_triggers(struct srig *r, bool by_flush)
{
	struct child c = a11_agent();

	if (!by_flush) {
		uint64_t iova = a11_cmd(&c, A11_MAP, a11_pa(r->ctx, r->other), A11_PAGE, 0);

		CHECK_EQ(a11_cmd(&c, A11_UNMAP, iova, A11_PAGE, 0), 0);
	}
	CHECK_EQ(a11_cmd(&c, A11_FLUSH, 0, 0, 0), 0);
	a11_agent_close(&c);
}

enum trigger { BY_MY_UNMAP, BY_MY_FLUSH, BY_THIRD_UNMAP, BY_THIRD_FLUSH };
static const char *const trigger_name[] = { "the survivor's unmap", "the survivor's flush", "a third's unmap",
					    "a third's flush" };

static void trigger(struct srig *r, bool deferred, enum trigger t)
{
	printf("# trigger: %s\n", trigger_name[t]);
	switch (t) {
	case BY_MY_UNMAP:
		rig_trigger(r, deferred, false);
		break;
	case BY_MY_FLUSH:
		rig_trigger(r, deferred, true);
		break;
	case BY_THIRD_UNMAP:
		third_triggers(r, false);
		break;
	case BY_THIRD_FLUSH:
		third_triggers(r, true);
		break;
	}
}

/*
 * The dead one's strict IOVAs go to nobody before the trigger: a map there
 * is -EEXIST, in any process. (Not asked of deferred ones: a map that
 * meets a dead process's queue flushes it first, as iommu.h's
 * "Remapping" says of quarantined IOVAs; test_attack11_devices.c checks
 * that it does invalidate.)
 */
static void still_taken(struct srig *r, uint64_t iova, struct child *s, bool s_alive)
{
	iovm_iova_t at = IOVM_IOVA(iova + A11_PAGE);

	CHECK_EQ(iovm_domain_map(r->dom, &at, IOVM_PA(a11_pa(r->ctx, r->other)), A11_PAGE, IOVM_MAP_READ), -EEXIST);
	if (s_alive)
		CHECK_EQ((int64_t)a11_cmd(s, A11_MAP_AT, a11_pa(r->ctx, r->other), A11_PAGE, iova), -EEXIST);
}

/*
 * Strict: the unmapper clears its entries (the shared table shows it),
 * then waits for the stopped process; killed there. The staller then goes
 * on (or is killed too). The next strict unmap (the survivor's or a third
 * process's) frees the dead one's 8 pages; before it they stay taken and
 * held.
 */
static void strict_killed_waiting(bool staller_dies, enum trigger t)
{
	struct child s, a;
	struct srig r;
	uint64_t iova;

	rig_up(&r, "a11-stall-s", 0);
	s = a11_agent();
	a = a11_agent();
	iova = a11_cmd(&a, A11_MAP, r.pa, BLOCK, 0);
	CHECK_EQ(a11_iova(r.dom), BLOCK + A11_PAGE);
	CHECK_EQ(a11_leaves(r.dom), NP + 1);
	rig_free_buf(&r);
	a11_stop(&s);
	a11_send(&a, A11_UNMAP, iova, BLOCK, 0);
	WAIT_UNTIL(a11_leaves(r.dom) == 1); /* its entries cleared */
	a11_nap(30);
	CHECK_MSG(!a11_said(a.rd), "a strict unmap returned while a process with the domain open was stopped");
	child_kill(&a);
	if (staller_dies)
		child_kill(&s);
	else
		a11_cont(&s);
	a11_reaped(r.ctx, staller_dies ? 1 : 2);
	CHECK_MSG(iovm_share_check(r.ctx) == 0, "%s", iovm_error_detail());
	/* Until the next strict unmap: taken and held. */
	CHECK_EQ(a11_iova(r.dom), BLOCK + A11_PAGE);
	CHECK_EQ(a11_held(r.ctx), BLOCK);
	CHECK_EQ(a11_leaves(r.dom), 1);
	still_taken(&r, iova, &s, !staller_dies);
	if (t == BY_MY_UNMAP) {
		/* Nor does the domain choose them for anyone: 32 maps at any IOVA, none of them there. */
		uint64_t any[32];

		for (int i = 0; i < 32; i++) {
			any[i] = a11_map_pa(r.dom, a11_pa(r.ctx, r.other), A11_PAGE);
			CHECK_MSG(any[i] + A11_PAGE <= iova || any[i] >= iova + BLOCK,
				  "the domain chose IOVA %#llx, which a dead unmap holds", (unsigned long long)any[i]);
		}
		for (int i = 0; i < 32; i++)
			CHECK_OK(iovm_domain_unmap(r.dom, IOVM_IOVA(any[i]), A11_PAGE));
	}
	trigger(&r, false, t);
	if (!staller_dies)
		a11_agent_close(&s);
	rig_down(&r, false);
}

TEST(strict_unmap_killed_while_others_answer)
{
	for (int dies = 0; dies < 2; dies++) {
		strict_killed_waiting(dies, BY_MY_UNMAP);
		strict_killed_waiting(dies, BY_THIRD_UNMAP);
	}
}

/* mp.h: "until the next strict unmap or flush in any process" - in a strict domain too? */
TEST(strict_orphans_freed_by_a_flush)
{
	strict_killed_waiting(false, BY_MY_FLUSH);
	strict_killed_waiting(true, BY_THIRD_FLUSH);
}

/*
 * Deferred: the unmapper queued its 8 pages and flushes; the flush waits
 * for the stopped process; killed there. The next flush (the survivor's,
 * with nothing of its own, or with something; or a third process's) frees
 * them.
 */
static void flush_killed_waiting(bool staller_dies, enum trigger t)
{
	struct child s, a;
	struct srig r;
	uint64_t iova;

	rig_up(&r, "a11-stall-d", IOVM_DOMAIN_DEFERRED);
	s = a11_agent();
	a = a11_agent();
	iova = a11_cmd(&a, A11_MAP, r.pa, BLOCK, 0);
	rig_free_buf(&r);
	CHECK_EQ(a11_cmd(&a, A11_UNMAP, iova, BLOCK, 0), 0);
	CHECK_EQ(a11_cmd(&a, A11_PENDING, 0, 0, 0), 1);
	CHECK_EQ(a11_leaves(r.dom), 1);
	CHECK_EQ(a11_iova(r.dom), BLOCK + A11_PAGE);
	a11_stop(&s);
	a11_send(&a, A11_FLUSH, 0, 0, 0);
	a11_nap(30);
	CHECK_MSG(!a11_said(a.rd), "a flush returned while a process with the domain open was stopped");
	child_kill(&a);
	if (staller_dies)
		child_kill(&s);
	else
		a11_cont(&s);
	a11_reaped(r.ctx, staller_dies ? 1 : 2);
	CHECK_MSG(iovm_share_check(r.ctx) == 0, "%s", iovm_error_detail());
	CHECK_EQ(a11_iova(r.dom), BLOCK + A11_PAGE);
	CHECK_EQ(a11_held(r.ctx), BLOCK);
	trigger(&r, true, t);
	if (!staller_dies)
		a11_agent_close(&s);
	rig_down(&r, true);
}

TEST(deferred_flush_killed_while_others_answer)
{
	for (int dies = 0; dies < 2; dies++)
		for (int t = 0; t < 4; t++)
			flush_killed_waiting(dies, (enum trigger)t);
}

/*
 * The flush that claims a dead process's orphans is killed waiting for
 * the stopped one: a third process's flush must finish the job, freeing
 * the first dead's entries once. In a strict domain the same with strict
 * unmaps: B killed waiting, then A's own strict unmap (which claims B's
 * entries) killed waiting, then C's strict unmap.
 */
static void claimer_killed(bool deferred, bool claimer_has_own, enum trigger t)
{
	struct child s, a, b;
	uint64_t iova_b, iova_a = 0;
	struct srig r;

	rig_up(&r, deferred ? "a11-claim-d" : "a11-claim-s", deferred ? IOVM_DOMAIN_DEFERRED : 0);
	s = a11_agent();
	a = a11_agent();
	b = a11_agent();
	iova_b = a11_cmd(&b, A11_MAP, r.pa, BLOCK, 0);
	if (claimer_has_own)
		iova_a = a11_cmd(&a, A11_MAP, r.pa + A11_PAGE, 2 * A11_PAGE, 0);
	rig_free_buf(&r);
	if (deferred) {
		CHECK_EQ(a11_cmd(&b, A11_UNMAP, iova_b, BLOCK, 0), 0);
		child_kill(&b);
		a11_reaped(r.ctx, 3);
		a11_stop(&s);
		if (claimer_has_own)
			CHECK_EQ(a11_cmd(&a, A11_UNMAP, iova_a, 2 * A11_PAGE, 0), 0);
		a11_send(&a, A11_FLUSH, 0, 0, 0);
	} else {
		uint64_t leaves = a11_leaves(r.dom);

		a11_stop(&s);
		a11_send(&b, A11_UNMAP, iova_b, BLOCK, 0);
		WAIT_UNTIL(a11_leaves(r.dom) == leaves - NP);
		a11_nap(20);
		CHECK(!a11_said(b.rd));
		child_kill(&b);
		if (claimer_has_own) {
			a11_send(&a, A11_UNMAP, iova_a, 2 * A11_PAGE, 0);
			WAIT_UNTIL(a11_leaves(r.dom) == 1);
		} else {
			/* Nothing of its own to unmap: a flush, which in a strict domain may be nothing. */
			a11_send(&a, A11_FLUSH, 0, 0, 0);
		}
	}
	a11_nap(30);
	if (deferred || claimer_has_own)
		CHECK_MSG(!a11_said(a.rd), "the claimer returned while a process with the domain open was stopped");
	child_kill(&a);
	child_kill(&s);
	a11_reaped(r.ctx, 1);
	CHECK_MSG(iovm_share_check(r.ctx) == 0, "%s", iovm_error_detail());
	CHECK_EQ(a11_held(r.ctx), BLOCK);
	CHECK_EQ(a11_iova(r.dom), BLOCK + A11_PAGE + (claimer_has_own ? 2 * A11_PAGE : 0));
	trigger(&r, deferred, t);
	rig_down(&r, deferred);
}

TEST(the_claimer_killed_a_third_finishes)
{
	for (int own = 0; own < 2; own++) {
		claimer_killed(true, own, BY_THIRD_FLUSH);
		claimer_killed(true, own, BY_MY_FLUSH);
		claimer_killed(true, own, BY_THIRD_UNMAP);
		claimer_killed(false, own, BY_THIRD_UNMAP);
		claimer_killed(false, own, BY_MY_UNMAP);
	}
}

/*
 * The survivor's own flush starts while the dying one's post is out
 * (one is posted at a time): it must get through once the poster is
 * killed and the staller goes on, and a flush after it frees everything.
 */
static struct iovm_domain *g_dom;

static void *flusher(void *arg)
{
	(void)arg;
	CHECK_OK(iovm_domain_flush(g_dom));
	return NULL;
}

static void *unmapper(void *arg)
{
	struct srig *r = arg;
	uint64_t iova = a11_map_pa(r->dom, a11_pa(r->ctx, r->other), A11_PAGE);

	CHECK_OK(iovm_domain_unmap(r->dom, IOVM_IOVA(iova), A11_PAGE));
	return NULL;
}

static void survivor_waits_behind_the_dying(bool deferred)
{
	struct child s, a;
	pthread_t th;
	struct srig r;
	uint64_t iova;

	rig_up(&r, "a11-behind", deferred ? IOVM_DOMAIN_DEFERRED : 0);
	s = a11_agent();
	a = a11_agent();
	iova = a11_cmd(&a, A11_MAP, r.pa, BLOCK, 0);
	rig_free_buf(&r);
	a11_stop(&s);
	if (deferred) {
		CHECK_EQ(a11_cmd(&a, A11_UNMAP, iova, BLOCK, 0), 0);
		a11_send(&a, A11_FLUSH, 0, 0, 0);
	} else {
		a11_send(&a, A11_UNMAP, iova, BLOCK, 0);
		WAIT_UNTIL(a11_leaves(r.dom) == 1);
	}
	a11_nap(20);
	g_dom = r.dom;
	CHECK_OK(pthread_create(&th, NULL, deferred ? flusher : unmapper, &r));
	a11_nap(30);
	CHECK(!a11_said(a.rd));
	child_kill(&a);
	a11_cont(&s);
	CHECK_OK(pthread_join(th, NULL));
	/* The thread's call may have come before the reap: the next trigger after it (test_attack11_unreaped.c). */
	a11_reaped(r.ctx, 2);
	CHECK_EQ(a11_held(r.ctx), BLOCK);
	rig_trigger(&r, deferred, deferred);
	a11_agent_close(&s);
	rig_down(&r, deferred);
}

TEST(the_survivor_waits_behind_the_dying)
{
	survivor_waits_behind_the_dying(true);
	survivor_waits_behind_the_dying(false);
}

int main(void)
{
	test_init();
	a11_watchdog(280);
	RUN(strict_unmap_killed_while_others_answer);
	RUN(deferred_flush_killed_while_others_answer);
	RUN(the_claimer_killed_a_third_finishes);
	RUN(the_survivor_waits_behind_the_dying);
	/* Found by this round (a strict domain's flush was nothing); fixed since: iovm_domain_flush() invalidates for orphans. */
	RUN(strict_orphans_freed_by_a_flush);
	return 0;
}
