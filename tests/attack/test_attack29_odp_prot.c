/* SPDX-License-Identifier: MIT */
/*
 * test_attack29_odp_prot.c - an on-demand registration (ON_DEMAND |
 * LOCAL_WRITE) mapped read-write on a device process's queue
 * (iovm_rqueue_map_mr()), with read-only pages in it. Written from the
 * public headers alone (iovm/mp.h, iovm/reg.h, iovm/dev.h, iovm/iommu.h).
 *
 * The promises under attack:
 *  - iovm/mp.h, iovm_rqueue_map_mr(): "before the answer, the device maps
 *    what is still pinned of the piece, writable only where the MR grants
 *    writes and the memory is writable now (a read-only page faults a
 *    device write ...)": so a write to a page writable now succeeds,
 *    whatever was read before in its 64 KiB piece, and a write to a page
 *    read-only now faults (IOVM_STATUS_PAGE_FAULT at that page, nothing
 *    written), a read of it sees its bytes;
 *  - "from the moment such a call [munmap(), mremap(), madvise()] returns,
 *    no device access through @mr lands anywhere: neither in the old pages
 *    nor in memory mapped anew at their addresses" (the new memory only
 *    through a new page request).
 * Shapes: read-only pages at the edges of a piece, the MR's first and
 * last page, MRs not 64 KiB aligned, several read-only runs, mprotect()
 * after registration but before the page request, mprotect() of a piece
 * the pin budget then evicted, pieces replaced by a mix of read-only and
 * writable memory, and a thread replacing pages while descriptors run.
 *
 * What the headers leave open (mprotect() of a page the device has mapped
 * already, either way) is run and printed ("# info"), asserting only that
 * the outcome is whole: a fault writes nothing, a success writes all.
 *
 * Found (2026-12-07): a device read of a read-only page with no page in
 * the client's page tables yet (mmap(PROT_READ) never touched, or one
 * MADV_DONTNEED discarded) faults IOVM_FAULT_NOT_PRESENT ("page request
 * refused (Bad address)" in the device's debug log) instead of reading
 * its zeros; the same page populated (MAP_POPULATE), or read-only after
 * being written, reads fine. ro_untouched_read_first,
 * ro_untouched_neighbours_first, replace_piece_mixed_untouched,
 * race_untouched_replace (always), ro_dontneed_untouched_then_read
 * (about a third of runs) show it; they skip, naming the bug, unless
 * IOVM_ATTACK9_KNOWN=1. A9_ONLY=name runs one.
 */
#include "attack/attack9_mr.h"

/*
 * Known (2026-12-07): a device read of a read-only page that holds no page
 * yet (never touched, or emptied by MADV_DONTNEED) is refused: the
 * registration, writable, faults its pages in for writing, which a
 * read-only mapping refuses, where it should fault them in for reading and
 * map them read-only. IOVM_ATTACK9_KNOWN=1 runs these tests.
 */
#define A29_UNTOUCHED_RO \
	"a read of a read-only page never faulted in is refused (the registration faults in for writing)"

#define ODPW (IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND)
#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)
#define PG 4096ul
#define WB 0x21 /* bytes of writable pages */
#define RB 0x5a /* bytes of read-only pages */

static void map_rw(uint8_t *at, size_t n, uint8_t b);
static void map_ro(uint8_t *at, size_t n);
static void map_ro_marked(uint8_t *at, uint8_t b);

static uint64_t pat(uint8_t b)
{
	return 0x0101010101010101ull * b;
}

static struct iovm_completion fill(struct a9 *r, uint64_t iova, size_t len, uint8_t b)
{
	return a9_go(r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = iova, .len = (uint32_t)len, .pattern = pat(b) });
}

static struct iovm_completion rd(struct a9 *r, uint64_t iova, size_t len)
{
	memset(r->heap, 0xee, len);
	return a9_go(r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = iova, .dst = r->ih.addr, .len = (uint32_t)len });
}

static uint64_t faults(struct a9 *r)
{
	return a9_stats(r->ctx).odp_faults;
}

static bool monitored(struct a9 *r, struct iovm_mr *mr, bool close_q)
{
	if (a9_monitor(r))
		return true;
	CHECK_OK(iovm_mr_dereg(mr));
	a9_close(r, close_q);
	return false;
}

static void done(struct a9 *r, struct iovm_mr *mr)
{
	CHECK_OK(iovm_rqueue_unmap_mr(r->q, mr));
	CHECK_OK(iovm_mr_dereg(mr));
	a9_close(r, true);
}

/* A write of one page that must fault there, the page keeping @keep. */
static void write_faults(struct a9 *r, uint64_t io, uint8_t *p, int pg, uint8_t keep, const char *what)
{
	struct iovm_completion c = fill(r, io + (uint64_t)pg * PG, PG, 0x44);

	CHECK_MSG(c.status == IOVM_STATUS_PAGE_FAULT, "%s: write of read-only page %d: status %u (bytes %u)", what, pg,
		  c.status, c.bytes_completed);
	CHECK_MSG(c.fault_addr == io + (uint64_t)pg * PG, "%s: page %d: fault at page %+lld", what, pg,
		  (long long)((int64_t)(c.fault_addr - io) / (int64_t)PG));
	CHECK_EQ(c.bytes_completed, 0);
	CHECK_MSG(a9_all(p + (size_t)pg * PG, keep, PG), "%s: read-only page %d changed by a faulted write", what, pg);
}

/* A write of one page that must succeed and land. */
static void write_lands(struct a9 *r, uint64_t io, uint8_t *p, int pg, uint8_t b, const char *what)
{
	struct iovm_completion c = fill(r, io + (uint64_t)pg * PG, PG, b);

	CHECK_MSG(c.status == IOVM_STATUS_SUCCESS,
		  "%s: write of writable page %d: status %u, reason %u, access %u at page %+lld, %u bytes", what, pg,
		  c.status, c.fault_reason, c.fault_access, (long long)((int64_t)(c.fault_addr - io) / (int64_t)PG),
		  c.bytes_completed);
	CHECK_MSG(a9_all(p + (size_t)pg * PG, b, PG), "%s: write of page %d succeeded, page not written", what, pg);
}

