/* SPDX-License-Identifier: MIT */
/*
 * test_attack21_iso.c - isolation of a registration in a shared domain
 * from the devices of other processes (iovm/mp.h: "every process's
 * devices reach the memory ... through the registering process").
 *
 *  - rights: a registration without IOVM_ACCESS_LOCAL_WRITE is written by
 *    no other process's device, whatever the op (FILL, COPY, DUALCAST's
 *    second destination, COPY_CRC, SCATTER entries, a batch's child, a
 *    completion record, a keyed descriptor with the owner's keys);
 *  - bounds: the pages either side of the registration, mapped in the
 *    owner with bytes of their own and inside the same 2 MiB IOVA unit,
 *    are never reached;
 *  - completion records in another process's registration: written,
 *    whole, where it is writable, and nothing else of it; never where it
 *    is read-only (a fault counted);
 *  - the IOVAs of a live registration, and of the rest of its 2 MiB
 *    units, are not another process's to map;
 *  - dereg then register again, round after round (the IOVA most likely
 *    reused), while another process's threads read and fill the old IOVA:
 *    no read ever returns the bytes of a buffer whose dereg had returned
 *    before the read was submitted, and no fill lands in one after its
 *    dereg returned (generation-tagged words);
 *  - the owner's MAP_FIXED (no munmap before it), MADV_DONTNEED_LOCKED and
 *    mremap() over registered pages while the other process hammers them
 *    (reg.h: an access in flight during the call may reach the new
 *    memory; one begun after it returned reaches nothing):
 *    the new memory is never read or written by the other device once the
 *    call returned.
 */
#include "attack21.h"

/* Where the k-th completion record goes in a registration (k odd: the writable one). */
#define REC_AT(k) ((size_t)32 * ((k) + 1) + ((k) > 1 ? A21_K4 : 0))

#define HEAP (UINT64_C(32) << 20)
#define DOM "a21-iso"

static const char *g_name;

/* ---- rights and bounds: a read-only registration ---- */

#define RO_PAGES 5u /* the mapping: page 0 and 4 unregistered, 1..3 registered read-only */
#define RO_SEED 11u
#define RW_SEED 12u

struct ro_info {
	uint64_t ro_iova, rw_iova;
	uint64_t ro_lkey, ro_rkey;
	uint64_t ro_addr;
};

static void ro_child(int rd, int wr, void *arg)
{
	a21_child_begin();
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain *dom;
	struct iovm_mr *ro, *rw;
	struct iovm_mr_info info;
	uint8_t *m = a21_map_aligned(RO_PAGES * A21_K4);
	uint8_t *w = a21_map_aligned(4 * A21_K4);

	(void)arg;
	/* The registration sits in the middle of a 2 MiB unit, pages of other bytes either side. */
	m += 5 * A21_K4;
	a21_fill(m, RO_PAGES * A21_K4, RO_SEED);
	a21_fill(w, 4 * A21_K4, RW_SEED);
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	CHECK_OK(iovm_mr_reg(dom, m + A21_K4, 3 * A21_K4, IOVM_ACCESS_LOCAL_READ | IOVM_ACCESS_REMOTE_READ, &ro));
	CHECK_OK(iovm_mr_reg(dom, w, 4 * A21_K4, IOVM_ACCESS_LOCAL_WRITE, &rw));
	CHECK_OK(iovm_mr_query(ro, &info));
	put64(wr, info.iova.addr);
	put64(wr, a21_mr_iova(rw));
	put64(wr, info.lkey);
	put64(wr, info.rkey);
	put64(wr, (uint64_t)(uintptr_t)info.addr);
	CHECK_EQ(get64(rd), 1); /* the other process is done */
	{
		size_t off = a21_differs(m, RO_PAGES * A21_K4, RO_SEED, 0);

		EXPECT_MSG(off == RO_PAGES * A21_K4,
			   "read-only registration (or a page beside it) written by another process's device at byte %zu "
			   "(page %zu): %#x",
			   off, off / A21_K4, off < RO_PAGES * A21_K4 ? m[off] : 0);
		/* The two records the other device wrote here (REC_AT(1), REC_AT(3)), and not a byte more. */
		for (size_t i = 0; i < 4 * A21_K4; i++) {
			bool in_rec = (i >= REC_AT(1) && i < REC_AT(1) + 32) || (i >= REC_AT(3) && i < REC_AT(3) + 32);

			if (!in_rec && w[i] != a21_pat(RW_SEED, i)) {
				EXPECT_MSG(0, "writable registration written by another process's device at byte %zu", i);
				break;
			}
		}
		for (unsigned k = 1; k < 4; k += 2) {
			const struct iovm_completion *cr = (const struct iovm_completion *)(w + REC_AT(k));

			EXPECT_MSG(cr->status == IOVM_STATUS_SUCCESS && cr->bytes_completed == 100,
				   "record %u from another process's device: status %u, %u bytes", k, cr->status,
				   cr->bytes_completed);
		}
	}
	CHECK_OK(iovm_mr_dereg(ro));
	CHECK_OK(iovm_mr_dereg(rw));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_close(ctx));
	put64(wr, 2);
	a21_child_exit();
}

