/* SPDX-License-Identifier: MIT */
/*
 * test_mp_device_mr.c - a client's registrations mapped on a device
 * process (iovm_rqueue_map_mr()): the device's first touch of each 64 KiB
 * is a page request the client answers with the registration, pinning it
 * within its pin budget, whether the descriptor blocks on faults or not;
 * pages the budget evicts, or the memory monitor invalidates, are unmapped
 * on the device before the client unpins them, so the next access asks
 * again; a page the client unmapped faults exactly there, and memory
 * mapped again there is reached afresh, never the old pages. And every
 * refusal: a registration that does not grant the rights, one mapped
 * twice, an implicit one, a deregistration while mapped.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "dev/dev.h"
#include "mp_device.h"

#define KB64 (64 * 1024)

/* @n pages at a multiple of 64 KiB, where the device's pieces start: counts of requests come out whole. */
static uint8_t *pages_64k(size_t n)
{
	uint8_t *raw = own_pages(n + 16), *p = (uint8_t *)(((uintptr_t)raw + KB64 - 1) & ~(uintptr_t)(KB64 - 1));

	if (p > raw)
		CHECK_OK(munmap(raw, (size_t)(p - raw)));
	if (raw + (n + 16) * 4096 > p + n * 4096)
		CHECK_OK(munmap(p + n * 4096, (size_t)(raw + (n + 16) * 4096 - (p + n * 4096))));
	return p;
}

static struct iovm_reg_stats rstats(struct iovm_ctx *ctx)
{
	struct iovm_reg_stats st;

	CHECK_OK(iovm_reg_stats(ctx, &st));
	return st;
}

struct rig {
	struct iovm_ctx *owner, *ctx;
	struct child srv;
	struct iovm_rqueue *q;
	struct iovm_domain *dom; /* the client's own, where its MRs are registered */
	uint8_t *heap;           /* 1 MiB of the shared heap, mapped on the device */
	struct iovm_completion *rec;
	iovm_iova_t ih, ir;
};

static void rig_open(struct rig *r, const char *tag, const char *opts)
{
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_MANAGED };
	int ret;

	g_share = share_name(tag);
	g_dev = share_name("mrdev");
	r->owner = share_ok(g_share, HEAP);
	r->srv = start_server();
	ret = iovm_attach(g_share, opts, &r->ctx);
	CHECK_MSG(ret == 0, "attach: %s", iovm_error_detail());
	CHECK_OK(iovm_rqueue_open(r->ctx, g_dev, 64, &r->q));
	CHECK_OK(iovm_domain_create(r->ctx, &attr, &r->dom));
	r->heap = iovm_dma_zalloc(r->ctx, 1 << 20, 4096, 0);
	r->rec = iovm_dma_zalloc(r->ctx, 4096, 4096, 0);
	CHECK(r->heap && r->rec);
	CHECK_OK(iovm_rqueue_map(r->q, r->heap, 1 << 20, IOVM_MAP_READ | IOVM_MAP_WRITE, &r->ih));
	CHECK_OK(iovm_rqueue_map(r->q, r->rec, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &r->ir));
}

static void rig_close(struct rig *r)
{
	CHECK_OK(iovm_rqueue_close(r->q));
	CHECK_OK(iovm_domain_destroy(r->dom));
	CHECK_OK(iovm_close(r->ctx));
	stop_server(&r->srv);
	CHECK_OK(iovm_close(r->owner));
}

static struct iovm_completion go(struct rig *r, struct iovm_desc d)
{
	return run_rec(r->q, d, r->rec, r->ir.addr);
}

