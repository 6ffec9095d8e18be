/* SPDX-License-Identifier: MIT */
/*
 * test_attack5_dev_isolation.c - attack: a client of the device process
 * reaches another client's memory, or the device process's own. Promise
 * (iovm/mp.h): the device reaches a client's memory only through the
 * client's domain, which holds only what the client mapped; every
 * descriptor runs in the client's PASID whatever it says, a batch's
 * children too. The intruder aims at the victim's IOVAs, its PA, its
 * PASID, through every address a descriptor carries (src, dst, dst2 of
 * DUALCAST, the completion record, scatter/gather entries, a batch's list
 * and its children's records), with keys (the device process's own
 * registrations: their keys and VAs handed to the intruder), and by
 * spraying IOVAs around them. The victim's bytes must not change, and no
 * secret byte may come back to the intruder.
 */
#include "attack5_dev.h"

#define HEAP (UINT64_C(32) << 20)
#define VLEN 65536 /* the victim's mapped secret */
#define MLEN 65536 /* the intruder's own buffer */

struct target {
	uint64_t victim_iova, victim_pa, victim_va, victim_pasid, secret;
	uint64_t srv_va, srv_lkey, srv_rkey, srv_ilkey, srv_irkey;
};

static struct target g_t;
static uint64_t g_seed;

/* The intruder's memory: its own buffer, a list page, a record page, all mapped. */
struct intr {
	struct a5_cl c;
	uint8_t *mine, *list, *rec;
	uint64_t im, il, ir;
	unsigned attempts, leaks_read, landed;
};

static int holds_secret(const struct intr *x, uint64_t secret)
{
	const uint64_t *w = (const uint64_t *)x->mine;

	for (size_t i = 0; i < MLEN / 8; i++)
		if (w[i] == secret)
			return 1;
	/* The device process's secret is a byte pattern. */
	for (size_t i = 0; i + 64 <= MLEN; i += 64)
		if (all_bytes(x->mine + i, 64, A5_SECRET_BYTE))
			return 1;
	return 0;
}

/* Fill the intruder's own buffer with harmless bytes, so a leak shows. */
static void reset_mine(struct intr *x)
{
	memset(x->mine, 0x3c, MLEN);
}

static void after(struct intr *x, const char *what, uint64_t t, uint8_t st)
{
	x->attempts++;
	if (holds_secret(x, g_t.secret)) {
		x->leaks_read++;
		EXPECT_MSG(0, "%s at %#llx (status %u): a secret came back into the intruder's memory", what,
			   (unsigned long long)t, st);
		reset_mine(x);
	}
}

static void st_ok(uint8_t st, const char *what, uint64_t t)
{
	EXPECT_MSG(st == IOVM_STATUS_SUCCESS || st == IOVM_STATUS_PAGE_FAULT || st == IOVM_STATUS_INVALID ||
			   st == IOVM_STATUS_BATCH_FAIL || st == IOVM_STATUS_KEY,
		   "%s at %#llx: status %u", what, (unsigned long long)t, st);
}

