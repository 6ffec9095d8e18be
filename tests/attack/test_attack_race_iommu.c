/* SPDX-License-Identifier: MIT */
/*
 * test_attack_race_iommu.c - attacks the invalidation and concurrency
 * promises of iommu.h while the engine copies: after a strict unmap (or a
 * deferred unmap and its flush, or a map over a quarantined IOVA) has
 * returned, no engine write lands in the old page; a huge leaf split under
 * a reader never makes its other pages vanish; IOVAs a domain chooses
 * never overlap ones mapped at a chosen IOVA by another thread; a
 * deferred domain beside other domains (issue 16, item 1).
 */
#include "attack.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)
#define NT 16

static struct iovm_ctx *ctx;

struct race {
	struct iovm_domain *dom;
	struct iovm_device *dev;
	struct iovm_queue *q;
	uint8_t *src;           /* 4 KiB of 0xab, mapped for good at src_iova */
	uint64_t src_iova;
	uint8_t *t[NT];         /* target pages */
	uint8_t *alt[NT];       /* other pages, mapped over quarantined IOVAs */
	uint64_t v[NT];         /* the targets' IOVAs */
	_Atomic int hot;        /* the target the mapper works on */
	_Atomic unsigned long done;
	_Atomic unsigned long want;  /* the engine runs while done < want */
	_Atomic int stop;
	_Atomic unsigned long faults, ok;
};

static void *engine(void *arg)
{
	struct race *r = arg;
	uint64_t seed = 11;
	struct iovm_cqe cqe;

	while (!atomic_load(&r->stop)) {
		if (atomic_load(&r->done) >= atomic_load(&r->want)) {
			sched_yield();
			continue;
		}
		int i = test_rand(&seed) % 2 ? atomic_load(&r->hot) : (int)(test_rand(&seed) % NT);
		struct iovm_desc d = { .op = IOVM_OP_COPY, .src = r->src_iova, .dst = r->v[i], .len = 4096 };
		int n = 0;
		CHECK_OK(iovm_queue_submit(r->q, &d));
		while (n == 0) {
			CHECK(iovm_queue_process(r->q, 1) >= 0);
			n = iovm_queue_reap(r->q, &cqe, 1);
		}
		if (cqe.status == IOVM_STATUS_SUCCESS)
			atomic_fetch_add(&r->ok, 1);
		else if (cqe.status == IOVM_STATUS_PAGE_FAULT)
			atomic_fetch_add(&r->faults, 1);
		else
			test_fail("engine: status %u", cqe.status);
		atomic_fetch_add(&r->done, 1);
	}
	return NULL;
}

static void wait_descriptors(struct race *r, unsigned n)
{
	unsigned long d0 = atomic_load(&r->done);

	/* Ask for n more (and a few for the race itself), then wait for them. */
	atomic_store(&r->want, d0 + n + 2);
	while (atomic_load(&r->done) < d0 + n)
		sched_yield();
}

enum mode { STRICT, DEFERRED_FLUSH, DEFERRED_REMAP };

