/* SPDX-License-Identifier: MIT */
/*
 * test_attack3_engine.c - attacks on the software DMA engine's descriptor
 * promises (include/iovm/dev.h) at their edges, and on PASID attachment,
 * from the public headers alone. Oracle on.
 */
#include "attack2.h"

static struct rig R;

/* Window W: p0 RW, p1 RW, p2 RO, p3 RW, p4 unmapped. D, S: 4 RW pages. */
#define W_IOVA 0x40000000ull
#define D_IOVA 0x50000000ull
#define S_IOVA 0x60000000ull
static uint8_t *W, *D, *S;

static int known(void)
{
	const char *e = getenv("IOVM_ATTACK_KNOWN");

	return e && *e == '1';
}

static void map_at(struct iovm_domain *dom, void *p, uint64_t iova, uint32_t perm)
{
	iovm_pa_t pa;
	iovm_iova_t io = IOVM_IOVA(iova);

	CHECK_OK(iovm_dma_pa(R.ctx, p, &pa));
	CHECK_OK(iovm_domain_map(dom, &io, pa, PG, perm));
	CHECK_EQ(io.addr, iova);
}

static uint8_t *region(struct iovm_domain *dom, uint64_t iova, unsigned pages, const uint32_t *perm)
{
	uint8_t *p = iovm_dma_zalloc(R.ctx, (size_t)pages * PG, PG, 0);

	CHECK(p != NULL);
	for (unsigned i = 0; i < pages; i++)
		if (!perm || perm[i])
			map_at(dom, p + (size_t)i * PG, iova + (uint64_t)i * PG,
			       perm ? perm[i] : IOVM_MAP_READ | IOVM_MAP_WRITE);
	return p;
}

/* Submit @d as is; run it; its completion ring entry. */
static struct iovm_cqe run_raw(struct iovm_queue *q, struct iovm_desc d)
{
	struct iovm_cqe cqe;
	int n = 0;

	CHECK_OK(iovm_queue_submit(q, &d));
	for (unsigned spins = 0; n == 0; spins++) {
		CHECK(iovm_queue_process(q, 1) >= 0);
		n = iovm_queue_reap(q, &cqe, 1);
		CHECK(n >= 0);
		CHECK(spins < 1000000u);
	}
	return cqe;
}

/* Reference CRC-32C, reflected, no pre/post inversion. */
static uint32_t crc_raw(uint32_t c, const uint8_t *p, size_t n)
{
	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
	}
	return c;
}

static int crc_conv = -1; /* 0: engine = raw(seed); 1: engine = ~raw(~seed) */

static uint32_t crc_ref(uint32_t seed, const uint8_t *p, size_t n)
{
	return crc_conv == 1 ? ~crc_raw(~seed, p, n) : crc_raw(seed, p, n);
}

static void fill_rand(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)test_rand(&seed);
}

static void drain_faults(struct iovm_domain *dom)
{
	struct iovm_fault f;

	while (iovm_domain_fault_pop(dom, &f) == 0)
		;
}

/*
 * "IOVM_OP_CRC32C = 5, CRC-32C of src, from crc_seed" and "crc: CRC32C,
 * COPY_CRC: of the bytes done, from crc_seed". Find which seed convention
 * the engine uses on the standard check string, then hold it to it.
 */
TEST(crc_convention)
{
	struct iovm_completion c;

	memcpy(S, "123456789", 9);
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_CRC32C, .src = S_IOVA, .len = 9, .crc_seed = 0 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	if (c.crc == crc_raw(0, S, 9))
		crc_conv = 0;
	else if (c.crc == ~crc_raw(~0u, S, 9))
		crc_conv = 1;
	else if (c.crc == crc_raw(~0u, S, 9) || c.crc == ~crc_raw(0, S, 9))
		crc_conv = 2;
	EXPECT_MSG(crc_conv == 0 || crc_conv == 1, "CRC32C(\"123456789\", seed 0) = %#x: no CRC-32C convention",
		   c.crc);
	printf("# crc convention %d (crc seed 0 of check string = %#x)\n", crc_conv, c.crc);
	if (crc_conv == 2)
		crc_conv = -1;
	/* Chaining: from a seed means crc(A||B) == crc(B, seed = crc(A)). */
	fill_rand(S, 3 * PG, 11);
	struct iovm_completion a = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_CRC32C, .src = S_IOVA,
								      .len = 1000, .crc_seed = 0x1234 });
	struct iovm_completion b = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_CRC32C, .src = S_IOVA + 1000,
								      .len = 5000, .crc_seed = a.crc });
	struct iovm_completion ab = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_CRC32C, .src = S_IOVA,
								       .len = 6000, .crc_seed = 0x1234 });
	EXPECT_EQ(ab.crc, b.crc);
	EXPECT_EQ(ab.crc, crc_ref(0x1234, S, 6000));
}

/*
 * Every op at lengths 0, 1, 4095, 4096, 4097 (crossing pages): data and
 * crc right, bytes moved right, nothing outside the range written.
 * "IOVM_OP_FILL = 2, the 8-byte pattern -> dst, len bytes".
 */
