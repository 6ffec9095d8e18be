/* SPDX-License-Identifier: MIT */
/*
 * test_mp_device_own.c - a device process reaching a client's own memory
 * (iovm_rqueue_map() of memory outside the shared heap: its malloc()s, its
 * stacks), which the device reaches through the client's memory file.
 *
 * What must hold: every operation moves the right bytes at odd lengths and
 * offsets, own memory and heap memory mixed, completion records included;
 * the rights are checked when mapping (read-only memory is not written,
 * a hole is not mapped); memory the client unmaps after mapping faults
 * instead of reaching anything; untouched memory is faulted in, in the
 * client; two clients with the same virtual address each reach their own
 * memory, never the other's, not through the other's IOVA or PASID; a
 * client's death leaves no window and no descriptor behind in the device
 * process; thousands of maps and unmaps leave nothing behind either. Page
 * requests are test_mp_device_pr.c's.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "dev/crc32c_ref.h"
#include "mp_device.h"

/*
 * What the device process @pid holds of its clients: their memory files
 * and its connections (sockets; the two it listens on included). Other
 * descriptors it opens once, lazily, and keeps.
 */
static unsigned client_fds(pid_t pid)
{
	char path[64], link[256];
	unsigned n = 0;
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	CHECK(d != NULL);
	while ((e = readdir(d))) {
		char at[320];
		ssize_t len;

		if (e->d_name[0] == '.')
			continue;
		snprintf(at, sizeof(at), "%s/%s", path, e->d_name);
		len = readlink(at, link, sizeof(link) - 1);
		if (len < 0)
			continue; /* closed meanwhile */
		link[len] = 0;
		n += !strncmp(link, "socket:", 7) || (len > 4 && !strcmp(link + len - 4, "/mem"));
	}
	closedir(d);
	return n;
}