/* The first touch of each 64 KiB asks, once; a descriptor that does not block on faults is answered too. */
TEST(first_touch_asks_per_64k)
{
	struct rig r;
	struct iovm_mr *mr;
	uint8_t *app = pages_64k(256);
	struct iovm_reg_stats before;
	struct iovm_completion c;
	iovm_iova_t io;

	rig_open(&r, "mrfirst", "");
	for (unsigned i = 0; i < 256 * 4096; i++)
		app[i] = (uint8_t)(i * 7 + 3);
	/* Registered 100 bytes in: the IOVA given is the registered address's. */
	CHECK_OK(iovm_mr_reg(r.dom, app + 100, 256 * 4096 - 100, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr));
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	before = rstats(r.ctx);
	CHECK_EQ(before.odp_pinned_bytes, 0);
	c = go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr - 100, .dst = r.ih.addr, .len = 1 << 20 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK(memcmp(r.heap, app, 1 << 20) == 0);
	CHECK_EQ(rstats(r.ctx).odp_faults - before.odp_faults, (1 << 20) / KB64);
	CHECK_EQ(rstats(r.ctx).odp_pinned_bytes, 1 << 20);
	/* Mapped on the device now: no more requests. */
	c = go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr - 100, .dst = r.ih.addr, .len = 1 << 20 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(rstats(r.ctx).odp_faults - before.odp_faults, (1 << 20) / KB64);
	/* A write through it lands in the client's memory. */
	c = go(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io.addr + 5000, .len = 70000,
				       .pattern = 0x5151515151515151ull });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK(app[100 + 4999] != 0x51 && app[100 + 5000] == 0x51 && app[100 + 5000 + 69999] == 0x51 &&
	      app[100 + 5000 + 70000] != 0x51);
	/* Mapped: it stays registered. Unmapped: it may go, and its pins with it. */
	CHECK_EQ(iovm_mr_dereg(mr), -EBUSY);
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, mr));
	CHECK_EQ(iovm_rqueue_unmap_mr(r.q, mr), -EINVAL);
	/* The device reaches nothing of it any more. */
	c = go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr, .dst = r.ih.addr, .len = 4096 });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_EQ(rstats(r.ctx).odp_pinned_bytes, 0);
	rig_close(&r);
	CHECK_OK(munmap(app, 256 * 4096));
}

/*
 * A pin budget of 256 KiB over a 1 MiB registration: the copy goes
 * through, evicting as it goes; what was evicted was unmapped on the
 * device, so a second pass asks again for it.
 */
TEST(pin_budget_evicts_on_the_device)
{
	struct rig r;
	struct iovm_mr *mr;
	uint8_t *app = pages_64k(256);
	struct iovm_reg_stats s0, s1, s2;
	struct iovm_completion c;
	iovm_iova_t io;

	rig_open(&r, "mrbudget", "pin_budget=256K");
	memset(app, 0x3c, 256 * 4096);
	CHECK_OK(iovm_mr_reg(r.dom, app, 256 * 4096, IOVM_ACCESS_ON_DEMAND, &mr));
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, IOVM_MAP_READ, &io));
	s0 = rstats(r.ctx);
	c = go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr, .dst = r.ih.addr, .len = 1 << 20 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(r.heap[0], 0x3c);
	CHECK_EQ(r.heap[(1 << 20) - 1], 0x3c);
	s1 = rstats(r.ctx);
	CHECK_EQ(s1.odp_faults - s0.odp_faults, 16);
	CHECK(s1.odp_pinned_bytes <= 256 * 1024);
	CHECK(s1.odp_evicted_bytes - s0.odp_evicted_bytes >= 768 * 1024);
	/* Evicted here, so unmapped there: the first 768 KiB at least ask again. */
	c = go(&r, (struct iovm_desc){ .op = IOVM_OP_CRC32C, .src = io.addr, .len = 1 << 20 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	s2 = rstats(r.ctx);
	CHECK(s2.odp_faults - s1.odp_faults >= 12);
	CHECK(s2.odp_pinned_bytes <= 256 * 1024);
	/* No write right asked for: a write faults, and nothing is written. */
	c = go(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .flags = IOVM_DESC_BLOCK_ON_FAULT, .dst = io.addr,
				       .len = 64, .pattern = 1 });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(app[0], 0x3c);
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, mr));
	CHECK_OK(iovm_mr_dereg(mr));
	rig_close(&r);
	CHECK_OK(munmap(app, 256 * 4096));
}