static uint64_t dom_faults(struct iovm_domain *dom, struct devq *d)
{
	struct iovm_domain_stats st;
	struct iovm_queue_stats qs;

	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_OK(iovm_queue_stats(d->q, &qs));
	return st.faults + qs.faults + qs.ring_faults + qs.bus_faults;
}

TEST(read_only_and_bounds)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct sdom_buf b;
	struct ro_info ri;
	struct child c;
	struct devq d;
	uint8_t st;

	g_name = share_name("a21-ro");
	ctx = share_ok(g_name, HEAP);
	CHECK_OK(iovm_share_domain_create(ctx, DOM, NULL, &dom));
	c = child_start(ro_child, NULL);
	ri.ro_iova = get64(c.rd);
	ri.rw_iova = get64(c.rd);
	ri.ro_lkey = get64(c.rd);
	ri.ro_rkey = get64(c.rd);
	ri.ro_addr = get64(c.rd);
	d = devq_open(ctx, dom);
	b = sdom_buf_open(ctx, dom, 64 * A21_K4);
	uint8_t *src = b.p;                          /* 4 pages of our own bytes */
	uint64_t src_iova = b.iova;
	uint8_t *dst2 = b.p + 8 * A21_K4;             /* 4 pages a copy lands in */
	uint64_t dst2_iova = b.iova + 8 * A21_K4;
	struct iovm_sge *sg = (struct iovm_sge *)(b.p + 16 * A21_K4);
	uint64_t sg_iova = b.iova + 16 * A21_K4;
	struct iovm_desc *batch = (struct iovm_desc *)(b.p + 20 * A21_K4);
	uint64_t batch_iova = b.iova + 20 * A21_K4;

	memset(src, 0x3c, 4 * A21_K4);

	/* The table says read-only. */
	{
		iovm_pa_t pa;
		uint32_t perm = 0;

		CHECK_OK(iovm_domain_translate(dom, IOVM_IOVA(ri.ro_iova), &pa, &perm));
		EXPECT_MSG(!(perm & IOVM_MAP_WRITE), "read-only registration translates with %#x", perm);
	}
	/* Reading works, and gives its bytes. */
	st = devq_run(&d, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = ri.ro_iova, .dst = dst2_iova,
					      .len = 3 * A21_K4 });
	EXPECT_EQ(st, IOVM_STATUS_SUCCESS);
	EXPECT_EQ(a21_differs(dst2, 3 * A21_K4, RO_SEED, A21_K4), 3 * A21_K4);

	/* Every way of writing it. */
	for (uint64_t off = 0; off < 3 * A21_K4; off += 4093) {
		uint64_t at = ri.ro_iova + off;
		uint32_t len = (uint32_t)(3 * A21_K4 - off < 4097 ? 3 * A21_K4 - off : 4097);

		st = devq_fill(&d, at, len, 0x55);
		EXPECT_MSG(st != IOVM_STATUS_SUCCESS, "FILL of a read-only registration at +%llu: %u",
			   (unsigned long long)off, st);
		st = devq_run(&d, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = src_iova, .dst = at, .len = len });
		EXPECT_MSG(st != IOVM_STATUS_SUCCESS, "COPY into a read-only registration: %u", st);
		st = devq_run(&d, (struct iovm_desc){ .op = IOVM_OP_COPY_CRC, .src = src_iova, .dst = at, .len = len });
		EXPECT_MSG(st != IOVM_STATUS_SUCCESS, "COPY_CRC into a read-only registration: %u", st);
		st = devq_run(&d, (struct iovm_desc){ .op = IOVM_OP_DUALCAST, .src = src_iova, .dst = dst2_iova,
						      .dst2 = at, .len = len });
		EXPECT_MSG(st != IOVM_STATUS_SUCCESS, "DUALCAST's dst2 in a read-only registration: %u", st);
		/* Overlapping COPY within the registration itself (memmove from the end). */
		st = devq_run(&d, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = ri.ro_iova, .dst = ri.ro_iova + 1,
						      .len = 2 * A21_K4 });
		EXPECT_MSG(st != IOVM_STATUS_SUCCESS, "overlapping COPY inside a read-only registration: %u", st);
	}
	/* SCATTER: one entry ours, one theirs (read-only). */
	sg[0] = (struct iovm_sge){ .iova = dst2_iova, .len = 100 };
	sg[1] = (struct iovm_sge){ .iova = ri.ro_iova + 777, .len = 5000 };
	st = devq_run(&d, (struct iovm_desc){ .op = IOVM_OP_SCATTER, .src = src_iova, .dst = sg_iova, .sg_count = 2,
					      .len = 5100 });
	EXPECT_MSG(st != IOVM_STATUS_SUCCESS, "SCATTER entry in a read-only registration: %u", st);
	/* A batch whose second child writes it. */
	memset(batch, 0, 4 * sizeof(*batch));
	batch[0] = (struct iovm_desc){ .op = IOVM_OP_COPY, .src = ri.ro_iova, .dst = dst2_iova, .len = 64 };
	batch[1] = (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = ri.ro_iova + 64, .len = 8193, .pattern = ~0ull };
	batch[2] = (struct iovm_desc){ .op = IOVM_OP_NOOP };
	st = devq_run(&d, (struct iovm_desc){ .op = IOVM_OP_BATCH, .src = batch_iova, .len = 3 });
	EXPECT_MSG(st == IOVM_STATUS_BATCH_FAIL, "batch writing a read-only registration: %u", st);
	/*
	 * Completion records there, and in their writable registration: the
	 * owner writes those (its test above checks them and that nothing
	 * else of it changed); the read-only ones fault.
	 */
	{
		uint64_t before = dom_faults(dom, &d);

		for (unsigned k = 0; k < 4; k++) {
			uint64_t rec = (k & 1 ? ri.rw_iova : ri.ro_iova) + REC_AT(k);
			struct iovm_cqe cqe;
			int n = 0;
			struct iovm_desc cd = { .op = IOVM_OP_COPY, .flags = IOVM_DESC_COMPLETION, .pasid = SDOM_PASID,
						.src = src_iova, .dst = dst2_iova, .len = 100, .completion = rec,
						.tag = 900 + k };

			CHECK_OK(iovm_queue_submit(d.q, &cd));
			for (unsigned spins = 0; n == 0; spins++) {
				CHECK(iovm_queue_process(d.q, 1) >= 0);
				n = iovm_queue_reap(d.q, &cqe, 1);
				CHECK(n >= 0);
			}
			EXPECT_EQ(cqe.tag, 900 + k);
		}
		EXPECT_MSG(dom_faults(dom, &d) >= before + 2,
			   "completion records in another process's read-only registration: %llu faults counted",
			   (unsigned long long)(dom_faults(dom, &d) - before));
	}
	/* Keyed, with the owner's own keys (of another process: unknown here). */
	{
		struct iovm_desc kd = { .op = IOVM_OP_FILL, .flags = IOVM_DESC_KEYED, .dst = ri.ro_addr,
					.dst_key = (uint32_t)ri.ro_lkey, .len = 4096, .pattern = 0x77 };

		st = devq_run(&d, kd);
		EXPECT_MSG(st != IOVM_STATUS_SUCCESS, "keyed FILL with the owner's lkey: %u", st);
		kd.dst_key = (uint32_t)ri.ro_rkey;
		st = devq_run(&d, kd);
		EXPECT_MSG(st != IOVM_STATUS_SUCCESS, "keyed FILL with the owner's rkey: %u", st);
	}
	/* Bounds: the pages beside it are the owner's memory, never reached. */
	memset(dst2, 0, 4 * A21_K4);
	for (int side = 0; side < 2; side++) {
		uint64_t at = side ? ri.ro_iova + 3 * A21_K4 : ri.ro_iova - A21_K4;

		st = devq_run(&d, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = at, .dst = dst2_iova, .len = 4096 });
		EXPECT_MSG(st == IOVM_STATUS_PAGE_FAULT, "read beside the registration (%s): %u", side ? "after" : "before",
			   st);
		st = devq_fill(&d, at, 4096, 0x66);
		EXPECT_MSG(st == IOVM_STATUS_PAGE_FAULT, "fill beside the registration: %u", st);
		/* Straddling its edge: the registered part only. */
		st = devq_run(&d, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = side ? at - 100 : at + 4000,
						      .dst = dst2_iova + 4096, .len = 200 });
		EXPECT_EQ(st, IOVM_STATUS_PAGE_FAULT);
	}
	EXPECT_MSG(a21_first_not(dst2, A21_K4, 0) == A21_K4, "bytes beside a registration came through");
	/* Their IOVAs, and the rest of their 2 MiB units, are not ours to map. */
	{
		uint8_t *mine = iovm_dma_alloc(ctx, 4096, 4096, 0);
		struct iovm_dma_xlate x;
		uint64_t unit = ri.ro_iova & ~(A21_M2 - 1);
		uint64_t tries[] = { ri.ro_iova, ri.ro_iova + A21_K4, ri.ro_iova - A21_K4, ri.ro_iova + 3 * A21_K4, unit,
				     unit + A21_M2 - A21_K4, ri.rw_iova };

		CHECK(mine != NULL);
		CHECK_OK(iovm_dma_xlate(ctx, mine, &x));
		for (unsigned i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
			iovm_iova_t at = IOVM_IOVA(tries[i]);
			int r = iovm_domain_map(dom, &at, x.pa, 4096, A21_RW);

			EXPECT_MSG(r < 0, "mapped our heap page at %#llx, inside another process's registration unit",
				   (unsigned long long)tries[i]);
			if (r == 0)
				CHECK_OK(iovm_domain_unmap(dom, at, 4096));
		}
		CHECK_OK(iovm_dma_free(ctx, mine));
	}
	put64(c.wr, 1);
	CHECK_EQ(get64(c.rd), 2);
	child_ok(&c);
	devq_close(&d);
	sdom_buf_close(ctx, dom, &b);
	CHECK_OK(iovm_domain_destroy(dom));
	EXPECT_SOUND(ctx);
	CHECK_OK(iovm_close(ctx));
}

