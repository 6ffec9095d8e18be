/* SPDX-License-Identifier: MIT */
/*
 * test_attack16_storm.c - the shared heap's parcels (issue 17, iovm/mp.h)
 * under a storm: allocators commit and trim large blocks while followers
 * (domains with IOVM_DOMAIN_FOLLOW_HEAP) read and write each newest block
 * through their devices the moment it is published, a churner makes and
 * destroys following domains, and processes (the owner too) are killed
 * with SIGKILL at random. Contents are checked exactly; at the end the
 * heap is whole. IOVM_ATTACK16_ROUNDS soaks longer.
 */
#include <pthread.h>

#include "attack/attack16.h"

#define HEAP (UINT64_C(64) << 20)
#define NA 3
#define NF 2

struct mbox {
	_Atomic uint64_t seq, pa, len, seed, acks;
};

struct board {
	_Atomic uint64_t live; /* followers alive: bit k */
	_Atomic int stop;
	_Atomic uint64_t seen[NF];
	/*
	 * Allocators about to be killed: bit i. A dead allocator's block is
	 * freed by the recovery and may be another's at once, so followers
	 * leave its box alone from their next pass on (loops[k] counts the
	 * passes, which the killer waits for).
	 */
	_Atomic uint64_t doomed;
	_Atomic uint64_t loops[NF];
	struct mbox box[NA];
};

static const char *g_name;
static unsigned g_rounds = 25;

static struct board *board(struct iovm_ctx *ctx)
{
	const struct iovm_zone *z;

	CHECK_OK(iovm_zone_lookup(ctx, "a16board", &z));
	return z->va;
}

static void allocator(int rd, int wr, void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct board *b = board(ctx);
	struct mbox *m = &b->box[id];
	uint64_t s = 1000 + id;

	(void)rd;
	put64(wr, 1);
	for (unsigned round = 0; round < g_rounds; round++) {
		static const size_t aligns[] = { 0, 4096, A16_PARCEL, 2 * A16_PARCEL };
		size_t len = A16_MIB + (test_rand(&s) % (5 * A16_MIB)) / 4096 * 4096;
		uint64_t seed = (uint64_t)id << 32 | round, mask;
		uint8_t *p = iovm_dma_alloc(ctx, len, aligns[test_rand(&s) % 4], 0);
		iovm_pa_t pa;

		CHECK_MSG(p != NULL, "allocator %u: %zu: %s", id, len, strerror(errno));
		a16_fill(p, len, seed);
		CHECK_OK(iovm_dma_pa(ctx, p, &pa));
		m->pa = pa.addr;
		m->len = len;
		m->seed = seed;
		m->acks = 0;
		atomic_fetch_add(&m->seq, 1);
		/* Every live follower read its end and wrote its page. */
		for (unsigned ms = 0;; ms++) {
			mask = atomic_load(&b->live);
			if ((atomic_load(&m->acks) & mask) == mask)
				break;
			CHECK_MSG(ms < 60000, "allocator %u: followers %#llx never answered (%#llx)", id,
				  (unsigned long long)mask, (unsigned long long)m->acks);
			usleep(1000);
		}
		mask = atomic_load(&m->acks);
		for (unsigned k = 0; k < NF; k++)
			if (mask & (1u << k))
				CHECK_MSG(a16_bad(p + 4096 * k, 4096, ~seed ^ k, 0) < 0,
					  "allocator %u round %u: follower %u's device write is not there", id, round,
					  k);
		CHECK_MSG(a16_bad(p + NF * 4096, len - NF * 4096, seed, NF * 512) < 0,
			  "allocator %u round %u: block changed under its owner", id, round);
		CHECK_OK(iovm_dma_free(ctx, p));
	}
	put64(wr, 2);
	CHECK_EQ(get64(rd), 9);
	CHECK_OK(iovm_close(ctx));
	put64(wr, 3);
}

