/* SPDX-License-Identifier: MIT */
/*
 * test_isolation.c - a fuzz of random descriptors with random IOVAs,
 * permissions and unmaps, against buffers with guard pages and canaries:
 * the engine touches zero bytes outside live mappings.
 *
 * Each region is a body of 1 to 4 pages between two guard pages that are
 * never mapped and hold a canary. Bodies are mapped and unmapped (whole or
 * in part) at random, read-only, write-only or read-write. After every
 * descriptor: every canary is intact, every page the device may not write
 * (unmapped, or read-only) holds what it held when it became so, every fault
 * is one the page table justifies, and the oracle saw no violation.
 */
#include "dev/dev_util.h"

#define NREG 24
#define PG 4096

struct page_state {
	bool mapped;
	uint32_t perm;
	uint8_t snap[PG]; /* what a page the device may not write must hold */
};

struct region {
	uint8_t *mem;   /* guard, body, guard */
	unsigned pages; /* of body */
	uint64_t iova;  /* of the body while any of it is mapped */
	struct page_state pg[4];
};

static struct region reg[NREG];

static uint8_t *body(struct region *r)
{
	return r->mem + PG;
}

static bool writable(const struct page_state *p)
{
	return p->mapped && (p->perm & IOVM_MAP_WRITE);
}

/* A page becomes one the device may not write: remember what it holds. */
static void freeze(struct region *r, unsigned i)
{
	memcpy(r->pg[i].snap, body(r) + (uint64_t)i * PG, PG);
}

static void check_all(void)
{
	for (int k = 0; k < NREG; k++) {
		struct region *r = &reg[k];

		for (unsigned b = 0; b < PG; b++) {
			if (r->mem[b] != 0xc5 || body(r)[(uint64_t)r->pages * PG + b] != 0xc5)
				test_fail("region %d: canary broken at guard byte %u", k, b);
		}
		for (unsigned i = 0; i < r->pages; i++)
			if (!writable(&r->pg[i]) && memcmp(r->pg[i].snap, body(r) + (uint64_t)i * PG, PG))
				test_fail("region %d page %u: written while %s", k, i,
					  r->pg[i].mapped ? "read-only" : "unmapped");
	}
	atomic_fetch_add_explicit(&test_checks, 1, memory_order_relaxed);
}

static void map_region(struct rig *rg, struct region *r, uint32_t perm)
{
	iovm_iova_t iova;

	CHECK_OK(iovm_domain_map_ptr(rg->dom, body(r), (uint64_t)r->pages * PG, perm, &iova));
	r->iova = iova.addr;
	for (unsigned i = 0; i < r->pages; i++) {
		r->pg[i].mapped = true;
		r->pg[i].perm = perm;
		freeze(r, i);
	}
}

/*
 * Unmap a run of pages the region maps: only those, since the IOVAs of pages
 * unmapped before may belong to another region's mapping by now.
 */
static void unmap_pages(struct rig *rg, struct region *r, unsigned first, unsigned n)
{
	while (first < r->pages && !r->pg[first].mapped)
		first++;
	if (first == r->pages)
		return;
	for (unsigned i = first; i < first + n; i++) {
		if (i == r->pages || !r->pg[i].mapped) {
			n = i - first;
			break;
		}
	}
	CHECK_OK(iovm_domain_unmap(rg->dom, IOVM_IOVA(r->iova + (uint64_t)first * PG), (uint64_t)n * PG));
	for (unsigned i = first; i < first + n; i++) {
		r->pg[i].mapped = false;
		freeze(r, i);
	}
	/* Unmapped already: nothing there any more. */
	CHECK_EQ(iovm_domain_unmap(rg->dom, IOVM_IOVA(r->iova + (uint64_t)first * PG), PG), -ENOENT);
}

/* An IOVA to aim at: in a region's mapping (often one still mapped), near one, or anywhere. */
static uint64_t aim(uint64_t *seed)
{
	uint64_t r = test_rand(seed);
	struct region *g = &reg[r % NREG];

	/* Prefer a region with its first page mapped: most descriptors then get somewhere. */
	for (int tries = 0; tries < NREG && !g->pg[0].mapped; tries++)
		g = &reg[(r + (uint64_t)tries) % NREG];
	if (r % 10 < 7 && g->iova)
		return g->iova + test_rand(seed) % ((uint64_t)(g->pages + 2) * PG) - PG;
	if (r % 10 < 8)
		return 0xffffffff0000ull - (test_rand(seed) % 256) * PG + test_rand(seed) % PG;
	return test_rand(seed) & ((1ull << 48) - 1);
}

