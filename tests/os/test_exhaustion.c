/* SPDX-License-Identifier: MIT */
/*
 * test_exhaustion.c - hugepage exhaustion at first touch gives -ENOMEM, never
 * a SIGBUS: through MADV_POPULATE_WRITE and through the guarded touch of
 * older kernels. It takes every free hugepage for a moment, so it runs alone.
 */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/compiler.h"
#include "os/hugepage.h"
#include "os/memfd.h"
#include "os/populate.h"
#include "harness.h"

/* A hugetlb mapping of more pages than exist, without reservation: a touch past the pool is a SIGBUS. */
static void exhaust(int (*populate)(void *, size_t, uint64_t), const char *how)
{
	uint64_t total, free, n;
	uint8_t *p;
	int fd;

	CHECK_OK(os_hugepage_pool(SZ_2M, -1, &total, &free));
	n = total + 4;
	CHECK_OK(os_memfd_create("exhaust", SZ_2M, &fd));
	CHECK_OK(os_memfd_extend(fd, n * SZ_2M));
	p = mmap(NULL, n * SZ_2M, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	CHECK(p != MAP_FAILED);
	CHECK_MSG(populate(p, n * SZ_2M, SZ_2M) == -ENOMEM, "%s did not report exhaustion", how);
	munmap(p, n * SZ_2M);
	close(fd);
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
	test_init();
	if (!os_hugepage_supported(SZ_2M))
		SKIP("no 2 MiB hugepages in this kernel");
	RUN(hugepage_exhaustion_is_enomem);
	return 0;
}