TEST(own_memory_ops)
{
	static const uint32_t lens[] = { 1, 7, 4095, 4096, 4097, 8191, 12288 - 100, 3 * 4096 };
	static const uint32_t offs[] = { 0, 1, 100, 4095 };
	struct iovm_ctx *owner;
	struct child srv;
	struct cl c;
	uint8_t *src, *dst, *heap;
	struct iovm_completion *rec;
	iovm_iova_t is, id, ih, ir;

	g_share = share_name("own");
	g_dev = share_name("owndev");
	owner = share_ok(g_share, HEAP);
	srv = start_server();
	c = client_open();
	src = own_pages(5);
	dst = own_pages(5);
	rec = (struct iovm_completion *)(void *)own_pages(1);
	heap = iovm_dma_zalloc(c.ctx, 5 * 4096, 4096, 0);
	CHECK(heap != NULL);
	for (int i = 0; i < 5 * 4096; i++)
		src[i] = (uint8_t)(i * 7 + 3);
	CHECK_OK(iovm_rqueue_map(c.q, src, 5 * 4096, IOVM_MAP_READ, &is));
	CHECK_OK(iovm_rqueue_map(c.q, dst, 5 * 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &id));
	CHECK_OK(iovm_rqueue_map(c.q, rec, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &ir));
	CHECK_OK(iovm_rqueue_map(c.q, heap, 5 * 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &ih));
	for (unsigned li = 0; li < sizeof(lens) / sizeof(lens[0]); li++)
		for (unsigned oi = 0; oi < sizeof(offs) / sizeof(offs[0]); oi++) {
			uint32_t len = lens[li], so = offs[oi], doff = offs[(oi + 1) % 4];
			struct iovm_completion r;

			/* own -> own, the record in own memory */
			memset(dst, 0, 5 * 4096);
			r = run_rec(c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = is.addr + so, .dst = id.addr + doff,
							     .len = len }, rec, ir.addr);
			CHECK_MSG(r.status == IOVM_STATUS_SUCCESS && r.bytes_completed == len, "copy %u@%u: status %u, %u done",
				  len, so, r.status, r.bytes_completed);
			CHECK(!memcmp(dst + doff, src + so, len));
			CHECK(dst[doff + len] == 0 && (!doff || dst[doff - 1] == 0));
			/* own -> heap -> own */
			memset(heap, 0, 5 * 4096);
			CHECK_EQ(run(c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = is.addr + so, .dst = ih.addr + doff,
							      .len = len }), IOVM_STATUS_SUCCESS);
			CHECK(!memcmp(heap + doff, src + so, len));
			memset(dst, 0, 5 * 4096);
			CHECK_EQ(run(c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = ih.addr + doff, .dst = id.addr + so,
							      .len = len }), IOVM_STATUS_SUCCESS);
			CHECK(!memcmp(dst + so, src + so, len));
			/* CRC-32C of own memory, the record in the heap */
			r = run_rec(c.q, (struct iovm_desc){ .op = IOVM_OP_CRC32C, .src = is.addr + so, .len = len,
							     .crc_seed = 0x1234 }, (struct iovm_completion *)(void *)(heap + 4 * 4096),
				    ih.addr + 4 * 4096);
			CHECK_EQ(r.status, IOVM_STATUS_SUCCESS);
			CHECK_EQ(r.crc, crc32c_ref(0x1234, src + so, len));
			/* fill, then compare: equal, then one byte off */
			CHECK_EQ(run(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = id.addr + doff, .len = len,
							      .pattern = 0x0102030405060708ull }), IOVM_STATUS_SUCCESS);
			for (uint32_t i = 0; i < len; i++)
				CHECK(dst[doff + i] == (uint8_t)(8 - (i & 7)));
			r = run_rec(c.q, (struct iovm_desc){ .op = IOVM_OP_COMPARE_PATTERN, .src = id.addr + doff, .len = len,
							     .pattern = 0x0102030405060708ull }, rec, ir.addr);
			CHECK(r.status == IOVM_STATUS_SUCCESS && r.result == 0);
			dst[doff + len - 1] ^= 0x40;
			r = run_rec(c.q, (struct iovm_desc){ .op = IOVM_OP_COMPARE_PATTERN, .src = id.addr + doff, .len = len,
							     .pattern = 0x0102030405060708ull }, rec, ir.addr);
			CHECK(r.status == IOVM_STATUS_SUCCESS && r.result == 1 && r.mismatch == len - 1);
		}
	/* Overlapping copies in own memory, both ways, as memmove. */
	for (uint32_t shift = 1; shift < 9000; shift = shift * 3 + 1) {
		uint8_t want[5 * 4096];

		for (int i = 0; i < 5 * 4096; i++)
			dst[i] = (uint8_t)(i * 31);
		memcpy(want, dst, sizeof(want));
		memmove(want + shift, want, 2 * 4096 + 5);
		CHECK_EQ(run(c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = id.addr, .dst = id.addr + shift,
						      .len = 2 * 4096 + 5 }), IOVM_STATUS_SUCCESS);
		CHECK_MSG(!memcmp(dst, want, sizeof(want)), "copy up by %u", shift);
		memcpy(want, dst, sizeof(want));
		memmove(want, want + shift, 2 * 4096 + 5);
		CHECK_EQ(run(c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = id.addr + shift, .dst = id.addr,
						      .len = 2 * 4096 + 5 }), IOVM_STATUS_SUCCESS);
		CHECK_MSG(!memcmp(dst, want, sizeof(want)), "copy down by %u", shift);
	}
	/* Gather from own memory into the heap, through a list in own memory. */
	{
		struct iovm_sge *sg = (struct iovm_sge *)(void *)(dst + 4 * 4096);

		sg[0] = (struct iovm_sge){ .iova = is.addr + 4000, .len = 200 };
		sg[1] = (struct iovm_sge){ .iova = is.addr + 3 * 4096 - 1, .len = 4098 };
		memset(heap, 0, 5 * 4096);
		CHECK_EQ(run(c.q, (struct iovm_desc){ .op = IOVM_OP_GATHER, .src = id.addr + 4 * 4096, .dst = ih.addr,
						      .len = 4298, .sg_count = 2 }), IOVM_STATUS_SUCCESS);
		CHECK(!memcmp(heap, src + 4000, 200) && !memcmp(heap + 200, src + 3 * 4096 - 1, 4098));
	}
	/* Read-only is read-only: the IOMMU refuses the write, nothing lands. */
	{
		struct iovm_completion r = run_rec(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = is.addr + 8,
									    .len = 8, .pattern = 0 }, rec, ir.addr);

		CHECK_EQ(r.status, IOVM_STATUS_PAGE_FAULT);
		CHECK_EQ(r.fault_addr, is.addr + 8);
		CHECK_EQ(src[8], (uint8_t)(8 * 7 + 3));
	}
	CHECK_OK(iovm_rqueue_unmap(c.q, is, 5 * 4096));
	CHECK_OK(iovm_rqueue_unmap(c.q, id, 5 * 4096));
	CHECK_EQ(iovm_rqueue_unmap(c.q, id, 5 * 4096), -EINVAL);
	/* Unmapped: the device reaches none of it, though it is still mapped here. */
	CHECK_EQ(run(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = id.addr, .len = 64, .pattern = 9 }),
		 IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(dst[0], (uint8_t)(0 * 31));
	client_close(&c);
	stop_server(&srv);
	CHECK_EQ(share_info(owner).blocks, 0);
	CHECK_OK(iovm_close(owner));
}

