/* SPDX-License-Identifier: MIT */
/*
 * test_implicit.c - the implicit on-demand registration: one key for the
 * whole address space, children made as devices reach them, accesses that
 * cross from one child to the next, memory that follows the address space,
 * memory the monitor cannot watch refused, prefetch, the pin budget, and a
 * key that dies with its registration.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "reg/reg_internal.h"
#include "reg/reg_util.h"

#define CHILD (64u << 20)
#define ACCESS_ALL_ODP                                                                                \
	(IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_READ | IOVM_ACCESS_REMOTE_WRITE | IOVM_ACCESS_ON_DEMAND)

static uint64_t page_requests(struct rig *r)
{
	struct iovm_queue_stats st;

	CHECK_OK(iovm_queue_stats(r->q, &st));
	return st.page_requests;
}

/* A copy by key and address on either side (key 0: the address is an IOVA). */
static struct iovm_completion keyed_copy(struct rig *r, uint32_t src_key, uint64_t src, uint32_t dst_key, uint64_t dst,
					 uint32_t len)
{
	return run_desc(r, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_KEYED, .src = src,
					       .dst = dst, .len = len, .src_key = src_key, .dst_key = dst_key });
}

/* An implicit MR, or a skip where there is no memory monitor to make one with. */
static struct iovm_mr *implicit_mr(struct rig *r, uint32_t access)
{
	struct iovm_mr *mr;
	int ret = iovm_mr_reg(r->dom, NULL, SIZE_MAX, access, &mr);

	if (ret == -EOPNOTSUPP) {
		printf("SKIP: no memory monitor (userfaultfd), so no implicit registration\n");
		rig_close(r);
		exit(77);
	}
	CHECK_OK(ret);
	return mr;
}

TEST(one_key_for_everything)
{
	struct rig r;
	struct iovm_mr *mr;
	struct iovm_mr_info info;
	uint8_t *app = app_map(64 * PG), *heap, stack_buf[3000];
	uint8_t *big = malloc(1 << 20);
	uint64_t before;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, 64 * PG, PG, 0);
	fill_random(heap, 64 * PG, 21);
	mr = implicit_mr(&r, ACCESS_ALL_ODP);
	info = mr_info(mr);
	CHECK(info.implicit && info.on_demand && info.valid && info.monitored);
	CHECK(info.addr == NULL && info.len == SIZE_MAX);
	CHECK_EQ(info.children, 0);
	CHECK_EQ(info.valid_pages, 0);
	CHECK(info.lkey && info.rkey && info.lkey != info.rkey);
	/* Registering cost nothing: nothing pinned. */
	CHECK_EQ(rstats(&r).odp_pinned_bytes, 0);

	/* Into an mmap()ed buffer never touched, by the local key. */
	before = page_requests(&r);
	CHECK_EQ(keyed_copy(&r, 0, iova_of(&r, heap), info.lkey, (uintptr_t)app, 64 * PG).status,
		 IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(app, heap, 64 * PG));
	CHECK(page_requests(&r) - before >= 4); /* 64 KiB at a time */
	CHECK(mr_info(mr).children >= 1);
	CHECK(mr_info(mr).valid_pages >= 64);
	/* Out of malloc()ed memory and into the stack, by the remote key. */
	fill_random(big, 1 << 20, 22);
	CHECK_EQ(keyed_copy(&r, info.rkey, (uintptr_t)big + 12345, info.rkey, (uintptr_t)stack_buf, sizeof(stack_buf))
			 .status,
		 IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(stack_buf, big + 12345, sizeof(stack_buf)));
	/* Already mapped: no page request the second time. */
	before = page_requests(&r);
	CHECK_EQ(keyed_copy(&r, info.lkey, (uintptr_t)app, 0, iova_of(&r, heap), 64 * PG).status,
		 IOVM_STATUS_SUCCESS);
	CHECK_EQ(page_requests(&r), before);
	/* Not an IOVA anyone may use: by key only. */
	{
		iovm_iova_t iova;

		CHECK_EQ(iovm_mr_iova(mr, app, 1, &iova), -EINVAL);
	}
	/* Beyond user space, and a range that wraps: refused, nothing touched. */
	CHECK_EQ(keyed_copy(&r, 0, iova_of(&r, heap), info.lkey, UINT64_C(1) << 48, 8).status, IOVM_STATUS_KEY);
	CHECK_EQ(keyed_copy(&r, 0, iova_of(&r, heap), info.lkey, UINT64_MAX - 4, 8).status, IOVM_STATUS_KEY);
	no_violations(r.dom);
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_EQ(rstats(&r).odp_pinned_bytes, 0);
	CHECK_EQ(rstats(&r).mrs, 0);
	rig_close(&r);
	free(big);
	app_unmap(app, 64 * PG);
}