static void follower(int rd, int wr, void *arg)
{
	unsigned k = (unsigned)(uintptr_t)arg;
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct board *b = board(ctx);
	uint64_t last[NA] = { 0 };
	struct rig r;
	uint8_t *buf;

	(void)rd;
	a16_follow(&r, ctx);
	buf = iovm_dma_alloc(ctx, 8192, 4096, 0);
	CHECK(buf != NULL);
	atomic_fetch_or(&b->live, 1u << k);
	put64(wr, 1);
	while (!atomic_load(&b->stop)) {
		bool any = false;

		atomic_fetch_add(&b->loops[k], 1);
		for (unsigned i = 0; i < NA; i++) {
			struct mbox *m = &b->box[i];
			uint64_t seq = atomic_load(&m->seq), len, seed;
			struct iovm_completion c;
			uint8_t *p;

			if (seq == last[i] || (atomic_load(&m->acks) & (1u << k)) || (atomic_load(&b->doomed) & (1u << i)))
				continue;
			last[i] = seq;
			any = true;
			len = m->len;
			seed = m->seed;
			p = iovm_dma_ptr(ctx, IOVM_PA(m->pa));
			CHECK(p != NULL);
			/* Read its last page through the device: mapped before the allocation returned. */
			c = a16_copy(&r, a16_iova(&r, p + len - 4096), a16_iova(&r, buf), 4096);
			CHECK_MSG(c.status == IOVM_STATUS_SUCCESS, "follower %u: read of a new block: status %u at %#llx",
				  k, c.status, (unsigned long long)c.fault_addr);
			CHECK_MSG(a16_bad(buf, 4096, seed, (len - 4096) / 8) < 0,
				  "follower %u: new block's last page differs on the device", k);
			/* Write its page k through the device. */
			a16_fill(buf + 4096, 4096, ~seed ^ k);
			c = a16_copy(&r, a16_iova(&r, buf + 4096), a16_iova(&r, p + 4096 * k), 4096);
			CHECK_MSG(c.status == IOVM_STATUS_SUCCESS, "follower %u: write: status %u", k, c.status);
			atomic_fetch_or(&m->acks, 1u << k);
			b->seen[k]++;
		}
		if (!any)
			usleep(200);
	}
	CHECK_OK(iovm_dma_free(ctx, buf));
	a16_unfollow(&r);
	put64(wr, 2);
	CHECK_EQ(get64(rd), 9);
	CHECK_OK(iovm_close(ctx));
	put64(wr, 3);
}

/* Makes and destroys following domains while parcels come and go; each maps the board at once. */
static void churner(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct board *b = board(ctx);
	struct iovm_domain_attr follow = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	unsigned n = 0;

	(void)rd;
	(void)arg;
	put64(wr, 1);
	while (!atomic_load(&b->stop)) {
		struct iovm_domain *d;
		iovm_iova_t i;

		CHECK_OK(iovm_domain_create(ctx, &follow, &d));
		CHECK_OK(iovm_dma_iova(d, b, &i));
		CHECK_OK(iovm_domain_destroy(d));
		n++;
		usleep(500);
	}
	CHECK(n > 0);
	put64(wr, 2);
	CHECK_EQ(get64(rd), 9);
	CHECK_OK(iovm_close(ctx));
	put64(wr, 3);
}

static void owner_child(int rd, int wr, void *arg)
{
	struct iovm_share_params p = { .heap_size = HEAP, .group = -1 };
	struct iovm_ctx *ctx = NULL;
	const struct iovm_zone *z;

	(void)arg;
	CHECK_OK(iovm_open("oracle=on", &ctx));
	CHECK_OK(iovm_share(ctx, g_name, &p));
	CHECK_OK(iovm_zone_reserve(ctx, "a16board", sizeof(struct board), 4096, IOVM_DMA_ZERO, &z));
	memset(z->va, 0, sizeof(struct board));
	put64(wr, 1);
	(void)get64(rd); /* killed while waiting, or told to end */
	CHECK_OK(iovm_close(ctx));
	_exit(0);
}