TEST(op_lengths)
{
	static const uint32_t lens[] = { 0, 1, 4095, 4096, 4097, 3 * PG };
	const uint64_t pat = 0x0123456789abcdefull;
	uint8_t *D2 = D + 2 * PG; /* dualcast second target, D_IOVA + 2PG */
	(void)D2;

	for (unsigned li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
		uint32_t len = lens[li];
		uint32_t off = 7; /* misaligned start */
		struct iovm_completion c;

		if (len + off > 3 * PG)
			off = 0;
		fill_rand(S, 4 * PG, len + 1);
		/* COPY */
		memset(D, CANARY, 4 * PG);
		c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = S_IOVA + off,
						       .dst = D_IOVA + off, .len = len, .tag = len });
		if (len == 0) {
			EXPECT_MSG(c.status == IOVM_STATUS_SUCCESS || c.status == IOVM_STATUS_INVALID,
				   "COPY len 0: status %u", c.status);
			EXPECT(all_bytes(D, 4 * PG, CANARY));
			continue;
		}
		EXPECT_EQ(c.status, IOVM_STATUS_SUCCESS);
		EXPECT_EQ(c.bytes_completed, len);
		EXPECT(!memcmp(D + off, S + off, len));
		EXPECT(all_bytes(D, off, CANARY));
		EXPECT(all_bytes(D + off + len, 4 * PG - off - len, CANARY));
		/* COMPARE equal, then a difference at the last byte and at byte 0. */
		c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_COMPARE, .src = S_IOVA + off,
						       .dst = D_IOVA + off, .len = len });
		EXPECT_EQ(c.status, IOVM_STATUS_SUCCESS);
		EXPECT_EQ(c.result, 0);
		D[off + len - 1] ^= 1;
		c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_COMPARE, .src = S_IOVA + off,
						       .dst = D_IOVA + off, .len = len });
		EXPECT_EQ(c.status, IOVM_STATUS_SUCCESS);
		EXPECT_EQ(c.result, 1);
		EXPECT_MSG(c.mismatch == len - 1, "COMPARE len %u: mismatch %llu, expected %u", len,
			   (unsigned long long)c.mismatch, len - 1);
		if (len > 4096) {
			D[off + len - 1] ^= 1;
			D[off + 4096] ^= 0x80;
			c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_COMPARE, .src = S_IOVA + off,
							       .dst = D_IOVA + off, .len = len });
			EXPECT_EQ(c.result, 1);
			EXPECT_EQ(c.mismatch, 4096);
		}
		/* CRC32C and COPY_CRC */
		c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_CRC32C, .src = S_IOVA + off, .len = len,
						       .crc_seed = 0xdeadbeef });
		EXPECT_EQ(c.status, IOVM_STATUS_SUCCESS);
		if (crc_conv >= 0)
			EXPECT_EQ(c.crc, crc_ref(0xdeadbeef, S + off, len));
		memset(D, CANARY, 4 * PG);
		c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_COPY_CRC, .src = S_IOVA + off,
						       .dst = D_IOVA + off, .len = len, .crc_seed = 7 });
		EXPECT_EQ(c.status, IOVM_STATUS_SUCCESS);
		EXPECT(!memcmp(D + off, S + off, len));
		EXPECT(all_bytes(D + off + len, 4 * PG - off - len, CANARY));
		if (crc_conv >= 0)
			EXPECT_EQ(c.crc, crc_ref(7, S + off, len));
		/* FILL: the pattern's bytes in memory order, phase from dst's first byte. */
		memset(D, CANARY, 4 * PG);
		c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = D_IOVA + off, .len = len,
						       .pattern = pat });
		EXPECT_EQ(c.status, IOVM_STATUS_SUCCESS);
		{
			const uint8_t *pb = (const uint8_t *)&pat;
			size_t bad = len;

			for (size_t i = 0; i < len; i++)
				if (D[off + i] != pb[i % 8]) {
					bad = i;
					break;
				}
			EXPECT_MSG(bad == len, "FILL len %u: byte %zu is %#x, pattern byte %#x", len, bad,
				   bad < len ? D[off + bad] : 0, pb[bad % 8]);
			EXPECT(all_bytes(D + off + len, 4 * PG - off - len, CANARY));
			EXPECT(all_bytes(D, off, CANARY));
		}
		/* COMPARE_PATTERN over what FILL wrote: equal; then a difference. */
		c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_COMPARE_PATTERN, .src = D_IOVA + off,
						       .len = len, .pattern = pat });
		EXPECT_EQ(c.status, IOVM_STATUS_SUCCESS);
		EXPECT_EQ(c.result, 0);
		D[off + len / 2] ^= 0x10;
		c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_COMPARE_PATTERN, .src = D_IOVA + off,
						       .len = len, .pattern = pat });
		EXPECT_EQ(c.result, 1);
		EXPECT_EQ(c.mismatch, len / 2);
		/* DUALCAST: dst and dst2 (D + 2 pages, same low 12 bits) */
		if (len <= PG + 1) {
			memset(D, CANARY, 4 * PG);
			c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_DUALCAST, .src = S_IOVA + off,
							       .dst = D_IOVA + off, .dst2 = D_IOVA + 2 * PG + off,
							       .len = len });
			EXPECT_EQ(c.status, IOVM_STATUS_SUCCESS);
			EXPECT(!memcmp(D + off, S + off, len));
			EXPECT(!memcmp(D + 2 * PG + off, S + off, len));
			EXPECT(all_bytes(D + off + len, 2 * PG - off - len, CANARY));
			EXPECT(all_bytes(D + 2 * PG + off + len, 2 * PG - off - len, CANARY));
		}
	}
	/* len 0 for the other ops: nothing written, no fault. */
	{
		static const uint8_t ops[] = { IOVM_OP_FILL, IOVM_OP_COMPARE, IOVM_OP_COMPARE_PATTERN,
					       IOVM_OP_CRC32C, IOVM_OP_COPY_CRC, IOVM_OP_DUALCAST };
		for (unsigned i = 0; i < sizeof(ops); i++) {
			memset(D, CANARY, 4 * PG);
			struct iovm_completion c = attack_run(&R, (struct iovm_desc){
				.op = ops[i], .src = S_IOVA, .dst = D_IOVA, .dst2 = D_IOVA + 2 * PG, .len = 0 });
			EXPECT_MSG(c.status == IOVM_STATUS_SUCCESS || c.status == IOVM_STATUS_INVALID,
				   "op %u len 0: status %u", ops[i], c.status);
			EXPECT(all_bytes(D, 4 * PG, CANARY));
		}
	}
	check_domain_clean(R.dom);
}

/*
 * "a COPY whose dst lies above an overlapping src ... runs from the end,
 * as memmove does (DSA's memory move: result 1, its direction bit)".
 */
TEST(copy_overlap)
{
	uint8_t ref[3 * PG];
	struct iovm_completion c;
	static const uint32_t shifts[] = { 1, 8, 4095, 4096, 4097 };

	for (unsigned i = 0; i < 5; i++) {
		uint32_t sh = shifts[i], len = 2 * PG + 3;

		if (sh + len > 4 * PG)
			len = 4 * PG - sh;
		/* dst above src */
		fill_rand(D, 4 * PG, sh);
		memcpy(ref, D, 3 * PG);
		memmove(ref + sh, ref, len > 3 * PG - sh ? 3 * PG - sh : len);
		fill_rand(D, 4 * PG, sh);
		{
			uint8_t full[4 * PG];

			memcpy(full, D, 4 * PG);
			memmove(full + sh, full, len);
			c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = D_IOVA,
							       .dst = D_IOVA + sh, .len = len });
			EXPECT_EQ(c.status, IOVM_STATUS_SUCCESS);
			EXPECT_EQ(c.result, 1);
			EXPECT_MSG(!memcmp(D, full, 4 * PG), "overlap up by %u: not memmove", sh);
			/* dst below src */
			fill_rand(D, 4 * PG, sh + 100);
			memcpy(full, D, 4 * PG);
			memmove(full, full + sh, len);
			c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = D_IOVA + sh,
							       .dst = D_IOVA, .len = len });
			EXPECT_EQ(c.status, IOVM_STATUS_SUCCESS);
			EXPECT_EQ(c.result, 0);
			EXPECT_MSG(!memcmp(D, full, 4 * PG), "overlap down by %u: not memmove", sh);
		}
	}
	(void)ref;
	check_domain_clean(R.dom);
}

