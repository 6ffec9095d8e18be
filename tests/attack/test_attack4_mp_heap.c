/* SPDX-License-Identifier: MIT */
/*
 * test_attack4_mp_heap.c - attacks on "the DMA heap is one heap" between
 * real processes (iovm/mp.h): foreign and interior pointers, the PAs at
 * and beyond the heap's edges, sizes and alignments at the limits checked
 * in the process that allocated and in another one, exhaustion with no
 * fall back to private memory, recovery after the death of the process
 * that exhausted it (with and without an owner), realloc of another
 * process's memory, ownership of a reused address, and two processes
 * freeing one block at once.
 */
#include "attack4_mp.h"

#define HEAP (UINT64_C(8) << 20)

/* A rendezvous page: the parent's commands and the children's answers. */
struct ctl {
	_Atomic uint64_t go;      /* round number the children wait for */
	_Atomic uint64_t done;    /* children finished with the round */
	_Atomic uint64_t pa;      /* the block of the round */
	_Atomic int64_t res[4];   /* what each child's call returned */
	_Atomic uint64_t ready;
	_Atomic uint64_t stop;
	_Atomic uint64_t mail[64];
};

static const char *g_name;

static void spin_until(_Atomic uint64_t *v, uint64_t want)
{
	unsigned long n = 0;

	while (atomic_load(v) < want) {
		if (++n % 1024 == 0)
			usleep(100);
		CHECK_MSG(n < 400000000ul, "waited too long for the other process");
	}
}

/* Frees of what is not a block of this share, through an attached context. */
TEST(foreign_pointers)
{
	struct iovm_ctx *own, *other_own, *att;
	struct iovm_share_info in, oin;
	const char *other_name = share_name("a4foreign2");
	uint8_t *priv, *p, *q, *heap;
	void *m = malloc(64);
	int stack_var = 0;
	pid_t pid;

	g_name = share_name("a4foreign");
	/* What the owner allocated before sharing stays its own, and valid. */
	CHECK_OK(iovm_open("log_level=error,page_size=4K", &own));
	priv = iovm_dma_alloc(own, 4096, 0, 0);
	CHECK(priv != NULL);
	memset(priv, 0x11, 4096);
	{
		struct iovm_share_params sp = { .heap_size = HEAP, .page_size = 4096, .group = -1 };

		CHECK_OK(iovm_share(own, g_name, &sp));
	}
	in = share_info(own);
	EXPECT(all_bytes(priv, 4096, 0x11));
	EXPECT_EQ(iovm_dma_size(own, priv), 4096);
	{
		uint64_t pa = a4_pa(own, priv);

		EXPECT_MSG(pa < in.heap_pa.addr || pa >= in.heap_pa.addr + in.heap_size,
			   "a block allocated before iovm_share() is inside the shared heap");
	}
	other_own = a4_share(other_name, HEAP);
	oin = share_info(other_own);
	q = iovm_dma_alloc(other_own, 4096, 0, 0);
	CHECK(q != NULL);
	p = iovm_dma_alloc(own, 4096, 0, 0);
	CHECK(p != NULL);
	heap = in.heap_va;
	CHECK(p >= heap && p < heap + in.heap_size);

	pid = a4_fork();
	if (!pid) {
		struct iovm_share_info ain;
		uint8_t *mine;

		att = a4_attach(g_name);
		ain = share_info(att);
		mine = iovm_dma_alloc(att, 8192, 0, 0);
		CHECK(mine != NULL);
		/* The owner's pointers are numbers in another address space. */
		if ((uintptr_t)p < (uintptr_t)ain.heap_va ||
		    (uintptr_t)p >= (uintptr_t)ain.heap_va + ain.heap_size)
			CHECK_RET(iovm_dma_free(att, p), -EINVAL);
		CHECK_RET(iovm_dma_free(att, m), -EINVAL);
		CHECK_RET(iovm_dma_free(att, &stack_var), -EINVAL);
		CHECK_RET(iovm_dma_free(att, mine + 1), -EINVAL);
		CHECK_RET(iovm_dma_free(att, mine + 4096), -EINVAL);
		CHECK_RET(iovm_dma_free(att, mine + 8191), -EINVAL);
		CHECK_RET(iovm_dma_free(att, (uint8_t *)ain.heap_va - 1), -EINVAL);
		CHECK_RET(iovm_dma_free(att, (uint8_t *)ain.heap_va + ain.heap_size), -EINVAL);
		CHECK_RET(iovm_dma_free(att, (uint8_t *)ain.heap_va + ain.heap_size - 16), -EINVAL);
		CHECK_RET(iovm_dma_free(att, (void *)(uintptr_t)16), -EINVAL);
		CHECK_RET(iovm_dma_free(att, (void *)UINTPTR_MAX), -EINVAL);
		CHECK_RET(iovm_dma_free(att, NULL), 0);
		errno = 0;
		EXPECT_EQ(iovm_dma_size(att, mine + 1), 0);
		EXPECT_EQ(errno, EINVAL);
		EXPECT_EQ(iovm_dma_size(att, m), 0);
		/* The realloc of a foreign pointer fails and leaves it alone. */
		CHECK_NULL_ERRNO(iovm_dma_realloc(att, m, 128, 0, 0), EINVAL);
		CHECK_NULL_ERRNO(iovm_dma_realloc(att, mine + 16, 128, 0, 0), EINVAL);
		EXPECT(iovm_dma_size(att, mine) >= 8192);
		CHECK_RET(iovm_dma_free(att, mine), 0);
		CHECK_RET(iovm_dma_free(att, mine), -EINVAL);
		CHECK_RET(iovm_share_check(att), 0);
		CHECK_OK(iovm_close(att));
		a4_child_exit();
	}
	EXPECT_EQ(a4_wait(pid), 0);
	/* A block of another share, through this one's context: not ours. */
	CHECK_RET(iovm_dma_free(own, q), -EINVAL);
	EXPECT_EQ(iovm_dma_size(own, q), 0);
	CHECK_RET(iovm_dma_free(own, (uint8_t *)oin.heap_va + 64), -EINVAL);
	EXPECT(iovm_dma_size(other_own, q) >= 4096);
	/* The private block is still freed through the context that made it. */
	CHECK_RET(iovm_dma_free(own, priv), 0);
	CHECK_RET(iovm_dma_free(own, priv), -EINVAL);
	CHECK_RET(iovm_dma_free(own, p), 0);
	CHECK_RET(iovm_dma_free(other_own, q), 0);
	a4_settled(own, 1, 0, in.heap_free);
	a4_settled(other_own, 1, 0, oin.heap_free);
	CHECK_OK(iovm_close(other_own));
	CHECK_OK(iovm_close(own));
	free(m);
}