/* ---- dereg and register again, the old IOVA hammered ---- */

#define GENS 40u
#define GLEN (UINT64_C(64) << 10)
#define HAMMERS 3u

struct gen_board {
	_Atomic uint64_t iova;      /* the live generation's IOVA, 0 between */
	_Atomic uint64_t first_iova;
	_Atomic uint64_t dead_upto; /* generations whose dereg (or replacement) returned */
	_Atomic int stop;
	_Atomic uint64_t reused;
	_Atomic uint64_t ops; /* the hammers' accesses so far */
};

static struct gen_board *g_board;

static void regen_child(int rd, int wr, void *arg)
{
	a21_child_begin();
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain *dom;
	uint8_t *bufs[GENS + 1];
	uint8_t *snap[GENS + 1];

	(void)arg;
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	srand((unsigned)getpid());
	CHECK_EQ(get64(rd), 1);
	for (unsigned g = 1; g <= GENS; g++) {
		struct iovm_mr *mr;
		uint64_t iova;

		bufs[g] = mmap(NULL, GLEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		CHECK(bufs[g] != MAP_FAILED);
		a21_tag(bufs[g], GLEN, g);
		CHECK_OK(iovm_mr_reg(dom, bufs[g], GLEN, IOVM_ACCESS_LOCAL_WRITE, &mr));
		iova = a21_mr_iova(mr);
		if (g == 1)
			atomic_store(&g_board->first_iova, iova);
		else if (iova == atomic_load(&g_board->first_iova))
			atomic_fetch_add(&g_board->reused, 1);
		atomic_store(&g_board->iova, iova);
		{
			uint64_t ops = atomic_load(&g_board->ops);

			usleep(500 + (unsigned)(rand() % 3000));
			while (atomic_load(&g_board->ops) < ops + 4)
				usleep(200);
		}
		atomic_store(&g_board->iova, 0);
		CHECK_OK(iovm_mr_dereg(mr));
		atomic_store(&g_board->dead_upto, g);
		/* From here on, this buffer is memory no device may reach: its bytes as they are now, for ever. */
		snap[g] = malloc(GLEN);
		CHECK(snap[g] != NULL);
		memcpy(snap[g], bufs[g], GLEN);
	}
	atomic_store(&g_board->stop, 1);
	CHECK_EQ(get64(rd), 2); /* the hammers stopped */
	for (unsigned g = 1; g <= GENS; g++) {
		for (size_t i = 0; i < GLEN; i++)
			if (bufs[g][i] != snap[g][i]) {
				EXPECT_MSG(0, "generation %u written at byte %zu after its dereg returned: %#x (was %#x)", g,
					   i, bufs[g][i], snap[g][i]);
				break;
			}
		free(snap[g]);
		munmap(bufs[g], GLEN);
	}
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_close(ctx));
	put64(wr, 3);
	a21_child_exit();
}