/* A read of one page that must succeed and see @b. */
static void read_sees(struct a9 *r, uint64_t io, int pg, uint8_t b, const char *what)
{
	struct iovm_completion c = rd(r, io + (uint64_t)pg * PG, PG);

	CHECK_MSG(c.status == IOVM_STATUS_SUCCESS, "%s: read of page %d: status %u, reason %u", what, pg, c.status,
		  c.fault_reason);
	CHECK_MSG(a9_all(r->heap, b, PG), "%s: read of page %d: saw %#x, not %#x", what, pg, r->heap[0], b);
}

/*
 * The shapes: an MR of @np pages starting @skew pages past a 64 KiB
 * boundary, the pages in @ro read-only from the start. First reads
 * (@mode 0: the whole MR in one copy; 1: only the read-only pages; 2: a
 * writable neighbour of each read-only page), then a write of every page
 * alone, then one write of the whole MR (faults at the first read-only
 * page, with the bytes before it done and none after), then reads of the
 * read-only pages.
 */
static void shape(const char *tag, size_t skew, int np, const int *ro, int nro, int mode)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k((size_t)np + skew + 16);
	uint8_t *p = app + skew * PG;
	bool isro[512] = { 0 };
	struct iovm_completion c;
	uint64_t f0;
	iovm_iova_t io;
	int first_ro = np;

	CHECK(np <= 256);
	memset(p, WB, (size_t)np * PG);
	for (int i = 0; i < nro; i++) {
		isro[ro[i]] = true;
		memset(p + (size_t)ro[i] * PG, RB, PG);
		CHECK_OK(mprotect(p + (size_t)ro[i] * PG, PG, PROT_READ));
		if (ro[i] < first_ro)
			first_ro = ro[i];
	}
	a9_open(&r, tag, "", 0);
	CHECK_OK(iovm_mr_reg(r.dom, p, (size_t)np * PG, ODPW, &mr));
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, RW, &io));
	f0 = faults(&r);
	if (mode == 0) {
		c = rd(&r, io.addr, (size_t)np * PG);
		CHECK_MSG(c.status == IOVM_STATUS_SUCCESS, "%s: read of the whole MR: status %u at page %lld", tag, c.status,
			  (long long)((c.fault_addr - io.addr) / PG));
		for (int pg = 0; pg < np; pg++)
			CHECK_MSG(a9_all(r.heap + (size_t)pg * PG, isro[pg] ? RB : WB, PG), "%s: read page %d wrong", tag, pg);
	} else {
		for (int i = 0; i < nro; i++) {
			int pg = ro[i];

			if (mode == 2) {
				pg = ro[i] + 1 < np && !isro[ro[i] + 1] ? ro[i] + 1 : ro[i] - 1;
				if (pg < 0 || isro[pg])
					continue;
			}
			read_sees(&r, io.addr, pg, isro[pg] ? RB : WB, tag);
		}
	}
	CHECK_MSG(faults(&r) > f0, "%s: the reads asked nothing: no device access", tag);
	for (int pg = 0; pg < np; pg++) {
		if (isro[pg])
			write_faults(&r, io.addr, p, pg, RB, tag);
		else
			write_lands(&r, io.addr, p, pg, 0x44, tag);
	}
	/* one write of the whole MR */
	c = fill(&r, io.addr, (size_t)np * PG, 0x66);
	if (first_ro == np) {
		CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	} else {
		CHECK_MSG(c.status == IOVM_STATUS_PAGE_FAULT, "%s: whole-MR write: status %u", tag, c.status);
		CHECK_MSG(c.fault_addr == io.addr + (uint64_t)first_ro * PG, "%s: whole-MR write faulted at page %lld, not %d",
			  tag, (long long)((c.fault_addr - io.addr) / PG), first_ro);
		CHECK_EQ(c.bytes_completed, (uint64_t)first_ro * PG);
	}
	for (int pg = 0; pg < np; pg++) {
		uint8_t want = pg < first_ro ? 0x66 : isro[pg] ? RB : 0x44;

		CHECK_MSG(a9_all(p + (size_t)pg * PG, want, PG), "%s: after the whole-MR write, page %d holds %#x, not %#x",
			  tag, pg, p[(size_t)pg * PG], want);
	}
	for (int i = 0; i < nro; i++)
		read_sees(&r, io.addr, ro[i], RB, tag);
	done(&r, mr);
	CHECK_OK(munmap(app, ((size_t)np + skew + 16) * PG));
}

static const int ro_edges[] = { 16, 31 };
static const int ro_mr_ends[] = { 0, 63 };
static const int ro_runs[] = { 3, 4, 5, 17, 18, 30, 32, 33, 34, 35, 47, 48, 62 };

TEST(edges_read_whole_then_write)
{
	shape("a29e0", 0, 64, ro_edges, 2, 0);
}

TEST(edges_read_ro_then_write)
{
	shape("a29e1", 0, 64, ro_edges, 2, 1);
}

TEST(edges_read_neighbour_then_write)
{
	shape("a29e2", 0, 64, ro_edges, 2, 2);
}

TEST(mr_ends_read_ro_then_write)
{
	shape("a29m1", 0, 64, ro_mr_ends, 2, 1);
}

TEST(mr_ends_read_neighbour_then_write)
{
	shape("a29m2", 0, 64, ro_mr_ends, 2, 2);
}

TEST(runs_read_whole_then_write)
{
	shape("a29r0", 0, 64, ro_runs, 13, 0);
}

TEST(runs_read_neighbour_then_write)
{
	shape("a29r2", 0, 64, ro_runs, 13, 2);
}

