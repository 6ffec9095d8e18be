/* SPDX-License-Identifier: MIT */
/*
 * test_os.c - the Linux services: page sizes and pools, memfd, reserve and
 * commit, populate (with hugepage exhaustion giving -ENOMEM, never SIGBUS),
 * pagemap, NUMA binding, userfaultfd, a range's mappings (by query and by
 * the maps' text), and the sysinfo built on them.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iovm/os.h>

#include "base/compiler.h"
#include "os/guard.h"
#include "os/hugepage.h"
#include "os/memfd.h"
#include "os/numa.h"
#include "os/pagemap.h"
#include "os/pid.h"
#include "os/populate.h"
#include "os/sysfs.h"
#include "os/uffd.h"
#include "os/vaspace.h"
#include "os/vfio.h"
#include "os/vma.h"
#include "harness.h"

TEST(page_sizes)
{
	uint64_t sizes[OS_MAX_HUGEPAGE_SIZES], total, free;
	int n = os_hugepage_sizes(sizes, OS_MAX_HUGEPAGE_SIZES);

	CHECK_EQ(os_page_size(), 4096);
	CHECK(n >= 0);
	for (int i = 0; i < n; i++) {
		CHECK(is_pow2(sizes[i]));
		CHECK(sizes[i] > os_page_size());
		CHECK(os_hugepage_supported(sizes[i]));
		CHECK_OK(os_hugepage_pool(sizes[i], -1, &total, &free));
		CHECK(free <= total);
		if (i)
			CHECK(sizes[i] > sizes[i - 1]);
	}
	CHECK(!os_hugepage_supported(3 << 20));
	CHECK(os_hugepage_pool(3 << 20, -1, &total, &free) < 0);
}

static void count(unsigned n, void *arg)
{
	(void)n;
	(*(int *)arg)++;
}

TEST(sysfs_lists)
{
	int c = 0;

	CHECK_EQ(sysfs_parse_list("0-3,8,10-11", count, &c), 7);
	CHECK_EQ(c, 7);
	CHECK_EQ(sysfs_parse_list("5", NULL, NULL), 1);
	CHECK_EQ(sysfs_parse_list("", NULL, NULL), 0);
	CHECK_EQ(sysfs_parse_list("3-1", NULL, NULL), -EINVAL);
	CHECK_EQ(sysfs_parse_list("a", NULL, NULL), -EINVAL);
	CHECK_EQ(sysfs_parse_list("1;2", NULL, NULL), -EINVAL);
}

TEST(memfd_aliases)
{
	int fd;
	uint8_t *a, *b;

	CHECK_OK(os_memfd_create("t", 4096, &fd));
	CHECK_OK(os_memfd_extend(fd, 1 << 20));
	a = os_va_map_shared(1 << 20, fd, 0);
	b = os_va_map_shared(64 << 10, fd, 512 << 10);
	CHECK(a && b);
	CHECK_OK(os_populate(a, 1 << 20, 4096));
	a[512 << 10] = 0x5a;
	CHECK_EQ(b[0], 0x5a);
	CHECK_OK(os_memfd_punch(fd, 512 << 10, 4096));
	/* A punched page reads back as zero through both mappings. */
	CHECK_EQ(b[0], 0);
	CHECK_EQ(a[512 << 10], 0);
	munmap(a, 1 << 20);
	munmap(b, 64 << 10);
	close(fd);
	CHECK_EQ(os_memfd_create("t", 3 << 20, &fd), -EINVAL);
	CHECK_EQ(os_memfd_create("t", 8 << 20, &fd), -EOPNOTSUPP);
}

TEST(reserve_commit_decommit)
{
	uint8_t *va = os_va_reserve(64 << 20, 1 << 30);
	int fd;

	CHECK(va != NULL);
	CHECK(is_aligned((uintptr_t)va, 1 << 30));
	CHECK(os_va_reserve(0, 4096) == NULL);
	CHECK(os_va_reserve(4096, 3) == NULL);
	CHECK_OK(os_memfd_create("t", 4096, &fd));
	CHECK_OK(os_memfd_extend(fd, 2 << 20));
	CHECK_OK(os_va_commit(va + (4 << 20), 2 << 20, fd, 0, true));
	va[4 << 20] = 1;
	CHECK_EQ(va[4 << 20], 1);
	CHECK_OK(os_va_decommit(va + (4 << 20), 2 << 20));
	/* Committing again maps the same file pages: the data is still there. */
	CHECK_OK(os_va_commit(va + (8 << 20), 2 << 20, fd, 0, false));
	CHECK_EQ(va[8 << 20], 1);
	os_va_release(va, 64 << 20);
	close(fd);
}

