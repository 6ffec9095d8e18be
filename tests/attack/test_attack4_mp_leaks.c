/* SPDX-License-Identifier: MIT */
/*
 * test_attack4_mp_leaks.c - attacks on "nothing leaks outside" (issue 17,
 * iovm/mp.h: "nothing is left outside the processes: the memfds go with
 * the last process that maps them, the socket with the owner"):
 * descriptors, mappings and locked memory counted before and after
 * attach/close cycles, failed attaches, share/close cycles, attached
 * processes that come and go (closing or killed) under an owner; nothing
 * in /dev/shm or /dev/hugepages; and a 2 MiB-page share killed whole.
 */
#include "attack2.h"
#include "attack4_mp.h"

#define HEAP (UINT64_C(4) << 20)

struct counts {
	int fds, maps, memfd_maps;
	long long locked;
};

static struct counts counts_now(void)
{
	struct counts c;

	c.fds = a4_fd_count();
	c.maps = a4_map_count(&c.memfd_maps);
	c.locked = vm_locked();
	return c;
}

static void expect_same(struct counts a, struct counts b, const char *what)
{
	EXPECT_MSG(a.fds == b.fds, "%s: %d descriptors before, %d after", what, a.fds, b.fds);
	/* The sanitizers' runtimes map and unmap memory of their own as threads come and go. */
	if (!TEST_TSAN && !TEST_ASAN)
		EXPECT_MSG(a.maps == b.maps, "%s: %d mappings before, %d after", what, a.maps, b.maps);
	EXPECT_MSG(a.memfd_maps == b.memfd_maps, "%s: %d memfd mappings before, %d after", what,
		   a.memfd_maps, b.memfd_maps);
	EXPECT_MSG(a.locked == b.locked, "%s: VmLck %lld before, %lld after", what, a.locked, b.locked);
}

static int dev_entries(const char *name)
{
	return a4_dir_matches("/dev/shm", "iovm") + a4_dir_matches("/dev/shm", name) +
	       a4_dir_matches("/dev/hugepages", NULL);
}

TEST(attacher_cycles)
{
	const char *name = share_name("a4leak");
	struct iovm_ctx *own;
	uint64_t free0;
	int dev0 = dev_entries(name);
	pid_t pid;

	own = a4_share(name, HEAP);
	free0 = share_info(own).heap_free;
	pid = a4_fork();
	if (!pid) {
		struct counts before, after;
		struct iovm_ctx *att;

		/* One cycle first: what the library sets up once per process is not a leak. */
		att = a4_attach(name);
		CHECK_OK(iovm_close(att));
		before = counts_now();
		for (int i = 0; i < 50; i++) {
			const struct iovm_zone *z;
			void *p;

			att = a4_attach(name);
			p = iovm_dma_alloc(att, 4096 * (1 + i % 7), 0, i % 2 ? IOVM_DMA_KEEP : 0);
			CHECK(p != NULL);
			CHECK_RET(iovm_zone_reserve(att, "a4-leak", 4096, 0, 0, &z), i ? 1 : 0);
			if (i % 2)
				CHECK_RET(iovm_dma_free(att, p), 0);
			CHECK_OK(iovm_close(att));
		}
		after = counts_now();
		if (after.maps != before.maps) {
			/* Once more as many: a leak grows with the cycles, a one-off (an arena) does not. */
			struct counts mid = after;

			for (int i = 0; i < 50; i++)
				CHECK_OK(iovm_close(a4_attach(name)));
			after = counts_now();
			printf("# mappings: %d before, %d after 50 cycles, %d after 50 more\n", before.maps,
			       mid.maps, after.maps);
			before.maps = mid.maps;
		}
		expect_same(before, after, "50 attach/close cycles");
		/* Failed attaches keep nothing either. */
		before = counts_now();
		for (int i = 0; i < 50; i++) {
			att = NULL;
			CHECK_RET(iovm_attach("a4-nobody-shares-this", "", &att), -ENOENT);
			CHECK_RET(iovm_attach(name, "no_such_option=1", &att), -EINVAL);
		}
		after = counts_now();
		expect_same(before, after, "100 failed attaches");
		a4_child_exit();
	}
	EXPECT_EQ(a4_wait(pid), 0);
	{
		const struct iovm_zone *z;

		CHECK_RET(iovm_zone_lookup(own, "a4-leak", &z), 0);
		CHECK_RET(iovm_zone_free(own, z), 0);
	}
	a4_settled(own, 1, 0, free0);
	CHECK_OK(iovm_close(own));
	EXPECT_EQ(dev_entries(name), dev0);
}

