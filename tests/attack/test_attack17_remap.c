/* SPDX-License-Identifier: MIT */
/*
 * test_attack17_remap.c - issue 20's hooked munmap() with a lazily woken
 * invalidator: memory registered, taken away (munmap, mmap MAP_FIXED over
 * it, mremap onto it, MADV_DONTNEED_LOCKED) and mapped anew at once at
 * the same address, then a device copy from and to the old IOVA with no
 * lookup in between. Promise (iovm/reg.h): from the moment the call
 * returns, no device access through the old registration lands anywhere:
 * the copy faults, reads nothing of the new memory, writes nothing in it.
 * Tight loops, a worker-run queue, several threads with every CPU busy,
 * and everything on CPU 0 with a spinner beside it.
 */
#include <malloc.h>
#include <sys/syscall.h>

#include "attack/attack17.h"

#define NP 4

enum how { BY_MUNMAP, BY_FIXED, BY_MREMAP, BY_DONTNEED, BY_SYSCALL, HOW_N };
static const char *how_name[] = { "munmap", "mmap MAP_FIXED", "mremap", "MADV_DONTNEED_LOCKED", "syscall munmap" };

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif

static atomic_bool no_dontneed_locked;
static atomic_uint fresh_unreached;

static bool known(void)
{
	const char *k = getenv("IOVM_ATTACK17_KNOWN");

	return k && !strcmp(k, "1");
}

/*
 * One round on @a: register, take away by @how, map anew with 0xa5 (when
 * the address is still free), and let the device at the old IOVA.
 */
static void one_round(struct rig *r, struct a17q *a, enum how how, unsigned round)
{
	size_t len = NP * PG;
	uint8_t *p = app_map(len), *q = MAP_FAILED;
	struct iovm_mr *mr;
	uint64_t iova;
	uint8_t st;

	memset(p, 0x11, len);
	CHECK_OK(iovm_mr_reg(r->dom, p, len, IOVM_ACCESS_LOCAL_WRITE, &mr));
	iova = mr_iova(mr, p);
	if (round % 3 == 0) {
		/* fresh_reg_reached's bug: another thread's late event may have invalidated it. */
		st = a17_copy(a, iova, a->buf_iova, PG);
		if (st != IOVM_STATUS_SUCCESS) {
			atomic_fetch_add(&fresh_unreached, 1);
			CHECK_MSG(!known(), "%s round %u: fresh registration not reached: %u", how_name[how], round, st);
		} else {
			CHECK(a17_all(a->buf, 0x11, PG));
		}
	}
	switch (how) {
	case BY_MUNMAP:
	case BY_SYSCALL:
		if (how == BY_MUNMAP)
			CHECK_OK(munmap(p, len));
		else
			CHECK_OK((int)syscall(SYS_munmap, p, len));
		q = mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (q != MAP_FAILED && q != p) {
			munmap(q, len);
			q = MAP_FAILED;
		}
		break;
	case BY_FIXED:
		q = mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		CHECK(q == p);
		break;
	case BY_MREMAP: {
		uint8_t *s = app_map(len);

		memset(s, 0x33, len);
		q = mremap(s, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, p);
		CHECK(q == p);
		break;
	}
	case BY_DONTNEED:
		if (madvise(p, len, MADV_DONTNEED_LOCKED)) {
			atomic_store(&no_dontneed_locked, true);
			CHECK_OK(iovm_mr_dereg(mr));
			app_unmap(p, len);
			return;
		}
		q = p;
		break;
	default:
		CHECK(0);
	}
	if (round % 4 == 1) {
		/* Here the lookup goes first: it must wait for the batch (and wake the invalidator). */
		struct iovm_mr_info info = mr_info(mr);

		CHECK_MSG(info.valid_pages == 0, "%s round %u: query first calls %llu pages valid", how_name[how],
			  round, (unsigned long long)info.valid_pages);
	}
	if (q != MAP_FAILED)
		memset(q, 0xa5, len);
	memset(a->buf, 0x5a, PG);
	/* No lookup (but in rounds 1 mod 4): the device goes first. */
	st = a17_copy(a, iova + (round % NP) * PG, a->buf_iova, PG);
	CHECK_MSG(st == IOVM_STATUS_PAGE_FAULT, "%s round %u: device read of the old IOVA: status %u, not a fault",
		  how_name[how], round, st);
	CHECK_MSG(!a17_any(a->buf, 0xa5, PG), "%s round %u: the device read the new memory", how_name[how], round);
	memset(a->buf, 0x77, PG);
	st = a17_copy(a, a->buf_iova, iova + ((round + 1) % NP) * PG, PG);
	CHECK_MSG(st == IOVM_STATUS_PAGE_FAULT, "%s round %u: device write to the old IOVA: status %u, not a fault",
		  how_name[how], round, st);
	if (q != MAP_FAILED)
		CHECK_MSG(a17_all(q, 0xa5, len), "%s round %u: the device wrote in the new memory", how_name[how],
			  round);
	{
		struct iovm_mr_info info = mr_info(mr);

		CHECK_MSG(info.valid_pages == 0, "%s round %u: query calls %llu pages valid", how_name[how], round,
			  (unsigned long long)info.valid_pages);
	}
	CHECK_OK(iovm_mr_dereg(mr));
	if (q != MAP_FAILED)
		app_unmap(q, len);
}