static void run_race(enum mode mode, unsigned rounds)
{
	struct race *r = calloc(1, sizeof(*r));
	struct iovm_domain_attr a = { .type = IOVM_DOMAIN_MANAGED,
				      .flags = mode == STRICT ? 0 : IOVM_DOMAIN_DEFERRED };
	struct iovm_queue_attr qa = { .depth = 64, .flags = IOVM_QUEUE_POLLED };
	iovm_iova_t io;
	iovm_pa_t pa;
	pthread_t et;
	uint64_t seed = 1 + mode;
	unsigned broken = 0;

	CHECK_OK(iovm_domain_create(ctx, &a, &r->dom));
	CHECK_OK(iovm_device_open(ctx, "sw", &r->dev));
	CHECK_OK(iovm_device_attach(r->dev, r->dom, 0));
	CHECK_OK(iovm_queue_create(r->dev, &qa, &r->q));
	r->src = iovm_dma_alloc(ctx, 4096, 4096, 0);
	memset(r->src, 0xab, 4096);
	CHECK_OK(iovm_domain_map_ptr(r->dom, r->src, 4096, IOVM_MAP_READ, &io));
	r->src_iova = io.addr;
	for (int i = 0; i < NT; i++) {
		r->t[i] = iovm_dma_alloc(ctx, 4096, 4096, 0);
		r->alt[i] = iovm_dma_alloc(ctx, 4096, 4096, 0);
		CHECK(r->t[i] && r->alt[i]);
		CHECK_OK(iovm_domain_map_ptr(r->dom, r->t[i], 4096, RW, &io));
		r->v[i] = io.addr;
	}
	CHECK(pthread_create(&et, NULL, engine, r) == 0);
	for (unsigned k = 0; k < rounds; k++) {
		int i = test_rand(&seed) % NT;
		uint8_t *old = r->t[i];

		atomic_store(&r->hot, i);
		wait_descriptors(r, 1);
		atomic_store(&r->want, atomic_load(&r->done) + 3); /* copies in flight across the unmap */
		CHECK_OK(iovm_domain_unmap(r->dom, IOVM_IOVA(r->v[i]), 4096));
		if (mode == DEFERRED_FLUSH) {
			CHECK_OK(iovm_domain_flush(r->dom));
		} else if (mode == DEFERRED_REMAP) {
			/* Map the same IOVA to another page at once: the old one must be unreachable. */
			CHECK_OK(iovm_dma_pa(ctx, r->alt[i], &pa));
			io = IOVM_IOVA(r->v[i]);
			CHECK_RET(iovm_domain_map(r->dom, &io, pa, 4096, RW), 0);
		}
		/* From here, no device write reaches the old page. */
		memset(old, 0, 4096);
		wait_descriptors(r, 4);
		if (!all_bytes(old, 4096, 0) && broken++ < 3)
			EXPECT_MSG(0, "mode %d round %u: the engine wrote the old page after the %s returned "
				   "(byte %zu)", mode, k, mode == STRICT ? "strict unmap" :
				   mode == DEFERRED_FLUSH ? "flush" : "map over the quarantined IOVA",
				   first_not(old, 4096, 0));
		if (mode == DEFERRED_REMAP) {
			/* The new page gets the copies now; put the old one back. */
			CHECK_OK(iovm_domain_unmap(r->dom, IOVM_IOVA(r->v[i]), 4096));
			CHECK_OK(iovm_domain_flush(r->dom));
		}
		CHECK_OK(iovm_dma_pa(ctx, old, &pa));
		io = IOVM_IOVA(r->v[i]);
		CHECK_RET(iovm_domain_map(r->dom, &io, pa, 4096, RW), 0);
	}
	atomic_store(&r->stop, 1);
	pthread_join(et, NULL);
	EXPECT_MSG(broken == 0, "mode %d: %u rounds of %u reached an unmapped page", mode, broken, rounds);
	printf("# mode %d: %lu copies, %lu faults\n", mode, atomic_load(&r->ok), atomic_load(&r->faults));
	CHECK(atomic_load(&r->ok) > 0);
	if (mode != DEFERRED_REMAP)
		CHECK(atomic_load(&r->faults) > 0);
	check_domain_clean(r->dom);
	CHECK_OK(iovm_queue_destroy(r->q));
	CHECK_OK(iovm_device_close(r->dev));
	CHECK_OK(iovm_domain_destroy(r->dom));
	for (int i = 0; i < NT; i++) {
		iovm_dma_free(ctx, r->t[i]);
		iovm_dma_free(ctx, r->alt[i]);
	}
	iovm_dma_free(ctx, r->src);
	free(r);
}

TEST(no_write_lands_after_a_strict_unmap_returns)
{
	run_race(STRICT, 20000);
}

TEST(no_write_lands_after_a_deferred_flush_returns)
{
	run_race(DEFERRED_FLUSH, 10000);
}

TEST(no_write_lands_in_the_old_page_after_a_map_over_a_quarantined_iova)
{
	run_race(DEFERRED_REMAP, 10000);
}

