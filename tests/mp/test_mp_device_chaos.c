/* SPDX-License-Identifier: MIT */
/*
 * test_mp_device_chaos.c - rounds of killing the share's owner, the device
 * process or one of its clients (kill -9 at a random moment, while copies
 * run) while the clients copy between heap memory and their own memory
 * through the device, checking every byte of every copy that completes. A
 * client whose device process died opens a queue on the next one. After
 * each round, from the owner: the share's lock is free and its heap whole
 * (iovm_share_check()), and the dead process's slot is gone. When the
 * owner dies, the clients must go on copying through the device process
 * they have; then they are killed, the device process reaps them
 * (iovm_share_reap()), finds the heap whole and empty, and stops cleanly,
 * and the next share starts.
 *
 * IOVM_CHAOS_ROUNDS=N runs N rounds (the 1000, say).
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "mp_device.h"

#define CLIENTS 3
#define PAGES 4

/* Copies checked, all clients together: shared with the children (MAP_SHARED, made before the forks). */
static _Atomic uint64_t *g_copies;

/*
 * What the owner and the device process answer on their pipe: CMD_CHECK
 * (iovm_share_check(), then processes and blocks), CMD_REAP (the same
 * after iovm_share_reap()), CMD_QUIT.
 */
enum { CMD_CHECK = 1, CMD_REAP = 2, CMD_QUIT = 3 };

static unsigned served(struct iovm_device_server *srv)
{
	struct iovm_device_server_info info;

	CHECK_OK(iovm_device_server_info(srv, &info));
	return info.clients;
}

/* @srv: the device process's server, whose clients must be gone before a reap; NULL for the owner. */
static void answer(int rd, int wr, struct iovm_ctx *ctx, struct iovm_device_server *srv)
{
	for (;;) {
		uint64_t cmd = get64(rd);
		struct iovm_share_info info;
		int ret = 0;

		if (cmd == CMD_QUIT)
			return;
		if (cmd == CMD_REAP) {
			/* What dead clients lent goes back at their teardown, on the control thread: wait for it to end. */
			if (srv)
				WAIT_UNTIL(served(srv) == 0);
			ret = iovm_share_reap(ctx);
		}
		if (ret >= 0)
			ret = iovm_share_check(ctx);
		if (ret)
			printf("# check: %d: %s\n", ret, iovm_error_detail());
		CHECK_OK(iovm_share_info(ctx, &info));
		put64(wr, (uint64_t)(ret ? 1 : 0));
		put64(wr, info.processes);
		put64(wr, info.blocks);
	}
}

static void chaos_owner(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = share_ok(g_share, HEAP);

	(void)arg;
	put64(wr, 1);
	answer(rd, wr, ctx, NULL);
	CHECK_OK(iovm_close(ctx));
}

/* A device process that serves until it is killed, or stops when told. */
static void chaos_device(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = NULL;
	struct iovm_device_server *srv;
	int ret;

	(void)arg;
	ret = iovm_attach(g_share, "", &ctx);
	CHECK_MSG(ret == 0, "attach: %s", iovm_error_detail());
	CHECK_OK(iovm_device_serve(ctx, g_dev, 2, &srv));
	put64(wr, 1);
	answer(rd, wr, ctx, srv);
	CHECK_OK(iovm_device_server_stop(srv));
	CHECK_OK(iovm_close(ctx));
}

/* Ask @c: whether the share checks whole; its processes and blocks. */
static bool ask(struct child *c, uint64_t cmd, uint64_t *processes, uint64_t *blocks)
{
	uint64_t bad;

	put64(c->wr, cmd);
	bad = get64(c->rd);
	*processes = get64(c->rd);
	*blocks = get64(c->rd);
	return !bad;
}