/* iovm_dma_ptr() at and beyond the heap's edges: NULL/ENOENT, or a pointer that translates back. */
static void check_ptr_edge(struct iovm_ctx *ctx, uint64_t pa, const char *what)
{
	void *p;

	errno = 0;
	p = iovm_dma_ptr(ctx, IOVM_PA(pa));
	if (!p) {
		EXPECT_MSG(errno == ENOENT, "iovm_dma_ptr(%s %#llx): NULL errno %d", what,
			   (unsigned long long)pa, errno);
		return;
	}
	{
		iovm_pa_t back;
		int r = iovm_dma_pa(ctx, p, &back);

		EXPECT_MSG(r == 0 && back.addr == pa, "iovm_dma_ptr(%s %#llx) = %p, which translates to %d/%#llx",
			   what, (unsigned long long)pa, p, r, (unsigned long long)back.addr);
	}
}

static void ptr_edges_in(struct iovm_ctx *ctx)
{
	struct iovm_share_info in = share_info(ctx);
	uint64_t lo = in.heap_pa.addr, hi = lo + in.heap_size;
	uint8_t *va = in.heap_va;

	check_ptr_edge(ctx, 0, "zero");
	check_ptr_edge(ctx, UINT64_MAX, "all ones");
	check_ptr_edge(ctx, UINT64_MAX - 4095, "last page");
	check_ptr_edge(ctx, lo - 1, "heap-1");
	check_ptr_edge(ctx, lo, "heap");
	check_ptr_edge(ctx, hi - 1, "end-1");
	check_ptr_edge(ctx, hi, "end");
	check_ptr_edge(ctx, hi + 4096, "end+4K");
	check_ptr_edge(ctx, lo + (UINT64_C(1) << 52), "far");
	/* Inside the heap, a pointer inside this process's mapping of it. */
	for (uint64_t off = 0; off < in.heap_size; off += in.heap_size / 8 + 4095) {
		uint8_t *p = iovm_dma_ptr(ctx, IOVM_PA(lo + off));

		if (p)
			EXPECT_MSG(p == va + off, "PA heap+%#llx: %p, not %p", (unsigned long long)off,
				   (void *)p, (void *)(va + off));
	}
}