/* Not aligned: the MR starts 3 pages past a 64 KiB boundary; read-only at its first page, around the boundary at 13, and its last. */
static const int ro_skew[] = { 0, 12, 13, 28, 29, 60 };

TEST(skew3_read_whole_then_write)
{
	shape("a29s0", 3, 61, ro_skew, 6, 0);
}

TEST(skew3_read_ro_then_write)
{
	shape("a29s1", 3, 61, ro_skew, 6, 1);
}

TEST(skew3_read_neighbour_then_write)
{
	shape("a29s2", 3, 61, ro_skew, 6, 2);
}

/* A 15-page MR 9 pages in: it crosses one 64 KiB boundary (MR page 7). */
static const int ro_small[] = { 6, 7 };

TEST(small_cross_read_ro_then_write)
{
	shape("a29c1", 9, 15, ro_small, 2, 1);
}

TEST(small_cross_read_neighbour_then_write)
{
	shape("a29c2", 9, 15, ro_small, 2, 2);
}

/* Three pages, the middle one read-only, 15 pages in (crossing a boundary at MR page 1). */
static const int ro_mid[] = { 1 };

TEST(three_pages_mid_ro)
{
	shape("a29t1", 15, 3, ro_mid, 1, 1);
	shape("a29t0", 15, 3, ro_mid, 1, 0);
}

/*
 * Read-only memory never touched (mmap(PROT_READ) of anonymous memory:
 * no page yet, the zero page when read) inside the MR from the start:
 * a read sees zeros, a write faults, the neighbours take writes.
 */
static void ro_untouched(const char *tag, int first)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k(64);
	iovm_iova_t io;
	uint64_t f0;

	memset(app, WB, 64 * PG);
	CHECK_OK(munmap(app + 21 * PG, PG));
	if (first == 3)
		CHECK(mmap(app + 21 * PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_POPULATE, -1,
			   0) == app + 21 * PG);
	else
		map_ro(app + 21 * PG, 1);
	a9_open(&r, tag, "", 0);
	CHECK_OK(iovm_mr_reg(r.dom, app, 64 * PG, ODPW, &mr));
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, RW, &io));
	f0 = faults(&r);
	if (first == 0 || first == 3)
		read_sees(&r, io.addr, 21, 0, tag);
	else if (first == 1)
		write_faults(&r, io.addr, app, 21, 0, tag);
	else {
		write_lands(&r, io.addr, app, 20, 0x45, tag);
		write_lands(&r, io.addr, app, 22, 0x45, tag);
		read_sees(&r, io.addr, 19, WB, tag);
	}
	if (first != 1) /* a refused request is not counted answered: the write's fault is the device access there */
		CHECK_MSG(faults(&r) > f0, "%s: the first access asked nothing (no page request answered)", tag);
	read_sees(&r, io.addr, 21, 0, tag);
	write_faults(&r, io.addr, app, 21, 0, tag);
	write_lands(&r, io.addr, app, 20, 0x44, tag);
	write_lands(&r, io.addr, app, 22, 0x44, tag);
	done(&r, mr);
	CHECK_OK(munmap(app, 64 * PG));
}

TEST(ro_untouched_read_first)
{
	A9_KNOWN(A29_UNTOUCHED_RO);
	ro_untouched("a29unr", 0);
}

TEST(ro_untouched_write_first)
{
	ro_untouched("a29unw", 1);
}

TEST(ro_untouched_neighbours_first)
{
	A9_KNOWN(A29_UNTOUCHED_RO);
	ro_untouched("a29unn", 2);
}

/* The same, the read-only page populated (MAP_POPULATE: the zero page mapped). */
TEST(ro_populated_read_first)
{
	ro_untouched("a29unp", 3);
}

/* Writable memory never touched, in the MR from the start: read first (zeros), then written. */
TEST(rw_untouched_read_then_write)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k(64);
	iovm_iova_t io;
	uint64_t f0;

	memset(app, WB, 64 * PG);
	CHECK_OK(munmap(app + 21 * PG, 2 * PG));
	CHECK(mmap(app + 21 * PG, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) ==
	      app + 21 * PG);
	a9_open(&r, "a29rwu", "", 0);
	CHECK_OK(iovm_mr_reg(r.dom, app, 64 * PG, ODPW, &mr));
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, RW, &io));
	f0 = faults(&r);
	read_sees(&r, io.addr, 21, 0, "rw_untouched_read_then_write");
	CHECK(faults(&r) > f0);
	write_lands(&r, io.addr, app, 21, 0x44, "rw_untouched_read_then_write");
	write_lands(&r, io.addr, app, 22, 0x44, "rw_untouched_read_then_write");
	done(&r, mr);
	CHECK_OK(munmap(app, 64 * PG));
}

/*
 * A read-only page (written before it was made read-only) discarded by
 * MADV_DONTNEED: its bytes are zeros now (an invalidation the monitor
 * sees); a read sees them, a write faults.
 */
TEST(ro_dontneed_then_read)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k(64);
	iovm_iova_t io;

	memset(app, WB, 64 * PG);
	memset(app + 21 * PG, RB, PG);
	CHECK_OK(mprotect(app + 21 * PG, PG, PROT_READ));
	a9_open(&r, "a29rodn", "", 0);
	CHECK_OK(iovm_mr_reg(r.dom, app, 64 * PG, ODPW, &mr));
	if (!monitored(&r, mr, true))
		SKIP_CASE("no memory monitor (userfaultfd): invalidations are not seen");
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, RW, &io));
	read_sees(&r, io.addr, 21, RB, "ro_dontneed_then_read");
	CHECK_OK(madvise(app + 21 * PG, PG, MADV_DONTNEED));
	CHECK(a9_all(app + 21 * PG, 0, PG));
	read_sees(&r, io.addr, 21, 0, "ro_dontneed_then_read");
	write_faults(&r, io.addr, app, 21, 0, "ro_dontneed_then_read");
	write_lands(&r, io.addr, app, 22, 0x44, "ro_dontneed_then_read");
	done(&r, mr);
	CHECK_OK(munmap(app, 64 * PG));
}

