/* SPDX-License-Identifier: MIT */
/*
 * attack25_foreign.c - a move that fails beside another userfaultfd's
 * registration (test_attack25_moves).
 *
 * Registered memory (pages 0-3 of an 8-page range, pinned, and a region
 * of the cache) is followed by a mapping (pages 4-7) that a userfaultfd of
 * the test's own watches. One mremap(MREMAP_MAYMOVE|MREMAP_FIXED) of all
 * eight pages: Linux refuses it (EFAULT: it moves several mappings in one
 * call only where no userfaultfd watches them) and moves nothing. Then:
 *
 *   reg.h: "Another userfaultfd's registrations are left alone (Linux
 *   refuses to unregister them): a range holding one goes the userfaultfd
 *   way"; "an mremap() that may move memory invalidates it if it moves";
 *   guarantees.md: "A hooked call (with IOVM_HOOKS=all) that fails
 *   invalidates what it may have changed: ... an mremap that could have
 *   moved memory and failed or stayed in place leaves it registered and
 *   watched"; the cache: "invalidates the pages the application takes
 *   away (only those: the rest of a region stays usable)".
 *
 * So the registered pages, still mapped where they were, stay valid for
 * the MR and the region, and the device reads them. Found broken with
 * IOVM_HOOKS=all (every run): both counted every page invalid, as the
 * hook, unable to watch the whole range again, invalidated all of it;
 * without the hooks (the userfaultfd way) they stayed valid. Fixed the
 * same day: only the pages not watched again are invalidated
 * (monitor_hook_rewatch()).
 */
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#include "attack/attack25.h"

A25_HARNESS(foreign);

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

/* A userfaultfd of the test's own (not iovm's), or -1. */
static int own_uffd(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd >= 0 && ioctl(fd, UFFDIO_API, &api)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

TEST(failed_move_beside_foreign_uffd)
{
	struct a17q a;
	unsigned rounds = a25_rounds(6), failed = 0, moved = 0;
	int uffd;

	uffd = own_uffd();
	if (uffd < 0)
		SKIP_CASE("no userfaultfd of the test's own here: %s", strerror(errno));
	a17q_open(&R, &a, 64 << 10, IOVM_QUEUE_POLLED);
	for (unsigned r = 0; r < rounds; r++) {
		uint8_t *x = a25_map_at(A25_AREA(17), 8 * PG), *y = A25_AREA(17) + A25_MB2 * 4, *p;
		uint32_t tag = a25_tag();
		struct uffdio_register reg = { .range = { (uintptr_t)(x + 4 * PG), 4 * PG },
					       .mode = UFFDIO_REGISTER_MODE_MISSING };
		struct iovm_mr *pm, *rm;
		size_t off = r % 2 ? 40 : 0;

		CHECK(x != NULL);
		a25_fill(x, 8, tag);
		CHECK_OK(ioctl(uffd, UFFDIO_REGISTER, &reg));
		CHECK_OK(iovm_mr_reg(R.dom, x + off, 4 * PG - off, A25_ACC, &pm));
		CHECK_OK(iovm_rcache_get(RC, x, 4 * PG, A25_ACC, &rm));
		CHECK_EQ(a25_info(pm).valid_pages, 4);
		p = mremap(x, 8 * PG, 8 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, y);
		if (p == MAP_FAILED) {
			unsigned char v;

			failed++;
			/* Nothing moved: the pages are where they were, and nothing is at @y. */
			for (unsigned i = 0; i < 8; i++)
				CHECK(mincore(x + i * PG, PG, &v) == 0 && mincore(y + i * PG, PG, &v) != 0);
			for (unsigned w = 0; w < 2; w++) {
				struct iovm_mr *o = w ? rm : pm;
				struct iovm_mr_info inf = a25_info(o);

				CHECK_MSG(inf.valid_pages == 4, "round %u: an mremap() that failed (%s) and moved nothing left "
					  "%llu of 4 pages of the %s valid", r, strerror(EFAULT),
					  (unsigned long long)inf.valid_pages, w ? "cache's region" : "MR");
				for (unsigned i = 0; i < 4; i += 3) {
					const char *bad = a25_kept_page(&a, o, x + i * PG + (i ? 0 : off), tag, i);

					CHECK_MSG(!bad, "round %u, page %u after the failed mremap(): %s", r, i, bad);
				}
			}
		} else {
			/* A kernel that moves it: the registered pages went. */
			const char *bad = a25_gone_page(&a, pm, x + off, NULL, 0, 0);

			moved++;
			CHECK(p == y);
			CHECK_MSG(!bad, "round %u, the move succeeded: %s", r, bad);
			x = y;
		}
		CHECK_OK(iovm_rcache_put(RC, rm));
		CHECK_OK(iovm_mr_dereg(pm));
		CHECK_OK(munmap(x, 8 * PG)); /* also takes the test's userfaultfd registration away */
	}
	close(uffd);
	printf("# [%s] moves refused by the kernel %u, made %u\n", test_current, failed, moved);
	CHECK(failed + moved > 0);
	a17q_close(&R, &a);
}

A25_CASE(failed_move_beside_foreign_uffd)
