/* SPDX-License-Identifier: MIT */
/*
 * tlscache.c - the registry of owners and the slow paths of per-thread caches.
 */
#include "base/lock.h"
#include "base/tlscache.h"

/* Protects every owner's live link and caches list. */
static struct mutex tls_lock = MUTEX_INITIALIZER;
static struct list_node live_owners = LIST_HEAD_INIT(live_owners);
static _Atomic uint64_t next_owner_id = 1;

/* Needs tls_lock. */
static struct tls_owner *live_owner(uint64_t id)
{
	struct list_node *n;

	list_for_each(n, &live_owners) {
		struct tls_owner *o = list_entry(n, struct tls_owner, live);

		if (o->id == id)
			return o;
	}
	return NULL;
}

void tls_owner_register(struct tls_owner *o)
{
	o->id = atomic_fetch_add(&next_owner_id, 1);
	list_init(&o->caches);
	mutex_lock(&tls_lock);
	list_add(&live_owners, &o->live);
	mutex_unlock(&tls_lock);
}

void tls_owner_unregister(struct tls_owner *o)
{
	struct list_node *n, *t;

	mutex_lock(&tls_lock);
	list_del(&o->live);
	list_for_each_safe(n, t, &o->caches) {
		list_del(n);
		o->discard(list_entry(n, struct tls_cache, link));
	}
	mutex_unlock(&tls_lock);
}

void tls_owner_for_each(struct tls_owner *o, void (*fn)(struct tls_cache *c, void *arg), void *arg)
{
	struct list_node *n;

	mutex_lock(&tls_lock);
	list_for_each(n, &o->caches)
		fn(list_entry(n, struct tls_cache, link), arg);
	mutex_unlock(&tls_lock);
}

/* Needs tls_lock: give a slot's cache back if its owner still lives. */
static void slot_retire(uint64_t id, struct tls_cache *c)
{
	struct tls_owner *o = id ? live_owner(id) : NULL;

	if (o) {
		list_del(&c->link);
		o->retire(o, c);
	}
}

static void thread_exit(void *arg)
{
	struct tls_slots *slots = arg;

	mutex_lock(&tls_lock);
	for (unsigned i = 0; i < TLS_SLOTS; i++) {
		slot_retire(slots->s[i].id, slots->s[i].c);
		slots->s[i].id = 0;
		slots->s[i].c = NULL;
	}
	mutex_unlock(&tls_lock);
}

static void kind_ready(struct tls_kind *kind)
{
	if (atomic_load_explicit(&kind->ready, memory_order_acquire))
		return;
	mutex_lock(&tls_lock);
	if (!atomic_load_explicit(&kind->ready, memory_order_relaxed)) {
		pthread_key_create(&kind->key, thread_exit);
		atomic_store_explicit(&kind->ready, 1, memory_order_release);
	}
	mutex_unlock(&tls_lock);
}

struct tls_cache *tls_cache_get_slow(struct tls_kind *kind, struct tls_slots *slots,
				     struct tls_owner *o)
{
	uint64_t id = 0;
	struct tls_cache *c = NULL;
	unsigned i;

	for (i = 1; i < TLS_SLOTS; i++) {
		if (slots->s[i].id == o->id) {
			id = slots->s[i].id;
			c = slots->s[i].c;
			break;
		}
	}
	if (!c) {
		kind_ready(kind);
		c = o->create(o);
		if (!c)
			return NULL;
		c->owner = o;
		i = TLS_SLOTS - 1;
		mutex_lock(&tls_lock);
		/* The least recently used slot makes room. */
		slot_retire(slots->s[i].id, slots->s[i].c);
		list_add(&o->caches, &c->link);
		mutex_unlock(&tls_lock);
		pthread_setspecific(kind->key, slots);
		id = o->id;
	}
	/* Most recently used first. */
	for (; i > 0; i--)
		slots->s[i] = slots->s[i - 1];
	slots->s[0].id = id;
	slots->s[0].c = c;
	return c;
}