struct hammer {
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	unsigned id;
	uint64_t ok, faults, stale_seen;
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	struct sdom_wq q = sdom_wq_open(h->ctx, h->dom, 16);
	struct sdom_buf b = sdom_buf_open(h->ctx, h->dom, 4 * A21_K4);
	unsigned seed = h->id * 7919u + 1;

	while (!atomic_load(&g_board->stop)) {
		uint64_t dead = atomic_load(&g_board->dead_upto);
		uint64_t iova = atomic_load(&g_board->iova);
		uint64_t first = atomic_load(&g_board->first_iova);
		uint64_t at = (rand_r(&seed) & 1) || !iova ? first : iova;
		uint64_t page = (uint64_t)(rand_r(&seed) % (GLEN / A21_K4)) * A21_K4;
		struct iovm_cqe cqe;

		if (!at) {
			usleep(100);
			continue;
		}
		atomic_fetch_add(&g_board->ops, 1);
		if (rand_r(&seed) % 3 == 0) {
			cqe = sdom_wq_run(&q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = at + page + 8, .len = 4000,
							       .pattern = A21_WORD(0xfffff, h->id) });
		} else {
			memset(b.p, 0, A21_K4);
			cqe = sdom_wq_run(&q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = at + page, .dst = b.iova,
							       .len = A21_K4 });
			if (cqe.status == IOVM_STATUS_SUCCESS) {
				const uint64_t *w = (const uint64_t *)b.p;

				for (size_t i = 0; i < A21_K4 / 8; i++) {
					uint64_t v = w[i];

					if (A21_WORD_GEN(v) == 0xfffff)
						continue; /* a fill of ours (or another hammer's) */
					/* (IOVAs come back at other offsets: only the generation tells.) */
					if (!A21_WORD_IS(v) || A21_WORD_GEN(v) <= dead) {
						h->stale_seen++;
						EXPECT_MSG(0,
							   "read of IOVA %#llx (submitted once generations <= %llu were "
							   "deregistered) gave word %zu = %#llx",
							   (unsigned long long)(at + page), (unsigned long long)dead, i,
							   (unsigned long long)v);
						break;
					}
				}
			}
		}
		EXPECT_MSG(cqe.status == IOVM_STATUS_SUCCESS || cqe.status == IOVM_STATUS_PAGE_FAULT, "status %u",
			   cqe.status);
		if (cqe.status == IOVM_STATUS_SUCCESS)
			h->ok++;
		else
			h->faults++;
	}
	sdom_wq_close(&q);
	sdom_buf_close(h->ctx, h->dom, &b);
	return NULL;
}