TEST(own_memory_rights)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct cl c;
	uint8_t *p, *heap;
	iovm_iova_t io;

	g_share = share_name("ownr");
	g_dev = share_name("ownrdev");
	owner = share_ok(g_share, HEAP);
	srv = start_server();
	c = client_open();
	p = own_pages(4);
	heap = iovm_dma_zalloc(c.ctx, 4096, 4096, 0);
	CHECK(heap != NULL);
	/* A read-only page: readable, never writable; a hole: nothing. */
	CHECK_OK(mprotect(p + 4096, 4096, PROT_READ));
	CHECK_OK(munmap(p + 3 * 4096, 4096));
	CHECK_EQ(iovm_rqueue_map(c.q, p, 2 * 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &io), -EFAULT);
	CHECK_EQ(iovm_rqueue_map(c.q, p + 4096, 4096, IOVM_MAP_WRITE, &io), -EFAULT);
	CHECK_OK(iovm_rqueue_map(c.q, p + 4096, 4096, IOVM_MAP_READ, &io));
	CHECK_OK(iovm_rqueue_unmap(c.q, io, 4096));
	CHECK_EQ(iovm_rqueue_map(c.q, p + 2 * 4096, 2 * 4096, IOVM_MAP_READ, &io), -EFAULT);
	CHECK_EQ(iovm_rqueue_map(c.q, p + 3 * 4096, 4096, IOVM_MAP_READ, &io), -EFAULT);
	/* Bad arguments, and ranges partly in the heap. */
	CHECK_EQ(iovm_rqueue_map(c.q, p + 1, 4096, IOVM_MAP_READ, &io), -EINVAL);
	CHECK_EQ(iovm_rqueue_map(c.q, p, 4095, IOVM_MAP_READ, &io), -EINVAL);
	CHECK_EQ(iovm_rqueue_map(c.q, p, 4096, 4, &io), -EINVAL);
	CHECK_EQ(iovm_rqueue_map(c.q, p, 4096, IOVM_MAP_READ, NULL), -EINVAL);
	CHECK_EQ(iovm_rqueue_map(c.q, (void *)(UINTPTR_MAX & ~(uintptr_t)4095), 8192, IOVM_MAP_READ, &io), -EINVAL);
	/* Kernel addresses, the zero page, far above any mapping. */
	CHECK_EQ(iovm_rqueue_map(c.q, (void *)(uintptr_t)0xffff888000000000ull, 4096, IOVM_MAP_READ, &io), -EFAULT);
	CHECK_EQ(iovm_rqueue_map(c.q, (void *)(uintptr_t)4096, 4096, IOVM_MAP_READ, &io), -EFAULT);
	CHECK_EQ(iovm_rqueue_map(c.q, (void *)(uintptr_t)(1ull << 46), 4096, IOVM_MAP_READ, &io), -EFAULT);
	/* Memory unmapped after it was mapped: a fault at the first byte gone, nothing reached. */
	{
		uint8_t *q = own_pages(3);
		struct iovm_completion *rec = iovm_dma_zalloc(c.ctx, 4096, 4096, 0);
		iovm_iova_t iq, ir;
		struct iovm_completion r;

		CHECK(rec != NULL);
		memset(q, 0x5a, 3 * 4096);
		CHECK_OK(iovm_rqueue_map(c.q, q, 3 * 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &iq));
		CHECK_OK(iovm_rqueue_map(c.q, rec, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &ir));
		CHECK_OK(munmap(q + 4096, 4096));
		r = run_rec(c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = iq.addr, .dst = iq.addr + 2 * 4096,
						     .len = 3000 + 4096 }, rec, ir.addr);
		/* The copy's source runs into the hole after 4096 bytes: those are done. */
		CHECK_EQ(r.status, IOVM_STATUS_PAGE_FAULT);
		CHECK_EQ(r.fault_reason, IOVM_FAULT_BUS);
		CHECK_EQ(r.fault_access, IOVM_MAP_READ);
		CHECK_EQ(r.fault_addr, iq.addr + 4096);
		CHECK_EQ(r.bytes_completed, 4096);
		r = run_rec(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = iq.addr + 100, .len = 8000, .pattern = 1 },
			    rec, ir.addr);
		CHECK_EQ(r.status, IOVM_STATUS_PAGE_FAULT);
		CHECK_EQ(r.fault_access, IOVM_MAP_WRITE);
		CHECK_EQ(r.fault_addr, iq.addr + 4096);
		CHECK_EQ(r.bytes_completed, 4096 - 100);
		/* Something else mapped there is the client's decision; nothing of it was written meanwhile. */
		CHECK_EQ(q[2 * 4096], 0x5a);
		CHECK_OK(iovm_rqueue_unmap(c.q, iq, 3 * 4096));
		CHECK_OK(munmap(q, 4096));
		CHECK_OK(munmap(q + 2 * 4096, 4096));
	}
	/* Untouched memory: the device's first touch faults it in, here. */
	{
		uint8_t *fresh = own_pages(16);
		unsigned char vec[16];
		iovm_iova_t iff;

		CHECK_OK(mincore(fresh, 16 * 4096, vec));
		for (int i = 0; i < 16; i++)
			CHECK_EQ(vec[i] & 1, 0);
		CHECK_OK(iovm_rqueue_map(c.q, fresh, 16 * 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &iff));
		CHECK_EQ(run(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = iff.addr + 4096, .len = 8 * 4096,
						      .pattern = 0xababababababababull }), IOVM_STATUS_SUCCESS);
		CHECK_OK(mincore(fresh, 16 * 4096, vec));
		for (int i = 1; i < 9; i++)
			CHECK_EQ(vec[i] & 1, 1);
		CHECK_EQ(fresh[4096 + 12345], 0xab);
		CHECK_EQ(fresh[0], 0);
		CHECK_OK(iovm_rqueue_unmap(c.q, iff, 16 * 4096));
		CHECK_OK(munmap(fresh, 16 * 4096));
	}
	client_close(&c);
	stop_server(&srv);
	CHECK_OK(iovm_close(owner));
}

