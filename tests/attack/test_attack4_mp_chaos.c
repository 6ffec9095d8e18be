/* SPDX-License-Identifier: MIT */
/*
 * test_attack4_mp_chaos.c - kill -9 at random moments (issue 17, "Crash
 * safety"; iovm/mp.h, "When a process dies"). Workers allocate, free,
 * realloc, verify, hand IOVM_DMA_KEEP blocks to each other through a
 * mailbox and reserve and free zones, in a tight loop, so that most kills
 * land inside a library call; the owner is killed too in half the rounds.
 * After each round: no lock is left held (the check returns), no two live
 * blocks overlapped (every block's pattern survived until it was freed),
 * and once the dead are reaped the heap is whole and all its memory is
 * back, but for at most one KEEP block per worker killed between its
 * allocation and its hand-off (found and freed by a scan).
 *
 * IOVM_A4_ROUNDS=n runs n rounds of each kind (default A4_ROUNDS);
 * IOVM_SEED changes the seed.
 */
#include "attack4_mp.h"

#define HEAP (UINT64_C(8) << 20)
#define W 4
#define SLOTS 32
#define OWN 64

struct slot {
	_Atomic uint32_t state; /* 0 empty, 1 being filled, 2 full, 3 being taken */
	uint32_t size;
	uint64_t pa, tag;
};

struct ctl {
	_Atomic uint64_t ready, go, stop;
	_Atomic uint32_t intent[W];  /* a KEEP block between allocation and hand-off */
	_Atomic uint64_t ops[W];
	struct slot mail[SLOTS];
	_Atomic int msg_taken;
	char msg[512];
};

static struct ctl *ctl;
static unsigned total_stranded;
/*
 * Rounds of each kind. Under ThreadSanitizer, 10: the races it sees are a
 * process's own threads', the same in every round, and a round there took
 * a second and a half, 47 s in all; the other legs run 30.
 */
#define A4_ROUNDS (TEST_TSAN ? 10 : 30)

/* Processes of the share that live through the rounds besides this one (an owner of its own). */
static unsigned g_others;
static const char *g_name;

static void spin_until(_Atomic uint64_t *v, uint64_t want)
{
	unsigned long n = 0;

	while (atomic_load(v) < want) {
		usleep(50);
		CHECK_MSG(++n < 600000ul, "waited half a minute for another process");
	}
}

/* A worker's broken promise: said once, and the worker ends with 1 (not -9). */
#define WFAIL(...)                                                                        \
	do {                                                                              \
		if (!atomic_exchange(&ctl->msg_taken, 1))                                \
			snprintf(ctl->msg, sizeof(ctl->msg), __VA_ARGS__);                \
		_exit(1);                                                                 \
	} while (0)

struct blk {
	uint8_t *p;
	size_t size;
	uint64_t tag;
};

static void verify(struct blk *b, const char *when)
{
	size_t bad = a4_bad(b->p, b->size, b->tag);

	if (bad != b->size)
		WFAIL("pid %d: %s: block %p (%zu bytes) byte %zu overwritten: another block overlaps it",
		      (int)getpid(), when, (void *)b->p, b->size, bad);
}