/* A 2 MiB leaf split (4 KiB unmapped out of it) under a reader of its other pages. */
static struct iovm_domain *split_dom;
static uint64_t split_base;
static iovm_pa_t split_pa;
static _Atomic int split_phase; /* 1: the reader may read; 0: paused; 2: stop */
static _Atomic int split_paused;
static _Atomic unsigned long split_misses, split_reads;

static void *split_reader(void *arg)
{
	uint64_t seed = 3;
	(void)arg;
	for (;;) {
		int ph = atomic_load(&split_phase);
		if (ph == 2)
			break;
		if (ph == 0) {
			atomic_store(&split_paused, 1);
			sched_yield();
			continue;
		}
		atomic_store(&split_paused, 0);
		/* Page 0 is never unmapped in phase 1. */
		uint64_t off = (test_rand(&seed) % 2) ? 0 : 4096 * 256 + 8;
		iovm_pa_t pa;
		uint32_t perm;
		int r = iovm_domain_translate(split_dom, IOVM_IOVA(split_base + off), &pa, &perm);
		if (atomic_load(&split_phase) != 1)
			continue;
		atomic_fetch_add(&split_reads, 1);
		if (r || pa.addr != split_pa.addr + off)
			atomic_fetch_add(&split_misses, 1);
	}
	return NULL;
}

TEST(splitting_a_huge_leaf_never_hides_its_other_pages)
{
	struct iovm_domain_attr a = { .type = IOVM_DOMAIN_MANAGED };
	uint8_t *mem = iovm_dma_alloc(ctx, 4u << 20, 2u << 20, IOVM_DMA_CONTIG);
	struct iovm_domain_stats st;
	pthread_t t;

	CHECK(mem != NULL);
	CHECK_OK(iovm_dma_pa(ctx, mem, &split_pa));
	if (split_pa.addr & ((2u << 20) - 1)) {
		iovm_dma_free(ctx, mem);
		SKIP_CASE("no 2 MiB aligned physical memory");
	}
	CHECK_OK(iovm_domain_create(ctx, &a, &split_dom));
	split_base = 0x40000000;
	atomic_store(&split_phase, 0);
	CHECK(pthread_create(&t, NULL, split_reader, NULL) == 0);
	for (int k = 0; k < 3000; k++) {
		iovm_iova_t io = IOVM_IOVA(split_base);
		/* Paused: a fresh 2 MiB leaf. */
		atomic_store(&split_phase, 0);
		while (!atomic_load(&split_paused))
			sched_yield();
		iovm_domain_unmap(split_dom, IOVM_IOVA(split_base), 2u << 20);
		CHECK_OK(iovm_domain_map(split_dom, &io, split_pa, 2u << 20, RW));
		/* Reading: cut a 4 KiB hole out of it (page 1 + k%200), then fill it again. */
		atomic_store(&split_phase, 1);
		uint64_t hole = split_base + 4096 * (1 + k % 200);
		CHECK_OK(iovm_domain_unmap(split_dom, IOVM_IOVA(hole), 4096));
		io = IOVM_IOVA(hole);
		CHECK_OK(iovm_domain_map(split_dom, &io, IOVM_PA(split_pa.addr + (hole - split_base)), 4096, RW));
	}
	atomic_store(&split_phase, 2);
	pthread_join(t, NULL);
	CHECK_OK(iovm_domain_stats(split_dom, &st));
	CHECK(st.splits > 0);
	EXPECT_MSG(atomic_load(&split_misses) == 0, "%lu of %lu translations of untouched pages failed "
		   "while their 2 MiB leaf was split", atomic_load(&split_misses), atomic_load(&split_reads));
	CHECK_OK(iovm_domain_destroy(split_dom));
	iovm_dma_free(ctx, mem);
}

/* IOVAs the domain chooses never overlap ones another thread maps at a chosen IOVA. */
static struct iovm_domain *mix_dom;
static uint64_t fixed_lo, fixed_hi;
static _Atomic uint64_t fixed_live[64]; /* IOVA of each live fixed 64 KiB mapping, 0: none */
static _Atomic int mix_stop;
static _Atomic unsigned long mix_overlaps, mix_any, mix_fixed, mix_eexist;
static iovm_pa_t mix_pa;

