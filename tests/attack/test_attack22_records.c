/* SPDX-License-Identifier: MIT */
/*
 * test_attack22_records.c - completion records, and both ends of a
 * descriptor, in OTHER processes' registrations of a shared domain
 * (iovm/mp.h, delegated access).
 *
 * What the headers promise, and what is checked here, exactly:
 *  - mp.h: a completion record in another process's registration "is
 *    written by the registering process too, its status last": where
 *    that registration is writable (pinned or on demand; the record's
 *    owner being the descriptor's source owner, its destination owner,
 *    or a third process) the record there says what the ring says, and
 *    not another byte of the owner's memory changes; where it is
 *    read-only, or its owner is dead, it "faults: counted, not written".
 *    The descriptor still completes in the ring (dev.h: the ring entry is
 *    the device's own memory), and what its entry says is what moved:
 *    success with every byte, or a page fault with exactly
 *    bytes_completed bytes (dev.h). Which of the two is not promised: it
 *    is printed.
 *  - mp.h: the registering process's own devices reach its memory
 *    directly: a record in the device process's own registration is
 *    written, and says what the ring says.
 *  - dev.h: a COPY whose source and destination are both in other
 *    processes' registrations moves exactly its bytes; one whose dst lies
 *    above an overlapping src in ONE other process's registration runs
 *    from the end, as memmove (result 1), and one below runs forward
 *    (result 0), also where the overlap is a few bytes of a 4 KiB piece
 *    or more than one (the owner's engine moves the bytes by pieces).
 *  - a batch whose list is in another process's (on-demand) registration,
 *    whose children have their records in this process's heap (written)
 *    and in a dead process's registration (not written): the children's
 *    bytes move as their records and the batch say.
 * At the end each owner checks every byte of its mapping, pages beside
 * the registrations included, against the model kept here.
 */
#include "attack22.h"

#define HEAP (UINT64_C(32) << 20)
#define DOM "a22-rec"
#define MAPLEN (16u * 4096u)
#define R0_OFF (4096u + 100u)      /* pinned, read-write */
#define R0_LEN (3u * 4096u + 5u)
#define R1_OFF (6u * 4096u + 3u)   /* on demand, read-write */
#define R1_LEN (4u * 4096u - 3u)
#define R2_OFF (12u * 4096u)       /* pinned, read-only */
#define R2_LEN (2u * 4096u)
#define NOWN 3u                    /* A, B, C */
#define LOCAL (256u * 1024u)

struct board {
	uint8_t model[NOWN][MAPLEN];
	uint64_t iova[NOWN][3];
};

static struct board *B;
static const char *g_name;
static const uint32_t r_off[3] = { R0_OFF, R1_OFF, R2_OFF };
static const uint32_t r_len[3] = { R0_LEN, R1_LEN, R2_LEN };

/* ---- an owner: registers, then checks its mapping against the model on command ---- */

static void owner(int rd, int wr, void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct iovm_mr *mr[3];
	uint8_t *m = mmap(NULL, MAPLEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned broken0 = atomic_load(&a22_broken);

	a22_watchdog(60);
	CHECK_EQ(get64(rd), 3); /* the share and its domain exist */
	ctx = attach_ok(g_name);
	CHECK(m != MAP_FAILED);
	a22_fill(m, MAPLEN, 0xc0de0 + id);
	memcpy(B->model[id], m, MAPLEN);
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	CHECK_OK(iovm_mr_reg(dom, m + R0_OFF, R0_LEN, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_READ, &mr[0]));
	CHECK_OK(iovm_mr_reg(dom, m + R1_OFF, R1_LEN, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr[1]));
	CHECK_OK(iovm_mr_reg(dom, m + R2_OFF, R2_LEN, IOVM_ACCESS_LOCAL_READ | IOVM_ACCESS_REMOTE_READ, &mr[2]));
	for (unsigned r = 0; r < 3; r++)
		B->iova[id][r] = a22_mr_iova(mr[r]);
	put64(wr, 1);
	for (;;) {
		uint64_t cmd = get64(rd);

		if (cmd == 1) { /* check */
			for (uint32_t j = 0; j < MAPLEN; j++)
				if (m[j] != B->model[id][j]) {
					int in = -1;

					for (unsigned r = 0; r < 3; r++)
						if (j >= r_off[r] && j < r_off[r] + r_len[r])
							in = (int)r;
					A22_EXPECT_MSG(0, "owner %u: byte %u of its mapping (registration %d) is %#x, model %#x",
						       id, j, in, m[j], B->model[id][j]);
					break;
				}
			put64(wr, atomic_load(&a22_broken) - broken0);
			continue;
		}
		break; /* 2: end */
	}
	for (unsigned r = 0; r < 3; r++)
		CHECK_OK(iovm_mr_dereg(mr[r]));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_close(ctx));
	put64(wr, atomic_load(&a22_broken) - broken0);
	fflush(NULL);
	_exit(atomic_load(&a22_broken) != broken0);
}