static void worker(int me, uint64_t seed)
{
	struct iovm_ctx *att = NULL;
	struct blk own[OWN];
	unsigned n = 0;
	uint64_t seq = 0;
	int r = iovm_attach(g_name, "log_level=error", &att);

	if (r)
		WFAIL("worker attach: %d %s", r, iovm_error_detail());
	atomic_fetch_add(&ctl->ready, 1);
	while (!atomic_load(&ctl->stop)) {
		uint64_t x = test_rand(&seed);
		uint64_t tag = ((uint64_t)getpid() << 24) | seq++;

		switch (x % 16) {
		case 0: case 1: case 2: case 3: case 4: { /* allocate */
			size_t size = 1 + (x >> 8) % ((x >> 40) % 8 ? 4096 : 200000);
			size_t align = (size_t[]){ 0, 64, 4096, 65536 }[(x >> 32) % 4];
			uint32_t flags = (x >> 36) % 4 ? 0 : IOVM_DMA_ZERO;
			uint8_t *p;

			if (n == OWN)
				break;
			p = iovm_dma_alloc(att, size, align, flags);
			if (!p) {
				if (errno != ENOMEM)
					WFAIL("alloc(%zu, %zu): errno %d", size, align, errno);
				break;
			}
			if (align && (uintptr_t)p % (align > 4096 ? 4096 : align))
				WFAIL("alloc(%zu, %zu): %p", size, align, (void *)p);
			if ((flags & IOVM_DMA_ZERO) && first_not(p, size, 0) != size)
				WFAIL("zalloc(%zu): byte %zu not zero", size, first_not(p, size, 0));
			a4_fill(p, size, tag);
			own[n++] = (struct blk){ p, size, tag };
			break;
		}
		case 5: case 6: case 7: { /* free one of mine */
			unsigned i;

			if (!n)
				break;
			i = (unsigned)((x >> 8) % n);
			verify(&own[i], "before free");
			r = iovm_dma_free(att, own[i].p);
			if (r)
				WFAIL("free(%p) of a live block: %d", (void *)own[i].p, r);
			own[i] = own[--n];
			break;
		}
		case 8: { /* realloc one of mine */
			unsigned i;
			size_t size = 1 + (x >> 16) % 100000, keep;
			uint8_t *q;

			if (!n)
				break;
			i = (unsigned)((x >> 8) % n);
			verify(&own[i], "before realloc");
			q = iovm_dma_realloc(att, own[i].p, size, 0, 0);
			if (!q) {
				if (errno != ENOMEM)
					WFAIL("realloc: errno %d", errno);
				verify(&own[i], "after a failed realloc");
				break;
			}
			keep = size < own[i].size ? size : own[i].size;
			if (a4_bad(q, keep, own[i].tag) != keep)
				WFAIL("realloc lost the contents");
			a4_fill(q, size, tag);
			own[i] = (struct blk){ q, size, tag };
			break;
		}
		case 9: case 10: { /* hand a KEEP block to whoever takes it */
			size_t size = 1 + (x >> 8) % 30000;
			uint8_t *p;
			unsigned s = (unsigned)((x >> 32) % SLOTS);
			uint32_t empty = 0;

			atomic_store(&ctl->intent[me], (uint32_t)size);
			p = iovm_dma_alloc(att, size, 0, IOVM_DMA_KEEP);
			if (!p) {
				atomic_store(&ctl->intent[me], 0);
				break;
			}
			a4_fill(p, size, tag);
			if (!atomic_compare_exchange_strong(&ctl->mail[s].state, &empty, 1)) {
				if (iovm_dma_free(att, p))
					WFAIL("free of my KEEP block failed");
				atomic_store(&ctl->intent[me], 0);
				break;
			}
			ctl->mail[s].size = (uint32_t)size;
			ctl->mail[s].pa = a4_pa(att, p);
			ctl->mail[s].tag = tag;
			atomic_store(&ctl->mail[s].state, 2);
			atomic_store(&ctl->intent[me], 0);
			break;
		}
		case 11: case 12: { /* take one and free it */
			unsigned s = (unsigned)((x >> 32) % SLOTS);
			uint32_t full = 2;
			struct blk b;

			if (!atomic_compare_exchange_strong(&ctl->mail[s].state, &full, 3))
				break;
			b.p = iovm_dma_ptr(att, IOVM_PA(ctl->mail[s].pa));
			b.size = ctl->mail[s].size;
			b.tag = ctl->mail[s].tag;
			if (!b.p)
				WFAIL("a handed-over PA does not translate here");
			verify(&b, "handed over");
			r = iovm_dma_free(att, b.p);
			if (r)
				WFAIL("free of a handed-over KEEP block: %d", r);
			atomic_store(&ctl->mail[s].state, 0);
			break;
		}
		case 13: { /* zones */
			char zname[32];
			const struct iovm_zone *z;

			snprintf(zname, sizeof(zname), "cz%u", (unsigned)((x >> 8) % 4));
			if ((x >> 16) % 2) {
				r = iovm_zone_reserve(att, zname, 4096, 0, 0, &z);
				if (r != 0 && r != 1 && r != -ENOMEM)
					WFAIL("zone reserve: %d", r);
			} else if (iovm_zone_lookup(att, zname, &z) == 0) {
				r = iovm_zone_free(att, z);
				if (r != 0 && r != -EINVAL)
					WFAIL("zone free: %d", r);
			}
			break;
		}
		default: /* look at everything I hold */
			for (unsigned i = 0; i < n; i++)
				verify(&own[i], "while held");
			break;
		}
		ctl->ops[me]++;
	}
	for (unsigned i = 0; i < n; i++) {
		verify(&own[i], "at the end");
		if (iovm_dma_free(att, own[i].p))
			WFAIL("final free");
	}
	iovm_close(att);
	_exit(0);
}

