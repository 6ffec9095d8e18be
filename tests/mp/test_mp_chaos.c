/* SPDX-License-Identifier: MIT */
/*
 * test_mp_chaos.c - rounds of killing a random process of a share (kill -9
 * at a random moment, the owner included) while the others allocate,
 * check and free, and make and free zones, in a tight loop that holds the
 * share's lock much of the time. After each round, from a process that
 * survives: the lock is not left held (the check takes it), the heap is
 * whole and no allocation overlaps another (iovm_share_check(), and each
 * worker checks every block it frees), the dead process's memory is freed
 * (its slot is gone). A share whose owner died runs on until its workers
 * are gone; then the next share starts. At the end of each share, with
 * every other process dead, nothing is left: no block but the zones the
 * dead made, which the survivor frees, and the heap is free again.
 */
#include <signal.h>
#include <stdlib.h>

#include "mp_tags.h"
#include "mp_util.h"

#define HEAP (UINT64_C(16) << 20)
#define WORKERS 3
#define OWN 32

static const char *g_name;

/* A worker: until killed, allocate, check and free its own blocks; make and free zones. */
static void worker(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	uint64_t seed = (uint64_t)getpid() * 2654435761u + (uintptr_t)arg, seq = 0;
	struct { uint8_t *p; uint64_t size, tag; } own[OWN];
	unsigned n = 0;

	(void)rd;
	put64(wr, 1);
	for (;;) {
		uint64_t r = test_rand(&seed) % 16;

		if (r < 7 && n < OWN) {
			uint64_t size = 1 + test_rand(&seed) % (r ? 2048 : 65536);
			uint8_t *p = iovm_dma_alloc(ctx, size, 0, 0);

			if (!p) {
				CHECK_EQ(errno, ENOMEM);
				continue;
			}
			own[n].p = p;
			own[n].size = size;
			own[n].tag = ((uint64_t)getpid() << 32) | ++seq;
			tag_fill(p, size, own[n].tag);
			n++;
		} else if (r < 14 && n) {
			unsigned i = (unsigned)(test_rand(&seed) % n);

			if (!tag_intact(own[i].p, own[i].size, own[i].tag))
				_exit(2); /* an overlap: the parent sees the status */
			CHECK_OK(iovm_dma_free(ctx, own[i].p));
			own[i] = own[--n];
		} else {
			const struct iovm_zone *z;
			char name[IOVM_ZONE_NAMESIZE];
			int ret;

			snprintf(name, sizeof(name), "z%u", (unsigned)(test_rand(&seed) % 8));
			ret = iovm_zone_reserve(ctx, name, 256, 0, 0, &z);
			CHECK(ret == 0 || ret == 1 || ret == -ENOMEM);
			if (ret >= 0 && r == 15) {
				ret = iovm_zone_free(ctx, z);
				/* Another process may have freed it since the lookup. */
				CHECK(ret == 0 || ret == -EINVAL);
			}
		}
	}
}

static void owner(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = share_ok(g_name, HEAP);

	(void)arg;
	CHECK(ctx != NULL);
	put64(wr, 1);
	/* Serve attachments and reap the dead, until killed. */
	get64(rd);
	_exit(3);
}

static int free_zone(void *arg, const struct iovm_zone *z)
{
	CHECK_OK(iovm_zone_free(arg, z));
	return 0;
}

struct gen {
	struct child owner, w[WORKERS];
	bool owner_alive, alive[WORKERS];
	struct iovm_ctx *ctx;
	unsigned live;
};

static void spawn_worker(struct gen *g, unsigned i)
{
	g->w[i] = child_start(worker, (void *)(uintptr_t)i);
	CHECK_EQ(get64(g->w[i].rd), 1);
	g->alive[i] = true;
	g->live++;
}

static void gen_start(struct gen *g)
{
	memset(g, 0, sizeof(*g));
	g_name = share_name("chaos");
	g->owner = child_start(owner, NULL);
	CHECK_EQ(get64(g->owner.rd), 1);
	g->owner_alive = true;
	g->ctx = attach_ok(g_name);
	for (unsigned i = 0; i < WORKERS; i++)
		spawn_worker(g, i);
}