/*
 * Under ThreadSanitizer this case once reported a device worker's
 * pt_walk() read of a shared domain's table page against a hammer
 * thread's table_alloc() memset of that page (and did in 18 of 196 runs
 * of the binary alone). The hammer's install lost to a neighbour's, the
 * page went back to the shared pool, the child process took and
 * installed it, and the worker reached it through the child's store: an
 * ordering TSan cannot see across processes. A shared table's free now
 * releases its source and every descent acquires it (base/sanitizer.h).
 */
TEST(dereg_reregister_old_iova)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct hammer h[HAMMERS];
	pthread_t t[HAMMERS];
	uint64_t ok = 0, faults = 0;
	struct child c;

	g_name = share_name("a21-regen");
	g_board = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(g_board != MAP_FAILED);
	memset(g_board, 0, sizeof(*g_board));
	ctx = share_ok(g_name, HEAP);
	CHECK_OK(iovm_share_domain_create(ctx, DOM, NULL, &dom));
	c = child_start(regen_child, NULL);
	for (unsigned i = 0; i < HAMMERS; i++) {
		h[i] = (struct hammer){ .ctx = ctx, .dom = dom, .id = i };
		CHECK_OK(pthread_create(&t[i], NULL, hammer_main, &h[i]));
	}
	put64(c.wr, 1);
	for (unsigned i = 0; i < HAMMERS; i++) {
		CHECK_OK(pthread_join(t[i], NULL));
		ok += h[i].ok;
		faults += h[i].faults;
	}
	put64(c.wr, 2);
	CHECK_EQ(get64(c.rd), 3);
	child_ok(&c);
	printf("# %llu accesses reached a generation, %llu faulted; the first IOVA came back %llu times of %u\n",
	       (unsigned long long)ok, (unsigned long long)faults, (unsigned long long)atomic_load(&g_board->reused),
	       GENS - 1);
	CHECK(ok > 0);
	CHECK_OK(iovm_domain_destroy(dom));
	EXPECT_SOUND(ctx);
	CHECK_OK(iovm_close(ctx));
	munmap(g_board, 4096);
}

