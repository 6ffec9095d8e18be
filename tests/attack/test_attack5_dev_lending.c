/* SPDX-License-Identifier: MIT */
/*
 * test_attack5_dev_lending.c - attack: what a client may map, and the loan
 * of mapped blocks. Promise (iovm/mp.h): a client maps only whole pages
 * every byte of which it holds (its allocations, or the share's: zones,
 * IOVM_DMA_KEEP), else -EACCES; while mapped the blocks are lent: nobody
 * frees them (-EBUSY), from any process; an unmap gives them back;
 * iovm_rqueue_unmap() takes exactly what a map made (-EINVAL otherwise).
 * Attacked with another's block, freed memory, pages half another's or
 * half free, zones and KEEP memory, realloc of a lent block, the same
 * pages mapped twice, partial and repeated unmaps, and a free in another
 * process racing the map.
 */
#include <sched.h>

#include "attack5_dev.h"

#define HEAP (UINT64_C(32) << 20)

/* A peer process: an attached context with a queue, doing what the test asks. */
enum { P_EXIT, P_FREE, P_MAP, P_UNMAP, P_ALLOC, P_ZONE_FREE, P_ZONE };

static void peer_main(int rd, int wr)
{
	struct a5_cl c = a5_client(16);

	put64(wr, 1);
	for (;;) {
		uint64_t op = get64(rd);

		if (op == P_EXIT)
			break;
		if (op == P_FREE) {
			void *p = iovm_dma_ptr(c.ctx, IOVM_PA(get64(rd)));

			put64(wr, (uint64_t)(int64_t)iovm_dma_free(c.ctx, p));
		} else if (op == P_MAP) {
			void *p = iovm_dma_ptr(c.ctx, IOVM_PA(get64(rd)));
			uint64_t len = get64(rd);
			iovm_iova_t iova = { 0 };
			int ret = iovm_rqueue_map(c.q, p, len, IOVM_MAP_READ | IOVM_MAP_WRITE, &iova);

			put64(wr, (uint64_t)(int64_t)ret);
			put64(wr, iova.addr);
		} else if (op == P_UNMAP) {
			uint64_t iova = get64(rd), len = get64(rd);

			put64(wr, (uint64_t)(int64_t)iovm_rqueue_unmap(c.q, (iovm_iova_t){ iova }, len));
		} else if (op == P_ALLOC) {
			uint64_t size = get64(rd), align = get64(rd);
			void *p = iovm_dma_alloc(c.ctx, size, align, 0);

			put64(wr, p ? a4_pa(c.ctx, p) : 0);
		} else if (op == P_ZONE_FREE || op == P_ZONE) {
			const struct iovm_zone *z;
			int ret = iovm_zone_lookup(c.ctx, "a5-zone", &z);

			if (ret == 0 && op == P_ZONE_FREE)
				ret = iovm_zone_free(c.ctx, z);
			put64(wr, (uint64_t)(int64_t)ret);
		}
	}
	a5_client_close(&c);
	a4_child_exit();
}

struct peer {
	pid_t pid;
	int rd, wr;
};

static struct peer peer_start(void)
{
	int up[2], down[2];
	struct peer p;

	CHECK(pipe(up) == 0 && pipe(down) == 0);
	p.pid = a4_fork();
	if (!p.pid) {
		close(up[0]);
		close(down[1]);
		peer_main(down[0], up[1]);
	}
	close(up[1]);
	close(down[0]);
	p.rd = up[0];
	p.wr = down[1];
	CHECK_EQ(get64(p.rd), 1);
	return p;
}

static void peer_end(struct peer *p)
{
	int st;

	put64(p->wr, P_EXIT);
	st = a4_wait_deadline(p->pid, 60);
	EXPECT_MSG(st == 0, "peer ended with %d", st);
	close(p->rd);
	close(p->wr);
}

static int peer_free(struct peer *p, uint64_t pa)
{
	put64(p->wr, P_FREE);
	put64(p->wr, pa);
	return (int)(int64_t)get64(p->rd);
}

