/* SPDX-License-Identifier: MIT */
/*
 * test_attack11_orphans.c - many processes, each with a queue of deferred
 * unmaps in a shared domain (thousands in all), killed together: what
 * they queued stays taken and held, to the byte, until the next flush of
 * any survivor, however it comes (asked for with nothing of its own
 * queued, a full batch, the timeout, a map that meets their IOVAs), or the
 * domain's end; then it is freed once (the survivor's own mapping of the
 * same block keeps its hold). While queued by a live process, its IOVAs
 * are -EEXIST to a map at a fixed IOVA and never chosen for another.
 * Slots reused by new processes neither inherit nor lose the dead's.
 */
#include "attack11.h"

#define NPROC 6
#define NPAGES 4 /* the survivor's block, which every process maps page by page */
#define BLOCK (NPAGES * A11_PAGE)

struct orig {
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	uint64_t pa;    /* of the block, freed at once: held while mapped */
	uint64_t mine;  /* the survivor's mapping of its first page */
	uint8_t *other; /* a page of the survivor's, to map and unmap */
	uint64_t pending; /* the dead's unmaps queued, in pages */
	uint64_t canary[NPROC]; /* a queued IOVA of each dead process */
	bool whole[NPROC];      /* its queue never flushed: the canary still queued at its death */
	unsigned wholes;
	unsigned alive; /* processes attached besides the dead: the survivor, and any other */
};

static void orig_up(struct orig *o, uint32_t batch, uint32_t timeout_us)
{
	struct iovm_share_domain_params p = a11_params(IOVM_DOMAIN_DEFERRED, batch, timeout_us);
	uint8_t *buf;

	o->ctx = a11_share("a11-orph", &p, &o->dom);
	buf = iovm_dma_alloc(o->ctx, BLOCK, 4096, 0);
	o->other = iovm_dma_alloc(o->ctx, A11_PAGE, 4096, 0);
	CHECK(buf && o->other);
	o->pa = a11_pa(o->ctx, buf);
	o->mine = a11_map_pa(o->dom, o->pa, A11_PAGE);
	CHECK_OK(iovm_dma_free(o->ctx, buf));
	CHECK_EQ(a11_held(o->ctx), BLOCK);
	o->pending = 0;
	o->alive = 1;
}

/*
 * @n processes queue @each unmaps (of the block's pages, at IOVAs the
 * domain chooses), and one more whose IOVA they report; checked while
 * alive, then killed together.
 */
