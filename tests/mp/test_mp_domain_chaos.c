/* SPDX-License-Identifier: MIT */
/*
 * test_mp_domain_chaos.c - rounds of killing a random process of a share
 * (kill -9 at a random moment, the owner included) while workers map,
 * use through their devices and unmap buffers in a shared domain, and
 * make, open and close a second domain. After each round, from the
 * survivor, which holds a view of the first domain all along: the heap is
 * whole (iovm_share_check()), its own map, DMA and strict unmap work and
 * do not wait for the dead (a hang fails the test), and the second domain
 * exists only while a live process has it open. Every other share's
 * domain is deferred: unmaps queue, and flushes reach every process. At
 * the end of each share, every other process dead, the survivor's close
 * of the last view frees the domain with whatever the dead left mapped or
 * queued in it: the heap is free. 1000 rounds (300 under sanitizers).
 */
#include <signal.h>
#include <stdlib.h>

#include "mp_sdom.h"
#include "mp_tags.h"
#include "mp_util.h"

#define HEAP (UINT64_C(16) << 20)
#define WORKERS 3
#define DOM "chaos-dom"
#define DOM2 "chaos-dom2"
/*
 * Each worker's own IOVA window for the maps it checks after unmapping:
 * an IOVA unmapped is free for any process to map again at once, so that
 * a device access after the unmap is known to fault only where nobody
 * else maps. Far above where the allocator's first fit puts the others.
 */
#define WINDOW_BASE ((UINT64_C(4) << 30) + (UINT64_C(512) << 20))
#define WINDOW_SIZE (UINT64_C(64) << 10)
#define WINDOWS 4096

static const char *g_name;

/*
 * A worker: until killed, map (at an IOVA the allocator picks, or in its
 * own window), fill through its device, check, unmap (and, in its window,
 * check that a fill faults); open and close the second domain.
 */
static void worker(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	uint64_t seed = (uint64_t)getpid() * 2654435761u + (uintptr_t)arg;
	uint64_t window = WINDOW_BASE + (uintptr_t)arg % WINDOWS * WINDOW_SIZE;
	struct iovm_domain *dom, *dom2 = NULL;
	struct devq d;

	(void)rd;
	struct iovm_domain_stats st;
	bool deferred;

	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	CHECK_OK(iovm_domain_stats(dom, &st));
	deferred = st.flags & IOVM_DOMAIN_DEFERRED;
	d = devq_open(ctx, dom);
	put64(wr, 1);
	for (;;) {
		uint64_t r = test_rand(&seed) % 16;

		if (r < 13) {
			size_t len = (size_t)(1 + test_rand(&seed) % 16) * 4096;
			bool own = test_rand(&seed) % 2;
			iovm_iova_t iova = IOVM_IOVA(own ? window : IOVM_ADDR_INVALID);
			uint8_t *buf = iovm_dma_alloc(ctx, len, 4096, 0), v = (uint8_t)(1 + test_rand(&seed) % 255);
			int ret;

			if (!buf) {
				CHECK_EQ(errno, ENOMEM);
				continue;
			}
			memset(buf, 0, len);
			ret = own ? map_at(ctx, dom, buf, len, &iova)
				  : iovm_domain_map_ptr(dom, buf, len, IOVM_MAP_READ | IOVM_MAP_WRITE, &iova);
			/* The dead may have left the IOVA window or the table pool short. */
			if (ret) {
				CHECK_MSG(ret == -ENOSPC || ret == -ENOMEM, "map: %d", ret);
				CHECK_OK(iovm_dma_free(ctx, buf));
				continue;
			}
			if (devq_fill(&d, iova.addr, len, v) != IOVM_STATUS_SUCCESS || !all_bytes(buf, len, v))
				_exit(2);
			CHECK_OK(iovm_domain_unmap(dom, iova, len));
			/* A deferred domain's unmap is done for every device once flushed. */
			if (own && deferred)
				CHECK_OK(iovm_domain_flush(dom));
			if (own && (devq_fill(&d, iova.addr, 4096, (uint8_t)(v + 1)) != IOVM_STATUS_PAGE_FAULT ||
				    !all_bytes(buf, len, v)))
				_exit(4);
			CHECK_OK(iovm_dma_free(ctx, buf));
		} else if (!dom2) {
			int ret = iovm_share_domain_create(ctx, DOM2, &(struct iovm_share_domain_params){ .tables = 8 }, &dom2);

			if (ret == -EEXIST)
				ret = iovm_share_domain_open(ctx, DOM2, &dom2);
			/* Closed by the last other holder in between: next time. */
			CHECK_MSG(ret == 0 || ret == -ENOENT || ret == -ENOMEM, "second domain: %d", ret);
			if (ret)
				dom2 = NULL;
		} else {
			CHECK_OK(iovm_domain_destroy(dom2));
			dom2 = NULL;
		}
	}
	devq_close(&d);
}