static pid_t spawn_worker(int me, uint64_t seed)
{
	pid_t pid = a4_fork();

	if (!pid) {
		alarm(120);
		worker(me, seed);
	}
	return pid;
}

/* Blocks the scan finds that this process does not hold: KEEP blocks a kill stranded. */
static unsigned free_stranded(struct iovm_ctx *ctx, struct blk *mine, unsigned nmine)
{
	struct iovm_share_info in = share_info(ctx);
	uint8_t *va = in.heap_va;
	unsigned found = 0;

	for (uint64_t off = 0; off < in.heap_size; off += 16) {
		bool held = false;

		if (!iovm_dma_size(ctx, va + off))
			continue;
		for (unsigned i = 0; i < nmine; i++)
			held |= mine[i].p == va + off;
		if (held)
			continue;
		CHECK_RET(iovm_dma_free(ctx, va + off), 0);
		found++;
	}
	return found;
}

/* Whether a zone of the share holds @pa (zones are cz0..cz3), as round_end()'s context sees them. */
static struct iovm_ctx *g_ctx;

static bool zone_at(uint64_t pa)
{
	for (unsigned i = 0; i < 4; i++) {
		const struct iovm_zone *z;
		char name[32];

		snprintf(name, sizeof(name), "cz%u", i);
		if (!iovm_zone_lookup(g_ctx, name, &z) && z->pa.addr <= pa && pa < z->pa.addr + z->len)
			return true;
	}
	return false;
}

static int free_zone_fn(void *arg, const struct iovm_zone *z)
{
	char (*names)[32] = arg;

	for (int i = 0; i < 16; i++)
		if (!names[i][0]) {
			snprintf(names[i], 32, "%s", z->name);
			break;
		}
	return 0;
}

/*
 * After a round: the survivors' view, the mailbox and the zones emptied,
 * stranded KEEP blocks counted against the kills that could strand them.
 */