TEST(ptr_edges)
{
	struct ctl *ctl = a4_shared(sizeof(*ctl));
	struct iovm_ctx *own;
	struct iovm_share_info in;
	uint8_t *first, *last;
	size_t lastsz = 4096;
	pid_t pid;

	g_name = share_name("a4edges");
	own = a4_share(g_name, HEAP);
	in = share_info(own);
	/* Fill the heap so that its first and last bytes are in blocks. */
	first = iovm_dma_alloc(own, in.heap_free / 2, 0, 0);
	CHECK(first != NULL);
	last = NULL;
	for (size_t sz = in.heap_size; sz >= 64; sz /= 2) {
		void *b;

		while ((b = iovm_dma_alloc(own, sz, 0, 0))) {
			if (!last || b > (void *)last) {
				last = b;
				lastsz = sz;
			}
		}
	}
	CHECK(last != NULL);
	ctl->mail[0] = a4_pa(own, last);
	ctl->mail[1] = lastsz;
	ptr_edges_in(own);
	pid = a4_fork();
	if (!pid) {
		struct iovm_ctx *att = a4_attach(g_name);
		struct iovm_share_info ain = share_info(att);

		EXPECT_EQ(ain.heap_pa.addr, in.heap_pa.addr);
		EXPECT_EQ(ain.heap_size, in.heap_size);
		ptr_edges_in(att);
		/* Interior pointers of the last block, and its last byte, translate here too. */
		{
			uint8_t *l = a4_ptr(att, ctl->mail[0]);

			for (size_t off = 0; off < ctl->mail[1]; off += 61)
				EXPECT(iovm_dma_ptr(att, IOVM_PA(ctl->mail[0] + off)) == l + off);
			EXPECT_EQ(a4_pa(att, l + ctl->mail[1] - 1), ctl->mail[0] + ctl->mail[1] - 1);
		}
		CHECK_OK(iovm_close(att));
		a4_child_exit();
	}
	EXPECT_EQ(a4_wait(pid), 0);
	{
		uint64_t pa = a4_pa(own, last);

		for (size_t off = 0; off < lastsz; off += 61)
			EXPECT(iovm_dma_ptr(own, IOVM_PA(pa + off)) == last + off);
		EXPECT(iovm_dma_ptr(own, IOVM_PA(pa + lastsz - 1)) == last + lastsz - 1);
	}
	CHECK_OK(iovm_close(own));
	munmap(ctl, sizeof(*ctl));
}

/* Sizes and alignments at the edges; each block checked again in a second process. */
struct edge_case {
	size_t size, align;
	uint32_t flags;
};

