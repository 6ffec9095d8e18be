/* SPDX-License-Identifier: MIT */
/*
 * test_attack11_samepage.c - the same pages mapped at thousands of IOVAs
 * by several processes of a shared domain, which are killed with those
 * unmaps queued (deferred) or with mappings standing: memory freed while
 * mapped stays held to the byte, exactly as long as some mapping (a live
 * one, or a dead one's queued unmap not yet flushed) names it, is given
 * to no allocation meanwhile, and is freed exactly once - never while the
 * survivor still maps it, also when the dead process was the memory's
 * owner (freed by its reap).
 */
#include "attack11.h"

#define NPROC 4
#define B1_PAGES 16 /* mapped by the dead only */
#define B2_PAGES 8  /* mapped by the dead, and one page by the survivor */
#define C_PAGES 4   /* each dead process's own block; one page mapped by the survivor too */
#define REPEAT 60   /* times each dead process maps each page, unmapping all but the last */
#define MAX_GRAB (A11_HEAP / 4096)

struct span {
	uint64_t pa, len;
};

/* Every 4 KiB block the heap has left: none in @avoid; filled with 0, and freed after a check of them. */
static unsigned grab_check(struct iovm_ctx *ctx, const struct span *avoid, unsigned n_avoid)
{
	static void *p[MAX_GRAB];
	unsigned n = 0;

	for (;;) {
		void *q = iovm_dma_alloc(ctx, 4096, 4096, 0);
		uint64_t pa;

		if (!q)
			break;
		CHECK(n < MAX_GRAB);
		pa = a11_pa(ctx, q);
		for (unsigned i = 0; i < n_avoid; i++)
			CHECK_MSG(pa + 4096 <= avoid[i].pa || pa >= avoid[i].pa + avoid[i].len,
				  "allocation at PA %#llx is in held memory [%#llx, +%#llx)", (unsigned long long)pa,
				  (unsigned long long)avoid[i].pa, (unsigned long long)avoid[i].len);
		memset(q, 0, 4096);
		p[n++] = q;
	}
	for (unsigned i = 0; i < n; i++) {
		CHECK(all_bytes(p[i], 4096, 0));
		CHECK_OK(iovm_dma_free(ctx, p[i]));
	}
	return n;
}

struct dead {
	struct child c;
	uint64_t c_pa;     /* its own block */
	uint64_t live[2];  /* IOVAs it left mapped at its death: a page of B1, a page of its own block */
};

