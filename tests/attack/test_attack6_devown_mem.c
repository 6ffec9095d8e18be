/* SPDX-License-Identifier: MIT */
/*
 * test_attack6_devown_mem.c - a client's own memory of odd kinds, reached
 * by the device process: the stack; a memfd, whose pages the device must
 * write in place (seen through a second mapping); a shared file (seen by
 * read()); a private file mapping (the client's copy changes, the file
 * never); hugetlb pages; pages never touched (faulted in, in the client);
 * madvise(MADV_DONTNEED) (what the client sees after is what the device
 * sees); a file cut short under its mapping; 4 GiB never touched; mremap() (the old addresses fault, the moved pages are not
 * reached); read-only memory that the device never writes, whatever a
 * descriptor tries (destination, dst2, scatter entry, completion record).
 * Then memory mprotect()ed after it was mapped: not promised either way;
 * what happens is printed, only the device process's health is checked.
 */
#include <sys/stat.h>

#include "attack6_devown.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)

static struct iovm_desc fill(uint64_t dst, uint32_t len, uint8_t byte)
{
	return (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = dst, .len = len,
				   .pattern = UINT64_C(0x0101010101010101) * byte };
}

static struct iovm_desc copy(uint64_t src, uint64_t dst, uint32_t len)
{
	return (struct iovm_desc){ .op = IOVM_OP_COPY, .src = src, .dst = dst, .len = len };
}

static int all(const uint8_t *p, size_t len, uint8_t b)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != b)
			return 0;
	return 1;
}

static int tmpfile_fd(size_t len)
{
	char path[] = "/tmp/a6-file-XXXXXX";
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	unlink(path);
	CHECK(ftruncate(fd, (off_t)len) == 0);
	return fd;
}

static void stack_user(struct iovm_rqueue *q, uint64_t src_iova)
{
	_Alignas(4096) volatile uint8_t frame[3 * 4096];
	uint64_t iova;

	memset((void *)frame, 0x11, sizeof(frame));
	iova = a6_map(q, (const void *)frame, sizeof(frame), RW);
	CHECK_EQ(a6_st(q, copy(src_iova, iova + 100, 2 * A6_PAGE)), IOVM_STATUS_SUCCESS);
	CHECK_EQ(frame[99], 0x11);
	CHECK_EQ(frame[100], 0x5e);
	CHECK_EQ(frame[100 + 2 * A6_PAGE - 1], 0x5e);
	CHECK_EQ(frame[100 + 2 * A6_PAGE], 0x11);
	CHECK_OK(iovm_rqueue_unmap(q, IOVM_IOVA(iova), sizeof(frame)));
}