TEST(pagemap)
{
	int probe = os_pagemap_probe();
	uint8_t *p = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	hpa_t hpa[4];

	CHECK(p != MAP_FAILED);
	CHECK_EQ(probe, geteuid() == 0 ? 1 : 0);
	p[0] = 1;
	p[2 * 4096] = 1;
	CHECK_OK(os_pagemap_read(p, 4, 4096, hpa));
	/* Untouched pages are not present: no address. */
	CHECK(!hpa_valid(hpa[1]));
	CHECK(!hpa_valid(hpa[3]));
	CHECK_EQ(hpa_valid(hpa[0]), probe == 1);
	CHECK_EQ(hpa_valid(hpa[2]), probe == 1);
	if (probe == 1)
		CHECK(!hpa_eq(hpa[0], hpa[2]));
	CHECK_EQ(os_pagemap_read(p + 1, 1, 4096, hpa), -EINVAL);
	CHECK_EQ(os_pagemap_read(p, 0, 4096, hpa), -EINVAL);
	munmap(p, 4 * 4096);
}

TEST(numa)
{
	int nodes[8], n = os_numa_nodes(nodes, 8), node = -1;
	uint8_t *p;

	CHECK(n >= 1);
	CHECK(os_numa_node_online(nodes[0]));
	CHECK(!os_numa_node_online(1000));
	p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED);
	CHECK_OK(os_numa_bind(p, 1 << 20, nodes[0]));
	CHECK_OK(os_populate(p, 1 << 20, 4096));
	CHECK_OK(os_numa_node_of(p + 4096, &node));
	CHECK_EQ(node, nodes[0]);
	CHECK_EQ(os_numa_bind(p, 1 << 20, -1), -EINVAL);
	munmap(p, 1 << 20);
}

TEST(userfaultfd)
{
	uint64_t features = 0;
	char via[32];
	int fd, ret = os_uffd_open(&fd, via, sizeof(via));

	if (ret) {
		/* Not every machine lets this user have one: that is reported, not failed. */
		CHECK(ret < 0);
		printf("# userfaultfd unavailable: %s\n", strerror(-ret));
		return;
	}
	close(fd);
	CHECK(via[0] != '\0');
	CHECK_OK(os_uffd_features(&features));
	/* Every kernel with userfaultfd since 4.11 has the unmap event. */
	CHECK(features & (1u << 6));
	CHECK(strcmp(iovm_uffd_feature_name(6), "EVENT_UNMAP") == 0);
	CHECK(iovm_uffd_feature_name(63) == NULL);
}

/* Out of line: the copy that faults is not folded into the guarded frame. */
static __noinline void copy_page(void *dst, const void *src)
{
	memcpy(dst, src, 4096);
}

static void child_segv(int sig)
{
	_exit(sig == SIGSEGV ? 42 : 1);
}

/* The run of this program that TEST(guard) starts: a handler first, then iovm's, then a fault. */
static void guard_chain_child(void)
{
	uint8_t *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t buf[4096];
	struct os_guard g;

	signal(SIGSEGV, child_segv);
	os_guard_set(&g);
	os_guard_clear(&g);
	copy_page(buf, p);
	_exit(0);
}

