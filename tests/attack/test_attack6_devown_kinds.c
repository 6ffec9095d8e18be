/* SPDX-License-Identifier: MIT */
/*
 * test_attack6_devown_kinds.c - iovm_rqueue_map() of a client's own
 * memory, at its edges: bad arguments (-EINVAL), memory not all mapped or
 * without the rights asked (-EFAULT: PROT_NONE, a guard page, a hole,
 * read-only memory asked for writing, beyond user space), ranges that
 * touch the shared heap (partly in it: -EINVAL; ending at its first byte
 * or starting after its last: own memory), 4096 own ranges per queue
 * (-ENOSPC beyond).
 */
#include "attack6_devown.h"

static int map_err(struct iovm_rqueue *q, const void *p, size_t len, uint32_t perm)
{
	iovm_iova_t iova;

	return iovm_rqueue_map(q, p, len, perm, &iova);
}

TEST(map_arguments_and_rights)
{
	const uint32_t rw = IOVM_MAP_READ | IOVM_MAP_WRITE;
	struct iovm_ctx *owner;
	struct child srv;
	struct a6_cl c;
	uint8_t *p = a6_anon(8 * A6_PAGE, PROT_READ | PROT_WRITE), *ro, *none;
	iovm_iova_t iova;
	int ret;

	owner = a6_setup("a6args", &srv, 1);
	c = a6_client(8);
	memset(p, 1, 8 * A6_PAGE);
	/* Bad arguments. */
	CHECK_EQ(map_err(c.q, p, 0, rw), -EINVAL);
	CHECK_EQ(map_err(c.q, p + 1, A6_PAGE, rw), -EINVAL);
	CHECK_EQ(map_err(c.q, p, A6_PAGE + 1, rw), -EINVAL);
	CHECK_EQ(map_err(c.q, p, A6_PAGE - 1, rw), -EINVAL);
	CHECK_EQ(map_err(c.q, p, A6_PAGE, 0), -EINVAL);
	CHECK_EQ(map_err(c.q, p, A6_PAGE, 1u << 7), -EINVAL);
	CHECK_EQ(map_err(NULL, p, A6_PAGE, rw), -EINVAL);
	CHECK_EQ(iovm_rqueue_map(c.q, p, A6_PAGE, rw, NULL), -EINVAL);
	/* Wrapping around the end of the address space. */
	ret = map_err(c.q, p, (size_t)0 - (uintptr_t)p, IOVM_MAP_READ);
	CHECK_MSG(ret == -EINVAL || ret == -EFAULT, "a range up to 2^64: %d", ret);
	ret = map_err(c.q, p, (size_t)0 - (uintptr_t)p + A6_PAGE, IOVM_MAP_READ);
	CHECK_MSG(ret == -EINVAL || ret == -EFAULT, "a range wrapping past 2^64: %d", ret);
	ret = map_err(c.q, (void *)(uintptr_t)0xfffffffffffff000ull, A6_PAGE, IOVM_MAP_READ);
	CHECK_MSG(ret == -EINVAL || ret == -EFAULT, "the last page of the kernel's half: %d", ret);
	ret = map_err(c.q, (void *)(uintptr_t)0xffffffffff600000ull, A6_PAGE, IOVM_MAP_READ); /* vsyscall */
	CHECK_MSG(ret == -EINVAL || ret == -EFAULT, "the vsyscall page: %d", ret);
	ret = map_err(c.q, NULL, A6_PAGE, IOVM_MAP_READ);
	CHECK_MSG(ret == -EINVAL || ret == -EFAULT, "page 0: %d", ret);
	/* A huge length over mapped and unmapped memory: refused, not walked for minutes. */
	ret = map_err(c.q, p, (size_t)1 << 46, IOVM_MAP_READ);
	CHECK_MSG(ret == -EFAULT || ret == -EINVAL || ret == -ENOMEM, "64 TiB: %d", ret);
	/* Not all mapped, or not with the rights asked: -EFAULT. */
	CHECK(munmap(p + 6 * A6_PAGE, A6_PAGE) == 0); /* a hole at page 6 */
	CHECK_EQ(map_err(c.q, p + 5 * A6_PAGE, 2 * A6_PAGE, IOVM_MAP_READ), -EFAULT);
	CHECK_EQ(map_err(c.q, p + 6 * A6_PAGE, A6_PAGE, IOVM_MAP_READ), -EFAULT);
	CHECK(mprotect(p + 2 * A6_PAGE, A6_PAGE, PROT_NONE) == 0); /* a guard page at 2 */
	CHECK_EQ(map_err(c.q, p, 4 * A6_PAGE, IOVM_MAP_READ), -EFAULT);
	CHECK_EQ(map_err(c.q, p + 2 * A6_PAGE, A6_PAGE, IOVM_MAP_READ), -EFAULT);
	CHECK_EQ(map_err(c.q, p + 2 * A6_PAGE, A6_PAGE, rw), -EFAULT);
	CHECK(mprotect(p + 3 * A6_PAGE, A6_PAGE, PROT_READ) == 0); /* read-only at 3 */
	CHECK_EQ(map_err(c.q, p + 3 * A6_PAGE, 2 * A6_PAGE, rw), -EFAULT);
	CHECK_EQ(map_err(c.q, p + 3 * A6_PAGE, A6_PAGE, IOVM_MAP_WRITE), -EFAULT);
	CHECK_OK(map_err(c.q, p + 3 * A6_PAGE, 2 * A6_PAGE, IOVM_MAP_READ));
	ro = a6_anon(A6_PAGE, PROT_READ);
	none = a6_anon(A6_PAGE, PROT_NONE);
	CHECK_EQ(map_err(c.q, ro, A6_PAGE, rw), -EFAULT);
	CHECK_OK(map_err(c.q, ro, A6_PAGE, IOVM_MAP_READ));
	CHECK_EQ(map_err(c.q, none, A6_PAGE, IOVM_MAP_READ), -EFAULT);
	/* Execute-only memory is not readable (where the CPU enforces it; else mapped). */
	CHECK(mprotect(none, A6_PAGE, PROT_EXEC) == 0);
	ret = map_err(c.q, none, A6_PAGE, IOVM_MAP_READ);
	CHECK_MSG(ret == -EFAULT || ret == 0, "PROT_EXEC only: %d", ret);
	/* The good pages still map, and the device works. */
	iova.addr = a6_map(c.q, p, 2 * A6_PAGE, rw);
	CHECK_EQ(a6_st(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = iova.addr, .len = 2 * A6_PAGE,
						.pattern = 0x0909090909090909ull }),
		 IOVM_STATUS_SUCCESS);
	CHECK_EQ(p[A6_PAGE + 5], 9);
	a6_client_close(&c);
	munmap(p, 8 * A6_PAGE);
	munmap(ro, A6_PAGE);
	munmap(none, A6_PAGE);
	a6_teardown(owner, &srv);
}

