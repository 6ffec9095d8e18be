/* SPDX-License-Identifier: MIT */
/*
 * fuzz_engine.c - descriptor streams against random mappings: the input's
 * bytes are the choices of the engine model's generator
 * (tests/dev/engine_model_gen.h): which window pages are mapped and how,
 * what the memory holds, then, while input lasts, mappings and bytes that
 * change, and descriptors of every kind (lists and batches written into
 * memory the descriptors reach). Each descriptor runs through the model
 * and the software engine (oracle on); any byte of the window, its canary
 * pages, the registered memory or the records, any completion field, any
 * fault recorded or page mapped by the handler that differs from the
 * model's prediction aborts.
 *
 * One context for the whole run, reset at each input: every input starts
 * from a state of its own bytes, whatever came before.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "dev/engine_model_gen.h"

/*
 * The harness's checks in setting up exit(1): libFuzzer reports a target
 * that exits as a failure, and the replay fails.
 */

/* Descriptors per input at most: an input runs in a few milliseconds. */
#define MAX_STEPS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct em m;
	static bool open;
	struct gen g = { .data = data, .size = size };

	if (!open) {
		em_open(&m);
		open = true;
	}
	em_reset(&m, &g);
	for (unsigned step = 0; step < MAX_STEPS && !gen_done(&g); step++) {
		struct iovm_desc d;

		perturb(&m, &g);
		gen_desc(&m, &g, &d, false, 0);
		if (em_step(&m, &d) < 0) {
			fprintf(stderr, "fuzz_engine: descriptor %u: %s\n", step, m.why);
			em_print_desc(stderr, &d);
			em_print_lists(&m, stderr, &d);
			abort();
		}
	}
	return 0;
}