/* The same, never read by the CPU after the discard (no page there when the device asks). */
TEST(ro_dontneed_untouched_then_read)
{
	A9_KNOWN(A29_UNTOUCHED_RO);
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k(64);
	iovm_iova_t io;

	memset(app, WB, 64 * PG);
	memset(app + 21 * PG, RB, PG);
	CHECK_OK(mprotect(app + 21 * PG, PG, PROT_READ));
	a9_open(&r, "a29rodu", "", 0);
	CHECK_OK(iovm_mr_reg(r.dom, app, 64 * PG, ODPW, &mr));
	if (!monitored(&r, mr, true))
		SKIP_CASE("no memory monitor (userfaultfd): invalidations are not seen");
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, RW, &io));
	read_sees(&r, io.addr, 21, RB, "ro_dontneed_untouched_then_read");
	CHECK_OK(madvise(app + 21 * PG, PG, MADV_DONTNEED));
	read_sees(&r, io.addr, 21, 0, "ro_dontneed_untouched_then_read");
	write_faults(&r, io.addr, app, 21, 0, "ro_dontneed_untouched_then_read");
	done(&r, mr);
	CHECK_OK(munmap(app, 64 * PG));
}

/*
 * Left open: a piece mapped writable; one page of it made read-only; then
 * another page of the same piece munmap()ed (mp.h: the device unmaps "the
 * pieces they touch"; the next access asks again, and the answer maps
 * writable only where the memory is writable now). A write of the
 * read-only page: printed; only a whole outcome asserted.
 */
TEST(info_mprotect_then_piece_invalidated)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k(64);
	struct iovm_completion c;
	iovm_iova_t io;
	uint64_t f0;

	memset(app, WB, 64 * PG);
	a9_open(&r, "a29mpi", "", 0);
	CHECK_OK(iovm_mr_reg(r.dom, app, 64 * PG, ODPW, &mr));
	if (!monitored(&r, mr, true))
		SKIP_CASE("no memory monitor (userfaultfd): invalidations are not seen");
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, RW, &io));
	CHECK_EQ(fill(&r, io.addr + 16 * PG, 16 * PG, 0x22).status, IOVM_STATUS_SUCCESS);
	CHECK_OK(mprotect(app + 20 * PG, PG, PROT_READ));
	CHECK_OK(munmap(app + 27 * PG, PG));
	f0 = faults(&r);
	read_sees(&r, io.addr, 26, 0x22, "info_mprotect_then_piece_invalidated");
	c = fill(&r, io.addr + 20 * PG, PG, 0x44);
	printf("# info: piece mapped writable, page 20 mprotect(PROT_READ), page 27 munmap()ed: page requests since %llu;"
	       " write of page 20: %s (reason %u), page now %#x\n",
	       (unsigned long long)(faults(&r) - f0), iovm_status_name(c.status), c.fault_reason, app[20 * PG]);
	if (c.status == IOVM_STATUS_SUCCESS)
		CHECK(a9_all(app + 20 * PG, 0x44, PG));
	else {
		CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
		CHECK(a9_all(app + 20 * PG, 0x22, PG));
	}
	c = fill(&r, io.addr + 27 * PG, PG, 0x44);
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_OK(mprotect(app + 20 * PG, PG, PROT_READ | PROT_WRITE));
	done(&r, mr);
	CHECK_OK(munmap(app, 27 * PG));
	CHECK_OK(munmap(app + 28 * PG, 36 * PG));
}

/*
 * mprotect() after registration, before any device access: the page
 * request finds the page read-only now: a write faults, its neighbours
 * (read first) take writes.
 */
TEST(mprotect_before_request)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k(64);
	iovm_iova_t io;
	uint64_t f0;

	memset(app, WB, 64 * PG);
	a9_open(&r, "a29mpb", "", 0);
	CHECK_OK(iovm_mr_reg(r.dom, app, 64 * PG, ODPW, &mr));
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, RW, &io));
	memset(app + 16 * PG, RB, PG);
	memset(app + 41 * PG, RB, PG);
	CHECK_OK(mprotect(app + 16 * PG, PG, PROT_READ));
	CHECK_OK(mprotect(app + 41 * PG, PG, PROT_READ));
	f0 = faults(&r);
	read_sees(&r, io.addr, 16, RB, "mprotect_before_request");
	read_sees(&r, io.addr, 40, WB, "mprotect_before_request");
	CHECK(faults(&r) > f0);
	write_faults(&r, io.addr, app, 16, RB, "mprotect_before_request");
	write_faults(&r, io.addr, app, 41, RB, "mprotect_before_request");
	for (int pg = 17; pg < 48; pg++)
		if (pg != 41)
			write_lands(&r, io.addr, app, pg, 0x44, "mprotect_before_request");
	done(&r, mr);
	CHECK_OK(munmap(app, 64 * PG));
}

/*
 * A piece the device mapped writable; the page made read-only; the piece
 * evicted by the pin budget (64 KiB: one piece): the next write is a new
 * page request, which finds the page read-only now: it must fault.
 */