/* Map one page at exactly @at, not replacing anything: NULL when taken. */
static uint8_t *page_at(uint8_t *at)
{
	void *p = mmap(at, A6_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (p != at) {
		munmap(p, A6_PAGE);
		return NULL;
	}
	return p;
}

/* The heap's edges: what starts or ends there is own memory; what crosses them, -EINVAL. */
TEST(ranges_at_the_heap_edges)
{
	struct iovm_share_info info;
	struct iovm_ctx *owner;
	struct child srv;
	struct a6_cl c;
	uint8_t *heap, *end, *below, *above;
	uint8_t *blk;
	unsigned done = 0;

	owner = a6_setup("a6edge", &srv, 1);
	c = a6_client(8);
	CHECK_OK(iovm_share_info(c.ctx, &info));
	heap = info.heap_va;
	end = heap + info.heap_size;
	blk = iovm_dma_alloc(c.ctx, A6_PAGE, A6_PAGE, 0);
	CHECK(blk != NULL);
	/* Wholly containing the heap, or crossing into it from unmapped memory: never own memory. */
	CHECK_EQ(map_err(c.q, heap - A6_PAGE, info.heap_size + 2 * A6_PAGE, IOVM_MAP_READ), -EINVAL);
	below = page_at(heap - A6_PAGE);
	above = page_at(end);
	if (below) {
		iovm_iova_t iova;

		below[0] = 0x61;
		CHECK_EQ(map_err(c.q, below, 2 * A6_PAGE, IOVM_MAP_READ), -EINVAL);
		CHECK_EQ(map_err(c.q, below, info.heap_size + A6_PAGE, IOVM_MAP_READ), -EINVAL);
		/* Ending exactly at the heap's first byte: own memory, and reached. */
		CHECK_OK(iovm_rqueue_map(c.q, below, A6_PAGE, IOVM_MAP_READ | IOVM_MAP_WRITE, &iova));
		CHECK_EQ(a6_st(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = iova.addr, .len = A6_PAGE,
							.pattern = 0x7272727272727272ull }),
			 IOVM_STATUS_SUCCESS);
		CHECK_EQ(below[A6_PAGE - 1], 0x72);
		CHECK_OK(iovm_rqueue_unmap(c.q, iova, A6_PAGE));
		done++;
	}
	if (above) {
		iovm_iova_t iova;

		CHECK_EQ(map_err(c.q, end - A6_PAGE, 2 * A6_PAGE, IOVM_MAP_READ), -EINVAL);
		CHECK_OK(iovm_rqueue_map(c.q, above, A6_PAGE, IOVM_MAP_READ | IOVM_MAP_WRITE, &iova));
		CHECK_EQ(a6_st(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = iova.addr, .len = A6_PAGE,
							.pattern = 0x7373737373737373ull }),
			 IOVM_STATUS_SUCCESS);
		CHECK_EQ(above[0], 0x73);
		CHECK_OK(iovm_rqueue_unmap(c.q, iova, A6_PAGE));
		done++;
	}
	/* A range from own memory into the client's own heap block: partly in the heap. */
	if (below && blk == heap)
		CHECK_EQ(map_err(c.q, below, 2 * A6_PAGE, IOVM_MAP_READ | IOVM_MAP_WRITE), -EINVAL);
	CHECK_OK(iovm_dma_free(c.ctx, blk));
	a6_client_close(&c);
	if (below)
		munmap(below, A6_PAGE);
	if (above)
		munmap(above, A6_PAGE);
	a6_teardown(owner, &srv);
	if (!done)
		SKIP_CASE("the pages around the heap are taken: only the crossing ranges were tried");
}