static void queue_and_die(struct orig *o, unsigned n, unsigned each, uint32_t batch)
{
	struct child c[NPROC];

	CHECK(n >= 2 && n <= NPROC);
	for (unsigned i = 0; i < n; i++)
		c[i] = a11_agent();
	for (unsigned i = 0; i < n; i++) {
		uint64_t pend;

		o->canary[i] = a11_cmd(&c[i], A11_MAP, o->pa + (i % NPAGES) * A11_PAGE, A11_PAGE, 0);
		CHECK_EQ(a11_cmd(&c[i], A11_UNMAP, o->canary[i], A11_PAGE, 0), 0);
		pend = a11_cmd(&c[i], A11_QUEUE, o->pa + (i % NPAGES) * A11_PAGE, A11_PAGE, each);
		CHECK_MSG(pend >= 1 && pend <= each + 1 && pend < batch, "process %u: %llu unmaps pending of %u", i,
			  (unsigned long long)pend, each + 1);
		o->pending += pend;
	}
	/* Alive, queued: every one is taken and holds its page (so the block). */
	CHECK_EQ(a11_iova(o->dom), A11_PAGE + o->pending * A11_PAGE);
	CHECK_EQ(a11_held(o->ctx), BLOCK);
	CHECK_EQ(a11_leaves(o->dom), 1);
	/* A live process's queue: a map at a fixed IOVA there is -EEXIST, in this process or another. */
	for (unsigned i = 0; i < n; i++) {
		iovm_iova_t at = IOVM_IOVA(o->canary[i]);
		uint64_t pend = a11_cmd(&c[i], A11_PENDING, 0, 0, 0);

		if (pend != each + 1)
			continue; /* its queue was flushed meanwhile (the journal had no room) */
		CHECK_EQ(iovm_domain_map(o->dom, &at, IOVM_PA(a11_pa(o->ctx, o->other)), A11_PAGE, IOVM_MAP_READ),
			 -EEXIST);
		/* Another process (its own queue flushed first, as a map at a quarantined IOVA may): once. */
		if (i == 0)
			CHECK_EQ((int64_t)a11_cmd(&c[n - 1], A11_MAP_AT, a11_pa(o->ctx, o->other), A11_PAGE,
						  o->canary[0]),
				 -EEXIST);
	}
	/* Re-read what is queued now. */
	o->pending = 0;
	o->wholes = 0;
	for (unsigned i = 0; i < NPROC; i++)
		o->whole[i] = false;
	for (unsigned i = 0; i < n; i++) {
		uint64_t pend = a11_cmd(&c[i], A11_PENDING, 0, 0, 0);

		o->pending += pend;
		o->whole[i] = pend == each + 1;
		o->wholes += o->whole[i];
	}
	for (unsigned i = 0; i < n; i++)
		CHECK_OK(kill(c[i].pid, SIGKILL));
	for (unsigned i = 0; i < n; i++)
		CHECK_EQ(child_wait(&c[i]), -SIGKILL);
	a11_reaped(o->ctx, o->alive);
	CHECK_MSG(iovm_share_check(o->ctx) == 0, "%s", iovm_error_detail());
	/* Dead, reaped, not yet invalidated: every queued unmap still taken, the block still held. */
	CHECK_MSG(a11_iova(o->dom) == A11_PAGE + o->pending * A11_PAGE,
		  "%llu bytes of IOVA taken after the deaths, not the survivor's page and the dead's %llu queued",
		  (unsigned long long)a11_iova(o->dom), (unsigned long long)o->pending);
	CHECK_EQ(a11_held(o->ctx), BLOCK);
	CHECK_EQ(a11_pending(o->dom), 0);
	printf("# %u processes killed with %llu unmaps queued (%u never flushed)\n", n, (unsigned long long)o->pending,
	       o->wholes);
}

/* After the trigger: only the survivor's page taken, its block held (to the byte), once. */
static void orig_freed(struct orig *o, uint64_t extra_iova)
{
	CHECK_MSG(a11_iova(o->dom) == A11_PAGE + extra_iova, "%llu bytes of IOVA taken after the flush",
		  (unsigned long long)a11_iova(o->dom));
	CHECK_MSG(a11_held(o->ctx) == BLOCK, "held %llu after the flush, not the survivor's mapped block",
		  (unsigned long long)a11_held(o->ctx));
	CHECK_MSG(iovm_share_check(o->ctx) == 0, "%s", iovm_error_detail());
	/* Nothing freed twice: a second flush changes nothing. */
	CHECK_OK(iovm_domain_flush(o->dom));
	CHECK_EQ(a11_held(o->ctx), BLOCK);
}

static void orig_down(struct orig *o)
{
	CHECK_OK(iovm_domain_unmap(o->dom, IOVM_IOVA(o->mine), A11_PAGE));
	CHECK_EQ(a11_held(o->ctx), BLOCK); /* queued: held until the flush */
	CHECK_OK(iovm_domain_flush(o->dom));
	CHECK_EQ(a11_held(o->ctx), 0);
	CHECK_EQ(a11_iova(o->dom), 0);
	CHECK_OK(iovm_dma_free(o->ctx, o->other));
	a11_end(o->ctx, o->dom);
}