TEST(guard)
{
	uint8_t *p = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t buf[4096];
	struct os_guard outer, inner;
	volatile int faults = 0;
	pid_t pid;
	int status;

	sigset_t before, after;

	CHECK(p != MAP_FAILED);
	CHECK_OK(munmap(p + 4096, 4096)); /* a hole in the middle */
	CHECK_OK(-pthread_sigmask(SIG_SETMASK, NULL, &before));
	/* A guarded copy from the hole: back here with its address, the guard gone. */
	if (sigsetjmp(outer.jmp, 0)) {
		faults++;
		CHECK(outer.addr >= (void *)(p + 4096) && outer.addr < (void *)(p + 8192));
		CHECK_EQ(outer.sig, SIGSEGV);
		CHECK(os_guard_current() == NULL);
		/*
		 * Back with the mask the fault came with: a runtime that runs
		 * handlers with signals blocked (TSan) must not leave SIGSEGV
		 * blocked, or the next guarded fault kills the process.
		 */
		CHECK_OK(-pthread_sigmask(SIG_SETMASK, NULL, &after));
		CHECK(!sigismember(&after, SIGSEGV) && !sigismember(&after, SIGBUS));
		for (int sig = 1; sig < SIGRTMIN; sig++)
			CHECK_EQ(sigismember(&after, sig), sigismember(&before, sig));
	} else {
		os_guard_set(&outer);
		copy_page(buf, p);
		copy_page(buf, p + 4096);
		os_guard_clear(&outer);
		CHECK_MSG(0, "the copy from unmapped memory did not fault");
	}
	CHECK_EQ(faults, 1);
	/* Nested: the inner guard takes its fault; the outer one stays set. */
	faults = 0;
	if (sigsetjmp(outer.jmp, 0)) {
		CHECK_MSG(0, "the outer guard took the inner fault");
	} else {
		os_guard_set(&outer);
		if (sigsetjmp(inner.jmp, 0)) {
			faults++;
			CHECK(os_guard_current() == &outer);
		} else {
			os_guard_set(&inner);
			copy_page(p + 4096, buf);
			os_guard_clear(&inner);
		}
		copy_page(buf, p + 8192); /* mapped: no fault */
		os_guard_clear(&outer);
	}
	CHECK_EQ(faults, 1);
	/*
	 * An unguarded fault goes to the handler that was there before iovm's:
	 * shown in a fresh process (this one, run again), whose own handler is
	 * installed before iovm's first guard.
	 */
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		setenv("IOVM_TEST_GUARD_CHAIN", "1", 1);
		execl("/proc/self/exe", "test_os", (char *)NULL);
		_exit(2);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 42, "status %#x", status);
	CHECK_OK(munmap(p, 4096));
	CHECK_OK(munmap(p + 8192, 4096));
}

TEST(sysinfo)
{
	struct iovm_sysinfo *info = NULL;

	CHECK_EQ(iovm_sysinfo_get(NULL), -EINVAL);
	CHECK_OK(iovm_sysinfo_get(&info));
	CHECK(info->nr_nodes >= 1);
	CHECK(info->nr_cpus_online >= 1);
	CHECK_EQ(info->base_page_size, 4096);
	CHECK(info->kernel[0] != '\0');
	CHECK_EQ(info->root, geteuid() == 0);
	/* One machine-wide pool per size, then one per size and node. */
	CHECK_EQ(info->nr_pools, info->nr_page_sizes * (1 + info->nr_nodes));
	for (unsigned i = 0; i < info->nr_pools; i++)
		CHECK(info->pools[i].free <= info->pools[i].total);
	CHECK_EQ(info->pagemap, os_pagemap_probe());
	iovm_sysinfo_free(info);
	iovm_sysinfo_free(NULL);
}

/* The mappings of a range: the same answers by PROCMAP_QUERY and by the text. */
static void vma_cases(bool text)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint8_t *p = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct os_vma_info vi;
	int shm;

	CHECK(p != MAP_FAILED);
	os_vma_text_only(text);
	CHECK_OK(os_vma_range((uintptr_t)p, (uintptr_t)p + 4 * pg, &vi));
	CHECK(vi.mapped && vi.readable && vi.writable && !vi.sysv_shm);
	CHECK_EQ(vi.page_size, 4096);
	/* Read-only in the middle: two mappings now, one not writable. */
	CHECK_OK(mprotect(p + pg, pg, PROT_READ));
	CHECK_OK(os_vma_range((uintptr_t)p, (uintptr_t)p + 4 * pg, &vi));
	CHECK(vi.mapped && vi.readable && !vi.writable);
	CHECK_OK(os_vma_range((uintptr_t)p + 2 * pg, (uintptr_t)p + 4 * pg, &vi));
	CHECK(vi.mapped && vi.writable);
	/* A hole: not mapped; nor is a range with nothing at all. */
	CHECK_OK(munmap(p + 2 * pg, pg));
	CHECK_OK(os_vma_range((uintptr_t)p, (uintptr_t)p + 4 * pg, &vi));
	CHECK(!vi.mapped && !vi.readable && !vi.writable);
	CHECK_OK(os_vma_range((uintptr_t)p + 2 * pg, (uintptr_t)p + 3 * pg, &vi));
	CHECK(!vi.mapped);
	CHECK_OK(munmap(p, 4 * pg));
	/* System V shared memory says so. */
	shm = shmget(IPC_PRIVATE, 2 * pg, IPC_CREAT | 0600);
	if (shm >= 0) {
		uint8_t *s = shmat(shm, NULL, 0);

		shmctl(shm, IPC_RMID, NULL);
		CHECK(s != (void *)-1);
		CHECK_OK(os_vma_range((uintptr_t)s, (uintptr_t)s + 2 * pg, &vi));
		CHECK(vi.mapped && vi.sysv_shm);
		shmdt(s);
	}
	/* Hugetlb: its page size, where the kernel tells it (queries only). */
	p = mmap(NULL, 2 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (p != MAP_FAILED) {
		CHECK_OK(os_vma_range((uintptr_t)p, (uintptr_t)p + (2 << 20), &vi));
		CHECK(vi.mapped && vi.writable);
		CHECK_EQ(vi.page_size, text ? 4096 : 2u << 20);
		munmap(p, 2 << 20);
	}
	os_vma_text_only(false);
}

