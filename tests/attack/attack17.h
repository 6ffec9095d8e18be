/* SPDX-License-Identifier: MIT */
/*
 * attack17.h - what the seventeenth adversarial round (test_attack17_*.c)
 * shares: a software engine with one queue per thread, memory of the
 * application's own to register, replace and check through the device.
 * Written from the public headers (iovm/reg.h, iovm/dev.h) alone.
 *
 * Tests that found a broken promise run only with IOVM_ATTACK17_KNOWN=1
 * (A17_KNOWN()); otherwise they print a skip line naming the bug.
 * A17_ROUNDS scales the loops for longer soaks.
 */
#ifndef IOVM_TESTS_ATTACK17_H
#define IOVM_TESTS_ATTACK17_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "reg/reg_util.h"

#define A17_KNOWN(bug)                                                                   \
	do {                                                                             \
		const char *_k = getenv("IOVM_ATTACK17_KNOWN");                          \
		if (!_k || strcmp(_k, "1"))                                              \
			SKIP_CASE("known bug (IOVM_ATTACK17_KNOWN=1 runs it): %s", bug); \
	} while (0)

static inline unsigned a17_rounds(unsigned base)
{
	const char *s = getenv("A17_ROUNDS");
	unsigned m = s ? (unsigned)atoi(s) : 1;

	return base * (m ? m : 1);
}

/* A queue of its own (one per thread), with a completion record and a bounce buffer in DMA memory. */
struct a17q {
	struct iovm_queue *q;
	struct iovm_completion *comp;
	uint64_t comp_iova;
	uint8_t *buf;
	uint64_t buf_iova;
	size_t buf_len;
};

static inline void a17q_open(struct rig *r, struct a17q *a, size_t buf_len, uint32_t qflags)
{
	struct iovm_queue_attr qa = { .depth = 64, .flags = qflags };

	CHECK_OK(iovm_queue_create(r->dev, &qa, &a->q));
	a->comp = iovm_dma_zalloc(r->ctx, 4096, 4096, 0);
	a->buf = iovm_dma_zalloc(r->ctx, buf_len, 4096, 0);
	CHECK(a->comp && a->buf);
	a->comp_iova = iova_of(r, a->comp);
	a->buf_iova = iova_of(r, a->buf);
	a->buf_len = buf_len;
}

static inline void a17q_close(struct rig *r, struct a17q *a)
{
	CHECK_OK(iovm_queue_destroy(a->q));
	iovm_dma_free(r->ctx, a->comp);
	iovm_dma_free(r->ctx, a->buf);
}

static inline uint8_t a17_run(struct a17q *a, struct iovm_desc d)
{
	struct iovm_cqe cqe;
	int n = 0;

	memset(a->comp, 0, sizeof(*a->comp));
	d.flags |= IOVM_DESC_COMPLETION;
	d.completion = a->comp_iova;
	CHECK_OK(iovm_queue_submit(a->q, &d));
	for (unsigned long spins = 0; n == 0; spins++) {
		if (iovm_queue_process(a->q, 1) == -EINVAL && spins % 1024 == 0)
			usleep(10);
		n = iovm_queue_reap(a->q, &cqe, 1);
		CHECK(n >= 0);
		CHECK_MSG(spins < 200000000ul, "descriptor hangs");
	}
	return cqe.status;
}

static inline uint8_t a17_copy(struct a17q *a, uint64_t src, uint64_t dst, uint32_t len)
{
	return a17_run(a, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = src, .dst = dst, .len = len });
}

static inline bool a17_all(const uint8_t *p, uint8_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

static inline bool a17_any(const uint8_t *p, uint8_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] == v)
			return true;
	return false;
}

/* Spinner threads: every CPU busy. */
static atomic_bool a17_spin_stop;

static inline void *a17_spinner(void *arg)
{
	volatile unsigned long x = 0;

	(void)arg;
	while (!atomic_load_explicit(&a17_spin_stop, memory_order_relaxed))
		x++;
	return NULL;
}

static inline unsigned a17_spin_start(pthread_t *t, unsigned n)
{
	atomic_store(&a17_spin_stop, false);
	for (unsigned i = 0; i < n; i++)
		CHECK_OK(-pthread_create(&t[i], NULL, a17_spinner, NULL));
	return n;
}

static inline void a17_spin_stop_all(pthread_t *t, unsigned n)
{
	atomic_store(&a17_spin_stop, true);
	for (unsigned i = 0; i < n; i++)
		pthread_join(t[i], NULL);
}

/*
 * [p, p+len) was registered at @iova and has just been taken away (the
 * call returned): map it anew with 0xa5 if the address is free, and let
 * the device at the old IOVA: both ways must fault, touching nothing.
 * What it says went wrong, or NULL; the new memory is unmapped.
 */
static inline const char *a17_after_gone(struct a17q *a, uint8_t *p, size_t len, uint64_t iova)
{
	uint8_t *q = mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	const char *bad = NULL;

	if (q != MAP_FAILED && q != p) {
		munmap(q, len);
		q = MAP_FAILED;
	}
	if (q != MAP_FAILED)
		memset(q, 0xa5, len);
	memset(a->buf, 0x5a, PG);
	if (a17_copy(a, iova, a->buf_iova, PG) != IOVM_STATUS_PAGE_FAULT)
		bad = "a device read of the old IOVA did not fault";
	else if (a17_any(a->buf, 0xa5, PG))
		bad = "a device read of the old IOVA brought the new memory's bytes";
	else if (a17_copy(a, a->buf_iova, iova + len - PG, PG) != IOVM_STATUS_PAGE_FAULT)
		bad = "a device write to the old IOVA did not fault";
	else if (q != MAP_FAILED && !a17_all(q, 0xa5, len))
		bad = "the device wrote in the new memory";
	if (q != MAP_FAILED)
		munmap(q, len);
	return bad;
}

#endif /* IOVM_TESTS_ATTACK17_H */