/* An explicit flush with nothing of the survivor's queued. */
TEST(killed_together_freed_by_an_empty_flush)
{
	struct orig o;

	orig_up(&o, 4096, A11_NEVER);
	queue_and_die(&o, NPROC, 1500, 4096);
	/* The IOVAs the domain chooses for the survivor meanwhile are none of the dead's. */
	for (int i = 0; i < 64; i++) {
		uint64_t iova = a11_map_pa(o.dom, a11_pa(o.ctx, o.other), A11_PAGE);

		for (unsigned k = 0; k < NPROC; k++)
			CHECK_MSG(!o.whole[k] || iova != o.canary[k],
				  "the survivor's map got IOVA %#llx, queued by a dead process", (unsigned long long)iova);
		CHECK_OK(iovm_domain_unmap(o.dom, IOVM_IOVA(iova), A11_PAGE));
	}
	CHECK_EQ(a11_pending(o.dom), 64);
	CHECK_OK(iovm_domain_flush(o.dom));
	CHECK_EQ(a11_pending(o.dom), 0);
	orig_freed(&o, 0);
	orig_down(&o);

	/* And with nothing at all of the survivor's queued. */
	orig_up(&o, 4096, A11_NEVER);
	queue_and_die(&o, NPROC, 1500, 4096);
	CHECK_EQ(a11_pending(o.dom), 0);
	CHECK_OK(iovm_domain_flush(o.dom));
	orig_freed(&o, 0);
	orig_down(&o);
}

/* The survivor's batch fills (8): the flush it makes by itself frees the dead's too. */
TEST(killed_together_freed_by_a_full_batch)
{
	struct orig o;
	uint64_t iova[8];

	orig_up(&o, 8, A11_NEVER);
	queue_and_die(&o, NPROC, 5, 8);
	for (int i = 0; i < 7; i++) {
		iova[i] = a11_map_pa(o.dom, a11_pa(o.ctx, o.other), A11_PAGE);
		CHECK_OK(iovm_domain_unmap(o.dom, IOVM_IOVA(iova[i]), A11_PAGE));
	}
	CHECK_EQ(a11_pending(o.dom), 7);
	CHECK_EQ(a11_held(o.ctx), BLOCK);
	iova[7] = a11_map_pa(o.dom, a11_pa(o.ctx, o.other), A11_PAGE);
	CHECK_OK(iovm_domain_unmap(o.dom, IOVM_IOVA(iova[7]), A11_PAGE));
	CHECK_EQ(a11_pending(o.dom), 0);
	orig_freed(&o, 0);
	orig_down(&o);
}

/* The survivor's timeout (waited for, not timed) frees the dead's too. */
TEST(killed_together_freed_by_the_timeout)
{
	struct orig o;
	uint64_t iova;

	orig_up(&o, 4096, 2000);
	/*
	 * Their own timeouts may flush some of theirs before the kill: what
	 * is left counted exactly anyway, as it is re-read before the kill.
	 */
	{
		struct child c[NPROC];

		for (int i = 0; i < NPROC; i++)
			c[i] = a11_agent();
		for (int i = 0; i < NPROC; i++)
			(void)a11_cmd(&c[i], A11_QUEUE, o.pa + (i % NPAGES) * A11_PAGE, A11_PAGE, 500);
		for (int i = 0; i < NPROC; i++)
			CHECK_OK(kill(c[i].pid, SIGKILL));
		for (int i = 0; i < NPROC; i++)
			CHECK_EQ(child_wait(&c[i]), -SIGKILL);
	}
	a11_reaped(o.ctx, 1);
	CHECK_EQ(a11_held(o.ctx), BLOCK);
	iova = a11_map_pa(o.dom, a11_pa(o.ctx, o.other), A11_PAGE);
	CHECK_OK(iovm_domain_unmap(o.dom, IOVM_IOVA(iova), A11_PAGE));
	WAIT_UNTIL(a11_pending(o.dom) == 0);
	orig_freed(&o, 0);
	orig_down(&o);
}

/*
 * The survivor maps at a fixed IOVA that a dead process's queue holds:
 * either -EEXIST (taken until a flush) or, as iommu.h's "Remapping" says
 * of quarantined IOVAs, a flush first, which frees all the dead's.
 */
