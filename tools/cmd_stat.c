/* SPDX-License-Identifier: MIT */
/*
 * cmd_stat.c - `iovm stat [--json] [SIZE...]`: open a context, allocate the
 * sizes given (as a program would), and print the heap's and the physical
 * space's statistics. SIZE is what the options take (iovm_size_parse()).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iovm.h>

#include "cmd.h"
#include "json.h"

/* A SIZE as the options take it: a suffix the parser does not know is refused, not ignored. */
static bool parse_size(const char *arg, uint64_t *size)
{
	if (iovm_size_parse(arg, size) || !*size) {
		fprintf(stderr, "iovm stat: '%s' is not a size (bytes, or with a suffix K, M, G or T)\n", arg);
		return false;
	}
	return true;
}

int cmd_stat(int argc, char **argv)
{
	struct iovm_mem_stats st;
	struct iovm_phys_stats ps;
	struct iovm_ctx *ctx;
	bool as_json = false;
	char a[32], b[32], c[32], d[32];
	uint64_t size;
	int ret;

	/* The command line first, whole: a bad one is refused before a context is opened. */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			as_json = true;
		} else if (argv[i][0] == '-' && (argv[i][1] < '0' || argv[i][1] > '9')) {
			fprintf(stderr, "iovm stat: unknown option '%s'\n", argv[i]);
			cmd_usage(stderr, "stat");
			return 2;
		} else if (!parse_size(argv[i], &size)) {
			return 2;
		}
	}
	ret = iovm_open(NULL, &ctx);
	if (ret) {
		fprintf(stderr, "iovm stat: %s: %s\n", iovm_strerror(ret), iovm_error_detail());
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			continue;
		parse_size(argv[i], &size);
		if (size > SIZE_MAX || !iovm_dma_alloc(ctx, (size_t)size, 0, 0)) {
			fprintf(stderr, "iovm stat: cannot allocate '%s' (%" PRIu64 " bytes): %s\n", argv[i], size,
				strerror(errno));
			iovm_close(ctx);
			return 1;
		}
	}
	iovm_mem_stats(ctx, &st);
	iovm_phys_stats(ctx, &ps);
	if (as_json) {
		struct json j;

		json_init(&j, stdout);
		json_begin(&j, NULL, '{');
		json_begin(&j, "heap", '{');
		json_u64(&j, "committed", st.committed);
		json_u64(&j, "idle", st.idle);
		json_u64(&j, "in_use", st.in_use);
		json_u64(&j, "commits", st.commits);
		json_u64(&j, "decommits", st.decommits);
		json_u64(&j, "allocs", st.allocs);
		json_u64(&j, "cache_hits", st.cache_hits);
		json_begin(&j, "lists", '[');
		for (unsigned i = 0; i < st.nr_lists; i++) {
			json_begin(&j, NULL, '{');
			json_u64(&j, "page_size", st.lists[i].page_size);
			json_i64(&j, "node", st.lists[i].node);
			json_u64(&j, "committed", st.lists[i].committed);
			json_u64(&j, "in_use", st.lists[i].in_use);
			json_end(&j, '}');
		}
		json_end(&j, ']');
		json_end(&j, '}');
		json_begin(&j, "phys", '{');
		json_bool(&j, "host_pa", ps.host_pa);
		json_u64(&j, "total", ps.total);
		json_u64(&j, "free", ps.free);
		json_u64(&j, "banks", ps.nr_banks);
		json_begin(&j, "arenas", '[');
		for (unsigned i = 0; i < ps.nr_arenas; i++) {
			json_begin(&j, NULL, '{');
			json_u64(&j, "page_size", ps.arenas[i].page_size);
			json_i64(&j, "node", ps.arenas[i].node);
			json_u64(&j, "total", ps.arenas[i].total);
			json_u64(&j, "free", ps.arenas[i].free);
			json_u64(&j, "largest_free_run", ps.arenas[i].largest_free_run);
			json_begin(&j, "free_blocks_by_order", '[');
			for (unsigned o = 0; o < IOVM_PHYS_ORDERS; o++)
				json_u64(&j, NULL, ps.arenas[i].free_blocks[o]);
			json_end(&j, ']');
			json_end(&j, '}');
		}
		json_end(&j, ']');
		json_end(&j, '}');
		json_end(&j, '}');
	} else {
		printf("heap      %s committed (%s idle), %s in use; %" PRIu64 " commits, %" PRIu64
		       " releases, %" PRIu64 " allocations (%" PRIu64 " from thread caches)\n",
		       fmt_size(st.committed, a, sizeof(a)), fmt_size(st.idle, b, sizeof(b)),
		       fmt_size(st.in_use, c, sizeof(c)), st.commits, st.decommits, st.allocs,
		       st.cache_hits);
		for (unsigned i = 0; i < st.nr_lists; i++)
			printf("  list    %s pages, node %d: %s committed, %s in use\n",
			       fmt_size(st.lists[i].page_size, a, sizeof(a)), st.lists[i].node,
			       fmt_size(st.lists[i].committed, b, sizeof(b)),
			       fmt_size(st.lists[i].in_use, c, sizeof(c)));
		printf("physical  %s in %u bank%s, %s free; host-PA mode %s\n",
		       fmt_size(ps.total, a, sizeof(a)), ps.nr_banks, ps.nr_banks == 1 ? "" : "s",
		       fmt_size(ps.free, b, sizeof(b)), ps.host_pa ? "on" : "off");
		for (unsigned i = 0; i < ps.nr_arenas; i++) {
			printf("  arena   %s pages, node %d: %s, %s free, largest free run %s; free blocks by order:",
			       fmt_size(ps.arenas[i].page_size, a, sizeof(a)), ps.arenas[i].node,
			       fmt_size(ps.arenas[i].total, b, sizeof(b)),
			       fmt_size(ps.arenas[i].free, c, sizeof(c)),
			       fmt_size(ps.arenas[i].largest_free_run, d, sizeof(d)));
			for (unsigned o = 0; o < IOVM_PHYS_ORDERS; o++)
				if (ps.arenas[i].free_blocks[o])
					printf(" %u:%" PRIu64, o, ps.arenas[i].free_blocks[o]);
			printf("\n");
		}
	}
	iovm_close(ctx);
	return 0;
}