static void owner(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = share_ok(g_name, HEAP);

	(void)arg;
	CHECK(ctx != NULL);
	put64(wr, 1);
	get64(rd); /* serve attachments and reap the dead, until killed */
	_exit(3);
}

static unsigned gens;

struct gen {
	bool deferred;    /* this share's domain: IOVM_DOMAIN_DEFERRED */
	unsigned spawned; /* workers started in this share: each the next window */
	struct child owner, w[WORKERS];
	bool owner_alive, alive[WORKERS];
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct devq d;
	uint8_t *page;
	unsigned live;
};

static void spawn_worker(struct gen *g, unsigned i)
{
	char role[80];

	/* Forked while the survivor's agents and flusher run: exec'd, so that it inherits no lock. */
	snprintf(role, sizeof(role), "worker:%s", g_name);
	g->w[i] = child_exec(role, g->spawned++);
	CHECK_EQ(get64(g->w[i].rd), 1);
	g->alive[i] = true;
	g->live++;
}

static void gen_start(struct gen *g)
{
	memset(g, 0, sizeof(*g));
	g_name = share_name("dchaos");
	g->owner = child_start(owner, NULL);
	CHECK_EQ(get64(g->owner.rd), 1);
	g->owner_alive = true;
	g->ctx = attach_ok(g_name);
	/* Every other share's domain is deferred: each flush posted to every process, not each unmap. */
	g->deferred = gens++ % 2;
	CHECK_OK(iovm_share_domain_create(g->ctx, DOM,
					  &(struct iovm_share_domain_params){
						  .flags = g->deferred ? IOVM_DOMAIN_DEFERRED : 0,
						  /* Small batches: flushes, and the journal's orphans, come often. */
						  .flush_batch = 16 },
					  &g->dom));
	g->d = devq_open(g->ctx, g->dom);
	g->page = iovm_dma_alloc(g->ctx, 4096, 4096, IOVM_DMA_KEEP);
	CHECK(g->page != NULL);
	for (unsigned i = 0; i < WORKERS; i++)
		spawn_worker(g, i);
}

static unsigned attached(const struct gen *g)
{
	return 1 + g->owner_alive + g->live;
}

static void killed(struct child *c)
{
	int st;

	kill(c->pid, SIGKILL);
	st = child_wait(c);
	CHECK_MSG(st == -SIGKILL, "process %d ended with %d before it was killed (2: a fill went astray; "
				  "4: one landed after its unmap)",
		  (int)c->pid, st);
}

