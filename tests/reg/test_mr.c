/* SPDX-License-Identifier: MIT */
/*
 * test_mr.c - pinned registrations of the application's own memory: DMA
 * through the engine into and out of it, keys, permissions, 2 MiB leaves,
 * overlapping registrations and their locks, and memory the monitor cannot
 * watch.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dev/dev_util.h"
#include "reg/reg_util.h"

TEST(register_and_dma)
{
	struct rig r;
	struct iovm_mr *mr;
	struct iovm_mr_info info;
	uint8_t *app = app_map(64 * PG), *heap;

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
	/* Past the registration: a fault, nothing touched. */
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mr, app + 100) + 61 * PG, 8), IOVM_STATUS_PAGE_FAULT);
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

int main(void)
{
	test_init();
	RUN(register_and_dma);
	RUN(read_only_and_write_rights);
	RUN(huge_leaves_and_locks);
	RUN(unmonitored_memory);
	return 0;
}