/* The fault fields of a record, against what the header promises. */
static void expect_fault(struct iovm_completion c, uint32_t done, uint64_t addr, uint8_t access,
			 uint8_t reason, const char *what)
{
	EXPECT_MSG(c.status == IOVM_STATUS_PAGE_FAULT, "%s: status %u", what, c.status);
	EXPECT_MSG(c.bytes_completed == done, "%s: bytes_completed %u, expected %u", what, c.bytes_completed,
		   done);
	EXPECT_MSG(c.fault_addr == addr, "%s: fault_addr %#llx, expected %#llx", what,
		   (unsigned long long)c.fault_addr, (unsigned long long)addr);
	EXPECT_MSG(c.fault_access == access, "%s: fault_access %u, expected %u", what, c.fault_access, access);
	EXPECT_MSG(c.fault_reason == reason, "%s: fault_reason %u, expected %u", what, c.fault_reason, reason);
}

static void expect_dom_fault(struct iovm_domain *dom, uint64_t iova, uint32_t access, uint32_t reason,
			     uint32_t pasid, const char *what)
{
	struct iovm_fault f;
	int r = iovm_domain_fault_pop(dom, &f);

	EXPECT_MSG(r == 0, "%s: no fault in the domain's queue (%d)", what, r);
	if (r)
		return;
	EXPECT_MSG(f.iova.addr == iova, "%s: fault iova %#llx, expected %#llx", what,
		   (unsigned long long)f.iova.addr, (unsigned long long)iova);
	EXPECT_MSG(f.access == access, "%s: fault access %u", what, f.access);
	EXPECT_MSG(f.reason == reason, "%s: fault reason %u", what, f.reason);
	EXPECT_MSG(f.pasid == pasid, "%s: fault pasid %u", what, f.pasid);
	EXPECT_MSG(f.device == iovm_device_id(R.dev), "%s: fault device %u", what, f.device);
	EXPECT_MSG(f.stage == IOVM_STAGE_ONLY, "%s: stage %d", what, f.stage);
	drain_faults(dom);
}

/*
 * "Stopped at fault_addr after bytes_completed: the bytes before it are
 * done, in every destination (both of DUALCAST), and no byte after."
 * "crc: CRC32C, COPY_CRC: of the bytes done, from crc_seed".
 */
TEST(fault_edges)
{
	struct iovm_completion c;
	const uint64_t p2 = W_IOVA + 2 * PG, p4 = W_IOVA + 4 * PG;

	drain_faults(R.dom);
	/* COPY reading across into unmapped p4: 96 bytes done. */
	fill_rand(W + 3 * PG, PG, 3);
	memset(D, CANARY, 4 * PG);
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = p4 - 96, .dst = D_IOVA + 10,
					       .len = 200 });
	expect_fault(c, 96, p4, IOVM_MAP_READ, IOVM_FAULT_NOT_PRESENT, "COPY read into unmapped");
	EXPECT(!memcmp(D + 10, W + 4 * PG - 96, 96));
	EXPECT(all_bytes(D + 106, 4 * PG - 106, CANARY));
	expect_dom_fault(R.dom, p4, IOVM_MAP_READ, IOVM_FAULT_NOT_PRESENT, 0, "COPY read into unmapped");

	/* COPY writing across into read-only p2: 50 bytes done. */
	memset(W, CANARY, 4 * PG);
	fill_rand(S, PG, 4);
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = S_IOVA, .dst = p2 - 50, .len = 100 });
	expect_fault(c, 50, p2, IOVM_MAP_WRITE, IOVM_FAULT_PERMISSION, "COPY write into RO");
	EXPECT(!memcmp(W + 2 * PG - 50, S, 50));
	EXPECT(all_bytes(W + 2 * PG, 2 * PG, CANARY));
	expect_dom_fault(R.dom, p2, IOVM_MAP_WRITE, IOVM_FAULT_PERMISSION, 0, "COPY write into RO");

	/* FILL into RO at a page boundary exactly: 0 done. */
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = p2, .len = 10, .pattern = 1 });
	expect_fault(c, 0, p2, IOVM_MAP_WRITE, IOVM_FAULT_PERMISSION, "FILL at RO");
	EXPECT(all_bytes(W + 2 * PG, 2 * PG, CANARY));
	drain_faults(R.dom);

	/* CRC32C and COPY_CRC faulting: crc of the bytes done. */
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_CRC32C, .src = p4 - 4097 + 4096 - 1000, .len = 3000,
					       .crc_seed = 99 });
	expect_fault(c, 1001, p4, IOVM_MAP_READ, IOVM_FAULT_NOT_PRESENT, "CRC32C into unmapped");
	if (crc_conv >= 0)
		EXPECT_EQ(c.crc, crc_ref(99, W + 4 * PG - 1001, 1001));
	memset(D, CANARY, 4 * PG);
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_COPY_CRC, .src = p4 - 300, .dst = D_IOVA,
					       .len = 3000, .crc_seed = 5 });
	expect_fault(c, 300, p4, IOVM_MAP_READ, IOVM_FAULT_NOT_PRESENT, "COPY_CRC into unmapped");
	if (crc_conv >= 0)
		EXPECT_EQ(c.crc, crc_ref(5, W + 4 * PG - 300, 300));
	EXPECT(!memcmp(D, W + 4 * PG - 300, 300));
	EXPECT(all_bytes(D + 300, 4 * PG - 300, CANARY));
	/* COPY_CRC faulting on the write side: crc of the bytes done. */
	fill_rand(S, PG, 9);
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_COPY_CRC, .src = S_IOVA, .dst = p2 - 33,
					       .len = 500, .crc_seed = 5 });
	expect_fault(c, 33, p2, IOVM_MAP_WRITE, IOVM_FAULT_PERMISSION, "COPY_CRC write into RO");
	if (crc_conv >= 0)
		EXPECT_EQ(c.crc, crc_ref(5, S, 33));
	drain_faults(R.dom);

	/* DUALCAST with dst2 faulting: both destinations have exactly 50. */
	memset(D, CANARY, 4 * PG);
	memset(W, CANARY, 2 * PG);
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_DUALCAST, .src = S_IOVA + PG - 50,
					       .dst = D_IOVA + PG - 50, .dst2 = p2 - 50, .len = 100 });
	expect_fault(c, 50, p2, IOVM_MAP_WRITE, IOVM_FAULT_PERMISSION, "DUALCAST dst2 into RO");
	EXPECT(!memcmp(D + PG - 50, S + PG - 50, 50));
	EXPECT_MSG(all_bytes(D + PG, 3 * PG, CANARY), "DUALCAST: dst has bytes past bytes_completed (first %zu)",
		   first_not(D + PG, 3 * PG, CANARY));
	EXPECT(!memcmp(W + 2 * PG - 50, S + PG - 50, 50));
	drain_faults(R.dom);

	/* COMPARE reading into unmapped: no result claimed beyond bytes done. */
	memcpy(D, W + 4 * PG - 64, 64);
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_COMPARE, .src = p4 - 64, .dst = D_IOVA, .len = 128 });
	expect_fault(c, 64, p4, IOVM_MAP_READ, IOVM_FAULT_NOT_PRESENT, "COMPARE into unmapped");
	drain_faults(R.dom);

	/*
	 * "A COPY that ran from the end (result 1) has its last
	 * bytes_completed bytes done": dst above src, dst's first 8 bytes in
	 * RO p2, the rest in RW p3.
	 */
	{
		const uint64_t p3 = W_IOVA + 3 * PG;
		uint8_t before[PG];

		fill_rand(W + 3 * PG - 16, 16 + 300, 77);
		memcpy(before, W + 3 * PG - 16, 16 + 300);
		c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = p3 - 16, .dst = p3 - 8,
						       .len = 200 });
		EXPECT_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
		EXPECT_EQ(c.result, 1);
		EXPECT_EQ(c.bytes_completed, 192);
		EXPECT_MSG(c.fault_addr >= p3 - 8 && c.fault_addr < p3, "backward fault_addr %#llx",
			   (unsigned long long)c.fault_addr);
		EXPECT_EQ(c.fault_access, IOVM_MAP_WRITE);
		EXPECT(!memcmp(W + 3 * PG, before + 8, 192));
		EXPECT(!memcmp(W + 3 * PG - 16, before, 16)); /* RO part untouched */
		EXPECT(!memcmp(W + 3 * PG + 192, before + 16 + 192, 300 - 192));
		drain_faults(R.dom);
	}
	check_domain_clean(R.dom);
}

