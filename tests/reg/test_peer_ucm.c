/* SPDX-License-Identifier: MIT */
/*
 * test_peer_ucm.c - the scenarios of UCX's memory-hook tests
 * (test/gtest/ucm/malloc_hook.cc: free, realloc, mmap, munmap, sbrk,
 * mremap, shmat/shmdt, madvise events seen; memory given back by malloc
 * trimming; fork), re-expressed for iovm's memory monitor. iovm has no
 * event callback for the application: what the monitor saw shows in
 * what it did, so each scenario registers memory (pinned, and through
 * the registration cache), makes the call, and checks right after the
 * call returns that the pages it took are dead for both MRs (query and
 * DMA), the others alive, and that the counters saw the event.
 */
#include <malloc.h>
#include <sys/ipc.h>
#include <sys/shm.h>

#include "reg/test_peer_util.h"

static struct env E;
static struct iovm_rcache *C;

/* One range registered both ways. */
struct both {
	struct iovm_mr *pinned, *cached;
	struct iovm_mr_info ip, ic;
};

static struct both reg_both(void *p, size_t len)
{
	struct both b;

	CHECK_OK(iovm_mr_reg(E.r.dom, p, len, ALL_RIGHTS, &b.pinned));
	CHECK_OK(iovm_rcache_get(C, p, len, ALL_RIGHTS, &b.cached));
	b.ip = mr_info(b.pinned);
	b.ic = mr_info(b.cached);
	return b;
}

static void unreg_both(struct both *b)
{
	CHECK_OK(iovm_mr_dereg(b->pinned));
	CHECK_OK(iovm_rcache_put(C, b->cached));
}

/* Right after the call: @dead pages of the MR are invalid, and nothing reaches them (if mapped, not its new memory). */
static void dead_now(struct iovm_mr *mr, const struct iovm_mr_info *before, uint8_t *va, size_t len, uint64_t dead,
		     bool mapped)
{
	struct iovm_mr_info in = mr_info(mr);

	CHECK_MSG(in.valid_pages == before->pages - dead,
		  "right after the call returned: %llu of %llu pages valid, %llu expected",
		  (unsigned long long)in.valid_pages, (unsigned long long)before->pages,
		  (unsigned long long)(before->pages - dead));
	if (mapped) {
		keys_reach_nothing(&E, before, va, (uint32_t)(len < 16384 ? len : 16384));
	} else {
		CHECK(env_read(&E, (uintptr_t)va, before->lkey, 4096).status != IOVM_STATUS_SUCCESS);
		CHECK(env_read(&E, before->iova.addr + (uintptr_t)(va - (uint8_t *)before->addr), 0, 4096).status !=
		      IOVM_STATUS_SUCCESS);
	}
}

static void dead_both(struct both *b, uint8_t *va, size_t len, uint64_t dead, bool mapped)
{
	dead_now(b->pinned, &b->ip, va, len, dead, mapped);
	dead_now(b->cached, &b->ic, va, len, dead, mapped);
}

/* The counters read from userfaultfd show the event (statistics may lag: up to a second). */
static void event_seen(const struct iovm_reg_stats *before, size_t offset, const char *what)
{
	for (unsigned i = 0; i < 1000; i++) {
		struct iovm_reg_stats now = rstats(&E.r);

		if (*(uint64_t *)((char *)&now + offset) > *(const uint64_t *)((const char *)before + offset)) {
			CHECK(1);
			return;
		}
		usleep(1000);
	}
	CHECK_MSG(false, "no %s event counted", what);
}

#define EVENT_SEEN(before, field) event_seen(&(before), offsetof(struct iovm_reg_stats, field), #field)

/* free() of a large block: glibc munmaps it. */
TEST(ucm_free)
{
	size_t len = 8u << 20;
	uint8_t *p;
	struct iovm_reg_stats st;
	struct both b;

	if (!TEST_GLIBC_MALLOC)
		SKIP_CASE("the sanitizer's free() keeps the memory mapped");
	p = malloc(len);
	CHECK(p != NULL);
	if (!glibc_mmapped(p)) {
		free(p);
		SKIP_CASE("glibc put the block on its heap, not in a mapping of its own");
	}
	memset(p, 1, len);
	b = reg_both(p + (1u << 20), 1u << 20);
	st = rstats(&E.r);
	free(p);
	dead_both(&b, addr_of(p, 1u << 20), 1u << 20, b.ip.pages, false);
	EVENT_SEEN(st, events_unmap);
	unreg_both(&b);
}