TEST(mprotect_then_evicted)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k(64);
	struct iovm_reg_stats s0;
	iovm_iova_t io;

	memset(app, WB, 64 * PG);
	a9_open(&r, "a29mpe", "pin_budget=64K", 0);
	CHECK_OK(iovm_mr_reg(r.dom, app, 64 * PG, ODPW, &mr));
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, RW, &io));
	for (int pc = 0; pc < 4; pc++)
		CHECK_EQ(fill(&r, io.addr + (uint64_t)pc * 16 * PG, 16 * PG, 0x22).status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(fill(&r, io.addr + 16 * PG, 16 * PG, 0x33).status, IOVM_STATUS_SUCCESS);
	CHECK(a9_all(app + 16 * PG, 0x33, 16 * PG));
	CHECK_OK(mprotect(app + 20 * PG, PG, PROT_READ));
	s0 = a9_stats(r.ctx);
	CHECK_EQ(fill(&r, io.addr + 48 * PG, 16 * PG, 0x55).status, IOVM_STATUS_SUCCESS);
	CHECK_MSG(a9_stats(r.ctx).odp_evicted_bytes > s0.odp_evicted_bytes, "piece 1 was not evicted (budget 64 KiB)");
	s0 = a9_stats(r.ctx);
	write_faults(&r, io.addr, app, 20, 0x33, "mprotect_then_evicted");
	CHECK_MSG(a9_stats(r.ctx).odp_faults > s0.odp_faults, "the write after eviction asked nothing");
	read_sees(&r, io.addr, 20, 0x33, "mprotect_then_evicted");
	write_lands(&r, io.addr, app, 21, 0x44, "mprotect_then_evicted");
	write_lands(&r, io.addr, app, 19, 0x44, "mprotect_then_evicted");
	CHECK_OK(mprotect(app + 20 * PG, PG, PROT_READ | PROT_WRITE));
	done(&r, mr);
	CHECK_OK(munmap(app, 64 * PG));
}

/*
 * Left open by the headers (reg.h: mprotect() is no event; mp.h: writable
 * where "writable now" when the request is answered): a page the device
 * mapped writable, then made read-only, then written; and a page read
 * read-only, made writable, then written. Printed; only a whole outcome
 * is asserted.
 */
TEST(info_mprotect_after_mapped)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k(64);
	struct iovm_completion c;
	iovm_iova_t io;

	memset(app, WB, 64 * PG);
	memset(app + 40 * PG, RB, PG);
	CHECK_OK(mprotect(app + 40 * PG, PG, PROT_READ));
	a9_open(&r, "a29mpa", "", 0);
	CHECK_OK(iovm_mr_reg(r.dom, app, 64 * PG, ODPW, &mr));
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, RW, &io));
	CHECK_EQ(fill(&r, io.addr + 16 * PG, 16 * PG, 0x22).status, IOVM_STATUS_SUCCESS);
	CHECK_OK(mprotect(app + 20 * PG, PG, PROT_READ));
	c = fill(&r, io.addr + 20 * PG, PG, 0x44);
	printf("# info: mapped writable, then mprotect(PROT_READ), then written: %s (reason %u), page now %#x\n",
	       iovm_status_name(c.status), c.fault_reason, app[20 * PG]);
	if (c.status == IOVM_STATUS_SUCCESS)
		CHECK(a9_all(app + 20 * PG, 0x44, PG));
	else {
		CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
		CHECK(a9_all(app + 20 * PG, 0x22, PG));
	}
	/* a read-only page read (its piece mapped), made writable, written */
	read_sees(&r, io.addr, 40, RB, "info_mprotect_after_mapped");
	CHECK_OK(mprotect(app + 40 * PG, PG, PROT_READ | PROT_WRITE));
	c = fill(&r, io.addr + 40 * PG, PG, 0x44);
	printf("# info: read read-only, then mprotect(PROT_READ|PROT_WRITE), then written: %s (reason %u), page now %#x\n",
	       iovm_status_name(c.status), c.fault_reason, app[40 * PG]);
	if (c.status == IOVM_STATUS_SUCCESS)
		CHECK(a9_all(app + 40 * PG, 0x44, PG));
	else {
		CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
		CHECK(a9_all(app + 40 * PG, RB, PG));
	}
	/* whatever it said, a writable neighbour takes writes */
	write_lands(&r, io.addr, app, 41, 0x44, "info_mprotect_after_mapped");
	CHECK_OK(mprotect(app + 20 * PG, PG, PROT_READ | PROT_WRITE));
	done(&r, mr);
	CHECK_OK(munmap(app, 64 * PG));
}

