/* SPDX-License-Identifier: MIT */
/*
 * test_mr.c - pinned registrations of the application's own memory: DMA
 * through the engine into and out of it, keys, permissions, 2 MiB leaves,
 * overlapping registrations and their locks, and memory the monitor cannot
 * watch.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "dev/dev_util.h"
#include "reg/reg_util.h"

TEST(register_and_dma)
{
	struct rig r;
	struct iovm_mr *mr;
	struct iovm_mr_info info;
	uint8_t *app = app_map(64 * PG), *heap;
	uint64_t past;
	iovm_pa_t pa;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, 64 * PG, PG, 0);
	fill_random(app, 64 * PG, 1);
	/* Unaligned on purpose: the MR covers the pages around it. */
	CHECK_OK(iovm_mr_reg(r.dom, app + 100, 60 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
	CHECK_OK(iovm_mr_query(mr, &info));
	CHECK(info.addr == app + 100);
	CHECK_EQ(info.len, 60 * PG);
	CHECK_EQ(info.pages, 61);
	CHECK_EQ(info.valid_pages, 61);
	CHECK(info.valid);
	CHECK(info.monitored);
	CHECK(info.lkey != info.rkey);
	CHECK_EQ(info.iova.addr & (PG - 1), 100);
	/* Out of the application's memory into the DMA heap, and back. */
	CHECK_EQ(dma_copy(&r, mr_iova(mr, app + 100), iova_of(&r, heap), 60 * PG), IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(heap, app + 100, 60 * PG));
	fill_random(heap, 60 * PG, 2);
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mr, app + 100), 60 * PG), IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(heap, app + 100, 60 * PG));
	/*
	 * Past the registration: a fault, nothing touched. The domain follows
	 * the heap, whose windows may be mapped at any time after the MR, right
	 * after it too: then the page before the MR is the one outside it.
	 */
	past = info.iova.addr - 100 + 61 * PG;
	if (!iovm_domain_translate(r.dom, IOVM_IOVA(past), &pa, NULL))
		past = info.iova.addr - 100 - PG;
	CHECK_EQ(iovm_domain_translate(r.dom, IOVM_IOVA(past), &pa, NULL), -ENOENT);
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), past, 8), IOVM_STATUS_PAGE_FAULT);
	CHECK_OK(iovm_mr_dereg(mr));
	/* Deregistered: the IOVA is gone. */
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), info.iova.addr, 8), IOVM_STATUS_PAGE_FAULT);
	rig_close(&r);
	app_unmap(app, 64 * PG);
}