TEST(sizes_and_alignments)
{
	static const struct edge_case cases[] = {
		{ 1, 0, 0 },          { 1, 1, 0 },        { 1, 4096, 0 },
		{ 64, 1u << 20, 0 },  { 3, 64, 0 },       { 4095, 8192, 0 },
		{ 4097, 4096, 0 },    { 100000, 65536, 0 }, { 1u << 20, 1u << 20, 0 },
		{ 3000, 0, IOVM_DMA_BOUNDARY(12) },       { 4096, 0, IOVM_DMA_BOUNDARY(12) },
		{ 40000, 0, IOVM_DMA_BOUNDARY(16) },      { 65536, 0, IOVM_DMA_BOUNDARY(16) },
		{ 100, 256, IOVM_DMA_BOUNDARY(8) },       { 1, 0, IOVM_DMA_BOUNDARY(1) },
		{ 5000, 0, IOVM_DMA_ZERO | IOVM_DMA_CONTIG },
		{ 70000, 4096, IOVM_DMA_KEEP | IOVM_DMA_ZERO },
	};
	const size_t n = sizeof(cases) / sizeof(cases[0]);
	struct ctl *ctl = a4_shared(sizeof(*ctl));
	struct iovm_share_info in;
	struct iovm_ctx *own;
	void *b[32];
	pid_t pid;

	g_name = share_name("a4sizes");
	own = a4_share(g_name, HEAP);
	in = share_info(own);
	for (size_t i = 0; i < n; i++) {
		const struct edge_case *c = &cases[i];
		size_t align = c->align ? c->align : 16;
		uint64_t pa;

		b[i] = iovm_dma_alloc(own, c->size, c->align, c->flags);
		CHECK_MSG(b[i] != NULL, "case %zu: alloc(%zu, %zu, %#x): %s", i, c->size, c->align,
			  c->flags, strerror(errno));
		pa = a4_pa(own, b[i]);
		EXPECT_MSG((uintptr_t)b[i] % align == 0, "case %zu: VA %p not aligned to %zu", i, b[i], align);
		EXPECT_MSG(pa % align == 0, "case %zu: PA %#llx not aligned to %zu", i,
			   (unsigned long long)pa, align);
		EXPECT_MSG(pa >= in.heap_pa.addr && pa + c->size <= in.heap_pa.addr + in.heap_size,
			   "case %zu: outside the shared heap", i);
		EXPECT(iovm_dma_size(own, b[i]) >= c->size);
		if (c->flags & (IOVM_DMA_ZERO))
			EXPECT(all_bytes(b[i], c->size, 0));
		if (c->flags & 0xff00) {
			unsigned shift = (c->flags >> 8) & 0xff;

			EXPECT_MSG(pa >> shift == (pa + c->size - 1) >> shift,
				   "case %zu: PA %#llx+%zu crosses 2^%u", i, (unsigned long long)pa, c->size, shift);
			EXPECT_MSG((uintptr_t)b[i] >> shift == ((uintptr_t)b[i] + c->size - 1) >> shift,
				   "case %zu: VA crosses 2^%u", i, shift);
		}
		{
			struct iovm_dma_xlate x;

			CHECK_OK(iovm_dma_xlate(own, b[i], &x));
			if (c->flags & IOVM_DMA_CONTIG)
				EXPECT(x.contig >= c->size);
		}
		a4_fill(b[i], c->size, i);
		ctl->mail[i] = pa;
	}
	pid = a4_fork();
	if (!pid) {
		struct iovm_ctx *att = a4_attach(g_name);

		for (size_t i = 0; i < n; i++) {
			const struct edge_case *c = &cases[i];
			size_t align = c->align ? c->align : 16;
			uint8_t *p = a4_ptr(att, ctl->mail[i]);

			EXPECT_MSG(a4_bad(p, c->size, i) == c->size, "case %zu: contents differ", i);
			EXPECT(iovm_dma_size(att, p) >= c->size);
			/* Up to a page, alignment is the pointer's in every process. */
			if (align <= 4096)
				EXPECT_MSG((uintptr_t)p % align == 0,
					   "case %zu: aligned to %zu in the allocating process, not here (%p)", i,
					   align, (void *)p);
			else if ((uintptr_t)p % align)
				printf("# note: case %zu: alignment %zu holds in PA and in the allocating "
				       "process only (here %p)\n", i, align, (void *)p);
			if (c->flags & 0xff00) {
				unsigned shift = (c->flags >> 8) & 0xff;

				if (shift <= 12)
					EXPECT_MSG((uintptr_t)p >> shift == ((uintptr_t)p + c->size - 1) >> shift,
						   "case %zu: VA crosses 2^%u in the second process", i, shift);
			}
			/* Freed by the process that did not allocate it. */
			CHECK_RET(iovm_dma_free(att, p), 0);
		}
		CHECK_RET(iovm_share_check(att), 0);
		CHECK_OK(iovm_close(att));
		a4_child_exit();
	}
	EXPECT_EQ(a4_wait(pid), 0);
	for (size_t i = 0; i < n; i++)
		EXPECT_EQ(iovm_dma_size(own, b[i]), 0);
	/* What no heap of this size can give. */
	CHECK_NULL_ERRNO(iovm_dma_alloc(own, HEAP + 1, 0, 0), ENOMEM);
	CHECK_NULL_ERRNO(iovm_dma_alloc(own, SIZE_MAX, 0, 0), ENOMEM);
	CHECK_NULL_ERRNO(iovm_dma_alloc(own, SIZE_MAX - 4095, 4096, 0), ENOMEM);
	CHECK_NULL_ERRNO(iovm_dma_alloc(own, (size_t)1 << 62, 0, 0), ENOMEM);
	CHECK_NULL_ERRNO(iovm_dma_alloc(own, 64, (size_t)1 << 30, 0), ENOMEM);
	CHECK_NULL_ERRNO(iovm_dma_alloc(own, 64, (size_t)1 << 31, 0), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_alloc(own, 8192, 0, IOVM_DMA_BOUNDARY(12)), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_alloc(own, 64, 0, IOVM_DMA_BOUNDARY(41)), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_alloc(own, 64, 0, IOVM_DMA_BOUNDARY(0) | (1u << 7)), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_realloc(own, NULL, SIZE_MAX, 0, 0), ENOMEM);
	CHECK_NULL_ERRNO(iovm_dma_zalloc(own, HEAP * 2, 0, 0), ENOMEM);
	/* A block as large as all that is free, when it fits at all, is inside the heap. */
	{
		struct iovm_share_info now = share_info(own);
		void *all = iovm_dma_alloc(own, now.heap_free, 0, 0);

		if (all) {
			uint64_t pa = a4_pa(own, all);

			EXPECT(pa >= in.heap_pa.addr && pa + now.heap_free <= in.heap_pa.addr + in.heap_size);
			EXPECT_EQ(share_info(own).heap_free, 0);
			CHECK_RET(iovm_dma_free(own, all), 0);
		} else {
			EXPECT_EQ(errno, ENOMEM);
		}
	}
	a4_settled(own, 1, 0, in.heap_free);
	CHECK_OK(iovm_close(own));
	munmap(ctl, sizeof(*ctl));
}

/* Fill the heap: the blocks, their count; nothing may come from outside the heap. */
static unsigned fill_heap(struct iovm_ctx *ctx, void **out, unsigned max)
{
	struct iovm_share_info in = share_info(ctx);
	unsigned n = 0;

	for (size_t sz = 1u << 20; sz >= 64; sz /= 4) {
		void *b;

		while (n < max && (b = iovm_dma_alloc(ctx, sz, 0, 0))) {
			uint64_t pa = a4_pa(ctx, b);

			EXPECT_MSG(pa >= in.heap_pa.addr && pa < in.heap_pa.addr + in.heap_size,
				   "a block of %zu at PA %#llx, outside the shared heap [%#llx, +%#llx)",
				   sz, (unsigned long long)pa, (unsigned long long)in.heap_pa.addr,
				   (unsigned long long)in.heap_size);
			out[n++] = b;
		}
		if (n < max)
			EXPECT_MSG(errno == ENOMEM, "alloc(%zu) on a full heap: errno %d", sz, errno);
	}
	CHECK(n < max);
	return n;
}