static void *any_mapper(void *arg)
{
	uint64_t held[32] = { 0 };
	uint64_t seed = (uintptr_t)arg;

	while (!atomic_load(&mix_stop)) {
		int k = test_rand(&seed) % 32;
		if (held[k]) {
			CHECK_OK(iovm_domain_unmap(mix_dom, IOVM_IOVA(held[k]), 65536));
			held[k] = 0;
			continue;
		}
		iovm_iova_t io = IOVM_IOVA_ANY;
		int r = iovm_domain_map(mix_dom, &io, mix_pa, 65536, IOVM_MAP_READ);
		if (r == -ENOSPC)
			continue;
		CHECK_OK(r);
		held[k] = io.addr;
		atomic_fetch_add(&mix_any, 1);
		for (int j = 0; j < 64; j++) {
			uint64_t f = atomic_load(&fixed_live[j]);
			if (f && f < io.addr + 65536 && io.addr < f + 65536)
				atomic_fetch_add(&mix_overlaps, 1);
		}
	}
	for (int k = 0; k < 32; k++)
		if (held[k])
			CHECK_OK(iovm_domain_unmap(mix_dom, IOVM_IOVA(held[k]), 65536));
	return NULL;
}

static void *fixed_mapper(void *arg)
{
	uint64_t seed = (uintptr_t)arg;

	while (!atomic_load(&mix_stop)) {
		int j = test_rand(&seed) % 64;
		uint64_t f = atomic_load(&fixed_live[j]);
		if (f) {
			atomic_store(&fixed_live[j], 0);
			CHECK_OK(iovm_domain_unmap(mix_dom, IOVM_IOVA(f), 65536));
			continue;
		}
		uint64_t at = fixed_lo + (test_rand(&seed) % ((fixed_hi - fixed_lo) / 65536)) * 65536;
		int taken = 0;
		for (int i = 0; i < 64; i++)
			taken |= atomic_load(&fixed_live[i]) == at;
		if (taken)
			continue;
		iovm_iova_t io = IOVM_IOVA(at);
		int r = iovm_domain_map(mix_dom, &io, mix_pa, 65536, IOVM_MAP_READ);
		if (r == -EEXIST) {
			atomic_fetch_add(&mix_eexist, 1);
			continue;
		}
		CHECK_RET(r, 0);
		if (r)
			continue;
		atomic_store(&fixed_live[j], at);
		atomic_fetch_add(&mix_fixed, 1);
	}
	return NULL;
}