TEST(read_only_and_write_rights)
{
	struct rig r;
	struct iovm_mr *mr;
	uint8_t *ro = mmap(NULL, 4 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *app = app_map(4 * PG), *heap;
	struct iovm_completion c;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_zalloc(r.ctx, 4 * PG, PG, 0);
	/* Write access to memory that cannot be written: refused at registration. */
	CHECK_EQ(iovm_mr_reg(r.dom, ro, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr), -EFAULT);
	/* Unmapped memory: refused. */
	CHECK_EQ(iovm_mr_reg(r.dom, (void *)0x1000, PG, 0, &mr), -EFAULT);
	/* A read-only registration: the device reads it, and cannot write it. */
	memset(app, 0x5a, 4 * PG);
	CHECK_OK(iovm_mr_reg(r.dom, app, 4 * PG, IOVM_ACCESS_REMOTE_READ, &mr));
	CHECK_EQ(dma_copy(&r, mr_iova(mr, app), iova_of(&r, heap), PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(heap[0], 0x5a);
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = mr_iova(mr, app), .len = 8 });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(c.fault_reason, IOVM_FAULT_PERMISSION);
	CHECK_EQ(app[0], 0x5a);
	CHECK_OK(iovm_mr_dereg(mr));
	rig_close(&r);
	munmap(ro, 4 * PG);
	app_unmap(app, 4 * PG);
}

TEST(huge_leaves_and_locks)
{
	struct rig r;
	struct iovm_mr *a, *b;
	struct iovm_mr_info info;
	struct iovm_reg_stats st;
	uint8_t *raw = app_map(8 << 20), *app = (uint8_t *)align_up((uintptr_t)raw, 2 << 20);

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	/* 2 MiB-aligned memory: 2 MiB leaves. */
	CHECK_OK(iovm_mr_reg(r.dom, app, 4 << 20, IOVM_ACCESS_LOCAL_WRITE, &a));
	CHECK_OK(iovm_mr_query(a, &info));
	CHECK_EQ(info.huge_leaves, 2);
	CHECK_EQ(info.iova.addr & ((2 << 20) - 1), 0);
	/* Overlapping registrations: each page is locked once, unlocked when the last goes. */
	CHECK_OK(iovm_mr_reg(r.dom, app + (1 << 20), 2 << 20, 0, &b));
	CHECK_OK(iovm_reg_stats(r.ctx, &st));
	CHECK_EQ(st.mrs, 2);
	CHECK(page_locked(app + (1 << 20)));
	CHECK_OK(iovm_mr_dereg(a));
	CHECK(page_locked(app + (1 << 20)));  /* b still holds it */
	CHECK(!page_locked(app));             /* only a did */
	CHECK_OK(iovm_mr_dereg(b));
	CHECK(!page_locked(app + (1 << 20)));
	CHECK_OK(iovm_reg_stats(r.ctx, &st));
	CHECK_EQ(st.mrs, 0);
	CHECK_EQ(st.registered, 2);
	CHECK_EQ(st.deregistered, 2);
	rig_close(&r);
	app_unmap(raw, 8 << 20);
}

/* What the kernel says this process has locked (VmLck of /proc/self/status). */
static uint64_t vm_locked(void)
{
	char line[128];
	unsigned long kb = 0;
	FILE *f = fopen("/proc/self/status", "re");

	CHECK(f != NULL);
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %lu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return (uint64_t)kb << 10;
}

/* Overlapping registrations lock each page once: locked_bytes says what the kernel says. */
TEST(locked_bytes_count_each_page_once)
{
	struct rig r;
	struct iovm_mr *a, *b;
	uint8_t *app = app_map(4 << 20);
	uint64_t base;
	int ret;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	base = vm_locked();
	CHECK_EQ(rstats(&r).locked_bytes, 0);
	CHECK_OK(iovm_mr_reg(r.dom, app, 2 << 20, IOVM_ACCESS_LOCAL_WRITE, &a));
	ret = iovm_mr_reg(r.dom, app + (1 << 20), 2 << 20, IOVM_ACCESS_LOCAL_WRITE, &b);
	if (ret == -ENOMEM) {
		CHECK_OK(iovm_mr_dereg(a));
		rig_close(&r);
		app_unmap(app, 4 << 20);
		SKIP_CASE("3 MiB cannot be locked (RLIMIT_MEMLOCK)");
	}
	CHECK_OK(ret);
	CHECK_EQ(rstats(&r).locked_bytes, 3 << 20);
	CHECK_EQ(vm_locked() - base, 3 << 20);
	/* Part of the overlap replaced (over the test's own mapping: no hole): those pages are unlocked, for both. */
	CHECK(mmap(app + (3 << 19), 1 << 19, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
	      app + (3 << 19));
	CHECK_EQ(mr_info(a).valid_pages, (3 << 19) / PG);
	CHECK_EQ(rstats(&r).locked_bytes, (3 << 20) - (1 << 19));
	CHECK_EQ(vm_locked() - base, (3 << 20) - (1 << 19));
	CHECK_OK(iovm_mr_dereg(a));
	/* b's alone: [1 MiB, 1.5 MiB) and [2 MiB, 3 MiB). */
	CHECK_EQ(rstats(&r).locked_bytes, 3 << 19);
	CHECK_EQ(vm_locked() - base, 3 << 19);
	CHECK_OK(iovm_mr_dereg(b));
	CHECK_EQ(rstats(&r).locked_bytes, 0);
	CHECK_EQ(vm_locked(), base);
	rig_close(&r);
	app_unmap(app, 4 << 20);
}

/* Past RLIMIT_MEMLOCK a registration says -ENOMEM (not -EFAULT: the memory is there), and takes nothing. */
TEST(past_the_lock_limit)
{
	struct rig r;
	struct rlimit rl;
	struct iovm_mr *mr;
	uint8_t *app;
	size_t len;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (256u << 20))
		SKIP_CASE("RLIMIT_MEMLOCK is not set, or above 256 MiB");
	if (geteuid() == 0)
		SKIP_CASE("root locks past RLIMIT_MEMLOCK (CAP_IPC_LOCK)");
	len = rl.rlim_cur + (1u << 20);
	app = app_map(len);
	memset(app, 1, len);
	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	CHECK_EQ(iovm_mr_reg(r.dom, app, len, IOVM_ACCESS_LOCAL_WRITE, &mr), -ENOMEM);
	CHECK_EQ(rstats(&r).mrs, 0);
	CHECK_EQ(rstats(&r).locked_bytes, 0);
	CHECK(!page_locked(app));
	rig_close(&r);
	app_unmap(app, len);
}

TEST(unmonitored_memory)
{
	struct rig r;
	struct iovm_mr *mr;
	struct iovm_mr_info info;
	uint8_t *heap;
	int fd = open("/proc/self/exe", O_RDONLY);
	uint8_t *file = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 0);

	CHECK(fd >= 0 && file != MAP_FAILED);
	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_zalloc(r.ctx, PG, PG, 0);
	/* A file's private mapping: registered, usable, but not watched. */
	CHECK_OK(iovm_mr_reg(r.dom, file, PG, 0, &mr));
	CHECK_OK(iovm_mr_query(mr, &info));
	CHECK(!info.monitored);
	CHECK_EQ(dma_copy(&r, mr_iova(mr, file), iova_of(&r, heap), 4), IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(heap, "\x7f" "ELF", 4));
	CHECK_OK(iovm_mr_dereg(mr));
	rig_close(&r);
	munmap(file, PG);
	close(fd);
}