static void *g_blocks[1 << 16];

TEST(exhaustion_then_recovery_with_owner)
{
	struct ctl *ctl = a4_shared(sizeof(*ctl));
	struct iovm_share_info in, now;
	const struct iovm_zone *z;
	struct iovm_ctx *own;
	pid_t pid;

	g_name = share_name("a4exhaust");
	own = a4_share(g_name, HEAP);
	in = share_info(own);
	pid = a4_fork();
	if (!pid) {
		struct iovm_ctx *att = a4_attach(g_name);

		ctl->res[0] = fill_heap(att, g_blocks, 1 << 16);
		/* A zone cannot come from elsewhere either. */
		ctl->res[1] = iovm_zone_reserve(att, "a4-full", 4096, 0, 0, &z);
		ctl->res[2] = atomic_load(&attack_broken);
		atomic_store(&ctl->ready, 1);
		for (;;)
			pause();
	}
	spin_until(&ctl->ready, 1);
	CHECK(ctl->res[0] > 0);
	EXPECT_EQ(ctl->res[1], -ENOMEM);
	EXPECT_MSG(ctl->res[2] == 0, "the filler saw %lld broken promise(s), above", (long long)ctl->res[2]);
	now = share_info(own);
	EXPECT_EQ(now.blocks, (uint64_t)ctl->res[0]);
	CHECK_NULL_ERRNO(iovm_dma_alloc(own, 4096, 0, 0), ENOMEM);
	CHECK_RET(iovm_share_check(own), 0);
	a4_kill(pid);
	/* The owner frees the dead one's memory by itself. */
	a4_settled(own, 1, 0, in.heap_free);
	{
		void *big = iovm_dma_alloc(own, in.heap_free / 2, 0, 0);

		EXPECT_MSG(big != NULL, "after the death, half the heap: %s", strerror(errno));
		if (big)
			CHECK_RET(iovm_dma_free(own, big), 0);
	}
	now = share_info(own);
	EXPECT(now.reaped >= 1);
	EXPECT_EQ(now.reaped_blocks, (uint64_t)ctl->res[0]);
	CHECK_OK(iovm_close(own));
	munmap(ctl, sizeof(*ctl));
}

TEST(exhaustion_then_recovery_without_owner)
{
	struct ctl *ctl = a4_shared(sizeof(*ctl));
	struct iovm_share_info in;
	struct iovm_ctx *att;
	pid_t owner, filler;
	void *big;

	g_name = share_name("a4exhaust2");
	owner = a4_fork();
	if (!owner) {
		struct iovm_ctx *own = a4_share(g_name, HEAP);

		ctl->mail[0] = share_info(own).heap_free;
		atomic_store(&ctl->ready, 1);
		spin_until(&ctl->stop, 1);
		CHECK_OK(iovm_close(own));
		a4_child_exit();
	}
	spin_until(&ctl->ready, 1);
	att = a4_attach(g_name);
	in = share_info(att);
	filler = a4_fork();
	if (!filler) {
		struct iovm_ctx *a = a4_attach(g_name);

		ctl->res[0] = fill_heap(a, g_blocks, 1 << 16);
		ctl->res[2] = atomic_load(&attack_broken);
		atomic_store(&ctl->ready, 2);
		for (;;)
			pause();
	}
	spin_until(&ctl->ready, 2);
	EXPECT_MSG(ctl->res[2] == 0, "the filler saw %lld broken promise(s), above", (long long)ctl->res[2]);
	/* The owner closes: nobody watches the filler any more. */
	atomic_store(&ctl->stop, 1);
	EXPECT_EQ(a4_wait(owner), 0);
	CHECK_NULL_ERRNO(iovm_dma_alloc(att, 65536, 0, 0), ENOMEM);
	a4_kill(filler); /* reaped: a zombie no more */
	/* The allocation that would fail reaps the dead, and succeeds. */
	big = iovm_dma_alloc(att, (size_t)ctl->mail[0] / 2, 0, 0);
	EXPECT_MSG(big != NULL, "ownerless: an allocation after the filler's death: %s (%s)",
		   strerror(errno), iovm_error_detail());
	if (!big) {
		/* Did it reap, and only fail to retry? */
		printf("# after the failed allocation: reaped %llu, heap_free %llu\n",
		       (unsigned long long)share_info(att).reaped,
		       (unsigned long long)share_info(att).heap_free);
		big = iovm_dma_alloc(att, (size_t)ctl->mail[0] / 2, 0, 0);
	}
	if (big)
		CHECK_RET(iovm_dma_free(att, big), 0);
	a4_settled(att, 1, 0, ctl->mail[0]);
	(void)in;
	CHECK_OK(iovm_close(att));
	munmap(ctl, sizeof(*ctl));
}