/* Whether the page table justifies a fault of @access at @iova. */
static bool fault_justified(struct rig *rg, uint64_t iova, unsigned access)
{
	iovm_pa_t pa;
	uint32_t perm;

	return iovm_domain_translate(rg->dom, IOVM_IOVA(iova), &pa, &perm) || (perm & access) != access;
}

static void fuzz(unsigned iters, uint64_t seed)
{
	static const uint8_t ops[] = { IOVM_OP_COPY, IOVM_OP_FILL, IOVM_OP_COMPARE, IOVM_OP_COMPARE_PATTERN,
				       IOVM_OP_CRC32C, IOVM_OP_COPY_CRC, IOVM_OP_DUALCAST };
	struct iovm_domain_attr plain = { 0 };
	unsigned faults = 0, successes = 0;
	struct rig rg;

	rig_open(&rg, "page_size=4K,host_pa=off,oracle=on", &plain, IOVM_QUEUE_POLLED);
	for (int k = 0; k < NREG; k++) {
		struct region *r = &reg[k];

		r->pages = 1 + (unsigned)(test_rand(&seed) % 4);
		r->mem = iovm_dma_alloc(rg.ctx, (uint64_t)(r->pages + 2) * PG, PG, 0);
		CHECK(r->mem != NULL);
		memset(r->mem, 0xc5, PG);
		memset(body(r) + (uint64_t)r->pages * PG, 0xc5, PG);
		for (uint64_t b = 0; b < (uint64_t)r->pages * PG; b++)
			body(r)[b] = (uint8_t)test_rand(&seed);
		r->iova = 0;
		for (unsigned i = 0; i < r->pages; i++) {
			r->pg[i].mapped = false;
			freeze(r, i);
		}
	}
	for (unsigned it = 0; it < iters; it++) {
		uint64_t x = test_rand(&seed);
		struct region *r = &reg[x % NREG];

		if (x % 100 < 15) {
			/* Change a mapping: unmap part or all of a region, or map it with a new permission. */
			bool any = false;

			for (unsigned i = 0; i < r->pages; i++)
				any |= r->pg[i].mapped;
			if (any) {
				unsigned first = (unsigned)(test_rand(&seed) % r->pages);
				unsigned n = 1 + (unsigned)(test_rand(&seed) % (r->pages - first));

				unmap_pages(&rg, r, x % 3 ? first : 0, x % 3 ? n : r->pages);
			} else {
				static const uint32_t perms[] = { IOVM_MAP_READ, IOVM_MAP_WRITE,
								  IOVM_MAP_READ | IOVM_MAP_WRITE };

				map_region(&rg, r, perms[test_rand(&seed) % 3]);
			}
		} else {
			struct iovm_desc d = {
				.op = ops[test_rand(&seed) % ARRAY_SIZE(ops)],
				.src = aim(&seed),
				.dst = aim(&seed),
				.dst2 = aim(&seed),
				.len = 1 + (uint32_t)(test_rand(&seed) % (x % 2 ? 256 : 3 * PG)),
				.pattern = test_rand(&seed),
			};
			struct iovm_completion c = run_desc(&rg, d);

			CHECK(c.status == IOVM_STATUS_SUCCESS || c.status == IOVM_STATUS_PAGE_FAULT);
			if (c.status == IOVM_STATUS_PAGE_FAULT) {
				CHECK_MSG(fault_justified(&rg, c.fault_addr, c.fault_access),
					  "a fault at %#lx the page table does not justify",
					  (unsigned long)c.fault_addr);
				faults++;
			} else {
				successes++;
			}
		}
		check_all();
	}
	/* Not vacuous: plenty of both outcomes. */
	CHECK(faults > iters / 20);
	CHECK(successes > iters / 20);
	printf("# %u descriptors succeeded, %u faulted\n", successes, faults);
	rig_close(&rg);
}

TEST(fuzz_isolation)
{
	fuzz(6000, 0x5eed);
	fuzz(6000, 0xfeed);
}

int main(void)
{
	test_init();
	RUN(fuzz_isolation);
	return 0;
}
