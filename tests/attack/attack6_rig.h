/* SPDX-License-Identifier: MIT */
/*
 * attack6_rig.h - a client with two own regions, one with a hole (a page
 * it unmapped) in its middle, and a page of completion records; the bytes
 * as they were before each descriptor, to check what a fault let through
 * (test_attack6_devown_faults*.c).
 */
#ifndef IOVM_TESTS_ATTACK6_RIG_H
#define IOVM_TESTS_ATTACK6_RIG_H

#include "attack6_devown.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)
#define PG 24            /* pages of each region */
#define HOLE (12 * A6_PAGE) /* the hole in region H */
#define SZ (PG * A6_PAGE)

struct rig {
	struct a6_cl c;
	uint8_t *h, *d, *rec; /* h: with the hole; d: whole; rec: completion records */
	uint64_t ih, id, irec;
	uint8_t *orig_h, *orig_d;
};

static void rig_open(struct rig *r)
{
	r->c = a6_client(16);
	r->h = a6_anon(SZ, PROT_READ | PROT_WRITE);
	r->d = a6_anon(SZ, PROT_READ | PROT_WRITE);
	r->rec = a6_anon(A6_PAGE, PROT_READ | PROT_WRITE);
	r->orig_h = malloc(SZ);
	r->orig_d = malloc(SZ);
	CHECK(r->orig_h && r->orig_d);
	r->ih = a6_map(r->c.q, r->h, SZ, RW);
	r->id = a6_map(r->c.q, r->d, SZ, RW);
	r->irec = a6_map(r->c.q, r->rec, A6_PAGE, RW);
	CHECK(munmap(r->h + HOLE, A6_PAGE) == 0);
}

static void rig_close(struct rig *r)
{
	a6_client_close(&r->c);
	munmap(r->h, SZ);
	munmap(r->d, SZ);
	munmap(r->rec, A6_PAGE);
	free(r->orig_h);
	free(r->orig_d);
}

/* Fresh random bytes everywhere but the hole; remembered. */
static void rig_fill(struct rig *r, uint64_t *seed)
{
	a6_fill_rand(r->h, HOLE, seed);
	a6_fill_rand(r->h + HOLE + A6_PAGE, SZ - HOLE - A6_PAGE, seed);
	a6_fill_rand(r->d, SZ, seed);
	memcpy(r->orig_h, r->h, HOLE);
	memcpy(r->orig_h + HOLE + A6_PAGE, r->h + HOLE + A6_PAGE, SZ - HOLE - A6_PAGE);
	memcpy(r->orig_d, r->d, SZ);
	memset(r->rec, 0, A6_PAGE);
}

static struct iovm_completion rig_run(struct rig *r, struct iovm_desc d, struct iovm_cqe *cq)
{
	struct iovm_completion rec;

	d.flags |= IOVM_DESC_COMPLETION;
	d.completion = r->irec;
	*cq = a6_run(r->c.q, d);
	memcpy(&rec, r->rec, sizeof(rec));
	CHECK_EQ(rec.status, cq->status);
	CHECK_EQ(rec.bytes_completed, cq->bytes_completed);
	return rec;
}

static void expect_bus(const struct iovm_completion *rec, uint64_t at, uint8_t access, const char *what)
{
	CHECK_MSG(rec->status == IOVM_STATUS_PAGE_FAULT && rec->fault_reason == IOVM_FAULT_BUS &&
			  rec->fault_addr == at && rec->fault_access == access,
		  "%s: status %u reason %u at %#" PRIx64 " (want %#" PRIx64 ") access %u (want %u), %u bytes", what,
		  rec->status, rec->fault_reason, rec->fault_addr, at, rec->fault_access, access, rec->bytes_completed);
}

/* Region h as it was, but for [off, off+len) which must be @want, and the hole. */
static void expect_h(const struct rig *r, size_t off, const uint8_t *want, size_t len, const char *what)
{
	for (size_t i = 0; i < SZ; i++) {
		uint8_t w;

		if (i >= HOLE && i < HOLE + A6_PAGE)
			continue;
		w = i >= off && i < off + len ? want[i - off] : r->orig_h[i];
		CHECK_MSG(r->h[i] == w, "%s: byte %zu of h is %#x, want %#x", what, i, r->h[i], w);
	}
}

#endif /* IOVM_TESTS_ATTACK6_RIG_H */