/* ---- the device process ---- */

struct drig {
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct sdom_wq q;
	struct sdom_buf loc;      /* our heap: records, read-backs, sources */
	struct child own[NOWN];
	bool alive[NOWN];
	uint8_t *mine;           /* our own memory, registered: a record there is ours */
	struct iovm_mr *mine_mr;
	uint64_t mine_iova;
	unsigned rec_ok, rec_fault; /* what the ring said of descriptors whose record was another's */
};

static uint64_t ri(unsigned o, unsigned r, uint32_t off)
{
	return B->iova[o][r] + off;
}

static uint8_t *mod(unsigned o, unsigned r, uint32_t off)
{
	return B->model[o] + r_off[r] + off;
}

/* Read @len bytes at @iova into our heap (at LOCAL/2) and compare with @want. */
static void verify(struct drig *g, uint64_t iova, const uint8_t *want, uint32_t len, const char *what)
{
	uint8_t *into = g->loc.p + LOCAL / 2;
	struct iovm_cqe c;

	CHECK(len <= LOCAL / 4);
	memset(into, 0, len);
	c = sdom_wq_run(&g->q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = iova, .dst = g->loc.iova + LOCAL / 2,
						  .len = len, .tag = 7 });
	A22_EXPECT_MSG(c.status == IOVM_STATUS_SUCCESS, "%s: read back: %s", what, iovm_status_name(c.status));
	for (uint32_t j = 0; j < len; j++)
		if (into[j] != want[j]) {
			A22_EXPECT_MSG(0, "%s: byte %u of %u is %#x, model %#x", what, j, len, into[j], want[j]);
			return;
		}
}

/*
 * Run a COPY or FILL (dst in owner dw's region dr at doff) with its record
 * at @roff of owner ro's region rr (another process's registration): where
 * that is writable and its owner lives, the record is written there and
 * says what the ring says; where not, it is not written and a fault is
 * counted. The bytes moved are what the ring says.
 */