TEST(vma)
{
	vma_cases(true);
	if (!os_vma_queries()) {
		printf("# no PROCMAP_QUERY (Linux < 6.11): the text alone\n");
		return;
	}
	vma_cases(false);
}

/*
 * In a child: os_pid() is the child's, and the maps the range queries
 * read are the child's (a mapping made only here is seen; the parent's
 * file, inherited, would not show it). Exit status 0 when both hold.
 */
static int child_sees_itself(void)
{
	void *m;
	struct os_vma_info info;

	if (os_pid() != getpid())
		return 1;
	m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || os_vma_range((uintptr_t)m, (uintptr_t)m + 4096, &info) || !info.mapped)
		return 2;
	if (os_pid() != getpid())
		return 3;
	return 0;
}

static void child_checks(pid_t pid)
{
	int st;

	CHECK(pid > 0);
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child saw its parent's ID or maps: status %#x", st);
}

/*
 * os_pid(): the process's ID, also in children made by fork() and by a
 * raw clone(2), which runs no pthread_atfork() handler; and the maps
 * file the range queries keep open is the child's in each.
 */
TEST(pid_across_forks)
{
	struct os_vma_info info;
	pid_t pid;

	CHECK_EQ(os_pid(), getpid());
	/* The parent's maps file open and its ID remembered before each fork. */
	CHECK_OK(os_vma_range((uintptr_t)&info, (uintptr_t)&info + 1, &info));
	pid = fork();
	if (!pid)
		_exit(child_sees_itself());
	child_checks(pid);
	CHECK_EQ(os_pid(), getpid());
	pid = (pid_t)syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, NULL);
	if (!pid)
		_exit(child_sees_itself());
	child_checks(pid);
	CHECK_EQ(os_pid(), getpid());
}

/* os_vma_probe() and os_vma_range() agree on @p's @npages, faulted in for writing. */
static struct os_vma_info probe_agrees(const void *p, size_t npages)
{
	uintptr_t s = (uintptr_t)p, e = s + npages * 4096;
	struct os_vma_info pi, ri;

	CHECK_OK(os_vma_probe(s, e, OS_VMA_FAULT_READ | OS_VMA_FAULT_WRITE, &pi));
	CHECK_OK(os_vma_range(s, e, &ri));
	CHECK_EQ(pi.mapped, ri.mapped);
	CHECK_EQ(pi.readable, ri.readable);
	CHECK_EQ(pi.writable, ri.writable);
	CHECK_EQ(pi.file_backed, ri.file_backed);
	CHECK_EQ(pi.sysv_shm, ri.sysv_shm);
	CHECK_EQ(pi.page_size, ri.page_size);
	return pi;
}

/*
 * The probes of a range (kernels without PROCMAP_QUERY): the maps' answer
 * for every kind of memory, the text's where they see anything but
 * anonymous memory; they fault the range in, and answer private
 * anonymous memory without the text (->writable false where not asked).
 */