static void map_rw(uint8_t *at, size_t n, uint8_t b)
{
	CHECK(mmap(at, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == at);
	memset(at, b, n * PG);
}

/* Read-only zeros, mapped so: never writable, not for a moment. */
static void map_ro(uint8_t *at, size_t n)
{
	CHECK(mmap(at, n * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == at);
}

/* Read-only memory holding @b, never writable at @at: written elsewhere, made read-only, moved in. */
static void map_ro_marked(uint8_t *at, uint8_t b)
{
	uint8_t *t = mmap(NULL, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(t != MAP_FAILED);
	/*
	 * The kernel may hand back @at itself, the hole just made there (and
	 * mremap() refuses to move a page onto itself): take another while
	 * this one holds it, inaccessible as a hole is, never writable.
	 */
	if (t == at) {
		uint8_t *t2 = mmap(NULL, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		CHECK(t2 != MAP_FAILED && t2 != at);
		CHECK_OK(munmap(t, PG));
		t = t2;
	}
	CHECK_OK(mprotect(t, PG, PROT_READ | PROT_WRITE));
	memset(t, b, PG);
	CHECK_OK(mprotect(t, PG, PROT_READ));
	CHECK(mremap(t, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, at) == at);
}

/*
 * A page the device had written; munmap(), and new writable memory
 * there; the piece read first (the new page seen, through a new page
 * request), then the new page written: it lands in the new memory.
 */
TEST(replace_rw_read_then_write)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k(64);
	iovm_iova_t io;
	uint64_t f0;

	memset(app, WB, 64 * PG);
	a9_open(&r, "a29rrw", "", 0);
	CHECK_OK(iovm_mr_reg(r.dom, app, 64 * PG, ODPW, &mr));
	if (!monitored(&r, mr, true))
		SKIP("no memory monitor (userfaultfd): invalidations are not seen");
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, RW, &io));
	CHECK_EQ(fill(&r, io.addr, 64 * PG, 0x22).status, IOVM_STATUS_SUCCESS);
	CHECK_OK(munmap(app + 20 * PG, PG));
	/* promise 3: nothing there now: read and write fault at the page */
	{
		struct iovm_completion c = fill(&r, io.addr + 19 * PG, 3 * PG, 0x77);

		CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
		CHECK_EQ(c.fault_addr, io.addr + 20 * PG);
		c = rd(&r, io.addr + 20 * PG, PG);
		CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	}
	map_rw(app + 20 * PG, 1, 0xce);
	f0 = faults(&r);
	{
		struct iovm_completion c = rd(&r, io.addr + 16 * PG, 16 * PG);

		CHECK_MSG(c.status == IOVM_STATUS_SUCCESS, "read of the piece after the replacement: status %u", c.status);
		CHECK(a9_all(r.heap + 4 * PG, 0xce, PG));
	}
	CHECK_MSG(faults(&r) > f0, "the new page was read without a page request");
	write_lands(&r, io.addr, app, 20, 0x44, "replace_rw_read_then_write");
	write_lands(&r, io.addr, app, 21, 0x45, "replace_rw_read_then_write");
	done(&r, mr);
	CHECK_OK(munmap(app, 64 * PG));
}

/*
 * A whole piece (and one page of each neighbour) replaced by new memory,
 * some of it read-only from the start: its first page, its last, and a
 * run inside. Read first, then written page by page.
 */
static void replace_mixed(const char *tag, size_t skew, bool untouched)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k(64 + skew + 16);
	uint8_t *p = app + skew * PG;
	const int lo = 15, hi = 33; /* [lo, hi) replaced, in MR pages */
	bool isro[64] = { 0 };
	iovm_iova_t io;
	uint64_t f0;

	isro[16] = isro[31] = isro[23] = isro[24] = isro[lo] = true;
	memset(p, WB, 64 * PG);
	a9_open(&r, tag, "", 0);
	CHECK_OK(iovm_mr_reg(r.dom, p, 64 * PG, ODPW, &mr));
	if (!monitored(&r, mr, true))
		SKIP("no memory monitor (userfaultfd): invalidations are not seen");
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, RW, &io));
	CHECK_EQ(fill(&r, io.addr, 64 * PG, 0x22).status, IOVM_STATUS_SUCCESS);
	CHECK_OK(munmap(p + lo * PG, (size_t)(hi - lo) * PG));
	for (int pg = lo; pg < hi; pg++)
		if (isro[pg] && untouched)
			map_ro(p + (size_t)pg * PG, 1);
		else if (isro[pg])
			map_ro_marked(p + (size_t)pg * PG, RB);
		else
			map_rw(p + (size_t)pg * PG, 1, 0xce);
	f0 = faults(&r);
	{
		struct iovm_completion c = rd(&r, io.addr, 64 * PG);

		CHECK_MSG(c.status == IOVM_STATUS_SUCCESS,
			  "%s: read after the replacement: status %u, reason %u at page %lld (%s), %u bytes", tag, c.status,
			  c.fault_reason, (long long)((c.fault_addr - io.addr) / PG),
			  isro[(c.fault_addr - io.addr) / PG] ? "read-only, untouched" : "writable", c.bytes_completed);
		for (int pg = 0; pg < 64; pg++) {
			uint8_t want = pg < lo || pg >= hi ? 0x22 : isro[pg] ? (untouched ? 0 : RB) : 0xce;

			CHECK_MSG(a9_all(r.heap + (size_t)pg * PG, want, PG), "%s: read page %d: %#x, not %#x", tag, pg,
				  r.heap[(size_t)pg * PG], want);
		}
	}
	CHECK_MSG(faults(&r) > f0, "%s: the new memory was read without a page request", tag);
	for (int pg = lo - 2; pg < hi + 2; pg++)
		if (isro[pg])
			write_faults(&r, io.addr, p, pg, untouched ? 0 : RB, tag);
		else
			write_lands(&r, io.addr, p, pg, 0x44, tag);
	for (int pg = lo; pg < hi; pg++)
		if (isro[pg])
			read_sees(&r, io.addr, pg, untouched ? 0 : RB, tag);
	done(&r, mr);
	CHECK_OK(munmap(app, (64 + skew + 16) * PG));
}

TEST(replace_piece_mixed)
{
	replace_mixed("a29pm0", 0, false);
}

TEST(replace_piece_mixed_skew)
{
	replace_mixed("a29pm5", 5, false);
}

/* The read-only pages of the new memory never touched (mmap(PROT_READ)): zeros to read. */
TEST(replace_piece_mixed_untouched)
{
	A9_KNOWN(A29_UNTOUCHED_RO);
	replace_mixed("a29pmu", 0, true);
}

/*
 * Promise 3 on a page one can still see: a memfd mapped twice, the MR
 * over one mapping. A page of it munmap()ed, then the memfd's page set
 * through the other mapping: no device access reaches it (writes fault,
 * reads never see the marker); new memory mapped there, read-only or
 * writable, is reached through a new request and the memfd stays.
 */