/* Run @d to completion: its status, or -EPIPE when the device process went. */
static int run_or_gone(struct iovm_rqueue *q, struct iovm_desc d)
{
	struct iovm_cqe cqe;
	int ret, n = 0;

	d.tag = 0xc4a05;
	ret = iovm_rqueue_submit(q, &d);
	if (ret == -EPIPE)
		return ret;
	CHECK_OK(ret);
	for (unsigned long spins = 0; !n; spins++) {
		n = iovm_rqueue_reap(q, &cqe, 1);
		if (n == -EPIPE)
			return n;
		CHECK_MSG(n >= 0, "reap: %d", n);
		if (!n && spins % 64 == 63)
			usleep(10);
	}
	CHECK_EQ(cqe.tag, 0xc4a05);
	return cqe.status;
}

/* Copies through queues on whichever device process serves, every byte checked, until killed. */
static void chaos_client(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_share);
	uint64_t seed = (uint64_t)getpid() * 2654435761u + (uintptr_t)arg;
	uint8_t *own = own_pages(PAGES), *heap;

	(void)rd;
	/*
	 * A heap of 2 MiB pages commits a parcel at the first allocation in
	 * it: -ENOMEM while other processes (the rest of the suite) hold the
	 * pool, for a while. Tried again, for at most 5 s.
	 */
	for (unsigned tries = 0; !(heap = iovm_dma_alloc(ctx, PAGES * 4096, 4096, 0)) && tries < 1000; tries++)
		usleep(5000);
	CHECK_MSG(heap != NULL, "iovm_dma_alloc: %s", iovm_error_detail());
	put64(wr, 1);
	for (;;) {
		struct iovm_rqueue *q;
		iovm_iova_t io, ih;
		int ret = iovm_rqueue_open(ctx, g_dev, 16, &q);

		if (ret) {
			/* Between two device processes: none listens, or it died while answering. */
			CHECK_MSG(ret == -ENOENT || ret == -EPIPE, "rqueue_open: %d (%s)", ret, iovm_error_detail());
			usleep(500);
			continue;
		}
		ret = iovm_rqueue_map(q, own, PAGES * 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &io);
		if (!ret)
			ret = iovm_rqueue_map(q, heap, PAGES * 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &ih);
		for (unsigned k = 0; !ret && k < 64; k++) {
			uint8_t b = (uint8_t)test_rand(&seed);
			uint32_t len = 1 + (uint32_t)(test_rand(&seed) % (PAGES * 4096 - 1));
			bool up = k & 1;
			int st;

			memset(up ? heap : own, b, len);
			memset(up ? own : heap, (uint8_t)~b, len);
			st = run_or_gone(q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = up ? ih.addr : io.addr,
							       .dst = up ? io.addr : ih.addr, .len = len });
			if (st == -EPIPE)
				break;
			CHECK_MSG(st == IOVM_STATUS_SUCCESS, "copy %u: status %d", k, st);
			for (uint32_t i = 0; i < len; i++)
				CHECK_MSG((up ? own : heap)[i] == b, "copy %u of %u bytes: byte %u is %#x, not %#x", k, len,
					  i, (up ? own : heap)[i], b);
			atomic_fetch_add(g_copies, 1);
		}
		CHECK(ret == 0 || ret == -EPIPE);
		/* Closing tells the device process, or finds it gone; what it borrowed comes back either way. */
		CHECK_OK(iovm_rqueue_close(q));
	}
}

static unsigned rounds_wanted(void)
{
	const char *e = getenv("IOVM_CHAOS_ROUNDS");

	if (e && atoi(e) > 0)
		return (unsigned)atoi(e);
	return TEST_ASAN || TEST_TSAN ? 60 : 200;
}

/* The processes of one share. */
struct share_procs {
	struct child owner, dev, cl[CLIENTS];
};