/*
 * "GATHER and SCATTER take 1 to 4096 entries in an 8-byte aligned list
 * ... A descriptor that breaks these ... completes IOVM_STATUS_INVALID".
 * "In a scatter or gather, bytes count in list order: the entries before
 * the faulting one are whole."
 */
TEST(gather_scatter)
{
	size_t lbytes = 4098 * sizeof(struct iovm_sge);
	struct iovm_sge *L = iovm_dma_zalloc(R.ctx, (lbytes + PG - 1) & ~(size_t)(PG - 1), PG, 0);
	iovm_iova_t li;
	struct iovm_completion c;

	CHECK(L != NULL);
	CHECK_EQ(sizeof(struct iovm_sge), 16);
	CHECK_OK(iovm_domain_map_ptr(R.dom, L, (lbytes + PG - 1) & ~(size_t)(PG - 1), IOVM_MAP_READ, &li));
	fill_rand(S, 4 * PG, 21);
	/* 4096 one-byte entries, each from S + 3*i mod: gather */
	for (unsigned i = 0; i < 4097; i++)
		L[i] = (struct iovm_sge){ .iova = S_IOVA + (3u * i) % (4 * PG), .len = 1 };
	memset(D, CANARY, 4 * PG);
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_GATHER, .sg_count = 4096, .src = li.addr,
					       .dst = D_IOVA, .len = 4096 });
	EXPECT_EQ(c.status, IOVM_STATUS_SUCCESS);
	EXPECT_EQ(c.bytes_completed, 4096);
	{
		size_t bad = 4096;

		for (unsigned i = 0; i < 4096; i++)
			if (D[i] != S[(3u * i) % (4 * PG)]) {
				bad = i;
				break;
			}
		EXPECT_MSG(bad == 4096, "gather 4096: byte %zu wrong", bad);
		EXPECT(all_bytes(D + 4096, 3 * PG, CANARY));
	}
	/* 1 entry */
	L[0] = (struct iovm_sge){ .iova = S_IOVA + 5, .len = 4097 };
	memset(D, CANARY, 4 * PG);
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_GATHER, .sg_count = 1, .src = li.addr,
					       .dst = D_IOVA, .len = 4097 });
	EXPECT_EQ(c.status, IOVM_STATUS_SUCCESS);
	EXPECT(!memcmp(D, S + 5, 4097));
	/* 0 and 4097 entries; misaligned list: INVALID, nothing written. */
	memset(D, CANARY, 4 * PG);
	for (unsigned i = 0; i < 4097; i++)
		L[i] = (struct iovm_sge){ .iova = S_IOVA + i % 16, .len = 1 };
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_GATHER, .sg_count = 0, .src = li.addr,
					       .dst = D_IOVA, .len = 0 });
	EXPECT_EQ(c.status, IOVM_STATUS_INVALID);
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_SCATTER, .sg_count = 0, .src = S_IOVA,
					       .dst = li.addr, .len = 0 });
	EXPECT_EQ(c.status, IOVM_STATUS_INVALID);
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_GATHER, .sg_count = 4097, .src = li.addr,
					       .dst = D_IOVA, .len = 4097 });
	EXPECT_EQ(c.status, IOVM_STATUS_INVALID);
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_GATHER, .sg_count = 2, .src = li.addr + 4,
					       .dst = D_IOVA, .len = 2 });
	EXPECT_EQ(c.status, IOVM_STATUS_INVALID);
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_SCATTER, .sg_count = 2, .src = S_IOVA,
					       .dst = li.addr + 4, .len = 2 });
	EXPECT_EQ(c.status, IOVM_STATUS_INVALID);
	EXPECT(all_bytes(D, 4 * PG, CANARY));
	/* Lengths not adding up to len (non-keyed): INVALID before a byte moves. */
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_GATHER, .sg_count = 4, .src = li.addr,
					       .dst = D_IOVA, .len = 5 });
	EXPECT_MSG(c.status == IOVM_STATUS_INVALID, "gather lengths 4 != len 5: status %u", c.status);
	EXPECT(all_bytes(D, 4 * PG, CANARY));

	/* Scatter: entry 2 runs into RO p2: entries 0, 1 whole, entry 2 partial. */
	memset(W, CANARY, 4 * PG);
	fill_rand(S, PG, 31);
	L[0] = (struct iovm_sge){ .iova = D_IOVA, .len = 100 };
	L[1] = (struct iovm_sge){ .iova = W_IOVA + 10, .len = 200 };
	L[2] = (struct iovm_sge){ .iova = W_IOVA + 2 * PG - 30, .len = 100 };
	L[3] = (struct iovm_sge){ .iova = D_IOVA + 1000, .len = 50 };
	memset(D, CANARY, 4 * PG);
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_SCATTER, .sg_count = 4, .src = S_IOVA,
					       .dst = li.addr, .len = 450 });
	expect_fault(c, 330, W_IOVA + 2 * PG, IOVM_MAP_WRITE, IOVM_FAULT_PERMISSION, "SCATTER into RO");
	EXPECT(!memcmp(D, S, 100));
	EXPECT(!memcmp(W + 10, S + 100, 200));
	EXPECT(!memcmp(W + 2 * PG - 30, S + 300, 30));
	EXPECT(all_bytes(D + 1000, 50, CANARY));
	drain_faults(R.dom);
	/* Gather: entry 1 runs into unmapped p4. */
	L[0] = (struct iovm_sge){ .iova = S_IOVA, .len = 64 };
	L[1] = (struct iovm_sge){ .iova = W_IOVA + 4 * PG - 10, .len = 64 };
	L[2] = (struct iovm_sge){ .iova = S_IOVA + 64, .len = 64 };
	memset(D, CANARY, 4 * PG);
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_GATHER, .sg_count = 3, .src = li.addr,
					       .dst = D_IOVA, .len = 192 });
	expect_fault(c, 74, W_IOVA + 4 * PG, IOVM_MAP_READ, IOVM_FAULT_NOT_PRESENT, "GATHER from unmapped");
	EXPECT(!memcmp(D, S, 64));
	EXPECT(!memcmp(D + 64, W + 4 * PG - 10, 10));
	EXPECT(all_bytes(D + 74, 4 * PG - 74, CANARY));
	drain_faults(R.dom);
	/* A list that is not mapped: "completes with bytes_completed 0". */
	memset(D, CANARY, 4 * PG);
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_GATHER, .sg_count = 3, .src = W_IOVA + 4 * PG,
					       .dst = D_IOVA, .len = 192 });
	EXPECT_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	EXPECT_EQ(c.bytes_completed, 0);
	EXPECT_EQ(c.fault_addr, W_IOVA + 4 * PG);
	EXPECT(all_bytes(D, 4 * PG, CANARY));
	drain_faults(R.dom);
	CHECK_OK(iovm_domain_unmap(R.dom, li, (lbytes + PG - 1) & ~(size_t)(PG - 1)));
	CHECK_OK(iovm_dma_free(R.ctx, L));
	check_domain_clean(R.dom);
}