/* iovm_dma_realloc() of another process's memory; whose the result is. */
TEST(realloc_across_processes)
{
	struct ctl *ctl = a4_shared(sizeof(*ctl));
	struct iovm_share_info in;
	struct iovm_ctx *own;
	uint8_t *grown, *shrunk, *moved;
	pid_t x;

	g_name = share_name("a4realloc");
	own = a4_share(g_name, HEAP);
	in = share_info(own);
	x = a4_fork();
	if (!x) {
		struct iovm_ctx *att = a4_attach(g_name);
		uint8_t *a = iovm_dma_alloc(att, 1000, 0, 0);
		uint8_t *b = iovm_dma_alloc(att, 300000, 0, 0);
		uint8_t *c = iovm_dma_alloc(att, 5000, 0, 0);

		CHECK(a && b && c);
		a4_fill(a, 1000, 1);
		a4_fill(b, 300000, 2);
		a4_fill(c, 5000, 3);
		ctl->mail[0] = a4_pa(att, a);
		ctl->mail[1] = a4_pa(att, b);
		ctl->mail[2] = a4_pa(att, c);
		/* A block the realloc below will find freed. */
		ctl->mail[3] = a4_pa(att, iovm_dma_alloc(att, 512, 0, 0));
		CHECK_RET(iovm_dma_free(att, a4_ptr(att, ctl->mail[3])), 0);
		atomic_store(&ctl->ready, 1);
		for (;;)
			pause();
	}
	spin_until(&ctl->ready, 1);
	/* Grow X's block (in place or not), shrink another, move a third. */
	grown = iovm_dma_realloc(own, a4_ptr(own, ctl->mail[0]), 200000, 0, 0);
	CHECK(grown != NULL);
	EXPECT(a4_bad(grown, 1000, 1) == 1000);
	shrunk = iovm_dma_realloc(own, a4_ptr(own, ctl->mail[1]), 10000, 0, 0);
	CHECK(shrunk != NULL);
	EXPECT(a4_bad(shrunk, 10000, 2) == 10000);
	moved = iovm_dma_realloc(own, a4_ptr(own, ctl->mail[2]), 5000, 1u << 16, 0);
	CHECK(moved != NULL);
	EXPECT(a4_pa(own, moved) % (1u << 16) == 0);
	EXPECT(a4_bad(moved, 5000, 3) == 5000);
	/* A block X already freed: refused, nothing changes. */
	{
		struct iovm_share_info before = share_info(own);

		CHECK_NULL_ERRNO(iovm_dma_realloc(own, a4_ptr(own, ctl->mail[3]), 100, 0, 0), EINVAL);
		EXPECT_EQ(share_info(own).blocks, before.blocks);
		EXPECT_EQ(share_info(own).heap_free, before.heap_free);
	}
	a4_fill(grown, 200000, 11);
	a4_fill(shrunk, 10000, 12);
	a4_fill(moved, 5000, 13);
	/*
	 * X dies. What this process got from realloc is this process's
	 * memory now: X's death must not free it under it.
	 */
	a4_kill(x);
	{
		struct iovm_share_info now;
		unsigned ms = 0;

		do {
			now = share_info(own);
			usleep(1000);
		} while (now.reaped < 1 && ++ms < 30000);
		EXPECT(now.reaped >= 1);
	}
	EXPECT_MSG(iovm_dma_size(own, grown) >= 200000,
		   "the block this process grew with iovm_dma_realloc() went with the process that "
		   "first allocated it");
	EXPECT_MSG(iovm_dma_size(own, shrunk) >= 10000,
		   "the block this process shrank with iovm_dma_realloc() went with the process that "
		   "first allocated it");
	EXPECT(iovm_dma_size(own, moved) >= 5000);
	EXPECT(a4_bad(moved, 5000, 13) == 5000);
	/* Then a new block must not land on them. */
	{
		void *n1 = iovm_dma_alloc(own, 200000, 0, IOVM_DMA_ZERO);

		CHECK(n1 != NULL);
		EXPECT_MSG(a4_bad(grown, 200000, 11) == 200000, "the grown block was handed out again");
		EXPECT_MSG(a4_bad(shrunk, 10000, 12) == 10000, "the shrunk block was handed out again");
		CHECK_RET(iovm_dma_free(own, n1), 0);
	}
	CHECK_RET(iovm_dma_free(own, moved), 0);
	iovm_dma_free(own, grown);
	iovm_dma_free(own, shrunk);
	a4_settled(own, 1, 0, in.heap_free);
	CHECK_OK(iovm_close(own));
	munmap(ctl, sizeof(*ctl));
}

/*
 * X allocates, this process frees X's block and allocates the same size
 * (likely the same address): when X dies, the new block is this
 * process's and must live on.
 */