static void storm(bool kills, bool kill_owner)
{
	struct child own, al[NA], fo[NF], ch;
	bool dead_a[NA] = { 0 }, dead_f[NF] = { 0 };
	struct iovm_ctx *ctx;
	struct board *b;
	uint64_t s = 77 + kills + kill_owner;

	g_name = share_name("a16st");
	own = child_start(owner_child, NULL);
	CHECK_EQ(get64(own.rd), 1);
	ctx = attach_ok(g_name);
	b = board(ctx);
	for (unsigned k = 0; k < NF; k++) {
		fo[k] = child_start(follower, (void *)(uintptr_t)k);
		CHECK_EQ(get64(fo[k].rd), 1);
	}
	ch = child_start(churner, NULL);
	CHECK_EQ(get64(ch.rd), 1);
	for (unsigned i = 0; i < NA; i++) {
		al[i] = child_start(allocator, (void *)(uintptr_t)i);
		CHECK_EQ(get64(al[i].rd), 1);
	}
	if (kill_owner) {
		usleep(1000 * (test_rand(&s) % 50));
		child_kill(&own);
	}
	if (kills) {
		/* One allocator and one follower die mid-work. */
		unsigned a = (unsigned)(test_rand(&s) % NA), f = (unsigned)(test_rand(&s) % NF);

		usleep(1000 * (test_rand(&s) % 80));
		/* Followers off its box first: what it holds is freed when it dies, and reused. */
		atomic_fetch_or(&b->doomed, 1ull << a);
		for (unsigned k = 0; k < NF; k++) {
			uint64_t from = atomic_load(&b->loops[k]);

			for (unsigned ms = 0; atomic_load(&b->loops[k]) < from + 2; ms++) {
				CHECK_MSG(ms < 60000, "follower %u never passed its loop", k);
				usleep(1000);
			}
		}
		child_kill(&al[a]);
		dead_a[a] = true;
		usleep(1000 * (test_rand(&s) % 40));
		kill(fo[f].pid, SIGKILL);
		atomic_fetch_and(&b->live, ~(1ull << f));
		CHECK_EQ(child_wait(&fo[f]), -SIGKILL);
		dead_f[f] = true;
	}
	for (unsigned i = 0; i < NA; i++)
		if (!dead_a[i])
			CHECK_EQ(get64(al[i].rd), 2);
	atomic_store(&b->stop, 1);
	for (unsigned k = 0; k < NF; k++)
		if (!dead_f[k])
			CHECK_EQ(get64(fo[k].rd), 2);
	CHECK_EQ(get64(ch.rd), 2);
	/* A follower killed midway may have died before its first block (seen under TSan). */
	for (unsigned k = 0; k < NF; k++)
		if (!dead_f[k])
			CHECK_MSG(b->seen[k] > 0, "follower %u saw no block", k);
	/* Everyone ends. */
	for (unsigned i = 0; i < NA; i++)
		if (!dead_a[i]) {
			put64(al[i].wr, 9);
			CHECK_EQ(get64(al[i].rd), 3);
			child_ok(&al[i]);
		}
	for (unsigned k = 0; k < NF; k++)
		if (!dead_f[k]) {
			put64(fo[k].wr, 9);
			CHECK_EQ(get64(fo[k].rd), 3);
			child_ok(&fo[k]);
		}
	put64(ch.wr, 9);
	CHECK_EQ(get64(ch.rd), 3);
	child_ok(&ch);
	{
		const struct iovm_zone *z;
		struct iovm_share_info in;
		int ret;

		iovm_share_reap(ctx);
		ret = iovm_share_check(ctx);
		CHECK_MSG(ret == 0, "iovm_share_check: %s: %s", strerror(-ret), iovm_error_detail());
		CHECK_OK(iovm_zone_lookup(ctx, "a16board", &z));
		CHECK_OK(iovm_zone_free(ctx, z));
		iovm_share_reap(ctx);
		in = share_info(ctx);
		CHECK_MSG(in.heap_free == in.heap_size, "heap_free %llu of %llu, %llu blocks left",
			  (unsigned long long)in.heap_free, (unsigned long long)in.heap_size,
			  (unsigned long long)in.blocks);
	}
	if (!kill_owner) {
		put64(own.wr, 9);
		child_ok(&own);
	}
	CHECK_OK(iovm_close(ctx));
}

TEST(storm)
{
	storm(false, false);
}

TEST(storm_kills)
{
	storm(true, false);
}

TEST(storm_owner_dies)
{
	storm(true, true);
}

int main(void)
{
	const char *e = getenv("IOVM_ATTACK16_ROUNDS");

	test_init();
	if (e)
		g_rounds = (unsigned)atoi(e);
	a16_watchdog(150);
	RUN(storm);
	RUN(storm_kills);
	RUN(storm_owner_dies);
	return 0;
}