/* 4096 own ranges per queue, not counting the heap's; the next one -ENOSPC. */
TEST(own_ranges_limit_per_queue)
{
	enum { N = 4096 };
	struct iovm_ctx *owner;
	struct child srv;
	struct a6_cl c;
	struct iovm_rqueue *q2;
	uint8_t *mem = a6_anon((N + 2) * A6_PAGE, PROT_READ | PROT_WRITE), *blk;
	static uint64_t iovas[N];
	iovm_iova_t iova;

	owner = a6_setup("a6lim", &srv, 1);
	c = a6_client(8);
	for (unsigned i = 0; i < N; i++)
		iovas[i] = a6_map(c.q, mem + (size_t)i * A6_PAGE, A6_PAGE, IOVM_MAP_READ | IOVM_MAP_WRITE);
	CHECK_EQ(map_err(c.q, mem + (size_t)N * A6_PAGE, A6_PAGE, IOVM_MAP_READ), -ENOSPC);
	/* Mapping the same page again is one more range: refused too. */
	CHECK_EQ(map_err(c.q, mem, A6_PAGE, IOVM_MAP_READ), -ENOSPC);
	/* The heap's ranges do not count. */
	blk = iovm_dma_alloc(c.ctx, A6_PAGE, A6_PAGE, 0);
	CHECK(blk != NULL);
	CHECK_OK(iovm_rqueue_map(c.q, blk, A6_PAGE, IOVM_MAP_READ, &iova));
	/* Every range reaches its own page. */
	for (unsigned i = 0; i < N; i += 97) {
		CHECK_EQ(a6_st(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = iovas[i], .len = 8,
							.pattern = 0x0101010101010101ull * (i % 251 + 1) }),
			 IOVM_STATUS_SUCCESS);
		CHECK_EQ(mem[(size_t)i * A6_PAGE], i % 251 + 1);
	}
	/* Per queue: a second queue of the same client has its own 4096. */
	CHECK_OK(iovm_rqueue_open(c.ctx, a6_dev, 8, &q2));
	CHECK_OK(map_err(q2, mem + (size_t)N * A6_PAGE, 2 * A6_PAGE, IOVM_MAP_READ));
	CHECK_OK(iovm_rqueue_close(q2));
	/* One unmapped, one more fits. */
	CHECK_OK(iovm_rqueue_unmap(c.q, IOVM_IOVA(iovas[7]), A6_PAGE));
	CHECK_EQ(a6_st(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = iovas[7], .len = 8 }),
		 IOVM_STATUS_PAGE_FAULT);
	iovas[7] = a6_map(c.q, mem + (size_t)(N + 1) * A6_PAGE, A6_PAGE, IOVM_MAP_READ | IOVM_MAP_WRITE);
	CHECK_EQ(map_err(c.q, mem, A6_PAGE, IOVM_MAP_READ), -ENOSPC);
	for (unsigned i = 0; i < N; i++)
		CHECK_OK(iovm_rqueue_unmap(c.q, IOVM_IOVA(iovas[i]), A6_PAGE));
	CHECK_OK(iovm_rqueue_unmap(c.q, iova, A6_PAGE));
	CHECK_OK(iovm_dma_free(c.ctx, blk));
	/* All gone: 4096 fit again (as one range each). */
	for (unsigned i = 0; i < N; i++)
		iovas[i] = a6_map(c.q, mem + (size_t)i * A6_PAGE, A6_PAGE, IOVM_MAP_READ);
	a6_client_close(&c); /* closing unmaps them all */
	munmap(mem, (N + 2) * A6_PAGE);
	a6_teardown(owner, &srv);
}