static void share_start(struct share_procs *p, unsigned gen)
{
	static char share[64], dev[64];

	snprintf(share, sizeof(share), "%s", share_name("devchaos"));
	snprintf(dev, sizeof(dev), "%s", share_name("devchaosdev"));
	g_share = share;
	g_dev = dev;
	p->owner = child_start(chaos_owner, NULL);
	CHECK_EQ(get64(p->owner.rd), 1);
	p->dev = child_start(chaos_device, NULL);
	CHECK_EQ(get64(p->dev.rd), 1);
	for (unsigned i = 0; i < CLIENTS; i++) {
		p->cl[i] = child_start(chaos_client, (void *)(uintptr_t)(i + 1000 * gen));
		CHECK_EQ(get64(p->cl[i].rd), 1);
	}
}

/*
 * The owner died: the clients go on copying through the device process
 * they have; then they die too, and the device process, the last, reaps
 * them, finds the heap whole with nothing in it, and stops cleanly.
 */
static void share_after_owner(struct share_procs *p)
{
	uint64_t before = atomic_load(g_copies), procs, blocks;

	WAIT_UNTIL(atomic_load(g_copies) > before + 2 * CLIENTS);
	for (unsigned i = 0; i < CLIENTS; i++)
		child_kill(&p->cl[i]);
	CHECK(ask(&p->dev, CMD_REAP, &procs, &blocks));
	CHECK_EQ(procs, 1);
	CHECK_EQ(blocks, 0);
	put64(p->dev.wr, CMD_QUIT);
	child_ok(&p->dev);
}

TEST(kill_owner_device_or_client)
{
	unsigned rounds = rounds_wanted(), kills[3] = { 0 }, gen = 0;
	uint64_t seed = (uint64_t)getpid() ^ 0x5eedc4a0, procs, blocks;
	struct share_procs p;

	g_copies = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(g_copies != MAP_FAILED);
	share_start(&p, gen);
	for (unsigned r = 0; r < rounds; r++) {
		uint64_t pick = test_rand(&seed) % 20, before = atomic_load(g_copies);
		unsigned victim = pick == 0 ? 0 : pick < 6 ? 1 : 2;
		struct child *c = victim == 0 ? &p.owner : victim == 1 ? &p.dev : &p.cl[pick % CLIENTS];

		/* Every round kills in the midst of copies: some client has done some since the last. */
		WAIT_UNTIL(atomic_load(g_copies) > before + 2);
		usleep((useconds_t)(test_rand(&seed) % 3000));
		kills[victim]++;
		/* Killed by us, not ended by a failed check: a client's CHECK exits 1 first. */
		child_kill(c);
		if (victim == 0) {
			share_after_owner(&p);
			share_start(&p, ++gen);
			continue;
		}
		/* The owner notices the death and frees or takes back what the dead held. */
		WAIT_UNTIL((ask(&p.owner, CMD_CHECK, &procs, &blocks), procs == 1 + CLIENTS));
		CHECK_MSG(ask(&p.owner, CMD_CHECK, &procs, &blocks), "round %u: the share does not check whole", r);
		*c = child_start(victim == 1 ? chaos_device : chaos_client, (void *)(uintptr_t)(r + 1000 * gen));
		CHECK_EQ(get64(c->rd), 1);
	}
	printf("# %u rounds: the owner killed %u times, the device process %u, a client %u; %llu copies checked\n",
	       rounds, kills[0], kills[1], kills[2], (unsigned long long)atomic_load(g_copies));
	/* The last share ends cleanly: clients killed, the device process stopped, the owner last. */
	for (unsigned i = 0; i < CLIENTS; i++)
		child_kill(&p.cl[i]);
	put64(p.dev.wr, CMD_QUIT);
	child_ok(&p.dev);
	WAIT_UNTIL((ask(&p.owner, CMD_CHECK, &procs, &blocks), procs == 1));
	CHECK(ask(&p.owner, CMD_CHECK, &procs, &blocks));
	CHECK_EQ(blocks, 0);
	put64(p.owner.wr, CMD_QUIT);
	child_ok(&p.owner);
	munmap((void *)g_copies, 4096);
}

int main(void)
{
	test_init();
	RUN(kill_owner_device_or_client);
	return 0;
}