static int peer_map(struct peer *p, uint64_t pa, uint64_t len, uint64_t *iova)
{
	int ret;

	put64(p->wr, P_MAP);
	put64(p->wr, pa);
	put64(p->wr, len);
	ret = (int)(int64_t)get64(p->rd);
	*iova = get64(p->rd);
	return ret;
}

static int peer_unmap(struct peer *p, uint64_t iova, uint64_t len)
{
	put64(p->wr, P_UNMAP);
	put64(p->wr, iova);
	put64(p->wr, len);
	return (int)(int64_t)get64(p->rd);
}

static int peer_zone(struct peer *p, uint64_t op)
{
	put64(p->wr, op);
	return (int)(int64_t)get64(p->rd);
}

static struct iovm_ctx *g_owner;

/* The share's live blocks come back to @blocks (the device process gives loans back asynchronously). */
static void blocks_back(struct iovm_ctx *ctx, uint64_t blocks, const char *what)
{
	uint64_t now = 0;

	for (unsigned ms = 0; ms < 5000; ms++) {
		now = share_info(ctx).blocks;
		if (now == blocks)
			break;
		usleep(1000);
	}
	EXPECT_MSG(now == blocks, "%s: the share holds %llu blocks, %llu expected: memory leaked", what,
		   (unsigned long long)now, (unsigned long long)blocks);
	CHECK_RET(iovm_share_check(ctx), 0);
}
static struct a5_srv g_srv;

TEST(map_only_what_is_held)
{
	struct iovm_ctx *owner = a5_setup("own", HEAP, 1, &g_srv);
	struct a5_cl a = a5_client(16);
	struct peer b = peer_start();
	iovm_iova_t io;
	uint8_t *mine, *gone, *half;
	uint64_t bpa, biova;

	g_owner = owner;
	/* Another's block. */
	bpa = 0;
	put64(b.wr, P_ALLOC);
	put64(b.wr, 16384);
	put64(b.wr, 4096);
	bpa = get64(b.rd);
	CHECK(bpa != 0);
	CHECK_RET(iovm_rqueue_map(a.q, a4_ptr(a.ctx, bpa), 16384, IOVM_MAP_READ, &io), -EACCES);
	/* And the peer may map its own. */
	CHECK_RET(peer_map(&b, bpa, 16384, &biova), 0);
	CHECK_RET(peer_unmap(&b, biova, 16384), 0);
	CHECK_RET(peer_free(&b, bpa), 0);
	/* Freed memory: one's own, just freed. */
	gone = iovm_dma_alloc(a.ctx, 65536, 4096, 0);
	CHECK(gone != NULL);
	CHECK_OK(iovm_dma_free(a.ctx, gone));
	CHECK_RET(iovm_rqueue_map(a.q, gone, 65536, IOVM_MAP_READ, &io), -EACCES);
	CHECK_RET(iovm_rqueue_map(a.q, gone, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &io), -EACCES);
	/* A block whose last page is half free: the whole page is not the client's. */
	half = iovm_dma_alloc(a.ctx, 4096 + 2048, 4096, 0);
	CHECK(half != NULL);
	if (iovm_dma_size(a.ctx, half) < 8192) {
		CHECK_RET(iovm_rqueue_map(a.q, half, 8192, IOVM_MAP_READ, &io), -EACCES);
		/* Another process's block in that half page makes it no better. */
		for (int i = 0; i < 64; i++) {
			uint64_t pa;
			uint64_t hpa = a4_pa(a.ctx, half);

			put64(b.wr, P_ALLOC);
			put64(b.wr, 2048);
			put64(b.wr, 2048);
			pa = get64(b.rd);
			CHECK(pa != 0);
			if (pa >= hpa + 4096 && pa < hpa + 8192) {
				CHECK_RET(iovm_rqueue_map(a.q, half, 8192, IOVM_MAP_READ, &io), -EACCES);
				CHECK_RET(peer_map(&b, (pa & ~4095ull), 4096, &biova), -EACCES);
				printf("# another's block in the client's half page: both refused\n");
				break;
			}
		}
	} else {
		printf("# a 6 KiB block got %zu bytes: the half-free page case not tried\n", iovm_dma_size(a.ctx, half));
	}
	/* A small block's page: the rest of it is free, or a cache's (free too). */
	{
		uint8_t *small = iovm_dma_alloc(a.ctx, 64, 64, 0);

		CHECK(small != NULL);
		CHECK_RET(iovm_rqueue_map(a.q, (void *)((uintptr_t)small & ~(uintptr_t)4095), 4096, IOVM_MAP_READ, &io),
			  -EACCES);
		CHECK_OK(iovm_dma_free(a.ctx, small));
	}
	CHECK_RET(iovm_rqueue_map(a.q, half, 4096, IOVM_MAP_READ, &io), 0);
	CHECK_RET(iovm_rqueue_unmap(a.q, io, 4096), 0);
	/* A range past the end of one's block, into free memory. */
	mine = iovm_dma_alloc(a.ctx, 8192, 4096, 0);
	CHECK(mine != NULL);
	CHECK_RET(iovm_rqueue_map(a.q, mine, 1 << 20, IOVM_MAP_READ, &io), -EACCES);
	/* Outside the heap, in the heap's last page and past it. */
	{
		struct iovm_share_info in = share_info(a.ctx);
		uint8_t *end = (uint8_t *)in.heap_va + in.heap_size;

		CHECK_RET(iovm_rqueue_map(a.q, end - 4096, 8192, IOVM_MAP_READ, &io), -EINVAL);
		CHECK(iovm_rqueue_map(a.q, end, 4096, IOVM_MAP_READ, &io) < 0);
		CHECK(iovm_rqueue_map(a.q, (uint8_t *)in.heap_va - 4096, 8192, IOVM_MAP_READ, &io) < 0);
		CHECK_RET(iovm_rqueue_map(a.q, in.heap_va, in.heap_size, IOVM_MAP_READ, &io), -EACCES);
	}
	CHECK_OK(iovm_dma_free(a.ctx, mine));
	CHECK_OK(iovm_dma_free(a.ctx, half));
	peer_end(&b);
	a5_client_close(&a);
	a5_server_end(&g_srv);
	a4_settled(owner, 1, 0, UINT64_MAX);
	CHECK_OK(iovm_close(owner));
}

