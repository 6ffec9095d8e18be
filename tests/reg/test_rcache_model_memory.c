/* SPDX-License-Identifier: MIT */
/*
 * test_rcache_model_memory.c - reg.h's promises about kinds of memory,
 * attacked from the header alone: memory shared with a child, memory the
 * monitor cannot watch (file-backed, memfd), pinned pages staying locked,
 * protection changes under a cached region, the lock count of overlapping
 * registrations, a transient failure at the monitor's start, and an
 * unprivileged process with a small RLIMIT_MEMLOCK. Each test is named
 * after the promise it tries to break.
 */
#include <fcntl.h>
#include <grp.h>
#include <linux/falloc.h>
#include <sys/resource.h>

#include "base/fault_inject.h"
#include "reg/test_peer_util.h"

static struct env E;

static struct iovm_rcache *cache_new(void)
{
	struct iovm_rcache *c;

	CHECK_OK(iovm_rcache_create(E.r.dom, NULL, &c));
	return c;
}

static uint8_t *shared_page;

static void child_changes_shared_memory(void *arg)
{
	(void)arg;
	memset(shared_page, 0x99, PG);
	/* Its own mapping of the shared memory: unmapped, mapped over. */
	if (munmap(shared_page + PG, PG) ||
	    mmap(shared_page + 2 * PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
		    MAP_FAILED)
		_exit(2);
	madvise(shared_page + 3 * PG, PG, MADV_DONTNEED);
}

/*
 * "what it does to its copy never reaches the parent's registrations":
 * with MAP_SHARED memory the child's writes are the parent's memory too,
 * but its munmap and mmap change only its own address space.
 */
TEST(child_changes_never_reach_parent_registrations_shared_memory)
{
	struct iovm_rcache *c;
	struct iovm_mr *pinned, *cached;
	uint64_t valid;

	SKIP_FORK_UNDER_TSAN();
	c = cache_new();

	shared_page = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(shared_page != MAP_FAILED);
	memset(shared_page, 1, 4 * PG);
	CHECK_OK(iovm_mr_reg(E.r.dom, shared_page, 4 * PG, RW, &pinned));
	CHECK_OK(iovm_rcache_get(c, shared_page, 4 * PG, RW, &cached));
	valid = mr_info(pinned).valid_pages;
	CHECK_EQ(in_child(child_changes_shared_memory, NULL), 0);
	CHECK_EQ(shared_page[0], 0x99);
	CHECK_EQ(shared_page[PG], 1);
	CHECK_EQ(mr_info(pinned).valid_pages, valid);
	CHECK_EQ(mr_info(cached).valid_pages, mr_info(cached).pages);
	mr_reaches(&E, pinned, shared_page, 4 * PG);
	mr_reaches(&E, cached, shared_page, 4 * PG);
	CHECK_OK(iovm_rcache_put(c, cached));
	CHECK_OK(iovm_mr_dereg(pinned));
	CHECK_OK(iovm_rcache_destroy(c));
	munmap(shared_page, 4 * PG);
}

/*
 * "Pinned: the pages are ... locked; a locked range refuses
 * madvise(MADV_DONTNEED)". mremap(MREMAP_DONTUNMAP) of part of a pinned
 * registration's mapping: the kernel clears the lock of the whole mapping,
 * also of the pages that did not move; they must stay locked (the monitor
 * sees the move), or a plain DONTNEED discards pages a pinned MR holds.
 */
TEST(pinned_pages_stay_locked_when_part_is_moved)
{
	uint8_t *p = app_map(16 * PG), *dst = app_map(4 * PG);
	struct iovm_mr *mr;
	int ret;

	memset(p, 1, 16 * PG);
	CHECK_OK(iovm_mr_reg(E.r.dom, p, 16 * PG, RW, &mr));
	CHECK(page_locked(p + 12 * PG));
	if (mremap(p + 4 * PG, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, dst) != dst) {
		CHECK_OK(iovm_mr_dereg(mr));
		SKIP_CASE("no MREMAP_DONTUNMAP for this mapping: %s", strerror(errno));
	}
	/* A query waits for the monitor to have dealt with the move (reg.h): the pages that stay are locked by then. */
	CHECK_EQ(mr_info(mr).valid_pages, 12);
	CHECK_MSG(page_locked(p + 12 * PG), "a page of a pinned MR that did not move is no longer locked");
	CHECK_MSG(page_locked(p), "a page of a pinned MR before the moved ones is no longer locked");
	ret = madvise(p + 12 * PG, PG, MADV_DONTNEED);
	CHECK_MSG(ret != 0, "madvise(MADV_DONTNEED) discarded a page a pinned MR holds");
	CHECK_EQ(p[12 * PG], 1);
	CHECK_EQ(mr_info(mr).valid_pages, 12);
	mr_reaches(&E, mr, p + 12 * PG, PG);
	CHECK_OK(iovm_mr_dereg(mr));
	app_unmap(p, 16 * PG);
	app_unmap(dst, 4 * PG);
}

/*
 * Memory made read-only under a cached read-write region. No userfaultfd
 * event reports mprotect(), and a lock-free hit cannot ask the kernel
 * without a system call: reg.h says a registration keeps the rights it
 * was registered with (as an rdma-core MR keeps its device's), a get that
 * misses checks the memory as it is (as iovm_mr_reg()), and a device
 * access the protection now forbids faults on the software platform,
 * touching nothing. Each of those, here. (First written as "a get for
 * writing must fail with -EFAULT": finding B of issue 16's attack round,
 * which no lock-free hit can give.)
 */
TEST(rcache_hit_keeps_registered_rights_after_mprotect)
{
	struct iovm_rcache *c = cache_new();
	uint8_t *p = app_map(16 * PG);
	struct iovm_completion w;
	struct iovm_mr *mr, *own;
	uint32_t k;

	memset(p, 1, 16 * PG);
	k = get_put(c, p, 8 * PG, RW);
	CHECK(mprotect(p, 8 * PG, PROT_READ) == 0);
	/* A registration looks at the memory now. */
	CHECK_EQ(iovm_mr_reg(E.r.dom, p + PG, 2 * PG, RW, &own), -EFAULT);
	/* A get beyond the cached region misses, and registers: the same check. */
	CHECK_EQ(iovm_rcache_get(c, p + 4 * PG, 8 * PG, RW, &mr), -EFAULT);
	/* A get within it hits, with the rights it was registered with. */
	CHECK_OK(iovm_rcache_get(c, p + PG, 2 * PG, RW, &mr));
	CHECK_EQ(mr_info(mr).lkey, k);
	CHECK_EQ(mr_info(mr).access & RW, RW);
	/* The device's write faults (it reaches the memory through the process's mapping) and lands nowhere. */
	w = env_write(&E, (uintptr_t)p + PG, mr_info(mr).lkey, 64, 2);
	CHECK_EQ(w.status, IOVM_STATUS_PAGE_FAULT);
	w = env_write(&E, mr_iova(mr, p + 2 * PG), 0, 64, 2);
	CHECK_EQ(w.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(p[PG], 1);
	CHECK_EQ(p[2 * PG], 1);
	mr_reaches(&E, mr, p + PG, 2 * PG);
	CHECK_OK(iovm_rcache_put(c, mr));
	CHECK_OK(iovm_rcache_get(c, p + PG, 2 * PG, IOVM_ACCESS_LOCAL_READ, &mr));
	mr_reaches(&E, mr, p + PG, 2 * PG);
	CHECK_OK(iovm_rcache_put(c, mr));
	/* Writable again: the region's write right works again. */
	CHECK(mprotect(p, 8 * PG, PROT_READ | PROT_WRITE) == 0);
	CHECK_OK(iovm_rcache_get(c, p + PG, 2 * PG, RW, &mr));
	CHECK_EQ(env_write(&E, (uintptr_t)p + PG, mr_info(mr).lkey, 64, 3).status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(p[PG], 3);
	CHECK_OK(iovm_rcache_put(c, mr));
	CHECK_OK(iovm_rcache_destroy(c));
	app_unmap(p, 16 * PG);
}

/* "Memory the monitor cannot watch is registered for the caller but never kept": a file's private mapping. */
TEST(rcache_never_keeps_unwatchable_memory)
{
	char path[] = "/tmp/iovm-rcache-XXXXXX";
	int fd = mkstemp(path);
	struct iovm_rcache *c = cache_new();
	struct iovm_rcache_stats st;
	struct iovm_mr *mr;
	uint32_t k;
	uint8_t *p;

	CHECK(fd >= 0);
	unlink(path);
	CHECK(ftruncate(fd, 4 * PG) == 0);
	p = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK(p != MAP_FAILED);
	memset(p, 3, 4 * PG);
	CHECK_OK(iovm_rcache_get(c, p, 4 * PG, RW, &mr));
	CHECK(!mr_info(mr).monitored);
	mr_reaches(&E, mr, p, 4 * PG);
	k = mr_info(mr).lkey;
	CHECK_OK(iovm_rcache_put(c, mr));
	st = cstats(c);
	CHECK_EQ(st.uncached, 1);
	CHECK(get_put(c, p, 4 * PG, RW) != k);
	CHECK_EQ(cstats(c).regions, 0);
	CHECK_OK(iovm_rcache_destroy(c));
	munmap(p, 4 * PG);
	close(fd);
}

/*
 * Issue 16 item 11: fallocate(PUNCH_HOLE) replaces a memfd's pages behind
 * a registration without a userfaultfd event. Such memory must not be
 * kept by the cache (nor reported monitored): a get after the punch is a
 * new registration.
 */
TEST(rcache_never_keeps_memory_replaceable_without_an_event)
{
	int fd = memfd_create("iovm-punch", 0);
	struct iovm_rcache *c = cache_new();
	struct iovm_mr *mr, *pinned;
	uint32_t k;
	uint8_t *p;

	CHECK(fd >= 0);
	CHECK(ftruncate(fd, 4 * PG) == 0);
	p = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	memset(p, 4, 4 * PG);
	CHECK_OK(iovm_mr_reg(E.r.dom, p, 4 * PG, RW, &pinned));
	CHECK_OK(iovm_rcache_get(c, p, 4 * PG, RW, &mr));
	k = mr_info(mr).lkey;
	CHECK_OK(iovm_rcache_put(c, mr));
	CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PG) == 0);
	memset(p, 5, PG);
	CHECK_OK(iovm_rcache_get(c, p, 4 * PG, RW, &mr));
	CHECK_MSG(mr_info(mr).lkey != k, "the cache kept a registration of memfd memory, whose pages a punched hole replaced");
	mr_reaches(&E, mr, p, PG);
	CHECK_OK(iovm_rcache_put(c, mr));
	CHECK_MSG(!mr_info(pinned).monitored || mr_info(pinned).valid_pages < 4,
		  "a registration of memfd memory says it is monitored, and its punched page valid");
	CHECK_OK(iovm_mr_dereg(pinned));
	CHECK_OK(iovm_rcache_destroy(c));
	munmap(p, 4 * PG);
	close(fd);
}

/* "locks are counted, so overlapping registrations unlock each page once": and count each page once. */
TEST(reg_stats_locked_bytes_count_each_page_once)
{
	uint8_t *p = app_map(6 * PG);
	uint64_t before = rstats(&E.r).locked_bytes;
	struct iovm_mr *a, *b;

	memset(p, 6, 6 * PG);
	CHECK_OK(iovm_mr_reg(E.r.dom, p, 4 * PG, RW, &a));
	CHECK_OK(iovm_mr_reg(E.r.dom, p + 2 * PG, 4 * PG, RW, &b));
	CHECK_MSG(rstats(&E.r).locked_bytes - before == 6 * PG, "locked_bytes grew by %llu for 6 pages locked",
		  (unsigned long long)(rstats(&E.r).locked_bytes - before));
	CHECK_OK(iovm_mr_dereg(a));
	CHECK(page_locked(p + 2 * PG));
	CHECK(!page_locked(p));
	CHECK_EQ(rstats(&E.r).locked_bytes - before, 4 * PG);
	CHECK_OK(iovm_mr_dereg(b));
	CHECK_EQ(rstats(&E.r).locked_bytes, before);
	app_unmap(p, 6 * PG);
}

/*
 * Issue 16 item 10: a transient failure (EMFILE) while the monitor starts,
 * at the first registration of a context, must not leave every later
 * registration unmonitored: the next one retries, and an unmonitored MR
 * says so on itself.
 */
TEST(monitor_survives_a_transient_failure_at_its_start)
{
	unsigned long n;

	for (n = 1; n < 64; n++) {
		struct iovm_domain *dom;
		struct iovm_ctx *ctx = open_ctx(REG_OPTS);
		uint8_t *p = app_map(2 * PG);
		struct iovm_mr *a, *b;
		bool fired;
		int ret;

		CHECK_OK(iovm_domain_create(ctx, NULL, &dom));
		fi_arm(FI_SYSCALL, n, EMFILE);
		ret = iovm_mr_reg(dom, p, PG, RW, &a);
		fired = fi_disarm();
		if (ret == 0) {
			CHECK_OK(iovm_mr_reg(dom, p + PG, PG, RW, &b));
			CHECK_MSG(mr_info(b).monitored,
				  "after EMFILE at system call %lu of the first registration, the next is unmonitored", n);
			CHECK_OK(iovm_mr_dereg(b));
			CHECK_OK(iovm_mr_dereg(a));
		} else {
			CHECK(fired);
		}
		CHECK_OK(iovm_domain_destroy(dom));
		iovm_close(ctx);
		app_unmap(p, 2 * PG);
		if (!fired)
			break;
	}
	if (n == 1)
		SKIP_CASE("fault injection is off (debug_checks=false)");
	printf("# %lu system calls of the first registration failed in turn\n", n - 1);
}

/* In the child: unprivileged, RLIMIT_MEMLOCK of 1 MiB. Exit codes name the broken step. */
static void small_memlock(void *arg)
{
	struct rlimit rl = { 1u << 20, 1u << 20 };
	struct iovm_rcache *c;
	struct iovm_domain *dom;
	struct iovm_ctx *ctx;
	struct iovm_mr *mr;
	struct iovm_reg_stats st;
	uint8_t *p;

	(void)arg;
	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		_exit(2);
	if (geteuid() == 0 && (setgroups(0, NULL) || setgid(65534) || setuid(65534)))
		_exit(3);
	if (iovm_open("page_size=4K,host_pa=off", &ctx))
		_exit(77);
	if (iovm_domain_create(ctx, NULL, &dom) || iovm_rcache_create(dom, NULL, &c))
		_exit(4);
	p = mmap(NULL, 4u << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(5);
	memset(p, 1, 4u << 20);
	if (iovm_mr_reg(dom, p, 4u << 20, RW, &mr) != -ENOMEM)
		_exit(6); /* "-ENOMEM when the pages cannot be locked (RLIMIT_MEMLOCK)" */
	if (iovm_reg_stats(ctx, &st) || st.mrs || page_locked(p))
		_exit(7); /* nothing left registered or locked */
	if (iovm_rcache_get(c, p, 4u << 20, RW, &mr) != -ENOMEM)
		_exit(8);
	if (iovm_mr_reg(dom, p, 64 * PG, RW, &mr) || iovm_mr_dereg(mr))
		_exit(9); /* within the limit, fine */
	if (iovm_rcache_get(c, p, 64 * PG, RW, &mr) || iovm_rcache_put(c, mr))
		_exit(10);
	if (iovm_rcache_destroy(c) || iovm_domain_destroy(dom))
		_exit(11);
	iovm_close(ctx);
}

TEST(small_memlock_limit_gives_enomem_and_leaves_nothing)
{
	int ret;

	SKIP_FORK_UNDER_TSAN();
	ret = in_child(small_memlock, NULL);

	if (ret == 77)
		SKIP_CASE("iovm_open fails unprivileged with RLIMIT_MEMLOCK 1 MiB");
	CHECK_MSG(ret == 0, "the unprivileged child %s %d (2 setrlimit, 3 setuid, 4 domain or cache, 5 mmap, "
		  "6 not -ENOMEM, 7 left registered or locked, 8 get not -ENOMEM, 9 reg, 10 get, 11 destroy)",
		  ret > 128 ? "died of signal" : "failed with", ret > 128 ? ret - 128 : ret);
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;

	test_init();
	env_open(&E);
	RUN_ONLY(only, child_changes_never_reach_parent_registrations_shared_memory);
	RUN_ONLY(only, pinned_pages_stay_locked_when_part_is_moved);
	RUN_ONLY(only, rcache_hit_keeps_registered_rights_after_mprotect);
	RUN_ONLY(only, rcache_never_keeps_unwatchable_memory);
	RUN_ONLY(only, rcache_never_keeps_memory_replaceable_without_an_event);
	RUN_ONLY(only, reg_stats_locked_bytes_count_each_page_once);
	RUN_ONLY(only, monitor_survives_a_transient_failure_at_its_start);
	RUN_ONLY(only, small_memlock_limit_gives_enomem_and_leaves_nothing);
	env_close(&E);
	return 0;
}