/* An owner's descriptors and mappings while processes come and go, and after it closes. */
TEST(owner_side)
{
	const char *name = share_name("a4leako");
	struct counts before, shared, after;
	struct iovm_ctx *own, *warm;
	uint64_t free0;

	/* Warm up once: a context and a share made and closed. */
	warm = a4_share(share_name("a4warm"), HEAP);
	CHECK_OK(iovm_close(warm));
	before = counts_now();
	own = a4_share(name, HEAP);
	free0 = share_info(own).heap_free;
	shared = counts_now();
	for (int i = 0; i < 30; i++) {
		pid_t pid = a4_fork();

		if (!pid) {
			struct iovm_ctx *att = a4_attach(name);

			CHECK(iovm_dma_alloc(att, 1000, 0, 0) != NULL);
			if (i % 3 == 0)
				pause(); /* killed below */
			CHECK_OK(iovm_close(att));
			a4_child_exit();
		}
		if (i % 3 == 0) {
			unsigned ms = 0;

			while (share_info(own).processes < 2 && ms++ < 30000)
				usleep(1000);
			a4_kill(pid);
		} else {
			EXPECT_EQ(a4_wait(pid), 0);
		}
	}
	a4_settled(own, 1, 0, free0);
	/*
	 * The owner's server closes a peer's connection and pidfd when it sees
	 * the peer gone: a moment after the peer's exit, not before it.
	 */
	for (unsigned ms = 0; ms < 10000 && counts_now().fds != shared.fds; ms++)
		usleep(1000);
	after = counts_now();
	expect_same(shared, after, "an owner after 30 processes came and went");
	CHECK_OK(iovm_close(own));
	after = counts_now();
	expect_same(before, after, "iovm_open + iovm_share + iovm_close");
	/* Sharing again and again. */
	for (int i = 0; i < 20; i++)
		CHECK_OK(iovm_close(a4_share(name, HEAP)));
	after = counts_now();
	expect_same(before, after, "20 share/close cycles");
}

/* A 2 MiB-page share whose every process is killed: nothing left in the hugetlbfs or /dev/shm. */
TEST(hugepage_share_killed_whole)
{
	const char *name = share_name("a4huge");
	struct iovm_share_params p = { .heap_size = UINT64_C(4) << 20, .page_size = UINT64_C(2) << 20,
				       .group = -1 };
	_Atomic int64_t *res = a4_shared(4096);
	int dev0 = dev_entries(name), r;
	pid_t owner, other;

	owner = a4_fork();
	if (!owner) {
		struct iovm_ctx *ctx;
		void *b;

		CHECK_OK(iovm_open("log_level=error", &ctx));
		r = iovm_share(ctx, name, &p);
		if (r == 0) {
			b = iovm_dma_alloc(ctx, 1u << 20, 0, 0);
			CHECK(b != NULL);
			memset(b, 1, 1u << 20);
		}
		res[0] = r;
		res[1] = 1;
		for (;;)
			pause();
	}
	for (int ms = 0; !res[1]; ms++) {
		CHECK_MSG(ms < 30000, "the owner did not answer");
		usleep(1000);
	}
	r = (int)res[0];
	if (r == -EOPNOTSUPP || r == -ENOMEM) {
		a4_kill(owner);
		SKIP_CASE("no 2 MiB pages free for a share: %s", strerror(-r));
	}
	CHECK_RET(r, 0);
	other = a4_fork();
	if (!other) {
		struct iovm_ctx *att = a4_attach(name);
		void *k;

		EXPECT_EQ(share_info(att).page_size, UINT64_C(2) << 20);
		k = iovm_dma_alloc(att, 100, 0, IOVM_DMA_KEEP);
		EXPECT_MSG(k != NULL, "100 bytes from a 4 MiB heap of 2 MiB pages holding 1 MiB: %s (%s)",
			   strerror(errno), iovm_error_detail());
		res[2] = 1 + !!atomic_load(&attack_broken);
		for (;;)
			pause();
	}
	for (int ms = 0; !res[2]; ms++) {
		CHECK_MSG(ms < 30000, "the attached process did not answer");
		usleep(1000);
	}
	EXPECT_MSG(res[2] == 1, "the attached process broke a promise (above)");
	a4_kill(owner);
	a4_kill(other);
	EXPECT_EQ(dev_entries(name), dev0);
	CHECK_RET(iovm_attach(name, "", &(struct iovm_ctx *){ NULL }), -ENOENT);
	munmap((void *)res, 4096);
}

int main(void)
{
	a4_init();
	RUN(attacher_cycles);
	RUN(owner_side);
	RUN(hugepage_share_killed_whole);
	return attack_status();
}
