/* SPDX-License-Identifier: MIT */
/*
 * test_mp_parcels.c - the shared heap's memory comes as it is used and
 * goes once free (src/mp/parcels.c), and every process that follows the
 * heap keeps step:
 *  - a share's size is address space: nothing is committed until blocks
 *    are allocated, parcels are committed as blocks need them, and a free
 *    gives back what is free beyond MP_TRIM_KEEP parcels (the memfd's
 *    own count of pages says so, not only ours);
 *  - a process whose domain follows the heap maps a parcel before the
 *    allocation in another process that committed it returns (its device
 *    copies there at once, and that process looks up nothing first), and
 *    unmaps it before the memory goes (its device faults at the old IOVA,
 *    and reads nothing of memory committed there since);
 *  - a process killed at each crash point of an allocation and a free
 *    that commit and trim leaves a heap a survivor repairs, with no
 *    parcel left in a trim and every allocated block committed;
 *  - a stopped follower holds up a commit, not forever: killed, it is
 *    waited for no more.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "base/ctx.h"
#include "dev/dev_util.h"
#include "mp/mp_internal.h"
#include "mp_util.h"

#define HEAP (UINT64_C(64) << 20)
#define MB (UINT64_C(1) << 20)

static struct mp_space *space(struct iovm_ctx *ctx)
{
	return ctx->mp;
}

static uint64_t committed(struct iovm_ctx *ctx)
{
	return __atomic_load_n(&space(ctx)->c->committed_parcels, __ATOMIC_RELAXED);
}

/* What the kernel holds for the heap's memfd, in parcels. */
static uint64_t file_parcels(struct iovm_ctx *ctx)
{
	struct stat st;

	CHECK_OK(fstat(space(ctx)->heap_fd, &st));
	return ((uint64_t)st.st_blocks * 512 + MP_PARCEL - 1) / MP_PARCEL;
}

static struct iovm_ctx *share_4k(const char *name)
{
	struct iovm_share_params p = { .heap_size = HEAP, .page_size = 4096, .group = -1 };
	struct iovm_ctx *ctx;

	CHECK_OK(iovm_open("", &ctx));
	CHECK_OK(iovm_share(ctx, name, &p));
	return ctx;
}

static const char *g_name;

TEST(commits_as_used_and_gives_back_when_free)
{
	struct iovm_ctx *ctx = share_4k(g_name = share_name("parcel"));
	uint8_t *blk[8];

	CHECK_EQ(committed(ctx), 0);
	CHECK_EQ(file_parcels(ctx), 0);
	for (unsigned i = 0; i < 8; i++) {
		blk[i] = iovm_dma_alloc(ctx, 4 * MB, 0, 0);
		CHECK(blk[i] != NULL);
		memset(blk[i], 0x5a, 4 * MB); /* its memory is there: no SIGBUS, and the file holds it */
	}
	CHECK_EQ(committed(ctx), 16);
	CHECK_EQ(file_parcels(ctx), 16);
	CHECK_EQ(space(ctx)->c->commits, 16);
	for (unsigned i = 0; i < 8; i++)
		CHECK_OK(iovm_dma_free(ctx, blk[i]));
	/* All free: what is left committed is at most what a trim keeps, and the file agrees. */
	CHECK(committed(ctx) <= MP_TRIM_KEEP);
	CHECK_EQ(file_parcels(ctx), committed(ctx));
	CHECK(space(ctx)->c->releases >= 16 - MP_TRIM_KEEP);
	CHECK_EQ(space(ctx)->c->trimmer, 0);
	/* Given back memory comes back as fresh pages: zero. */
	{
		uint8_t *p = iovm_dma_alloc(ctx, 32 * MB, 0, 0);
		uint64_t nonzero = 0;

		CHECK(p != NULL);
		for (uint64_t off = 0; off < 32 * MB; off += 4096)
			nonzero += p[off] != 0;
		CHECK_EQ(nonzero, 0);
		CHECK(committed(ctx) >= 16);
		CHECK_OK(iovm_dma_free(ctx, p));
	}
	CHECK_OK(iovm_share_check(ctx));
	CHECK_EQ(share_info(ctx).heap_free, HEAP);
	/* iovm_dma_trim(IOVM_TRIM_ALL) gives back what trims keep too, and says how much. */
	{
		uint64_t kept = committed(ctx);
		int64_t given = iovm_dma_trim(ctx, IOVM_TRIM_ALL);

		CHECK_MSG(given >= (int64_t)(kept * MP_PARCEL), "iovm_dma_trim gave back %lld bytes of %llu parcels",
			  (long long)given, (unsigned long long)kept);
		CHECK_EQ(committed(ctx), 0);
		CHECK_EQ(file_parcels(ctx), 0);
	}
	CHECK_OK(iovm_close(ctx));
}

