/* SPDX-License-Identifier: MIT */
/*
 * test_cgroup_limit.c - a hugetlb cgroup limit hit at first touch is a clean
 * ENOMEM. Such a limit does not stop mmap (the reservation is not charged to
 * hugetlb.<size>.max); the first touch past it is a SIGBUS. A child process
 * is put in a cgroup allowed two 2 MiB hugepages and asks for eight, through
 * the heap and through both populate paths. Root and cgroup v2's hugetlb
 * controller are needed; elsewhere it skips, saying why.
 */
#include <fcntl.h>
#include <mntent.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os/hugepage.h"
#include "os/memfd.h"
#include "os/populate.h"
#include "os/sysfs.h"
#include "mem/mem_util.h"
#include "hugepage_util.h"

#define LIMIT_BYTES (4 << 20)

static char cg_root[256], cg_dir[320];

static bool find_cgroup2_hugetlb(void)
{
	struct mntent *m;
	FILE *f = setmntent("/proc/self/mounts", "r");
	char path[300], buf[256];
	bool found = false;

	if (!f)
		return false;
	while ((m = getmntent(f))) {
		if (strcmp(m->mnt_type, "cgroup2"))
			continue;
		snprintf(path, sizeof(path), "%s/cgroup.controllers", m->mnt_dir);
		if (!sysfs_read(path, buf, sizeof(buf)) && strstr(buf, "hugetlb")) {
			snprintf(cg_root, sizeof(cg_root), "%s", m->mnt_dir);
			found = true;
			break;
		}
	}
	endmntent(f);
	return found;
}

/* A failed check exits at once: the cgroup must not outlive the test. */
static void cleanup(void)
{
	if (cg_dir[0])
		rmdir(cg_dir);
}

static int setup(void)
{
	char path[400], val[32];

	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", cg_root);
	sysfs_write(path, "+hugetlb"); /* may already be on */
	snprintf(cg_dir, sizeof(cg_dir), "%s/iovm-test-%d", cg_root, (int)getpid());
	if (mkdir(cg_dir, 0755))
		return -errno;
	atexit(cleanup);
	snprintf(path, sizeof(path), "%s/hugetlb.2MB.max", cg_dir);
	snprintf(val, sizeof(val), "%d", LIMIT_BYTES);
	return sysfs_write(path, val);
}

/*
 * The pool is the machine's: another process may take its pages while the
 * child runs, and a refusal is then the pool's, not the limit's. The child
 * notes whether fewer than 8 pages were to be had around each step, and a
 * failure with the pool that short is a skip, not a failure.
 */
#define CHILD_POOL_SHORT 77

static bool pool_short;

static void note_pool(void)
{
	if (hugepages_available(SZ_2M, -1) < 8)
		pool_short = true;
}

/* A check of the child's: 1 when it failed, said on stderr. */
static int child_check(bool ok, const char *what)
{
	if (ok)
		return 0;
	fprintf(stderr, "child: %s (errno %d)\n", what, errno);
	return 1;
}