static void rec_elsewhere(struct drig *g, struct iovm_desc d, unsigned dw, unsigned dr, uint32_t doff,
			  const uint8_t *newbytes, unsigned ro, unsigned rr, uint32_t roff, const char *what)
{
	uint64_t before = a22_faults(g->dom, g->q.q);
	bool written = g->alive[ro] && rr != 2;
	struct iovm_cqe c;
	uint32_t bc;

	d.flags |= IOVM_DESC_COMPLETION;
	d.completion = ri(ro, rr, roff);
	CHECK((d.completion & 31) == 0);
	c = sdom_wq_run(&g->q, d);
	bc = c.bytes_completed;
	A22_EXPECT_MSG((c.status == IOVM_STATUS_SUCCESS && bc == d.len) ||
			       (c.status == IOVM_STATUS_PAGE_FAULT && bc <= d.len),
		       "%s: the ring says %s, %u of %u bytes", what, iovm_status_name(c.status), bc, d.len);
	if (c.status == IOVM_STATUS_SUCCESS)
		g->rec_ok++;
	else
		g->rec_fault++;
	if (!written)
		A22_EXPECT_MSG(a22_faults(g->dom, g->q.q) > before,
			       "%s: a completion record in owner %u's registration %u: no fault counted", what, ro, rr);
	/* What the ring says moved, moved: the model takes it. */
	if (bc > d.len)
		bc = d.len;
	memcpy(mod(dw, dr, doff), newbytes, bc);
	if (g->alive[dw])
		verify(g, ri(dw, dr, doff), mod(dw, dr, doff), d.len, what);
	if (written) {
		/* Read back: the record the ring's entry agrees with; the model takes its bytes. */
		uint8_t *into = g->loc.p + LOCAL / 2;
		struct iovm_completion rec;
		struct iovm_cqe rc = sdom_wq_run(&g->q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = ri(ro, rr, roff),
									   .dst = g->loc.iova + LOCAL / 2,
									   .len = sizeof(rec), .tag = 8 });

		A22_EXPECT_MSG(rc.status == IOVM_STATUS_SUCCESS, "%s: record read back: %s", what,
			       iovm_status_name(rc.status));
		memcpy(&rec, into, sizeof(rec));
		A22_EXPECT_MSG(rec.status == c.status && rec.bytes_completed == c.bytes_completed,
			       "%s: the record in owner %u's registration %u says %u/%u, the ring %u/%u", what, ro, rr,
			       rec.status, rec.bytes_completed, c.status, c.bytes_completed);
		memcpy(mod(ro, rr, roff), into, sizeof(rec));
	} else if (g->alive[ro] && rr != 2) {
		verify(g, ri(ro, rr, roff), mod(ro, rr, roff), 32, what);
	}
}

static void owners_check(struct drig *g)
{
	for (unsigned o = 0; o < NOWN; o++)
		if (g->alive[o])
			put64(g->own[o].wr, 1);
	for (unsigned o = 0; o < NOWN; o++)
		if (g->alive[o]) {
			uint64_t b = get64(g->own[o].rd);

			A22_EXPECT_MSG(b == 0, "owner %u: %llu broken promise(s) in its mapping, see above", o,
				       (unsigned long long)b);
		}
}

/* An overlapping COPY inside owner @o's registration @r: memmove, result 1 upwards, 0 downwards. */
static void move_in(struct drig *g, unsigned o, unsigned r, uint32_t soff, uint32_t doff, uint32_t len)
{
	struct iovm_completion *rec = (struct iovm_completion *)(g->loc.p + LOCAL - 64);
	char what[128];
	struct iovm_cqe c;

	snprintf(what, sizeof(what), "owner %u reg %u: COPY +%u -> +%u, %u bytes", o, r, soff, doff, len);
	CHECK(soff + len <= r_len[r] && doff + len <= r_len[r]);
	memset(rec, 0, sizeof(*rec));
	c = sdom_wq_run(&g->q, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_COMPLETION, .src = ri(o, r, soff),
						  .dst = ri(o, r, doff), .len = len,
						  .completion = g->loc.iova + LOCAL - 64, .tag = 11 });
	A22_EXPECT_MSG(c.status == IOVM_STATUS_SUCCESS && c.bytes_completed == len, "%s: %s, %u bytes", what,
		       iovm_status_name(c.status), c.bytes_completed);
	A22_EXPECT_MSG(rec->status == c.status && rec->bytes_completed == c.bytes_completed,
		       "%s: the record says %u/%u, the ring %u/%u", what, rec->status, rec->bytes_completed, c.status,
		       c.bytes_completed);
	A22_EXPECT_MSG(rec->result == (doff > soff && doff < soff + len),
		       "%s: result %u (1: ran from the end, as it must exactly when dst lies above an overlapping src)",
		       what, rec->result);
	memmove(mod(o, r, doff), mod(o, r, soff), len);
	verify(g, ri(o, r, doff < soff ? doff : soff), mod(o, r, doff < soff ? doff : soff),
	       len + (doff > soff ? doff - soff : soff - doff), what);
}