/* No worker ended by itself (a fill gone astray, a failed check): say how, at once. */
static bool none_ended(struct gen *g)
{
	for (unsigned i = 0; i < WORKERS; i++) {
		int st;

		if (g->alive[i] && waitpid(g->w[i].pid, &st, WNOHANG) == g->w[i].pid)
			CHECK_MSG(false, "worker %d ended by itself: %s %d (2: a fill went astray; 4: one landed after "
					 "its unmap)", (int)g->w[i].pid, WIFEXITED(st) ? "exit" : "signal",
				  WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	}
	return true;
}

/* The survivor's checks after a death. */
static void after_death(struct gen *g)
{
	/* The survivor's own window, past the workers': the fault after its unmap is its own to see. */
	iovm_iova_t iova = IOVM_IOVA(WINDOW_BASE + WINDOWS * WINDOW_SIZE);
	struct iovm_domain *dom2;
	int ret;

	if (!g->owner_alive)
		CHECK(iovm_share_reap(g->ctx) >= 0);
	WAIT_UNTIL(none_ended(g) && (share_info(g->ctx).processes == attached(g) ||
				     (!g->owner_alive && iovm_share_reap(g->ctx) >= 0 &&
				      share_info(g->ctx).processes == attached(g))));
	CHECK_MSG(iovm_share_check(g->ctx) == 0, "%s", iovm_error_detail());
	/* The survivor's view works, and its strict unmap does not wait for the dead. */
	memset(g->page, 0, 4096);
	ret = map_at(g->ctx, g->dom, g->page, 4096, &iova);
	CHECK_MSG(ret == 0 || ret == -ENOSPC || ret == -ENOMEM, "survivor's map: %d", ret);
	if (!ret) {
		CHECK_EQ(devq_fill(&g->d, iova.addr, 4096, 0x3c), IOVM_STATUS_SUCCESS);
		CHECK(all_bytes(g->page, 4096, 0x3c));
		CHECK_OK(iovm_domain_unmap(g->dom, iova, 4096));
		if (g->deferred)
			CHECK_OK(iovm_domain_flush(g->dom));
		CHECK_EQ(devq_fill(&g->d, iova.addr, 4096, 0x3d), IOVM_STATUS_PAGE_FAULT);
	}
	/* The second domain lives only while a live process holds it: open, then let go. */
	ret = iovm_share_domain_open(g->ctx, DOM2, &dom2);
	CHECK_MSG(ret == 0 || ret == -ENOENT, "second domain: %d", ret);
	if (!ret)
		CHECK_OK(iovm_domain_destroy(dom2));
}

static void gen_end(struct gen *g)
{
	struct iovm_share_info info;
	struct iovm_domain *dom2;

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
	after_death(g);
	/* Nobody else holds the second domain: gone with its last holder. */
	CHECK_EQ(iovm_share_domain_open(g->ctx, DOM2, &dom2), -ENOENT);
	devq_close(&g->d);
	CHECK_OK(iovm_domain_destroy(g->dom));
	CHECK_OK(iovm_dma_free(g->ctx, g->page));
	info = share_info(g->ctx);
	CHECK_EQ(info.blocks, 0);
	CHECK_EQ(info.heap_free, info.heap_size);
	CHECK_OK(iovm_close(g->ctx));
}

TEST(kill_anyone_with_shared_domains)
{
	unsigned rounds = getenv("IOVM_MP_CHAOS_ROUNDS") ? (unsigned)atoi(getenv("IOVM_MP_CHAOS_ROUNDS"))
							 : (TEST_ASAN || TEST_TSAN ? 300 : 1000);
	uint64_t seed = getenv("IOVM_MP_SEED") ? strtoull(getenv("IOVM_MP_SEED"), NULL, 0) : 0xd0c4a05;
	struct gen g;

	printf("# seed %#llx, %u rounds\n", (unsigned long long)seed, rounds);
	gen_start(&g);
	for (unsigned round = 0; round < rounds; round++) {
		unsigned victim = (unsigned)(test_rand(&seed) % (WORKERS + 1));

		usleep((useconds_t)(test_rand(&seed) % 2000));
		if (victim == WORKERS && g.owner_alive && test_rand(&seed) % 4 == 0) {
			killed(&g.owner);
			g.owner_alive = false;
		} else {
			unsigned i = victim % WORKERS;

			if (!g.alive[i])
				continue;
			killed(&g.w[i]);
			g.alive[i] = false;
			g.live--;
		}
		after_death(&g);
		if (g.owner_alive) {
			for (unsigned i = 0; i < WORKERS; i++)
				if (!g.alive[i])
					spawn_worker(&g, i);
		} else if (!g.live || round % 50 == 49) {
			gen_end(&g);
			gen_start(&g);
		}
	}
	gen_end(&g);
}

int main(int argc, char **argv)
{
	uint64_t arg;
	int rd, wr;

	if (argc == 6 && !strncmp(argv[2], "worker:", 7) && child_exec_role(argc, argv, argv[2], &rd, &wr, &arg)) {
		g_name = argv[2] + 7;
		worker(rd, wr, (void *)(uintptr_t)arg);
		return 0;
	}
	test_init();
	RUN(kill_anyone_with_shared_domains);
	return 0;
}