/* Hugepages: taken as the heap is used, not when it is shared; given back once free. */
static uint64_t avail_2m(void)
{
	uint64_t free = 0, resv = 0;
	FILE *f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%" SCNu64, &free) != 1)
		free = 0;
	fclose(f);
	f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/resv_hugepages", "r");
	if (f) {
		if (fscanf(f, "%" SCNu64, &resv) != 1)
			resv = 0;
		fclose(f);
	}
	return free > resv ? free - resv : 0;
}

/*
 * Whether the mapping at @addr reserves its hugepages: smaps's VmFlags
 * say "nr" (VM_NORESERVE) where it does not. -1: no such mapping.
 */
static int mapping_reserves(const void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool inside = false;
	int ret = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			inside = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
			continue;
		}
		if (inside && strncmp(line, "VmFlags:", 8) == 0) {
			ret = strstr(line, " nr") == NULL;
			break;
		}
	}
	fclose(f);
	return ret;
}

TEST(hugepages_are_taken_as_used)
{
	struct iovm_share_params p = { .heap_size = UINT64_C(1) << 30, .page_size = UINT64_C(2) << 20, .group = -1 };
	struct iovm_ctx *ctx;
	uint64_t before, at_share, taken = UINT64_MAX;
	uint8_t *blk;
	int ret;

	/*
	 * What this process holds is its own to measure: the memfd holds no
	 * page and its mapping reserves none. The pool is everyone's: other
	 * tests take pages from it meanwhile, so it is read around a share
	 * up to three times, and the least taken counts. A share that took
	 * its 1 GiB would show 512 every time.
	 */
	for (unsigned attempt = 0; attempt < 3 && taken > 4; attempt++) {
		before = avail_2m();
		if (before < 16)
			SKIP_CASE("fewer than 16 free 2 MiB hugepages here");
		CHECK_OK(iovm_open("", &ctx));
		ret = iovm_share(ctx, g_name = share_name("parcel-huge"), &p);
		if (ret) {
			CHECK_OK(iovm_close(ctx));
			SKIP_CASE("no 2 MiB share here");
		}
		at_share = avail_2m();
		if (before - at_share < taken || at_share >= before)
			taken = at_share >= before ? 0 : before - at_share;
		CHECK_EQ(file_parcels(ctx), 0);
		CHECK_EQ(mapping_reserves(space(ctx)->heap), 0);
		if (taken > 4 && attempt < 2)
			CHECK_OK(iovm_close(ctx));
	}
	CHECK_MSG(taken <= 4, "sharing 1 GiB took %llu hugepages, in each of 3 tries", (unsigned long long)taken);
	blk = iovm_dma_alloc(ctx, 8 * MB, 0, 0);
	if (!blk) {
		CHECK_OK(iovm_close(ctx));
		SKIP_CASE("the pool was taken meanwhile");
	}
	memset(blk, 7, 8 * MB);
	CHECK_EQ(file_parcels(ctx), 4);
	CHECK_OK(iovm_dma_free(ctx, blk));
	CHECK(file_parcels(ctx) <= MP_TRIM_KEEP);
	CHECK_OK(iovm_close(ctx));
}