TEST(reused_address_belongs_to_new_owner)
{
	struct ctl *ctl = a4_shared(sizeof(*ctl));
	struct iovm_share_info in;
	struct iovm_ctx *own;
	void *mine[16];
	unsigned same = 0;
	pid_t x;

	g_name = share_name("a4reuse");
	own = a4_share(g_name, HEAP);
	in = share_info(own);
	x = a4_fork();
	if (!x) {
		struct iovm_ctx *att = a4_attach(g_name);

		for (int i = 0; i < 16; i++) {
			void *b = iovm_dma_alloc(att, i < 8 ? 64 : 8192, 0, 0);

			CHECK(b != NULL);
			ctl->mail[i] = a4_pa(att, b);
		}
		atomic_store(&ctl->ready, 1);
		for (;;)
			pause();
	}
	spin_until(&ctl->ready, 1);
	for (int i = 0; i < 16; i++)
		CHECK_RET(iovm_dma_free(own, a4_ptr(own, ctl->mail[i])), 0);
	for (int i = 0; i < 16; i++) {
		mine[i] = iovm_dma_alloc(own, i < 8 ? 64 : 8192, 0, 0);
		CHECK(mine[i] != NULL);
		a4_fill(mine[i], i < 8 ? 64 : 8192, 100 + i);
		for (int j = 0; j < 16; j++)
			same += a4_pa(own, mine[i]) == ctl->mail[j];
	}
	printf("# %u of 16 new blocks at an address the dead process had\n", same);
	a4_kill(x);
	{
		unsigned ms = 0;

		while (share_info(own).reaped < 1 && ++ms < 30000)
			usleep(1000);
	}
	for (int i = 0; i < 16; i++) {
		EXPECT_MSG(iovm_dma_size(own, mine[i]) > 0, "block %d freed by another process's death", i);
		EXPECT(a4_bad(mine[i], i < 8 ? 64 : 8192, 100 + i) == (size_t)(i < 8 ? 64 : 8192));
		CHECK_RET(iovm_dma_free(own, mine[i]), 0);
	}
	a4_settled(own, 1, 0, in.heap_free);
	CHECK_OK(iovm_close(own));
	munmap(ctl, sizeof(*ctl));
}

/* Two processes free the same block at the same moment: one wins, one hears EINVAL. */
static void double_free_child(struct ctl *ctl, int me)
{
	struct iovm_ctx *att = a4_attach(g_name);

	atomic_fetch_add(&ctl->ready, 1);
	for (uint64_t round = 1;; round++) {
		void *p;

		spin_until(&ctl->go, round);
		if (atomic_load(&ctl->stop))
			break;
		p = iovm_dma_ptr(att, IOVM_PA(ctl->pa));
		CHECK(p != NULL);
		ctl->res[me] = iovm_dma_free(att, p);
		atomic_fetch_add(&ctl->done, 1);
	}
	CHECK_RET(iovm_share_check(att), 0);
	CHECK_OK(iovm_close(att));
	a4_child_exit();
}

TEST(double_free_race)
{
	static const size_t sizes[] = { 16, 64, 200, 4096, 100000 };
	struct ctl *ctl = a4_shared(sizeof(*ctl));
	struct iovm_share_info in;
	unsigned both = 0, none = 0, rounds = 300;
	struct iovm_ctx *own;
	pid_t kid[2];

	g_name = share_name("a4dfree");
	own = a4_share(g_name, HEAP);
	in = share_info(own);
	for (int i = 0; i < 2; i++) {
		kid[i] = a4_fork();
		if (!kid[i])
			double_free_child(ctl, i);
	}
	spin_until(&ctl->ready, 2);
	for (unsigned r = 1; r <= rounds; r++) {
		size_t sz = sizes[r % 5];
		void *p = iovm_dma_alloc(own, sz, 0, 0);

		CHECK(p != NULL);
		ctl->pa = a4_pa(own, p);
		ctl->res[0] = ctl->res[1] = 1;
		atomic_store(&ctl->go, r);
		spin_until(&ctl->done, 2ull * r);
		if (ctl->res[0] == 0 && ctl->res[1] == 0)
			both++;
		else if (ctl->res[0] != 0 && ctl->res[1] != 0)
			none++;
		else
			EXPECT((ctl->res[0] == 0 ? ctl->res[1] : ctl->res[0]) == -EINVAL);
		EXPECT_EQ(iovm_dma_size(own, p), 0);
	}
	EXPECT_MSG(both == 0, "%u of %u blocks freed by both processes at once", both, rounds);
	EXPECT_MSG(none == 0, "%u of %u blocks freed by neither", none, rounds);
	atomic_store(&ctl->stop, 1);
	atomic_store(&ctl->go, rounds + 1);
	EXPECT_EQ(a4_wait(kid[0]), 0);
	EXPECT_EQ(a4_wait(kid[1]), 0);
	a4_settled(own, 1, 0, in.heap_free);
	CHECK_OK(iovm_close(own));
	munmap(ctl, sizeof(*ctl));
}

/*
 * A block freed by this process while the owner reaps its allocator's
 * death: freed once, by one of the two; the heap stays whole.
 */