/*
 * The client unmaps a page the device has mapped: its monitor invalidates
 * it, the device drops the chunk, and the next access faults exactly at
 * the hole. Memory mapped there again is reached afresh: its bytes, never
 * the old page's.
 */
TEST(munmap_reaches_the_device)
{
	struct rig r;
	struct iovm_mr *mr;
	uint8_t *app = pages_64k(64);
	struct iovm_completion c;
	iovm_iova_t io;

	rig_open(&r, "mrunmap", "");
	memset(app, 0x21, 64 * 4096);
	CHECK_OK(iovm_mr_reg(r.dom, app, 64 * 4096, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr));
	if (!rstats(r.ctx).monitor) {
		CHECK_OK(iovm_mr_dereg(mr));
		rig_close(&r);
		SKIP("no memory monitor (userfaultfd) here: invalidations are not seen");
	}
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	c = go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr, .dst = r.ih.addr, .len = 64 * 4096 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK_OK(munmap(app + 20 * 4096, 4096));
	for (unsigned spins = 0; rstats(r.ctx).odp_pinned_bytes == 64 * 4096; spins++) {
		CHECK(spins < 1000000);
		usleep(10);
	}
	memset(r.heap, 0, 64 * 4096);
	c = go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr, .dst = r.ih.addr, .len = 64 * 4096 });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(c.fault_addr, io.addr + 20 * 4096);
	CHECK_EQ(c.bytes_completed, 20 * 4096);
	CHECK(r.heap[20 * 4096 - 1] == 0x21 && r.heap[20 * 4096] == 0);
	/* Mapped again, with other bytes: those are what the device reads. */
	CHECK(mmap(app + 20 * 4096, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
	      app + 20 * 4096);
	memset(app + 20 * 4096, 0x77, 4096);
	c = go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr, .dst = r.ih.addr, .len = 64 * 4096 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK(r.heap[20 * 4096 - 1] == 0x21 && r.heap[20 * 4096] == 0x77 && r.heap[21 * 4096] == 0x21);
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, mr));
	CHECK_OK(iovm_mr_dereg(mr));
	rig_close(&r);
	CHECK_OK(munmap(app, 64 * 4096));
}

/* A pinned registration: asked too, answered from its valid pages; the refusals. */
TEST(pinned_and_refusals)
{
	struct rig r;
	struct iovm_mr *mr, *ro, *imp = NULL;
	uint8_t *app = pages_64k(32);
	struct iovm_completion c;
	iovm_iova_t io, i2;
	int ret;

	rig_open(&r, "mrpinned", "");
	memset(app, 0x42, 32 * 4096);
	CHECK_OK(iovm_mr_reg(r.dom, app, 16 * 4096, IOVM_ACCESS_LOCAL_WRITE, &mr));
	CHECK_OK(iovm_mr_reg(r.dom, app + 16 * 4096, 16 * 4096, 0, &ro));
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	CHECK_EQ(iovm_rqueue_map_mr(r.q, mr, IOVM_MAP_READ, &i2), -EEXIST);
	CHECK_EQ(iovm_rqueue_map_mr(r.q, ro, IOVM_MAP_READ | IOVM_MAP_WRITE, &i2), -EACCES);
	CHECK_EQ(iovm_rqueue_map_mr(r.q, ro, 0, &i2), -EINVAL);
	CHECK_EQ(iovm_rqueue_map_mr(r.q, ro, IOVM_MAP_READ, NULL), -EINVAL);
	CHECK_EQ(iovm_rqueue_map_mr(r.q, ro, 8, &i2), -EINVAL);
	CHECK_EQ(iovm_rqueue_unmap_mr(r.q, ro), -EINVAL);
	CHECK_OK(iovm_rqueue_map_mr(r.q, ro, IOVM_MAP_READ, &i2));
	/* An implicit registration has no one range. */
	ret = iovm_mr_reg(r.dom, NULL, SIZE_MAX, IOVM_ACCESS_ON_DEMAND, &imp);
	if (!ret) {
		CHECK_EQ(iovm_rqueue_map_mr(r.q, imp, IOVM_MAP_READ, &i2), -EINVAL);
		CHECK_OK(iovm_mr_dereg(imp));
	}
	c = go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = i2.addr, .dst = io.addr + 8, .len = 16 * 4096 - 8 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK(app[7] == 0x42 && app[8] == 0x42);
	c = go(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io.addr, .len = 16 * 4096, .pattern = 0x0909090909090909ull });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK(app[0] == 9 && app[16 * 4096 - 1] == 9 && app[16 * 4096] == 0x42);
	CHECK_EQ(iovm_mr_dereg(ro), -EBUSY);
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, ro));
	CHECK_OK(iovm_mr_dereg(ro));
	/* Closing the queue unmaps the rest: the MR may go after. */
	CHECK_OK(iovm_rqueue_close(r.q));
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(iovm_rqueue_open(r.ctx, g_dev, 64, &r.q));
	rig_close(&r);
	CHECK_OK(munmap(app, 32 * 4096));
}