static void round_end(struct iovm_ctx *ctx, struct blk *mine, unsigned nmine, uint64_t free0,
		      unsigned stranding_kills, int round)
{
	char names[16][32];
	const struct iovm_zone *z;
	unsigned stranded;

	g_ctx = ctx;

	/* No lock is left held: these return (a hang is the meson timeout's). */
	CHECK_RET(iovm_share_check(ctx), 0);
	for (unsigned i = 0; i < nmine; i++)
		EXPECT_MSG(a4_bad(mine[i].p, mine[i].size, mine[i].tag) == mine[i].size,
			   "round %d: the survivor's block %u was overwritten", round, i);
	/*
	 * Full slots first, then those a killed taker left half taken: a taker
	 * killed after its free leaves a PA that another worker may have been
	 * given again since, and posted in a full slot; freeing it through the
	 * half-taken slot first would free the other's block.
	 */
	for (int pass = 2; pass <= 3; pass++)
		for (int s = 0; s < SLOTS; s++) {
			uint32_t st = atomic_load(&ctl->mail[s].state);
			void *p;
			int r;
			bool posted = false;

			if (st != (uint32_t)pass)
				continue;
			for (int o = 0; pass == 3 && o < SLOTS; o++)
				posted |= o != s && atomic_load(&ctl->mail[o].state) == 2 &&
					  ctl->mail[o].pa == ctl->mail[s].pa;
			if (posted)
				continue;
			p = iovm_dma_ptr(ctx, IOVM_PA(ctl->mail[s].pa));
			CHECK(p != NULL);
			/*
			 * Half taken, and the block someone's since: a zone made at
			 * that PA, or any block whose bytes are not the slot's any
			 * more (a fresh CI run freed a zone through such a slot).
			 * Only a block still as posted was not freed by its taker.
			 */
			if (pass == 3 && (zone_at(ctl->mail[s].pa) ||
					  a4_bad(p, ctl->mail[s].size, ctl->mail[s].tag) != ctl->mail[s].size))
				continue;
			if (st == 2)
				EXPECT(a4_bad(p, ctl->mail[s].size, ctl->mail[s].tag) == ctl->mail[s].size);
			r = iovm_dma_free(ctx, p);
			/* A taker killed after its free and before it emptied the slot: EINVAL. */
			EXPECT_MSG(r == 0 || (st == 3 && r == -EINVAL),
				   "round %d: a KEEP block handed over (mailbox slot %d, state %u) is no longer "
				   "allocated: free %d; this share's recoveries %llu, reaped %llu processes",
				   round, s, st, r, (unsigned long long)share_info(ctx).recoveries,
				   (unsigned long long)share_info(ctx).reaped);
		}
	for (int s = 0; s < SLOTS; s++)
		atomic_store(&ctl->mail[s].state, 0);
	memset(names, 0, sizeof(names));
	CHECK_RET(iovm_zone_walk(ctx, free_zone_fn, names), 0);
	for (int i = 0; i < 16 && names[i][0]; i++)
		if (iovm_zone_lookup(ctx, names[i], &z) == 0)
			CHECK_RET(iovm_zone_free(ctx, z), 0);
	/* The dead are reaped (by the owner, or by this process when none lives). */
	{
		unsigned ms = 0;

		while (share_info(ctx).processes > 1 + g_others) {
			if (ms++ > 30000) {
				EXPECT_MSG(0, "round %d: %u processes still counted after 30 s", round,
					   share_info(ctx).processes);
				break;
			}
			if (!share_info(ctx).owner)
				iovm_share_reap(ctx);
			usleep(1000);
		}
	}
	stranded = free_stranded(ctx, mine, nmine);
	total_stranded += stranded;
	EXPECT_MSG(stranded <= stranding_kills,
		   "round %d: %u blocks nobody holds after the reap, but only %u kills could strand one",
		   round, stranded, stranding_kills);
	a4_settled(ctx, 1 + g_others, nmine, free0);
}

static unsigned kill_worker(pid_t *kid, int v)
{
	int st;
	unsigned stranding;

	kill(kid[v], SIGKILL);
	st = a4_wait(kid[v]);
	kid[v] = 0;
	EXPECT_MSG(st == -SIGKILL, "worker %d ended with %d before the kill: %s", v, st, ctl->msg);
	stranding = atomic_load(&ctl->intent[v]) != 0;
	atomic_store(&ctl->intent[v], 0);
	return stranding;
}

static void run_round(struct iovm_ctx *ctx, struct blk *mine, unsigned nmine, uint64_t free0,
		      uint64_t *seed, int round, pid_t owner)
{
	pid_t kid[W] = { 0 };
	unsigned stranding = 0, kills = 3 + (unsigned)(test_rand(seed) % 4);
	unsigned owner_at = owner ? (unsigned)(test_rand(seed) % kills) : ~0u;

	atomic_store(&ctl->stop, 0);
	atomic_store(&ctl->ready, 0);
	for (int i = 0; i < W; i++)
		kid[i] = spawn_worker(i, test_rand(seed));
	spin_until(&ctl->ready, W);
	for (unsigned k = 0; k < kills; k++) {
		int v = (int)(test_rand(seed) % W);

		usleep(500 + test_rand(seed) % 4000);
		if (k == owner_at) {
			a4_kill(owner);
			continue;
		}
		{
			int live = 0;

			for (int i = 0; i < W; i++)
				live += kid[i] != 0;
			if (!live)
				break;
		}
		while (!kid[v])
			v = (v + 1) % W; /* after the owner's death, some are not replaced */
		stranding += kill_worker(kid, v);
		if (k + 1 < kills && owner_at >= k) {
			uint64_t ready = atomic_load(&ctl->ready);

			/* Attached before the next kill (maybe the owner's): attach races are another test's. */
			kid[v] = spawn_worker(v, test_rand(seed));
			spin_until(&ctl->ready, ready + 1);
		}
	}
	usleep(2000);
	atomic_store(&ctl->stop, 1);
	for (int i = 0; i < W; i++) {
		if (!kid[i])
			continue;
		int st = a4_wait_deadline(kid[i], 60);

		EXPECT_MSG(st == 0, "round %d: worker %d ended with %d: %s", round, i, st, ctl->msg);
		kid[i] = 0;
	}
	round_end(ctx, mine, nmine, free0, stranding, round);
}

