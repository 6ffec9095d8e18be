/* SPDX-License-Identifier: MIT */
/*
 * test_unseen.c - memory whose pages can be replaced without the memory
 * monitor hearing of it. A shared mapping's pages (a memfd's, shared
 * memory's, MAP_SHARED|MAP_ANONYMOUS's) and a private mapping's of a
 * shared memory file belong to an object that fallocate(PUNCH_HOLE),
 * ftruncate or another process's madvise(MADV_REMOVE) changes with no
 * userfaultfd event here: such registrations say they are not monitored,
 * the cache never keeps them, and an implicit registration does not reach
 * them. Private anonymous memory stays monitored. shmat(SHM_REMAP) over
 * any memory is not seen at all: reg.h says so, and the last test pins
 * that down.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>

#include "os/vma.h"
#include "reg/reg_util.h"

#define NPAGES 16

static struct iovm_rcache_stats cstats(struct iovm_rcache *c)
{
	struct iovm_rcache_stats st;

	CHECK_OK(iovm_rcache_stats(c, &st));
	return st;
}

static int memfd(size_t len)
{
	int fd = memfd_create("iovm-unseen", MFD_CLOEXEC);

	CHECK(fd >= 0);
	CHECK_OK(ftruncate(fd, (off_t)len));
	return fd;
}

static uint8_t *map_fd(int fd, int flags)
{
	uint8_t *p = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, flags, fd, 0);

	CHECK(p != MAP_FAILED);
	memset(p, 0x42, NPAGES * PG);
	return p;
}

/*
 * Registered (pinned and on demand), usable, but not monitored; the cache
 * gives an MR of it every time and keeps none, so a hole punched in its
 * file (@fd, when there is one) leaves no hit behind.
 */
static void not_monitored_nor_cached(uint8_t *p, int fd)
{
	struct rig r;
	struct iovm_rcache *c;
	struct iovm_mr *mr, *odp, *m;
	uint8_t *heap;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, PG, PG, 0);
	memset(heap, 0x5a, PG);
	CHECK_OK(iovm_mr_reg(r.dom, p, NPAGES * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
	CHECK(!mr_info(mr).monitored);
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mr, p), PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(p[0], 0x5a);
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(iovm_mr_reg(r.dom, p, NPAGES * PG, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &odp));
	CHECK(!mr_info(odp).monitored);
	CHECK_OK(iovm_mr_dereg(odp));

	CHECK_OK(iovm_rcache_create(r.dom, NULL, &c));
	CHECK_OK(iovm_rcache_get(c, p, NPAGES * PG, IOVM_ACCESS_LOCAL_WRITE, &m));
	CHECK_EQ(cstats(c).uncached, 1);
	CHECK_EQ(cstats(c).regions, 0);
	CHECK_OK(iovm_rcache_put(c, m));
	/* The file's pages punched out: nothing the cache kept can reach them. */
	if (fd >= 0)
		CHECK_OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, NPAGES * PG));
	CHECK_OK(iovm_rcache_get(c, p, NPAGES * PG, IOVM_ACCESS_LOCAL_WRITE, &m));
	CHECK_EQ(cstats(c).hits, 0);
	CHECK_EQ(cstats(c).uncached, 2);
	CHECK_OK(iovm_rcache_put(c, m));
	CHECK_OK(iovm_rcache_destroy(c));
	no_violations(r.dom);
	rig_close(&r);
}

TEST(memfd_shared_mapping)
{
	int fd = memfd(NPAGES * PG);
	uint8_t *p = map_fd(fd, MAP_SHARED);

	not_monitored_nor_cached(p, fd);
	munmap(p, NPAGES * PG);
	close(fd);
}

TEST(memfd_private_mapping)
{
	int fd = memfd(NPAGES * PG);
	uint8_t *p = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);

	/* Not written: its pages are the file's until copied. */
	CHECK(p != MAP_FAILED);
	CHECK_EQ(p[0], 0);
	not_monitored_nor_cached(p, fd);
	munmap(p, NPAGES * PG);
	close(fd);
}

TEST(shared_anonymous_mapping)
{
	uint8_t *p = map_fd(-1, MAP_SHARED | MAP_ANONYMOUS);

	/* A child after fork shares it: its madvise(MADV_REMOVE) would change the pages unseen here. */
	not_monitored_nor_cached(p, -1);
	munmap(p, NPAGES * PG);
}

