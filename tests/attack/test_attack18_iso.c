/* SPDX-License-Identifier: MIT */
/*
 * test_attack18_iso.c - isolation between the clients of one device
 * process (iovm/mp.h: "the device reaches a client's memory only through
 * the client's domain ... Every descriptor runs in the client's PASID,
 * whatever the descriptor says"), attacked where it is easiest to get
 * wrong: clients forked from one process, so that their own memory and
 * their on-demand MR sit at the SAME virtual addresses in each, mapped on
 * the device at (most likely) the same IOVAs, their page requests and
 * descriptors interleaved on the same workers. Each client names its own
 * IOVAs, every other client's (heap scratch, records, own memory, MR) and
 * random ones, in reads and writes, batches whose children claim another
 * PASID: it must only ever read its own signature, and its memory must
 * only ever hold its own. One client is killed with kill -9 in the middle:
 * the others go on, the device process counts it torn down, and nothing
 * is left once all are gone.
 */
#include "attack/attack18.h"

#define NCL 4                 /* clients; the last is killed */
#define APG 16                /* own memory pages (rqueue_map) */
#define BPG 64                /* MR pages (on demand): 4 pieces */
#define SIG(id) ((UINT64_C(0xc1a0) + (id)) << 48)
#define SIGMASK (UINT64_C(0xffff) << 48)

static uint8_t *g_a, *g_b; /* the same addresses in every client (forked after they were chosen) */

enum { V_IA, V_IB, V_IH, V_IR, V_N };

static bool own_words(const uint8_t *p, size_t len, unsigned id)
{
	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		if ((w & SIGMASK) != SIG(id))
			return false;
	}
	return true;
}

static bool in_range(uint64_t a, uint64_t len, uint64_t base, uint64_t blen)
{
	return a < base + blen && base < a + len;
}