/*
 * Twins: forked from one parent, so the same address holds each one's own
 * memory. Each maps it, fills it with its own byte, and has the device copy
 * it to the heap, then tries the other's IOVA and PASID.
 */
static uint8_t *twin_at; /* the parent's, private: each twin has its own copy */

static void twin(int rd, int wr, void *arg)
{
	uint8_t me = (uint8_t)(uintptr_t)arg;
	struct cl c = client_open();
	uint8_t *own = twin_at;
	uint8_t *heap = iovm_dma_zalloc(c.ctx, 4 * 4096, 4096, 0);
	iovm_iova_t io, ih;
	uint64_t other_iova, other_pasid;
	uint8_t st;

	(void)rd;
	CHECK(heap != NULL);
	memset(own, me, 4 * 4096);
	CHECK_OK(iovm_rqueue_map(c.q, own, 4 * 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	CHECK_OK(iovm_rqueue_map(c.q, heap, 4 * 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &ih));
	put64(wr, io.addr);
	put64(wr, iovm_rqueue_pasid(c.q));
	other_iova = get64(rd);
	other_pasid = get64(rd);
	for (int round = 0; round < 20; round++) {
		CHECK_EQ(run(c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr, .dst = ih.addr, .len = 4 * 4096 }),
			 IOVM_STATUS_SUCCESS);
		for (int i = 0; i < 4 * 4096; i++)
			CHECK_MSG(heap[i] == me, "twin %u read %#x at %d: the other's memory", me, heap[i], i);
		memset(heap, 0, 4 * 4096);
		/* The other's IOVA, its PASID: this domain's memory or a fault, never the other's. */
		st = run(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .pasid = (uint32_t)other_pasid, .dst = other_iova,
						  .len = 4 * 4096, .pattern = 0x0101010101010101ull * me });
		CHECK(st == IOVM_STATUS_SUCCESS || st == IOVM_STATUS_PAGE_FAULT);
		if (st == IOVM_STATUS_SUCCESS) /* the same IOVA in this domain is this twin's */
			memset(own, me, 4 * 4096);
	}
	put64(wr, 1);
	CHECK_EQ(get64(rd), 2);
	/* What the other did never landed here. */
	for (int i = 0; i < 4 * 4096; i++)
		CHECK(own[i] == me);
	client_close(&c);
}