TEST(memfd_old_page_then_new)
{
	struct a9 r;
	struct iovm_mr *mr;
	int fd = memfd_create("a29alias", 0);
	uint8_t *a, *b;
	struct iovm_completion c;
	iovm_iova_t io;
	uint64_t f0;

	CHECK(fd >= 0);
	CHECK_OK(ftruncate(fd, 64 * PG));
	a = a9_pages_64k(64);
	CHECK(mmap(a, 64 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == a);
	b = mmap(NULL, 64 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(b != MAP_FAILED);
	memset(b, WB, 64 * PG);
	a9_open(&r, "a29alias", "", 0);
	CHECK_OK(iovm_mr_reg(r.dom, a, 64 * PG, ODPW, &mr));
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, RW, &io));
	CHECK_EQ(fill(&r, io.addr, 64 * PG, 0x22).status, IOVM_STATUS_SUCCESS);
	CHECK(a9_all(b, 0x22, 64 * PG));
	CHECK_OK(munmap(a + 16 * PG, PG));
	CHECK_OK(munmap(a + 31 * PG, PG));
	memset(b + 16 * PG, 0xab, PG);
	memset(b + 31 * PG, 0xab, PG);
	c = fill(&r, io.addr + 16 * PG, 16 * PG, 0x44);
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(c.fault_addr, io.addr + 16 * PG);
	c = rd(&r, io.addr + 31 * PG, PG);
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK(!memchr(r.heap, 0xab, PG));
	CHECK(a9_all(b + 16 * PG, 0xab, PG) && a9_all(b + 31 * PG, 0xab, PG));
	/* new memory: 16 read-only, 31 writable */
	map_ro_marked(a + 16 * PG, RB);
	map_rw(a + 31 * PG, 1, 0xce);
	f0 = faults(&r);
	c = rd(&r, io.addr + 16 * PG, 16 * PG);
	CHECK_MSG(c.status == IOVM_STATUS_SUCCESS, "read of the new memory: %u at page %lld", c.status,
		  (long long)((c.fault_addr - io.addr) / PG));
	CHECK(a9_all(r.heap, RB, PG));
	CHECK(a9_all(r.heap + 15 * PG, 0xce, PG));
	CHECK(faults(&r) > f0);
	write_faults(&r, io.addr, a, 16, RB, "memfd_old_page_then_new");
	write_lands(&r, io.addr, a, 31, 0x44, "memfd_old_page_then_new");
	write_lands(&r, io.addr, a, 17, 0x45, "memfd_old_page_then_new");
	CHECK(a9_all(b + 16 * PG, 0xab, PG) && a9_all(b + 31 * PG, 0xab, PG));
	CHECK(a9_all(b + 17 * PG, 0x45, PG));
	done(&r, mr);
	CHECK_OK(munmap(a, 64 * PG));
	CHECK_OK(munmap(b, 64 * PG));
	close(fd);
}

/*
 * The race: a thread replaces page pg (munmap, then new memory: read-only
 * RB (moved in, never writable there) on odd pages, writable 0xce on even ones; with a memfd under the
 * MR, the old page's memfd bytes set to 0xab once munmap() returned)
 * while fills and reads run over [pg-1, pg+2). Drained, then: the memfd
 * keeps 0xab (no access reached the old page); a read of the piece
 * first, then: a read-only page faults writes and keeps its zeros, a
 * writable one takes them, in the new memory.
 */
struct racer {
	uint8_t *app, *alias;
	bool untouched; /* read-only replacements mmap(PROT_READ), never touched */
	_Atomic int next, done, stop;
};

static void *racer_fn(void *arg)
{
	struct racer *x = arg;

	for (;;) {
		int pg;

		while ((pg = atomic_load(&x->next)) == atomic_load(&x->done) && !atomic_load(&x->stop))
			sched_yield();
		if (atomic_load(&x->stop))
			return NULL;
		CHECK_OK(munmap(x->app + (size_t)pg * PG, PG));
		if (x->alias)
			memset(x->alias + (size_t)pg * PG, 0xab, PG);
		if (pg % 2 && x->untouched)
			map_ro(x->app + (size_t)pg * PG, 1);
		else if (pg % 2)
			map_ro_marked(x->app + (size_t)pg * PG, RB);
		else
			map_rw(x->app + (size_t)pg * PG, 1, 0xce);
		atomic_store(&x->done, pg);
	}
}