/*
 * "BATCH 1 to 1024 descriptors in a 64-byte aligned list, none of them a
 * batch"; "IOVM_STATUS_BATCH_FAIL: a descriptor of the batch did not
 * succeed"; a completion record "not 32-byte aligned, completes
 * IOVM_STATUS_INVALID (with no record where the record is misaligned)".
 */
TEST(batch)
{
	size_t lb = 1026 * sizeof(struct iovm_desc);
	size_t lmap = (lb + PG - 1) & ~(size_t)(PG - 1);
	struct iovm_desc *B = iovm_dma_zalloc(R.ctx, lmap, PG, 0);
	struct iovm_completion *CR = iovm_dma_zalloc(R.ctx, PG, PG, 0);
	iovm_iova_t bi, ci;
	struct iovm_completion c;
	struct iovm_cqe q;

	CHECK(B && CR);
	CHECK_EQ(sizeof(struct iovm_desc), 64);
	CHECK_EQ(sizeof(struct iovm_completion), 32);
	CHECK_OK(iovm_domain_map_ptr(R.dom, B, lmap, IOVM_MAP_READ, &bi));
	CHECK_OK(iovm_domain_map_ptr(R.dom, CR, PG, IOVM_MAP_READ | IOVM_MAP_WRITE, &ci));
	fill_rand(S, 4 * PG, 41);
	/* 3 children: ok, fault, ok -- each with a record. */
	memset(D, CANARY, 4 * PG);
	memset(CR, 0, PG);
	B[0] = (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_COMPLETION, .src = S_IOVA,
				   .dst = D_IOVA, .len = 10, .completion = ci.addr };
	B[1] = (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_COMPLETION, .src = W_IOVA + 4 * PG - 5,
				   .dst = D_IOVA + 100, .len = 10, .completion = ci.addr + 32 };
	B[2] = (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_COMPLETION, .src = S_IOVA + 200,
				   .dst = D_IOVA + 200, .len = 10, .completion = ci.addr + 64 };
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_BATCH, .src = bi.addr, .len = 3 });
	EXPECT_EQ(c.status, IOVM_STATUS_BATCH_FAIL);
	EXPECT_EQ(CR[0].status, IOVM_STATUS_SUCCESS);
	EXPECT(!memcmp(D, S, 10));
	EXPECT_EQ(CR[1].status, IOVM_STATUS_PAGE_FAULT);
	EXPECT_EQ(CR[1].bytes_completed, 5);
	EXPECT_EQ(CR[1].fault_addr, W_IOVA + 4 * PG);
	EXPECT(!memcmp(D + 100, W + 4 * PG - 5, 5));
	EXPECT(all_bytes(D + 105, 95, CANARY));
	EXPECT_EQ(CR[2].status, IOVM_STATUS_SUCCESS); /* "run in order": a child's fault does not stop the batch */
	EXPECT(!memcmp(D + 200, S + 200, 10));
	drain_faults(R.dom);
	/* 1024 children: ok; 0, 1025: INVALID; misaligned list: INVALID. */
	for (unsigned i = 0; i < 1025; i++)
		B[i] = (struct iovm_desc){ .op = IOVM_OP_COPY, .src = S_IOVA + i, .dst = D_IOVA + 2 * i, .len = 1 };
	memset(D, CANARY, 4 * PG);
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_BATCH, .src = bi.addr, .len = 1024 });
	EXPECT_EQ(c.status, IOVM_STATUS_SUCCESS);
	EXPECT_EQ(D[2 * 1023], S[1023]);
	EXPECT_EQ(D[2 * 1024], CANARY);
	memset(D, CANARY, 4 * PG);
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_BATCH, .src = bi.addr, .len = 0 });
	EXPECT_EQ(c.status, IOVM_STATUS_INVALID);
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_BATCH, .src = bi.addr, .len = 1025 });
	EXPECT_EQ(c.status, IOVM_STATUS_INVALID);
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_BATCH, .src = bi.addr + 32, .len = 2 });
	EXPECT_EQ(c.status, IOVM_STATUS_INVALID);
	EXPECT(all_bytes(D, 4 * PG, CANARY));
	/* A child that is a batch: refused (the child INVALID, or the whole batch). */
	B[1] = (struct iovm_desc){ .op = IOVM_OP_BATCH, .flags = IOVM_DESC_COMPLETION, .src = bi.addr, .len = 1,
				   .completion = ci.addr + 32 };
	memset(CR, 0, PG);
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_BATCH, .src = bi.addr, .len = 3 });
	EXPECT_MSG(c.status == IOVM_STATUS_INVALID || c.status == IOVM_STATUS_BATCH_FAIL,
		   "batch in batch: status %u", c.status);
	if (c.status == IOVM_STATUS_BATCH_FAIL)
		EXPECT_EQ(CR[1].status, IOVM_STATUS_INVALID);
	/* List not mapped: PAGE_FAULT, bytes 0. */
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_BATCH, .src = W_IOVA + 4 * PG, .len = 2 });
	EXPECT_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	EXPECT_EQ(c.bytes_completed, 0);
	EXPECT_EQ(c.fault_addr, W_IOVA + 4 * PG);
	drain_faults(R.dom);
	/*
	 * A list running into an unmapped page: "A fault on a list ... before
	 * any data moved completes with bytes_completed 0 (a batch: its
	 * children done)". Two children in the last 128 bytes of RW p3, the
	 * third in unmapped p4: the list is the copy in W.
	 */
	{
		struct iovm_desc *wl = (struct iovm_desc *)(W + 4 * PG - 128);

		memset(D, CANARY, 4 * PG);
		wl[0] = (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = D_IOVA, .len = 8, .pattern = 0x1111111111111111ull };
		wl[1] = (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = D_IOVA + 8, .len = 8, .pattern = 0x2222222222222222ull };
		c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_BATCH, .src = W_IOVA + 4 * PG - 128, .len = 3 });
		EXPECT_MSG(c.status == IOVM_STATUS_PAGE_FAULT || c.status == IOVM_STATUS_BATCH_FAIL,
			   "batch list into unmapped: status %u", c.status);
		/* "(a batch: its children done)": read as bytes_completed = children run. */
		EXPECT_EQ(c.bytes_completed, 2);
		if (c.status == IOVM_STATUS_PAGE_FAULT)
			EXPECT_EQ(c.fault_addr, W_IOVA + 4 * PG);
		EXPECT(all_bytes(D, 8, 0x11));
		EXPECT(all_bytes(D + 8, 8, 0x22));
		EXPECT(all_bytes(D + 16, 4 * PG - 16, CANARY));
		drain_faults(R.dom);
	}
	/* Misaligned completion record: INVALID, and no record written. */
	memset(CR, 0, PG);
	memset(D, CANARY, 4 * PG);
	q = run_raw(R.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_COMPLETION, .src = S_IOVA,
					     .dst = D_IOVA, .len = 8, .completion = ci.addr + 16, .tag = 42 });
	EXPECT_EQ(q.status, IOVM_STATUS_INVALID);
	EXPECT_EQ(q.tag, 42);
	EXPECT(all_bytes(CR, PG, 0));
	EXPECT(all_bytes(D, 4 * PG, CANARY));
	/* Unknown op, unknown flag, PASID beyond max: INVALID. */
	c = attack_run(&R, (struct iovm_desc){ .op = 11, .src = S_IOVA, .dst = D_IOVA, .len = 8 });
	EXPECT_EQ(c.status, IOVM_STATUS_INVALID);
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = 1u << 6, .src = S_IOVA,
					       .dst = D_IOVA, .len = 8 });
	EXPECT_EQ(c.status, IOVM_STATUS_INVALID);
	q = run_raw(R.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .pasid = IOVM_PASID_MAX + 1, .src = S_IOVA,
					     .dst = D_IOVA, .len = 8 });
	EXPECT_EQ(q.status, IOVM_STATUS_INVALID);
	EXPECT(all_bytes(D, 4 * PG, CANARY));
	/* DUALCAST keyed: INVALID. */
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_DUALCAST, .flags = IOVM_DESC_KEYED, .src = S_IOVA,
					       .dst = D_IOVA, .dst2 = D_IOVA + PG, .len = 8 });
	EXPECT_EQ(c.status, IOVM_STATUS_INVALID);
	CHECK_OK(iovm_domain_unmap(R.dom, bi, lmap));
	CHECK_OK(iovm_domain_unmap(R.dom, ci, PG));
	CHECK_OK(iovm_dma_free(R.ctx, B));
	CHECK_OK(iovm_dma_free(R.ctx, CR));
	check_domain_clean(R.dom);
}

