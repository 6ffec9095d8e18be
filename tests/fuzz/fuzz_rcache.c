/* SPDX-License-Identifier: MIT */
/*
 * fuzz_rcache.c - the registration-cache model (tests/reg/rcache_model.h)
 * driven by the fuzzer's bytes, on one thread: the first byte chooses the
 * cache's limits and whether the input may fork, the rest choose the
 * operations (get, put, munmap, mmap, mremap, madvise, free+malloc, fork)
 * and their arguments, at most 48 of them. Every check of the model runs
 * after each; a broken promise aborts. Each input gets a new cache and new
 * memory, and must leave no registration behind.
 */
#include "reg/rcache_model_run.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_STEPS 48
#define FUZZ_PAGES 128

static struct rig fuzz_rig;
static bool fuzz_rig_open;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t regions[] = { 0, 4, 16 }, bytes[] = { 0, 256u << 10, 1u << 20 };
	struct iovm_rcache_attr attr;
	struct iovm_rcache *cache;
	struct iovm_reg_stats st;
	struct model *m;

	if (size < 2)
		return 0;
	test_current = "fuzz_rcache";
	if (!fuzz_rig_open) {
		/* One context for the whole run: opening one per input would cost more than the input. */
		iovm_log_set_level(IOVM_LOG_ERR);
		rig_open(&fuzz_rig, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
		fuzz_rig_open = true;
	}
	attr = (struct iovm_rcache_attr){ .max_regions = regions[data[0] % 3], .max_bytes = bytes[(data[0] / 3) % 3] };
	m = calloc(1, sizeof(*m));
	if (!m)
		return 0;
	m->fuzz = true;
	m->seed = data[0];
	m->src = (struct model_src){ .data = data + 1, .len = size - 1 };
	m->use_fork = data[0] & 0x80;
	m->max_forks = 1;
	m->max_regions = attr.max_regions;
	m->max_bytes = attr.max_bytes;
	if (iovm_rcache_create(fuzz_rig.dom, &attr, &cache))
		abort();
	model_init(m, &fuzz_rig, cache, 0, FUZZ_PAGES, NULL);
	for (unsigned i = 0; i < FUZZ_STEPS && !m->src.end; i++)
		model_step(m);
	model_fini(m);
	M_CHECK(m, iovm_rcache_destroy(cache) == 0, "iovm_rcache_destroy with nothing held failed");
	M_CHECK(m, iovm_reg_stats(fuzz_rig.ctx, &st) == 0 && st.mrs == 0,
		"%llu MRs still registered after the cache was destroyed", (unsigned long long)st.mrs);
	free(m);
	return 0;
}