/* Every way a descriptor names an address, aimed at @t in the intruder's PASID or the victim's. */
static void aim(struct intr *x, uint64_t t, uint32_t pasid)
{
	struct iovm_desc *b = (struct iovm_desc *)x->list;
	struct iovm_sge *sg = (struct iovm_sge *)x->list;
	uint8_t st;

	st = a5_run(x->c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .pasid = pasid, .dst = t, .len = 4096,
						.pattern = 0x1111111111111111 });
	st_ok(st, "FILL dst", t);
	after(x, "FILL dst", t, st);
	st = a5_run(x->c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .pasid = pasid, .src = t, .dst = x->im,
						.len = 4096 });
	st_ok(st, "COPY src", t);
	after(x, "COPY src", t, st);
	st = a5_run(x->c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .pasid = pasid, .src = x->im, .dst = t,
						.len = 4096 });
	st_ok(st, "COPY dst", t);
	after(x, "COPY dst", t, st);
	st = a5_run(x->c.q, (struct iovm_desc){ .op = IOVM_OP_DUALCAST, .pasid = pasid, .src = x->im,
						.dst = x->im + 8192, .dst2 = t, .len = 4096 });
	st_ok(st, "DUALCAST dst2", t);
	after(x, "DUALCAST dst2", t, st);
	/* A completion record at the target: the record is a write too. */
	st = a5_run(x->c.q, (struct iovm_desc){ .op = IOVM_OP_NOOP, .pasid = pasid, .flags = IOVM_DESC_COMPLETION,
						.completion = t + 64 });
	st_ok(st, "NOOP record", t);
	after(x, "NOOP record", t, st);
	/* Does the target hold the victim's secret? A compare answers in the intruder's record. */
	memset(x->rec, 0, 64);
	st = a5_run(x->c.q, (struct iovm_desc){ .op = IOVM_OP_COMPARE_PATTERN, .pasid = pasid,
						.flags = IOVM_DESC_COMPLETION, .completion = x->ir, .src = t,
						.len = 4096, .pattern = g_t.secret });
	st_ok(st, "COMPARE_PATTERN src", t);
	{
		struct iovm_completion *r = (struct iovm_completion *)x->rec;

		EXPECT_MSG(!(st == IOVM_STATUS_SUCCESS && r->result == 0),
			   "COMPARE_PATTERN at %#llx said equal to the victim's secret: the intruder read it",
			   (unsigned long long)t);
	}
	x->attempts++;
	/* Gather from the target into the intruder; scatter from the intruder onto it. */
	memset(x->list, 0, 4096);
	sg[0] = (struct iovm_sge){ .iova = x->im + 4096, .len = 64 };
	sg[1] = (struct iovm_sge){ .iova = t, .len = 4096 - 64 };
	st = a5_run(x->c.q, (struct iovm_desc){ .op = IOVM_OP_GATHER, .pasid = pasid, .src = x->il, .dst = x->im,
						.sg_count = 2, .len = 4096 });
	st_ok(st, "GATHER entry", t);
	after(x, "GATHER entry", t, st);
	st = a5_run(x->c.q, (struct iovm_desc){ .op = IOVM_OP_SCATTER, .pasid = pasid, .src = x->im, .dst = x->il,
						.sg_count = 2, .len = 4096 });
	st_ok(st, "SCATTER entry", t);
	after(x, "SCATTER entry", t, st);
	/* The gather's list itself at the target. */
	st = a5_run(x->c.q, (struct iovm_desc){ .op = IOVM_OP_GATHER, .pasid = pasid, .src = t, .dst = x->im,
						.sg_count = 4, .len = 256 });
	st_ok(st, "GATHER list", t);
	after(x, "GATHER list", t, st);
	/* A batch whose children name the victim's PASID, and write records at the target. */
	memset(x->list, 0, 4096);
	b[0] = (struct iovm_desc){ .op = IOVM_OP_FILL, .pasid = (uint32_t)g_t.victim_pasid, .dst = t, .len = 4096,
				   .pattern = 0x2222222222222222 };
	b[1] = (struct iovm_desc){ .op = IOVM_OP_COPY, .pasid = (uint32_t)g_t.victim_pasid, .src = t,
				   .dst = x->im + 16384, .len = 4096 };
	b[2] = (struct iovm_desc){ .op = IOVM_OP_NOOP, .pasid = (uint32_t)g_t.victim_pasid,
				   .flags = IOVM_DESC_COMPLETION, .completion = t + 128 };
	b[3] = (struct iovm_desc){ .op = IOVM_OP_DUALCAST, .pasid = (uint32_t)g_t.victim_pasid, .src = x->im,
				   .dst = x->im + 20480, .dst2 = t, .len = 4096 };
	st = a5_run(x->c.q, (struct iovm_desc){ .op = IOVM_OP_BATCH, .pasid = pasid, .src = x->il, .len = 4 });
	st_ok(st, "BATCH children", t);
	after(x, "BATCH children", t, st);
	/* A batch whose list is the target. */
	st = a5_run(x->c.q, (struct iovm_desc){ .op = IOVM_OP_BATCH, .pasid = pasid, .src = t & ~63ull, .len = 8 });
	st_ok(st, "BATCH list", t);
	after(x, "BATCH list", t, st);
}

