/* SPDX-License-Identifier: MIT */
/*
 * test_attack4_mp_creds.c - attacks on who may attach (issue 17, iovm/mp.h:
 * "only the owner's user, or members of a group the owner names, may
 * attach; anyone else gets a clear error and nothing is mapped"). As
 * root, children become nobody (65534) with various groups: refused ones
 * must have nothing open or mapped afterwards; members by primary or by
 * supplementary group are let in. Unprivileged, only the same-user case
 * runs.
 */
#include <grp.h>

#include "attack4_mp.h"

#define HEAP (UINT64_C(4) << 20)
#define GROUP 4242

static const char *g_name;

/* Become nobody with primary group @gid and supplementary groups @sup[0..n). */
static void become(gid_t gid, const gid_t *sup, size_t n)
{
	CHECK(setgroups(n, sup) == 0);
	CHECK(setgid(gid) == 0);
	CHECK(setuid(65534) == 0);
}

/* In a child: attach as told; 0 when the outcome was @want and nothing stayed behind on refusal. */
static int attach_as(gid_t gid, const gid_t *sup, size_t n, int want)
{
	pid_t pid = a4_fork();

	if (!pid) {
		struct iovm_ctx *att = (struct iovm_ctx *)1;
		int fds, maps, memfds, r;

		become(gid, sup, n);
		fds = a4_fd_count();
		maps = a4_map_count(&memfds);
		r = iovm_attach(g_name, "log_level=error", &att);
		CHECK_RET(r, want);
		if (r) {
			int memfds_after;

			EXPECT(att == (struct iovm_ctx *)1);
			EXPECT_MSG(iovm_error_detail()[0] != 0, "refused without a detail");
			EXPECT_EQ(a4_fd_count(), fds);
			/* Nothing of the share is mapped: not one memfd, hugetlb or /dev/shm mapping. */
			a4_map_count(&memfds_after);
			EXPECT_EQ(memfds_after, memfds);
			/*
			 * The first attach may set up the library's own once-per-process
			 * state; ASan's allocator maps a region for each size class it
			 * meets first, which a refused attach may well do.
			 */
			if (!TEST_ASAN)
				EXPECT_MSG(a4_map_count(NULL) <= maps + 1, "a refused attach left %d mappings",
					   a4_map_count(NULL) - maps);
		} else {
			void *p = iovm_dma_alloc(att, 64, 0, 0);

			CHECK(p != NULL);
			memset(p, 0x12, 64);
			CHECK_OK(iovm_close(att));
		}
		a4_child_exit();
	}
	return a4_wait(pid);
}

TEST(same_user)
{
	struct iovm_ctx *own = NULL;
	pid_t pid;

	g_name = share_name("a4cred-same");
	own = a4_share(g_name, HEAP);
	pid = a4_fork();
	if (!pid) {
		CHECK_OK(iovm_close(a4_attach(g_name)));
		a4_child_exit();
	}
	EXPECT_EQ(a4_wait(pid), 0);
	CHECK_OK(iovm_close(own));
}

TEST(strangers_and_members)
{
	struct iovm_share_params p = { .heap_size = HEAP, .page_size = 4096, .group = GROUP };
	const gid_t member = GROUP, other = GROUP + 1, nogroup = 65534;
	const gid_t both[2] = { GROUP + 1, GROUP };
	struct iovm_ctx *own;
	uint64_t free0, attaches;

	if (geteuid() != 0)
		SKIP_CASE("needs root to become another user");
	/* No group named: nobody is refused, whatever its groups. */
	g_name = share_name("a4cred-none");
	own = a4_share(g_name, HEAP);
	free0 = share_info(own).heap_free;
	attaches = share_info(own).attaches;
	EXPECT_EQ(attach_as(nogroup, NULL, 0, -EACCES), 0);
	EXPECT_EQ(attach_as(0, NULL, 0, -EACCES), 0); /* root's group is not root's user */
	EXPECT_EQ(attach_as(member, &member, 1, -EACCES), 0);
	EXPECT_EQ(share_info(own).attaches, attaches);
	a4_settled(own, 1, 0, free0);
	CHECK_OK(iovm_close(own));

	/* A group named: its members by primary or supplementary group, nobody else. */
	g_name = share_name("a4cred-group");
	CHECK_OK(iovm_open("log_level=error", &own));
	CHECK_RET(iovm_share(own, g_name, &p), 0);
	free0 = share_info(own).heap_free;
	EXPECT_EQ(attach_as(member, NULL, 0, 0), 0);
	EXPECT_MSG(attach_as(nogroup, &member, 1, 0) == 0,
		   "a member of the named group by a supplementary group only is refused");
	EXPECT_EQ(attach_as(other, both, 2, 0), 0);
	EXPECT_EQ(attach_as(other, &other, 1, -EACCES), 0);
	EXPECT_EQ(attach_as(nogroup, NULL, 0, -EACCES), 0);
	a4_settled(own, 1, 0, free0);
	CHECK_OK(iovm_close(own));
}

/* The owner is nobody; root attaching is another user: what happens is printed, nothing breaks. */
TEST(owner_is_another_user)
{
	_Atomic uint64_t *flag = a4_shared(4096);
	struct iovm_ctx *att = NULL;
	pid_t owner;
	int r;

	if (geteuid() != 0)
		SKIP_CASE("needs root to become another user");
	g_name = share_name("a4cred-nobody");
	owner = a4_fork();
	if (!owner) {
		struct iovm_ctx *o;

		become(65534, NULL, 0);
		o = a4_share(g_name, HEAP);
		flag[0] = 1;
		while (!flag[1])
			usleep(1000);
		a4_settled(o, 1, 0, UINT64_MAX);
		CHECK_OK(iovm_close(o));
		a4_child_exit();
	}
	for (int ms = 0; !flag[0]; ms++) {
		CHECK_MSG(ms < 30000, "the owner did not share");
		usleep(1000);
	}
	r = iovm_attach(g_name, "log_level=error", &att);
	printf("# root attaching to nobody's share: %d (%s)\n", r, r ? strerror(-r) : "let in");
	EXPECT(r == 0 || r == -EACCES);
	if (!r) {
		void *p = iovm_dma_alloc(att, 64, 0, 0);

		CHECK(p != NULL);
		CHECK_RET(iovm_share_check(att), 0);
		CHECK_OK(iovm_close(att));
	}
	flag[1] = 1;
	EXPECT_EQ(a4_wait_deadline(owner, 60), 0);
	munmap((void *)flag, 4096);
}

int main(void)
{
	a4_init();
	RUN(same_user);
	RUN(strangers_and_members);
	RUN(owner_is_another_user);
	return attack_status();
}