/*
 * realloc() of a large block: glibc mremaps it, often to a new address.
 * Only a block mapped on its own: one from the heap is copied, and the
 * old block stays mapped, its memory unchanged, its registrations whole.
 * glibc's mmap threshold is fixed at its default first (ucm_free's free()
 * of a mapped 8 MiB block raised it: the next one came from the heap).
 */
TEST(ucm_realloc)
{
	size_t len = 1u << 20;
	uint8_t *p, *q, *old;
	struct iovm_reg_stats st;
	struct both b;

	if (!TEST_GLIBC_MALLOC)
		SKIP_CASE("the sanitizer's realloc() copies");
	CHECK(mallopt(M_MMAP_THRESHOLD, 128 << 10) == 1);
	p = malloc(len);
	CHECK(p != NULL);
	if (!glibc_mmapped(p)) {
		free(p);
		SKIP_CASE("glibc put the block on its heap, not in a mapping of its own");
	}
	memset(p, 2, len);
	b = reg_both(p, len);
	st = rstats(&E.r);
	old = addr_of(p, 0);
	q = realloc(p, 4 * len);
	CHECK(q != NULL);
	if (q == old) {
		/* Grown in place: the same memory, still registered. */
		CHECK_EQ(mr_info(b.pinned).valid_pages, b.ip.pages);
		mr_reaches(&E, b.pinned, q, 4096);
	} else {
		dead_both(&b, old, len, b.ip.pages, false);
		EVENT_SEEN(st, events_remap);
	}
	unreg_both(&b);
	free(q);
}