TEST(a_fixed_map_on_the_deads_iovas)
{
	struct orig o;
	iovm_iova_t at;
	int ret;

	orig_up(&o, 4096, A11_NEVER);
	queue_and_die(&o, NPROC, 1000, 4096);
	if (!o.wholes)
		SKIP_CASE("every queue was flushed before the deaths");
	for (unsigned i = 0; i < NPROC; i++)
		if (o.whole[i])
			at = IOVM_IOVA(o.canary[i]);
	ret = iovm_domain_map(o.dom, &at, IOVM_PA(a11_pa(o.ctx, o.other)), A11_PAGE, IOVM_MAP_READ);
	CHECK_MSG(ret == 0 || ret == -EEXIST, "map at a dead's queued IOVA: %d", ret);
	if (ret == 0) {
		orig_freed(&o, A11_PAGE);
		CHECK_OK(iovm_domain_unmap(o.dom, at, A11_PAGE));
		CHECK_OK(iovm_domain_flush(o.dom));
	} else {
		CHECK_EQ(a11_iova(o.dom), A11_PAGE + o.pending * A11_PAGE);
		CHECK_OK(iovm_domain_flush(o.dom));
		orig_freed(&o, 0);
	}
	orig_down(&o);
}

/* The survivor's view goes while the dead's wait: the domain ends, and everything with it. */
TEST(the_last_view_goes_while_orphans_wait)
{
	struct orig o;
	struct child b;

	orig_up(&o, 4096, A11_NEVER);
	queue_and_die(&o, NPROC, 1000, 4096);
	CHECK_OK(iovm_domain_unmap(o.dom, IOVM_IOVA(o.mine), A11_PAGE));
	CHECK_OK(iovm_dma_free(o.ctx, o.other));
	a11_end(o.ctx, o.dom); /* destroys the last view: held 0, the heap whole */

	/* Two survivors: one closes its view (not the last); the other's flush frees them. */
	orig_up(&o, 4096, A11_NEVER);
	b = a11_agent();
	o.alive = 2;
	queue_and_die(&o, NPROC - 1, 1000, 4096);
	a11_agent_close(&b);
	a11_reaped(o.ctx, 1);
	CHECK_EQ(a11_held(o.ctx), BLOCK);
	CHECK_OK(iovm_domain_flush(o.dom));
	orig_freed(&o, 0);
	orig_down(&o);
}

/*
 * Slots reused: a process killed with unmaps queued, then a new one
 * attaches (perhaps into its slot) and queues its own. A flush of the
 * survivor frees the dead's, not the live newcomer's (which stay taken);
 * the newcomer's own flush frees its own. And a newcomer's flush, with
 * nothing of its own, frees what the dead of its slot left.
 */
TEST(slots_reused_neither_inherit_nor_lose)
{
	struct orig o;

	orig_up(&o, 4096, A11_NEVER);
	for (int round = 0; round < 12; round++) {
		struct child a = a11_agent(), b;
		uint64_t pa, pb;

		pa = a11_cmd(&a, A11_QUEUE, o.pa + A11_PAGE, A11_PAGE, 40 + round);
		CHECK_EQ(pa, 40 + round);
		child_kill(&a);
		a11_reaped(o.ctx, 1);
		b = a11_agent();
		CHECK_EQ(a11_iova(o.dom), A11_PAGE + pa * A11_PAGE);
		if (round % 3 == 0) {
			/* The newcomer queues, the survivor flushes: the dead's go, the newcomer's stay. */
			pb = a11_cmd(&b, A11_QUEUE, o.pa + 2 * A11_PAGE, A11_PAGE, 30);
			CHECK_EQ(pb, 30);
			CHECK_OK(iovm_domain_flush(o.dom));
			CHECK_MSG(a11_iova(o.dom) == A11_PAGE + pb * A11_PAGE,
				  "round %d: %llu bytes of IOVA taken, not the survivor's page and the live newcomer's %llu",
				  round, (unsigned long long)a11_iova(o.dom), (unsigned long long)pb);
			CHECK_EQ(a11_cmd(&b, A11_PENDING, 0, 0, 0), 30);
			CHECK_EQ(a11_cmd(&b, A11_FLUSH, 0, 0, 0), 0);
			CHECK_EQ(a11_cmd(&b, A11_PENDING, 0, 0, 0), 0);
		} else if (round % 3 == 1) {
			/* The newcomer, nothing of its own queued, flushes: the dead's go. */
			CHECK_EQ(a11_cmd(&b, A11_FLUSH, 0, 0, 0), 0);
		} else {
			/* The newcomer queues and flushes its own: the dead's go with them. */
			pb = a11_cmd(&b, A11_QUEUE, o.pa + 3 * A11_PAGE, A11_PAGE, 25);
			CHECK_EQ(pb, 25);
			CHECK_EQ(a11_cmd(&b, A11_FLUSH, 0, 0, 0), 0);
		}
		CHECK_MSG(a11_iova(o.dom) == A11_PAGE, "round %d: %llu bytes of IOVA taken", round,
			  (unsigned long long)a11_iova(o.dom));
		CHECK_EQ(a11_held(o.ctx), BLOCK);
		if (round % 2) {
			a11_agent_close(&b);
		} else {
			/* Killed with one more queue, freed by the next round's flush or the end. */
			(void)a11_cmd(&b, A11_QUEUE, o.pa, A11_PAGE, 10);
			child_kill(&b);
			a11_reaped(o.ctx, 1);
			CHECK_EQ(a11_iova(o.dom), A11_PAGE + 10 * A11_PAGE);
			CHECK_OK(iovm_domain_flush(o.dom));
			CHECK_EQ(a11_iova(o.dom), A11_PAGE);
		}
		CHECK_MSG(iovm_share_check(o.ctx) == 0, "%s", iovm_error_detail());
	}
	orig_freed(&o, 0);
	orig_down(&o);
}

