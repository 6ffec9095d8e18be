/* SPDX-License-Identifier: MIT */
/*
 * test_mp_domain_deferred.c - shared domains with deferred invalidation
 * (iovm_share_domain_params.flags IOVM_DOMAIN_DEFERRED): an unmap returns
 * at once and waits in its process's flush queue; until the flush its
 * IOVAs go to nobody (another process's map there is -EEXIST) and memory
 * freed meanwhile is held; the flush (asked for, the batch full, or the
 * timeout) reaches every process's devices, and only then are the IOVAs
 * and the memory given back. A process killed with unmaps queued leaves
 * them in the domain's journal: taken and held until the next flush of
 * any process (or the domain's end), and no longer, however many; an
 * unmap that finds the journal full is flushed at once.
 */
#include <stdlib.h>

#include "mp_sdom.h"
#include "mp_util.h"

#define HEAP (UINT64_C(16) << 20)
#define DOM "deferred-dom"
#define AT (UINT64_C(4) << 30) /* the first IOVA of the window */

static const char *g_name;

static struct iovm_ctx *create(struct iovm_domain **dom, uint32_t batch, uint32_t timeout_us)
{
	struct iovm_share_domain_params p = { .flags = IOVM_DOMAIN_DEFERRED, .flush_batch = batch,
					      .flush_timeout_us = timeout_us };
	struct iovm_ctx *ctx = share_ok(g_name, HEAP);

	CHECK_OK(iovm_share_domain_create(ctx, DOM, &p, dom));
	return ctx;
}

static uint64_t pending(struct iovm_domain *dom)
{
	struct iovm_domain_stats st;

	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK(st.flags & IOVM_DOMAIN_DEFERRED);
	return st.pending_unmaps;
}

TEST(bad_input)
{
	struct iovm_share_domain_params p = { .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	struct iovm_domain *dom;
	struct iovm_ctx *ctx;

	g_name = share_name("def-bad");
	ctx = share_ok(g_name, HEAP);
	CHECK_EQ(iovm_share_domain_create(ctx, DOM, &p, &dom), -EINVAL);
	p.flags = IOVM_DOMAIN_DEFERRED | (1u << 30);
	CHECK_EQ(iovm_share_domain_create(ctx, DOM, &p, &dom), -EINVAL);
	p = (struct iovm_share_domain_params){ .flags = IOVM_DOMAIN_DEFERRED, .flush_batch = 65537 };
	CHECK_EQ(iovm_share_domain_create(ctx, DOM, &p, &dom), -EINVAL);
	CHECK_EQ(iovm_share_domain_open(ctx, DOM, &dom), -ENOENT); /* nothing made by the refusals */
	CHECK_EQ(share_info(ctx).heap_free, HEAP);
	CHECK_OK(iovm_close(ctx));
}

/*
 * The other process: a view and a device. It reaches the parent's mapping,
 * then, told the parent unmapped (not flushed), finds the IOVA still taken
 * for it; told the parent flushed, its device faults there and the IOVA is
 * its to map.
 */
static void other(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	iovm_iova_t at = IOVM_IOVA(AT);
	struct iovm_domain *dom;
	struct devq d;
	uint8_t *mine;
	uint8_t st;

	(void)arg;
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	d = devq_open(ctx, dom);
	mine = iovm_dma_alloc(ctx, 4096, 4096, 0);
	CHECK(mine != NULL);
	memset(mine, 0, 4096);
	CHECK_EQ(get64(rd), 1); /* mapped */
	CHECK_EQ(devq_fill(&d, AT, 8192, 0x21), IOVM_STATUS_SUCCESS);
	put64(wr, 1);
	CHECK_EQ(get64(rd), 2); /* unmapped, not flushed */
	/* Quarantined in the parent's queue: not this process's to map. */
	CHECK_EQ(map_at(ctx, dom, mine, 4096, &at), -EEXIST);
	/* What the device cached may still be used: into the held memory, or a fault; nowhere else. */
	st = devq_fill(&d, AT, 8192, 0x22);
	CHECK(st == IOVM_STATUS_SUCCESS || st == IOVM_STATUS_PAGE_FAULT);
	put64(wr, st);
	CHECK_EQ(get64(rd), 3); /* flushed */
	CHECK_EQ(devq_fill(&d, AT, 4096, 0x23), IOVM_STATUS_PAGE_FAULT);
	at = IOVM_IOVA(AT);
	CHECK_OK(map_at(ctx, dom, mine, 4096, &at));
	CHECK_EQ(devq_fill(&d, AT, 4096, 0x24), IOVM_STATUS_SUCCESS);
	CHECK(all_bytes(mine, 4096, 0x24));
	CHECK_OK(iovm_domain_unmap(dom, at, 4096));
	CHECK_OK(iovm_domain_flush(dom));
	put64(wr, 4);
	devq_close(&d);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_dma_free(ctx, mine));
	CHECK_OK(iovm_close(ctx));
}