TEST(lent_blocks_are_not_freed_by_anyone)
{
	struct iovm_ctx *owner = a5_setup("lend", HEAP, 1, &g_srv);
	struct a5_cl a = a5_client(16);
	struct peer b = peer_start();
	uint8_t *buf;
	iovm_iova_t io, io2;
	uint64_t pa;

	buf = iovm_dma_alloc(a.ctx, 16384, 4096, 0);
	CHECK(buf != NULL);
	pa = a4_pa(a.ctx, buf);
	io = a5_map(&a, buf, 16384, IOVM_MAP_READ | IOVM_MAP_WRITE);
	CHECK_RET(iovm_dma_free(a.ctx, buf), -EBUSY);
	CHECK_RET(iovm_dma_free(owner, a4_ptr(owner, pa)), -EBUSY);
	CHECK_RET(peer_free(&b, pa), -EBUSY);
	/* The same pages twice: both mappings lend; one unmap leaves the other's loan. */
	CHECK_RET(iovm_rqueue_map(a.q, buf, 16384, IOVM_MAP_READ | IOVM_MAP_WRITE, &io2), 0);
	EXPECT(io2.addr != io.addr);
	/* Partial, wider, shifted and empty unmaps are refused, and change nothing. */
	CHECK_RET(iovm_rqueue_unmap(a.q, io, 4096), -EINVAL);
	CHECK_RET(iovm_rqueue_unmap(a.q, (iovm_iova_t){ io.addr + 4096 }, 12288), -EINVAL);
	CHECK_RET(iovm_rqueue_unmap(a.q, (iovm_iova_t){ io.addr + 4096 }, 16384), -EINVAL);
	CHECK_RET(iovm_rqueue_unmap(a.q, io, 32768), -EINVAL);
	CHECK_RET(iovm_rqueue_unmap(a.q, io, 0), -EINVAL);
	CHECK_RET(iovm_rqueue_unmap(a.q, (iovm_iova_t){ io.addr + 1 }, 16384), -EINVAL);
	CHECK_EQ(a5_run(a.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io.addr, .len = 16384, .pattern = 0x0505050505050505 }),
		 IOVM_STATUS_SUCCESS);
	EXPECT_MSG(all_bytes(buf, 16384, 5),
		   "a FILL of 16 KiB at IOVA %#llx (mapped twice, at %#llx and %#llx) succeeded but byte %zu of the "
		   "block is %#x, not 5", (unsigned long long)io.addr, (unsigned long long)io.addr,
		   (unsigned long long)io2.addr, first_not(buf, 16384, 5), buf[first_not(buf, 16384, 5) % 16384]);
	CHECK_RET(iovm_rqueue_unmap(a.q, io, 16384), 0);
	CHECK_RET(iovm_rqueue_unmap(a.q, io, 16384), -EINVAL);
	CHECK_RET(iovm_dma_free(a.ctx, buf), -EBUSY);
	CHECK_RET(peer_free(&b, pa), -EBUSY);
	CHECK_EQ(a5_run(a.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io2.addr, .len = 16384, .pattern = 0x0606060606060606 }),
		 IOVM_STATUS_SUCCESS);
	/* The peer's unmap of the client's IOVA is not the client's unmap. */
	CHECK(peer_unmap(&b, io2.addr, 16384) < 0);
	CHECK_RET(iovm_dma_free(a.ctx, buf), -EBUSY);
	CHECK_RET(iovm_rqueue_unmap(a.q, io2, 16384), 0);
	CHECK_EQ(a5_run(a.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io2.addr, .len = 64, .pattern = 0x0707070707070707 }),
		 IOVM_STATUS_PAGE_FAULT);
	/* Given back: another process frees it now. */
	CHECK_RET(peer_free(&b, pa), 0);
	CHECK_RET(iovm_dma_free(a.ctx, buf), -EINVAL);

	/* Overlapping maps of one block. */
	buf = iovm_dma_alloc(a.ctx, 32768, 4096, 0);
	CHECK(buf != NULL);
	io = a5_map(&a, buf, 16384, IOVM_MAP_READ);
	io2 = a5_map(&a, buf + 8192, 24576, IOVM_MAP_READ | IOVM_MAP_WRITE);
	CHECK_RET(iovm_rqueue_unmap(a.q, io, 16384), 0);
	CHECK_RET(iovm_dma_free(a.ctx, buf), -EBUSY);
	CHECK_RET(iovm_rqueue_unmap(a.q, io2, 24576), 0);
	CHECK_RET(iovm_dma_free(a.ctx, buf), 0);

	/* Two blocks in one range: each is lent. */
	{
		uint8_t *x = iovm_dma_alloc(a.ctx, 4096, 4096, 0), *y = iovm_dma_alloc(a.ctx, 4096, 4096, 0);
		uint8_t *lo, *hi;

		CHECK(x && y);
		lo = x < y ? x : y;
		hi = x < y ? y : x;
		if (hi == lo + 4096) {
			io = a5_map(&a, lo, 8192, IOVM_MAP_READ);
			CHECK_RET(iovm_dma_free(a.ctx, hi), -EBUSY);
			CHECK_RET(iovm_dma_free(a.ctx, lo), -EBUSY);
			CHECK_RET(iovm_rqueue_unmap(a.q, io, 8192), 0);
		} else {
			printf("# two 4 KiB blocks not adjacent: the two-block range not tried\n");
		}
		CHECK_OK(iovm_dma_free(a.ctx, x));
		CHECK_OK(iovm_dma_free(a.ctx, y));
	}
	peer_end(&b);
	a5_client_close(&a);
	a5_server_end(&g_srv);
	a4_settled(owner, 1, 0, UINT64_MAX);
	CHECK_OK(iovm_close(owner));
}