/* The [vdso] and [vvar] mappings of the client: special pages, not ordinary memory. */
static int find_map(const char *name, uint8_t **start, size_t *len, char perms[5])
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");
	int found = 0;

	CHECK(f != NULL);
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long a, b;

		if (strstr(line, name) && sscanf(line, "%lx-%lx %4s", &a, &b, perms) == 3) {
			*start = (uint8_t *)a;
			*len = b - a;
			found = 1;
		}
	}
	fclose(f);
	return found;
}

TEST(vdso_and_vvar)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct a6_cl c;
	uint8_t *p, *dst = a6_anon(4 * A6_PAGE, PROT_READ | PROT_WRITE);
	size_t len;
	char perms[5];
	iovm_iova_t iova;
	uint64_t idst;
	int ret, tried = 0;

	owner = a6_setup("a6vdso", &srv, 1);
	c = a6_client(8);
	idst = a6_map(c.q, dst, 4 * A6_PAGE, IOVM_MAP_READ | IOVM_MAP_WRITE);
	if (find_map("[vdso]", &p, &len, perms)) {
		uint32_t n = (uint32_t)(len < 4 * A6_PAGE ? len : 4 * A6_PAGE);

		tried++;
		CHECK_EQ(map_err(c.q, p, len, IOVM_MAP_READ | IOVM_MAP_WRITE), -EFAULT);
		ret = iovm_rqueue_map(c.q, p, len, IOVM_MAP_READ, &iova);
		CHECK_MSG(ret == 0, "[vdso] (%s) is readable: map READ says %d", perms, ret);
		if (!ret) {
			struct iovm_cqe cq = a6_run(c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = iova.addr,
									      .dst = idst, .len = n });

			CHECK_EQ(cq.status, IOVM_STATUS_SUCCESS);
			CHECK(!memcmp(dst, p, n));
			/* Even a descriptor that tries: the vdso is never written. */
			CHECK_EQ(a6_st(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = iova.addr, .len = 8 }),
				 IOVM_STATUS_PAGE_FAULT);
			CHECK_OK(iovm_rqueue_unmap(c.q, iova, len));
		}
	}
	if (find_map("[vvar]", &p, &len, perms)) {
		tried++;
		ret = iovm_rqueue_map(c.q, p, len, IOVM_MAP_READ, &iova);
		printf("# [vvar] (%s, %zu bytes) mapped READ: %d\n", perms, len, ret);
		CHECK(ret == 0 || ret == -EFAULT);
		if (!ret) {
			struct iovm_cqe cq = a6_run(c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = iova.addr,
									      .dst = idst, .len = A6_PAGE });

			printf("# a COPY from [vvar]: status %u after %u bytes\n", cq.status, cq.bytes_completed);
			CHECK(cq.status == IOVM_STATUS_SUCCESS || cq.status == IOVM_STATUS_PAGE_FAULT);
			CHECK_OK(iovm_rqueue_unmap(c.q, iova, len));
		}
	}
	/* The device process still serves. */
	CHECK_EQ(a6_st(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = idst, .len = 8, .pattern = 3 }),
		 IOVM_STATUS_SUCCESS);
	CHECK_EQ(dst[0], 3);
	a6_client_close(&c);
	munmap(dst, 4 * A6_PAGE);
	a6_teardown(owner, &srv);
	if (!tried)
		SKIP_CASE("no [vdso] nor [vvar] in this process");
}