/* Keyed descriptors: keys the device process holds, and guessed ones, over its VA and the victim's. */
static void keyed(struct intr *x, uint32_t key, uint64_t va)
{
	struct iovm_sge *sg = (struct iovm_sge *)x->list;
	uint8_t st;

	st = a5_run(x->c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_KEYED, .src = va,
						.src_key = key, .dst = x->im, .len = 4096 });
	st_ok(st, "keyed COPY src", va);
	EXPECT_MSG(st != IOVM_STATUS_SUCCESS || !holds_secret(x, g_t.secret),
		   "keyed COPY from %#llx with key %#x succeeded", (unsigned long long)va, key);
	after(x, "keyed COPY src", va, st);
	st = a5_run(x->c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .flags = IOVM_DESC_KEYED, .dst = va,
						.dst_key = key, .len = 4096, .pattern = 0x4444444444444444 });
	st_ok(st, "keyed FILL dst", va);
	after(x, "keyed FILL dst", va, st);
	memset(x->list, 0, 4096);
	sg[0] = (struct iovm_sge){ .iova = va, .len = 4096, .key = key };
	st = a5_run(x->c.q, (struct iovm_desc){ .op = IOVM_OP_GATHER, .flags = IOVM_DESC_KEYED, .src = x->il,
						.dst = x->im, .sg_count = 1, .len = 4096 });
	st_ok(st, "keyed GATHER entry", va);
	after(x, "keyed GATHER entry", va, st);
	st = a5_run(x->c.q, (struct iovm_desc){ .op = IOVM_OP_SCATTER, .flags = IOVM_DESC_KEYED, .src = x->im,
						.dst = x->il, .sg_count = 1, .len = 4096 });
	st_ok(st, "keyed SCATTER entry", va);
	after(x, "keyed SCATTER entry", va, st);
}

static void intruder(void)
{
	struct intr x = { 0 };
	uint64_t seed = g_seed;
	uint32_t own;

	x.c = a5_client(64);
	own = iovm_rqueue_pasid(x.c.q);
	EXPECT_MSG(own != g_t.victim_pasid, "two clients at PASID %u", own);
	x.mine = iovm_dma_alloc(x.c.ctx, MLEN, 4096, 0);
	x.list = iovm_dma_zalloc(x.c.ctx, 4096, 4096, 0);
	x.rec = iovm_dma_zalloc(x.c.ctx, 4096, 4096, 0);
	CHECK(x.mine && x.list && x.rec);
	reset_mine(&x);
	x.im = a5_map(&x.c, x.mine, MLEN, IOVM_MAP_READ | IOVM_MAP_WRITE).addr;
	x.il = a5_map(&x.c, x.list, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE).addr;
	x.ir = a5_map(&x.c, x.rec, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE).addr;

	/* Not vacuous: the victim's PASID on a descriptor moves the intruder's own bytes. */
	CHECK_EQ(a5_run(x.c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .pasid = (uint32_t)g_t.victim_pasid,
						   .dst = x.im, .len = 64, .pattern = 0x0101010101010101 }),
		 IOVM_STATUS_SUCCESS);
	CHECK(all_bytes(x.mine, 64, 1));
	reset_mine(&x);

	/* The obvious targets, each through both PASIDs. */
	uint64_t fixed[] = { g_t.victim_iova, g_t.victim_iova + 4096, g_t.victim_iova + VLEN - 4096,
			     g_t.victim_pa, g_t.victim_pa + 4096, g_t.victim_va, 0, 4096, 1u << 20,
			     UINT64_C(1) << 32, (UINT64_C(1) << 47) - 4096, (UINT64_C(1) << 48) - 4096 };
	for (unsigned i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		aim(&x, fixed[i], own);
		aim(&x, fixed[i], (uint32_t)g_t.victim_pasid);
		aim(&x, fixed[i], IOVM_PASID_MAX);
	}
	/* A spray around the victim's IOVA and PA, and random pages below 2^40. */
	for (int k = -64; k < 64 + VLEN / 4096; k++) {
		aim(&x, g_t.victim_iova + (uint64_t)(int64_t)k * 4096, own);
		aim(&x, g_t.victim_pa + (uint64_t)(int64_t)k * 4096, own);
	}
	for (int i = 0; i < 64; i++)
		aim(&x, (a5_rand(&seed) & ((UINT64_C(1) << 40) - 1)) & ~UINT64_C(4095), own);
	/* Keys: the device process's own, on its secret and on the victim's VA; and guessed ones. */
	uint32_t keys[] = { (uint32_t)g_t.srv_lkey, (uint32_t)g_t.srv_rkey, (uint32_t)g_t.srv_ilkey,
			    (uint32_t)g_t.srv_irkey };
	for (unsigned i = 0; i < 4; i++) {
		if (!keys[i])
			continue;
		keyed(&x, keys[i], g_t.srv_va);
		keyed(&x, keys[i], g_t.srv_va + 4096);
		keyed(&x, keys[i], g_t.victim_va);
	}
	for (uint32_t k = 1; k <= 64; k++) {
		keyed(&x, k, g_t.srv_va);
		keyed(&x, (uint32_t)a5_rand(&seed), g_t.srv_va);
	}
	printf("# intruder: %u attempts, %u read leaks\n", x.attempts, x.leaks_read);
	a5_client_close(&x.c);
}