/*
 * 64 clients on one device process (16 under sanitizers), each with an
 * on-demand MR at the same address (forked from one parent), a pin budget
 * of 128 KiB under a 512 KiB MR: every page request goes to the client
 * that owns the address space, and is answered by its own registration
 * and budget. Each finds its own bytes only, and stays within its budget.
 */
static uint8_t *many_at;

static void many_mr_client(int rd, int wr, void *arg)
{
	uint8_t me = (uint8_t)(uintptr_t)arg;
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_MANAGED };
	struct iovm_ctx *ctx = NULL;
	struct iovm_rqueue *q;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	uint8_t *heap;
	iovm_iova_t io, ih;
	int ret;

	ret = iovm_attach(g_share, "pin_budget=128K", &ctx);
	CHECK_MSG(ret == 0, "attach: %s", iovm_error_detail());
	CHECK_OK(iovm_rqueue_open(ctx, g_dev, 16, &q));
	CHECK_OK(iovm_domain_create(ctx, &attr, &dom));
	heap = iovm_dma_zalloc(ctx, 128 * 4096, 4096, 0);
	CHECK(heap != NULL);
	memset(many_at, me, 128 * 4096);
	CHECK_OK(iovm_mr_reg(dom, many_at, 128 * 4096, IOVM_ACCESS_ON_DEMAND, &mr));
	CHECK_OK(iovm_rqueue_map_mr(q, mr, IOVM_MAP_READ, &io));
	CHECK_OK(iovm_rqueue_map(q, heap, 128 * 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &ih));
	put64(wr, iovm_rqueue_pasid(q));
	get64(rd);
	for (int round = 0; round < 4; round++) {
		struct iovm_reg_stats st;

		CHECK_EQ(run(q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr, .dst = ih.addr,
						    .len = 128 * 4096 }), IOVM_STATUS_SUCCESS);
		for (int i = 0; i < 128 * 4096; i++)
			CHECK_MSG(heap[i] == me, "client %u found %#x at %d", me, heap[i], i);
		memset(heap, 0, 128 * 4096);
		CHECK_OK(iovm_reg_stats(ctx, &st));
		CHECK(st.odp_pinned_bytes <= 128 * 1024);
		CHECK(st.odp_faults >= (uint64_t)(round + 1) * 8);
	}
	CHECK_OK(iovm_rqueue_close(q));
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_close(ctx));
	put64(wr, 1);
}

TEST(sixty_four_clients_own_registrations)
{
	unsigned n = TEST_ASAN || TEST_TSAN ? 16 : 64;
	struct iovm_ctx *owner;
	struct child srv;

	g_share = share_name("mrmany");
	g_dev = share_name("mrmanydev");
	owner = share_ok(g_share, HEAP);
	/* A fault says why in the log (with IOVM_HOOKS=all, 3 clients of 64 once faulted). */
	g_fault_reasons = true;
	srv = start_server();
	many_at = pages_64k(128);
	run_clients(n, many_mr_client);
	printf("# %u clients, one address, each page request answered by its own registration\n", n);
	stop_server(&srv);
	g_fault_reasons = false;
	CHECK_OK(munmap(many_at, 128 * 4096));
	CHECK_EQ(share_info(owner).blocks, 0);
	CHECK_OK(iovm_close(owner));
}