static void client_main(int rd, int wr, void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	struct a18_cl c;
	struct iovm_mr *mr;
	iovm_iova_t v;
	uint64_t mine[V_N], all[NCL][V_N], seed = 0x1111 * (id + 1);
	const uint64_t lens[V_N] = { APG * A18_PAGE, BPG * A18_PAGE, 1u << 20, 4096 };
	unsigned long steps = 0, own_ok = 0, foreign = 0, collided = 0;
	const unsigned long nsteps = a18_rounds(2500);
	void *got;

	/* The addresses first, before the client's own mappings (a sanitizer's too) can land there. */
	got = mmap(g_a, APG * A18_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	CHECK(got == g_a);
	got = mmap(g_b, BPG * A18_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	CHECK(got == g_b);
	a18_client(&c, "oracle=on,pin_budget=16M", 64, 1u << 20);
	for (size_t i = 0; i < APG * A18_PAGE; i += 8)
		*(uint64_t *)(g_a + i) = SIG(id) | i;
	for (size_t i = 0; i < BPG * A18_PAGE; i += 8)
		*(uint64_t *)(g_b + i) = SIG(id) | i;
	for (size_t i = 0; i < c.heap_len; i += 8)
		*(uint64_t *)(c.heap + i) = SIG(id) | i;
	CHECK_OK(iovm_rqueue_map(c.q, g_a, APG * A18_PAGE, A18_RW, &v));
	mine[V_IA] = v.addr;
	CHECK_OK(iovm_mr_reg(c.dom, g_b, BPG * A18_PAGE, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr));
	CHECK_OK(iovm_rqueue_map_mr(c.q, mr, A18_RW, &v));
	mine[V_IB] = v.addr;
	mine[V_IH] = c.ih;
	mine[V_IR] = c.ir;
	for (unsigned k = 0; k < V_N; k++)
		put64(wr, mine[k]);
	for (unsigned j = 0; j < NCL; j++)
		for (unsigned k = 0; k < V_N; k++)
			all[j][k] = get64(rd);
	for (unsigned j = 0; j < NCL; j++)
		for (unsigned k = 0; k < V_N; k++)
			if (j != id && all[j][k] == mine[k])
				collided++;
	/* Scratch for reads: the upper half of the heap, refilled before each. */
	while (steps < nsteps) {
		unsigned j = (unsigned)(a18_rng(&seed) % NCL), k = (unsigned)(a18_rng(&seed) % V_N);
		uint64_t len = 8 + (a18_rng(&seed) % 1024) * 8;
		uint64_t at = all[j][k] + ((a18_rng(&seed) % lens[k]) & ~UINT64_C(7));
		bool own = false, write = a18_rng(&seed) & 1;
		uint8_t *scratch = c.heap + (512u << 10);
		struct iovm_completion rec;

		if (k == V_IR)
			continue; /* records: not as a target */
		if (a18_rng(&seed) % 8 == 0)
			at = (a18_rng(&seed) & UINT64_C(0xffffffffff8)) | UINT64_C(0xff0000000000);
		/* Own: wholly in my memory, MR or the lower half of my heap; partly mine, or my scratch: skipped. */
		own = (at >= mine[V_IA] && at + len <= mine[V_IA] + lens[V_IA]) ||
		      (at >= mine[V_IB] && at + len <= mine[V_IB] + lens[V_IB]) ||
		      (at >= mine[V_IH] && at + len <= mine[V_IH] + (512u << 10));
		if (!own) {
			bool touches = false;

			for (unsigned m = 0; m < V_N; m++)
				touches |= in_range(at, len, mine[m], lens[m]);
			if (touches)
				continue;
		}
		if (write) {
			struct iovm_desc d = { .op = IOVM_OP_FILL, .dst = at, .len = (uint32_t)len,
					       .pattern = SIG(id) | (a18_rng(&seed) & 0xffffffff) };

			if (a18_rng(&seed) & 1) {
				/* In a batch whose child claims another client's PASID. */
				struct iovm_desc *list = (struct iovm_desc *)(c.heap + (1u << 20) - 4096);

				d.pasid = (uint32_t)(a18_rng(&seed) % 64);
				list[0] = d;
				rec = a18_go(&c, (struct iovm_desc){ .op = IOVM_OP_BATCH, .src = c.ih + (1u << 20) - 4096,
								     .len = 1 });
				if (own)
					CHECK_MSG(rec.status == IOVM_STATUS_SUCCESS, "client %u: own batch fill at %#llx: %s", id,
						  (unsigned long long)at, a18_st(rec.status));
				else
					CHECK_MSG(rec.status == IOVM_STATUS_BATCH_FAIL, "client %u: batch fill of foreign %#llx: %s",
						  id, (unsigned long long)at, a18_st(rec.status));
			} else {
				rec = a18_go(&c, d);
				if (own)
					CHECK_MSG(rec.status == IOVM_STATUS_SUCCESS, "client %u: own fill at %#llx: %s", id,
						  (unsigned long long)at, a18_st(rec.status));
				else
					CHECK_MSG(rec.status == IOVM_STATUS_PAGE_FAULT && rec.bytes_completed == 0,
						  "client %u: fill of %#llx (client %u's range %u): %s, %u bytes", id,
						  (unsigned long long)at, j, k, a18_st(rec.status), rec.bytes_completed);
			}
		} else {
			memset(scratch, 0xee, len);
			rec = a18_go(&c, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = at, .dst = c.ih + (512u << 10),
							     .len = (uint32_t)len, .pasid = (uint32_t)(a18_rng(&seed) % 64) });
			if (own) {
				CHECK_MSG(rec.status == IOVM_STATUS_SUCCESS, "client %u: own read at %#llx: %s", id,
					  (unsigned long long)at, a18_st(rec.status));
				CHECK_MSG(own_words(scratch, len, id), "client %u read another's signature at %#llx", id,
					  (unsigned long long)at);
			} else {
				CHECK_MSG(rec.status == IOVM_STATUS_PAGE_FAULT && rec.bytes_completed == 0,
					  "client %u: read of %#llx (client %u's range %u): %s, %u bytes", id,
					  (unsigned long long)at, j, k, a18_st(rec.status), rec.bytes_completed);
				for (uint64_t i = 0; i < len; i++)
					CHECK_MSG(scratch[i] == 0xee, "client %u: a faulted read wrote its destination", id);
			}
		}
		if (own)
			own_ok++;
		else
			foreign++;
		steps++;
		if (steps % 256 == 0) {
			CHECK_MSG(own_words(g_a, APG * A18_PAGE, id), "client %u: own memory holds another's signature", id);
			CHECK_MSG(own_words(g_b, BPG * A18_PAGE, id), "client %u: MR holds another's signature", id);
			CHECK_MSG(own_words(c.heap, 512u << 10, id), "client %u: heap holds another's signature", id);
		}
		if (steps == 300)
			put64(wr, 300); /* the victim may die from here on */
	}
	CHECK(own_words(g_a, APG * A18_PAGE, id) && own_words(g_b, BPG * A18_PAGE, id));
	CHECK(a18_reg(c.ctx).odp_faults >= 1);
	put64(wr, steps);
	put64(wr, own_ok);
	put64(wr, foreign);
	put64(wr, collided);
	CHECK_EQ(get64(rd), 1);
	CHECK_OK(iovm_rqueue_unmap_mr(c.q, mr));
	CHECK_OK(iovm_mr_dereg(mr));
	a18_client_close(&c);
}

static void run_iso(const char *tag, unsigned load_n)
{
	struct child srv, cl[NCL];
	struct iovm_ctx *owner = a18_setup(tag, &srv, 2);
	struct a18_load load = { 0 };
	uint64_t v[NCL][V_N];
	struct iovm_device_server_info info;
	unsigned long foreign = 0, collided = 0, descs = 0;

	g_a = a18_anon_rw(APG * A18_PAGE);
	g_b = a18_pages_64k(BPG);
	CHECK(munmap(g_a, APG * A18_PAGE) == 0);
	CHECK(munmap(g_b, BPG * A18_PAGE) == 0);
	for (unsigned i = 0; i < NCL; i++)
		cl[i] = child_start(client_main, (void *)(uintptr_t)i);
	for (unsigned i = 0; i < NCL; i++)
		for (unsigned k = 0; k < V_N; k++)
			v[i][k] = get64(cl[i].rd);
	if (load_n)
		a18_load_start(&load, load_n);
	for (unsigned i = 0; i < NCL; i++)
		for (unsigned j = 0; j < NCL; j++)
			for (unsigned k = 0; k < V_N; k++)
				put64(cl[i].wr, v[j][k]);
	for (unsigned i = 0; i < NCL; i++)
		CHECK_EQ(get64(cl[i].rd), 300);
	child_kill(&cl[NCL - 1]);
	for (unsigned i = 0; i + 1 < NCL; i++) {
		unsigned long steps = get64(cl[i].rd), own = get64(cl[i].rd), fo = get64(cl[i].rd);

		collided += get64(cl[i].rd);
		foreign += fo;
		descs += steps;
		/* A twenty-fifth of the steps each way, at least (100 of 2500; fewer under the sanitizers). */
		CHECK(own >= a18_rounds(2500) / 25 && fo >= a18_rounds(2500) / 25);
	}
	if (load_n)
		a18_load_stop(&load);
	info = a18_srv_info(&srv);
	printf("# %s: %lu descriptors by the survivors, %lu on others' IOVAs, %lu IOVAs equal to another client's; "
	       "server: %llu descriptors, %llu torn down, %u clients\n",
	       tag, descs, foreign, collided, (unsigned long long)info.descriptors, (unsigned long long)info.torn_down,
	       info.clients);
	CHECK(info.descriptors >= descs);
	CHECK(info.torn_down >= 1);
	CHECK(collided >= 1); /* the interesting case happened: IOVAs that coincide */
	for (unsigned i = 0; i + 1 < NCL; i++) {
		put64(cl[i].wr, 1);
		child_ok(&cl[i]);
	}
	WAIT_UNTIL(a18_srv_info(&srv).clients == 0);
	a18_stop_server(&srv);
	CHECK_OK(iovm_share_check(owner));
	CHECK_OK(iovm_close(owner));
}

TEST(same_addresses)
{
	run_iso("a18iso", 0);
}

TEST(same_addresses_loaded)
{
	run_iso("a18isol", 2);
}

int main(void)
{
	test_init();
	A18_RUN(same_addresses);
	A18_RUN(same_addresses_loaded);
	return 0;
}