TEST(intruder_cannot_reach_victim_or_device)
{
	struct a5_srv srv;
	struct iovm_ctx *owner = a5_setup("iso", HEAP, 2, &srv);
	struct a5_cl v;
	uint8_t *secret, *guard;
	iovm_pa_t pa;
	pid_t pid;
	int st;

	v = a5_client(64);
	g_seed = a4_seed();
	g_t.secret = a5_rand(&g_seed) | 0x8080808080808080ull;
	secret = iovm_dma_alloc(v.ctx, VLEN, 4096, 0);
	guard = iovm_dma_alloc(v.ctx, VLEN, 4096, 0); /* the victim's, never mapped */
	CHECK(secret && guard);
	for (size_t i = 0; i < VLEN / 8; i++) {
		((uint64_t *)secret)[i] = g_t.secret;
		((uint64_t *)guard)[i] = g_t.secret;
	}
	g_t.victim_iova = a5_map(&v, secret, VLEN, IOVM_MAP_READ | IOVM_MAP_WRITE).addr;
	CHECK_OK(iovm_dma_pa(v.ctx, secret, &pa));
	g_t.victim_pa = pa.addr;
	g_t.victim_va = (uint64_t)(uintptr_t)secret;
	g_t.victim_pasid = iovm_rqueue_pasid(v.q);
	put64(srv.wr, A5_SRV_SECRET);
	g_t.srv_va = get64(srv.rd);
	g_t.srv_lkey = get64(srv.rd);
	g_t.srv_rkey = get64(srv.rd);
	g_t.srv_ilkey = get64(srv.rd);
	g_t.srv_irkey = get64(srv.rd);
	if (!g_t.srv_ilkey)
		printf("# the device process has no implicit registration (no userfaultfd): its key not tried\n");

	pid = a4_fork();
	if (!pid) {
		intruder();
		a4_child_exit();
	}
	st = a4_wait_deadline(pid, 150);
	EXPECT_MSG(st == 0, "intruder ended with %d (1000: hung)", st);
	for (size_t i = 0; i < VLEN / 8; i++) {
		if (((uint64_t *)secret)[i] != g_t.secret) {
			EXPECT_MSG(0, "victim's mapped byte %zu changed: the intruder reached it", i * 8);
			break;
		}
	}
	for (size_t i = 0; i < VLEN / 8; i++) {
		if (((uint64_t *)guard)[i] != g_t.secret) {
			EXPECT_MSG(0, "victim's unmapped byte %zu changed", i * 8);
			break;
		}
	}
	/* The victim still works: its own copy lands. */
	memset(guard, 0, 4096);
	CHECK_OK(iovm_rqueue_unmap(v.q, (iovm_iova_t){ g_t.victim_iova }, VLEN));
	{
		uint64_t ig = a5_map(&v, guard, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE).addr;

		CHECK_OK(iovm_rqueue_map(v.q, secret, 4096, IOVM_MAP_READ, &(iovm_iova_t){ 0 }));
		CHECK_EQ(a5_run(v.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = ig, .len = 4096, .pattern = 9 }),
			 IOVM_STATUS_SUCCESS);
		CHECK_EQ(guard[0], 9);
	}
	a5_client_close(&v);
	a5_server_end(&srv);
	a4_settled(owner, 1, 0, UINT64_MAX);
	CHECK_OK(iovm_close(owner));
}

int main(void)
{
	a4_init();
	RUN(intruder_cannot_reach_victim_or_device);
	return attack_status();
}
