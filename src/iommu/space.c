/* SPDX-License-Identifier: MIT */
/*
 * space.c - a context's IOMMU: its device-side epoch, its domains, and the
 * flusher thread that bounds how long a deferred invalidation waits.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include "base/clock.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/log.h"
#include "iommu/iommu_internal.h"

/* With nothing queued the flusher still wakes now and then, in case of a missed kick. */
#define FLUSHER_IDLE_NS (1000 * 1000 * 1000)

int iommu_create(struct iovm_ctx *ctx, struct epoch *epoch, bool oracle, struct iommu_space **out)
{
	struct iommu_space *is = fi_calloc(1, sizeof(*is));
	pthread_condattr_t ca;

	if (!is)
		return -ENOMEM;
	is->ctx = ctx;
	is->oracle = oracle;
	is->epoch = epoch;
	mutex_init(&is->lock);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&is->flusher_cond, &ca);
	pthread_condattr_destroy(&ca);
	list_init(&is->domains);
	*out = is;
	return 0;
}

/*
 * Flush what is due, and return whether a batch is still pending (with
 * *next lowered to its deadline). Needs the space lock.
 */
static bool flusher_pass(struct iommu_space *is, uint64_t now, uint64_t *next)
{
	bool pending = false;
	struct list_node *n;

	lock_assert_held(&is->lock);
	/* Flushing under the space lock: a domain cannot go meanwhile. */
	list_for_each(n, &is->domains) {
		struct iovm_domain *dom = list_entry(n, struct iovm_domain, link);
		uint64_t due;

		/* Only deferred domains have flush queues. */
		if (!(dom->flags & IOVM_DOMAIN_DEFERRED))
			continue;
		due = flushq_deadline(dom);

		if (due <= now) {
			flushq_flush(dom);
		} else if (due != UINT64_MAX) {
			pending = true;
			if (due < *next)
				*next = due;
		}
	}
	return pending;
}

/*
 * The flusher sleeps until the earliest deadline of a batch. While batches
 * keep coming it stays armed, and unmaps that start a batch do not wake it:
 * it finds their deadlines when it next looks. It disarms only after a look
 * that found nothing, and looks once more after disarming, so that a batch
 * started meanwhile is either seen here or sees it disarmed and wakes it.
 */
static void *flusher_main(void *arg)
{
	struct iommu_space *is = arg;

	atomic_store_explicit(&is->flusher_started, true, memory_order_release);
	mutex_lock(&is->lock);
	while (!is->flusher_stop) {
		uint64_t now = clock_now_ns(), next = now + FLUSHER_IDLE_NS;
		struct timespec ts;

		if (flusher_pass(is, now, &next)) {
			atomic_store_explicit(&is->flusher_armed, true, memory_order_seq_cst);
		} else if (atomic_load_explicit(&is->flusher_armed, memory_order_relaxed)) {
			atomic_store_explicit(&is->flusher_armed, false, memory_order_seq_cst);
			if (flusher_pass(is, now, &next))
				atomic_store_explicit(&is->flusher_armed, true, memory_order_seq_cst);
		}
		ts.tv_sec = (time_t)(next / 1000000000u);
		ts.tv_nsec = (long)(next % 1000000000u);
		cond_timedwait(&is->flusher_cond, &is->lock, &ts);
	}
	mutex_unlock(&is->lock);
	return NULL;
}

void flusher_kick(struct iommu_space *is)
{
	bool started = false;

	mutex_lock(&is->lock);
	if (!is->flusher_running && !is->flusher_stop) {
		if (fi_pthread_create(&is->flusher, NULL, flusher_main, is) == 0)
			is->flusher_running = started = true;
		else
			log_warn("cannot start the IOMMU flusher: deferred flushes wait for the batch");
	}
	pthread_cond_signal(&is->flusher_cond);
	mutex_unlock(&is->lock);
	/*
	 * Returns once the thread runs: a new thread sets itself up (its TLS,
	 * a sanitizer's records of it) with locks held, and a fork() right
	 * after the unmap that started it must not catch it half way.
	 */
	while (started && !atomic_load_explicit(&is->flusher_started, memory_order_acquire))
		sched_yield();
}

void iommu_destroy(struct iommu_space *is)
{
	struct list_node *n, *t;
	bool running;

	if (!is)
		return;
	mutex_lock(&is->lock);
	is->flusher_stop = true;
	running = is->flusher_running;
	pthread_cond_signal(&is->flusher_cond);
	mutex_unlock(&is->lock);
	if (running)
		pthread_join(is->flusher, NULL);
	/* Nested domains first: a stage 2 goes only once nothing sits over it. */
	for (int pass = 0; pass < 2; pass++) {
		list_for_each_safe(n, t, &is->domains) {
			struct iovm_domain *dom = list_entry(n, struct iovm_domain, link);

			if (pass == 0 && dom->type != IOVM_DOMAIN_NESTED)
				continue;
			/* Devices are gone by now (the context closes them first). */
			if (domain_destroy(dom))
				log_warn("a domain is still attached at close");
		}
	}
	pthread_cond_destroy(&is->flusher_cond);
	mutex_destroy(&is->lock);
	free(is);
}
