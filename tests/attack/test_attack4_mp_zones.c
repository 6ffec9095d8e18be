/* SPDX-License-Identifier: MIT */
/*
 * test_attack4_mp_zones.c - attacks on "zones are found by name from
 * every process, with the same PA and contents" (issue 17, iovm/mp.h):
 * many processes reserving one name at once over dirtied memory, zones
 * freed by a process that did not make them, idempotence and refusals
 * across processes, a walk from an attached process, and reserve, lookup
 * and free racing from many processes, with deaths among them.
 */
#include "attack4_mp.h"

#define HEAP (UINT64_C(8) << 20)

struct ctl {
	_Atomic uint64_t go, ready, done, stop;
	_Atomic int64_t res[64];
	_Atomic uint64_t pa[64];
	_Atomic uint64_t nonzero[64];
	_Atomic uint64_t ops[64];
	char msg[256];
};

static const char *g_name;

static void spin_until(_Atomic uint64_t *v, uint64_t want)
{
	unsigned long n = 0;

	while (atomic_load(v) < want) {
		usleep(50);
		CHECK_MSG(++n < 600000ul, "waited half a minute for another process");
	}
}

/* Dirty the whole heap, then give it back: a zone must be zeroed over old bytes. */
static void dirty_heap(struct iovm_ctx *ctx)
{
	void *b[4096];
	unsigned n = 0;

	for (size_t sz = 1u << 20; sz >= 4096; sz /= 2)
		while (n < 4096 && (b[n] = iovm_dma_alloc(ctx, sz, 0, 0))) {
			memset(b[n], 0xee, sz);
			n++;
		}
	CHECK(n > 0);
	while (n)
		CHECK_OK(iovm_dma_free(ctx, b[--n]));
}

TEST(reserve_one_name_at_once)
{
	enum { N = 12 };
	struct ctl *ctl = a4_shared(sizeof(*ctl));
	struct iovm_share_info in;
	struct iovm_ctx *own;

	g_name = share_name("a4zrace");
	own = a4_share(g_name, HEAP);
	in = share_info(own);
	for (int round = 0; round < 10; round++) {
		char zname[32];
		pid_t kid[N];
		int created = 0;
		const struct iovm_zone *z;

		snprintf(zname, sizeof(zname), "a4-ring-%d", round);
		dirty_heap(own);
		memset(ctl, 0, sizeof(*ctl));
		for (int i = 0; i < N; i++) {
			kid[i] = a4_fork();
			if (!kid[i]) {
				struct iovm_ctx *att = a4_attach(g_name);
				const struct iovm_zone *mz;
				size_t len = 8192 + (size_t)round * 4096;

				atomic_fetch_add(&ctl->ready, 1);
				spin_until(&ctl->go, 1);
				ctl->res[i] = iovm_zone_reserve(att, zname, len, 4096, 0, &mz);
				if (ctl->res[i] >= 0) {
					ctl->pa[i] = mz->pa.addr;
					ctl->nonzero[i] = len - first_not(mz->va, len, 0) ? 1 + first_not(mz->va, len, 0) : 0;
					EXPECT(mz->va == iovm_dma_ptr(att, mz->pa));
					EXPECT(mz->len >= len);
					EXPECT(!strcmp(mz->name, zname));
				}
				atomic_fetch_add(&ctl->done, 1);
				spin_until(&ctl->stop, 1);
				CHECK_OK(iovm_close(att));
				a4_child_exit();
			}
		}
		spin_until(&ctl->ready, N);
		atomic_store(&ctl->go, 1);
		spin_until(&ctl->done, N);
		for (int i = 0; i < N; i++) {
			EXPECT_MSG(ctl->res[i] == 0 || ctl->res[i] == 1, "round %d process %d: reserve %lld",
				   round, i, (long long)ctl->res[i]);
			created += ctl->res[i] == 0;
			EXPECT_EQ(ctl->pa[i], ctl->pa[0]);
			EXPECT_MSG(ctl->nonzero[i] == 0,
				   "round %d process %d (reserve %lld): byte %llu of the zone is not zero",
				   round, i, (long long)ctl->res[i], (unsigned long long)ctl->nonzero[i] - 1);
		}
		EXPECT_MSG(created == 1, "round %d: %d processes created the zone", round, created);
		atomic_store(&ctl->stop, 1);
		for (int i = 0; i < N; i++)
			EXPECT_EQ(a4_wait_deadline(kid[i], 60), 0);
		/* The zone outlives every process that reserved it; the owner frees it. */
		CHECK_RET(iovm_zone_lookup(own, zname, &z), 0);
		EXPECT_EQ(z->pa.addr, ctl->pa[0]);
		CHECK_RET(iovm_zone_free(own, z), 0);
		a4_settled(own, 1, 0, in.heap_free);
	}
	CHECK_OK(iovm_close(own));
	munmap(ctl, sizeof(*ctl));
}