TEST(zones_and_keep_memory)
{
	struct iovm_ctx *owner = a5_setup("zk", HEAP, 1, &g_srv);
	struct a5_cl a = a5_client(16);
	struct peer b = peer_start();
	const struct iovm_zone *z, *odd;
	iovm_iova_t io;
	uint64_t biova;
	uint8_t *keep;
	uint64_t kpa;
	struct iovm_share_info base;
	int ret;

	/* A zone is the share's: any client maps it, and while mapped nobody frees it. */
	base = share_info(owner);
	CHECK_EQ(iovm_zone_reserve(owner, "a5-zone", 8192, 4096, 0, &z), 0);
	CHECK_RET(peer_map(&b, z->pa.addr, 8192, &biova), 0);
	ret = iovm_zone_free(owner, z);
	EXPECT_MSG(ret == -EBUSY, "iovm_zone_free of a zone another client has mapped: %d, promised -EBUSY", ret);
	if (ret == 0) {
		struct iovm_share_info mid = share_info(owner);

		CHECK_RET(peer_unmap(&b, biova, 8192), 0);
		/* Freed by name while lent: once the loan ends its memory must be free again, not leaked. */
		blocks_back(owner, base.blocks, "a zone freed while lent, then unmapped");
		printf("# zone freed while lent: blocks %llu -> %llu (lent) -> %llu (unmapped), zones %u\n",
		       (unsigned long long)base.blocks, (unsigned long long)mid.blocks,
		       (unsigned long long)share_info(owner).blocks, share_info(owner).zones);
	} else {
		CHECK_RET(peer_zone(&b, P_ZONE_FREE), -EBUSY);
		CHECK_RET(peer_zone(&b, P_ZONE), 0);
		CHECK_RET(peer_unmap(&b, biova, 8192), 0);
		CHECK_RET(peer_zone(&b, P_ZONE_FREE), 0);
	}
	CHECK_RET(iovm_zone_lookup(owner, "a5-zone", &z), -ENOENT);
	/* Another process frees the zone the client maps. */
	base = share_info(owner);
	CHECK_EQ(iovm_zone_reserve(owner, "a5-zone", 8192, 4096, 0, &z), 0);
	io = a5_map(&a, a4_ptr(a.ctx, z->pa.addr), 8192, IOVM_MAP_READ);
	ret = peer_zone(&b, P_ZONE_FREE);
	EXPECT_MSG(ret == -EBUSY, "a peer's iovm_zone_free of a zone the client has mapped: %d, promised -EBUSY", ret);
	CHECK_RET(iovm_rqueue_unmap(a.q, io, 8192), 0);
	if (ret)
		CHECK_RET(peer_zone(&b, P_ZONE_FREE), 0);
	blocks_back(owner, base.blocks, "a zone freed by a peer while lent, then unmapped");
	base = share_info(owner);
	/* A zone of an odd size: its pages map, and it is lent too. */
	CHECK_EQ(iovm_zone_reserve(owner, "a5-odd", 4096 + 100, 4096, 0, &odd), 0);
	CHECK_RET(iovm_rqueue_map(a.q, a4_ptr(a.ctx, odd->pa.addr), 4096, IOVM_MAP_READ, &io), 0);
	ret = iovm_zone_free(owner, odd);
	EXPECT_MSG(ret == -EBUSY, "iovm_zone_free of a zone its own process has mapped: %d, promised -EBUSY", ret);
	CHECK_RET(iovm_rqueue_unmap(a.q, io, 4096), 0);
	if (ret)
		CHECK_RET(iovm_zone_free(owner, odd), 0);
	blocks_back(owner, base.blocks, "a zone freed by its mapper's process while lent, then unmapped");

	/* KEEP memory another process allocated: the share's, mapped by the client, freed by nobody. */
	keep = iovm_dma_alloc(owner, 16384, 4096, IOVM_DMA_KEEP);
	CHECK(keep != NULL);
	kpa = a4_pa(owner, keep);
	io = a5_map(&a, a4_ptr(a.ctx, kpa), 16384, IOVM_MAP_READ | IOVM_MAP_WRITE);
	CHECK_RET(iovm_dma_free(owner, keep), -EBUSY);
	CHECK_RET(peer_free(&b, kpa), -EBUSY);
	CHECK_RET(iovm_dma_free(a.ctx, a4_ptr(a.ctx, kpa)), -EBUSY);
	CHECK_EQ(a5_run(a.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io.addr, .len = 16384, .pattern = 0x0909090909090909 }),
		 IOVM_STATUS_SUCCESS);
	CHECK(all_bytes(keep, 16384, 9));
	/* The client goes (closes its queue and context): the KEEP memory stays the share's, not freed. */
	a5_client_close(&a);
	CHECK_RET(iovm_dma_size(owner, keep) >= 16384, 1);
	CHECK(all_bytes(keep, 16384, 9));
	CHECK_RET(peer_free(&b, kpa), 0);
	peer_end(&b);
	a5_server_end(&g_srv);
	a4_settled(owner, 1, 0, UINT64_MAX);
	CHECK_OK(iovm_close(owner));
}

