/* SPDX-License-Identifier: MIT */
/*
 * test_attack5_dev_unmap.c - attack: strict unmap on the device process.
 * Promise (iovm/mp.h): once iovm_rqueue_unmap() returns, no descriptor
 * reaches the pages. A thread of the client keeps the queue full of
 * writes to the mapping (FILLs, DUALCAST's second destination, batches of
 * FILLs, scatters) while another unmaps it at a random moment; right after
 * the unmap returns the client zeroes the pages, drains every completion,
 * and no byte may have changed. Seeded (IOVM_SEED), rounds by
 * IOVM_ROUNDS (default 150).
 */
#include <pthread.h>

#include "attack5_dev.h"

#define HEAP (UINT64_C(32) << 20)
#define LEN 65536

struct flood {
	struct a5_cl *c;
	_Atomic uint64_t target;   /* IOVA under attack */
	uint64_t own, list;        /* the thread's own mapped source, and a list page (batch, scatter) */
	_Atomic unsigned round, stop_round, drained_round;
	_Atomic int quit;
	_Atomic uint64_t ran, faulted;
};

static void *flooder(void *arg)
{
	struct flood *f = arg;
	unsigned seen = 0;
	uint64_t k = 0;

	while (!atomic_load(&f->quit)) {
		unsigned round = atomic_load(&f->round);
		unsigned inflight = 0;

		if (round == seen) {
			usleep(50);
			continue;
		}
		seen = round;
		uint64_t t = atomic_load(&f->target);

		while (atomic_load(&f->stop_round) != round) {
			struct iovm_cqe cqe[32];
			struct iovm_desc d = { .tag = ++k };
			int n, ret;

			switch (k % 4) {
			case 0:
				d.op = IOVM_OP_FILL, d.dst = t, d.len = LEN, d.pattern = 0xeeeeeeeeeeeeeeee;
				break;
			case 1:
				d.op = IOVM_OP_DUALCAST, d.src = f->own, d.dst = f->own + LEN, d.dst2 = t, d.len = 4096;
				break;
			case 2:
				d.op = IOVM_OP_BATCH, d.src = f->list, d.len = 16;
				break;
			default:
				d.op = IOVM_OP_SCATTER, d.src = f->own, d.dst = f->list + 2048, d.sg_count = 4,
				d.len = 4 * 4096;
				break;
			}
			ret = iovm_rqueue_submit(f->c->q, &d);
			CHECK_MSG(ret == 0 || ret == -EAGAIN, "submit: %d", ret);
			if (ret == 0)
				inflight++;
			n = iovm_rqueue_reap(f->c->q, cqe, 32);
			CHECK_MSG(n >= 0, "reap: %d", n);
			for (int i = 0; i < n; i++) {
				atomic_fetch_add(&f->ran, 1);
				if (cqe[i].status != IOVM_STATUS_SUCCESS)
					atomic_fetch_add(&f->faulted, 1);
			}
			inflight -= (unsigned)n;
		}
		/* Drain: every descriptor submitted completes (a hang is a failure). */
		uint64_t start = a5_now_ms();

		while (inflight) {
			struct iovm_cqe cqe[32];
			int n = iovm_rqueue_reap(f->c->q, cqe, 32);

			CHECK_MSG(n >= 0, "reap: %d", n);
			inflight -= (unsigned)n;
			CHECK_MSG(a5_now_ms() - start < 60000, "%u descriptors never completed", inflight);
			if (!n)
				usleep(20);
		}
		atomic_store(&f->drained_round, round);
	}
	return NULL;
}

TEST(no_write_after_unmap_returns)
{
	struct a5_srv srv;
	struct iovm_ctx *owner = a5_setup("unmap", HEAP, 4, &srv);
	struct a5_cl c = a5_client(64);
	struct flood f = { .c = &c };
	uint64_t seed = a4_seed();
	const char *env = getenv("IOVM_ROUNDS");
	unsigned rounds = env ? (unsigned)strtoul(env, NULL, 0) : 150, late = 0;
	uint8_t *own = iovm_dma_alloc(c.ctx, 2 * LEN, 4096, 0);
	uint8_t *list = iovm_dma_zalloc(c.ctx, 4096, 4096, 0);
	pthread_t th;

	CHECK(own && list);
	memset(own, 0x77, 2 * LEN);
	f.own = a5_map(&c, own, 2 * LEN, IOVM_MAP_READ | IOVM_MAP_WRITE).addr;
	f.list = a5_map(&c, list, 4096, IOVM_MAP_READ).addr;
	CHECK_EQ(pthread_create(&th, NULL, flooder, &f), 0);
	for (unsigned r = 1; r <= rounds; r++) {
		uint8_t *buf = iovm_dma_alloc(c.ctx, LEN, 4096, 0);
		iovm_iova_t io;

		CHECK(buf != NULL);
		memset(buf, 0, LEN);
		io = a5_map(&c, buf, LEN, IOVM_MAP_READ | IOVM_MAP_WRITE);
		/* The batch's children and the scatter's entries write the target too. */
		struct iovm_desc *b = (struct iovm_desc *)list;
		struct iovm_sge *sg = (struct iovm_sge *)(list + 2048);

		for (int i = 0; i < 16; i++)
			b[i] = (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io.addr + (uint64_t)i * 4096, .len = 4096,
						   .pattern = 0xdddddddddddddddd };
		for (int i = 0; i < 4; i++)
			sg[i] = (struct iovm_sge){ .iova = io.addr + (uint64_t)(3 - i) * 16384, .len = 4096 };
		atomic_store(&f.target, io.addr);
		atomic_store(&f.round, r);
		/* Let it run: a random amount of work, not a time. */
		uint64_t want = atomic_load(&f.ran) + a5_rand(&seed) % 200;

		WAIT_UNTIL(atomic_load(&f.ran) >= want);
		CHECK_OK(iovm_rqueue_unmap(c.q, io, LEN));
		memset(buf, 0, LEN);
		atomic_store(&f.stop_round, r);
		WAIT_UNTIL(atomic_load(&f.drained_round) == r);
		size_t bad = first_not(buf, LEN, 0);

		if (bad != LEN) {
			late++;
			EXPECT_MSG(0, "round %u: byte %zu is %#x after iovm_rqueue_unmap() returned: a descriptor wrote it",
				   r, bad, buf[bad]);
		}
		CHECK_OK(iovm_dma_free(c.ctx, buf));
	}
	atomic_store(&f.quit, 1);
	pthread_join(th, NULL);
	printf("# %u rounds, %llu descriptors (%llu not successful), %u rounds written after the unmap\n", rounds,
	       (unsigned long long)atomic_load(&f.ran), (unsigned long long)atomic_load(&f.faulted), late);
	CHECK(atomic_load(&f.faulted) > 0); /* the unmap did land under running descriptors */
	a5_client_close(&c);
	a5_server_end(&srv);
	a4_settled(owner, 1, 0, UINT64_MAX);
	CHECK_OK(iovm_close(owner));
}

int main(void)
{
	a4_init();
	RUN(no_write_after_unmap_returns);
	return attack_status();
}