/* A small allocation commits its parcel, once; thread caches too. */
TEST(small_blocks_commit_their_section)
{
	struct iovm_ctx *ctx = share_4k(g_name = share_name("parcel-small"));
	void *p[64];

	for (unsigned i = 0; i < 64; i++) {
		p[i] = iovm_dma_alloc(ctx, 64, 0, 0);
		CHECK(p[i] != NULL);
		memset(p[i], 1, 64);
	}
	CHECK_EQ(committed(ctx), 1);
	for (unsigned i = 0; i < 64; i++)
		CHECK_OK(iovm_dma_free(ctx, p[i]));
	CHECK_OK(iovm_close(ctx));
}

/*
 * The follower: attached, a domain that follows the heap, a device on it.
 * Asked, it copies 4 KiB from the PA it is told into its own buffer, by
 * the IOVA its domain has for it, and says the status and a checksum.
 */
enum { F_COPY = 1, F_STOP = 2 };

static void follower(int rd, int wr, void *arg)
{
	struct rig r;
	uint8_t *dst;
	iovm_iova_t di;

	(void)arg;
	memset(&r, 0, sizeof(r));
	r.ctx = attach_ok(g_name);
	{
		struct iovm_domain_attr follow = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP };
		struct iovm_queue_attr qa = { .depth = 16 };

		CHECK_OK(iovm_domain_create(r.ctx, &follow, &r.dom));
		CHECK_OK(iovm_device_open(r.ctx, "sw", &r.dev));
		CHECK_OK(iovm_device_attach(r.dev, r.dom, IOVM_PASID_NONE));
		CHECK_OK(iovm_queue_create(r.dev, &qa, &r.q));
		r.comp = iovm_dma_zalloc(r.ctx, 4096, 4096, 0);
		CHECK(r.comp != NULL);
		CHECK_OK(iovm_dma_iova(r.dom, r.comp, &r.comp_iova));
	}
	dst = iovm_dma_zalloc(r.ctx, 4096, 4096, 0);
	CHECK(dst != NULL);
	CHECK_OK(iovm_dma_iova(r.dom, dst, &di));
	/* The IOVA of the shared heap's start: the domain maps the heap at one range, offset for offset. */
	{
		iovm_iova_t base;
		uint8_t *heap = space(r.ctx)->heap;

		CHECK_OK(iovm_dma_iova(r.dom, r.comp, &base));
		put64(wr, base.addr - (uint64_t)((uint8_t *)r.comp - heap));
	}
	for (;;) {
		uint64_t cmd = get64(rd), off, sum = 0;
		struct iovm_completion c;

		if (cmd == F_STOP)
			break;
		off = get64(rd);
		memset(dst, 0xee, 4096);
		/* No lookup in this process first: the domain must map it already. */
		c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = get64(rd), .dst = di.addr,
						      .len = 4096 });
		for (unsigned i = 0; i < 4096; i++)
			sum += dst[i];
		(void)off;
		put64(wr, c.status);
		put64(wr, sum);
	}
	CHECK_OK(iovm_dma_free(r.ctx, dst));
	CHECK_OK(iovm_dma_free(r.ctx, r.comp));
	rig_close(&r);
	put64(wr, 1);
}

static struct iovm_completion_status_sum {
	uint64_t status, sum;
} ask_copy(struct child *c, uint64_t iova)
{
	struct iovm_completion_status_sum r;

	put64(c->wr, F_COPY);
	put64(c->wr, 0);
	put64(c->wr, iova);
	r.status = get64(c->rd);
	r.sum = get64(c->rd);
	return r;
}