static int count_zone(void *arg, const struct iovm_zone *z)
{
	struct iovm_ctx *ctx = ((void **)arg)[0];
	unsigned *n = ((void **)arg)[1];

	EXPECT_MSG(z->va == iovm_dma_ptr(ctx, z->pa), "walk: zone %s's va is not this process's", z->name);
	(*n)++;
	return 0;
}

TEST(across_processes)
{
	struct ctl *ctl = a4_shared(sizeof(*ctl));
	const struct iovm_zone *z, *z2;
	struct iovm_share_info in;
	struct iovm_ctx *own;
	pid_t pid;
	char n31[32], n32[33];

	memset(n31, 'z', 31);
	n31[31] = 0;
	memset(n32, 'z', 32);
	n32[32] = 0;
	g_name = share_name("a4zacross");
	own = a4_share(g_name, HEAP);
	in = share_info(own);
	CHECK_RET(iovm_zone_reserve(own, n31, 100, 0, 0, &z), 0);
	memset(z->va, 0x31, 100);
	CHECK_RET(iovm_zone_reserve(own, n32, 100, 0, 0, &z), -EINVAL);
	CHECK_RET(iovm_zone_reserve(own, "a4-big", 65536, 65536, IOVM_DMA_BOUNDARY(16), &z), 0);
	EXPECT(z->pa.addr % 65536 == 0);
	memset(z->va, 0x42, 65536);
	EXPECT_EQ(share_info(own).zones, 2);
	pid = a4_fork();
	if (!pid) {
		struct iovm_ctx *att = a4_attach(g_name);
		unsigned n = 0;
		void *arg[2] = { att, &n };

		CHECK_RET(iovm_zone_lookup(att, n31, &z), 0);
		EXPECT(all_bytes(z->va, 100, 0x31));
		CHECK_RET(iovm_zone_walk(att, count_zone, arg), 0);
		EXPECT_EQ(n, 2);
		EXPECT_EQ(share_info(att).zones, 2);
		/* Idempotent here too; refused when it cannot satisfy; flags checked either way. */
		CHECK_RET(iovm_zone_reserve(att, "a4-big", 4096, 4096, 0, &z2), 1);
		CHECK_RET(iovm_zone_reserve(att, "a4-big", 65536, 65536, IOVM_DMA_BOUNDARY(16), &z2), 1);
		EXPECT(all_bytes(z2->va, 65536, 0x42));
		CHECK_RET(iovm_zone_reserve(att, "a4-big", 65537, 0, 0, &z2), -EEXIST);
		CHECK_RET(iovm_zone_reserve(att, "a4-big", 4096, UINT64_C(1) << 29, 0, &z2), -EEXIST);
		CHECK_RET(iovm_zone_reserve(att, "a4-big", 4096, 0, 1u << 31, &z2), -EINVAL);
		CHECK_RET(iovm_zone_reserve(att, "a4-big", 4096, 3, 0, &z2), -EINVAL);
		CHECK_RET(iovm_zone_reserve(att, "a4-big", 0, 0, 0, &z2), -EINVAL);
		/* A zone made here, with KEEP accepted and meaning nothing more. */
		CHECK_RET(iovm_zone_reserve(att, "a4-child", 5000, 0, IOVM_DMA_KEEP | IOVM_DMA_ZERO, &z2), 0);
		memset(z2->va, 0xc5, 5000);
		ctl->pa[0] = z2->pa.addr;
		/* Free a zone the owner made. */
		CHECK_RET(iovm_zone_lookup(att, "a4-big", &z2), 0);
		CHECK_RET(iovm_zone_free(att, z2), 0);
		CHECK_RET(iovm_zone_lookup(att, "a4-big", &z2), -ENOENT);
		CHECK_OK(iovm_close(att));
		a4_child_exit();
	}
	EXPECT_EQ(a4_wait(pid), 0);
	/* The owner's zone is gone for the owner too; its old handle is refused. */
	CHECK_RET(iovm_zone_lookup(own, "a4-big", &z2), -ENOENT);
	CHECK_RET(iovm_zone_free(own, z), -EINVAL);
	/* The child's zone outlived it, contents and PA intact. */
	CHECK_RET(iovm_zone_lookup(own, "a4-child", &z2), 0);
	EXPECT_EQ(z2->pa.addr, ctl->pa[0]);
	EXPECT(all_bytes(z2->va, 5000, 0xc5));
	EXPECT_EQ(share_info(own).zones, 2);
	CHECK_RET(iovm_zone_free(own, z2), 0);
	CHECK_RET(iovm_zone_free(own, z2), -EINVAL);
	CHECK_RET(iovm_zone_lookup(own, n31, &z), 0);
	CHECK_RET(iovm_zone_free(own, z), 0);
	EXPECT_EQ(share_info(own).zones, 0);
	a4_settled(own, 1, 0, in.heap_free);
	CHECK_OK(iovm_close(own));
	munmap(ctl, sizeof(*ctl));
}