TEST(the_flush_reaches_every_process)
{
	iovm_iova_t at = IOVM_IOVA(AT);
	struct iovm_domain_stats st;
	struct iovm_domain *dom;
	struct iovm_ctx *ctx;
	struct child c;
	uint8_t *buf, landed;

	g_name = share_name("def-flush");
	/* No flush but the one asked for: a batch and a timeout the test never reaches. */
	ctx = create(&dom, 4096, 600 * 1000 * 1000);
	c = child_start(other, NULL);
	buf = iovm_dma_alloc(ctx, 8192, 4096, 0);
	CHECK(buf != NULL);
	memset(buf, 0, 8192);
	CHECK_OK(map_at(ctx, dom, buf, 8192, &at));
	put64(c.wr, 1);
	CHECK_EQ(get64(c.rd), 1);
	CHECK(all_bytes(buf, 8192, 0x21));
	CHECK_OK(iovm_domain_unmap(dom, at, 8192));
	CHECK_EQ(pending(dom), 1);
	/* Freed while its unmap waits: held, not free. */
	CHECK_OK(iovm_dma_free(ctx, buf));
	CHECK_EQ(share_info(ctx).domain_held, 8192);
	put64(c.wr, 2);
	landed = (uint8_t)get64(c.rd);
	if (landed == IOVM_STATUS_SUCCESS)
		CHECK(all_bytes(buf, 8192, 0x22)); /* the held memory, read through this process's mapping */
	CHECK_OK(iovm_domain_flush(dom));
	CHECK_EQ(pending(dom), 0);
	CHECK_EQ(share_info(ctx).domain_held, 0);
	put64(c.wr, 3);
	CHECK_EQ(get64(c.rd), 4);
	child_ok(&c);
	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK(st.flushes >= 1);
	CHECK_EQ(st.flushed_unmaps, 1);
	CHECK_EQ(st.iova_allocated, 0);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_EQ(share_info(ctx).heap_free, HEAP);
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
}

/* The batch full flushes by itself; so does the timeout (waited for, not timed). */
TEST(a_full_batch_and_the_timeout_flush)
{
	for (int by_timeout = 0; by_timeout < 2; by_timeout++) {
		struct iovm_domain *dom;
		struct iovm_ctx *ctx;
		uint8_t *buf[4];

		g_name = share_name("def-auto");
		ctx = by_timeout ? create(&dom, 4096, 1000) : create(&dom, 4, 600 * 1000 * 1000);
		for (int i = 0; i < 4; i++) {
			iovm_iova_t iova = IOVM_IOVA_ANY;

			buf[i] = iovm_dma_alloc(ctx, 4096, 4096, 0);
			CHECK(buf[i] != NULL);
			CHECK_OK(iovm_domain_map_ptr(dom, buf[i], 4096, IOVM_MAP_READ, &iova));
			CHECK_OK(iovm_dma_free(ctx, buf[i]));
			CHECK_OK(iovm_domain_unmap(dom, iova, 4096));
		}
		if (by_timeout)
			WAIT_UNTIL(pending(dom) == 0);
		/* The fourth unmap filled the batch of 4: flushed before it returned, or at the deadline. */
		CHECK_EQ(pending(dom), 0);
		CHECK_EQ(share_info(ctx).domain_held, 0);
		CHECK_OK(iovm_domain_destroy(dom));
		CHECK_EQ(share_info(ctx).heap_free, HEAP);
		CHECK_OK(iovm_close(ctx));
	}
}

/*
 * A process killed with @arg unmaps queued, 16 KiB the first, one page
 * each of the rest (the same page, mapped again and again), and one more
 * that detached a page table (a 2 MiB range whole): taken and held until
 * another process's flush, and free then, the table too.
 */
#define TABLE_AT (AT + (UINT64_C(512) << 20)) /* 2 MiB aligned, in a range of its own */
static void doomed(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	unsigned n = (unsigned)(uintptr_t)arg;
	struct iovm_domain_stats st;
	iovm_iova_t iova = IOVM_IOVA_ANY;
	struct iovm_domain *dom;
	uint8_t *buf;

	(void)rd;
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	buf = iovm_dma_alloc(ctx, 16384, 4096, 0);
	CHECK(buf != NULL);
	CHECK_OK(iovm_domain_map_ptr(dom, buf, 16384, IOVM_MAP_READ | IOVM_MAP_WRITE, &iova));
	CHECK_OK(iovm_domain_unmap(dom, iova, 16384));
	for (unsigned i = 1; i < n; i++) {
		iova = IOVM_IOVA_ANY;
		CHECK_OK(iovm_domain_map_ptr(dom, buf, 4096, IOVM_MAP_READ, &iova));
		CHECK_OK(iovm_domain_unmap(dom, iova, 4096));
	}
	iova = IOVM_IOVA(TABLE_AT);
	CHECK_OK(map_at(ctx, dom, buf, 4096, &iova));
	CHECK_OK(iovm_domain_unmap(dom, iova, SZ_2M)); /* its leaf table, detached */
	CHECK_EQ(pending(dom), n + 1); /* none flushed: the batch holds them, the journal too */
	/* Its memory freed while its unmaps wait: held for them, not freed by its death either. */
	CHECK_OK(iovm_dma_free(ctx, buf));
	CHECK_OK(iovm_domain_stats(dom, &st));
	put64(wr, n);
	put64(wr, st.tables); /* the detached one still counted: it is freed at the flush */
	pause();
}