TEST(twins_reach_their_own)
{
	struct iovm_ctx *owner;
	struct child srv, t[2];
	uint64_t iova[2], pasid[2];

	g_share = share_name("twin");
	g_dev = share_name("twindev");
	owner = share_ok(g_share, HEAP);
	srv = start_server();
	twin_at = own_pages(4);
	for (int i = 0; i < 2; i++) {
		t[i] = child_start(twin, (void *)(uintptr_t)(0x11 * (i + 1)));
		iova[i] = get64(t[i].rd);
		pasid[i] = get64(t[i].rd);
	}
	CHECK(pasid[0] != pasid[1]);
	for (int i = 0; i < 2; i++) {
		put64(t[i].wr, iova[!i]);
		put64(t[i].wr, pasid[!i]);
	}
	for (int i = 0; i < 2; i++)
		CHECK_EQ(get64(t[i].rd), 1);
	for (int i = 0; i < 2; i++) {
		put64(t[i].wr, 2);
		child_ok(&t[i]);
	}
	stop_server(&srv);
	CHECK_OK(munmap(twin_at, 4 * 4096));
	CHECK_EQ(share_info(owner).blocks, 0);
	CHECK_OK(iovm_close(owner));
}

/* Until the device process @pid holds @n descriptors of clients; if it never does, what it has. */
static void wait_fds(pid_t pid, unsigned n)
{
	for (unsigned ms = 0; client_fds(pid) != n; ms++) {
		if (ms == 60000) {
			char cmd[64];

			snprintf(cmd, sizeof(cmd), "ls -l /proc/%d/fd >&2", (int)pid);
			CHECK(system(cmd) == 0);
			CHECK_MSG(0, "the device process holds %u descriptors of clients, not %u", client_fds(pid), n);
		}
		usleep(1000);
	}
}

/*
 * The client's munmap is the device's invalidation: the device reads and
 * writes the client's memory through its page tables, under its mmap
 * lock, so once munmap (or an mremap over the range) has returned, no
 * device access reaches the pages that went. A thread replaces the range
 * again and again, each time by mremap() of a mapping stamped with the
 * next generation (atomically: the range is never a hole, never half
 * written), then publishes the generation; the device copies the range
 * meanwhile. A copy submitted after generation g was published must find
 * in every page one generation, g or later: an earlier one is memory
 * unmapped before the copy began, reached.
 */
#define SWAP_PAGES 8

struct swapper {
	uint8_t *at;
	_Atomic uint32_t gen;
	_Atomic bool stop;
	unsigned rounds;
};