/* ---- MAP_FIXED, MADV_DONTNEED_LOCKED, mremap over registered pages, under fire ---- */

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif

#define RPAGES 16u
#define FRESH 0xee
#define RTAG 0x5a

struct rep_board {
	_Atomic uint64_t iova;
	_Atomic int stop;
	_Atomic uint64_t ops;
	/*
	 * Set once the call that replaced the page returned. reg.h: an access
	 * in flight while the call replaces the memory may reach the new
	 * memory; one begun after it returned reaches nothing.
	 */
	_Atomic int returned[RPAGES];
};

static struct rep_board *r_board;

static void replace_child(int rd, int wr, void *arg)
{
	a21_child_begin();
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	uint8_t *app = a21_map_aligned(RPAGES * A21_K4);
	uint8_t *spare;
	bool replaced[RPAGES] = { 0 };
	int how_ok[3] = { 0 };

	(void)arg;
	a21_fill(app, RPAGES * A21_K4, 3);
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	CHECK_OK(iovm_mr_reg(dom, app, RPAGES * A21_K4, IOVM_ACCESS_LOCAL_WRITE, &mr));
	atomic_store(&r_board->iova, a21_mr_iova(mr));
	while (atomic_load(&r_board->ops) < 50)
		usleep(1000);
	/* Replace pages one by one, three ways, each while the other process fills and reads them all. */
	for (unsigned k = 1; k < RPAGES; k += 2) {
		uint8_t *pg = app + (size_t)k * A21_K4;
		unsigned how = (k / 2) % 3;

		if (how == 0) {
			CHECK(mmap(pg, A21_K4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
			      pg);
		} else if (how == 1) {
			if (madvise(pg, A21_K4, MADV_DONTNEED_LOCKED)) {
				how_ok[1] = -1; /* the kernel lacks it */
				continue;
			}
		} else {
			spare = mmap(NULL, A21_K4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			CHECK(spare != MAP_FAILED);
			memset(spare, FRESH, A21_K4);
			CHECK(mremap(spare, A21_K4, A21_K4, MREMAP_MAYMOVE | MREMAP_FIXED, pg) == pg);
		}
		atomic_store(&r_board->returned[k], 1);
		memset(pg, FRESH, A21_K4);
		replaced[k] = true;
		if (how_ok[how] >= 0)
			how_ok[how]++;
		{
			uint64_t ops = atomic_load(&r_board->ops);

			usleep(3000);
			while (atomic_load(&r_board->ops) < ops + 20)
				usleep(500);
		}
	}
	{
		uint64_t ops = atomic_load(&r_board->ops);

		while (atomic_load(&r_board->ops) < ops + 200)
			usleep(1000);
	}
	atomic_store(&r_board->stop, 1);
	CHECK_EQ(get64(rd), 1);
	for (unsigned k = 0; k < RPAGES; k++) {
		const uint8_t *pg = app + (size_t)k * A21_K4;

		if (replaced[k]) {
			size_t off = a21_first_not(pg, A21_K4, FRESH);

			EXPECT_MSG(off == A21_K4,
				   "page %u (replaced %s) written by another process's device after the call returned: "
				   "byte %zu is %#x",
				   k, (k / 2) % 3 == 0 ? "by MAP_FIXED" : (k / 2) % 3 == 1 ? "by MADV_DONTNEED_LOCKED" : "by mremap",
				   off, off < A21_K4 ? pg[off] : 0);
		} else {
			for (size_t i = 0; i < A21_K4; i++)
				CHECK_MSG(pg[i] == a21_pat(3, (size_t)k * A21_K4 + i) || pg[i] == RTAG,
					  "kept page %u byte %zu: %#x", k, i, pg[i]);
		}
	}
	printf("# replaced: %d by MAP_FIXED, %d by MADV_DONTNEED_LOCKED, %d by mremap\n", how_ok[0], how_ok[1],
	       how_ok[2]);
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_close(ctx));
	put64(wr, 2);
	a21_child_exit();
}

struct rhammer {
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	unsigned id;
	uint64_t ok, faults;
};

static void *rhammer_main(void *arg)
{
	struct rhammer *h = arg;
	struct sdom_wq q = sdom_wq_open(h->ctx, h->dom, 16);
	struct sdom_buf b = sdom_buf_open(h->ctx, h->dom, A21_K4);
	unsigned seed = h->id + 17;
	uint64_t iova;

	while (!(iova = atomic_load(&r_board->iova)))
		usleep(100);
	while (!atomic_load(&r_board->stop)) {
		unsigned k = (unsigned)rand_r(&seed) % RPAGES;
		struct iovm_cqe cqe;

		bool after;

		atomic_fetch_add(&r_board->ops, 1);
		after = atomic_load(&r_board->returned[k]);
		if (rand_r(&seed) & 1) {
			cqe = sdom_wq_run(&q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = iova + (uint64_t)k * A21_K4,
							       .len = A21_K4, .pattern = SDOM_PATTERN(RTAG) });
		} else {
			memset(b.p, 0, A21_K4);
			cqe = sdom_wq_run(&q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = iova + (uint64_t)k * A21_K4,
							       .dst = b.iova, .len = A21_K4 });
			if (cqe.status == IOVM_STATUS_SUCCESS) {
				size_t i;

				/* The new memory only while the call that replaced it ran (FRESH, or zero before the owner wrote it). */
				for (i = 0; i < A21_K4; i++)
					if (b.p[i] != RTAG && b.p[i] != a21_pat(3, (size_t)k * A21_K4 + i) &&
					    (after || (b.p[i] != FRESH && b.p[i] != 0)))
						break;
				EXPECT_MSG(i == A21_K4, "page %u read gave byte %zu = %#x: memory the registration never held",
					   k, i, b.p[i]);
			}
		}
		EXPECT_MSG(cqe.status == IOVM_STATUS_SUCCESS || cqe.status == IOVM_STATUS_PAGE_FAULT, "status %u",
			   cqe.status);
		EXPECT_MSG(!after || cqe.status != IOVM_STATUS_SUCCESS,
			   "page %u: an access begun after the call that replaced it returned reached it", k);
		EXPECT_MSG(!after || cqe.status != IOVM_STATUS_SUCCESS,
			   "page %u: an access begun after the call that replaced it returned reached it", k);
		if (cqe.status == IOVM_STATUS_SUCCESS)
			h->ok++;
		else
			h->faults++;
	}
	sdom_wq_close(&q);
	sdom_buf_close(h->ctx, h->dom, &b);
	return NULL;
}