TEST(chosen_iovas_never_overlap_fixed_ones_mapped_concurrently)
{
	struct iovm_domain_attr a = { .type = IOVM_DOMAIN_MANAGED, .dma_bits = 32 };
	pthread_t t[3];
	uint8_t *mem = iovm_dma_alloc(ctx, 65536, 65536, IOVM_DMA_CONTIG);
	iovm_iova_t io = IOVM_IOVA_ANY;

	CHECK(mem != NULL);
	CHECK_OK(iovm_dma_pa(ctx, mem, &mix_pa));
	CHECK_OK(iovm_domain_create(ctx, &a, &mix_dom));
	/* Where does the domain choose? Put the fixed ranges there. */
	CHECK_OK(iovm_domain_map(mix_dom, &io, mix_pa, 65536, IOVM_MAP_READ));
	CHECK_OK(iovm_domain_unmap(mix_dom, io, 65536));
	/* 8 MiB around it, inside the window and outside the MSI hole. */
	fixed_lo = io.addr > (8u << 20) ? io.addr - (4u << 20) : 65536;
	fixed_lo &= ~(uint64_t)65535;
	if (fixed_lo + (8u << 20) > (1ull << 32))
		fixed_lo = (1ull << 32) - (8u << 20);
	if (fixed_lo + (8u << 20) > 0xfee00000 && fixed_lo < 0xfef00000)
		fixed_lo = io.addr >= 0xfef00000 ? 0xfef00000 : 0xfee00000 - (8u << 20);
	fixed_hi = fixed_lo + (8u << 20);
	printf("# the domain chose %#llx; fixed maps in [%#llx, %#llx)\n", (unsigned long long)io.addr,
	       (unsigned long long)fixed_lo, (unsigned long long)fixed_hi);
	atomic_store(&mix_stop, 0);
	CHECK(pthread_create(&t[0], NULL, any_mapper, (void *)(uintptr_t)1) == 0);
	CHECK(pthread_create(&t[1], NULL, any_mapper, (void *)(uintptr_t)2) == 0);
	CHECK(pthread_create(&t[2], NULL, fixed_mapper, (void *)(uintptr_t)3) == 0);
	usleep(1500 * 1000);
	atomic_store(&mix_stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	printf("# %lu chosen, %lu fixed, %lu fixed refused EEXIST\n", atomic_load(&mix_any),
	       atomic_load(&mix_fixed), atomic_load(&mix_eexist));
	EXPECT_MSG(atomic_load(&mix_overlaps) == 0, "%lu chosen IOVAs overlapped a live fixed mapping",
		   atomic_load(&mix_overlaps));
	CHECK(atomic_load(&mix_any) > 0 && atomic_load(&mix_fixed) > 0);
	for (int j = 0; j < 64; j++) {
		uint64_t f = atomic_load(&fixed_live[j]);
		if (f)
			CHECK_OK(iovm_domain_unmap(mix_dom, IOVM_IOVA(f), 65536));
	}
	CHECK_OK(iovm_domain_destroy(mix_dom));
	iovm_dma_free(ctx, mem);
}

TEST(a_deferred_domain_beside_others_survives)
{
	/* Issue 16 item 1, and its second form: the deferred domain destroyed first. */
	uint8_t *mem = iovm_dma_alloc(ctx, 65536, 4096, 0);
	iovm_pa_t pa;

	CHECK_OK(iovm_dma_pa(ctx, mem, &pa));
	for (int form = 0; form < 2; form++) {
		struct iovm_domain_attr ad = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_DEFERRED,
					       .flush_timeout_us = 100 };
		struct iovm_domain *def, *other, *va;
		struct iovm_domain_attr av = { .type = IOVM_DOMAIN_VA };
		CHECK_OK(iovm_domain_create(ctx, &ad, &def));
		if (form == 1)
			CHECK_OK(iovm_domain_destroy(def));
		CHECK_OK(iovm_domain_create(ctx, NULL, &other));
		CHECK_OK(iovm_domain_create(ctx, &av, &va));
		for (int k = 0; k < 3000; k++) {
			iovm_iova_t io = IOVM_IOVA_ANY;
			if (form == 0) {
				CHECK_OK(iovm_domain_map(def, &io, pa, 4096, RW));
				CHECK_OK(iovm_domain_unmap(def, io, 4096));
			}
			io = IOVM_IOVA_ANY;
			CHECK_OK(iovm_domain_map(other, &io, pa, 4096, RW));
			CHECK_OK(iovm_domain_unmap(other, io, 4096));
			if (k % 500 == 0)
				usleep(2000); /* let the flusher run */
		}
		if (form == 0)
			CHECK_OK(iovm_domain_destroy(def));
		CHECK_OK(iovm_domain_destroy(other));
		CHECK_OK(iovm_domain_destroy(va));
	}
	iovm_dma_free(ctx, mem);
}

int main(void)
{
	test_init();
	ctx = attack_open(NULL);
	RUN(no_write_lands_after_a_strict_unmap_returns);
	RUN(no_write_lands_after_a_deferred_flush_returns);
	RUN(no_write_lands_in_the_old_page_after_a_map_over_a_quarantined_iova);
	RUN(splitting_a_huge_leaf_never_hides_its_other_pages);
	RUN(chosen_iovas_never_overlap_fixed_ones_mapped_concurrently);
	RUN(a_deferred_domain_beside_others_survives);
	iovm_close(ctx);
	return attack_status();
}