/* A peer that frees, as fast as it can, whatever PA the test posts, until told to stop. */
struct race {
	_Atomic uint64_t pa;
	_Atomic unsigned round, done, stop;
	_Atomic int freed; /* 1: its free returned 0 */
	_Atomic unsigned busy;
};

static void racer(struct race *r)
{
	struct iovm_ctx *ctx = a4_attach(a5_share);
	unsigned seen = 0;

	for (;;) {
		unsigned round;

		while ((round = atomic_load(&r->round)) == seen)
			if (atomic_load(&r->stop) == 2)
				goto out;
			else
				sched_yield();
		seen = round;
		void *p = iovm_dma_ptr(ctx, IOVM_PA(atomic_load(&r->pa)));
		int freed = 0;

		while (!atomic_load(&r->stop)) {
			int ret = iovm_dma_free(ctx, p);

			if (ret == 0) {
				freed = 1;
				break;
			}
			if (ret == -EBUSY)
				atomic_fetch_add(&r->busy, 1);
			else
				EXPECT_MSG(ret == -EINVAL, "racing free: %d", ret);
		}
		atomic_store(&r->freed, freed);
		atomic_store(&r->done, round);
	}
out:
	CHECK_OK(iovm_close(ctx));
	a4_child_exit();
}

TEST(free_races_map)
{
	struct iovm_ctx *owner = a5_setup("race", HEAP, 2, &g_srv);
	struct a5_cl a = a5_client(16);
	struct race *r = a4_shared(sizeof(*r));
	uint64_t seed = a4_seed();
	unsigned rounds = 300, mapped = 0, refused = 0;
	pid_t pid;

	pid = a4_fork();
	if (!pid)
		racer(r);
	for (unsigned i = 1; i <= rounds; i++) {
		uint8_t *buf = iovm_dma_alloc(a.ctx, 65536, 4096, 0);
		iovm_iova_t io;
		int ret;

		CHECK(buf != NULL);
		memset(buf, 0x42, 65536);
		atomic_store(&r->stop, 0);
		atomic_store(&r->pa, a4_pa(a.ctx, buf));
		atomic_store(&r->round, i);
		for (unsigned spin = a5_rand(&seed) % 20000; spin; spin--)
			__asm__ volatile("" ::: "memory");
		ret = iovm_rqueue_map(a.q, buf, 65536, IOVM_MAP_READ | IOVM_MAP_WRITE, &io);
		atomic_store(&r->stop, 1);
		WAIT_UNTIL(atomic_load(&r->done) == i);
		if (ret == 0) {
			mapped++;
			EXPECT_MSG(!atomic_load(&r->freed), "round %u: mapped, and another process freed the block meanwhile", i);
			CHECK_EQ(a5_run(a.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io.addr, .len = 65536,
								 .pattern = 0x0101010101010101 }),
				 IOVM_STATUS_SUCCESS);
			CHECK_OK(iovm_rqueue_unmap(a.q, io, 65536));
			if (!atomic_load(&r->freed))
				CHECK_OK(iovm_dma_free(a.ctx, buf));
		} else {
			refused++;
			EXPECT_MSG(ret == -EACCES, "round %u: map %d", i, ret);
			EXPECT_MSG(atomic_load(&r->freed), "round %u: map refused (%d) but nobody freed the block", i, ret);
		}
	}
	atomic_store(&r->stop, 2);
	EXPECT_EQ(a4_wait_deadline(pid, 60), 0);
	printf("# %u rounds: %u mapped first, %u freed first, %u frees refused busy\n", rounds, mapped, refused,
	       atomic_load(&r->busy));
	a5_client_close(&a);
	a5_server_end(&g_srv);
	a4_settled(owner, 1, 0, UINT64_MAX);
	CHECK_OK(iovm_close(owner));
}