TEST(replaced_under_fire)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct rhammer h[HAMMERS];
	pthread_t t[HAMMERS];
	uint64_t ok = 0, faults = 0;
	struct child c;

	g_name = share_name("a21-rep");
	r_board = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(r_board != MAP_FAILED);
	memset(r_board, 0, sizeof(*r_board));
	ctx = share_ok(g_name, HEAP);
	CHECK_OK(iovm_share_domain_create(ctx, DOM, NULL, &dom));
	c = child_start(replace_child, NULL);
	for (unsigned i = 0; i < HAMMERS; i++) {
		h[i] = (struct rhammer){ .ctx = ctx, .dom = dom, .id = i };
		CHECK_OK(pthread_create(&t[i], NULL, rhammer_main, &h[i]));
	}
	for (unsigned i = 0; i < HAMMERS; i++) {
		CHECK_OK(pthread_join(t[i], NULL));
		ok += h[i].ok;
		faults += h[i].faults;
	}
	put64(c.wr, 1);
	CHECK_EQ(get64(c.rd), 2);
	child_ok(&c);
	printf("# %llu accesses succeeded, %llu faulted\n", (unsigned long long)ok, (unsigned long long)faults);
	CHECK(ok > 0 && faults > 0);
	CHECK_OK(iovm_domain_destroy(dom));
	EXPECT_SOUND(ctx);
	CHECK_OK(iovm_close(ctx));
	munmap(r_board, 4096);
}

int main(void)
{
	a21_init();
	a21_watchdog(280);
	RUN(read_only_and_bounds);
	RUN(dereg_reregister_old_iova);
	RUN(replaced_under_fire);
	return a21_status();
}