static void *swap_main(void *arg)
{
	struct swapper *sw = arg;

	for (uint32_t g = 2; !atomic_load(&sw->stop) && g < 250; g++) {
		uint8_t *p = mmap(NULL, SWAP_PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		CHECK(p != MAP_FAILED);
		memset(p, (int)g, SWAP_PAGES * 4096);
		CHECK(mremap(p, SWAP_PAGES * 4096, SWAP_PAGES * 4096, MREMAP_MAYMOVE | MREMAP_FIXED, sw->at) == sw->at);
		atomic_store_explicit(&sw->gen, g, memory_order_release);
		sw->rounds++;
		sched_yield();
	}
	return NULL;
}

TEST(munmap_reaches_the_device)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct cl c;
	struct swapper sw = { 0 };
	uint8_t *heap;
	iovm_iova_t io, ih;
	pthread_t t;
	unsigned copies = 0, newer = 0;

	g_share = share_name("ownswap");
	g_dev = share_name("ownswapdev");
	owner = share_ok(g_share, HEAP);
	srv = start_server();
	c = client_open();
	sw.at = own_pages(SWAP_PAGES);
	memset(sw.at, 1, SWAP_PAGES * 4096);
	atomic_store(&sw.gen, 1);
	heap = iovm_dma_alloc(c.ctx, SWAP_PAGES * 4096, 4096, 0);
	CHECK(heap != NULL);
	CHECK_OK(iovm_rqueue_map(c.q, sw.at, SWAP_PAGES * 4096, IOVM_MAP_READ, &io));
	CHECK_OK(iovm_rqueue_map(c.q, heap, SWAP_PAGES * 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &ih));
	/* Plainly first: unmapped, the range faults at its first byte; mapped again, the new pages are reached. */
	CHECK_OK(munmap(sw.at, SWAP_PAGES * 4096));
	CHECK_EQ(run(c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr, .dst = ih.addr, .len = 4096 }),
		 IOVM_STATUS_PAGE_FAULT);
	CHECK(mmap(sw.at, SWAP_PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
	      sw.at);
	memset(heap, 0xff, SWAP_PAGES * 4096);
	CHECK_EQ(run(c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr, .dst = ih.addr, .len = 4096 }),
		 IOVM_STATUS_SUCCESS);
	CHECK_EQ(heap[0], 0);
	CHECK_EQ(heap[4095], 0);
	memset(sw.at, 1, SWAP_PAGES * 4096);
	/* Then against the swapper. */
	CHECK_OK(pthread_create(&t, NULL, swap_main, &sw));
	while (atomic_load_explicit(&sw.gen, memory_order_acquire) < 249) {
		uint32_t g0 = atomic_load_explicit(&sw.gen, memory_order_acquire);

		CHECK_EQ(run(c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr, .dst = ih.addr,
						      .len = SWAP_PAGES * 4096 }), IOVM_STATUS_SUCCESS);
		for (unsigned pg = 0; pg < SWAP_PAGES; pg++) {
			uint8_t v = heap[pg * 4096];

			CHECK_MSG(v >= g0, "page %u holds generation %u, unmapped before generation %u was published", pg, v,
				  g0);
			for (unsigned i = 1; i < 4096; i++)
				CHECK_MSG(heap[pg * 4096 + i] == v, "page %u is half generation %u, half %u", pg, v,
					  heap[pg * 4096 + i]);
			newer += v > g0;
		}
		copies++;
	}
	atomic_store(&sw.stop, true);
	CHECK_OK(pthread_join(t, NULL));
	printf("# %u copies against %u replacements; %u pages already newer than at submission\n", copies, sw.rounds,
	       newer);
	CHECK(copies > 0);
	client_close(&c);
	CHECK_OK(munmap(sw.at, SWAP_PAGES * 4096));
	stop_server(&srv);
	CHECK_OK(iovm_close(owner));
}