TEST(stack_memfd_and_files)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct a6_cl c;
	uint8_t *src = a6_anon(4 * A6_PAGE, PROT_READ | PROT_WRITE), *mfd, *alias, *shf, *prf, buf[4096];
	uint64_t isrc, imfd, ishf, iprf;
	int fd, ffd, pfd;

	owner = a6_setup("a6kinds", &srv, 2);
	c = a6_client(8);
	memset(src, 0x5e, 4 * A6_PAGE);
	isrc = a6_map(c.q, src, 4 * A6_PAGE, IOVM_MAP_READ);
	/* The stack, in a frame that goes away after. */
	stack_user(c.q, isrc);
	/* A memfd: the device writes the file's pages, seen through another mapping. */
	mfd = a6_memfd(4 * A6_PAGE, &fd);
	alias = mmap(NULL, 4 * A6_PAGE, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(alias != MAP_FAILED);
	imfd = a6_map(c.q, mfd, 4 * A6_PAGE, RW);
	CHECK_EQ(a6_st(c.q, fill(imfd + A6_PAGE - 3, A6_PAGE + 6, 0x6d)), IOVM_STATUS_SUCCESS);
	CHECK(all(alias + A6_PAGE - 3, A6_PAGE + 6, 0x6d));
	CHECK_EQ(alias[A6_PAGE - 4], 0);
	/* The device reads what the other mapping wrote. */
	memset(mfd + 3 * A6_PAGE, 0x33, A6_PAGE);
	CHECK_EQ(a6_st(c.q, (struct iovm_desc){ .op = IOVM_OP_COMPARE_PATTERN, .src = imfd + 3 * A6_PAGE,
						.len = A6_PAGE, .pattern = 0x3333333333333333ull }),
		 IOVM_STATUS_SUCCESS);
	/* A shared file: read() sees what the device wrote. */
	ffd = tmpfile_fd(2 * A6_PAGE);
	shf = mmap(NULL, 2 * A6_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, ffd, 0);
	CHECK(shf != MAP_FAILED);
	ishf = a6_map(c.q, shf, 2 * A6_PAGE, RW);
	CHECK_EQ(a6_st(c.q, copy(isrc, ishf + 1, 2 * A6_PAGE - 1)), IOVM_STATUS_SUCCESS);
	CHECK_EQ(pread(ffd, buf, sizeof(buf), A6_PAGE), (ssize_t)sizeof(buf));
	CHECK(all(buf, sizeof(buf), 0x5e));
	CHECK_EQ(shf[0], 0);
	/* A private mapping of a file: the client's copy changes, the file never. */
	pfd = tmpfile_fd(2 * A6_PAGE);
	memset(buf, 0x70, sizeof(buf));
	CHECK_EQ(pwrite(pfd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	CHECK_EQ(pwrite(pfd, buf, sizeof(buf), A6_PAGE), (ssize_t)sizeof(buf));
	prf = mmap(NULL, 2 * A6_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, pfd, 0);
	CHECK(prf != MAP_FAILED);
	iprf = a6_map(c.q, prf, 2 * A6_PAGE, RW);
	/* Read first (the file's bytes), then written (the client's private copy). */
	CHECK_EQ(a6_st(c.q, copy(iprf + A6_PAGE, imfd, A6_PAGE)), IOVM_STATUS_SUCCESS);
	CHECK(all(alias, A6_PAGE, 0x70));
	CHECK_EQ(a6_st(c.q, fill(iprf, 2 * A6_PAGE, 0x71)), IOVM_STATUS_SUCCESS);
	CHECK(all(prf, 2 * A6_PAGE, 0x71));
	CHECK_EQ(pread(pfd, buf, sizeof(buf), A6_PAGE), (ssize_t)sizeof(buf));
	CHECK_MSG(all(buf, sizeof(buf), 0x70), "the device's write to a private mapping reached the file: %#x", buf[0]);
	a6_client_close(&c);
	munmap(src, 4 * A6_PAGE);
	munmap(mfd, 4 * A6_PAGE);
	munmap(alias, 4 * A6_PAGE);
	munmap(shf, 2 * A6_PAGE);
	munmap(prf, 2 * A6_PAGE);
	close(fd);
	close(ffd);
	close(pfd);
	a6_teardown(owner, &srv);
}

TEST(hugetlb_own_memory)
{
	const size_t huge = 2ul << 20;
	struct iovm_ctx *owner;
	struct child srv;
	struct a6_cl c;
	uint8_t *h = mmap(NULL, huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	uint8_t *src = a6_anon(4 * A6_PAGE, PROT_READ | PROT_WRITE);
	uint64_t ih, isrc;
	struct iovm_cqe cq;

	if (h == MAP_FAILED) {
		munmap(src, 4 * A6_PAGE);
		CHECK(1);
		SKIP_CASE("no 2 MiB page free for the client (mmap MAP_HUGETLB: %s)", strerror(errno));
	}
	owner = a6_setup("a6huge", &srv, 2);
	c = a6_client(8);
	memset(src, 0x48, 4 * A6_PAGE);
	isrc = a6_map(c.q, src, 4 * A6_PAGE, IOVM_MAP_READ);
	/* Untouched hugetlb memory, mapped in parts and whole. */
	ih = a6_map(c.q, h, huge, RW);
	cq = a6_run(c.q, copy(isrc, ih + huge - 3 * A6_PAGE - 5, 3 * A6_PAGE));
	CHECK_EQ(cq.status, IOVM_STATUS_SUCCESS);
	CHECK(all(h + huge - 3 * A6_PAGE - 5, 3 * A6_PAGE, 0x48));
	CHECK_EQ(h[huge - 1], 0);
	CHECK_EQ(a6_st(c.q, fill(ih, 65536, 0x49)), IOVM_STATUS_SUCCESS);
	CHECK(all(h, 65536, 0x49));
	/* Unmapped by the client: the device faults, at the first byte. */
	CHECK(munmap(h, huge) == 0);
	cq = a6_run(c.q, fill(ih + 4096, 8192, 1));
	CHECK_EQ(cq.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(cq.bytes_completed, 0);
	CHECK_OK(iovm_rqueue_unmap(c.q, IOVM_IOVA(ih), huge));
	a6_client_close(&c);
	munmap(src, 4 * A6_PAGE);
	a6_teardown(owner, &srv);
}

static unsigned resident(void *p, size_t len)
{
	unsigned char vec[64];
	unsigned n = 0;

	CHECK(len / A6_PAGE <= sizeof(vec));
	CHECK(mincore(p, len, vec) == 0);
	for (size_t i = 0; i < len / A6_PAGE; i++)
		n += vec[i] & 1;
	return n;
}

TEST(untouched_dontneed_and_mremap)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct a6_cl c;
	uint8_t *fresh = a6_anon(16 * A6_PAGE, PROT_READ | PROT_WRITE);
	uint8_t *dn = a6_anon(4 * A6_PAGE, PROT_READ | PROT_WRITE), *dst = a6_anon(4 * A6_PAGE, PROT_READ | PROT_WRITE);
	uint8_t *mv = a6_anon(8 * A6_PAGE, PROT_READ | PROT_WRITE), *to, *moved;
	uint64_t ifresh, idn, idst, imv;
	struct iovm_completion *rec = (struct iovm_completion *)(dst + 3 * A6_PAGE);
	struct iovm_cqe cq;

	owner = a6_setup("a6touch", &srv, 2);
	c = a6_client(8);
	/* Never touched: mapped, read as zeros, written and faulted in, in the client. */
	CHECK_EQ(resident(fresh, 16 * A6_PAGE), 0);
	ifresh = a6_map(c.q, fresh, 16 * A6_PAGE, RW);
	idst = a6_map(c.q, dst, 4 * A6_PAGE, RW);
	memset(dst, 0xee, 2 * A6_PAGE);
	CHECK_EQ(a6_st(c.q, copy(ifresh + 5 * A6_PAGE, idst, 2 * A6_PAGE)), IOVM_STATUS_SUCCESS);
	CHECK(all(dst, 2 * A6_PAGE, 0));
	CHECK_EQ(a6_st(c.q, fill(ifresh + 9 * A6_PAGE + 10, 3 * A6_PAGE, 0xf7)), IOVM_STATUS_SUCCESS);
	CHECK_MSG(resident(fresh + 9 * A6_PAGE, 4 * A6_PAGE) == 4, "the device's writes are not in the client's pages: %u",
		  resident(fresh + 9 * A6_PAGE, 4 * A6_PAGE));
	CHECK(all(fresh + 9 * A6_PAGE + 10, 3 * A6_PAGE, 0xf7));
	/* MADV_DONTNEED: the old bytes go, for the device as for the client. */
	idn = a6_map(c.q, dn, 4 * A6_PAGE, RW);
	memset(dn, 0xd0, 4 * A6_PAGE);
	CHECK(madvise(dn + A6_PAGE, 2 * A6_PAGE, MADV_DONTNEED) == 0);
	memset(dst, 0xee, 4 * A6_PAGE - 64);
	CHECK_EQ(a6_st(c.q, copy(idn, idst, 4 * A6_PAGE - 64)), IOVM_STATUS_SUCCESS);
	CHECK(all(dst, A6_PAGE, 0xd0));
	CHECK_MSG(all(dst + A6_PAGE, 2 * A6_PAGE, 0), "the device read bytes dropped by MADV_DONTNEED: %#x",
		  dst[A6_PAGE]);
	CHECK(all(dst + 3 * A6_PAGE, A6_PAGE - 64, 0xd0));
	CHECK_EQ(a6_st(c.q, fill(idn + A6_PAGE, 8, 0xd1)), IOVM_STATUS_SUCCESS);
	CHECK_EQ(dn[A6_PAGE], 0xd1);
	/* mremap() moving pages away: the old addresses fault; the pages at their new place are not reached. */
	imv = a6_map(c.q, mv, 8 * A6_PAGE, RW);
	memset(mv, 0x4f, 8 * A6_PAGE);
	to = a6_anon(8 * A6_PAGE, PROT_NONE);
	moved = mremap(mv + 2 * A6_PAGE, 4 * A6_PAGE, 4 * A6_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	CHECK(moved == to);
	memset(rec, 0, sizeof(*rec));
	cq = a6_run(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = imv + A6_PAGE, .len = 4 * A6_PAGE,
					     .pattern = 0x5151515151515151ull, .flags = IOVM_DESC_COMPLETION,
					     .completion = idst + 3 * A6_PAGE });
	CHECK_EQ(cq.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(cq.bytes_completed, A6_PAGE);
	CHECK_EQ(rec->fault_reason, IOVM_FAULT_BUS);
	CHECK_EQ(rec->fault_addr, imv + 2 * A6_PAGE);
	CHECK_EQ(rec->fault_access, IOVM_MAP_WRITE);
	CHECK_MSG(all(moved, 4 * A6_PAGE, 0x4f), "the device wrote the pages mremap() moved away: %#x", moved[0]);
	CHECK(all(mv + A6_PAGE, A6_PAGE, 0x51));
	/* Shrunk in place: its tail faults too; grown back (fresh pages): reached. */
	CHECK(mremap(mv + 6 * A6_PAGE, 2 * A6_PAGE, A6_PAGE, 0) == mv + 6 * A6_PAGE);
	cq = a6_run(c.q, fill(imv + 6 * A6_PAGE, 2 * A6_PAGE, 0x52));
	CHECK_EQ(cq.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(cq.bytes_completed, A6_PAGE);
	CHECK(mmap(mv + 2 * A6_PAGE, 4 * A6_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
		   0) == mv + 2 * A6_PAGE);
	CHECK_EQ(a6_st(c.q, fill(imv + A6_PAGE, 4 * A6_PAGE, 0x53)), IOVM_STATUS_SUCCESS);
	CHECK(all(mv + A6_PAGE, 4 * A6_PAGE, 0x53));
	CHECK(all(moved, 4 * A6_PAGE, 0x4f));
	a6_client_close(&c);
	munmap(fresh, 16 * A6_PAGE);
	munmap(dn, 4 * A6_PAGE);
	munmap(dst, 4 * A6_PAGE);
	munmap(mv, 7 * A6_PAGE);
	munmap(moved, 4 * A6_PAGE);
	a6_teardown(owner, &srv);
}

/* Read-only memory mapped READ: never written, whatever the descriptor names it as. */
TEST(read_only_is_never_written)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct a6_cl c;
	uint8_t *ro = a6_anon(4 * A6_PAGE, PROT_READ | PROT_WRITE), *rw = a6_anon(4 * A6_PAGE, PROT_READ | PROT_WRITE);
	uint8_t *lists = a6_anon(A6_PAGE, PROT_READ | PROT_WRITE), *rof, snap[4096];
	uint64_t iro, irw, ilist, irof;
	struct iovm_sge *sge = (struct iovm_sge *)lists;
	struct iovm_desc *kids = (struct iovm_desc *)(lists + 2048);
	int pfd = tmpfile_fd(A6_PAGE);
	struct iovm_cqe cq;

	owner = a6_setup("a6ro", &srv, 2);
	c = a6_client(8);
	memset(ro, 0x4e, 4 * A6_PAGE);
	memset(rw, 0x20, 4 * A6_PAGE);
	CHECK(mprotect(ro, 2 * A6_PAGE, PROT_READ) == 0); /* half read-only in the client too, half not */
	iro = a6_map(c.q, ro, 4 * A6_PAGE, IOVM_MAP_READ);
	irw = a6_map(c.q, rw, 4 * A6_PAGE, RW);
	ilist = a6_map(c.q, lists, A6_PAGE, IOVM_MAP_READ);
	/* A private read-only file mapping, where a write through /proc/PID/mem could break it. */
	memset(snap, 0x46, sizeof(snap));
	CHECK_EQ(pwrite(pfd, snap, sizeof(snap), 0), (ssize_t)sizeof(snap));
	rof = mmap(NULL, A6_PAGE, PROT_READ, MAP_PRIVATE, pfd, 0);
	CHECK(rof != MAP_FAILED);
	irof = a6_map(c.q, rof, A6_PAGE, IOVM_MAP_READ);
	for (int k = 0; k < 2; k++) {
		uint64_t tgt = k ? irof : iro + A6_PAGE - 8; /* the file; or both halves of ro */
		struct iovm_desc tries[] = {
			fill(tgt, 64, 0x99),
			copy(irw, tgt, 64),
			{ .op = IOVM_OP_COPY_CRC, .src = irw, .dst = tgt, .len = 64 },
			{ .op = IOVM_OP_DUALCAST, .src = irw, .dst = irw + A6_PAGE, .dst2 = tgt, .len = 64 },
			{ .op = IOVM_OP_DUALCAST, .src = irw, .dst = tgt, .dst2 = irw + A6_PAGE, .len = 64 },
			{ .op = IOVM_OP_SCATTER, .src = irw, .dst = ilist, .len = 64, .sg_count = 2 },
			/* Overlapping memmove inside the read-only range. */
			{ .op = IOVM_OP_COPY, .src = tgt, .dst = tgt + 8, .len = 64 },
			/* A completion record in read-only memory. */
			{ .op = IOVM_OP_NOOP, .flags = IOVM_DESC_COMPLETION, .completion = (tgt + 31) & ~31ull },
			{ .op = IOVM_OP_FILL, .dst = irw, .len = 8, .flags = IOVM_DESC_COMPLETION,
			  .completion = (tgt + 31) & ~31ull },
			{ .op = IOVM_OP_BATCH, .src = ilist + 2048, .len = 2 },
		};

		sge[0] = (struct iovm_sge){ .iova = irw + 2 * A6_PAGE, .len = 32 };
		sge[1] = (struct iovm_sge){ .iova = tgt, .len = 32 };
		kids[0] = fill(irw + 3 * A6_PAGE, 16, 0x21);
		kids[1] = (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = tgt, .len = 16, .flags = IOVM_DESC_COMPLETION,
					      .completion = (tgt + 63) & ~31ull };
		for (unsigned i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
			cq = a6_run(c.q, tries[i]);
			CHECK_MSG(cq.status != IOVM_STATUS_SUCCESS || tries[i].op == IOVM_OP_NOOP ||
					  (tries[i].op == IOVM_OP_FILL && tries[i].dst == irw),
				  "try %u on %s: a write to read-only memory succeeded", i, k ? "a file" : "anon");
			CHECK_MSG(all(ro, 4 * A6_PAGE, 0x4e), "try %u on %s: read-only memory written", i,
				  k ? "a file" : "anon");
			CHECK_MSG(all(rof, A6_PAGE, 0x46), "try %u: the read-only file mapping was written", i);
		}
	}
	CHECK_EQ(pread(pfd, snap, sizeof(snap), 0), (ssize_t)sizeof(snap));
	CHECK(all(snap, sizeof(snap), 0x46));
	/* DUALCAST with dst2 read-only from its first byte: nothing done in dst either. */
	CHECK(all(rw + A6_PAGE, 64, 0x20));
	a6_client_close(&c);
	munmap(ro, 4 * A6_PAGE);
	munmap(rw, 4 * A6_PAGE);
	munmap(lists, A6_PAGE);
	munmap(rof, A6_PAGE);
	close(pfd);
	a6_teardown(owner, &srv);
}

/* Not promised: memory the client makes read-only, or inaccessible, after mapping it for writing. */
TEST(mprotect_after_map)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct a6_cl c, other;
	uint8_t *p = a6_anon(2 * A6_PAGE, PROT_READ | PROT_WRITE), *q = a6_anon(A6_PAGE, PROT_READ | PROT_WRITE);
	uint64_t ip, iq;
	struct iovm_cqe cq;

	owner = a6_setup("a6mprot", &srv, 2);
	c = a6_client(8);
	other = a6_client(8);
	memset(p, 0x10, 2 * A6_PAGE);
	ip = a6_map(c.q, p, 2 * A6_PAGE, RW);
	iq = a6_map(other.q, q, A6_PAGE, RW);
	CHECK(mprotect(p, A6_PAGE, PROT_READ) == 0);
	CHECK(mprotect(p + A6_PAGE, A6_PAGE, PROT_NONE) == 0);
	cq = a6_run(c.q, fill(ip, 16, 0x11));
	printf("# a write to memory made read-only after the map: status %u, byte now %#x\n", cq.status, p[0]);
	CHECK(cq.status == IOVM_STATUS_SUCCESS || cq.status == IOVM_STATUS_PAGE_FAULT);
	cq = a6_run(c.q, fill(ip + A6_PAGE, 16, 0x12));
	CHECK(mprotect(p + A6_PAGE, A6_PAGE, PROT_READ) == 0);
	printf("# a write to memory made PROT_NONE after the map: status %u, byte now %#x\n", cq.status,
	       p[A6_PAGE]);
	CHECK(cq.status == IOVM_STATUS_SUCCESS || cq.status == IOVM_STATUS_PAGE_FAULT);
	/* The device process still serves the other client. */
	CHECK_EQ(a6_st(other.q, fill(iq, A6_PAGE, 0x13)), IOVM_STATUS_SUCCESS);
	CHECK(all(q, A6_PAGE, 0x13));
	a6_client_close(&c);
	a6_client_close(&other);
	munmap(p, 2 * A6_PAGE);
	munmap(q, A6_PAGE);
	a6_teardown(owner, &srv);
}

/* A range of 4 GiB reserved, not touched: mapped whole; only what the device writes becomes resident. */
TEST(four_gib_untouched)
{
	const size_t len = (size_t)4 << 30;
	struct iovm_ctx *owner;
	struct child srv;
	struct a6_cl c;
	uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint64_t im;
	struct iovm_cqe cq;
	unsigned char vec[4];

	if (m == MAP_FAILED) {
		CHECK(1);
		SKIP_CASE("no 4 GiB of address space: %s", strerror(errno));
	}
	owner = a6_setup("a6big", &srv, 2);
	c = a6_client(8);
	im = a6_map(c.q, m, len, RW);
	CHECK_EQ(a6_st(c.q, fill(im + ((size_t)3 << 30) + 5, 2 * A6_PAGE, 0x3b)), IOVM_STATUS_SUCCESS);
	CHECK(all(m + ((size_t)3 << 30) + 5, 2 * A6_PAGE, 0x3b));
	CHECK(mincore(m + ((size_t)3 << 30), 4 * A6_PAGE, vec) == 0);
	CHECK_EQ((vec[0] & 1) + (vec[1] & 1) + (vec[2] & 1) + (vec[3] & 1), 3);
	/* Across its end: 8 bytes done. */
	cq = a6_run(c.q, fill(im + len - 8, 16, 0x3c));
	CHECK_EQ(cq.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(cq.bytes_completed, 8);
	CHECK(all(m + len - 8, 8, 0x3c));
	a6_client_close(&c);
	munmap(m, len);
	a6_teardown(owner, &srv);
}

/* A shared file mapping whose file is cut short under it: the pages past the end fault (the CPU would SIGBUS). */
TEST(file_truncated_under_the_mapping)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct a6_cl c;
	int fd = tmpfile_fd(4 * A6_PAGE);
	uint8_t *f = mmap(NULL, 4 * A6_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	uint8_t *dst = a6_anon(4 * A6_PAGE, PROT_READ | PROT_WRITE);
	uint64_t iff, idst;
	struct iovm_cqe cq;

	CHECK(f != MAP_FAILED);
	owner = a6_setup("a6trunc", &srv, 2);
	c = a6_client(8);
	memset(f, 0x7e, 4 * A6_PAGE);
	iff = a6_map(c.q, f, 4 * A6_PAGE, RW);
	idst = a6_map(c.q, dst, 4 * A6_PAGE, RW);
	CHECK(ftruncate(fd, A6_PAGE + 100) == 0);
	cq = a6_run(c.q, copy(iff + A6_PAGE, idst, 3 * A6_PAGE));
	printf("# a COPY from a file cut short: status %u after %u bytes\n", cq.status, cq.bytes_completed);
	CHECK_EQ(cq.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(cq.bytes_completed, A6_PAGE);
	cq = a6_run(c.q, fill(iff + A6_PAGE, 3 * A6_PAGE, 0x7f));
	CHECK_EQ(cq.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(cq.bytes_completed, A6_PAGE);
	CHECK(all(f + A6_PAGE, 100, 0x7f));
	{
		struct stat st;

		CHECK(fstat(fd, &st) == 0);
		CHECK_MSG(st.st_size == (off_t)(A6_PAGE + 100), "the device's write grew the file: %lld",
			  (long long)st.st_size);
	}
	/* Grown again: reached again. */
	CHECK(ftruncate(fd, 4 * A6_PAGE) == 0);
	CHECK_EQ(a6_st(c.q, fill(iff + 3 * A6_PAGE, A6_PAGE, 0x70)), IOVM_STATUS_SUCCESS);
	CHECK(all(f + 3 * A6_PAGE, A6_PAGE, 0x70));
	a6_client_close(&c);
	munmap(f, 4 * A6_PAGE);
	munmap(dst, 4 * A6_PAGE);
	close(fd);
	a6_teardown(owner, &srv);
}

int main(void)
{
	test_init();
	RUN(stack_memfd_and_files);
	RUN(hugetlb_own_memory);
	RUN(untouched_dontneed_and_mremap);
	RUN(read_only_is_never_written);
	RUN(mprotect_after_map);
	RUN(four_gib_untouched);
	RUN(file_truncated_under_the_mapping);
	return 0;
}