TEST(rights)
{
	struct rig r;
	struct iovm_mr *mr;
	struct iovm_mr_info info;
	uint8_t *app = app_map(4 * PG), *heap;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_zalloc(r.ctx, 4 * PG, PG, 0);
	/* Local write only: remote keys may not read or write. */
	mr = implicit_mr(&r, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND);
	info = mr_info(mr);
	memset(app, 0x5a, 4 * PG);
	CHECK_EQ(keyed_copy(&r, 0, iova_of(&r, heap), info.rkey, (uintptr_t)app, PG).status, IOVM_STATUS_KEY);
	CHECK_EQ(keyed_copy(&r, info.rkey, (uintptr_t)app, 0, iova_of(&r, heap), PG).status, IOVM_STATUS_KEY);
	CHECK_EQ(app[0], 0x5a);
	CHECK_EQ(heap[0], 0);
	CHECK_OK(iovm_mr_dereg(mr));
	/* Read only: a device write through it is refused. */
	mr = implicit_mr(&r, IOVM_ACCESS_REMOTE_READ | IOVM_ACCESS_ON_DEMAND);
	info = mr_info(mr);
	CHECK_EQ(keyed_copy(&r, 0, iova_of(&r, heap), info.lkey, (uintptr_t)app, PG).status, IOVM_STATUS_KEY);
	CHECK_EQ(app[0], 0x5a);
	CHECK_EQ(keyed_copy(&r, info.rkey, (uintptr_t)app, 0, iova_of(&r, heap), PG).status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(heap[0], 0x5a);
	CHECK_EQ(iovm_mr_advise(mr, app, PG, IOVM_ADVISE_WRITE), -EINVAL);
	CHECK_OK(iovm_mr_dereg(mr));
	/* Without ON_DEMAND there is no implicit registration. */
	{
		struct iovm_mr *m;

		CHECK_EQ(iovm_mr_reg(r.dom, NULL, SIZE_MAX, IOVM_ACCESS_LOCAL_WRITE, &m), -EINVAL);
	}
	no_violations(r.dom);
	rig_close(&r);
	app_unmap(app, 4 * PG);
}

/* A range mapped across a 64 MiB boundary: [boundary - 8 pages, boundary + 8 pages) is used. */
static uint8_t *across_boundary(uint8_t **base, size_t *len)
{
	uint8_t *p;

	*len = 3 * (size_t)CHILD;
	p = app_map(*len);
	*base = p;
	return (uint8_t *)align_up((uintptr_t)p + 1, CHILD);
}

TEST(across_children)
{
	struct rig r;
	struct iovm_mr *mr;
	struct iovm_mr_info info;
	uint8_t *base, *boundary, *heap;
	size_t len;
	struct iovm_sge *sg;
	uint64_t children;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_zalloc(r.ctx, 32 * PG, PG, 0);
	boundary = across_boundary(&base, &len);
	fill_random(boundary - 8 * PG, 16 * PG, 23);
	mr = implicit_mr(&r, ACCESS_ALL_ODP);
	info = mr_info(mr);
	/* One descriptor, two children: the key is asked again where the first ends. */
	CHECK_EQ(keyed_copy(&r, info.lkey, (uintptr_t)(boundary - 8 * PG), 0, iova_of(&r, heap), 16 * PG).status,
		 IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(heap, boundary - 8 * PG, 16 * PG));
	children = mr_info(mr).children;
	CHECK_EQ(children, 2);
	/* Both sides keyed, each crossing at a different byte. */
	CHECK_EQ(keyed_copy(&r, info.lkey, (uintptr_t)(boundary - 3 * PG - 100), info.rkey,
			    (uintptr_t)(boundary - 5 * PG + 7), 6 * PG)
			 .status,
		 IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(boundary - 5 * PG + 7, heap + 5 * PG - 100, 6 * PG));
	/* A gather whose entries cross, by keys. */
	sg = iovm_dma_zalloc(r.ctx, 2 * sizeof(*sg), 64, 0);
	sg[0] = (struct iovm_sge){ .iova = (uintptr_t)(boundary - 100), .len = 200, .key = info.lkey };
	sg[1] = (struct iovm_sge){ .iova = (uintptr_t)(boundary - PG), .len = 2 * PG, .key = info.rkey };
	memset(heap, 0, 32 * PG);
	CHECK_EQ(run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_GATHER, .flags = IOVM_DESC_KEYED, .sg_count = 2,
						  .src = iova_of(&r, sg), .dst = iova_of(&r, heap), .len = 200 + 2 * PG })
			 .status,
		 IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(heap, boundary - 100, 200) && !memcmp(heap + 200, boundary - PG, 2 * PG));
	CHECK_EQ(mr_info(mr).children, children);
	no_violations(r.dom);
	CHECK_OK(iovm_mr_dereg(mr));
	rig_close(&r);
	app_unmap(base, len);
}