TEST(ucm_mmap_fixed)
{
	uint8_t *p = app_map(64 * PG);
	struct iovm_reg_stats st;
	struct both b;

	memset(p, 3, 64 * PG);
	b = reg_both(p, 64 * PG);
	st = rstats(&E.r);
	CHECK(mmap(p + 16 * PG, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
	      p + 16 * PG);
	memset(p + 16 * PG, 4, 16 * PG);
	dead_both(&b, p + 16 * PG, 16 * PG, 16, true);
	mr_reaches(&E, b.pinned, p, 4096);
	mr_reaches(&E, b.cached, p + 40 * PG, 4096);
	EVENT_SEEN(st, events_unmap);
	unreg_both(&b);
	app_unmap(p, 64 * PG);
}

TEST(ucm_munmap)
{
	uint8_t *p = app_map(64 * PG);
	struct iovm_reg_stats st;
	struct both b;

	memset(p, 5, 64 * PG);
	b = reg_both(p, 64 * PG);
	st = rstats(&E.r);
	app_unmap(p + 8 * PG, 8 * PG);
	dead_both(&b, p + 8 * PG, 8 * PG, 8, false);
	mr_reaches(&E, b.cached, p + 16 * PG, 4096);
	EVENT_SEEN(st, events_unmap);
	unreg_both(&b);
	app_unmap(p, 64 * PG);
}

TEST(ucm_mremap)
{
	uint8_t *p = app_map(64 * PG), *dst = app_map(8 * PG);
	struct iovm_reg_stats st;
	struct both b;

	memset(p, 6, 64 * PG);
	b = reg_both(p, 64 * PG);
	st = rstats(&E.r);
	CHECK(mremap(p + 56 * PG, 8 * PG, 8 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, dst) == dst);
	dead_both(&b, p + 56 * PG, 8 * PG, 8, false);
	mr_reaches(&E, b.pinned, p, 4096);
	EVENT_SEEN(st, events_remap);
	unreg_both(&b);
	app_unmap(p, 56 * PG);
	app_unmap(dst, 8 * PG);
}

/*
 * sbrk: the program break moved up, the new memory registered, the break
 * moved back. glibc's heap is kept from moving the break meanwhile.
 */
TEST(ucm_sbrk)
{
	size_t len = 16 * PG;
	struct iovm_reg_stats st;
	uint8_t *p;
	struct both b;
	void *volatile big; /* volatile: the compiler may not drop a malloc() it sees freed unused */

	/* glibc's heap takes 64 MiB now, not while the test moves the break (which would cut it). */
	if (TEST_GLIBC_MALLOC) {
		CHECK(mallopt(M_TOP_PAD, 64 << 20) == 1);
		CHECK(mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1);
		big = malloc(16u << 20);
		CHECK(big != NULL);
		free(big);
		mallopt(M_MMAP_THRESHOLD, 128 << 10);
	}
	p = sbrk(0);
	if ((uintptr_t)p & (PG - 1))
		CHECK(sbrk((intptr_t)(PG - ((uintptr_t)p & (PG - 1)))) != (void *)-1);
	p = sbrk((intptr_t)len);
	CHECK(p != (void *)-1);
	memset(p, 7, len);
	b = reg_both(p, len);
	st = rstats(&E.r);
	CHECK(sbrk(-(intptr_t)len) != (void *)-1);
	dead_both(&b, p, len, b.ip.pages, false);
	EVENT_SEEN(st, events_unmap);
	unreg_both(&b);
}

/*
 * shmat: System V shared memory registers, reported unmonitored (shmdt
 * tells userfaultfd nothing), and the cache never keeps it.
 */
TEST(ucm_shmat)
{
	int id = shmget(IPC_PRIVATE, 2 * PG, IPC_CREAT | 0600);
	struct iovm_rcache_stats cs;
	struct iovm_mr *m1;
	uint32_t k1, k2;
	uint8_t *p;

	if (id < 0)
		SKIP_CASE("shmget: %s", strerror(errno));
	p = shmat(id, NULL, 0);
	shmctl(id, IPC_RMID, NULL);
	CHECK(p != (void *)-1);
	memset(p, 8, 2 * PG);
	CHECK_OK(iovm_mr_reg(E.r.dom, p, 2 * PG, RW, &m1));
	CHECK(!mr_info(m1).monitored);
	mr_reaches(&E, m1, p, 4096);
	cs = cstats(C);
	k1 = get_put(C, p, 2 * PG, RW);
	CHECK_EQ(cstats(C).uncached, cs.uncached + 1);
	k2 = get_put(C, p, 2 * PG, RW);
	CHECK_MSG(k2 != k1, "the cache kept a registration of System V shared memory");
	CHECK_OK(shmdt(p));
	/* The MR outlives its memory: it may be deregistered all the same. */
	CHECK_OK(iovm_mr_dereg(m1));
}

/* madvise: DONTNEED_LOCKED discards registered pages (dead); plain DONTNEED is refused on them. */
TEST(ucm_madvise)
{
	uint8_t *p = app_map(32 * PG);
	struct iovm_reg_stats st;
	struct both b;

	memset(p, 9, 32 * PG);
	b = reg_both(p, 32 * PG);
	CHECK(madvise(p, 4 * PG, MADV_DONTNEED) != 0);
	CHECK_EQ(p[0], 9);
	CHECK_EQ(mr_info(b.pinned).valid_pages, 32);
	st = rstats(&E.r);
	if (madvise(p + 4 * PG, 4 * PG, MADV_DONTNEED_LOCKED)) {
		unreg_both(&b);
		app_unmap(p, 32 * PG);
		SKIP_CASE("no MADV_DONTNEED_LOCKED (Linux before 5.18)");
	}
	memset(p + 4 * PG, 10, 4 * PG);
	dead_both(&b, p + 4 * PG, 4 * PG, 4, true);
	EVENT_SEEN(st, events_remove);
	unreg_both(&b);
	app_unmap(p, 32 * PG);
}

/*
 * malloc_trim(): a large heap block, cached, freed, and the heap trimmed:
 * what glibc gave back (the top, by a brk shrink) is dead for the cached
 * MR, and a new block at the same address is a new registration there.
 * (Registered pages are locked: glibc's MADV_DONTNEED of free heap pages
 * is refused on them, so only a block at the top of the heap can go back;
 * where something else sits above it, the same memory stays registered,
 * and the next get may find it.)
 */
TEST(ucm_malloc_trim)
{
	size_t len = 4u << 20;
	uint8_t *p, *q, *brk1, *old;
	struct iovm_rcache *warm;
	struct iovm_mr *mr;
	struct iovm_mr_info in;
	uint64_t gone = 0;

	if (!TEST_GLIBC_MALLOC)
		SKIP_CASE("the sanitizer's allocator has no heap to trim");
	printf("# a 4 MiB heap block, cached, freed, trimmed\n"); /* stdout's buffer goes below the block */
	mallopt(M_MMAP_THRESHOLD, 64 << 20);
	mallopt(M_TOP_PAD, 0);
	/*
	 * The library's own allocations for a get, made once in a cache of
	 * their own and freed: the next get finds them free below the block,
	 * and the block stays at the top of the heap, where trimming can give
	 * it back.
	 */
	p = app_map(PG);
	CHECK_OK(iovm_rcache_create(E.r.dom, NULL, &warm));
	get_put(warm, p, PG, RW);
	get_put(warm, p, PG, ALL_RIGHTS);
	CHECK_OK(iovm_rcache_destroy(warm));
	app_unmap(p, PG);
	p = malloc(len);
	CHECK(p != NULL);
	if (glibc_mmapped(p)) {
		free(p);
		mallopt(M_MMAP_THRESHOLD, 128 << 10);
		SKIP_CASE("glibc mapped the block");
	}
	memset(p, 11, len);
	CHECK_OK(iovm_rcache_get(C, p, len, RW, &mr));
	in = mr_info(mr);
	CHECK_OK(iovm_rcache_put(C, mr));
	old = addr_of(p, 0);
	free(p);
	malloc_trim(0);
	brk1 = sbrk(0);
	for (uintptr_t a = (uintptr_t)in.addr; a < (uintptr_t)in.addr + in.len; a += PG)
		gone += a >= (((uintptr_t)brk1 + PG - 1) & ~(uintptr_t)(PG - 1));
	q = malloc(len);
	CHECK(q != NULL);
	memset(q, 12, len);
	CHECK_OK(iovm_rcache_get(C, q, len, RW, &mr));
	if (gone && q == old)
		CHECK_MSG(mr_info(mr).lkey != in.lkey,
			  "after malloc_trim() gave %llu of its pages back, the block at the same address hit the old MR",
			  (unsigned long long)gone);
	mr_reaches(&E, mr, q + len - 4096, 4096);
	CHECK_OK(iovm_rcache_put(C, mr));
	free(q);
	mallopt(M_MMAP_THRESHOLD, 128 << 10);
	printf("# malloc_trim gave back %llu pages of the block\n", (unsigned long long)gone);
}

static uint8_t *inherited;

/* In the child: a context of its own works, on new memory and on what it inherited. */
static void child_own_context(void *arg)
{
	struct iovm_domain *dom;
	struct iovm_ctx *ctx;
	struct iovm_mr *mr;
	struct iovm_mr_info in;
	uint8_t *p;

	(void)arg;
	if (iovm_open(REG_OPTS, &ctx))
		_exit(2);
	if (iovm_domain_create(ctx, NULL, &dom))
		_exit(3);
	p = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || iovm_mr_reg(dom, p, 8 * PG, RW, &mr))
		_exit(4);
	munmap(p, 8 * PG);
	if (iovm_mr_query(mr, &in) || (in.monitored && in.valid_pages))
		_exit(5); /* monitored, yet not invalidated when munmap returned */
	if (iovm_mr_dereg(mr))
		_exit(6);
	if (iovm_mr_reg(dom, inherited, PG, RW, &mr) || iovm_mr_dereg(mr))
		_exit(7);
	if (iovm_domain_destroy(dom))
		_exit(8);
	iovm_close(ctx);
}