static void killed_with(unsigned n)
{
	uint64_t taken = 16384 + (uint64_t)n * 4096, before, tables;
	struct iovm_domain_stats st;
	struct iovm_domain *dom;
	struct iovm_ctx *ctx;
	struct child c;

	g_name = share_name("def-dead");
	ctx = create(&dom, 4096, 600 * 1000 * 1000);
	before = share_info(ctx).heap_free;
	c = child_start(doomed, (void *)(uintptr_t)n);
	CHECK_EQ(get64(c.rd), n);
	tables = get64(c.rd);
	child_kill(&c);
	WAIT_UNTIL(share_info(ctx).processes == 1);
	CHECK_OK(iovm_share_check(ctx));
	/* Reaped: what its devices may still cache stays held and taken, until some process invalidates. */
	CHECK_EQ(share_info(ctx).domain_held, 16384);
	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_EQ(st.iova_allocated, taken);
	CHECK_EQ(st.leaves_4k + st.leaves_2m, 0);
	CHECK_EQ(st.pending_unmaps, 0); /* none is this process's */
	/* A flush with nothing of its own queued still invalidates for the dead, and frees what they left. */
	CHECK_OK(iovm_domain_flush(dom));
	CHECK_EQ(share_info(ctx).domain_held, 0);
	CHECK_EQ(share_info(ctx).heap_free, before); /* the dead's memory, given back */
	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_EQ(st.iova_allocated, 0);
	CHECK(st.flushes >= 1);
	/* The detached table is free again; the tables above it stay, as any domain's do once made. */
	CHECK_EQ(st.tables, tables - 1);
	/* Released once: another flush finds nothing to free twice. */
	CHECK_OK(iovm_domain_flush(dom));
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_EQ(share_info(ctx).heap_free, HEAP);
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
}

TEST(killed_with_unmaps_queued)
{
	killed_with(1);
	/* Far more than the 16 a slot's strict unmaps used to record. */
	killed_with(3000);
}

/*
 * The journal holds eight flush batches (here 16384 entries, 32 places
 * from each IOVA's hash for deferred unmaps): a process with more in
 * flight than it finds room for is flushed at once, though neither its
 * batch (65536) nor its timeout is reached, and what is queued is always
 * recorded. Then killed: nothing is left held or taken after a flush.
 */
static void overflowing(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain_stats st;
	uint64_t most = 0, flushes;
	struct iovm_domain *dom;
	uint8_t *buf;

	(void)rd;
	(void)arg;
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	buf = iovm_dma_alloc(ctx, 4096, 4096, 0);
	CHECK(buf != NULL);
	for (unsigned i = 0; i < 40000; i++) {
		iovm_iova_t iova = IOVM_IOVA_ANY;
		uint64_t now;

		CHECK_OK(iovm_domain_map_ptr(dom, buf, 4096, IOVM_MAP_READ, &iova));
		CHECK_OK(iovm_domain_unmap(dom, iova, 4096));
		if (i % 32)
			continue; /* the stats walk the IOVA bitmap: a look now and then */
		now = pending(dom);
		most = MAX(most, now);
	}
	CHECK_OK(iovm_domain_stats(dom, &st));
	flushes = st.flushes;
	printf("# at most %llu unmaps in flight, %llu flushes\n", (unsigned long long)most,
	       (unsigned long long)flushes);
	CHECK(flushes >= 2);
	CHECK(most <= 16384);
	CHECK(most > 16384 / 4);
	CHECK(st.pending_unmaps > 0);
	put64(wr, st.pending_unmaps);
	pause();
}

TEST(a_full_journal_flushes_at_once)
{
	struct iovm_domain_stats st;
	struct iovm_domain *dom;
	struct iovm_ctx *ctx;
	struct child c;

	g_name = share_name("def-full");
	ctx = create(&dom, 65536, 600 * 1000 * 1000);
	c = child_start(overflowing, NULL);
	CHECK(get64(c.rd) > 0);
	child_kill(&c);
	WAIT_UNTIL(share_info(ctx).processes == 1);
	CHECK_OK(iovm_domain_flush(dom));
	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_EQ(st.iova_allocated, 0);
	CHECK_EQ(share_info(ctx).domain_held, 0);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_EQ(share_info(ctx).heap_free, HEAP);
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
}

int main(void)
{
	test_init();
	RUN(bad_input);
	RUN(the_flush_reaches_every_process);
	RUN(a_full_batch_and_the_timeout_flush);
	RUN(killed_with_unmaps_queued);
	RUN(a_full_journal_flushes_at_once);
	return 0;
}
