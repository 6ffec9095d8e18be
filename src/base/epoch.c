/* SPDX-License-Identifier: MIT */
/*
 * epoch.c - registering readers and waiting for grace periods.
 */
#include <sched.h>

#include "base/epoch.h"
#include "base/lock.h"

void epoch_init(struct epoch *e)
{
	atomic_init(&e->now, 1);
	mutex_init(&e->lock);
	list_init(&e->readers);
	e->syncs = 0;
}

void epoch_destroy(struct epoch *e)
{
	mutex_destroy(&e->lock);
}

void epoch_reader_add(struct epoch *e, struct epoch_reader *r)
{
	atomic_init(&r->in, 0);
	mutex_lock(&e->lock);
	list_add_tail(&e->readers, &r->link);
	mutex_unlock(&e->lock);
}

void epoch_reader_del(struct epoch *e, struct epoch_reader *r)
{
	mutex_lock(&e->lock);
	list_del(&r->link);
	mutex_unlock(&e->lock);
}

void epoch_synchronize(struct epoch *e)
{
	struct list_node *n;
	uint64_t target;

	/* The bump orders every removal before it ahead of the scan below. */
	target = atomic_fetch_add_explicit(&e->now, 1, memory_order_seq_cst) + 1;
	mutex_lock(&e->lock);
	list_for_each(n, &e->readers) {
		struct epoch_reader *r = list_entry(n, struct epoch_reader, link);
		unsigned spins = 0;
		uint64_t in;

		while ((in = atomic_load_explicit(&r->in, memory_order_seq_cst)) && in < target) {
			if (++spins > 64)
				sched_yield();
		}
	}
	e->syncs++;
	mutex_unlock(&e->lock);
}
