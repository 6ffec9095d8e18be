/* SPDX-License-Identifier: MIT */
/*
 * test_engine_model.c - random descriptors through the software engine
 * (oracle on), each checked against the reference model of
 * engine_model.h: every byte of the window, its canary pages, the
 * application's registered memory and the records page; the completion,
 * the faults the domain and the device record, and what the fault handler
 * mapped.
 *
 * Every operation of dev.h, sizes from 0 up past three pages, odd ones,
 * offsets that straddle pages, keyed and by IOVA (stale keys, keys of
 * another domain, keys without the right, ranges past their MR), pages
 * unmapped, read-only or write-only, a PASID with nothing attached,
 * faults that complete the descriptor or block until a handler maps the
 * page, scatter/gather lists and batches in memory that may fault too.
 *
 *	ENGINE_MODEL_SEED=n    the first seed (default: a fixed one); printed on failure
 *	ENGINE_MODEL_STEPS=n   descriptors per seed (default 10000)
 *	ENGINE_MODEL_SEEDS=n   seeds, one after another (default 3)
 */
#include "dev/engine_model_gen.h"

static void run_seed(uint64_t seed, unsigned steps)
{
	struct gen g = { .s = seed * 0x9e3779b97f4a7c15ull + 1 };
	static struct em m;
	unsigned by_status[8] = { 0 }, unmodeled = 0, resolved = 0, faults = 0, down = 0;
	int ret;

	em_open(&m);
	em_reset(&m, &g);
	for (unsigned step = 0; step < steps; step++) {
		struct iovm_desc d;

		perturb(&m, &g);
		gen_desc(&m, &g, &d, false, 0);
		ret = em_step(&m, &d);
		unmodeled += ret == 1;
		if (ret < 0) {
			fprintf(stderr, "engine model: seed %" PRIu64 ", step %u: %s\n", seed, step, m.why);
			em_print_desc(stderr, &d);
			em_print_lists(&m, stderr, &d);
			CHECK_MSG(0, "the engine and the model disagree (ENGINE_MODEL_SEED=%" PRIu64 ")", seed);
		}
		CHECK(1);
		by_status[m.rec_sh[0] & 7]++;
		resolved += m.nres_pred;
		faults += m.npf + m.ndf;
		down += d.op == IOVM_OP_COPY && em_copy_down(&d);
	}
	printf("# seed %" PRIu64 ": %u descriptors; records by status: none %u, success %u, fault %u, invalid %u, "
	       "batch fail %u, key %u; %u faults recorded, %u pages mapped by the handler, %u copies from the end; "
	       "%u reached memory the model does not shadow\n",
	       seed, steps, by_status[0], by_status[1], by_status[2], by_status[3], by_status[4], by_status[5], faults,
	       resolved, down, unmodeled);
	/* Garbage aims at the heap's own addresses by a fluke only. */
	CHECK(unmodeled * 100 <= steps);
	em_close(&m);
}

static unsigned long env_or(const char *name, unsigned long def)
{
	const char *v = getenv(name);

	return v && *v ? strtoul(v, NULL, 0) : def;
}

TEST(random_descriptors_against_the_model)
{
	uint64_t seed = env_or("ENGINE_MODEL_SEED", 16);
	unsigned steps = (unsigned)env_or("ENGINE_MODEL_STEPS", 10000);
	unsigned seeds = (unsigned)env_or("ENGINE_MODEL_SEEDS", 3);

	for (unsigned i = 0; i < seeds; i++)
		run_seed(seed + i, steps);
}

int main(void)
{
	test_init();
	RUN(random_descriptors_against_the_model);
	return 0;
}
