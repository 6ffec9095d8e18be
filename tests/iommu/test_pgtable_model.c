/* SPDX-License-Identifier: MIT */
/*
 * test_pgtable_model.c - the IO page table against its plain model
 * (pgtable_model.h): random operation sequences, seeded and reproducible,
 * on the bare page table and on strict and deferred managed domains
 * through the public API, every step checked.
 *
 * IOVM_MODEL_STEPS=N runs N steps per sequence (default 400),
 * IOVM_MODEL_SEED=S one sequence from seed S (printed on a failure).
 */
#include "dev/dev_util.h"

static uint64_t model_seed;
static const char *model_kind;

#define MODEL_FAIL(fmt, ...) \
	test_fail("%s, seed %" PRIu64 ": " fmt, model_kind, model_seed, ##__VA_ARGS__)

#include "iommu/pgtable_model.h"

static const char *const kind_names[PGM_KINDS] = { "page table", "strict domain", "deferred domain" };

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

/* One sequence of @steps operations from @seed on a fresh subject. */
static void run_seed(enum pgm_kind kind, struct iovm_ctx *ctx, uint64_t buf_pa, uint64_t seed, uint64_t steps)
{
	size_t size = (size_t)steps * 256; /* map_pages takes up to 1200 bytes; most steps under 16 */
	uint8_t *bytes = malloc(size);
	uint64_t state = seed * 2 + 1;
	struct pgm g;

	CHECK(bytes != NULL);
	for (size_t i = 0; i < size; i++)
		bytes[i] = (uint8_t)(test_rand(&state) >> 56);
	model_seed = seed;
	model_kind = kind_names[kind];
	CHECK_OK(pgm_open(&g, kind, ctx, buf_pa));
	pgm_run(&g, bytes, size, steps);
	CHECK_EQ(g.step, steps); /* the stream did not run dry first */
	/* The bare table's unmaps were told by their preview too, and it told something. */
	if (kind == PGM_PT && steps >= 100)
		CHECK(g.previewed > 0);
	atomic_fetch_add(&test_checks, g.checks);
	if (getenv("IOVM_MODEL_VERBOSE"))
		printf("# seed %" PRIu64 ": %zu extents, %" PRIu64 " pages mapped, leaves %" PRIu64 "/%" PRIu64 "/%" PRIu64
		       ", %" PRIu64 " splits, %" PRIu64 " tables, %" PRIu64 " checks\n",
		       seed, g.m.nr, ext_total(&g.m), (uint64_t)pgm_pt(&g)->cnt->leaves[0], (uint64_t)pgm_pt(&g)->cnt->leaves[1],
		       (uint64_t)pgm_pt(&g)->cnt->leaves[2], (uint64_t)pgm_pt(&g)->cnt->splits, (uint64_t)pgm_pt(&g)->cnt->nr_tables,
		       g.checks);
	pgm_close(&g);
	free(bytes);
}

static void run_kind(enum pgm_kind kind)
{
	uint64_t steps = env_u64("IOVM_MODEL_STEPS", 400), one = env_u64("IOVM_MODEL_SEED", 0);
	struct iovm_ctx *ctx = NULL;
	uint8_t *buf = NULL;
	iovm_pa_t pa = IOVM_PA(0);

	if (kind != PGM_PT) {
		ctx = open_ctx("page_size=4K,host_pa=off,oracle=on");
		buf = iovm_dma_alloc(ctx, PGM_BUF, SZ_2M, IOVM_DMA_CONTIG);
		CHECK(buf != NULL);
		CHECK_OK(iovm_dma_pa(ctx, buf, &pa));
	}
	if (one) {
		run_seed(kind, ctx, pa.addr, one, steps);
	} else {
		for (uint64_t seed = 1; seed <= 6; seed++)
			run_seed(kind, ctx, pa.addr, seed, steps);
	}
	if (ctx) {
		iovm_dma_free(ctx, buf);
		iovm_close(ctx);
	}
	printf("# %s: %" PRIu64 " steps per seed\n", kind_names[kind], steps);
}

TEST(page_table)
{
	run_kind(PGM_PT);
}

TEST(strict_domain)
{
	run_kind(PGM_STRICT);
}

TEST(deferred_domain)
{
	run_kind(PGM_DEFERRED);
}

int main(void)
{
	test_init();
	RUN(page_table);
	RUN(strict_domain);
	RUN(deferred_domain);
	return 0;
}
