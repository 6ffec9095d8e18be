/* SPDX-License-Identifier: MIT */
/*
 * test_attack17_rcache.c - the registration cache (iovm/reg.h) reusing
 * the region structs of destroyed caches: caches created and destroyed
 * again and again, two at once on one domain, while threads replace the
 * cached memory (munmap+mmap, mmap MAP_FIXED, mremap onto it, a raw
 * munmap) with a new pattern. Each get, under the slot's lock (the
 * memory stable), is read by the device: it must bring the pattern the
 * memory holds now, never the replaced memory's, and never fault.
 */
#include <sys/syscall.h>

#include "attack/attack17.h"

#define NS 16
#define SLEN (8 * PG)

struct slot {
	pthread_mutex_t lock;
	uint8_t *p;
	uint8_t pat;
};

static struct slot slots[NS];
static struct rig r;
static struct iovm_rcache *caches[2];
static pthread_rwlock_t cache_lock[2] = { PTHREAD_RWLOCK_INITIALIZER, PTHREAD_RWLOCK_INITIALIZER };
static atomic_bool stop;
static atomic_uint replaced, gets, bad, faulted;
static char first_bad[256], first_fault[256];

static void replace(struct slot *s, unsigned how, uint8_t pat)
{
	uint8_t *q = MAP_FAILED;

	switch (how % 4) {
	case 0:
		CHECK_OK(munmap(s->p, SLEN));
		q = mmap(s->p, SLEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		break;
	case 1:
		q = mmap(s->p, SLEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		break;
	case 2: {
		uint8_t *n = app_map(SLEN);

		q = mremap(n, SLEN, SLEN, MREMAP_MAYMOVE | MREMAP_FIXED, s->p);
		break;
	}
	case 3:
		CHECK_OK((int)syscall(SYS_munmap, s->p, SLEN));
		q = mmap(s->p, SLEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		break;
	}
	if (q == MAP_FAILED || q != s->p) {
		if (q != MAP_FAILED)
			munmap(q, SLEN);
		q = app_map(SLEN); /* the address was taken: the slot moves */
	}
	s->p = q;
	memset(q, pat, SLEN);
	s->pat = pat;
}

static void *mutator(void *arg)
{
	uint64_t x = (uintptr_t)arg + 1;

	while (!atomic_load(&stop)) {
		struct slot *s = &slots[test_rand(&x) % NS];

		pthread_mutex_lock(&s->lock);
		replace(s, (unsigned)test_rand(&x), (uint8_t)(s->pat + 1 ? s->pat + 1 : 1));
		pthread_mutex_unlock(&s->lock);
		atomic_fetch_add(&replaced, 1);
		if (test_rand(&x) % 4 == 0)
			sched_yield();
	}
	return NULL;
}

static void *getter(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	uint64_t x = id * 77 + 5;
	struct a17q a;

	a17q_open(&r, &a, SLEN, IOVM_QUEUE_POLLED);
	while (!atomic_load(&stop)) {
		unsigned c = (unsigned)(test_rand(&x) % 2);
		struct slot *s = &slots[test_rand(&x) % NS];
		size_t off = (test_rand(&x) % 4) * PG, len = SLEN - off - (test_rand(&x) % 2) * PG;
		struct iovm_mr *mr;
		iovm_iova_t iova;
		uint8_t st;

		pthread_rwlock_rdlock(&cache_lock[c]);
		pthread_mutex_lock(&s->lock);
		CHECK_OK(iovm_rcache_get(caches[c], s->p + off, len, IOVM_ACCESS_LOCAL_WRITE, &mr));
		CHECK_OK(iovm_mr_iova(mr, s->p + off, len, &iova));
		memset(a.buf, 0, len);
		st = a17_copy(&a, iova.addr, a.buf_iova, (uint32_t)len);
		if (st == IOVM_STATUS_PAGE_FAULT) {
			/* An MR the get gave that does not reach the memory: not stale, but broken (known). */
			if (atomic_fetch_add(&faulted, 1) == 0)
				snprintf(first_fault, sizeof(first_fault),
					 "cache %u slot %ld +%zu len %zu: the device faults; query: %llu of %llu pages "
					 "valid",
					 c, (long)(s - slots), off, len, (unsigned long long)mr_info(mr).valid_pages,
					 (unsigned long long)mr_info(mr).pages);
		} else if ((st != IOVM_STATUS_SUCCESS || !a17_all(a.buf, s->pat, len)) &&
			   atomic_fetch_add(&bad, 1) == 0) {
			snprintf(first_bad, sizeof(first_bad),
				 "cache %u slot %ld +%zu len %zu: device status %u, first byte %#x, memory holds %#x", c,
				 (long)(s - slots), off, len, st, a.buf[0], s->pat);
		}
		CHECK_OK(iovm_rcache_put(caches[c], mr));
		pthread_mutex_unlock(&s->lock);
		pthread_rwlock_unlock(&cache_lock[c]);
		atomic_fetch_add(&gets, 1);
	}
	a17q_close(&r, &a);
	return NULL;
}

TEST(cycles_under_replacement)
{
	pthread_t mt[2], gt[3];
	unsigned cycles = a17_rounds(60);
	struct iovm_rcache_attr small = { .max_regions = 8 };

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	for (unsigned i = 0; i < NS; i++) {
		pthread_mutex_init(&slots[i].lock, NULL);
		slots[i].p = app_map(SLEN);
		slots[i].pat = 1;
		memset(slots[i].p, 1, SLEN);
	}
	CHECK_OK(iovm_rcache_create(r.dom, NULL, &caches[0]));
	CHECK_OK(iovm_rcache_create(r.dom, &small, &caches[1]));
	for (unsigned i = 0; i < 2; i++)
		CHECK_OK(-pthread_create(&mt[i], NULL, mutator, (void *)(uintptr_t)i));
	for (unsigned i = 0; i < 3; i++)
		CHECK_OK(-pthread_create(&gt[i], NULL, getter, (void *)(uintptr_t)i));
	for (unsigned c = 0; c < cycles; c++) {
		unsigned k = c % 2;

		usleep(2000 + (c % 4) * 1000);
		pthread_rwlock_wrlock(&cache_lock[k]);
		CHECK_OK(iovm_rcache_destroy(caches[k]));
		CHECK_OK(iovm_rcache_create(r.dom, k ? &small : NULL, &caches[k]));
		pthread_rwlock_unlock(&cache_lock[k]);
	}
	atomic_store(&stop, true);
	for (unsigned i = 0; i < 3; i++)
		pthread_join(gt[i], NULL);
	for (unsigned i = 0; i < 2; i++)
		pthread_join(mt[i], NULL);
	printf("# %u cycles, %u gets, %u replacements\n", cycles, atomic_load(&gets), atomic_load(&replaced));
	CHECK_MSG(atomic_load(&bad) == 0, "%u of %u gets brought what the memory does not hold; first: %s",
		  atomic_load(&bad), atomic_load(&gets), first_bad);
	CHECK(atomic_load(&gets) > 0 && atomic_load(&replaced) > 0);
	if (atomic_load(&faulted)) {
		const char *k = getenv("IOVM_ATTACK17_KNOWN");

		printf("# %u gets gave an MR the device faults on (fresh_reg_reached's bug?); first: %s\n",
		       atomic_load(&faulted), first_fault);
		CHECK_MSG(!k || strcmp(k, "1"), "%u gets gave an MR the device faults on; first: %s",
			  atomic_load(&faulted), first_fault);
	}
	for (unsigned k = 0; k < 2; k++)
		CHECK_OK(iovm_rcache_destroy(caches[k]));
	for (unsigned i = 0; i < NS; i++)
		app_unmap(slots[i].p, SLEN);
	rig_close(&r);
}

/*
 * On CPU 0 alone, a spinner beside: a cached region replaced (every way),
 * then at once a get of it. The get must wait for the batch (waking the
 * invalidator, which lingers or is parked) and never hit the old region:
 * the device reads the new pattern.
 */
TEST(one_cpu_get_after_replace)
{
	cpu_set_t old, one;
	pthread_t sp[1];
	struct a17q a;
	struct iovm_rcache *c;
	unsigned stale = 0, rounds = a17_rounds(200);
	char first[160] = "";

	CHECK_OK(sched_getaffinity(0, sizeof(old), &old));
	if (!CPU_ISSET(0, &old))
		SKIP_CASE("CPU 0 not in this process's cpuset");
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	CHECK_OK(sched_setaffinity(0, sizeof(one), &one));
	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	a17q_open(&r, &a, SLEN, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_rcache_create(r.dom, NULL, &c));
	a17_spin_start(sp, 1);
	slots[0].p = app_map(SLEN);
	slots[0].pat = 1;
	memset(slots[0].p, 1, SLEN);
	for (unsigned i = 0; i < rounds; i++) {
		struct slot *s = &slots[0];
		struct iovm_mr *mr;
		iovm_iova_t iova;
		uint8_t st;

		CHECK_OK(iovm_rcache_get(c, s->p, SLEN, IOVM_ACCESS_LOCAL_WRITE, &mr));
		CHECK_OK(iovm_rcache_put(c, mr));
		if (i % 5 == 4)
			usleep(1500); /* the invalidator parks */
		replace(s, i, (uint8_t)(s->pat + 1 ? s->pat + 1 : 1));
		CHECK_OK(iovm_rcache_get(c, s->p, SLEN, IOVM_ACCESS_LOCAL_WRITE, &mr));
		CHECK_OK(iovm_mr_iova(mr, s->p, SLEN, &iova));
		st = a17_copy(&a, iova.addr, a.buf_iova, SLEN);
		if ((st != IOVM_STATUS_SUCCESS || !a17_all(a.buf, s->pat, SLEN)) && !stale++)
			snprintf(first, sizeof(first), "round %u (way %u): device status %u, byte %#x, memory holds %#x", i,
				 i % 4, st, a.buf[0], s->pat);
		CHECK_OK(iovm_rcache_put(c, mr));
	}
	a17_spin_stop_all(sp, 1);
	CHECK_MSG(stale == 0, "%u of %u gets right after a replacement did not bring the memory; first: %s", stale,
		  rounds, first);
	CHECK_OK(iovm_rcache_destroy(c));
	app_unmap(slots[0].p, SLEN);
	a17q_close(&r, &a);
	rig_close(&r);
	CHECK_OK(sched_setaffinity(0, sizeof(old), &old));
}

int main(void)
{
	test_init();
	alarm(100);
	RUN_SELECTED(cycles_under_replacement);
	RUN_SELECTED(one_cpu_get_after_replace);
	return 0;
}
