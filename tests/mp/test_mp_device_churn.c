/* SPDX-License-Identifier: MIT */
/*
 * test_mp_device_churn.c - clients of a device process that come and go,
 * as `iovm bench mp`'s do: each generation starts a few clients, each
 * allocates its buffers from the shared heap (of sizes that differ from
 * one generation to the next), maps them on its queue and keeps the queue
 * full of small copies, then closes. A client's PASID, IOVAs and heap
 * blocks are those an earlier client had: every copy that completes must
 * have moved the bytes of this client's source into this client's
 * destination, never into memory an earlier client had there. Beside
 * them, a client copying its own (non-heap) memory, as the bench's row
 * of a client's own memory runs one.
 *
 * (`iovm bench mp` once found a destination that did not hold its
 * source's bytes after every copy had succeeded, on a loaded machine.)
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "mp_device.h"

#define GENERATIONS 24u
#define MAX_CLIENTS 4u
#define COPY 64u
#define DEPTH 64u
#define COPIES 3000u

/* Keeps @q full of COPY-byte copies from @src to @dst (same offsets) until @n complete; checks each status. */
static void stream(struct iovm_rqueue *q, uint64_t src, uint64_t dst, uint32_t span, unsigned n)
{
	unsigned submitted = 0, done = 0, slots = span / COPY;

	while (done < n) {
		struct iovm_cqe cqe[DEPTH];
		int got;

		while (submitted < n && submitted - done < DEPTH) {
			uint64_t off = (uint64_t)(submitted % slots) * COPY;
			int ret = iovm_rqueue_submit(q, &(struct iovm_desc){ .op = IOVM_OP_COPY, .src = src + off,
									   .dst = dst + off, .len = COPY,
									   .tag = submitted });

			if (ret == -EAGAIN)
				break;
			CHECK_OK(ret);
			submitted++;
		}
		got = iovm_rqueue_reap(q, cqe, DEPTH);
		CHECK_MSG(got >= 0, "reap: %d", got);
		for (int i = 0; i < got; i++)
			CHECK_MSG(cqe[i].status == IOVM_STATUS_SUCCESS, "copy %llu: status %u",
				  (unsigned long long)cqe[i].tag, cqe[i].status);
		done += (unsigned)got;
		if (!got)
			sched_yield();
	}
}

/* Which slots of @dst do not hold @src's bytes: 0 when all do. */
static unsigned wrong_slots(const uint8_t *src, const uint8_t *dst, uint32_t span, unsigned *first, unsigned *zero)
{
	unsigned bad = 0;

	*zero = 0;
	for (uint32_t k = 0; k < span / COPY; k++) {
		const uint8_t *d = dst + (size_t)k * COPY;
		bool z = true;

		if (!memcmp(src + (size_t)k * COPY, d, COPY))
			continue;
		if (!bad++)
			*first = k;
		for (unsigned b = 0; b < COPY && z; b++)
			z = !d[b];
		*zero += z;
	}
	return bad;
}

/* arg: generation << 8 | client << 1 | own. Says the copies it verified. */
static void churn_client(int rd, int wr, void *arg)
{
	uintptr_t a = (uintptr_t)arg;
	unsigned gen = (unsigned)(a >> 8), id = (unsigned)(a >> 1) & 0x7f;
	bool own = a & 1;
	/* Sizes that move from one generation to the next: blocks and IOVAs land elsewhere each time. */
	uint32_t span = 4096u * (1 + (gen * 7 + id * 3) % 9);
	struct cl c = client_open();
	uint8_t *src, *dst;
	iovm_iova_t is, id_;
	unsigned first = 0, zero = 0, bad;

	(void)rd;
	if (own) {
		src = own_pages(span / 4096);
		dst = own_pages(span / 4096);
	} else {
		src = iovm_dma_alloc(c.ctx, span, 4096, 0);
		dst = iovm_dma_zalloc(c.ctx, span, 4096, 0);
	}
	CHECK(src && dst);
	for (uint32_t i = 0; i < span; i++)
		src[i] = (uint8_t)(i * 7 + gen * 31 + id * 5 + 1) | 1; /* never 0: a lost copy leaves zeroes */
	CHECK_OK(iovm_rqueue_map(c.q, src, span, IOVM_MAP_READ, &is));
	CHECK_OK(iovm_rqueue_map(c.q, dst, span, IOVM_MAP_READ | IOVM_MAP_WRITE, &id_));
	stream(c.q, is.addr, id_.addr, span, COPIES);
	bad = wrong_slots(src, dst, span, &first, &zero);
	CHECK_MSG(bad == 0,
		   "generation %u client %u (%s memory, %u B at IOVA %#llx, PASID %u): %u of %u slots wrong, %u all "
		   "zero, first %u",
		   gen, id, own ? "own" : "heap", span, (unsigned long long)id_.addr, iovm_rqueue_pasid(c.q), bad,
		   span / COPY, zero, first);
	put64(wr, COPIES);
	client_close(&c);
}

/*
 * Generations of 1 to MAX_CLIENTS clients on heap memory, with a client
 * on its own memory in every other one; every copy each verified.
 */
TEST(clients_come_and_go)
{
	struct iovm_ctx *owner;
	struct child srv, c[MAX_CLIENTS + 1];
	uint64_t verified = 0;

	g_share = share_name("churn");
	g_dev = share_name("churn-dev");
	owner = share_ok(g_share, HEAP);
	srv = start_server();
	for (unsigned gen = 0; gen < GENERATIONS; gen++) {
		unsigned n = 1 + gen % MAX_CLIENTS, k = 0;

		for (unsigned i = 0; i < n; i++)
			c[k++] = child_start(churn_client, (void *)(uintptr_t)(gen << 8 | i << 1));
		if (gen & 1)
			c[k++] = child_start(churn_client, (void *)(uintptr_t)(gen << 8 | n << 1 | 1));
		for (unsigned i = 0; i < k; i++) {
			verified += get64(c[i].rd);
			child_ok(&c[i]);
		}
	}
	printf("# %llu copies verified over %u generations\n", (unsigned long long)verified, GENERATIONS);
	CHECK(verified > 0);
	stop_server(&srv);
	CHECK_EQ(share_info(owner).blocks, 0);
	CHECK_OK(iovm_share_check(owner));
	CHECK_OK(iovm_close(owner));
}

int main(void)
{
	test_init();
	RUN(clients_come_and_go);
	return 0;
}