static int map_p4(void *arg, struct iovm_domain *dom, const struct iovm_fault *f)
{
	int *calls = arg;
	iovm_pa_t pa;
	iovm_iova_t io = IOVM_IOVA(W_IOVA + 4 * PG);

	(*calls)++;
	if (f->iova.addr != W_IOVA + 4 * PG || iovm_dma_pa(R.ctx, W + 4 * PG, &pa))
		return -EFAULT;
	return iovm_domain_map(dom, &io, pa, PG, IOVM_MAP_READ | IOVM_MAP_WRITE);
}

static int refuse(void *arg, struct iovm_domain *dom, const struct iovm_fault *f)
{
	(void)dom;
	(void)f;
	(*(int *)arg)++;
	return -EFAULT;
}

/*
 * IOVM_DESC_BLOCK_ON_FAULT: "on a fault, wait for the fault handler";
 * handler "return 0 when the fault is resolved (the access is retried), a
 * negative errno when it is not".
 */
TEST(block_on_fault)
{
	int calls = 0;
	struct iovm_completion c;
	struct iovm_queue_stats a, b;

	drain_faults(R.dom);
	fill_rand(W + 3 * PG, 2 * PG, 91);
	memset(D, CANARY, 4 * PG);
	CHECK_OK(iovm_domain_set_fault_handler(R.dom, refuse, &calls));
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_BLOCK_ON_FAULT,
					       .src = W_IOVA + 4 * PG - 40, .dst = D_IOVA, .len = 100 });
	expect_fault(c, 40, W_IOVA + 4 * PG, IOVM_MAP_READ, IOVM_FAULT_NOT_PRESENT, "handler refused");
	EXPECT(calls >= 1);
	EXPECT(all_bytes(D + 40, 4 * PG - 40, CANARY));
	drain_faults(R.dom);
	calls = 0;
	CHECK_OK(iovm_queue_stats(R.q, &a));
	CHECK_OK(iovm_domain_set_fault_handler(R.dom, map_p4, &calls));
	c = attack_run(&R, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_BLOCK_ON_FAULT,
					       .src = W_IOVA + 4 * PG - 40, .dst = D_IOVA, .len = 100 });
	EXPECT_EQ(c.status, IOVM_STATUS_SUCCESS);
	EXPECT_EQ(c.bytes_completed, 100);
	EXPECT_EQ(calls, 1);
	EXPECT(!memcmp(D, W + 4 * PG - 40, 100));
	CHECK_OK(iovm_queue_stats(R.q, &b));
	EXPECT_EQ(b.fault_retries, a.fault_retries + 1);
	CHECK_OK(iovm_domain_set_fault_handler(R.dom, NULL, NULL));
	CHECK_OK(iovm_domain_unmap(R.dom, IOVM_IOVA(W_IOVA + 4 * PG), PG));
	drain_faults(R.dom);
	check_domain_clean(R.dom);
}