static struct blk *make_mine(struct iovm_ctx *ctx, unsigned n)
{
	static struct blk mine[16];

	for (unsigned i = 0; i < n; i++) {
		mine[i].size = 100 + i * 1000;
		mine[i].p = iovm_dma_alloc(ctx, mine[i].size, 0, 0);
		CHECK(mine[i].p != NULL);
		mine[i].tag = 0xabc000 + i;
		a4_fill(mine[i].p, mine[i].size, mine[i].tag);
	}
	return mine;
}

TEST(kill_workers_owner_lives)
{
	const char *e = getenv("IOVM_A4_ROUNDS");
	int rounds = e ? atoi(e) : A4_ROUNDS;
	uint64_t seed = a4_seed();
	struct iovm_ctx *att;
	struct blk *mine;
	uint64_t free0;
	pid_t owner;

	/*
	 * The owner is a process of its own, never killed here, and this one
	 * attaches: the workers are forked from a process without threads.
	 * Forked from the owner, whose server thread reaps each dead worker
	 * while the next one is forked, a worker could inherit a lock of a
	 * sanitizer's runtime held by that thread, and hang (seen under ASan).
	 */
	g_name = share_name("a4chaos");
	atomic_store(&ctl->ready, 0);
	owner = a4_fork();
	if (!owner) {
		struct iovm_ctx *o = a4_share(g_name, HEAP);

		(void)o;
		atomic_store(&ctl->ready, 1);
		for (;;)
			pause();
	}
	spin_until(&ctl->ready, 1);
	att = a4_attach(g_name);
	mine = make_mine(att, 8);
	free0 = share_info(att).heap_free;
	g_others = 1;
	for (int round = 0; round < rounds; round++)
		run_round(att, mine, 8, free0, &seed, round, 0);
	g_others = 0;
	printf("# recoveries %llu, reaped %llu processes, %llu blocks\n",
	       (unsigned long long)share_info(att).recoveries, (unsigned long long)share_info(att).reaped,
	       (unsigned long long)share_info(att).reaped_blocks);
	for (unsigned i = 0; i < 8; i++)
		CHECK_RET(iovm_dma_free(att, mine[i].p), 0);
	a4_kill(owner);
	CHECK_OK(iovm_close(att));
}

TEST(kill_owner_too)
{
	const char *e = getenv("IOVM_A4_ROUNDS");
	int rounds = e ? atoi(e) : A4_ROUNDS;
	uint64_t seed = a4_seed() ^ 0xf00d;
	uint64_t recoveries = 0;

	for (int round = 0; round < rounds; round++) {
		struct iovm_ctx *att;
		struct blk *mine;
		uint64_t free0;
		pid_t owner;

		g_name = share_name("a4chaos-o");
		atomic_store(&ctl->ready, 0);
		atomic_store(&ctl->go, 0);
		owner = a4_fork();
		if (!owner) {
			struct iovm_ctx *o = a4_share(g_name, HEAP);
			uint64_t s = seed;

			atomic_store(&ctl->ready, 1);
			spin_until(&ctl->go, 1);
			/* The owner works too, so that it dies inside calls as well. */
			for (;;) {
				void *p = iovm_dma_alloc(o, 1 + test_rand(&s) % 5000, 0, 0);

				if (p)
					iovm_dma_free(o, p);
			}
		}
		spin_until(&ctl->ready, 1);
		att = a4_attach(g_name);
		mine = make_mine(att, 8);
		free0 = share_info(att).heap_free;
		atomic_store(&ctl->go, 1);
		run_round(att, mine, 8, free0, &seed, round, owner);
		recoveries += share_info(att).recoveries;
		for (unsigned i = 0; i < 8; i++)
			CHECK_RET(iovm_dma_free(att, mine[i].p), 0);
		CHECK_OK(iovm_close(att));
	}
	printf("# recoveries %llu; KEEP blocks stranded by kills, in all: %u\n",
	       (unsigned long long)recoveries, total_stranded);
}

int main(void)
{
	a4_init();
	ctl = a4_shared(sizeof(*ctl));
	RUN(kill_workers_owner_lives);
	RUN(kill_owner_too);
	return attack_status();
}