TEST(records_and_both_ends_elsewhere)
{
	struct drig g = { 0 };
	uint8_t *lp;
	uint64_t li;
	enum { A = 0, Bo = 1, C = 2 };

	B = mmap(NULL, sizeof(*B), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(B != MAP_FAILED);
	g_name = share_name("a22-rec");
	/* The owners first: nothing of iovm runs yet, no thread to inherit. */
	for (unsigned o = 0; o < NOWN; o++) {
		g.own[o] = child_start(owner, (void *)(uintptr_t)o);
		g.alive[o] = true;
	}
	g.ctx = share_ok(g_name, HEAP);
	CHECK_OK(iovm_share_domain_create(g.ctx, DOM, NULL, &g.dom));
	for (unsigned o = 0; o < NOWN; o++)
		put64(g.own[o].wr, 3);
	for (unsigned o = 0; o < NOWN; o++)
		CHECK_EQ(get64(g.own[o].rd), 1);
	g.q = sdom_wq_open(g.ctx, g.dom, 16);
	g.loc = sdom_buf_open(g.ctx, g.dom, LOCAL);
	lp = g.loc.p;
	li = g.loc.iova;
	/* Our own memory, registered in the shared domain: our device reaches it directly. */
	g.mine = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(g.mine != MAP_FAILED);
	memset(g.mine, 0xee, 2 * 4096);
	CHECK_OK(iovm_mr_reg(g.dom, g.mine + 64, 4096, IOVM_ACCESS_LOCAL_WRITE, &g.mine_mr));
	g.mine_iova = a22_mr_iova(g.mine_mr);

	/* Both ends in other processes', pinned to on demand: exact (the baseline for the rest). */
	{
		struct iovm_cqe c = sdom_wq_run(&g.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = ri(A, 0, 5),
									 .dst = ri(Bo, 1, 77), .len = 12000, .tag = 1 });

		A22_EXPECT_MSG(c.status == IOVM_STATUS_SUCCESS && c.bytes_completed == 12000,
			       "COPY A pinned -> B on demand: %s, %u bytes", iovm_status_name(c.status),
			       c.bytes_completed);
		memcpy(mod(Bo, 1, 77), mod(A, 0, 5), 12000);
		verify(&g, ri(Bo, 1, 0), mod(Bo, 1, 0), R1_LEN, "COPY A -> B");
	}

	/* Records in a third process's registrations, in the source's and the destination's owners'. */
	{
		struct {
			unsigned ro, rr;
			const char *what;
		} at[] = {
			{ C, 0, "record in C's pinned registration" },
			{ C, 1, "record in C's on-demand registration" },
			{ C, 2, "record in C's read-only registration" },
			{ A, 0, "record in the source owner's registration" },
			{ Bo, 1, "record in the destination owner's registration" },
		};

		for (unsigned k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
			uint32_t soff = 100 + 333 * k, doff = 5000 + 17 * k, len = 4096 + 999 * k;
			/* A 32-byte aligned IOVA inside the registration (its IOVA keeps the offset within 2 MiB). */
			uint32_t roff = (uint32_t)(((ri(at[k].ro, at[k].rr, 0) + 4096 + 31) & ~UINT64_C(31)) -
						   ri(at[k].ro, at[k].rr, 0));

			rec_elsewhere(&g, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = ri(A, 0, soff),
							      .dst = ri(Bo, 1, doff), .len = len, .tag = 100 + k },
				      Bo, 1, doff, mod(A, 0, soff), at[k].ro, at[k].rr, roff, at[k].what);
		}
		/* A FILL of A's on-demand registration, its record in C's. */
		{
			static uint8_t fillb[3000];

			memset(fillb, 0x3c, sizeof(fillb));
			rec_elsewhere(&g, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = ri(A, 1, 1234), .len = 3000,
							      .pattern = UINT64_C(0x3c3c3c3c3c3c3c3c), .tag = 120 },
				      A, 1, 1234, fillb, C, 0, (uint32_t)(((ri(C, 0, 0) + 8191) & ~UINT64_C(31)) - ri(C, 0, 0)),
				      "FILL of A, its record in C's registration");
		}
	}

	/* A record in our own registration, and in our heap: written, and they say what the ring says. */
	{
		/* 96 bytes into the registration, which starts 64 bytes into a page: 32-byte aligned. */
		struct iovm_completion *own = (struct iovm_completion *)(g.mine + 64 + 96);
		uint64_t own_iova = g.mine_iova + 96;
		struct iovm_cqe c;

		CHECK((own_iova & 31) == 0);
		memset(own, 0, sizeof(*own));
		c = sdom_wq_run(&g.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_COMPLETION,
							 .src = ri(Bo, 1, 10), .dst = ri(A, 0, 7000), .len = 3001,
							 .completion = own_iova, .tag = 130 });
		A22_EXPECT_MSG(c.status == IOVM_STATUS_SUCCESS, "COPY B -> A, record ours: %s", iovm_status_name(c.status));
		A22_EXPECT_MSG(own->status == c.status && own->bytes_completed == c.bytes_completed,
			       "a record in this process's own registration: status %u, %u bytes; the ring %u, %u",
			       own->status, own->bytes_completed, c.status, c.bytes_completed);
		memcpy(mod(A, 0, 7000), mod(Bo, 1, 10), 3001);
		verify(&g, ri(A, 0, 6990), mod(A, 0, 6990), 3021, "COPY B -> A");
	}

	/* Overlapping COPYs inside one other process's registration, up and down, across its 4 KiB pieces. */
	{
		static const uint32_t shifts[] = { 1, 31, 4095, 4096, 4097 };

		for (unsigned k = 0; k < sizeof(shifts) / sizeof(shifts[0]); k++) {
			uint32_t d = shifts[k], len = 8000 - (k & 1) * 7;

			move_in(&g, A, 0, 3, 3 + d, len);       /* up, pinned */
			move_in(&g, A, 0, 3 + d, 3, len);       /* down */
			move_in(&g, Bo, 1, 1 + k, 1 + k + d, len); /* up, on demand */
			move_in(&g, Bo, 1, 1 + k + d, 1 + k, len); /* down */
		}
	}
	owners_check(&g);

	/* C dies: a record in its registration is not written anywhere, a fault is counted, and nothing hangs. */
	CHECK_OK(kill(g.own[C].pid, SIGKILL));
	CHECK_EQ(child_wait(&g.own[C]), -SIGKILL);
	g.alive[C] = false;
	for (unsigned r = 0; r < 2; r++)
		rec_elsewhere(&g, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = ri(A, 1, 50 + r), .dst = ri(Bo, 0, 9 + r),
						      .len = 5000, .tag = 140 + r },
			      Bo, 0, 9 + r, mod(A, 1, 50 + r), C, r,
			      (uint32_t)(((ri(C, r, 0) + 4096 + 31) & ~UINT64_C(31)) - ri(C, r, 0)),
			      r ? "record in dead C's on-demand registration" : "record in dead C's pinned registration");

	/* A batch listed in A's on-demand registration; children's records ours (written) and dead C's (not). */
	{
		struct iovm_desc b[3];
		struct iovm_completion *r0 = (struct iovm_completion *)(lp + LOCAL - 128);
		uint32_t list_off = (uint32_t)(((ri(A, 1, 0) + 2 * 4096 + 63) & ~UINT64_C(63)) - ri(A, 1, 0));
		uint64_t before = a22_faults(g.dom, g.q.q);
		struct iovm_cqe c;

		memset(b, 0, sizeof(b));
		memset(r0, 0, sizeof(*r0));
		b[0] = (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_COMPLETION, .src = ri(A, 0, 20),
					   .dst = ri(Bo, 1, 8000), .len = 4500, .completion = li + LOCAL - 128 };
		b[1] = (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_COMPLETION, .src = ri(Bo, 0, 30),
					   .dst = ri(A, 0, 9000), .len = 2000,
					   .completion = ((ri(C, 0, 0) + 4096 + 31) & ~UINT64_C(31)) };
		b[2] = (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = ri(Bo, 0, 3000), .len = 777,
					   .pattern = UINT64_C(0x9999999999999999) };
		/* The list into A's registration (COPY from our heap), outside what the children touch. */
		memcpy(lp, b, sizeof(b));
		CHECK(list_off + sizeof(b) <= R1_LEN && list_off >= 1234 + 3000);
		c = sdom_wq_run(&g.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = li, .dst = ri(A, 1, list_off),
							 .len = sizeof(b), .tag = 150 });
		CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
		memcpy(mod(A, 1, list_off), b, sizeof(b));
		c = sdom_wq_run(&g.q, (struct iovm_desc){ .op = IOVM_OP_BATCH, .src = ri(A, 1, list_off), .len = 3, .tag = 151 });
		A22_EXPECT_MSG(c.status == IOVM_STATUS_SUCCESS || c.status == IOVM_STATUS_BATCH_FAIL,
			       "BATCH listed in A's registration: %s (%u done)", iovm_status_name(c.status),
			       c.bytes_completed);
		A22_EXPECT_MSG(r0->status == IOVM_STATUS_SUCCESS && r0->bytes_completed == 4500,
			       "BATCH child 0: its record (ours) says %u, %u bytes", r0->status, r0->bytes_completed);
		A22_EXPECT_MSG(a22_faults(g.dom, g.q.q) > before, "BATCH child 1's record in dead C's: no fault counted");
		memcpy(mod(Bo, 1, 8000), mod(A, 0, 20), 4500);
		verify(&g, ri(Bo, 1, 8000), mod(Bo, 1, 8000), 4500, "BATCH child 0");
		/* Child 1's record faulted: its bytes moved all or in part; read them back and take them. */
		{
			uint8_t *into = lp + LOCAL / 2;
			struct iovm_cqe rc = sdom_wq_run(&g.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = ri(A, 0, 9000),
										   .dst = li + LOCAL / 2, .len = 2000, .tag = 152 });
			uint32_t k = 0;

			CHECK_EQ(rc.status, IOVM_STATUS_SUCCESS);
			while (k < 2000 && into[k] == *mod(Bo, 0, 30 + k))
				k++;
			for (uint32_t j = k; j < 2000; j++)
				if (into[j] != *mod(A, 0, 9000 + j)) {
					A22_EXPECT_MSG(0, "BATCH child 1: byte %u is neither the source's nor what it was", j);
					break;
				}
			if (k < 2000)
				printf("# BATCH child 1, record in a dead process's registration: %u of 2000 bytes moved\n", k);
			memcpy(mod(A, 0, 9000), into, 2000);
		}
		memset(mod(Bo, 0, 3000), 0x99, 777);
		verify(&g, ri(Bo, 0, 3000), mod(Bo, 0, 3000), 777, "BATCH child 2");
	}
	/* The device goes on: one more exact copy between the two survivors. */
	{
		struct iovm_cqe c = sdom_wq_run(&g.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = ri(Bo, 0, 1),
									 .dst = ri(A, 1, 5), .len = 4000, .tag = 160 });

		A22_EXPECT_EQ(c.status, IOVM_STATUS_SUCCESS);
		memcpy(mod(A, 1, 5), mod(Bo, 0, 1), 4000);
	}
	owners_check(&g);
	printf("# descriptors whose record was in another process's registration: the ring said success %u, page fault %u\n",
	       g.rec_ok, g.rec_fault);
	CHECK(g.rec_ok + g.rec_fault == 8);

	for (unsigned o = 0; o < NOWN; o++)
		if (g.alive[o]) {
			put64(g.own[o].wr, 2);
			A22_EXPECT_EQ(get64(g.own[o].rd), 0);
			child_ok(&g.own[o]);
		}
	CHECK_OK(iovm_mr_dereg(g.mine_mr));
	a22_oracle_clean(g.dom);
	sdom_wq_close(&g.q);
	sdom_buf_close(g.ctx, g.dom, &g.loc);
	CHECK_OK(iovm_domain_destroy(g.dom));
	{
		int r = iovm_share_check(g.ctx);

		A22_EXPECT_MSG(r == 0, "iovm_share_check: %d: %s", r, iovm_error_detail());
	}
	CHECK_OK(iovm_close(g.ctx));
	CHECK_OK(munmap(g.mine, 2 * 4096));
	CHECK_OK(munmap(B, sizeof(*B)));
}

int main(void)
{
	test_init();
	signal(SIGPIPE, SIG_IGN);
	a22_watchdog(90);
	RUN(records_and_both_ends_elsewhere);
	return a22_status();
}