/* WRITE without READ: the device writes, never reads, as on the heap (the same fault for a read). */
TEST(write_only_as_the_heap)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct a6_cl c;
	uint8_t *own = a6_anon(2 * A6_PAGE, PROT_READ | PROT_WRITE), *heap, *rec = a6_anon(A6_PAGE, PROT_READ | PROT_WRITE);
	uint64_t io, ih, ir, src;
	struct iovm_completion r[2];
	iovm_iova_t hiova = { 0 };
	int ret;

	owner = a6_setup("a6wo", &srv, 1);
	c = a6_client(8);
	heap = iovm_dma_alloc(c.ctx, 2 * A6_PAGE, A6_PAGE, 0);
	CHECK(heap != NULL);
	memset(own, 0x12, 2 * A6_PAGE);
	memset(heap, 0x12, 2 * A6_PAGE);
	ir = a6_map(c.q, rec, A6_PAGE, IOVM_MAP_READ | IOVM_MAP_WRITE);
	ret = iovm_rqueue_map(c.q, heap, 2 * A6_PAGE, IOVM_MAP_WRITE, &hiova);
	if (ret) {
		printf("# WRITE without READ refused for the heap: %d\n", ret);
		CHECK_EQ(map_err(c.q, own, 2 * A6_PAGE, IOVM_MAP_WRITE), ret);
	} else {
		ih = hiova.addr;
		io = a6_map(c.q, own, 2 * A6_PAGE, IOVM_MAP_WRITE);
		for (int k = 0; k < 2; k++) {
			src = k ? io : ih;
			memset(rec, 0, 64);
			CHECK_EQ(a6_st(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = src + 100, .len = A6_PAGE,
								.pattern = 0x3434343434343434ull }),
				 IOVM_STATUS_SUCCESS);
			CHECK_EQ(a6_st(c.q, (struct iovm_desc){ .op = IOVM_OP_CRC32C, .src = src, .len = 64,
								.flags = IOVM_DESC_COMPLETION, .completion = ir }),
				 IOVM_STATUS_PAGE_FAULT);
			memcpy(&r[k], rec, sizeof(r[k]));
			r[k].fault_addr -= src;
		}
		CHECK_MSG(!memcmp(&r[0], &r[1], sizeof(r[0])),
			  "a read of write-only memory: heap reason %u access %u at +%#" PRIx64 ", own reason %u "
			  "access %u at +%#" PRIx64,
			  r[0].fault_reason, r[0].fault_access, r[0].fault_addr, r[1].fault_reason, r[1].fault_access,
			  r[1].fault_addr);
		CHECK(!memcmp(own, heap, 2 * A6_PAGE));
		CHECK_EQ(own[100], 0x34);
		CHECK_OK(iovm_rqueue_unmap(c.q, hiova, 2 * A6_PAGE));
	}
	CHECK_OK(iovm_dma_free(c.ctx, heap));
	a6_client_close(&c);
	munmap(own, 2 * A6_PAGE);
	munmap(rec, A6_PAGE);
	a6_teardown(owner, &srv);
}

int main(void)
{
	test_init();
	RUN(map_arguments_and_rights);
	RUN(ranges_at_the_heap_edges);
	RUN(own_ranges_limit_per_queue);
	RUN(vdso_and_vvar);
	RUN(write_only_as_the_heap);
	return 0;
}
