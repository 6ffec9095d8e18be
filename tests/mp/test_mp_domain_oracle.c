/* SPDX-License-Identifier: MIT */
/*
 * test_mp_domain_oracle.c - the oracle of a shared domain: one shadow in
 * the domain's block, which every process records into and checks its
 * devices against, so that a device in one process is judged by every
 * process's maps and unmaps. A device in the other process reaches this
 * process's mapping with no violation and faults after its strict unmap; a
 * stale translation in a deferred unmap's window is counted, not a
 * violation; an entry written into the shared table behind the shadow's
 * back (as a bug would) is a violation seen by the other process's device;
 * a domain made without the oracle has no shadow and checks nothing.
 */
#include <stdlib.h>

#include "iommu/iommu_internal.h" /* domain_pt_map(): a table entry behind the shadow's back */
#include "mp_sdom.h"
#include "mp_util.h"

#define HEAP (UINT64_C(16) << 20)
#define DOM "oracle-dom"

static const char *g_name;

/*
 * The other process: a device on the domain. For each (iova, len, tag)
 * it is sent, one fill: it answers the status, then its view's oracle
 * counts (checks, stale, violations). A zero length ends it.
 */
static void other(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain_stats st;
	struct iovm_domain *dom;
	struct devq d;

	(void)arg;
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	d = devq_open(ctx, dom);
	put64(wr, 1);
	for (;;) {
		uint64_t iova = get64(rd), len = get64(rd), tag = get64(rd);

		if (!len)
			break;
		put64(wr, devq_fill(&d, iova, len, (uint8_t)tag));
		CHECK_OK(iovm_domain_stats(dom, &st));
		put64(wr, st.oracle_checks);
		put64(wr, st.oracle_stale);
		put64(wr, st.oracle_violations);
	}
	/* Not devq_close(): a violation may be what the test made. */
	CHECK_OK(iovm_queue_destroy(d.q));
	CHECK_OK(iovm_device_close(d.dev));
	CHECK_OK(iovm_domain_destroy(d.rings));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_close(ctx));
}

struct seen {
	uint8_t status;
	uint64_t checks, stale, violations;
};

static struct seen fill(struct child *c, uint64_t iova, uint64_t len, uint8_t tag)
{
	struct seen s;

	put64(c->wr, iova);
	put64(c->wr, len);
	put64(c->wr, tag);
	s.status = (uint8_t)get64(c->rd);
	s.checks = get64(c->rd);
	s.stale = get64(c->rd);
	s.violations = get64(c->rd);
	return s;
}

static void end(struct child *c)
{
	put64(c->wr, 0);
	put64(c->wr, 0);
	put64(c->wr, 0);
	child_ok(c);
}

static struct iovm_ctx *create(const char *opts, uint32_t flags, struct iovm_domain **dom)
{
	struct iovm_share_params p = { .heap_size = HEAP, .group = -1 };
	struct iovm_share_domain_params dp = { .flags = flags, .flush_timeout_us = UINT32_MAX };
	struct iovm_ctx *ctx;

	CHECK_OK(iovm_open(opts, &ctx));
	CHECK_OK(iovm_share(ctx, g_name, &p));
	CHECK_OK(iovm_share_domain_create(ctx, DOM, &dp, dom));
	return ctx;
}

static void finish(struct iovm_ctx *ctx, struct iovm_domain *dom)
{
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_EQ(share_info(ctx).heap_free, HEAP);
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
}