/*
 * A process that closes (its view, or its whole context with the view
 * open) with unmaps queued: they are flushed then, or left recorded for
 * the next flush; never lost, never freed twice.
 */
TEST(closed_with_unmaps_queued)
{
	for (int how = 0; how < 2; how++) {
		struct orig o;
		struct child c;
		uint64_t pend, iova;

		orig_up(&o, 4096, A11_NEVER);
		c = a11_agent();
		pend = a11_cmd(&c, A11_QUEUE, o.pa + A11_PAGE, A11_PAGE, 700);
		CHECK(pend > 0);
		CHECK_EQ(a11_iova(o.dom), A11_PAGE + pend * A11_PAGE);
		CHECK_EQ(a11_cmd(&c, how ? A11_CLOSE_CTX : A11_CLOSE, 0, 0, 0), 0);
		child_ok(&c);
		a11_reaped(o.ctx, 1);
		iova = a11_iova(o.dom);
		CHECK_MSG(iova == A11_PAGE || iova == A11_PAGE + pend * A11_PAGE,
			  "%s with %llu unmaps queued: %llu bytes of IOVA taken", how ? "closed its context" : "closed its view",
			  (unsigned long long)pend, (unsigned long long)iova);
		printf("# %s with %llu unmaps queued: %s\n", how ? "closed its context" : "closed its view",
		       (unsigned long long)pend, iova == A11_PAGE ? "flushed then" : "left for the next flush");
		CHECK_EQ(a11_held(o.ctx), BLOCK);
		CHECK_OK(iovm_domain_flush(o.dom));
		orig_freed(&o, 0);
		orig_down(&o);
	}
}

/*
 * One process, two deferred shared domains, the same page queued in both,
 * killed: each domain's flush frees its own journal's, not the other's;
 * the hold stays while either still names the page (or the survivor's
 * mapping in either does); the end of one domain leaves the other's.
 */
#define DOM2 "a11-dom2"

static void two_domains_child(int rd, int wr, void *arg)
{
	struct iovm_domain *d1, *d2;
	struct iovm_ctx *ctx = a11_attach(&d1);
	uint64_t pa = get64(rd);

	(void)arg;
	CHECK_OK(iovm_share_domain_open(ctx, DOM2, &d2));
	for (int i = 0; i < 300; i++) {
		uint64_t a = a11_map_pa(d1, pa, A11_PAGE), b = a11_map_pa(d2, pa, A11_PAGE);

		CHECK_OK(iovm_domain_unmap(d1, IOVM_IOVA(a), A11_PAGE));
		CHECK_OK(iovm_domain_unmap(d2, IOVM_IOVA(b), A11_PAGE));
	}
	put64(wr, a11_pending(d1));
	put64(wr, a11_pending(d2));
	pause();
}