/*
 * 8 processes reserve, look up and free zones of 6 names at random; one
 * in four rounds some are killed. Whatever interleaving: each call's
 * result is one the header allows, and at the end the heap is whole and, once the zones are
 * freed, all free.
 */
static int free_all_zones_fn(void *arg, const struct iovm_zone *z)
{
	char (*names)[32] = arg;

	for (int i = 0; i < 64; i++)
		if (!names[i][0]) {
			snprintf(names[i], 32, "%s", z->name);
			break;
		}
	return 0;
}

static void free_all_zones(struct iovm_ctx *ctx)
{
	char names[64][32];
	const struct iovm_zone *z;

	memset(names, 0, sizeof(names));
	CHECK_RET(iovm_zone_walk(ctx, free_all_zones_fn, names), 0);
	for (int i = 0; i < 64 && names[i][0]; i++)
		if (iovm_zone_lookup(ctx, names[i], &z) == 0)
			CHECK_RET(iovm_zone_free(ctx, z), 0);
}

static void zone_worker(struct ctl *ctl, int me, uint64_t seed)
{
	struct iovm_ctx *att = a4_attach(g_name);

	atomic_fetch_add(&ctl->ready, 1);
	spin_until(&ctl->go, 1);
	while (!atomic_load(&ctl->stop)) {
		uint64_t r = test_rand(&seed);
		char zname[32];
		const struct iovm_zone *z;
		int ret;

		snprintf(zname, sizeof(zname), "a4-z%u", (unsigned)(r % 6));
		switch ((r >> 8) % 3) {
		case 0:
			ret = iovm_zone_reserve(att, zname, 4096 * (1 + r % 6), 4096, 0, &z);
			if (ret != 0 && ret != 1) {
				snprintf(ctl->msg, sizeof(ctl->msg), "reserve(%s): %d", zname, ret);
				_exit(1);
			}
			break;
		case 1:
			ret = iovm_zone_lookup(att, zname, &z);
			if (ret != 0 && ret != -ENOENT) {
				snprintf(ctl->msg, sizeof(ctl->msg), "lookup(%s): %d", zname, ret);
				_exit(1);
			}
			break;
		default:
			ret = iovm_zone_lookup(att, zname, &z);
			if (ret == 0) {
				ret = iovm_zone_free(att, z);
				if (ret != 0 && ret != -EINVAL) {
					snprintf(ctl->msg, sizeof(ctl->msg), "free(%s): %d", zname, ret);
					_exit(1);
				}
			}
			break;
		}
		ctl->ops[me]++;
	}
	CHECK_OK(iovm_close(att));
	a4_child_exit();
}

TEST(reserve_lookup_free_storm)
{
	enum { N = 8 };
	struct ctl *ctl = a4_shared(sizeof(*ctl));
	uint64_t seed = a4_seed();
	struct iovm_share_info in;
	struct iovm_ctx *own;
	uint64_t total = 0;

	g_name = share_name("a4zstorm");
	own = a4_share(g_name, HEAP);
	in = share_info(own);
	for (int round = 0; round < 12; round++) {
		pid_t kid[N];

		memset(ctl, 0, sizeof(*ctl));
		for (int i = 0; i < N; i++) {
			uint64_t s = test_rand(&seed);

			kid[i] = a4_fork();
			if (!kid[i])
				zone_worker(ctl, i, s);
		}
		spin_until(&ctl->ready, N);
		atomic_store(&ctl->go, 1);
		for (int ms = 0; ms < 100; ms++) {
			usleep(1000);
			if (round % 4 == 3 && ms % 25 == 0) {
				int v = (int)(test_rand(&seed) % N);

				if (kid[v]) {
					usleep(test_rand(&seed) % 500);
					a4_kill(kid[v]);
					kid[v] = 0;
				}
			}
		}
		atomic_store(&ctl->stop, 1);
		for (int i = 0; i < N; i++) {
			if (!kid[i])
				continue;
			int st = a4_wait_deadline(kid[i], 60);

			EXPECT_MSG(st == 0, "round %d worker %d ended with %d: %s", round, i, st, ctl->msg);
		}
		for (int i = 0; i < N; i++)
			total += ctl->ops[i];
		CHECK_RET(iovm_share_check(own), 0);
		free_all_zones(own);
		a4_settled(own, 1, 0, in.heap_free);
		EXPECT_EQ(share_info(own).zones, 0);
	}
	printf("# %llu zone calls\n", (unsigned long long)total);
	CHECK_OK(iovm_close(own));
	munmap(ctl, sizeof(*ctl));
}

int main(void)
{
	a4_init();
	RUN(reserve_one_name_at_once);
	RUN(across_processes);
	RUN(reserve_lookup_free_storm);
	return attack_status();
}
