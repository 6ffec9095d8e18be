/* SPDX-License-Identifier: MIT */
/*
 * attack24_reduced.c - the one-thread reductions of what the storm found
 * (test_attack24_monitor): fork() then the calls libc does not hook,
 * overlapping registration cache regions over memory replaced and
 * mapped anew, a cache region over a plain MR's memory; and their cases.
 */
#include "attack/attack24.h"

A24_HARNESS(reduced);

/*
 * One thread, no storm: register (iovm_mr_reg, or a held rcache get),
 * fork() a child that exits at once (or that calls munmap on its copy),
 * then take part of the memory away in the parent: the query counts it,
 * the device faults there.
 */
static unsigned fork_then_one(int kind, unsigned op, int child_does)
{
	struct a17q a;
	unsigned np = 6, mp = np + 2, bad = 0;
	uint8_t *map = map_anon((size_t)mp * PG, false);
	uint32_t tag = next_tag();
	struct iovm_rcache *rc = NULL;
	struct iovm_mr *mr;
	struct iovm_mr_info info;
	uint64_t iova;
	int status;
	pid_t pid;

	a17q_open(&R, &a, BUFLEN, IOVM_QUEUE_POLLED);
	for (unsigned i = 0; i < mp; i++)
		pat(map + (size_t)i * PG, tag, i);
	if (kind) {
		CHECK_OK(iovm_rcache_create(R.dom, NULL, &rc));
		CHECK_OK(iovm_rcache_get(rc, map + PG, (size_t)np * PG, ACC, &mr));
	} else {
		CHECK_OK(iovm_mr_reg(R.dom, map + PG, (size_t)np * PG, ACC, &mr));
	}
	iova = mr_iova(mr, map + PG);
	if (child_does >= 0) {
		pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			alarm(20);
			if (child_does == 1)
				munmap(map, (size_t)mp * PG);
			_exit(0);
		}
		CHECK_EQ(waitpid(pid, &status, 0), pid);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	/* Pages 3 and 4 of the mapping (2 and 3 of the MR); for the shrink, 3 to the end. */
	switch (op) {
	case OP_MUNMAP:
		CHECK_OK(munmap(map + 3 * PG, 2 * PG));
		break;
	case OP_FIXED:
		CHECK(mmap(map + 3 * PG, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
			   0) == map + 3 * PG);
		break;
	case OP_DN_LOCKED:
		CHECK_OK(madvise(map + 3 * PG, 2 * PG, MADV_DONTNEED_LOCKED));
		break;
	case OP_SHRINK:
		CHECK(mremap(map, (size_t)mp * PG, 3 * PG, 0) == map);
		break;
	case OP_MOVE: {
		uint8_t *d = mmap(NULL, 2 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		CHECK(mremap(map + 3 * PG, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, d) == d);
		munmap(d, 2 * PG);
		break;
	}
	}
	CHECK_OK(iovm_mr_query(mr, &info));
	if (info.valid_pages > np - 2)
		bad++;
	{
		uint8_t own[8] = { 1, 1, 1, 1, 1, 1, 1, 1 };

		if (op == OP_MUNMAP || op == OP_MOVE)
			own[3] = own[4] = 0;
		if (op == OP_SHRINK)
			for (unsigned i = 3; i < mp; i++)
				own[i] = 0;
		refill(map + 3 * PG, 2, own + 3);
		memset(a.buf, 0x5a, PG);
		if (a17_copy(&a, iova + 2 * PG, a.buf_iova, PG) != IOVM_STATUS_PAGE_FAULT)
			bad += 2;
		if (bad)
			printf("# %s, %s, child %s: after the call returned, query says %llu of %u valid (2 taken), "
			       "device read of a taken page %s%s\n",
			       kind ? "rcache get" : "iovm_mr_reg", opname[op],
			       child_does < 0 ? "none (no fork)" : child_does ? "munmaps its copy" : "exits at once",
			       (unsigned long long)info.valid_pages, np, bad & 2 ? "succeeded" : "faulted",
			       bad & 2 && a17_any(a.buf, 0xa5, PG) ? " with the new memory's bytes" : "");
		if (kind) {
			CHECK_OK(iovm_rcache_put(rc, mr));
			CHECK_OK(iovm_rcache_destroy(rc));
		} else {
			CHECK_OK(iovm_mr_dereg(mr));
		}
		unmap_own(map, mp, own);
	}
	a17q_close(&R, &a);
	return bad;
}

static unsigned fork_then_all(void)
{
	static const unsigned ops[] = { OP_MUNMAP, OP_FIXED, OP_DN_LOCKED, OP_SHRINK, OP_MOVE };
	unsigned bad = 0, runs = 0;

	for (int child = -1; child <= 1; child++)
		for (int kind = 0; kind < 2; kind++)
			for (unsigned k = 0; k < 5; k++) {
				bad += fork_then_one(kind, ops[k], child) != 0;
				runs++;
			}
	printf("# %u of %u (registration, call, child) combinations stale\n", bad, runs);
	return bad;
}

/*
 * The registration cache, one thread: regions that overlap (the cache may
 * hand out a region wider than asked), memory replaced under an old region
 * and mapped anew, then a call libc does not hook without IOVM_HOOKS=all
 * (MAP_FIXED, MADV_DONTNEED_LOCKED, mremap shrink) on the new memory: the
 * region held must count the pages invalid, the device must fault there.
 * Returns the scenarios found stale.
 */
static unsigned rc_overlap_one(unsigned scen, unsigned op)
{
	struct a17q a;
	struct iovm_rcache *rc;
	struct iovm_mr *m1, *m2, *mr;
	struct iovm_mr_info info, i1;
	unsigned n = 16, bad = 0;
	uint8_t *M = map_anon((size_t)n * PG, false), *t;
	uint8_t own[16];
	uint8_t stt;

	memset(own, 1, sizeof(own));
	a17q_open(&R, &a, BUFLEN, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_rcache_create(R.dom, NULL, &rc));
	memset(M, 1, (size_t)n * PG);
	if (scen >= 8) { /* [8, 16) a mapping of its own, made after the old region was registered */
		CHECK_OK(munmap(M + 8 * PG, 8 * PG));
	}
	/* An old region over pages [2, 8). */
	CHECK_OK(iovm_rcache_get(rc, M + 2 * PG + 100, 6 * PG - 200, ACC, &m1));
	CHECK_OK(iovm_rcache_put(rc, m1));
	if (scen >= 8) {
		CHECK(mmap(M + 8 * PG, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			   -1, 0) == M + 8 * PG);
		memset(M + 8 * PG, 3, 8 * PG);
	}
	if (scen >= 1 && scen < 8) { /* its memory replaced in part, mapped anew */
		uint8_t *d;

		switch (scen % 4) {
		case 1:
			CHECK_OK(munmap(M + 5 * PG, 3 * PG));
			break;
		case 2: /* moved away (mremap: userfaultfd's way without the hooks) */
			d = mmap(NULL, 3 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			CHECK(mremap(M + 5 * PG, 3 * PG, 3 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, d) == d);
			munmap(d, 3 * PG);
			break;
		case 3: /* a raw munmap */
			CHECK_OK((int)syscall(SYS_munmap, M + 5 * PG, (size_t)3 * PG));
			break;
		default: /* moved away, then the rest of it moved back? no: a mremap that grows in place fails; shrink */
			CHECK(mremap(M, 8 * PG, 5 * PG, 0) == M);
			break;
		}
		CHECK(mmap(M + 5 * PG, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			   -1, 0) == M + 5 * PG);
		memset(M + 5 * PG, 2, 3 * PG);
	}
	if (scen >= 4 && scen != 8) { /* and a second region overlapping it, then put */
		CHECK_OK(iovm_rcache_get(rc, M + 6 * PG + 1, 4 * PG, ACC, &m2));
		CHECK_OK(iovm_rcache_put(rc, m2));
	}
	/* A get over [4, 11), held. */
	CHECK_OK(iovm_rcache_get(rc, M + 4 * PG + 7, 7 * PG - 14, ACC, &mr));
	CHECK_OK(iovm_mr_query(mr, &i1));
	t = M + 9 * PG; /* page 9: taken */
	switch (op) {
	case OP_FIXED:
		CHECK(mmap(t, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == t);
		break;
	case OP_DN_LOCKED:
		CHECK_OK(madvise(t, PG, MADV_DONTNEED_LOCKED));
		break;
	case OP_SHRINK: /* the mapping that holds page 9 ends at page 10 or later: shrink it from page 9 */
		CHECK_OK(munmap(M + 12 * PG, 4 * PG));
		own[12] = own[13] = own[14] = own[15] = 0;
		CHECK(mremap(M + 8 * PG, 4 * PG, PG, 0) == M + 8 * PG);
		own[9] = own[10] = own[11] = 0;
		break;
	case OP_MUNMAP:
		CHECK_OK(munmap(t, PG));
		own[9] = 0;
		break;
	}
	CHECK_OK(iovm_mr_query(mr, &info));
	refill(t, 1, own + 9);
	memset(a.buf, 0x5a, PG);
	stt = a17_copy(&a, mr_iova(mr, M + 4 * PG + 7) - 7 + 5 * PG, a.buf_iova, PG);
	if (info.valid_pages == info.pages || stt != IOVM_STATUS_PAGE_FAULT) {
		bad = 1;
		printf("# scenario %u, %s of page 9 returned: region held [M%+ld, +%zu) (%llu of %llu valid at the "
		       "get), now %llu valid; device read of page 9: status %u%s\n",
		       scen, opname[op], (long)((uint8_t *)i1.addr - M) / (long)PG, i1.len / PG,
		       (unsigned long long)i1.valid_pages, (unsigned long long)i1.pages,
		       (unsigned long long)info.valid_pages, stt,
		       stt == IOVM_STATUS_SUCCESS ? " (reached the new page)" : "");
	}
	CHECK_OK(iovm_rcache_put(rc, mr));
	CHECK_OK(iovm_rcache_destroy(rc));
	unmap_own(M, n, own);
	a17q_close(&R, &a);
	return bad;
}

/*
 * A cache region that covers memory a plain MR registered too: the plain MR
 * is deregistered, then part of the memory is taken away by a call libc
 * does not hook (without IOVM_HOOKS=all) or by munmap: the region must
 * count it. @variant: 0 the region over the MR's memory only; 1 two
 * overlapping gets (a region that may be merged).
 */
static unsigned rc_shared_watch_one(unsigned variant, unsigned op, bool dereg_first)
{
	struct a17q a;
	struct iovm_rcache *rc;
	struct iovm_mr *w, *m1, *mr;
	struct iovm_mr_info info, i0;
	unsigned n = 12, bad = 0, tp = 6;
	uint8_t *M = map_anon((size_t)n * PG, false), *t = M + (size_t)tp * PG;
	uint8_t own[12];
	uint8_t stt;

	memset(own, 1, sizeof(own));
	memset(M, 1, (size_t)n * PG);
	a17q_open(&R, &a, BUFLEN, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_rcache_create(R.dom, NULL, &rc));
	CHECK_OK(iovm_mr_reg(R.dom, M + 5 * PG, 4 * PG, ACC, &w)); /* a plain MR over [5, 9) */
	if (variant) {
		CHECK_OK(iovm_rcache_get(rc, M + 7 * PG, 2 * PG, ACC, &m1));
		CHECK_OK(iovm_rcache_put(rc, m1));
	}
	CHECK_OK(iovm_rcache_get(rc, M + 2 * PG + 5, 6 * PG, ACC, &mr)); /* [2, 9) */
	CHECK_OK(iovm_mr_query(mr, &i0));
	if (dereg_first)
		CHECK_OK(iovm_mr_dereg(w));
	switch (op) {
	case OP_FIXED:
		CHECK(mmap(t, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == t);
		break;
	case OP_DN_LOCKED:
		CHECK_OK(madvise(t, PG, MADV_DONTNEED_LOCKED));
		break;
	case OP_SHRINK:
		CHECK(mremap(M, (size_t)n * PG, (size_t)tp * PG, 0) == M);
		for (unsigned i = tp; i < n; i++)
			own[i] = 0;
		break;
	default:
		CHECK_OK(munmap(t, PG));
		own[tp] = 0;
		break;
	}
	CHECK_OK(iovm_mr_query(mr, &info));
	refill(t, 1, own + tp);
	memset(a.buf, 0x5a, PG);
	stt = a17_copy(&a, mr_iova(mr, M + 2 * PG + 5) - 5 + (uint64_t)(tp - 2) * PG, a.buf_iova, PG);
	if (info.valid_pages == info.pages || stt != IOVM_STATUS_PAGE_FAULT) {
		bad = 1;
		printf("# variant %u, plain MR deregistered %s, %s of page %u returned: region held [M%+ld, +%zu pages) "
		       "(%llu valid at the get), now %llu valid; device read of page %u: status %u\n",
		       variant, dereg_first ? "before" : "after", opname[op], tp, (long)((uint8_t *)i0.addr - M) / (long)PG,
		       i0.len / PG, (unsigned long long)i0.valid_pages, (unsigned long long)info.valid_pages, tp, stt);
	}
	if (!dereg_first)
		CHECK_OK(iovm_mr_dereg(w));
	CHECK_OK(iovm_rcache_put(rc, mr));
	CHECK_OK(iovm_rcache_destroy(rc));
	unmap_own(M, n, own);
	a17q_close(&R, &a);
	return bad;
}

/* ---- the cases ---- */

/* fork() once, then the calls libc does not hook (without IOVM_HOOKS=all): still seen? */
TEST(fork_then_calls)
{
	if (TEST_TSAN)
		SKIP_CASE("TSan's fork handler blocks the monitor's reader");
	alarm(60);
	CHECK_EQ(fork_then_all(), 0);
}

TEST(rcache_overlap_then_calls)
{
	static const unsigned ops[] = { OP_MUNMAP, OP_FIXED, OP_DN_LOCKED, OP_SHRINK };
	unsigned bad = 0, runs = 0;

	alarm(60);
	for (unsigned scen = 0; scen < 10; scen++)
		for (unsigned k = 0; k < 4; k++, runs++)
			bad += rc_overlap_one(scen, ops[k]);
	printf("# %u of %u scenarios stale\n", bad, runs);
	CHECK_EQ(bad, 0);
}

TEST(rcache_over_a_plain_mr)
{
	static const unsigned ops[] = { OP_MUNMAP, OP_FIXED, OP_DN_LOCKED, OP_SHRINK };
	unsigned bad = 0, runs = 0;

	alarm(60);
	for (unsigned v = 0; v < 2; v++)
		for (unsigned d = 0; d < 2; d++)
			for (unsigned k = 0; k < 4; k++, runs++)
				bad += rc_shared_watch_one(v, ops[k], d);
	printf("# %u of %u stale\n", bad, runs);
	CHECK_EQ(bad, 0);
}

/* main()'s list runs these (test_attack24_monitor.c). */
A24_CASE(fork_then_calls)
A24_CASE(rcache_overlap_then_calls)
A24_CASE(rcache_over_a_plain_mr)