TEST(follows_the_address_space)
{
	struct rig r;
	struct iovm_mr *mr;
	struct iovm_mr_info info;
	uint8_t *app = app_map(32 * PG), *heap, *again;
	struct iovm_completion c;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, 16 * PG, PG, 0);
	memset(heap, 0xab, 16 * PG);
	mr = implicit_mr(&r, ACCESS_ALL_ODP);
	info = mr_info(mr);
	CHECK_EQ(keyed_copy(&r, 0, iova_of(&r, heap), info.lkey, (uintptr_t)app, 16 * PG).status,
		 IOVM_STATUS_SUCCESS);
	CHECK_EQ(app[PG], 0xab);
	/* Taken away (an inaccessible mapping over it, so that nothing else lands there): a page fault. */
	CHECK(mmap(app, 16 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == app);
	c = keyed_copy(&r, 0, iova_of(&r, heap), info.lkey, (uintptr_t)app + 4 * PG, PG);
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	/* Invalidated by the monitor, not caught stale by the guard. */
	CHECK_EQ(c.fault_reason, IOVM_FAULT_NOT_PRESENT);
	CHECK(rstats(&r).invalidated_pages >= 16);
	/* Mapped again: the key reaches the new memory, as the address space now is. */
	again = mmap(app, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	CHECK(again == app);
	memset(heap, 0xcd, PG);
	CHECK_EQ(keyed_copy(&r, 0, iova_of(&r, heap), info.lkey, (uintptr_t)app + 4 * PG, PG).status,
		 IOVM_STATUS_SUCCESS);
	CHECK_EQ(app[4 * PG], 0xcd);
	/* Discarded: the next access faults a fresh zero page in. */
	CHECK_OK(madvise(app, 16 * PG, MADV_DONTNEED));
	CHECK_EQ(keyed_copy(&r, info.lkey, (uintptr_t)app + 4 * PG, 0, iova_of(&r, heap), PG).status,
		 IOVM_STATUS_SUCCESS);
	CHECK_EQ(heap[0], 0);
	no_violations(r.dom);
	CHECK_OK(iovm_mr_dereg(mr));
	rig_close(&r);
	app_unmap(app, 32 * PG);
}

TEST(unwatchable_memory_faults)
{
	struct rig r;
	struct iovm_mr *mr;
	struct iovm_mr_info info;
	uint8_t *heap, *file;
	int fd = open("/proc/self/exe", O_RDONLY);
	struct iovm_completion c;

	CHECK(fd >= 0);
	/* A file's private mapping: userfaultfd cannot watch it, so its pins could outlive it. */
	file = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK(file != MAP_FAILED);
	file[100] = 0x77;
	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_zalloc(r.ctx, PG, PG, 0);
	mr = implicit_mr(&r, ACCESS_ALL_ODP);
	info = mr_info(mr);
	c = keyed_copy(&r, 0, iova_of(&r, heap), info.lkey, (uintptr_t)file, PG);
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(file[100], 0x77);
	CHECK_EQ(file[0], 0x7f); /* ELF */
	c = keyed_copy(&r, info.lkey, (uintptr_t)file, 0, iova_of(&r, heap), PG);
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(heap[0], 0);
	no_violations(r.dom);
	CHECK_OK(iovm_mr_dereg(mr));
	rig_close(&r);
	munmap(file, PG);
	close(fd);
}

TEST(prefetch)
{
	struct rig r;
	struct iovm_mr *mr;
	struct iovm_mr_info info;
	uint8_t *base, *boundary, *heap;
	size_t len;
	uint64_t before;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, 64 * PG, PG, 0);
	boundary = across_boundary(&base, &len);
	mr = implicit_mr(&r, ACCESS_ALL_ODP);
	info = mr_info(mr);
	/* Across two children: both made, whole chunks pinned. */
	CHECK_OK(iovm_mr_advise(mr, boundary - 32 * PG, 64 * PG, IOVM_ADVISE_WRITE));
	CHECK_EQ(mr_info(mr).children, 2);
	CHECK_EQ(mr_info(mr).valid_pages, 64);
	CHECK_EQ(rstats(&r).odp_prefetched_bytes, 64 * PG);
	before = page_requests(&r);
	CHECK_EQ(keyed_copy(&r, 0, iova_of(&r, heap), info.lkey, (uintptr_t)(boundary - 32 * PG), 64 * PG).status,
		 IOVM_STATUS_SUCCESS);
	CHECK_EQ(page_requests(&r), before);
	CHECK_EQ(iovm_mr_advise(mr, (void *)(UINT64_C(1) << 48), PG, 0), -ERANGE);
	CHECK_OK(iovm_mr_dereg(mr));
	rig_close(&r);
	app_unmap(base, len);
}