/*
 * Drops racing page requests: one thread discards (MADV_DONTNEED) and
 * prefetches random pieces of the MR while descriptors copy all of it
 * under a pin budget of a quarter of it, evicting as they go. Every copy
 * completes, each byte the pattern or a discarded page's zero; the
 * budget holds after each.
 */
struct churn {
	struct iovm_mr *mr;
	uint8_t *app;
	_Atomic bool stop;
	unsigned rounds;
};

static void *churner(void *arg)
{
	struct churn *ch = arg;
	unsigned seed = 7;

	while (!atomic_load(&ch->stop)) {
		unsigned piece = (unsigned)rand_r(&seed) % 16;

		if (rand_r(&seed) & 1)
			CHECK_OK(madvise(ch->app + piece * KB64, KB64, MADV_DONTNEED));
		else
			CHECK(iovm_mr_advise(ch->mr, ch->app + piece * KB64, KB64, 0) == 0 ||
			      errno == EAGAIN);
		ch->rounds++;
		usleep(50);
	}
	return NULL;
}

TEST(drops_race_page_requests)
{
	struct rig r;
	struct churn ch = { 0 };
	pthread_t t;
	unsigned copies = TEST_ASAN || TEST_TSAN ? 40 : 200;

	rig_open(&r, "mrrace", "pin_budget=256K");
	ch.app = pages_64k(256);
	memset(ch.app, 0x6d, 256 * 4096);
	CHECK_OK(iovm_mr_reg(r.dom, ch.app, 256 * 4096, IOVM_ACCESS_ON_DEMAND, &ch.mr));
	if (!rstats(r.ctx).monitor) {
		CHECK_OK(iovm_mr_dereg(ch.mr));
		rig_close(&r);
		SKIP("no memory monitor (userfaultfd) here: discards are not seen");
	}
	{
		iovm_iova_t io;

		CHECK_OK(iovm_rqueue_map_mr(r.q, ch.mr, IOVM_MAP_READ, &io));
		CHECK_OK(pthread_create(&t, NULL, churner, &ch));
		for (unsigned i = 0; i < copies; i++) {
			struct iovm_completion c;

			memset(r.heap, 0xee, 1 << 20);
			c = go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr, .dst = r.ih.addr,
						       .len = 1 << 20 });
			CHECK_MSG(c.status == IOVM_STATUS_SUCCESS, "copy %u: status %u, reason %u at +%#llx after %u bytes", i,
				  c.status, c.fault_reason, (unsigned long long)(c.fault_addr - io.addr), c.bytes_completed);
			for (unsigned b = 0; b < 1 << 20; b += 509)
				CHECK_MSG(r.heap[b] == 0x6d || r.heap[b] == 0, "byte %u: %#x", b, r.heap[b]);
			CHECK(rstats(r.ctx).odp_pinned_bytes <= 256 * 1024);
		}
		atomic_store(&ch.stop, true);
		CHECK_OK(pthread_join(t, NULL));
		CHECK(ch.rounds > 0);
		CHECK_OK(iovm_rqueue_unmap_mr(r.q, ch.mr));
	}
	CHECK_OK(iovm_mr_dereg(ch.mr));
	rig_close(&r);
	CHECK_OK(munmap(ch.app, 256 * 4096));
}

/*
 * The device process's worker, told to stop once it translated a record in
 * the client's MR: it says so, then waits (at most 10 s, never a hang) for
 * the client to let it go. In memory both processes share: it runs in the
 * device process, a forked child.
 */
struct record_sync {
	_Atomic int armed, reached, go;
};

static struct record_sync *rsync;

