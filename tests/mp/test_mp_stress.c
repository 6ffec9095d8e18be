/* SPDX-License-Identifier: MIT */
/*
 * test_mp_stress.c - 2, 4 and 16 processes on one shared heap at once:
 * each allocates, fills, translates and frees its own blocks, and hands
 * blocks to the others through a mailbox zone (by PA: pointers differ
 * between processes), which they check and free. Every block is checked
 * whole before it is freed, so two live blocks that overlapped would be
 * seen; at the end the heap holds the mailbox and nothing else.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "mp_tags.h"
#include "mp_util.h"

#define HEAP (UINT64_C(32) << 20)
#define MAILBOX 512
#define OWN 64

struct mailbox {
	_Atomic uint64_t pa[MAILBOX]; /* a posted block's PA; 0: empty; 1: being posted */
	_Atomic uint64_t tag[MAILBOX];
	_Atomic uint64_t size[MAILBOX];
	_Atomic uint64_t posted, taken;
};

static const char *g_name;
static unsigned g_steps;

static uint64_t rand_size(uint64_t *seed)
{
	uint64_t r = test_rand(seed);

	return r % 4 ? 1 + r % 512 : 1 + (r >> 8) % 16384;
}

static void worker(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	uint64_t seed = 0x1234567 + (uintptr_t)arg * 7919, seq = 0;
	struct { uint8_t *p; uint64_t size, tag; } own[OWN];
	const struct iovm_zone *z;
	struct mailbox *mb;
	unsigned n = 0;

	(void)rd;
	CHECK_OK(iovm_zone_lookup(ctx, "mailbox", &z));
	mb = z->va;
	for (unsigned step = 0; step < g_steps; step++) {
		uint64_t r = test_rand(&seed) % 8;

		if (r < 3 && n < OWN) {
			uint64_t size = rand_size(&seed), tag = ((uint64_t)getpid() << 32) | ++seq;
			uint8_t *p = iovm_dma_alloc(ctx, size, 0, r == 0 ? IOVM_DMA_KEEP : 0);
			iovm_pa_t pa;

			CHECK_MSG(p != NULL, "alloc %llu: %s", (unsigned long long)size, strerror(errno));
			tag_fill(p, size, tag);
			CHECK_OK(iovm_dma_pa(ctx, p, &pa));
			CHECK(iovm_dma_ptr(ctx, pa) == p);
			CHECK(iovm_dma_size(ctx, p) >= size);
			/* Kept blocks go to the mailbox, for another process to free. */
			if (r == 0) {
				unsigned i = (unsigned)(test_rand(&seed) % MAILBOX);
				uint64_t empty = 0;

				/* Claimed (1: being written), filled, then posted. */
				if (atomic_compare_exchange_strong(&mb->pa[i], &empty, 1)) {
					atomic_store(&mb->tag[i], tag);
					atomic_store(&mb->size[i], size);
					atomic_store(&mb->pa[i], pa.addr);
					atomic_fetch_add(&mb->posted, 1);
					continue;
				}
				/* Taken: keep it as one's own (kept memory can be freed by anyone, its maker too). */
			}
			own[n].p = p;
			own[n].size = size;
			own[n].tag = tag;
			n++;
		} else if (r < 6 && n) {
			unsigned i = (unsigned)(test_rand(&seed) % n);

			CHECK_MSG(tag_intact(own[i].p, own[i].size, own[i].tag), "block %p of %llu bytes was overwritten",
				  (void *)own[i].p, (unsigned long long)own[i].size);
			CHECK_OK(iovm_dma_free(ctx, own[i].p));
			own[i] = own[--n];
		} else {
			unsigned i = (unsigned)(test_rand(&seed) % MAILBOX);
			uint64_t pa = atomic_load(&mb->pa[i]), tag, size;
			uint8_t *p;

			/*
			 * The tag and size are written before the PA is posted, and read
			 * while the slot is held (1): emptied before, a poster could
			 * claim the slot and write its own tag over them first.
			 */
			if (pa <= 1 || !atomic_compare_exchange_strong(&mb->pa[i], &pa, 1))
				continue;
			tag = atomic_load(&mb->tag[i]);
			size = atomic_load(&mb->size[i]);
			atomic_store(&mb->pa[i], 0);
			p = iovm_dma_ptr(ctx, IOVM_PA(pa));
			CHECK(p != NULL);
			CHECK_MSG(tag_intact(p, size, tag), "a posted block of %llu bytes was overwritten",
				  (unsigned long long)size);
			CHECK_OK(iovm_dma_free(ctx, p));
			atomic_fetch_add(&mb->taken, 1);
		}
	}
	while (n--) {
		CHECK(tag_intact(own[n].p, own[n].size, own[n].tag));
		CHECK_OK(iovm_dma_free(ctx, own[n].p));
	}
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
	put64(wr, 1);
}

static void run(unsigned nproc)
{
	struct iovm_share_info info;
	const struct iovm_zone *z;
	struct child c[16];
	struct iovm_ctx *ctx;
	struct mailbox *mb;
	uint64_t free0;

	g_name = share_name("stress");
	ctx = share_ok(g_name, HEAP);
	CHECK_EQ(iovm_zone_reserve(ctx, "mailbox", sizeof(*mb), 0, 0, &z), 0);
	mb = z->va;
	free0 = share_info(ctx).heap_free;
	for (unsigned i = 0; i < nproc; i++)
		c[i] = child_start(worker, (void *)(uintptr_t)i);
	for (unsigned i = 0; i < nproc; i++) {
		CHECK_EQ(get64(c[i].rd), 1);
		child_ok(&c[i]);
	}
	/* What is still posted was kept: the owner frees it. */
	for (unsigned i = 0; i < MAILBOX; i++) {
		uint64_t pa = atomic_load(&mb->pa[i]);
		uint8_t *p;

		if (!pa)
			continue;
		p = iovm_dma_ptr(ctx, IOVM_PA(pa));
		CHECK(tag_intact(p, atomic_load(&mb->size[i]), atomic_load(&mb->tag[i])));
		CHECK_OK(iovm_dma_free(ctx, p));
		atomic_fetch_add(&mb->taken, 1);
	}
	CHECK_EQ(atomic_load(&mb->posted), atomic_load(&mb->taken));
	info = share_info(ctx);
	printf("# %u processes: %llu blocks handed between processes, %llu attachments\n", nproc,
	       (unsigned long long)atomic_load(&mb->posted), (unsigned long long)info.attaches);
	CHECK(atomic_load(&mb->posted) > 0);
	CHECK_EQ(info.blocks, 1);
	CHECK_EQ(info.heap_free, free0);
	CHECK_EQ(info.processes, 1);
	CHECK_EQ(info.reaped, 0);
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
}

TEST(two)
{
	run(2);
}

TEST(four)
{
	run(4);
}

TEST(sixteen)
{
	run(16);
}

int main(void)
{
	test_init();
	g_steps = getenv("IOVM_MP_STEPS") ? (unsigned)atoi(getenv("IOVM_MP_STEPS")) : (TEST_ASAN || TEST_TSAN ? 2000 : 10000);
	RUN(two);
	RUN(four);
	RUN(sixteen);
	return 0;
}