/*
 * realloc of a lent block: moving it must not free the old block while the
 * device still maps it (nor may shrinking it in place free its lent
 * tail): the old block stays held (nobody else is given its pages) until
 * the unmap, and then goes.
 */
TEST(realloc_of_lent_block)
{
	struct iovm_ctx *owner = a5_setup("realloc", HEAP, 1, &g_srv);
	struct a5_cl a = a5_client(16);
	struct peer b = peer_start();
	struct iovm_share_info before;
	uint8_t *buf, *r;
	iovm_iova_t io;
	uint64_t pa;

	buf = iovm_dma_alloc(a.ctx, 16384, 4096, 0);
	CHECK(buf != NULL);
	pa = a4_pa(a.ctx, buf);
	io = a5_map(&a, buf, 16384, IOVM_MAP_READ | IOVM_MAP_WRITE);
	before = share_info(a.ctx);
	r = iovm_dma_realloc(a.ctx, buf, 65536 * 4, 4096, 0);
	if (r && r != buf) {
		/* Moved: acceptable only if the old block stays held until the loan ends, then is freed. */
		struct iovm_share_info after = share_info(a.ctx);
		uint64_t got = 0;
		int probes = 0;

		EXPECT_MSG(after.blocks == before.blocks + 1,
			   "iovm_dma_realloc moved a lent block (PA %#llx -> %#llx) and the share holds %llu blocks "
			   "(before %llu): the lent block was freed while the device maps it",
			   (unsigned long long)pa, (unsigned long long)a4_pa(a.ctx, r), (unsigned long long)after.blocks,
			   (unsigned long long)before.blocks);
		for (; probes < 64 && got != pa; probes++) {
			put64(b.wr, P_ALLOC);
			put64(b.wr, 16384);
			put64(b.wr, 4096);
			got = get64(b.rd);
		}
		EXPECT_MSG(got != pa, "the lent block's PA %#llx was allocated again by another process after a realloc",
			   (unsigned long long)pa);
		CHECK_OK(iovm_rqueue_unmap(a.q, io, 16384));
		CHECK_OK(iovm_dma_free(a.ctx, r));
		{
			int fr = iovm_dma_free(a.ctx, buf);

			EXPECT_MSG(fr == -EINVAL, "after the realloc moved the lent block and the unmap, the old block "
				   "was still allocated (iovm_dma_free of the old pointer: %d): realloc did not free it", fr);
		}
		blocks_back(a.ctx, before.blocks - 1 + (uint64_t)probes, "a block realloc'd away while lent, then unmapped");
		peer_end(&b);
		a5_client_close(&a);
		a5_server_end(&g_srv);
		a4_settled(owner, 1, 0, UINT64_MAX);
		CHECK_OK(iovm_close(owner));
		return;
	}
	if (r == buf) {
		r = iovm_dma_realloc(a.ctx, buf, 4096, 4096, 0);
		EXPECT_MSG(r == NULL || (r == buf && iovm_dma_size(a.ctx, r) >= 16384),
			   "realloc shrank a lent block to %zu bytes: its lent tail was freed",
			   r ? iovm_dma_size(a.ctx, r) : 0);
		if (r && r != buf)
			buf = r;
	}
	CHECK_OK(iovm_rqueue_unmap(a.q, io, 16384));
	CHECK_OK(iovm_dma_free(a.ctx, buf));
	peer_end(&b);
	a5_client_close(&a);
	a5_server_end(&g_srv);
	a4_settled(owner, 1, 0, UINT64_MAX);
	CHECK_OK(iovm_close(owner));
}

int main(void)
{
	a4_init();
	RUN(map_only_what_is_held);
	RUN(lent_blocks_are_not_freed_by_anyone);
	RUN(zones_and_keep_memory);
	RUN(free_races_map);
	RUN(realloc_of_lent_block);
	return attack_status();
}