/* fork: the child must not use the parent's context, and may open its own; the parent's MRs stay whole. */
TEST(ucm_fork)
{
	struct both b;
	int ret;

	SKIP_FORK_UNDER_TSAN();

	inherited = app_map(4 * PG);
	memset(inherited, 13, 4 * PG);
	b = reg_both(inherited, 4 * PG);
	ret = in_child(child_own_context, NULL);
	CHECK_MSG(ret == 0, "the child %s %d (2 open, 3 domain, 4 register, 5 not invalidated, 6 dereg, "
		  "7 inherited memory, 8 destroy)", ret > 128 ? "died of signal" : "failed with", ret > 128 ? ret - 128 : ret);
	CHECK_EQ(mr_info(b.pinned).valid_pages, 4);
	mr_reaches(&E, b.cached, inherited, 4 * PG);
	unreg_both(&b);
	app_unmap(inherited, 4 * PG);
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;

	test_init();
	env_open(&E);
	CHECK_OK(iovm_rcache_create(E.r.dom, NULL, &C));
	RUN_ONLY(only, ucm_free);
	RUN_ONLY(only, ucm_realloc);
	RUN_ONLY(only, ucm_mmap_fixed);
	RUN_ONLY(only, ucm_munmap);
	RUN_ONLY(only, ucm_mremap);
	RUN_ONLY(only, ucm_sbrk);
	RUN_ONLY(only, ucm_shmat);
	RUN_ONLY(only, ucm_madvise);
	RUN_ONLY(only, ucm_malloc_trim);
	RUN_ONLY(only, ucm_fork);
	CHECK_OK(iovm_rcache_destroy(C));
	env_close(&E);
	return 0;
}