TEST(private_anonymous_stays_monitored)
{
	struct rig r;
	struct iovm_rcache *c;
	struct iovm_mr *mr, *m, *again;
	uint8_t *p = app_map(NPAGES * PG);

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_mr_reg(r.dom, p, NPAGES * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
	CHECK(mr_info(mr).monitored);
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(iovm_rcache_create(r.dom, NULL, &c));
	CHECK_OK(iovm_rcache_get(c, p, NPAGES * PG, IOVM_ACCESS_LOCAL_WRITE, &m));
	CHECK_OK(iovm_rcache_put(c, m));
	CHECK_OK(iovm_rcache_get(c, p, NPAGES * PG, IOVM_ACCESS_LOCAL_WRITE, &again));
	CHECK(again == m);
	CHECK_EQ(cstats(c).regions, 1);
	CHECK_EQ(cstats(c).hits, 1);
	CHECK_OK(iovm_rcache_put(c, again));
	CHECK_OK(iovm_rcache_destroy(c));
	rig_close(&r);
	app_unmap(p, NPAGES * PG);
}

/*
 * An on-demand MR, where shared memory is mapped later (over an
 * inaccessible placeholder of the test's own, not a hole: a hole is
 * anyone's): not monitored from its first fault there.
 */
TEST(shared_memory_mapped_into_an_on_demand_hole)
{
	struct rig r;
	struct iovm_mr *mr;
	/* Four 64 KiB chunks (an on-demand MR's unit); the hole is in the third. */
	uint8_t *p = app_map(64 * PG), *q;
	int fd = memfd(4 * PG);

	CHECK_OK(mprotect(p + 32 * PG, 4 * PG, PROT_NONE));
	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_mr_reg(r.dom, p, 64 * PG, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr));
	CHECK(mr_info(mr).monitored);
	q = mmap(p + 32 * PG, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	CHECK(q == p + 32 * PG);
	CHECK_OK(iovm_mr_advise(mr, p, 4 * PG, 0));
	CHECK(mr_info(mr).monitored);
	CHECK_OK(iovm_mr_advise(mr, q, 4 * PG, IOVM_ADVISE_WRITE));
	CHECK(!mr_info(mr).monitored);
	CHECK_OK(iovm_mr_dereg(mr));
	rig_close(&r);
	app_unmap(p, 64 * PG);
	close(fd);
}

/* An implicit registration does not reach shared memory: a device access there faults. */
TEST(implicit_does_not_reach_shared_memory)
{
	struct rig r;
	struct iovm_mr *mr;
	struct iovm_mr_info info;
	int fd = memfd(NPAGES * PG);
	uint8_t *p = map_fd(fd, MAP_SHARED), *heap;
	int ret;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_zalloc(r.ctx, PG, PG, 0);
	ret = iovm_mr_reg(r.dom, NULL, SIZE_MAX, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr);
	if (ret == -EOPNOTSUPP) {
		rig_close(&r);
		SKIP_CASE("no memory monitor, so no implicit registration");
	}
	CHECK_OK(ret);
	info = mr_info(mr);
	CHECK_EQ(run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_KEYED,
						  .src = iova_of(&r, heap), .dst = (uintptr_t)p, .len = PG,
						  .dst_key = info.lkey })
			 .status,
		 IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(p[0], 0x42);
	CHECK_OK(iovm_mr_dereg(mr));
	no_violations(r.dom);
	rig_close(&r);
	munmap(p, NPAGES * PG);
	close(fd);
}

/*
 * shmat(SHM_REMAP) maps System V shared memory over whatever is there,
 * and tells userfaultfd nothing (the kernel's shmat passes no list of
 * unmapped ranges to its mmap): a registration of the memory it replaced
 * stays valid, and reaches the segment. reg.h lists it as unseen. Should
 * a kernel tell of it one day, this fails, and reg.h must change.
 */
TEST(shmat_remap_is_not_seen)
{
	struct rig r;
	struct iovm_mr *mr;
	uint8_t *p = app_map(NPAGES * PG), *seg, *heap;
	int id = shmget(IPC_PRIVATE, NPAGES * PG, IPC_CREAT | 0600);

	if (id < 0) {
		app_unmap(p, NPAGES * PG);
		SKIP_CASE("no System V shared memory: %s", strerror(errno));
	}
	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, PG, PG, 0);
	memset(heap, 0x6b, PG);
	CHECK_OK(iovm_mr_reg(r.dom, p, NPAGES * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
	CHECK(mr_info(mr).monitored);
	seg = shmat(id, p, SHM_REMAP);
	shmctl(id, IPC_RMID, NULL);
	CHECK(seg == p);
	CHECK_EQ(mr_info(mr).valid_pages, NPAGES);
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mr, p), PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(seg[0], 0x6b);
	CHECK_OK(iovm_mr_dereg(mr));
	rig_close(&r);
	CHECK_OK(shmdt(seg));
	munmap(p, NPAGES * PG);
}

/*
 * The same, on a kernel without PROCMAP_QUERY, where a small pinned
 * registration asks its range instead of reading the maps' text
 * (os_vma_probe()): what is anonymous stays monitored, nothing else is;
 * a memfd's private mapping stays its file's once the first pin has
 * copied every page.
 */
TEST(unseen_by_probes)
{
	os_vma_no_queries(true);
	test_memfd_shared_mapping();
	test_memfd_private_mapping();
	test_shared_anonymous_mapping();
	test_private_anonymous_stays_monitored();
	os_vma_no_queries(false);
}

int main(void)
{
	test_init();
	RUN_SELECTED(memfd_shared_mapping);
	RUN_SELECTED(memfd_private_mapping);
	RUN_SELECTED(shared_anonymous_mapping);
	RUN_SELECTED(private_anonymous_stays_monitored);
	RUN_SELECTED(shared_memory_mapped_into_an_on_demand_hole);
	RUN_SELECTED(implicit_does_not_reach_shared_memory);
	RUN_SELECTED(shmat_remap_is_not_seen);
	RUN_SELECTED(unseen_by_probes);
	return 0;
}