TEST(a_follower_maps_before_the_allocation_returns)
{
	struct iovm_ctx *ctx = share_4k(g_name = share_name("parcel-follow"));
	struct child f = child_start(follower, NULL);
	uint64_t base = get64(f.rd);
	uint8_t *heap = space(ctx)->heap;

	for (unsigned round = 0; round < 6; round++) {
		/* 8 MiB: parcels nobody committed before, but for what trims keep. */
		uint8_t *p = iovm_dma_alloc(ctx, 8 * MB, 0, 0);
		uint64_t iova;
		struct iovm_completion_status_sum r;

		CHECK(p != NULL);
		memset(p, 3, 8 * MB);
		/* Its last page: in a parcel this allocation committed. */
		iova = base + (uint64_t)(p - heap) + 8 * MB - 4096;
		r = ask_copy(&f, iova);
		CHECK_MSG(r.status == IOVM_STATUS_SUCCESS, "round %u: the follower's device copied with status %llu",
			  round, (unsigned long long)r.status);
		CHECK_EQ(r.sum, 3 * 4096);
		CHECK_OK(iovm_dma_free(ctx, p));
		/* Given back: the follower's domain unmapped it before its memory went. */
		CHECK(committed(ctx) <= MP_TRIM_KEEP + 1);
		r = ask_copy(&f, iova);
		CHECK_MSG(r.status != IOVM_STATUS_SUCCESS || r.sum == 0,
			  "round %u: after the trim, the follower read %llu of given-back memory", round,
			  (unsigned long long)r.sum);
		CHECK_MSG(r.status != IOVM_STATUS_SUCCESS || committed(ctx) > 0,
			  "round %u: a copy from a parcel without memory succeeded", round);
	}
	put64(f.wr, F_STOP);
	CHECK_EQ(get64(f.rd), 1);
	child_ok(&f);
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
}

/* SIGSTOP, and wait until every thread of the child stopped (kill() returns before). */
static void stop(struct child *c)
{
	int st;

	CHECK_OK(kill(c->pid, SIGSTOP));
	CHECK_EQ(waitpid(c->pid, &st, WUNTRACED), c->pid);
	CHECK(WIFSTOPPED(st));
}

/* An allocation in another thread: whether it returned yet. */
struct alloc_job {
	struct iovm_ctx *ctx;
	uint8_t *p;
	_Atomic bool returned;
};

static void *alloc_job(void *arg)
{
	struct alloc_job *j = arg;

	j->p = iovm_dma_alloc(j->ctx, 8 * MB, 0, 0);
	atomic_store(&j->returned, true);
	return NULL;
}

static void *free_job(void *arg)
{
	struct alloc_job *j = arg;

	CHECK_OK(iovm_dma_free(j->ctx, j->p));
	atomic_store(&j->returned, true);
	return NULL;
}

/*
 * A stopped follower has not mapped what a commit brings: the allocation
 * waits for it (were it to return, the follower's device could be handed
 * memory its domain does not map), and returns once the follower runs.
 */
