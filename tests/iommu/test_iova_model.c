/* SPDX-License-Identifier: MIT */
/*
 * test_iova_model.c - the IOVA allocator against its plain model
 * (iova_model.h): random operation sequences on four threads, seeded and
 * reproducible, on the allocator itself and on strict and deferred
 * managed domains through the public API, every step checked.
 *
 * IOVM_MODEL_STEPS=N runs N steps per sequence (default 500),
 * IOVM_MODEL_SEED=S one sequence from seed S (printed on a failure).
 */
#include "dev/dev_util.h"

static uint64_t model_seed;
static const char *model_kind;

#define MODEL_FAIL(fmt, ...) \
	test_fail("%s, seed %" PRIu64 ": " fmt, model_kind, model_seed, ##__VA_ARGS__)

#include "iommu/iova_model.h"

static const char *const kind_names[IVM_KINDS] = { "allocator", "strict domain", "deferred domain" };

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static void run_seed(enum ivm_kind kind, struct iovm_ctx *ctx, uint64_t buf_pa, uint64_t seed, uint64_t steps)
{
	size_t size = (size_t)steps * 16;
	uint8_t *bytes = malloc(size);
	uint64_t state = seed * 2 + 1;
	struct ivm v;

	CHECK(bytes != NULL);
	for (size_t i = 0; i < size; i++)
		bytes[i] = (uint8_t)(test_rand(&state) >> 56);
	model_seed = seed;
	model_kind = kind_names[kind];
	CHECK_OK(ivm_open(&v, kind, ctx, buf_pa));
	ivm_run(&v, bytes, size, steps);
	CHECK_EQ(v.step, steps);
	atomic_fetch_add(&test_checks, v.checks);
	if (getenv("IOVM_MODEL_VERBOSE"))
		printf("# seed %" PRIu64 ": %zu extents used (%" PRIu64 " pages), %zu quarantined, %" PRIu64 " checks\n",
		       seed, v.used.nr, ext_total(&v.used), v.quarantine.nr, v.checks);
	ivm_close(&v);
	free(bytes);
}

static void run_kind(enum ivm_kind kind)
{
	uint64_t steps = env_u64("IOVM_MODEL_STEPS", 500), one = env_u64("IOVM_MODEL_SEED", 0);
	struct iovm_ctx *ctx = NULL;
	uint8_t *buf = NULL;
	iovm_pa_t pa = IOVM_PA(0);

	if (kind != IVM_RAW) {
		ctx = open_ctx("page_size=4K,host_pa=off,oracle=on");
		buf = iovm_dma_alloc(ctx, SZ_2M, SZ_2M, IOVM_DMA_CONTIG);
		CHECK(buf != NULL);
		CHECK_OK(iovm_dma_pa(ctx, buf, &pa));
	}
	for (uint64_t seed = one ? one : 1; seed <= (one ? one : 6); seed++)
		run_seed(kind, ctx, pa.addr, seed, steps);
	if (ctx) {
		iovm_dma_free(ctx, buf);
		iovm_close(ctx);
	}
	printf("# %s: %" PRIu64 " steps per seed\n", kind_names[kind], steps);
}

TEST(allocator)
{
	run_kind(IVM_RAW);
}

TEST(strict_domain)
{
	run_kind(IVM_STRICT);
}

TEST(deferred_domain)
{
	run_kind(IVM_DEFERRED);
}

int main(void)
{
	test_init();
	RUN(allocator);
	RUN(strict_domain);
	RUN(deferred_domain);
	return 0;
}