TEST(vma_probe)
{
	const long pg = 4096;
	uint8_t *p = mmap(NULL, 8 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), *q;
	unsigned char res[8];
	struct os_vma_info vi;
	int fd, shm;

	CHECK(p != MAP_FAILED);
	os_vma_no_queries(true);
	CHECK(!os_vma_queries());
	vi = probe_agrees(p, 4);
	CHECK(vi.mapped && vi.readable && vi.writable && !vi.file_backed && !vi.sysv_shm);
	/* Faulted in, as the pin would have. */
	CHECK_OK(mincore(p, 4 * pg, res));
	for (int i = 0; i < 4; i++)
		CHECK(res[i] & 1);
	/* Read only: asked, it is not writable. */
	CHECK_OK(os_vma_probe((uintptr_t)p + 4 * pg, (uintptr_t)p + 5 * pg, OS_VMA_FAULT_READ, &vi));
	if (vi.writable)
		printf("# no MADV_POPULATE_READ (Linux < 5.14): the text for every range\n");
	CHECK_OK(mprotect(p + 5 * pg, pg, PROT_READ));
	vi = probe_agrees(p + 4 * pg, 2);
	CHECK(vi.mapped && vi.readable && !vi.writable);
	CHECK_OK(mprotect(p + 5 * pg, pg, PROT_NONE));
	vi = probe_agrees(p + 5 * pg, 1);
	CHECK(!vi.readable);
	/* A hole. */
	CHECK_OK(munmap(p + 7 * pg, pg));
	vi = probe_agrees(p + 6 * pg, 2);
	CHECK(!vi.mapped);
	/* A memfd's mappings, shared and private, written or not: its file's. */
	fd = memfd_create("iovm-vma-probe", MFD_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_OK(ftruncate(fd, 4 * pg));
	q = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(q != MAP_FAILED);
	CHECK(probe_agrees(q, 4).file_backed);
	CHECK_OK(munmap(q, 4 * pg));
	q = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK(q != MAP_FAILED);
	CHECK(probe_agrees(q, 4).file_backed);
	memset(q, 1, 4 * pg); /* every page copied: anonymous pages, still the file's mapping */
	CHECK(probe_agrees(q, 4).file_backed);
	CHECK_OK(munmap(q, 4 * pg));
	/* Private anonymous memory, a file's mapping in its second half: met. */
	q = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(q != MAP_FAILED);
	CHECK(mmap(q + 2 * pg, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0) == q + 2 * pg);
	memset(q, 1, 4 * pg);
	CHECK(probe_agrees(q, 4).file_backed);
	CHECK(!probe_agrees(q, 2).file_backed);
	CHECK_OK(munmap(q, 4 * pg));
	close(fd);
	/* Shared anonymous memory, System V's. */
	q = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(q != MAP_FAILED);
	CHECK(probe_agrees(q, 2).file_backed);
	CHECK_OK(munmap(q, 2 * pg));
	shm = shmget(IPC_PRIVATE, 2 * pg, IPC_CREAT | 0600);
	if (shm >= 0) {
		q = shmat(shm, NULL, 0);
		shmctl(shm, IPC_RMID, NULL);
		CHECK(q != (void *)-1);
		CHECK(probe_agrees(q, 2).sysv_shm);
		shmdt(q);
	}
	/* Hugetlb, anonymous and a hugetlbfs memfd's private mapping, written: told apart. */
	q = mmap(NULL, 2 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (q != MAP_FAILED) {
		CHECK(!probe_agrees(q, 4).file_backed);
		munmap(q, 2 << 20);
	}
	fd = memfd_create("iovm-vma-probe-huge", MFD_CLOEXEC | MFD_HUGETLB);
	if (fd >= 0 && !ftruncate(fd, 2 << 20)) {
		q = mmap(NULL, 2 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
		if (q != MAP_FAILED) {
			memset(q, 1, 4 * pg);
			CHECK(probe_agrees(q + 4 * pg, 4).file_backed);
			munmap(q, 2 << 20);
		}
	}
	if (fd >= 0)
		close(fd);
	/* Not faulted in: the maps, exactly. */
	CHECK_OK(os_vma_probe((uintptr_t)p, (uintptr_t)p + pg, 0, &vi));
	CHECK(vi.writable);
	os_vma_no_queries(false);
	CHECK_OK(munmap(p, 7 * pg));
}

/* The kernel's inclusive IOVA ranges, as iovm says ranges: (start, len). */
TEST(vfio_ranges)
{
	struct os_vfio_range r = os_vfio_range_of(0x1000, 0xfedfffff);

	CHECK_EQ(iova_val(r.start), 0x1000);
	CHECK_EQ(r.len, 0xfedff000);
	/* One that ends at 2^64 keeps its length: its end wraps to 0. */
	r = os_vfio_range_of(0xfef00000, UINT64_MAX);
	CHECK_EQ(r.len, 0 - UINT64_C(0xfef00000));
	CHECK_EQ(iova_val(r.start) + r.len, 0);
	/* A single byte. */
	CHECK_EQ(os_vfio_range_of(5, 5).len, 1);
	/* The whole space has no length: all but its last page, which no domain reaches. */
	r = os_vfio_range_of(0, UINT64_MAX);
	CHECK_EQ(iova_val(r.start), 0);
	CHECK_EQ(r.len, UINT64_MAX - 0xfff);
}

int main(void)
{
	if (getenv("IOVM_TEST_GUARD_CHAIN"))
		guard_chain_child();
	test_init();
	RUN(page_sizes);
	RUN(pid_across_forks);
	RUN(sysfs_lists);
	RUN(memfd_aliases);
	RUN(reserve_commit_decommit);
	RUN(pagemap);
	RUN(numa);
	RUN(sysinfo);
	RUN(userfaultfd);
	RUN(guard);
	RUN(vma);
	RUN(vma_probe);
	RUN(vfio_ranges);
	return 0;
}