static void race(const char *tag, bool memfd, int np, bool untouched)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k((size_t)np), *alias = NULL;
	int fd = -1;
	struct racer x = { .app = app, .untouched = untouched };
	const uint8_t rb = untouched ? 0 : RB;
	pthread_t th;
	iovm_iova_t io;
	uint64_t tag_n, f0;
	unsigned ro_pages = 0, rw_pages = 0, ro_read_faults = 0;
	double t0 = a9_now();

	if (memfd) {
		fd = memfd_create("a29race", 0);
		CHECK(fd >= 0);
		CHECK_OK(ftruncate(fd, (off_t)np * PG));
		CHECK(mmap(app, (size_t)np * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == app);
		alias = mmap(NULL, (size_t)np * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		CHECK(alias != MAP_FAILED);
		x.alias = alias;
	}
	memset(app, WB, (size_t)np * PG);
	a9_open(&r, tag, "", 0);
	CHECK_OK(iovm_mr_reg(r.dom, app, (size_t)np * PG, ODPW, &mr));
	if (!monitored(&r, mr, true))
		SKIP_CASE("no memory monitor (userfaultfd): invalidations are not seen");
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, RW, &io));
	f0 = faults(&r);
	CHECK_OK(pthread_create(&th, NULL, racer_fn, &x));
	tag_n = r.tag;
	for (int pg = 1; pg < np - 2; pg++) {
		int inflight = 0;
		bool go = false;

		tag_n = r.tag;
		for (int round = 0; round < 24 || !go || atomic_load(&x.done) != pg; round++) {
			while (inflight < 8) {
				struct iovm_desc d = { .tag = ++tag_n };

				if (tag_n % 2) {
					d.op = IOVM_OP_FILL;
					d.dst = io.addr + (uint64_t)(pg - 1) * PG;
					d.len = 3 * PG;
					d.pattern = pat(0x44);
				} else {
					d.op = IOVM_OP_COPY;
					d.src = io.addr + (uint64_t)(pg - 1) * PG;
					d.dst = r.ih.addr + (tag_n / 2 % 8) * 3 * PG;
					d.len = 3 * PG;
				}
				CHECK_OK(iovm_rqueue_submit(r.q, &d));
				inflight++;
			}
			if (round == 6 && !go) {
				atomic_store(&x.next, pg);
				go = true;
			}
			a9_reap_some(r.q, &inflight);
			CHECK_MSG(a9_now() - t0 < 25, "%s: page %d: no progress (descriptors hang)", tag, pg);
		}
		while (inflight) {
			a9_reap_some(r.q, &inflight);
			if (a9_now() - t0 >= 25) {
				struct iovm_reg_stats st = a9_stats(r.ctx);

				printf("# %s: drain hangs at page %d, %d in flight: odp_faults %llu, retries %llu, pinned %llu\n",
				       tag, pg, inflight, (unsigned long long)st.odp_faults,
				       (unsigned long long)st.odp_fault_retries, (unsigned long long)st.odp_pinned_bytes);
			}
			CHECK_MSG(a9_now() - t0 < 25, "%s: page %d: drain hangs", tag, pg);
		}
		r.tag = tag_n;
		if (memfd)
			CHECK_MSG(a9_all(alias + (size_t)pg * PG, 0xab, PG),
				  "%s: page %d: the old (memfd) page written after its munmap() returned: %#x", tag, pg,
				  alias[(size_t)pg * PG]);
		/* read the piece first, then write */
		{
			struct iovm_completion c = rd(&r, io.addr + (uint64_t)pg * PG, PG);

			if (untouched && pg % 2 && c.status == IOVM_STATUS_PAGE_FAULT) {
				ro_read_faults++; /* counted, asserted at the end: the race runs on */
				c.status = IOVM_STATUS_SUCCESS;
				memset(r.heap, 0, PG);
			}
			CHECK_MSG(c.status == IOVM_STATUS_SUCCESS, "%s: page %d replaced (%s): read: status %u, reason %u", tag,
				  pg, pg % 2 ? "read-only" : "writable", c.status, c.fault_reason);
			if (pg % 2)
				CHECK_MSG(a9_all(app + (size_t)pg * PG, rb, PG),
					  "%s: page %d: new read-only memory written (%#x) after its mmap", tag, pg,
					  app[(size_t)pg * PG]);
			CHECK(!memchr(r.heap, 0xab, PG));
		}
		if (pg % 2) {
			write_faults(&r, io.addr, app, pg, rb, tag);
			if (!untouched)
				read_sees(&r, io.addr, pg, rb, tag);
			ro_pages++;
		} else {
			write_lands(&r, io.addr, app, pg, 0x55, tag);
			rw_pages++;
		}
		/* the page after (writable, old) still takes writes */
		write_lands(&r, io.addr, app, pg + 1, 0x56, tag);
		if (memfd)
			CHECK(a9_all(alias + (size_t)pg * PG, 0xab, PG));
		if (a9_now() - t0 > 12) {
			printf("# %s: stopped at page %d (time)\n", tag, pg);
			break;
		}
	}
	atomic_store(&x.stop, 1);
	pthread_join(th, NULL);
	printf("# %s: %u read-only and %u writable replacements under descriptors, %llu page requests\n", tag, ro_pages,
	       rw_pages, (unsigned long long)(faults(&r) - f0));
	CHECK(ro_pages > 4 && rw_pages > 4);
	CHECK_MSG(ro_read_faults == 0, "%s: %u of %u read-only pages (never touched) faulted a read after their replacement",
		  tag, ro_read_faults, ro_pages);
	CHECK(faults(&r) > f0 + ro_pages);
	done(&r, mr);
	CHECK_OK(munmap(app, (size_t)np * PG));
	if (memfd) {
		CHECK_OK(munmap(alias, (size_t)np * PG));
		close(fd);
	}
}

TEST(race_mixed_replace)
{
	race("a29race", false, 96, false);
}

TEST(race_memfd_mixed_replace)
{
	race("a29racef", true, 64, false);
}

/* The read-only replacements never touched (zeros to read): fails as ro_untouched_read_first does, or hangs. */
TEST(race_untouched_replace)
{
	A9_KNOWN(A29_UNTOUCHED_RO);
	race("a29raceu", false, 96, true);
}

int main(void)
{
	test_init();
	A9_RUN(edges_read_whole_then_write);
	A9_RUN(edges_read_ro_then_write);
	A9_RUN(edges_read_neighbour_then_write);
	A9_RUN(mr_ends_read_ro_then_write);
	A9_RUN(mr_ends_read_neighbour_then_write);
	A9_RUN(runs_read_whole_then_write);
	A9_RUN(runs_read_neighbour_then_write);
	A9_RUN(skew3_read_whole_then_write);
	A9_RUN(skew3_read_ro_then_write);
	A9_RUN(skew3_read_neighbour_then_write);
	A9_RUN(small_cross_read_ro_then_write);
	A9_RUN(small_cross_read_neighbour_then_write);
	A9_RUN(three_pages_mid_ro);
	A9_RUN(ro_untouched_write_first);
	A9_RUN(ro_populated_read_first);
	A9_RUN(rw_untouched_read_then_write);
	A9_RUN(ro_dontneed_then_read);
	A9_RUN(mprotect_before_request);
	A9_RUN(mprotect_then_evicted);
	A9_RUN(info_mprotect_after_mapped);
	A9_RUN(info_mprotect_then_piece_invalidated);
	A9_RUN(replace_rw_read_then_write);
	A9_RUN(replace_piece_mixed);
	A9_RUN(replace_piece_mixed_skew);
	A9_RUN(memfd_old_page_then_new);
	A9_RUN(race_mixed_replace);
	A9_RUN(race_memfd_mixed_replace);
	/* Known to fail (A29_UNTOUCHED_RO): skipped unless IOVM_ATTACK9_KNOWN=1. */
	A9_RUN(ro_untouched_read_first);
	A9_RUN(ro_untouched_neighbours_first);
	A9_RUN(replace_piece_mixed_untouched);
	A9_RUN(race_untouched_replace);
	A9_RUN(ro_dontneed_untouched_then_read);
	return 0;
}