TEST(a_commit_waits_for_a_stopped_follower)
{
	struct iovm_ctx *ctx = share_4k(g_name = share_name("parcel-wait"));
	struct child f = child_start(follower, NULL);
	uint64_t base = get64(f.rd);
	struct alloc_job j = { .ctx = ctx };
	struct iovm_completion_status_sum r;
	pthread_t t;

	stop(&f);
	CHECK_OK(pthread_create(&t, NULL, alloc_job, &j));
	usleep(200 * 1000);
	CHECK_MSG(!atomic_load(&j.returned), "an allocation that committed returned while a follower was stopped");
	CHECK_OK(kill(f.pid, SIGCONT));
	CHECK_OK(pthread_join(t, NULL));
	CHECK(j.p != NULL);
	memset(j.p, 9, 8 * MB);
	r = ask_copy(&f, base + (uint64_t)(j.p - space(ctx)->heap));
	CHECK_EQ(r.status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(r.sum, 9 * 4096);
	/* And a trim waits for it the same way: the free returns once the follower unmapped. */
	stop(&f);
	atomic_store(&j.returned, false);
	CHECK_OK(pthread_create(&t, NULL, free_job, &j));
	usleep(200 * 1000);
	CHECK_MSG(!atomic_load(&j.returned),
		  "a free that trims returned while a follower was stopped (committed %llu, releases %llu, trimmer %u)",
		  (unsigned long long)committed(ctx), (unsigned long long)space(ctx)->c->releases,
		  space(ctx)->c->trimmer);
	CHECK_OK(kill(f.pid, SIGCONT));
	CHECK_OK(pthread_join(t, NULL));
	r = ask_copy(&f, base + 8 * MB);
	CHECK(r.status != IOVM_STATUS_SUCCESS || r.sum == 0);
	put64(f.wr, F_STOP);
	CHECK_EQ(get64(f.rd), 1);
	child_ok(&f);
	CHECK_OK(iovm_close(ctx));
}

/* A stopped follower holds a commit up until it dies; then it is waited for no more. */
TEST(a_dead_follower_is_not_waited_for)
{
	struct iovm_ctx *ctx = share_4k(g_name = share_name("parcel-stop"));
	struct child f = child_start(follower, NULL);
	uint8_t *p;

	(void)get64(f.rd);
	CHECK_OK(kill(f.pid, SIGSTOP));
	CHECK_OK(kill(f.pid, SIGKILL));
	CHECK_EQ(child_wait(&f), -SIGKILL);
	p = iovm_dma_alloc(ctx, 16 * MB, 0, 0);
	CHECK(p != NULL);
	CHECK_OK(iovm_dma_free(ctx, p));
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
}

#ifdef IOVM_DEBUG_CHECKS
/* Killed at the n-th crash point of an allocation that commits and its free that trims. */
static unsigned long g_countdown;

static void crasher(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	uint8_t *p;

	(void)rd;
	(void)arg;
	mp_crash_countdown = g_countdown;
	p = iovm_dma_alloc(ctx, 8 * MB, 0, 0);
	if (p)
		iovm_dma_free(ctx, p);
	mp_crash_countdown = 0;
	put64(wr, 2);
	pause();
}

TEST(killed_at_each_crash_point_of_commit_and_trim)
{
	unsigned long n;
	unsigned lived = 0;

	for (n = 1; n < 400 && !lived; n++) {
		struct iovm_ctx *ctx = share_4k(g_name = share_name("parcel-crash"));
		uint64_t said;
		struct child c;
		uint8_t *p;

		g_countdown = n;
		c = child_start(crasher, NULL);
		if (read(c.rd, &said, sizeof(said)) == (ssize_t)sizeof(said)) {
			lived = 1;
			child_kill(&c);
		} else {
			CHECK_MSG(child_wait(&c) == MP_CRASH_EXIT, "point %lu: the child did not die at it", n);
		}
		/* The survivor: the dead reaped now, a repaired heap, no trim left, its own allocation and trim work. */
		CHECK(mp_reap_dead(&space(ctx)->h) >= 0);
		CHECK_OK(iovm_share_check(ctx));
		p = iovm_dma_alloc(ctx, 16 * MB, 0, 0);
		CHECK_MSG(p != NULL, "point %lu: the survivor cannot allocate: %s (%s); free %llu, blocks %llu, trimmer %u",
			  n, strerror(errno), iovm_error_detail(), (unsigned long long)share_info(ctx).heap_free,
			  (unsigned long long)share_info(ctx).blocks, space(ctx)->c->trimmer);
		memset(p, 1, 16 * MB);
		CHECK_OK(iovm_dma_free(ctx, p));
		CHECK_MSG(space(ctx)->c->trimmer == 0, "point %lu: a trim left behind", n);
		CHECK_MSG(committed(ctx) <= MP_TRIM_KEEP + 4, "point %lu: %llu parcels still committed", n,
			  (unsigned long long)committed(ctx));
		CHECK_EQ(share_info(ctx).heap_free, HEAP);
		for (uint64_t i = 0; i < space(ctx)->c->nparcels; i++)
			CHECK(space(ctx)->h.parcel[i] != MP_PARCEL_RELEASING);
		CHECK_OK(iovm_close(ctx));
	}
	CHECK(lived);
	printf("# an allocation that commits and a free that trims: killed at each of their %lu points\n", n - 2);
}
#endif

int main(void)
{
	test_init();
	RUN(commits_as_used_and_gives_back_when_free);
	RUN(small_blocks_commit_their_section);
	RUN(hugepages_are_taken_as_used);
	RUN(a_follower_maps_before_the_allocation_returns);
	RUN(a_commit_waits_for_a_stopped_follower);
	RUN(a_dead_follower_is_not_waited_for);
#ifdef IOVM_DEBUG_CHECKS
	RUN(killed_at_each_crash_point_of_commit_and_trim);
#endif
	return 0;
}