/* A client opens a queue, has the device fill a page of its own, and closes. */
static void one_client_fills(void)
{
	struct cl c = client_open();
	uint8_t *own = own_pages(1);
	iovm_iova_t io;

	CHECK_OK(iovm_rqueue_map(c.q, own, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	CHECK_EQ(run(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io.addr, .len = 4096,
					      .pattern = 0x4242424242424242ull }), IOVM_STATUS_SUCCESS);
	CHECK_EQ(own[4095], 0x42);
	client_close(&c);
	CHECK_OK(munmap(own, 4096));
}

/* A client that maps own memory, keeps the device copying it, and is killed. */
static void doomed_own(int rd, int wr, void *arg)
{
	struct cl c = client_open();
	uint8_t *own = own_pages(64), *heap = iovm_dma_alloc(c.ctx, 64 * 4096, 4096, 0);
	iovm_iova_t io, ih;

	(void)rd;
	(void)arg;
	CHECK(heap != NULL);
	CHECK_OK(iovm_rqueue_map(c.q, own, 64 * 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	CHECK_OK(iovm_rqueue_map(c.q, heap, 64 * 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &ih));
	put64(wr, 1);
	for (unsigned i = 0;; i++) {
		struct iovm_cqe cqe[16];
		int ret = iovm_rqueue_submit(c.q, &(struct iovm_desc){ .op = IOVM_OP_COPY, .src = i & 1 ? io.addr : ih.addr,
									   .dst = i & 1 ? ih.addr : io.addr,
									   .len = 64 * 4096 });

		CHECK(ret == 0 || ret == -EAGAIN);
		CHECK(iovm_rqueue_reap(c.q, cqe, 16) >= 0);
	}
}

TEST(client_dies_with_own_memory_mapped)
{
	struct iovm_ctx *owner;
	struct child srv, d;
	unsigned before;

	g_share = share_name("owndie");
	g_dev = share_name("owndiedev");
	owner = share_ok(g_share, HEAP);
	srv = start_server();
	before = client_fds(srv.pid);
	for (int round = 0; round < 5; round++) {
		d = child_start(doomed_own, NULL);
		CHECK_EQ(get64(d.rd), 1);
		usleep(1000 * (unsigned)round);
		child_kill(&d);
		/* The device process tears it down: its connection and its memory file close. */
		wait_fds(srv.pid, before);
	}
	/* And serves the next one as before. */
	one_client_fills();
	wait_fds(srv.pid, before);
	stop_server(&srv);
	WAIT_UNTIL(share_info(owner).blocks == 0);
	CHECK_OK(iovm_share_check(owner));
	CHECK_OK(iovm_close(owner));
}

/* Thousands of maps and unmaps, some left for the close: nothing stays behind in the device process. */
TEST(many_maps)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct cl c;
	uint8_t *own;
	iovm_iova_t io[64];
	unsigned before, rounds = TEST_ASAN || TEST_TSAN ? 20 : 80;

	g_share = share_name("ownmany");
	g_dev = share_name("ownmanydev");
	owner = share_ok(g_share, HEAP);
	srv = start_server();
	before = client_fds(srv.pid);
	c = client_open();
	own = own_pages(64);
	for (unsigned r = 0; r < rounds; r++) {
		for (unsigned i = 0; i < 64; i++) {
			own[i * 4096] = (uint8_t)(r + i);
			CHECK_OK(iovm_rqueue_map(c.q, own + i * 4096, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &io[i]));
		}
		for (unsigned i = 0; i < 64; i++)
			CHECK_EQ(run(c.q, (struct iovm_desc){ .op = IOVM_OP_COMPARE_PATTERN, .src = io[i].addr, .len = 1,
							      .pattern = (uint8_t)(r + i) }), IOVM_STATUS_SUCCESS);
		for (unsigned i = 0; i < 64; i += 1 + (r & 1))
			CHECK_OK(iovm_rqueue_unmap(c.q, io[i], 4096));
		if (!(r & 1))
			continue;
		for (unsigned i = 1; i < 64; i += 2)
			CHECK_OK(iovm_rqueue_unmap(c.q, io[i], 4096));
	}
	/* One more round left mapped: the close takes it down. */
	for (unsigned i = 0; i < 64; i++)
		CHECK_OK(iovm_rqueue_map(c.q, own + i * 4096, 4096, IOVM_MAP_READ, &io[i]));
	client_close(&c);
	wait_fds(srv.pid, before);
	stop_server(&srv);
	CHECK_OK(iovm_close(owner));
}

int main(void)
{
	test_init();
	RUN(own_memory_ops);
	RUN(own_memory_rights);
	RUN(twins_reach_their_own);
	RUN(munmap_reaches_the_device);
	RUN(client_dies_with_own_memory_mapped);
	RUN(many_maps);
	return 0;
}