TEST(one_shadow_for_every_process)
{
	iovm_iova_t at = IOVM_IOVA_ANY;
	struct iovm_domain *dom;
	struct iovm_ctx *ctx;
	struct child c;
	struct seen s;
	uint8_t *buf;

	g_name = share_name("oracle-one");
	ctx = create("oracle=on", 0, &dom);
	c = child_start(other, NULL);
	CHECK_EQ(get64(c.rd), 1);
	buf = iovm_dma_alloc(ctx, 3 * 4096, 4096, 0);
	CHECK(buf != NULL);
	CHECK_OK(iovm_domain_map_ptr(dom, buf, 3 * 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &at));
	/* Mapped here, checked there: the other process's shadow is this one's. */
	s = fill(&c, at.addr + 100, 3 * 4096 - 200, 0x5a);
	CHECK_EQ(s.status, IOVM_STATUS_SUCCESS);
	CHECK(s.checks > 0);
	CHECK_EQ(s.violations, 0);
	CHECK_EQ(buf[100], 0x5a);
	CHECK_EQ(buf[3 * 4096 - 101], 0x5a);
	/* Past the mapping's end: a fault, and still no violation. */
	s = fill(&c, at.addr + 2 * 4096, 2 * 4096, 0x5b);
	CHECK_EQ(s.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(s.violations, 0);
	/* Unmapped here, strictly: a fault there, and no violation. */
	CHECK_OK(iovm_domain_unmap(dom, at, 3 * 4096));
	s = fill(&c, at.addr, 4096, 0x5c);
	CHECK_EQ(s.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(s.violations, 0);
	/* Mapped again at the same IOVA, to other memory: reached, no violation (the shadow was cleared). */
	CHECK_OK(map_at(ctx, dom, buf + 4096, 4096, &at));
	s = fill(&c, at.addr, 4096, 0x5d);
	CHECK_EQ(s.status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(s.violations, 0);
	CHECK_EQ(buf[4096], 0x5d);
	CHECK_OK(iovm_domain_unmap(dom, at, 4096));
	end(&c);
	CHECK_OK(iovm_dma_free(ctx, buf));
	finish(ctx, dom);
}

/* A deferred unmap's window: what the other device cached is stale, counted, and lands in the held memory. */
TEST(stale_in_the_deferred_window)
{
	iovm_iova_t at = IOVM_IOVA_ANY;
	struct iovm_domain *dom;
	struct iovm_ctx *ctx;
	struct child c;
	struct seen s;
	uint8_t *buf;

	g_name = share_name("oracle-stale");
	ctx = create("oracle=on", IOVM_DOMAIN_DEFERRED, &dom);
	c = child_start(other, NULL);
	CHECK_EQ(get64(c.rd), 1);
	buf = iovm_dma_alloc(ctx, 4096, 4096, 0);
	CHECK(buf != NULL);
	CHECK_OK(iovm_domain_map_ptr(dom, buf, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &at));
	s = fill(&c, at.addr, 4096, 0x61); /* cached there now */
	CHECK_EQ(s.status, IOVM_STATUS_SUCCESS);
	CHECK_OK(iovm_domain_unmap(dom, at, 4096)); /* queued */
	CHECK_OK(iovm_dma_free(ctx, buf));          /* held: the queued unmap maps it still */
	s = fill(&c, at.addr, 4096, 0x62);
	CHECK_MSG(s.violations == 0, "%llu violations", (unsigned long long)s.violations);
	if (s.status == IOVM_STATUS_SUCCESS)
		CHECK(s.stale > 0); /* through the cached translation: stale, allowed */
	else
		CHECK_EQ(s.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_OK(iovm_domain_flush(dom));
	s = fill(&c, at.addr, 4096, 0x63);
	CHECK_EQ(s.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(s.violations, 0);
	end(&c);
	finish(ctx, dom);
}

/* A table entry no map recorded: the other process's device access there is the violation. */
TEST(an_entry_behind_the_shadows_back)
{
	iovm_iova_t at = IOVM_IOVA_ANY;
	struct iovm_dma_xlate x;
	struct iovm_domain *dom;
	struct iovm_ctx *ctx;
	struct child c;
	struct seen s;
	uint8_t *buf;

	g_name = share_name("oracle-bug");
	ctx = create("oracle=on", 0, &dom);
	c = child_start(other, NULL);
	CHECK_EQ(get64(c.rd), 1);
	buf = iovm_dma_alloc(ctx, 4096, 4096, IOVM_DMA_KEEP);
	CHECK(buf != NULL);
	CHECK_OK(iovm_dma_xlate(ctx, buf, &x));
	CHECK_OK(iovm_domain_map_ptr(dom, buf, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &at));
	CHECK_OK(iovm_domain_unmap(dom, at, 4096));
	/* The bug: the entry back in the shared table, with neither the IOVA taken nor the shadow told. */
	CHECK_OK(domain_pt_map(dom, iova_make(at.addr), pa_make(x.pa.addr), NULL, 4096, PT_PROT_READ | PT_PROT_WRITE));
	s = fill(&c, at.addr, 4096, 0x71);
	CHECK_EQ(s.status, IOVM_STATUS_SUCCESS); /* the table lets it through ... */
	CHECK(s.violations >= 1);                /* ... and the oracle says so, in the other process */
	end(&c);
	/* The domain goes with the entry in it; the memory is the share's (KEEP), never held by a count. */
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_dma_free(ctx, buf));
	CHECK_EQ(share_info(ctx).heap_free, HEAP);
	CHECK_OK(iovm_close(ctx));
}

/*
 * A process without the oracle maps and unmaps in a domain that has a
 * shadow: it records into it all the same, so that the other process's
 * checks find its mapping, and nothing after its unmap.
 */
static void mapper_without_oracle(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	iovm_iova_t at = IOVM_IOVA_ANY;
	uint8_t *buf;

	(void)arg;
	CHECK_OK(iovm_attach(g_name, "oracle=off", &ctx));
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	buf = iovm_dma_alloc(ctx, 4096, 4096, IOVM_DMA_KEEP);
	CHECK(buf != NULL);
	CHECK_OK(iovm_domain_map_ptr(dom, buf, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &at));
	put64(wr, at.addr);
	CHECK_EQ(get64(rd), 1); /* filled there */
	CHECK(all_bytes(buf, 4096, 0x91));
	CHECK_OK(iovm_domain_unmap(dom, at, 4096));
	put64(wr, 2);
	CHECK_EQ(get64(rd), 3);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_dma_free(ctx, buf));
	CHECK_OK(iovm_close(ctx));
}

TEST(a_process_without_the_oracle_still_records)
{
	struct iovm_domain *dom;
	struct iovm_ctx *ctx;
	struct child c, m;
	struct seen s;
	uint64_t at;

	g_name = share_name("oracle-mixed");
	ctx = create("oracle=on", 0, &dom);
	c = child_start(other, NULL);
	CHECK_EQ(get64(c.rd), 1);
	m = child_start(mapper_without_oracle, NULL);
	at = get64(m.rd);
	s = fill(&c, at, 4096, 0x91);
	CHECK_EQ(s.status, IOVM_STATUS_SUCCESS);
	CHECK(s.checks > 0);
	CHECK_EQ(s.violations, 0); /* the mapping is in the shadow */
	put64(m.wr, 1);
	CHECK_EQ(get64(m.rd), 2);
	s = fill(&c, at, 4096, 0x92);
	CHECK_EQ(s.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(s.violations, 0);
	put64(m.wr, 3);
	child_ok(&m);
	/* Mapped again here, at the same IOVA: the shadow was cleared by the unmap without the oracle. */
	{
		uint8_t *buf = iovm_dma_alloc(ctx, 4096, 4096, 0);
		iovm_iova_t again = IOVM_IOVA(at);

		CHECK(buf != NULL);
		CHECK_OK(map_at(ctx, dom, buf, 4096, &again));
		s = fill(&c, at, 4096, 0x93);
		CHECK_EQ(s.status, IOVM_STATUS_SUCCESS);
		CHECK_EQ(s.violations, 0);
		CHECK_OK(iovm_domain_unmap(dom, again, 4096));
		CHECK_OK(iovm_dma_free(ctx, buf));
	}
	end(&c);
	finish(ctx, dom);
}

/* Made without the oracle: no shadow, so a device with the oracle on checks nothing there. */
TEST(made_without_the_oracle)
{
	iovm_iova_t at = IOVM_IOVA_ANY;
	struct iovm_domain *dom;
	struct iovm_ctx *ctx;
	struct child c;
	struct seen s;
	uint8_t *buf;

	g_name = share_name("oracle-off");
	ctx = create("oracle=off", 0, &dom);
	c = child_start(other, NULL);
	CHECK_EQ(get64(c.rd), 1);
	buf = iovm_dma_alloc(ctx, 4096, 4096, 0);
	CHECK(buf != NULL);
	CHECK_OK(iovm_domain_map_ptr(dom, buf, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &at));
	s = fill(&c, at.addr, 4096, 0x81);
	CHECK_EQ(s.status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(s.checks, 0);
	CHECK_EQ(s.violations, 0);
	CHECK_OK(iovm_domain_unmap(dom, at, 4096));
	end(&c);
	CHECK_OK(iovm_dma_free(ctx, buf));
	finish(ctx, dom);
}

int main(void)
{
	test_init();
	RUN(one_shadow_for_every_process);
	RUN(stale_in_the_deferred_window);
	RUN(an_entry_behind_the_shadows_back);
	RUN(a_process_without_the_oracle_still_records);
	RUN(made_without_the_oracle);
	return 0;
}
