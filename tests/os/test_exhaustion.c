/* SPDX-License-Identifier: MIT */
/*
 * test_exhaustion.c - hugepage exhaustion at first touch gives -ENOMEM, never
 * a SIGBUS: through MADV_POPULATE_WRITE and through the guarded touch of
 * older kernels. It takes every free hugepage for a moment, so it runs alone
 * in the suite; other processes may take, give back or add pages meanwhile.
 */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/compiler.h"
#include "os/hugepage.h"
#include "os/memfd.h"
#include "os/populate.h"
#include "harness.h"
#include "hugepage_util.h"

/*
 * A hugetlb mapping of more pages than the pool can ever give (its
 * persistent pages and the surplus it may add), without reservation: a
 * touch past the pool is a SIGBUS, and the populate paths must turn it into
 * -ENOMEM. The pool is the machine's: another process may grow it while
 * this runs (then the mapping may fit, and the case is asked again with a
 * larger one), or take pages (which only ends it sooner).
 */
static bool pool_limit(uint64_t *pages)
{
	uint64_t total, free, over = 0;

	if (os_hugepage_pool(SZ_2M, -1, &total, &free))
		return false;
	hp_read_u64("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_overcommit_hugepages", &over);
	*pages = total + over;
	return true;
}

static void exhaust(int (*populate)(void *, size_t, uint64_t), const char *how)
{
	uint64_t limit, now;
	int ret = 0, fd;

	for (int tries = 0; tries < 5; tries++) {
		uint64_t n;
		uint8_t *p;

		CHECK(pool_limit(&limit));
		n = limit + 64;
		CHECK_OK(os_memfd_create("exhaust", SZ_2M, &fd));
		CHECK_OK(os_memfd_extend(fd, n * SZ_2M));
		p = mmap(NULL, n * SZ_2M, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
		CHECK(p != MAP_FAILED);
		ret = populate(p, n * SZ_2M, SZ_2M);
		munmap(p, n * SZ_2M);
		close(fd);
		if (ret == -ENOMEM)
			break;
		/* Only a pool that grew under us excuses a mapping that fit. */
		CHECK(pool_limit(&now));
		CHECK_MSG(now >= n, "%s of %" PRIu64 " pages, more than the pool's %" PRIu64 ", gave %d", how, n,
			  now, ret);
	}
	CHECK_MSG(ret == -ENOMEM, "%s did not report exhaustion: %d", how, ret);
}

TEST(hugepage_exhaustion_is_enomem)
{
	uint8_t *page = aligned_alloc(4096, 4 * 4096);

	exhaust(os_populate, "MADV_POPULATE_WRITE");
	exhaust(os_populate_touch, "the SIGBUS-guarded touch");
	/* The guard is disarmed afterwards: ordinary memory still populates. */
	CHECK(page != NULL);
	CHECK_OK(os_populate_touch(page, 4 * 4096, 4096));
	CHECK_EQ(os_populate_touch(page + 1, 4096, 4096), -EINVAL);
	free(page);
}

int main(void)
{
	struct hp_contender c;
	uint64_t over = 0;
	int ret;

	test_init();
	if (!os_hugepage_supported(SZ_2M))
		SKIP("no 2 MiB hugepages in this kernel");
	/* Surplus pages come from the machine's memory: exhausting many would take all of it. */
	hp_read_u64("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_overcommit_hugepages", &over);
	if (over > 1024)
		SKIP("nr_overcommit_hugepages is %" PRIu64 ": exhausting the pool would exhaust the machine", over);
	RUN(hugepage_exhaustion_is_enomem);
	/* Again while another process holds pages and takes and gives back others. */
	ret = hp_contender_start(&c, 3, 2);
	CHECK(ret == 0 || ret == -EAGAIN);
	printf("# while another process holds %u hugepages and takes 2 more, on and off\n", c.held);
	RUN(hugepage_exhaustion_is_enomem);
	CHECK_MSG(hp_contender_stop(&c), "the contending process died");
	return 0;
}