static bool all_bytes(const uint8_t *p, uint8_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

static void record_hold(void)
{
	if (!atomic_exchange(&rsync->armed, 0))
		return;
	atomic_store(&rsync->reached, 1);
	for (unsigned i = 0; i < 1000000 && !atomic_load(&rsync->go); i++)
		usleep(10);
}

/*
 * A completion record in the client's MR is a device write through it as
 * much as a FILL is: once the client's mmap(MAP_FIXED) over the record's
 * page returned, the record must not land in the memory mapped anew, even
 * though the device translated its address before (deterministic: the
 * worker holds between the translation and the write until the call
 * returned and the client wrote the new page).
 */
TEST(record_in_mr_kept_off_new_memory)
{
	struct rig r;
	struct iovm_mr *mr;
	uint8_t *app = pages_64k(16), *page = app + 4 * 4096;
	struct iovm_completion c;
	struct iovm_cqe cqe;
	iovm_iova_t io;
	int n = 0;

	rsync = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(rsync != MAP_FAILED);
	/* Set before the device process is forked: its worker calls it. */
	dev_test_remote_record = record_hold;
	rig_open(&r, "mrrecord", "");
	memset(app, 0x21, 16 * 4096);
	CHECK_OK(iovm_mr_reg(r.dom, app, 16 * 4096, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr));
	if (!rstats(r.ctx).monitor) {
		CHECK_OK(iovm_mr_dereg(mr));
		rig_close(&r);
		dev_test_remote_record = NULL;
		SKIP("no memory monitor (userfaultfd) here: invalidations are not seen");
	}
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	/* The piece mapped on the device, and a record written through it while nothing moves. */
	c = go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr, .dst = r.ih.addr, .len = 16 * 4096 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	atomic_store(&rsync->go, 1);
	atomic_store(&rsync->armed, 1);
	CHECK_EQ(run(r.q, (struct iovm_desc){ .op = IOVM_OP_NOOP, .flags = IOVM_DESC_COMPLETION,
					      .completion = io.addr + 4 * 4096 }),
		 IOVM_STATUS_SUCCESS);
	CHECK(atomic_load(&rsync->reached));
	CHECK_EQ(page[0], IOVM_STATUS_SUCCESS);
	/* Again, the worker held after it translated the record's address. */
	memset(page, 0x21, 4096);
	atomic_store(&rsync->reached, 0);
	atomic_store(&rsync->go, 0);
	atomic_store(&rsync->armed, 1);
	CHECK_OK(iovm_rqueue_submit(r.q, &(struct iovm_desc){ .op = IOVM_OP_NOOP, .tag = 0x5eed,
							      .flags = IOVM_DESC_COMPLETION,
							      .completion = io.addr + 4 * 4096 }));
	for (unsigned i = 0; !atomic_load(&rsync->reached); i++) {
		CHECK(i < 1000000);
		usleep(10);
	}
	/* It returns at once: the device is not counted in the client's memory yet. */
	CHECK(mmap(page, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == page);
	memset(page, 0x77, 4096);
	atomic_store(&rsync->go, 1);
	for (unsigned long spins = 0; !n; spins++) {
		n = iovm_rqueue_reap(r.q, &cqe, 1);
		CHECK(n >= 0);
		CHECK(spins < 2000000000ul);
		if (!n && spins % 64 == 63)
			usleep(10);
	}
	CHECK_EQ(cqe.tag, 0x5eed);
	CHECK_MSG(all_bytes(page, 0x77, 4096), "the record landed in memory mapped after the call returned");
	dev_test_remote_record = NULL;
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, mr));
	CHECK_OK(iovm_mr_dereg(mr));
	rig_close(&r);
	CHECK_OK(munmap(app, 16 * 4096));
	CHECK_OK(munmap(rsync, 4096));
}

int main(void)
{
	test_init();
	RUN(first_touch_asks_per_64k);
	RUN(pin_budget_evicts_on_the_device);
	RUN(munmap_reaches_the_device);
	RUN(pinned_and_refusals);
	RUN(drops_race_page_requests);
	RUN(record_in_mr_kept_off_new_memory);
	RUN(sixty_four_clients_own_registrations);
	return 0;
}