static void same_pages(bool deferred)
{
	struct iovm_share_domain_params p = a11_params(deferred ? IOVM_DOMAIN_DEFERRED : 0, 65536, A11_NEVER);
	uint64_t b1, b2, mine, mine_c[NPROC], held_all, queued = 0;
	struct span avoid[2 + NPROC];
	struct dead d[NPROC];
	struct iovm_domain *dom;
	struct iovm_ctx *ctx;
	uint8_t *buf1, *buf2;
	struct devq dq;

	p.iova_size = UINT64_C(1) << 30;
	p.tables = 512;
	ctx = a11_share(deferred ? "a11-same-d" : "a11-same-s", &p, &dom);
	dq = devq_open(ctx, dom);
	buf1 = iovm_dma_alloc(ctx, B1_PAGES * A11_PAGE, 4096, 0);
	buf2 = iovm_dma_alloc(ctx, B2_PAGES * A11_PAGE, 4096, 0);
	CHECK(buf1 && buf2);
	b1 = a11_pa(ctx, buf1);
	b2 = a11_pa(ctx, buf2);
	mine = a11_map_pa(dom, b2 + 3 * A11_PAGE, A11_PAGE);
	for (int i = 0; i < NPROC; i++) {
		d[i].c = a11_agent();
		d[i].c_pa = a11_cmd(&d[i].c, A11_ALLOC, C_PAGES * A11_PAGE, 0, 0);
		mine_c[i] = a11_map_pa(dom, d[i].c_pa + A11_PAGE, A11_PAGE);
	}
	/* Each maps every page of B1, B2 and its own block REPEAT times, unmapping each (queued, when deferred). */
	for (int i = 0; i < NPROC; i++) {
		for (unsigned pg = 0; pg < B1_PAGES; pg++)
			a11_send(&d[i].c, A11_QUEUE, b1 + pg * A11_PAGE, A11_PAGE, REPEAT);
		for (unsigned pg = 0; pg < B2_PAGES; pg++)
			a11_send(&d[i].c, A11_QUEUE, b2 + pg * A11_PAGE, A11_PAGE, REPEAT);
		for (unsigned pg = 0; pg < C_PAGES; pg++)
			a11_send(&d[i].c, A11_QUEUE, d[i].c_pa + pg * A11_PAGE, A11_PAGE, REPEAT);
	}
	for (int i = 0; i < NPROC; i++)
		for (unsigned k = 0; k < B1_PAGES + B2_PAGES + C_PAGES; k++)
			(void)get64(d[i].c.rd);
	for (int i = 0; i < NPROC; i++) {
		d[i].live[0] = a11_cmd(&d[i].c, A11_MAP, b1 + (unsigned)i * A11_PAGE, A11_PAGE, 0);
		d[i].live[1] = a11_cmd(&d[i].c, A11_MAP, d[i].c_pa, A11_PAGE, 0);
	}
	for (int i = 0; i < NPROC; i++)
		queued += a11_cmd(&d[i].c, A11_PENDING, 0, 0, 0);
	if (deferred)
		CHECK(queued > 0);
	else
		CHECK_EQ(queued, 0);
	/* Freed while mapped (B1, B2 by the survivor; each C by its dead owner's reap). */
	CHECK_OK(iovm_dma_free(ctx, buf1));
	CHECK_OK(iovm_dma_free(ctx, buf2));
	held_all = (B1_PAGES + B2_PAGES) * A11_PAGE;
	CHECK_EQ(a11_held(ctx), held_all);
	for (int i = 0; i < NPROC; i++)
		CHECK_OK(kill(d[i].c.pid, SIGKILL));
	for (int i = 0; i < NPROC; i++)
		CHECK_EQ(child_wait(&d[i].c), -SIGKILL);
	a11_reaped(ctx, 1);
	CHECK_MSG(iovm_share_check(ctx) == 0, "%s", iovm_error_detail());
	held_all += NPROC * C_PAGES * A11_PAGE;
	CHECK_MSG(a11_held(ctx) == held_all, "held %llu after the deaths, not %llu", (unsigned long long)a11_held(ctx),
		  (unsigned long long)held_all);
	avoid[0] = (struct span){ b1, B1_PAGES * A11_PAGE };
	avoid[1] = (struct span){ b2, B2_PAGES * A11_PAGE };
	for (int i = 0; i < NPROC; i++)
		avoid[2 + i] = (struct span){ d[i].c_pa, C_PAGES * A11_PAGE };
	CHECK(grab_check(ctx, avoid, 2 + NPROC) > 0);
	CHECK_MSG(a11_iova(dom) == (1 + 3 * NPROC + queued) * A11_PAGE, "%llu bytes of IOVA taken, not %llu",
		  (unsigned long long)a11_iova(dom), (unsigned long long)((1 + 3 * NPROC + queued) * A11_PAGE));
	printf("# %s: %d processes killed with %llu unmaps queued\n", deferred ? "deferred" : "strict", NPROC,
	       (unsigned long long)queued);
	/* The survivor's device writes through its own mapping: into B2's held page. */
	CHECK_EQ(devq_fill(&dq, mine, A11_PAGE, 0x3c), IOVM_STATUS_SUCCESS);

	/* The flush (deferred) frees what only queued unmaps named; the live mappings keep B1 and every C. */
	CHECK_OK(iovm_domain_flush(dom));
	CHECK_MSG(a11_held(ctx) == held_all, "held %llu after the flush, not %llu: the dead's live mappings and mine "
		  "still name every block", (unsigned long long)a11_held(ctx), (unsigned long long)held_all);
	CHECK_EQ(a11_iova(dom), (1 + NPROC + 2 * NPROC) * A11_PAGE);
	CHECK(grab_check(ctx, avoid, 2 + NPROC) > 0);
	/* The dead's live mappings of B1 go: B1 is free; B2 stays, mine maps it. */
	for (int i = 0; i < NPROC; i++)
		CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(d[i].live[0]), A11_PAGE));
	if (deferred) {
		CHECK_EQ(a11_held(ctx), held_all); /* queued: held until the flush */
		CHECK_OK(iovm_domain_flush(dom));
	}
	held_all -= B1_PAGES * A11_PAGE;
	CHECK_MSG(a11_held(ctx) == held_all, "held %llu once B1's last mapping went, not %llu",
		  (unsigned long long)a11_held(ctx), (unsigned long long)held_all);
	/* Each C: the dead's live mapping goes, mine stays: held still; then mine: free. */
	for (int i = 0; i < NPROC; i++) {
		CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(d[i].live[1]), A11_PAGE));
		CHECK_OK(iovm_domain_flush(dom));
		CHECK_EQ(a11_held(ctx), held_all);
		CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(mine_c[i]), A11_PAGE));
		CHECK_OK(iovm_domain_flush(dom));
		held_all -= C_PAGES * A11_PAGE;
		CHECK_EQ(a11_held(ctx), held_all);
	}
	CHECK_EQ(held_all, B2_PAGES * A11_PAGE);
	CHECK(grab_check(ctx, avoid + 1, 1) > 0);
	{
		uint8_t *pg = iovm_dma_ptr(ctx, IOVM_PA(b2 + 3 * A11_PAGE));

		CHECK(pg != NULL);
		CHECK(all_bytes(pg, A11_PAGE, 0x3c)); /* nobody's allocation wrote it over */
	}
	CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(mine), A11_PAGE));
	CHECK_OK(iovm_domain_flush(dom));
	CHECK_EQ(a11_held(ctx), 0);
	CHECK_EQ(a11_iova(dom), 0);
	CHECK_EQ(a11_leaves(dom), 0);
	devq_close(&dq);
	a11_end(ctx, dom);
}

TEST(same_pages_deferred)
{
	same_pages(true);
}

TEST(same_pages_strict)
{
	same_pages(false);
}

int main(void)
{
	test_init();
	a11_watchdog(280);
	RUN(same_pages_deferred);
	RUN(same_pages_strict);
	return 0;
}