static void loop(struct rig *r, struct a17q *a, unsigned rounds, unsigned seed)
{
	for (unsigned i = 0; i < rounds; i++) {
		enum how how = (enum how)((i + seed) % HOW_N);

		if (i % 7 == 3)
			usleep(1500); /* let the invalidator park: the hook's own wake */
		one_round(r, a, how, i);
	}
}

TEST(tight_polled)
{
	struct rig r;
	struct a17q a;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	a17q_open(&r, &a, PG, IOVM_QUEUE_POLLED);
	loop(&r, &a, a17_rounds(100), 0);
	a17q_close(&r, &a);
	rig_close(&r);
}

TEST(tight_worker)
{
	struct rig r;
	struct a17q a;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	a17q_open(&r, &a, PG, 0);
	loop(&r, &a, a17_rounds(70), 1);
	a17q_close(&r, &a);
	rig_close(&r);
}

struct thr {
	struct rig *r;
	struct a17q a;
	unsigned rounds, seed;
};

static void *thr_main(void *arg)
{
	struct thr *t = arg;

	loop(t->r, &t->a, t->rounds, t->seed);
	return NULL;
}

static void threads_run(unsigned nthr, unsigned rounds, bool worker)
{
	struct rig r;
	struct thr t[8];
	pthread_t th[8], sp[8];
	unsigned ns;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	for (unsigned i = 0; i < nthr; i++) {
		t[i].r = &r;
		t[i].rounds = rounds;
		t[i].seed = i;
		a17q_open(&r, &t[i].a, PG, worker && (i & 1) ? 0 : IOVM_QUEUE_POLLED);
	}
	ns = a17_spin_start(sp, (unsigned)sysconf(_SC_NPROCESSORS_ONLN) > 8 ? 8 : (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
	for (unsigned i = 0; i < nthr; i++)
		CHECK_OK(-pthread_create(&th[i], NULL, thr_main, &t[i]));
	for (unsigned i = 0; i < nthr; i++)
		pthread_join(th[i], NULL);
	a17_spin_stop_all(sp, ns);
	for (unsigned i = 0; i < nthr; i++)
		a17q_close(&r, &t[i].a);
	rig_close(&r);
}

TEST(threads_cpus_busy)
{
	threads_run(4, a17_rounds(40), true);
}

/*
 * A registration of memory fresh from mmap(NULL) is reached whole at once,
 * while other threads take memory away (each by @how, or all kinds) and
 * so free addresses the next mmap() hands out: "memory mapped again where
 * a call that returned took memory away registers whole: the events of
 * that call are dealt with first, and never invalidate the new
 * registration" (iovm/reg.h, iovm_mr_reg()).
 */
static atomic_uint fresh_bad; /* mmap(NULL) memory registered, not reached */
static char fresh_first[256];
static int fresh_how = -1;

static void *fresh_main(void *arg)
{
	struct thr *t = arg;
	struct rig *r = t->r;
	struct a17q *a = &t->a;

	for (unsigned i = 0; i < t->rounds; i++) {
		size_t len = NP * PG;
		uint8_t *p = app_map(len), *q;
		struct iovm_mr *mr;
		uint64_t iova;
		uint8_t st;
		enum how how = fresh_how >= 0 ? (enum how)fresh_how : (enum how)((i + t->seed) % HOW_N);

		memset(p, 0x11, len);
		CHECK_OK(iovm_mr_reg(r->dom, p, len, IOVM_ACCESS_LOCAL_WRITE, &mr));
		iova = mr_iova(mr, p);
		st = a17_copy(a, iova, a->buf_iova, PG);
		if (st != IOVM_STATUS_SUCCESS && atomic_fetch_add(&fresh_bad, 1) == 0)
			snprintf(fresh_first, sizeof(fresh_first),
				 "thread %u round %u: a registration of fresh memory (query: %llu of %u pages valid), "
				 "device read: status %u",
				 t->seed, i, (unsigned long long)mr_info(mr).valid_pages, NP, st);
		switch (how) {
		case BY_FIXED:
			q = mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			CHECK(q == p);
			break;
		case BY_SYSCALL:
			CHECK_OK((int)syscall(SYS_munmap, p, len));
			q = NULL;
			break;
		case BY_MREMAP: {
			uint8_t *s = app_map(len);

			q = mremap(s, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, p);
			CHECK(q == p);
			break;
		}
		default:
			CHECK_OK(munmap(p, len));
			q = NULL;
			break;
		}
		CHECK_OK(iovm_mr_dereg(mr));
		if (q)
			app_unmap(q, len);
	}
	return NULL;
}

/* Four threads, each registering fresh mmap(NULL) memory and taking it away by @how, round after round. */
static void fresh_run(enum how how)
{
	struct rig r;
	struct thr t[4];
	pthread_t th[4], sp[8];
	unsigned ns, nthr = getenv("A17_THREADS") ? (unsigned)atoi(getenv("A17_THREADS")) : 4;

	if (nthr < 1 || nthr > 4)
		nthr = 4;
	fresh_how = (int)how;
	atomic_store(&fresh_bad, 0);
	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	for (unsigned i = 0; i < nthr; i++) {
		t[i].r = &r;
		t[i].rounds = a17_rounds(600);
		t[i].seed = i;
		a17q_open(&r, &t[i].a, PG, IOVM_QUEUE_POLLED);
	}
	ns = a17_spin_start(sp, getenv("A17_NOSPIN") ? 0 : 2);
	for (unsigned i = 0; i < nthr; i++)
		CHECK_OK(-pthread_create(&th[i], NULL, fresh_main, &t[i]));
	for (unsigned i = 0; i < nthr; i++)
		pthread_join(th[i], NULL);
	a17_spin_stop_all(sp, ns);
	printf("# fresh_reg_reached, %s: %u of %u fresh registrations not reached\n", how_name[how],
	       atomic_load(&fresh_bad), nthr * t[0].rounds);
	CHECK_MSG(atomic_load(&fresh_bad) == 0, "%s: %u fresh registrations not reached; first: %s", how_name[how],
		  atomic_load(&fresh_bad), fresh_first);
	for (unsigned i = 0; i < nthr; i++)
		a17q_close(&r, &t[i].a);
	rig_close(&r);
}

/*
 * Memory taken away by each way, while other threads map fresh memory and
 * register it at once (often at the address just freed): no event of the
 * old memory reaches the new registration. A registration used to wait
 * for a count of batches, not for those begun before it: one queued out
 * of order (a hook's, beside the reader's longer one) let it by before
 * the reader's batch with the old memory's MAP_FIXED or mremap() event
 * was invalidated (6 and 15 of 2400 registrations died of it).
 */
TEST(fresh_reg_reached)
{
	const char *h = getenv("A17_HOW");

	if (h) {
		fresh_run((enum how)atoi(h));
		return;
	}
	for (unsigned how = BY_MUNMAP; how < BY_SYSCALL; how++)
		fresh_run((enum how)how);
	/*
	 * A raw munmap(2): the kernel frees the range, then queues the event
	 * and waits for it to be read. In between another thread can map and
	 * register memory there, and the event, read after, is taken for that
	 * memory's (a pinned registration dies of it). The event says nothing
	 * that tells the two apart.
	 */
	A17_KNOWN("a raw munmap(2)'s event, which the kernel queues after it freed the range, invalidates a "
		  "registration of memory mapped there meanwhile by another thread");
	fresh_run(BY_SYSCALL);
}

/*
 * glibc's free() of a block it mmapped (an internal munmap, not the PLT)
 * and malloc() of the same size at once, most often at the same address:
 * the device at the old IOVA faults, reaches nothing of the new block.
 */
static void *free_main(void *arg)
{
	struct thr *t = arg;
	size_t sz = 1u << 20, reg = sz - 2 * PG;
	unsigned same = 0;

	for (unsigned i = 0; i < t->rounds; i++) {
		uint8_t *b = malloc(sz), *pg, *nb;
		struct iovm_mr *mr;
		uint64_t iova;
		uint8_t st;

		CHECK(b != NULL);
		pg = (uint8_t *)(((uintptr_t)b + PG - 1) & ~(uintptr_t)(PG - 1));
		memset(b, 0x11, sz);
		CHECK_OK(iovm_mr_reg(t->r->dom, pg, reg, IOVM_ACCESS_LOCAL_WRITE, &mr));
		iova = mr_iova(mr, pg);
		free(b);
		nb = malloc(sz);
		CHECK(nb != NULL);
		memset(nb, 0xa5, sz);
		same += nb == b;
		memset(t->a.buf, 0x5a, PG);
		st = a17_copy(&t->a, iova + (i % 16) * PG, t->a.buf_iova, PG);
		CHECK_MSG(st == IOVM_STATUS_PAGE_FAULT, "round %u: device read after free(): status %u", i, st);
		CHECK_MSG(!a17_any(t->a.buf, 0xa5, PG), "round %u: the device read the new block", i);
		st = a17_copy(&t->a, t->a.buf_iova, iova + (i % 16) * PG, PG);
		CHECK_MSG(st == IOVM_STATUS_PAGE_FAULT, "round %u: device write after free(): status %u", i, st);
		CHECK_MSG(a17_all(nb, 0xa5, sz), "round %u: the device wrote in the new block", i);
		CHECK_OK(iovm_mr_dereg(mr));
		free(nb);
	}
	CHECK_MSG(same > 0, "malloc() never gave the freed address again: the test reached nothing");
	return NULL;
}

TEST(glibc_free_then_malloc)
{
	struct rig r;
	struct thr t[3];
	pthread_t th[3];

	if (TEST_OWN_MALLOC)
		SKIP_CASE("the sanitizer's malloc never unmaps on free()");
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	for (unsigned i = 0; i < 3; i++) {
		t[i].r = &r;
		t[i].rounds = a17_rounds(40);
		t[i].seed = i;
		a17q_open(&r, &t[i].a, PG, IOVM_QUEUE_POLLED);
	}
	free_main(&t[0]);
	for (unsigned i = 0; i < 3; i++)
		CHECK_OK(-pthread_create(&th[i], NULL, free_main, &t[i]));
	for (unsigned i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	for (unsigned i = 0; i < 3; i++)
		a17q_close(&r, &t[i].a);
	rig_close(&r);
}

/* Everything (the library's threads too: made after) on CPU 0, with a spinner there. */
TEST(one_cpu)
{
	cpu_set_t old, one;

	CHECK_OK(sched_getaffinity(0, sizeof(old), &old));
	if (!CPU_ISSET(0, &old))
		SKIP_CASE("CPU 0 not in this process's cpuset");
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	CHECK_OK(sched_setaffinity(0, sizeof(one), &one));
	threads_run(3, a17_rounds(25), true);
	CHECK_OK(sched_setaffinity(0, sizeof(old), &old));
}

int main(void)
{
	test_init();
	alarm(120);
	RUN_SELECTED(tight_polled);
	RUN_SELECTED(tight_worker);
	RUN_SELECTED(threads_cpus_busy);
	RUN_SELECTED(one_cpu);
	RUN_SELECTED(glibc_free_then_malloc);
	RUN_SELECTED(fresh_reg_reached);
	if (atomic_load(&fresh_unreached))
		printf("# %u fresh registrations not reached (fresh_reg_reached's bug)\n", atomic_load(&fresh_unreached));
	if (atomic_load(&no_dontneed_locked))
		printf("# MADV_DONTNEED_LOCKED refused here: those rounds did nothing\n");
	return 0;
}