TEST(free_races_reap)
{
	struct ctl *ctl = a4_shared(sizeof(*ctl));
	uint64_t seed = a4_seed();
	struct iovm_share_info in;
	struct iovm_ctx *att;
	unsigned freed = 0, refused = 0;
	pid_t owner;

	g_name = share_name("a4reaprace");
	/* The owner lives in a child; this process is attached and frees. */
	owner = a4_fork();
	if (!owner) {
		struct iovm_ctx *o = a4_share(g_name, HEAP);

		atomic_store(&ctl->ready, 1);
		spin_until(&ctl->stop, 1);
		CHECK_OK(iovm_close(o));
		a4_child_exit();
	}
	spin_until(&ctl->ready, 1);
	att = a4_attach(g_name);
	in = share_info(att);
	for (int r = 0; r < 60; r++) {
		pid_t x;
		void *p[8];
		int ret;

		ctl->ready = 0;
		x = a4_fork();
		if (!x) {
			struct iovm_ctx *a = a4_attach(g_name);

			for (int i = 0; i < 8; i++)
				ctl->mail[i] = a4_pa(a, iovm_dma_alloc(a, 64u << i, 0, 0));
			atomic_store(&ctl->ready, 1);
			for (;;)
				pause();
		}
		spin_until(&ctl->ready, 1);
		for (int i = 0; i < 8; i++)
			p[i] = a4_ptr(att, ctl->mail[i]);
		kill(x, SIGKILL);
		usleep(test_rand(&seed) % 300);
		for (int i = 0; i < 8; i++) {
			ret = iovm_dma_free(att, p[i]);
			EXPECT_MSG(ret == 0 || ret == -EINVAL, "free during the reap: %d", ret);
			if (ret == 0)
				freed++;
			else
				refused++;
		}
		a4_wait(x);
		a4_settled(att, 2, 0, in.heap_free);
	}
	printf("# %u freed here, %u already reaped\n", freed, refused);
	atomic_store(&ctl->stop, 1);
	EXPECT_EQ(a4_wait(owner), 0);
	a4_settled(att, 1, 0, in.heap_free);
	CHECK_OK(iovm_close(att));
	munmap(ctl, sizeof(*ctl));
}

/* IOVM_DMA_KEEP memory outlives its allocator; anyone frees it, once. */
TEST(keep_outlives_its_allocator)
{
	struct ctl *ctl = a4_shared(sizeof(*ctl));
	struct iovm_share_info in;
	struct iovm_ctx *own;
	pid_t x;

	g_name = share_name("a4keep");
	own = a4_share(g_name, HEAP);
	in = share_info(own);
	x = a4_fork();
	if (!x) {
		struct iovm_ctx *att = a4_attach(g_name);
		uint8_t *k = iovm_dma_alloc(att, 12345, 4096, IOVM_DMA_KEEP);
		uint8_t *r;

		CHECK(k != NULL);
		a4_fill(k, 12345, 9);
		/* Kept memory grown by realloc stays kept. */
		r = iovm_dma_alloc(att, 100, 0, IOVM_DMA_KEEP);
		CHECK(r != NULL);
		r = iovm_dma_realloc(att, r, 50000, 0, IOVM_DMA_KEEP);
		CHECK(r != NULL);
		a4_fill(r, 50000, 10);
		ctl->mail[0] = a4_pa(att, k);
		ctl->mail[1] = a4_pa(att, r);
		ctl->mail[2] = a4_pa(att, iovm_dma_alloc(att, 999, 0, 0));
		atomic_store(&ctl->ready, 1);
		for (;;)
			pause();
	}
	spin_until(&ctl->ready, 1);
	a4_kill(x);
	a4_settled(own, 1, 2, UINT64_MAX);
	EXPECT(a4_bad(a4_ptr(own, ctl->mail[0]), 12345, 9) == 12345);
	EXPECT(a4_bad(a4_ptr(own, ctl->mail[1]), 50000, 10) == 50000);
	CHECK_RET(iovm_dma_free(own, a4_ptr(own, ctl->mail[2])), -EINVAL);
	CHECK_RET(iovm_dma_free(own, a4_ptr(own, ctl->mail[0])), 0);
	CHECK_RET(iovm_dma_free(own, a4_ptr(own, ctl->mail[1])), 0);
	CHECK_RET(iovm_dma_free(own, a4_ptr(own, ctl->mail[1])), -EINVAL);
	a4_settled(own, 1, 0, in.heap_free);
	CHECK_OK(iovm_close(own));
	munmap(ctl, sizeof(*ctl));
}

int main(void)
{
	a4_init();
	RUN(foreign_pointers);
	RUN(ptr_edges);
	RUN(sizes_and_alignments);
	RUN(exhaustion_then_recovery_with_owner);
	RUN(exhaustion_then_recovery_without_owner);
	RUN(realloc_across_processes);
	RUN(reused_address_belongs_to_new_owner);
	RUN(double_free_race);
	RUN(free_races_reap);
	RUN(keep_outlives_its_allocator);
	return attack_status();
}