/*
 * "depth; a power of two, 2 to 65536; 0 means 256"; submit "-EAGAIN when
 * the ring is full"; cqe "phase: flips each time the ring wraps".
 */
TEST(queue_depth)
{
	struct iovm_queue *q;
	struct iovm_queue_attr qa = { .flags = IOVM_QUEUE_POLLED };
	static const unsigned bad[] = { 1, 3, 6, 65537, 131072 };
	struct iovm_cqe cq[8];

	for (unsigned i = 0; i < 5; i++) {
		qa.depth = bad[i];
		CHECK_RET(iovm_queue_create(R.dev, &qa, &q), -EINVAL);
	}
	qa.depth = 4;
	CHECK_OK(iovm_queue_create(R.dev, &qa, &q));
	unsigned accepted = 0;
	int r = 0;

	for (unsigned i = 0; i < 10; i++) {
		r = iovm_queue_submit(q, &(struct iovm_desc){ .op = IOVM_OP_NOOP, .tag = 100 + i });
		if (r)
			break;
		accepted++;
	}
	EXPECT_EQ(r, -EAGAIN);
	EXPECT_MSG(accepted == 4 || accepted == 3, "depth 4 accepted %u", accepted);
	/* Process all, reap in submission order. */
	EXPECT_EQ(iovm_queue_process(q, 100), (int)accepted);
	int n = iovm_queue_reap(q, cq, 8);
	EXPECT_EQ(n, (int)accepted);
	for (int i = 0; i < n; i++) {
		EXPECT_EQ(cq[i].tag, 100 + i);
		EXPECT_EQ(cq[i].status, IOVM_STATUS_SUCCESS);
	}
	EXPECT_EQ(iovm_queue_reap(q, cq, 8), 0);
	/* Wrap many times: phases flip per wrap, tags in order. */
	{
		uint8_t first = cq[0].phase;
		uint64_t tag = 1000;
		unsigned done = accepted;

		for (unsigned round = 0; round < 12; round++) {
			CHECK_OK(iovm_queue_submit(q, &(struct iovm_desc){ .op = IOVM_OP_NOOP, .tag = tag }));
			CHECK_EQ(iovm_queue_process(q, 4), 1);
			CHECK_EQ(iovm_queue_reap(q, cq, 1), 1);
			EXPECT_EQ(cq[0].tag, tag);
			EXPECT_MSG(cq[0].phase == (uint8_t)(first ^ ((done / 4) & 1)),
				   "cqe %u: phase %u, first pass %u", done, cq[0].phase, first);
			tag++;
			done++;
		}
	}
	/* Submissions beyond the unreaped completion ring: none lost. */
	{
		unsigned sub = 0, got = 0;

		for (unsigned i = 0; i < 20; i++) {
			if (iovm_queue_submit(q, &(struct iovm_desc){ .op = IOVM_OP_NOOP, .tag = 5000 + sub }) == 0)
				sub++;
			if (iovm_queue_process(q, 1) < 0)
				break;
		}
		for (unsigned spins = 0; got < sub && spins < 1000; spins++) {
			iovm_queue_process(q, 8);
			n = iovm_queue_reap(q, cq, 8);
			CHECK(n >= 0);
			for (int i = 0; i < n; i++, got++)
				EXPECT_EQ(cq[i].tag, 5000 + got);
		}
		EXPECT_EQ(got, sub);
	}
	CHECK_OK(iovm_queue_destroy(q));
	qa.depth = 2;
	CHECK_OK(iovm_queue_create(R.dev, &qa, &q));
	CHECK_OK(iovm_queue_destroy(q));
	qa.depth = 0;
	CHECK_OK(iovm_queue_create(R.dev, &qa, &q));
	{
		unsigned acc = 0;

		while (acc < 300 && iovm_queue_submit(q, &(struct iovm_desc){ .op = IOVM_OP_NOOP }) == 0)
			acc++;
		EXPECT_MSG(acc == 256 || acc == 255, "depth 0 (=256) accepted %u", acc);
	}
	CHECK_OK(iovm_queue_destroy(q));
}

/*
 * iovm_device_attach(): "a device may reach several domains by PASID";
 * "-EBUSY when @pasid is attached already"; detach: "From then on a
 * request with @pasid faults with IOVM_FAULT_NO_DOMAIN ... and the fault
 * goes to the device's own fault log, not to the domain that was
 * attached". "Every address in a descriptor is an IOVA of the domain its
 * PASID names."
 */