TEST(two_domains_one_death)
{
	for (int end_first = 0; end_first < 2; end_first++) {
		struct iovm_share_domain_params p = a11_params(IOVM_DOMAIN_DEFERRED, 4096, A11_NEVER);
		struct iovm_domain *d2;
		uint64_t p1, p2, mine2;
		struct orig o;
		struct child c;

		orig_up(&o, 4096, A11_NEVER);
		CHECK_OK(iovm_share_domain_create(o.ctx, DOM2, &p, &d2));
		mine2 = a11_map_pa(d2, o.pa + 2 * A11_PAGE, A11_PAGE);
		c = child_start(two_domains_child, NULL);
		put64(c.wr, o.pa + 3 * A11_PAGE);
		p1 = get64(c.rd);
		p2 = get64(c.rd);
		CHECK(p1 > 0 && p2 > 0);
		child_kill(&c);
		a11_reaped(o.ctx, 1);
		CHECK_EQ(a11_iova(o.dom), A11_PAGE + p1 * A11_PAGE);
		CHECK_EQ(a11_iova(d2), A11_PAGE + p2 * A11_PAGE);
		CHECK_EQ(a11_held(o.ctx), BLOCK);
		if (end_first) {
			/* The second domain ends (its last view): its orphans go with it; the first's stay. */
			CHECK_OK(iovm_domain_unmap(d2, IOVM_IOVA(mine2), A11_PAGE));
			CHECK_OK(iovm_domain_destroy(d2));
			CHECK_EQ(a11_iova(o.dom), A11_PAGE + p1 * A11_PAGE);
			CHECK_EQ(a11_held(o.ctx), BLOCK);
			CHECK_OK(iovm_domain_flush(o.dom));
			orig_freed(&o, 0);
			orig_down(&o);
			continue;
		}
		CHECK_OK(iovm_domain_flush(o.dom));
		CHECK_MSG(a11_iova(d2) == A11_PAGE + p2 * A11_PAGE,
			  "the first domain's flush changed the second's IOVAs: %llu bytes taken, not %llu",
			  (unsigned long long)a11_iova(d2), (unsigned long long)(A11_PAGE + p2 * A11_PAGE));
		CHECK_EQ(a11_iova(o.dom), A11_PAGE);
		CHECK_EQ(a11_held(o.ctx), BLOCK);
		/* The first domain's mapping goes: the second's orphans and mine2 hold the block still. */
		CHECK_OK(iovm_domain_unmap(o.dom, IOVM_IOVA(o.mine), A11_PAGE));
		CHECK_OK(iovm_domain_flush(o.dom));
		CHECK_EQ(a11_held(o.ctx), BLOCK);
		CHECK_OK(iovm_domain_flush(d2));
		CHECK_EQ(a11_iova(d2), A11_PAGE);
		CHECK_EQ(a11_held(o.ctx), BLOCK); /* mine2 */
		CHECK_OK(iovm_domain_unmap(d2, IOVM_IOVA(mine2), A11_PAGE));
		CHECK_OK(iovm_domain_flush(d2));
		CHECK_EQ(a11_held(o.ctx), 0);
		CHECK_OK(iovm_domain_destroy(d2));
		CHECK_OK(iovm_dma_free(o.ctx, o.other));
		a11_end(o.ctx, o.dom);
	}
}

/*
 * Many survivors claim the same orphans at once (each flushes, the owner
 * too), and one claimer is killed at a random moment of it: freed once
 * (the survivor's mapping holds the block to the byte; the IOVAs come
 * back once), at most a page left by the killed claimer's release.
 */