TEST(pin_budget)
{
	struct rig r;
	struct iovm_mr *mr;
	struct iovm_mr_info info;
	uint8_t *app = app_map(256 * PG), *heap;

	/* Room for four chunks of 64 KiB, across whatever children. */
	rig_open(&r, REG_OPTS ",pin_budget=256K", NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, 16 * PG, PG, 0);
	mr = implicit_mr(&r, ACCESS_ALL_ODP);
	info = mr_info(mr);
	for (unsigned c = 0; c < 16; c++) {
		fill_random(heap, 16 * PG, c);
		CHECK_EQ(keyed_copy(&r, 0, iova_of(&r, heap), info.lkey, (uintptr_t)(app + c * 16 * PG), 16 * PG)
				 .status,
			 IOVM_STATUS_SUCCESS);
		CHECK(!memcmp(app + c * 16 * PG, heap, 16 * PG));
		CHECK(rstats(&r).odp_pinned_bytes <= 256 << 10);
	}
	CHECK(rstats(&r).odp_evicted_bytes >= 12 * 16 * PG);
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_EQ(rstats(&r).odp_pinned_bytes, 0);
	rig_close(&r);
	app_unmap(app, 256 * PG);
}

TEST(dead_key)
{
	struct rig r;
	struct iovm_mr *mr, *next;
	struct iovm_mr_info info;
	uint8_t *app = app_map(4 * PG), *heap;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, PG, PG, 0);
	memset(heap, 0x99, PG);
	mr = implicit_mr(&r, ACCESS_ALL_ODP);
	info = mr_info(mr);
	CHECK_EQ(keyed_copy(&r, 0, iova_of(&r, heap), info.lkey, (uintptr_t)app, PG).status, IOVM_STATUS_SUCCESS);
	CHECK_OK(iovm_mr_dereg(mr));
	/* Its key, and what it had mapped, reach nothing any more; nor does a new one reuse them. */
	memset(app, 0x11, PG);
	CHECK_EQ(keyed_copy(&r, 0, iova_of(&r, heap), info.lkey, (uintptr_t)app, PG).status, IOVM_STATUS_KEY);
	CHECK_EQ(keyed_copy(&r, 0, iova_of(&r, heap), info.rkey, (uintptr_t)app, PG).status, IOVM_STATUS_KEY);
	CHECK_EQ(app[0], 0x11);
	next = implicit_mr(&r, ACCESS_ALL_ODP);
	CHECK(mr_info(next).lkey != info.lkey);
	CHECK_EQ(keyed_copy(&r, 0, iova_of(&r, heap), info.lkey, (uintptr_t)app, PG).status, IOVM_STATUS_KEY);
	CHECK_EQ(app[0], 0x11);
	no_violations(r.dom);
	/* Left registered: its domain cannot go, but closing the context deregisters it, children and all. */
	CHECK_EQ(iovm_domain_destroy(r.dom), -EBUSY);
	CHECK_OK(iovm_queue_destroy(r.q));
	CHECK_OK(iovm_device_close(r.dev));
	iovm_close(r.ctx);
	app_unmap(app, 4 * PG);
}

int main(void)
{
	test_init();
	RUN(one_key_for_everything);
	RUN(rights);
	RUN(across_children);
	RUN(follows_the_address_space);
	RUN(unwatchable_memory_faults);
	RUN(prefetch);
	RUN(pin_budget);
	RUN(dead_key);
	return 0;
}