TEST(pasids)
{
	struct iovm_domain *B;
	struct iovm_domain_attr at = { .type = IOVM_DOMAIN_MANAGED };
	const uint32_t P = 5;
	uint8_t *bs, *bd;
	struct iovm_cqe q;
	struct iovm_fault f;
	struct iovm_device_info inf0, inf1;

	CHECK_OK(iovm_domain_create(R.ctx, &at, &B));
	CHECK_RET(iovm_device_attach(R.dev, B, IOVM_PASID_MAX + 1), -EINVAL);
	CHECK_RET(iovm_device_detach(R.dev, P), -ENOENT);
	CHECK_OK(iovm_device_attach(R.dev, B, P));
	CHECK_RET(iovm_device_attach(R.dev, B, P), -EBUSY);
	CHECK_RET(iovm_device_attach(R.dev, R.dom, P), -EBUSY);
	CHECK_RET(iovm_device_attach(R.dev, B, IOVM_PASID_NONE), -EBUSY);
	/* B maps the same IOVAs to other memory: S_IOVA -> bs, D_IOVA -> bd. */
	bs = region(B, S_IOVA, 1, NULL);
	bd = region(B, D_IOVA, 1, (const uint32_t[]){ IOVM_MAP_READ | IOVM_MAP_WRITE });
	(void)bd;
	fill_rand(bs, PG, 61);
	fill_rand(S, PG, 62);
	memset(D, CANARY, 4 * PG);
	memset(bd, CANARY, PG);
	q = run_raw(R.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .pasid = P, .src = S_IOVA, .dst = D_IOVA,
					     .len = 100, .tag = 1 });
	EXPECT_EQ(q.status, IOVM_STATUS_SUCCESS);
	EXPECT(!memcmp(bd, bs, 100));
	EXPECT(all_bytes(D, 4 * PG, CANARY));
	/* Fault in B (W_IOVA is not mapped there): goes to B's queue, pasid P. */
	drain_faults(R.dom);
	drain_faults(B);
	q = run_raw(R.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .pasid = P, .src = W_IOVA, .dst = D_IOVA,
					     .len = 10, .tag = 2 });
	EXPECT_EQ(q.status, IOVM_STATUS_PAGE_FAULT);
	EXPECT_EQ(q.bytes_completed, 0);
	expect_dom_fault(B, W_IOVA, IOVM_MAP_READ, IOVM_FAULT_NOT_PRESENT, P, "fault at PASID 5");
	EXPECT_MSG(iovm_domain_fault_pop(R.dom, &f) == -EAGAIN, "PASID 5 fault leaked to PASID 0's domain");
	/* Same on PASID 0: goes to R.dom. */
	q = run_raw(R.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = W_IOVA + 4 * PG, .dst = D_IOVA, .len = 10 });
	EXPECT_EQ(q.status, IOVM_STATUS_PAGE_FAULT);
	expect_dom_fault(R.dom, W_IOVA + 4 * PG, IOVM_MAP_READ, IOVM_FAULT_NOT_PRESENT, 0, "fault at PASID 0");
	EXPECT_EQ(iovm_domain_fault_pop(B, &f), -EAGAIN);
	/* Domain busy while attached. */
	CHECK_RET(iovm_domain_destroy(B), -EBUSY);
	/* Detach while idle: NO_DOMAIN, to the device's log. */
	CHECK_OK(iovm_device_query(R.dev, &inf0));
	CHECK_OK(iovm_device_detach(R.dev, P));
	CHECK_RET(iovm_device_detach(R.dev, P), -ENOENT);
	memset(bd, CANARY, PG);
	q = run_raw(R.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .pasid = P, .src = S_IOVA, .dst = D_IOVA,
					     .len = 100, .tag = 3 });
	EXPECT_EQ(q.status, IOVM_STATUS_PAGE_FAULT);
	EXPECT_EQ(q.bytes_completed, 0);
	EXPECT(all_bytes(bd, PG, CANARY));
	EXPECT(all_bytes(D, 4 * PG, CANARY));
	EXPECT_EQ(iovm_domain_fault_pop(B, &f), -EAGAIN);
	EXPECT_EQ(iovm_domain_fault_pop(R.dom, &f), -EAGAIN);
	{
		int r = iovm_device_fault_pop(R.dev, &f);

		EXPECT_MSG(r == 0, "no fault in the device log after a request at a detached PASID (%d)", r);
		if (r == 0) {
			EXPECT_EQ(f.reason, IOVM_FAULT_NO_DOMAIN);
			EXPECT_EQ(f.pasid, P);
			EXPECT_EQ(f.device, iovm_device_id(R.dev));
		}
		EXPECT_EQ(iovm_device_fault_pop(R.dev, &f), -EAGAIN);
	}
	CHECK_OK(iovm_device_query(R.dev, &inf1));
	EXPECT_EQ(inf1.unattached_faults, inf0.unattached_faults + 1);
	/* With a completion record: the record's address is PASID P's too: only the cqe tells. */
	/* Unattached PASID never attached: same. */
	q = run_raw(R.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .pasid = 77, .src = S_IOVA, .dst = D_IOVA,
					     .len = 8 });
	EXPECT_EQ(q.status, IOVM_STATUS_PAGE_FAULT);
	{
		int r = iovm_device_fault_pop(R.dev, &f);

		EXPECT_EQ(r, 0);
		if (r == 0) {
			EXPECT_EQ(f.pasid, 77);
			EXPECT_EQ(f.reason, IOVM_FAULT_NO_DOMAIN);
		}
	}
	/* Re-attach: works again, at P and at another PASID at once. */
	CHECK_OK(iovm_device_attach(R.dev, B, P));
	CHECK_OK(iovm_device_attach(R.dev, B, IOVM_PASID_MAX));
	q = run_raw(R.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .pasid = IOVM_PASID_MAX, .src = S_IOVA,
					     .dst = D_IOVA, .len = 100, .tag = 4 });
	EXPECT_EQ(q.status, IOVM_STATUS_SUCCESS);
	EXPECT(!memcmp(bd, bs, 100));
	EXPECT(all_bytes(D, 4 * PG, CANARY));
	/* A completion record in B, for a PASID-P descriptor. */
	{
		struct iovm_completion *cr = iovm_dma_zalloc(R.ctx, PG, PG, 0);
		iovm_iova_t ci;

		CHECK(cr != NULL);
		CHECK_OK(iovm_domain_map_ptr(B, cr, PG, IOVM_MAP_READ | IOVM_MAP_WRITE, &ci));
		q = run_raw(R.q, (struct iovm_desc){ .op = IOVM_OP_CRC32C, .flags = IOVM_DESC_COMPLETION,
						     .pasid = P, .src = S_IOVA, .len = 100,
						     .completion = ci.addr, .crc_seed = 3 });
		EXPECT_EQ(q.status, IOVM_STATUS_SUCCESS);
		EXPECT_EQ(cr->status, IOVM_STATUS_SUCCESS);
		if (crc_conv >= 0)
			EXPECT_EQ(cr->crc, crc_ref(3, bs, 100));
		CHECK_OK(iovm_domain_unmap(B, ci, PG));
		CHECK_OK(iovm_dma_free(R.ctx, cr));
	}
	check_domain_clean(B);
	CHECK_OK(iovm_device_detach(R.dev, P));
	CHECK_OK(iovm_device_detach(R.dev, IOVM_PASID_MAX));
	CHECK_OK(iovm_domain_unmap(B, IOVM_IOVA(S_IOVA), PG));
	CHECK_OK(iovm_domain_unmap(B, IOVM_IOVA(D_IOVA), PG));
	CHECK_OK(iovm_domain_destroy(B));
	CHECK_OK(iovm_dma_free(R.ctx, bs));
	CHECK_OK(iovm_dma_free(R.ctx, bd));
}

int main(void)
{
	struct iovm_domain_attr at = { .type = IOVM_DOMAIN_MANAGED };
	static const uint32_t wperm[5] = { IOVM_MAP_READ | IOVM_MAP_WRITE, IOVM_MAP_READ | IOVM_MAP_WRITE,
					   IOVM_MAP_READ, IOVM_MAP_READ | IOVM_MAP_WRITE, 0 };

	test_init();
	rig_open(&R, "oracle=on,log_level=error", &at, IOVM_QUEUE_POLLED);
	(void)known;
	W = region(R.dom, W_IOVA, 5, wperm);
	D = region(R.dom, D_IOVA, 4, NULL);
	S = region(R.dom, S_IOVA, 4, NULL);
	RUN(crc_convention);
	RUN(op_lengths);
	RUN(copy_overlap);
	RUN(fault_edges);
	RUN(gather_scatter);
	RUN(batch);
	RUN(block_on_fault);
	RUN(queue_depth);
	RUN(pasids);
	drain_faults(R.dom);
	rig_close(&R);
	return attack_status();
}