/* In the child, inside the cgroup. Returns the number of failed checks. */
static int child(void)
{
	struct iovm_ctx *ctx;
	int fails = 0, fd, ret;
	void *m, *small;
	uint8_t *p;

	if (iovm_open("page_size=2M,host_pa=off", &ctx))
		return 100;
	/* Eight hugepages where two are allowed: refused, not killed. */
	note_pool();
	errno = 0;
	m = iovm_dma_alloc(ctx, 16 << 20, 0, 0);
	fails += child_check(m == NULL, "16 MiB allocated beyond the limit");
	fails += child_check(errno == ENOMEM, "refused, but not with ENOMEM");
	/* Within the limit, memory still comes: once the pool has a page to give (others take them too). */
	for (unsigned tries = 0; !(small = iovm_dma_alloc(ctx, 2 << 20, 0, 0)) && tries < 50; tries++)
		hp_nap_us(2000);
	if (!small)
		note_pool(); /* the pool may be dry now: others' pages, or their reservations */
	fails += child_check(small != NULL, "2 MiB within the limit not allocated");
	fails += child_check(iovm_dma_free(ctx, small) == 0, "the 2 MiB not freed");
	note_pool();
	iovm_close(ctx);

	/* The two populate paths, directly. */
	if (os_memfd_create("cg", SZ_2M, &fd) || os_memfd_extend(fd, 16 << 20))
		return fails + 1;
	p = mmap(NULL, 16 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		note_pool(); /* a hugetlb mmap reserves its pages: refused when the pool is short */
		return pool_short ? CHILD_POOL_SHORT : fails + 1;
	}
	note_pool();
	ret = os_populate(p, 16 << 20, SZ_2M);
	fails += child_check(ret == -ENOMEM, "MADV_POPULATE_WRITE past the limit did not give -ENOMEM");
	munmap(p, 16 << 20);
	os_memfd_punch(fd, 0, 16 << 20);
	p = mmap(NULL, 16 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return fails + 1;
	ret = os_populate_touch(p, 16 << 20, SZ_2M);
	fails += child_check(ret == -ENOMEM, "the guarded touch past the limit did not give -ENOMEM");
	note_pool();
	munmap(p, 16 << 20);
	close(fd);
	return fails && pool_short ? CHILD_POOL_SHORT : fails;
}

/* One child in the cgroup: its exit status; *hit set when the cgroup counted a refusal. */
static int run_child(bool *hit)
{
	char path[400], pid[32], events[256];
	int status;
	pid_t c;

	snprintf(path, sizeof(path), "%s/hugetlb.2MB.events", cg_dir);
	c = fork();
	CHECK(c >= 0);
	if (c == 0) {
		snprintf(path, sizeof(path), "%s/cgroup.procs", cg_dir);
		cg_dir[0] = '\0'; /* the parent removes it */
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		if (sysfs_write(path, pid))
			_exit(101);
		_exit(child());
	}
	CHECK_EQ(waitpid(c, &status, 0), c);
	/* Killed by SIGBUS would be the bug this test is about. */
	CHECK_MSG(WIFEXITED(status), "the child died of signal %d", WTERMSIG(status));
	CHECK_OK(sysfs_read(path, events, sizeof(events)));
	*hit = strncmp(events, "max 0", 5) != 0;
	return WEXITSTATUS(status);
}

TEST(cgroup_limit_is_enomem)
{
	bool hit = false, short_seen = false;
	int ret;

	if (hugepages_available(SZ_2M, -1) < 8)
		SKIP_CASE("fewer than 8 free 2 MiB hugepages at the moment");
	ret = setup();
	if (ret)
		SKIP("cannot make a hugetlb cgroup under %s: %s", cg_root, strerror(-ret));
	/*
	 * The cgroup is charged before a page is taken from the pool, so the
	 * third page is refused by the limit whenever the pool had three to
	 * give. Other processes may have drained it just then: a few tries.
	 */
	for (unsigned tries = 0; tries < 5 && !hit; tries++) {
		ret = run_child(&hit);
		if (ret == CHILD_POOL_SHORT) {
			short_seen = true;
			continue;
		}
		CHECK_MSG(ret == 0, "the child failed %d checks", ret);
	}
	CHECK_EQ(rmdir(cg_dir), 0);
	cg_dir[0] = '\0';
	if (!hit && (short_seen || hugepages_available(SZ_2M, -1) < 8))
		SKIP_CASE("other processes left too few free hugepages for the limit to be reached");
	CHECK_MSG(hit, "the limit was never hit");
}

int main(void)
{
	struct hp_contender hc;
	int ret;

	test_init();
	if (geteuid() != 0)
		SKIP("a hugetlb cgroup limit needs root to set up");
	if (!os_hugepage_supported(SZ_2M))
		SKIP("no 2 MiB hugepages in this kernel");
	if (!find_cgroup2_hugetlb())
		SKIP("no cgroup v2 hierarchy with the hugetlb controller");
	RUN(cgroup_limit_is_enomem);
	/* Again while another process holds pages and takes and gives back others. */
	ret = hp_contender_start(&hc, 3, 2);
	CHECK(ret == 0 || ret == -EAGAIN);
	printf("# while another process holds %u hugepages and takes 2 more, on and off\n", hc.held);
	RUN(cgroup_limit_is_enomem);
	CHECK_MSG(hp_contender_stop(&hc), "the contending process died");
	return 0;
}