/* Processes attached, as the share counts them: the survivor, the owner, the workers. */
static unsigned attached(const struct gen *g)
{
	return 1 + g->owner_alive + g->live;
}

static void killed(struct child *c)
{
	int st;

	kill(c->pid, SIGKILL);
	st = child_wait(c);
	CHECK_MSG(st == -SIGKILL, "process %d ended with %d before it was killed (2: a block was overwritten)",
		  (int)c->pid, st);
}

/* With the owner dead, nobody reaps by itself: the survivor asks. */
static void reaped(struct gen *g)
{
	if (!g->owner_alive)
		CHECK(iovm_share_reap(g->ctx) >= 0);
	WAIT_UNTIL(share_info(g->ctx).processes == attached(g) || (!g->owner_alive && iovm_share_reap(g->ctx) >= 0 &&
									 share_info(g->ctx).processes == attached(g)));
	CHECK_MSG(iovm_share_check(g->ctx) == 0, "%s", iovm_error_detail());
}

static void gen_end(struct gen *g, uint64_t *recoveries)
{
	struct iovm_share_info info;

	for (unsigned i = 0; i < WORKERS; i++)
		if (g->alive[i]) {
			killed(&g->w[i]);
			g->alive[i] = false;
			g->live--;
		}
	if (g->owner_alive) {
		killed(&g->owner);
		g->owner_alive = false;
	}
	reaped(g);
	info = share_info(g->ctx);
	*recoveries += info.recoveries;
	/* Every block of the dead is gone; only the zones they made, which belong to the share, stay. */
	CHECK_EQ(info.blocks, info.zones);
	CHECK_OK(iovm_zone_walk(g->ctx, free_zone, g->ctx));
	info = share_info(g->ctx);
	CHECK_EQ(info.blocks, 0);
	CHECK_EQ(info.heap_free, info.heap_size);
	CHECK_OK(iovm_close(g->ctx));
}

TEST(kill_anyone_anytime)
{
	unsigned rounds = getenv("IOVM_MP_CHAOS_ROUNDS") ? (unsigned)atoi(getenv("IOVM_MP_CHAOS_ROUNDS"))
							 : (TEST_ASAN || TEST_TSAN ? 200 : 1000);
	uint64_t seed = getenv("IOVM_MP_SEED") ? strtoull(getenv("IOVM_MP_SEED"), NULL, 0) : 0xc4a05;
	uint64_t recoveries = 0, owners_killed = 0, gens = 1;
	struct gen g;

	printf("# seed %#llx, %u rounds\n", (unsigned long long)seed, rounds);
	gen_start(&g);
	for (unsigned round = 0; round < rounds; round++) {
		unsigned victim = (unsigned)(test_rand(&seed) % (WORKERS + 1));

		usleep((useconds_t)(test_rand(&seed) % 2000));
		if (victim == WORKERS && g.owner_alive && test_rand(&seed) % 4 == 0) {
			struct iovm_ctx *late;

			killed(&g.owner);
			g.owner_alive = false;
			owners_killed++;
			/* Nobody new attaches; the others run on. */
			CHECK_EQ(iovm_attach(g_name, "", &late), -ENOENT);
		} else {
			unsigned i = victim % WORKERS;

			if (!g.alive[i])
				continue;
			killed(&g.w[i]);
			g.alive[i] = false;
			g.live--;
		}
		reaped(&g);
		if (g.owner_alive) {
			for (unsigned i = 0; i < WORKERS; i++)
				if (!g.alive[i])
					spawn_worker(&g, i);
		} else if (!g.live || round % 50 == 49) {
			gen_end(&g, &recoveries);
			gen_start(&g);
			gens++;
		}
	}
	gen_end(&g, &recoveries);
	printf("# %llu shares, %llu owners killed, %llu times a process took the lock from a dead one\n",
	       (unsigned long long)gens, (unsigned long long)owners_killed, (unsigned long long)recoveries);
}

int main(void)
{
	test_init();
	RUN(kill_anyone_anytime);
	return 0;
}