static uint8_t keyed_copy(struct rig *r, uint32_t src_key, const void *src, uint32_t dst_key, const void *dst,
			  uint32_t len)
{
	return run_desc(r, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_KEYED,
					       .src = (uintptr_t)src, .dst = (uintptr_t)dst, .len = len,
					       .src_key = src_key, .dst_key = dst_key })
		.status;
}

TEST(keyed_descriptors)
{
	struct rig r;
	struct iovm_mr *a, *b, *other;
	struct iovm_mr_info ia, ib, io;
	struct iovm_domain *dom2;
	uint8_t *pa = app_map(4 * PG), *pb = app_map(4 * PG), *heap;
	struct iovm_sge *sg;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_zalloc(r.ctx, 4 * PG, PG, 0);
	fill_random(pa, 4 * PG, 11);
	CHECK_OK(iovm_mr_reg(r.dom, pa, 4 * PG, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_READ, &a));
	CHECK_OK(iovm_mr_reg(r.dom, pb, 4 * PG, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE, &b));
	CHECK_OK(iovm_mr_query(a, &ia));
	CHECK_OK(iovm_mr_query(b, &ib));
	/* By virtual address and key, remote read into a local write. */
	CHECK_EQ(keyed_copy(&r, ia.rkey, pa + 100, ib.lkey, pb + 200, 3 * PG), IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(pa + 100, pb + 200, 3 * PG));
	/* Mixed: a key for the source, an IOVA (key 0) for the destination. */
	CHECK_EQ(keyed_copy(&r, ia.lkey, pa, 0, (void *)(uintptr_t)iova_of(&r, heap), PG), IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(heap, pa, PG));
	/* Refused, and nothing touched: a right the key lacks, a range beyond the MR, a local key for the other MR's slot. */
	memset(pa, 0x11, PG);
	CHECK_EQ(keyed_copy(&r, ib.lkey, pb, ia.rkey, pa, PG), IOVM_STATUS_KEY); /* a has no remote write */
	CHECK_EQ(pa[0], 0x11);
	CHECK_EQ(keyed_copy(&r, ia.lkey, pa, ib.lkey, pb + 3 * PG, 2 * PG), IOVM_STATUS_KEY);
	CHECK_EQ(keyed_copy(&r, ia.lkey ^ (1u << 12), pa, ib.lkey, pb, PG), IOVM_STATUS_KEY);
	/* Gather by keys: two pieces of a into the heap. */
	sg = iovm_dma_zalloc(r.ctx, 2 * sizeof(*sg), 64, 0);
	sg[0] = (struct iovm_sge){ .iova = (uintptr_t)(pa + PG), .len = 64, .key = ia.lkey };
	sg[1] = (struct iovm_sge){ .iova = (uintptr_t)(pa + 2 * PG), .len = 64, .key = ia.rkey };
	CHECK_EQ(run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_GATHER, .flags = IOVM_DESC_KEYED, .sg_count = 2,
						  .src = iova_of(&r, sg), .dst = iova_of(&r, heap), .len = 128 })
			 .status,
		 IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(heap, pa + PG, 64) && !memcmp(heap + 64, pa + 2 * PG, 64));
	/* DUALCAST cannot be keyed. */
	CHECK_EQ(run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_DUALCAST, .flags = IOVM_DESC_KEYED,
						  .src = (uintptr_t)pa, .dst = (uintptr_t)pb, .len = 8 })
			 .status,
		 IOVM_STATUS_INVALID);
	/* A key of another domain's MR. */
	CHECK_OK(iovm_domain_create(r.ctx, NULL, &dom2));
	CHECK_OK(iovm_mr_reg(dom2, pa, PG, IOVM_ACCESS_LOCAL_WRITE, &other));
	CHECK_OK(iovm_mr_query(other, &io));
	CHECK_EQ(keyed_copy(&r, io.lkey, pa, ib.lkey, pb, 8), IOVM_STATUS_KEY);
	CHECK_OK(iovm_mr_dereg(other));
	CHECK_OK(iovm_domain_destroy(dom2));
	/* Stale: after deregistration, the key never reaches what comes next. */
	CHECK_OK(iovm_mr_dereg(b));
	memset(pb, 0x22, PG);
	CHECK_EQ(keyed_copy(&r, ia.lkey, pa, ib.lkey, pb, PG), IOVM_STATUS_KEY);
	CHECK_EQ(pb[0], 0x22);
	CHECK_OK(iovm_mr_reg(r.dom, pb, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &b));
	CHECK_EQ(keyed_copy(&r, ia.lkey, pa, ib.lkey, pb, PG), IOVM_STATUS_KEY);
	CHECK_EQ(pb[0], 0x22);
	/*
	 * Dead: every page of a pinned MR taken away. Until the monitor has
	 * invalidated them a descriptor faults on them; once it has, the keys
	 * are refused too.
	 */
	CHECK_OK(munmap(pa, 4 * PG));
	for (unsigned spins = 0;; spins++) {
		CHECK_OK(iovm_mr_query(a, &ia));
		if (!ia.valid)
			break;
		CHECK(spins < 100000);
		usleep(10);
	}
	CHECK_EQ(keyed_copy(&r, ia.lkey, pa, 0, (void *)(uintptr_t)iova_of(&r, heap), 8), IOVM_STATUS_KEY);
	CHECK_OK(iovm_mr_dereg(a));
	CHECK_OK(iovm_mr_dereg(b));
	no_violations(r.dom);
	rig_close(&r);
	app_unmap(pb, 4 * PG);
}