TEST(concurrent_claimers)
{
	uint64_t seed = (uint64_t)getpid() * 0x2545f4914f6cdd1dull;

	for (int round = 0; round < 10; round++) {
		struct child f[4];
		struct orig o;
		uint64_t left;
		bool kill_one = round % 2;

		orig_up(&o, 4096, A11_NEVER);
		for (int i = 0; i < 4; i++)
			f[i] = a11_agent();
		o.alive = 5;
		queue_and_die(&o, 4, 1200, 4096);
		for (int i = 0; i < 4; i++)
			a11_send(&f[i], A11_FLUSH, 0, 0, 0);
		if (kill_one) {
			a11_nap((unsigned)(test_rand(&seed) % 3));
			child_kill(&f[0]);
		}
		CHECK_OK(iovm_domain_flush(o.dom));
		for (int i = kill_one; i < 4; i++)
			CHECK_EQ(get64(f[i].rd), 0);
		a11_reaped(o.ctx, kill_one ? 4 : 5);
		CHECK_OK(iovm_domain_flush(o.dom));
		CHECK_MSG(a11_held(o.ctx) == BLOCK, "round %d: held %llu, not the block the survivor maps", round,
			  (unsigned long long)a11_held(o.ctx));
		CHECK_MSG(iovm_share_check(o.ctx) == 0, "%s", iovm_error_detail());
		left = a11_iova(o.dom) - A11_PAGE;
		CHECK_MSG(left <= (kill_one ? A11_PAGE : 0), "round %d: %llu bytes of IOVA left after the claims", round,
			  (unsigned long long)left);
		for (int i = kill_one; i < 4; i++)
			a11_agent_close(&f[i]);
		CHECK_OK(iovm_domain_unmap(o.dom, IOVM_IOVA(o.mine), A11_PAGE));
		CHECK_OK(iovm_domain_flush(o.dom));
		CHECK(a11_held(o.ctx) == 0 || (kill_one && a11_held(o.ctx) == BLOCK && !left));
		CHECK_OK(iovm_dma_free(o.ctx, o.other));
		a11_end(o.ctx, o.dom);
	}
}

/*
 * The page the dead's queue names is also in a live process's queue: the
 * survivor's flush frees the dead's, but the page stays held while the
 * live queue names it (its devices may cache it), and goes with that
 * process's flush (or, if it is killed, the next one).
 */
TEST(a_live_queue_keeps_the_hold)
{
	for (int live_dies = 0; live_dies < 2; live_dies++) {
		struct iovm_share_domain_params p = a11_params(IOVM_DOMAIN_DEFERRED, 4096, A11_NEVER);
		struct child d, l;
		struct iovm_domain *dom;
		struct iovm_ctx *ctx;
		uint64_t pa, pd, pl;
		uint8_t *buf;

		ctx = a11_share("a11-livehold", &p, &dom);
		buf = iovm_dma_alloc(ctx, BLOCK, 4096, 0);
		CHECK(buf != NULL);
		pa = a11_pa(ctx, buf);
		d = a11_agent();
		l = a11_agent();
		pd = a11_cmd(&d, A11_QUEUE, pa + A11_PAGE, A11_PAGE, 500);
		pl = a11_cmd(&l, A11_QUEUE, pa + A11_PAGE, A11_PAGE, 3);
		CHECK_EQ(pl, 3);
		CHECK_OK(iovm_dma_free(ctx, buf));
		CHECK_EQ(a11_held(ctx), BLOCK);
		child_kill(&d);
		a11_reaped(ctx, 2);
		CHECK_OK(iovm_domain_flush(dom));
		CHECK_MSG(a11_held(ctx) == BLOCK, "held %llu after the flush: a live process's queue still names the page",
			  (unsigned long long)a11_held(ctx));
		CHECK_EQ(a11_iova(dom), pl * A11_PAGE);
		(void)pd;
		if (live_dies) {
			child_kill(&l);
			a11_reaped(ctx, 1);
			CHECK_EQ(a11_held(ctx), BLOCK);
			CHECK_OK(iovm_domain_flush(dom));
		} else {
			CHECK_EQ(a11_cmd(&l, A11_FLUSH, 0, 0, 0), 0);
			a11_agent_close(&l);
		}
		CHECK_EQ(a11_held(ctx), 0);
		CHECK_EQ(a11_iova(dom), 0);
		a11_end(ctx, dom);
	}
}

int main(void)
{
	test_init();
	a11_watchdog(280);
	RUN(killed_together_freed_by_an_empty_flush);
	RUN(killed_together_freed_by_a_full_batch);
	RUN(killed_together_freed_by_the_timeout);
	RUN(a_fixed_map_on_the_deads_iovas);
	RUN(the_last_view_goes_while_orphans_wait);
	RUN(slots_reused_neither_inherit_nor_lose);
	RUN(closed_with_unmaps_queued);
	RUN(two_domains_one_death);
	RUN(concurrent_claimers);
	RUN(a_live_queue_keeps_the_hold);
	return 0;
}