/*
 * A domain that registrations or a registration cache use cannot go: the
 * monitor's invalidator would unmap from it after it was freed when the
 * registered memory goes (a use after free), as it would for a device
 * still attached.
 */
TEST(domain_in_use_is_busy)
{
	struct rig r;
	struct iovm_domain *dom;
	struct iovm_rcache *c;
	struct iovm_mr *mr, *cached, *all;
	uint8_t *app = app_map(8 * PG);

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	/* A registration. */
	CHECK_OK(iovm_domain_create(r.ctx, NULL, &dom));
	CHECK_OK(iovm_mr_reg(dom, app, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
	CHECK_EQ(iovm_domain_destroy(dom), -EBUSY);
	/* Still whole: the memory going is invalidated in it as ever. */
	CHECK_OK(munmap(app, 4 * PG));
	CHECK(!mr_info(mr).valid);
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(iovm_domain_destroy(dom));
	/* A registration cache, empty, then keeping a region. */
	CHECK_OK(iovm_domain_create(r.ctx, NULL, &dom));
	CHECK_OK(iovm_rcache_create(dom, NULL, &c));
	CHECK_EQ(iovm_domain_destroy(dom), -EBUSY);
	CHECK_OK(iovm_rcache_get(c, app + 4 * PG, 4 * PG, 0, &cached));
	CHECK_OK(iovm_rcache_put(c, cached));
	CHECK_EQ(iovm_domain_destroy(dom), -EBUSY);
	CHECK_OK(iovm_rcache_destroy(c));
	CHECK_OK(iovm_domain_destroy(dom));
	/* An implicit registration. */
	CHECK_OK(iovm_domain_create(r.ctx, NULL, &dom));
	CHECK_OK(iovm_mr_reg(dom, NULL, SIZE_MAX, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &all));
	CHECK_EQ(iovm_domain_destroy(dom), -EBUSY);
	CHECK_OK(iovm_mr_dereg(all));
	CHECK_OK(iovm_domain_destroy(dom));
	rig_close(&r);
	app_unmap(app + 4 * PG, 4 * PG);
}

/*
 * A registration's PAs are its own: the next registration gets them once
 * it ends. Mapped by hand into another domain, that mapping would outlive
 * it and reach the next one's memory: the map calls refuse them (-EINVAL),
 * while memory registered with iovm_mem_register() (SPDK's way: register,
 * vtophys, map) stays the caller's to map.
 */
TEST(registration_pas_are_not_mapped_by_hand)
{
	struct rig r;
	struct iovm_domain *other;
	struct iovm_mr *mr;
	uint8_t *app = app_map(8 * PG), *big;
	iovm_pa_t pa, pages[2];
	iovm_iova_t at = IOVM_IOVA_ANY;
	uint64_t size = 0;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_domain_create(r.ctx, NULL, &other));
	CHECK_OK(iovm_mr_reg(r.dom, app, 8 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
	CHECK_OK(iovm_domain_translate(r.dom, IOVM_IOVA(mr_iova(mr, app)), &pa, NULL));
	CHECK_EQ(iovm_domain_map(other, &at, pa, PG, IOVM_MAP_READ), -EINVAL);
	CHECK_EQ(iovm_domain_map(r.dom, &at, IOVM_PA(pa.addr + 4 * PG), 4 * PG, IOVM_MAP_READ | IOVM_MAP_WRITE),
		 -EINVAL);
	pages[0] = pa;
	pages[1] = IOVM_PA(pa.addr + PG);
	CHECK_EQ(iovm_domain_map_pages(other, &at, pages, 2, IOVM_MAP_READ), -EINVAL);
	{
		struct iovm_domain_stats st;

		CHECK_OK(iovm_domain_stats(other, &st));
		CHECK_EQ(st.leaves_4k + st.leaves_2m + st.leaves_1g, 0);
	}
	CHECK_OK(iovm_mr_dereg(mr));
	/* Memory registered as SPDK does: its PA is the caller's to map. */
	big = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(big != MAP_FAILED);
	{
		uint8_t *al = (uint8_t *)(((uintptr_t)big + (2 << 20) - 1) & ~(uintptr_t)((2 << 20) - 1));

		CHECK_OK(iovm_mem_register(r.ctx, al, 2 << 20));
		size = PG;
		pa = IOVM_PA(iovm_vtophys(r.ctx, al, &size));
		at = IOVM_IOVA_ANY;
		CHECK_OK(iovm_domain_map(other, &at, pa, PG, IOVM_MAP_READ));
		CHECK_OK(iovm_domain_unmap(other, at, PG));
		CHECK_OK(iovm_mem_unregister(r.ctx, al, 2 << 20));
	}
	munmap(big, 4 << 20);
	CHECK_OK(iovm_domain_destroy(other));
	rig_close(&r);
	app_unmap(app, 8 * PG);
}

int main(void)
{
	test_init();
	RUN(register_and_dma);
	RUN(read_only_and_write_rights);
	RUN(huge_leaves_and_locks);
	RUN(unmonitored_memory);
	RUN(keyed_descriptors);
	RUN(domain_in_use_is_busy);
	RUN(locked_bytes_count_each_page_once);
	RUN(past_the_lock_limit);
	RUN(registration_pas_are_not_mapped_by_hand);
	return 0;
}
