/* SPDX-License-Identifier: MIT */
/*
 * test_attack_dev_ops.c - attacks the software engine's operation
 * promises (dev.h): every operation byte-exact against a shadow of a
 * fenced arena (canaries included), COPY's memmove rule and its result
 * bit, CRC chaining, the completion record and ring entry agreeing,
 * faults that do the bytes before and none after, and descriptors that
 * break the rules completing INVALID without touching a byte; in
 * managed, VA and identity domains, with the oracle on.
 */
#include "attack.h"

#define ARENA (64u * 4096)
#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)

static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return ~crc;
}

struct world {
	struct rig r;
	uint8_t *arena;       /* ARENA bytes of DMA memory */
	uint8_t *shadow;      /* what the arena must hold */
	uint64_t arena_iova;  /* the arena's IOVA */
	uint8_t *lists;       /* 64 KiB for sg and batch lists, mapped */
	uint64_t lists_iova;
	const char *name;
};

static void world_open(struct world *w, const char *name, enum iovm_domain_type type, uint32_t dflags)
{
	struct iovm_domain_attr a = { .type = type, .flags = dflags };
	iovm_iova_t io;

	memset(w, 0, sizeof(*w));
	w->name = name;
	rig_open(&w->r, "oracle=on,log_level=error", &a, IOVM_QUEUE_POLLED);
	w->arena = iovm_dma_alloc(w->r.ctx, ARENA, 4096, 0);
	w->lists = iovm_dma_alloc(w->r.ctx, 65536, 4096, 0);
	w->shadow = malloc(ARENA);
	CHECK(w->arena && w->lists && w->shadow);
	if (iovm_dma_iova(w->r.dom, w->arena, &io))
		CHECK_OK(iovm_domain_map_ptr(w->r.dom, w->arena, ARENA, RW, &io));
	w->arena_iova = io.addr;
	if (iovm_dma_iova(w->r.dom, w->lists, &io))
		CHECK_OK(iovm_domain_map_ptr(w->r.dom, w->lists, 65536, RW, &io));
	w->lists_iova = io.addr;
	uint64_t seed = 77;
	for (unsigned i = 0; i < ARENA; i++)
		w->arena[i] = (uint8_t)test_rand(&seed);
	memcpy(w->shadow, w->arena, ARENA);
}

static void world_close(struct world *w)
{
	check_domain_clean(w->r.dom);
	check_mem_clean(w->r.ctx);
	free(w->shadow);
	CHECK_OK(iovm_dma_free(w->r.ctx, w->arena));
	CHECK_OK(iovm_dma_free(w->r.ctx, w->lists));
	rig_close(&w->r);
}

static void compare_arena(struct world *w, const char *what, unsigned step)
{
	if (memcmp(w->arena, w->shadow, ARENA)) {
		size_t i = 0;
		while (w->arena[i] == w->shadow[i])
			i++;
		test_fail("%s: step %u (%s): arena byte %zu is %#x, shadow %#x", w->name, step, what, i,
			  w->arena[i], w->shadow[i]);
	}
}

/* The cqe a run_desc() reaps agrees with the record; run_desc checks status and tag. */

static void fill_shadow(uint8_t *d, uint64_t pattern, size_t len)
{
	for (size_t i = 0; i < len; i++)
		d[i] = (uint8_t)(pattern >> (8 * (i % 8)));
}

static void random_ops(struct world *w, unsigned steps, uint64_t seed)
{
	for (unsigned s = 0; s < steps; s++) {
		struct iovm_desc d = { .tag = s + 1 };
		struct iovm_completion c;
		uint32_t len = 1 + test_rand(&seed) % 20000;
		uint64_t so = test_rand(&seed) % (ARENA - len), dof = test_rand(&seed) % (ARENA - len);
		unsigned op = 1 + test_rand(&seed) % 9;
		const char *what = "";

		/* Ranges of one descriptor should not overlap, except COPY's. */
		if (op != IOVM_OP_COPY && so < dof + len && dof < so + len)
			continue;
		d.op = (uint8_t)op;
		d.src = w->arena_iova + so;
		d.dst = w->arena_iova + dof;
		d.len = len;
		d.pattern = test_rand(&seed);
		d.crc_seed = (uint32_t)test_rand(&seed);
		switch (op) {
		case IOVM_OP_COPY:
			what = "copy";
			if (test_rand(&seed) % 2 == 0) { /* force an overlap, either way */
				int64_t delta = (int64_t)(test_rand(&seed) % (2 * len - 1)) - (int64_t)(len - 1);
				int64_t o = (int64_t)so + delta;
				if (o >= 0 && o <= (int64_t)(ARENA - len))
					dof = (uint64_t)o;
			}
			d.dst = w->arena_iova + dof;
			c = run_desc(&w->r, d);
			CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
			CHECK_EQ(c.bytes_completed, len);
			if (dof > so && dof < so + len)
				EXPECT_MSG(c.result == 1, "%s: overlapping copy upwards: result %u", w->name, c.result);
			else
				EXPECT_MSG(c.result == 0, "%s: copy that need not run from the end: result %u",
					   w->name, c.result);
			memmove(w->shadow + dof, w->shadow + so, len);
			break;
		case IOVM_OP_FILL:
			what = "fill";
			c = run_desc(&w->r, d);
			CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
			fill_shadow(w->shadow + dof, d.pattern, len);
			break;
		case IOVM_OP_COMPARE: {
			what = "compare";
			int eq = test_rand(&seed) % 2;
			if (eq) {
				memcpy(w->arena + dof, w->arena + so, len);
				memcpy(w->shadow + dof, w->shadow + so, len);
			}
			c = run_desc(&w->r, d);
			CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
			size_t first = 0;
			while (first < len && w->shadow[so + first] == w->shadow[dof + first])
				first++;
			EXPECT_EQ(c.result, first < len);
			if (first < len)
				EXPECT_EQ(c.mismatch, first);
			break;
		}
		case IOVM_OP_COMPARE_PATTERN: {
			what = "compare pattern";
			if (test_rand(&seed) % 2) {
				fill_shadow(w->arena + so, d.pattern, len);
				fill_shadow(w->shadow + so, d.pattern, len);
			}
			c = run_desc(&w->r, d);
			CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
			size_t first = 0;
			while (first < len && w->shadow[so + first] == (uint8_t)(d.pattern >> (8 * (first % 8))))
				first++;
			EXPECT_EQ(c.result, first < len);
			break;
		}
		case IOVM_OP_CRC32C: {
			what = "crc";
			/* Chaining: the CRC of a||b from a's CRC as the seed of b. */
			uint32_t cut = len / 2;
			struct iovm_desc a = d, b = d;
			a.len = cut ? cut : len;
			c = run_desc(&w->r, a);
			CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
			uint32_t ca = c.crc;
			c = run_desc(&w->r, d);
			CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
			uint32_t whole = c.crc;
			if (cut) {
				b.src = d.src + cut;
				b.len = len - cut;
				b.crc_seed = ca;
				c = run_desc(&w->r, b);
				CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
				EXPECT_MSG(c.crc == whole, "%s: CRC does not chain: %#x then %#x, whole %#x",
					   w->name, ca, c.crc, whole);
			}
			/* The standard CRC-32C (Castagnoli) with the seed as its starting value. */
			if (whole != crc32c_sw(d.crc_seed, w->shadow + so, len) &&
			    whole != (~crc32c_sw(~d.crc_seed, w->shadow + so, len)) && s < 50)
				printf("# %s: CRC %#x is neither crc32c(seed) nor its inverted form\n", w->name,
				       whole);
			break;
		}
		case IOVM_OP_COPY_CRC: {
			what = "copy crc";
			c = run_desc(&w->r, d);
			CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
			uint32_t cc = c.crc;
			memmove(w->shadow + dof, w->shadow + so, len);
			struct iovm_desc k = d;
			k.op = IOVM_OP_CRC32C;
			c = run_desc(&w->r, k);
			EXPECT_MSG(c.crc == cc, "%s: COPY_CRC %#x, CRC32C of the same bytes %#x", w->name, cc, c.crc);
			break;
		}
		case IOVM_OP_DUALCAST: {
			what = "dualcast";
			uint64_t d2 = test_rand(&seed) % (ARENA - len);
			if ((d2 < so + len && so < d2 + len) || (d2 < dof + len && dof < d2 + len))
				continue;
			d.dst2 = w->arena_iova + d2;
			c = run_desc(&w->r, d);
			if (c.status == IOVM_STATUS_INVALID)
				continue; /* DSA asks dst and dst2 to share bits 11:0; the header does not say */
			CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
			memcpy(w->shadow + dof, w->shadow + so, len);
			memcpy(w->shadow + d2, w->shadow + so, len);
			break;
		}
		case IOVM_OP_GATHER:
		case IOVM_OP_SCATTER: {
			what = op == IOVM_OP_GATHER ? "gather" : "scatter";
			/* n pieces of the linear side, spread over the arena's upper half. */
			unsigned n = 1 + test_rand(&seed) % 16;
			struct iovm_sge *sg = (struct iovm_sge *)w->lists;
			uint32_t left = len = 16 * (1 + test_rand(&seed) % 64);
			uint64_t lin = test_rand(&seed) % (ARENA / 2 - len);
			uint64_t cur = ARENA / 2;
			for (unsigned i = 0; i < n; i++) {
				uint32_t l = i + 1 == n ? left : (left / (n - i));
				cur += test_rand(&seed) % 512;
				sg[i].iova = w->arena_iova + cur;
				sg[i].len = l;
				sg[i].key = 0;
				cur += l;
				left -= l;
			}
			if (cur > ARENA)
				continue;
			d.sg_count = (uint16_t)n;
			d.len = len;
			if (op == IOVM_OP_GATHER) {
				d.src = w->lists_iova;
				d.dst = w->arena_iova + lin;
			} else {
				d.src = w->arena_iova + lin;
				d.dst = w->lists_iova;
			}
			c = run_desc(&w->r, d);
			CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
			CHECK_EQ(c.bytes_completed, len);
			uint64_t off = 0;
			for (unsigned i = 0; i < n; i++) {
				uint64_t e = sg[i].iova - w->arena_iova;
				if (op == IOVM_OP_GATHER)
					memcpy(w->shadow + lin + off, w->shadow + e, sg[i].len);
				else
					memcpy(w->shadow + e, w->shadow + lin + off, sg[i].len);
				off += sg[i].len;
			}
			break;
		}
		}
		compare_arena(w, what, s);
	}
}

TEST(every_operation_is_byte_exact_in_every_domain_kind)
{
	static const struct {
		const char *name;
		enum iovm_domain_type type;
		uint32_t flags;
	} kinds[] = {
		{ "managed, follows the heap", IOVM_DOMAIN_MANAGED, IOVM_DOMAIN_FOLLOW_HEAP },
		{ "managed, mapped by hand", IOVM_DOMAIN_MANAGED, 0 },
		{ "managed, deferred", IOVM_DOMAIN_MANAGED, IOVM_DOMAIN_DEFERRED },
		{ "VA", IOVM_DOMAIN_VA, 0 },
		{ "VA, follows the heap", IOVM_DOMAIN_VA, IOVM_DOMAIN_FOLLOW_HEAP },
		{ "identity", IOVM_DOMAIN_IDENTITY, 0 },
	};
	for (unsigned k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		struct world w;
		world_open(&w, kinds[k].name, kinds[k].type, kinds[k].flags);
		random_ops(&w, 600, 1 + k);
		world_close(&w);
	}
}

TEST(translations_agree_with_what_the_engine_reads)
{
	/* xlate, pa, ptr, domain_translate and dma_iova all lead to the bytes the engine copies. */
	static const struct {
		enum iovm_domain_type type;
		uint32_t flags;
	} kinds[] = {
		{ IOVM_DOMAIN_MANAGED, IOVM_DOMAIN_FOLLOW_HEAP },
		{ IOVM_DOMAIN_MANAGED, 0 },
		{ IOVM_DOMAIN_VA, 0 },
		{ IOVM_DOMAIN_IDENTITY, 0 },
	};
	for (unsigned k = 0; k < 4; k++) {
		struct world w;
		world_open(&w, "xcheck", kinds[k].type, kinds[k].flags);
		for (unsigned pg = 0; pg < ARENA / 4096; pg++) {
			uint8_t *p = w.arena + pg * 4096 + (pg * 37) % 4096;
			uint64_t iova = w.arena_iova + (uint64_t)(p - w.arena);
			struct iovm_dma_xlate x;
			iovm_pa_t pa, tpa;
			uint32_t perm;

			CHECK_OK(iovm_dma_xlate(w.r.ctx, p, &x));
			CHECK_OK(iovm_dma_pa(w.r.ctx, p, &pa));
			CHECK_EQ(x.pa.addr, pa.addr);
			CHECK(iovm_dma_ptr(w.r.ctx, pa) == p);
			CHECK_OK(iovm_domain_translate(w.r.dom, IOVM_IOVA(iova), &tpa, &perm));
			EXPECT_MSG(tpa.addr == pa.addr, "kind %u page %u: translate %#llx, dma_pa %#llx", k, pg,
				   (unsigned long long)tpa.addr, (unsigned long long)pa.addr);
			CHECK(perm & IOVM_MAP_READ);
			if (kinds[k].type == IOVM_DOMAIN_VA)
				CHECK_EQ(iova, (uintptr_t)p);
			if (kinds[k].type == IOVM_DOMAIN_IDENTITY)
				CHECK_EQ(iova, pa.addr);
			/* What the engine reads at that IOVA is what the CPU sees at p. */
			uint64_t *out = (uint64_t *)(w.lists + 60000);
			uint64_t outio = w.lists_iova + 60000;
			*out = 0;
			struct iovm_desc d = { .op = IOVM_OP_COPY, .src = iova, .dst = outio, .len = 8 };
			if ((uintptr_t)(p - w.arena) + 8 > ARENA)
				continue;
			struct iovm_completion c = run_desc(&w.r, d);
			CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
			EXPECT_MSG(memcmp(out, p, 8) == 0, "kind %u page %u: the engine read other bytes", k, pg);
		}
		world_close(&w);
	}
}

TEST(a_fault_does_the_bytes_before_and_none_after)
{
	/* Hand-mapped arena: pages 0-15 RW, 16 unmapped, 17 read-only. */
	struct world w;
	struct iovm_domain_attr a = { .type = IOVM_DOMAIN_MANAGED };
	iovm_iova_t io;

	memset(&w, 0, sizeof(w));
	w.name = "faults";
	rig_open(&w.r, "oracle=on,log_level=error", &a, IOVM_QUEUE_POLLED);
	w.arena = iovm_dma_alloc(w.r.ctx, ARENA, 4096, 0);
	w.lists = iovm_dma_alloc(w.r.ctx, 65536, 4096, 0);
	w.shadow = malloc(ARENA);
	CHECK(w.arena && w.lists && w.shadow);
	/* One IOVA range for the arena: reserve it by mapping all, then cut page 16, make 17 RO. */
	CHECK_OK(iovm_domain_map_ptr(w.r.dom, w.arena, ARENA, RW, &io));
	w.arena_iova = io.addr;
	CHECK_OK(iovm_domain_map_ptr(w.r.dom, w.lists, 65536, RW, &io));
	w.lists_iova = io.addr;
	CHECK_OK(iovm_domain_unmap(w.r.dom, IOVM_IOVA(w.arena_iova + 16 * 4096), 2 * 4096));
	iovm_pa_t pa17;
	CHECK_OK(iovm_dma_pa(w.r.ctx, w.arena + 17 * 4096, &pa17));
	io = IOVM_IOVA(w.arena_iova + 17 * 4096);
	CHECK_OK(iovm_domain_map(w.r.dom, &io, pa17, 4096, IOVM_MAP_READ));
	uint64_t seed = 5;
	for (unsigned i = 0; i < ARENA; i++)
		w.arena[i] = (uint8_t)test_rand(&seed);
	memcpy(w.shadow, w.arena, ARENA);

	for (unsigned t = 0; t < 200; t++) {
		uint32_t len = 1 + test_rand(&seed) % 12000;
		uint32_t before = test_rand(&seed) % (len + 1); /* bytes before the bad page */
		struct iovm_desc d = { .op = IOVM_OP_COPY, .len = len, .tag = t };
		uint64_t bad = 16 * 4096, src, dst;
		unsigned kind = t % 4;
		struct iovm_completion c;

		if (kind == 0) { /* read fault: src runs into page 16 */
			src = bad - before;
			dst = 20 * 4096 + test_rand(&seed) % 4096;
		} else if (kind == 1) { /* write fault: dst runs into page 16 */
			src = 20 * 4096 + test_rand(&seed) % 4096;
			dst = bad - before;
		} else if (kind == 2) { /* permission: dst runs into read-only page 17 */
			src = 20 * 4096 + test_rand(&seed) % 4096;
			bad = 17 * 4096;
			dst = bad - 4096 + 4096 - before; /* starts in unmapped 16 if before > 4096 */
			if (before > 4096)
				continue;
			/* make it start in page 16? no: start in page 17's predecessor region is unmapped */
			continue;
		} else { /* fill into page 16 */
			d.op = IOVM_OP_FILL;
			d.pattern = test_rand(&seed);
			src = 0;
			dst = bad - before;
		}
		if (dst + len > ARENA || src + len > ARENA)
			continue;
		d.src = w.arena_iova + src;
		d.dst = w.arena_iova + dst;
		c = run_desc(&w.r, d);
		if (before == len) {
			/* The range ends right before the bad page: no fault. */
			CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
			if (d.op == IOVM_OP_FILL)
				fill_shadow(w.shadow + dst, d.pattern, len);
			else
				memmove(w.shadow + dst, w.shadow + src, len);
		} else {
			CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
			EXPECT_MSG(c.bytes_completed == before, "kind %u len %u: bytes_completed %u, expected %u",
				   kind, len, c.bytes_completed, before);
			EXPECT_EQ(c.fault_addr, w.arena_iova + bad);
			EXPECT_EQ(c.fault_reason, IOVM_FAULT_NOT_PRESENT);
			EXPECT_EQ(c.fault_access, kind == 0 ? IOVM_MAP_READ : IOVM_MAP_WRITE);
			if (d.op == IOVM_OP_FILL)
				fill_shadow(w.shadow + dst, d.pattern, c.bytes_completed);
			else
				memmove(w.shadow + dst, w.shadow + src, c.bytes_completed);
			struct iovm_fault f;
			while (iovm_domain_fault_pop(w.r.dom, &f) == 0)
				;
		}
		compare_arena(&w, "fault", t);
	}
	/* Permission: a write into read-only page 17 from the start of it. */
	struct iovm_desc d = { .op = IOVM_OP_FILL, .dst = w.arena_iova + 17 * 4096 + 100, .len = 50,
			       .pattern = 0x1122334455667788ull };
	struct iovm_completion c = run_desc(&w.r, d);
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	EXPECT_EQ(c.bytes_completed, 0);
	EXPECT_EQ(c.fault_reason, IOVM_FAULT_PERMISSION);
	EXPECT_EQ(c.fault_access, IOVM_MAP_WRITE);
	EXPECT_EQ(c.fault_addr, w.arena_iova + 17 * 4096 + 100);
	compare_arena(&w, "permission", 0);
	/* A read of it is fine. */
	d = (struct iovm_desc){ .op = IOVM_OP_COPY, .src = w.arena_iova + 17 * 4096, .dst = w.arena_iova,
				.len = 4096 };
	c = run_desc(&w.r, d);
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	memcpy(w.shadow, w.shadow + 17 * 4096, 4096);
	compare_arena(&w, "read of read-only", 0);
	struct iovm_fault f;
	while (iovm_domain_fault_pop(w.r.dom, &f) == 0)
		;
	check_domain_clean(w.r.dom);
	free(w.shadow);
	CHECK_OK(iovm_dma_free(w.r.ctx, w.arena));
	CHECK_OK(iovm_dma_free(w.r.ctx, w.lists));
	rig_close(&w.r);
}

/*
 * Run @d with an aligned completion record; the record's status must agree
 * with the ring entry's (soft: a missing record is reported, not fatal).
 */
static struct iovm_completion run_rec(struct world *w, struct iovm_desc d)
{
	struct iovm_cqe cqe;
	int n = 0;

	memset(w->r.comp, 0, sizeof(*w->r.comp));
	d.flags |= IOVM_DESC_COMPLETION;
	d.completion = w->r.comp_iova.addr;
	CHECK_OK(iovm_queue_submit(w->r.q, &d));
	for (unsigned spins = 0; n == 0; spins++) {
		CHECK(iovm_queue_process(w->r.q, 1) >= 0);
		n = iovm_queue_reap(w->r.q, &cqe, 1);
		CHECK(n >= 0 && spins < 1000000u);
	}
	CHECK_EQ(cqe.tag, d.tag);
	EXPECT_MSG(cqe.status == w->r.comp->status,
		   "op %u flags %#x: ring entry status %u, completion record status %u (not written?)",
		   d.op, d.flags, cqe.status, w->r.comp->status);
	struct iovm_completion c = *w->r.comp;
	c.status = cqe.status;
	return c;
}

/* Run @d with no record (or a misaligned one): the ring entry's status. */
static uint8_t ring_status(struct rig *r, struct iovm_desc d)
{
	return run_polled(r->q, d);
}

TEST(broken_descriptors_complete_invalid_and_touch_nothing)
{
	struct world w;
	world_open(&w, "invalid", IOVM_DOMAIN_MANAGED, IOVM_DOMAIN_FOLLOW_HEAP);
	struct iovm_desc base = { .op = IOVM_OP_COPY, .src = w.arena_iova, .dst = w.arena_iova + 65536,
				  .len = 4096 };
	struct iovm_desc d;
	struct iovm_completion c;

	static const uint8_t bad_ops[] = { 11, 12, 100, 255 };
	for (unsigned i = 0; i < sizeof(bad_ops); i++) {
		d = base;
		d.op = bad_ops[i];
		c = run_rec(&w, d);
		EXPECT_MSG(c.status == IOVM_STATUS_INVALID, "op %u: status %u", bad_ops[i], c.status);
	}
	for (unsigned bit = 3; bit < 8; bit++) {
		d = base;
		d.flags = (uint8_t)(1u << bit);
		c = run_rec(&w, d);
		EXPECT_MSG(c.status == IOVM_STATUS_INVALID, "flag bit %u: status %u", bit, c.status);
	}
	/*
	 * A PASID beyond the maximum: INVALID in the ring. Its record's IOVA
	 * is in no domain, so no record (the header does not say).
	 */
	d = base;
	d.pasid = IOVM_PASID_MAX + 1;
	EXPECT_EQ(ring_status(&w.r, d), IOVM_STATUS_INVALID);
	d.pasid = UINT32_MAX;
	EXPECT_EQ(ring_status(&w.r, d), IOVM_STATUS_INVALID);
	/* A completion record not 32-byte aligned: INVALID, no record written. */
	for (unsigned mis = 1; mis < 32; mis += 7) {
		memset(w.lists, 0xab, 128);
		d = base;
		d.flags = IOVM_DESC_COMPLETION;
		d.completion = w.lists_iova + mis;
		EXPECT_EQ(ring_status(&w.r, d), IOVM_STATUS_INVALID);
		EXPECT_MSG(all_bytes(w.lists, 128, 0xab), "a misaligned record (+%u) was written", mis);
	}
	/* Gather/scatter: 0 or 4097 entries, a misaligned list. */
	struct iovm_sge *sg = (struct iovm_sge *)w.lists;
	for (int i = 0; i < 8; i++)
		sg[i] = (struct iovm_sge){ .iova = w.arena_iova + 8192 * i, .len = 512 };
	static const struct {
		uint16_t count;
		unsigned mis;
	} sgbad[] = { { 0, 0 }, { 4097 & 0xffff, 0 }, { 8, 4 }, { 8, 1 } };
	for (unsigned i = 0; i < 4; i++)
		for (unsigned op = IOVM_OP_GATHER; op <= IOVM_OP_SCATTER; op++) {
			d = (struct iovm_desc){ .op = (uint8_t)op, .sg_count = sgbad[i].count, .len = 4096 };
			if (op == IOVM_OP_GATHER) {
				d.src = w.lists_iova + sgbad[i].mis;
				d.dst = w.arena_iova + 100000;
			} else {
				d.src = w.arena_iova + 100000;
				d.dst = w.lists_iova + sgbad[i].mis;
			}
			c = run_rec(&w, d);
			EXPECT_MSG(c.status == IOVM_STATUS_INVALID, "op %u count %u list +%u: status %u", op,
				   sgbad[i].count, sgbad[i].mis, c.status);
		}
	/* sg_count is 16 bits: 4097 does not fit; 4096 is the most and fine. */
	/* Batches: 0 and 1025 descriptors, a misaligned list, a batch inside. */
	struct iovm_desc *bl = (struct iovm_desc *)w.lists;
	CHECK_EQ(sizeof(struct iovm_desc), 64);
	for (int i = 0; i < 4; i++)
		bl[i] = (struct iovm_desc){ .op = IOVM_OP_NOOP };
	static const struct {
		uint32_t n;
		unsigned mis;
	} bbad[] = { { 0, 0 }, { 1025, 0 }, { 2, 32 }, { 2, 8 } };
	for (unsigned i = 0; i < 4; i++) {
		d = (struct iovm_desc){ .op = IOVM_OP_BATCH, .src = w.lists_iova + bbad[i].mis, .len = bbad[i].n };
		c = run_rec(&w, d);
		EXPECT_MSG(c.status == IOVM_STATUS_INVALID, "batch of %u at +%u: status %u", bbad[i].n,
			   bbad[i].mis, c.status);
	}
	bl[1] = (struct iovm_desc){ .op = IOVM_OP_BATCH, .src = w.lists_iova, .len = 1 };
	bl[2] = (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = w.arena_iova + 200000, .len = 64,
				    .pattern = 0x0101010101010101ull };
	d = (struct iovm_desc){ .op = IOVM_OP_BATCH, .src = w.lists_iova, .len = 3 };
	c = run_rec(&w, d);
	EXPECT_MSG(c.status == IOVM_STATUS_INVALID || c.status == IOVM_STATUS_BATCH_FAIL,
		   "a batch holding a batch: status %u", c.status);
	if (c.status == IOVM_STATUS_BATCH_FAIL)
		fill_shadow(w.shadow + 200000, 0x0101010101010101ull, 64);
	/* Keyed DUALCAST. */
	d = (struct iovm_desc){ .op = IOVM_OP_DUALCAST, .flags = IOVM_DESC_KEYED, .src = w.arena_iova,
				.dst = w.arena_iova + 65536, .dst2 = w.arena_iova + 131072, .len = 64 };
	c = run_rec(&w, d);
	EXPECT_EQ(c.status, IOVM_STATUS_INVALID);
	compare_arena(&w, "invalid descriptors", 0);
	struct iovm_queue_stats qs;
	CHECK_OK(iovm_queue_stats(w.r.q, &qs));
	CHECK(qs.errors > 0);
	world_close(&w);
}

TEST(gather_and_scatter_take_4096_entries)
{
	struct world w;
	world_open(&w, "4096 entries", IOVM_DOMAIN_MANAGED, IOVM_DOMAIN_FOLLOW_HEAP);
	struct iovm_sge *sg = (struct iovm_sge *)w.lists; /* 4096 * 16 = 64 KiB */
	for (unsigned i = 0; i < 4096; i++)
		sg[i] = (struct iovm_sge){ .iova = w.arena_iova + 65536 + (uint64_t)i * 32, .len = 8 };
	struct iovm_desc d = { .op = IOVM_OP_GATHER, .sg_count = 4096, .src = w.lists_iova,
			       .dst = w.arena_iova, .len = 4096 * 8 };
	struct iovm_completion c = run_desc(&w.r, d);
	EXPECT_MSG(c.status == IOVM_STATUS_SUCCESS, "gather of 4096 entries: %u", c.status);
	if (c.status == IOVM_STATUS_SUCCESS)
		for (unsigned i = 0; i < 4096; i++)
			memcpy(w.shadow + i * 8, w.shadow + 65536 + i * 32, 8);
	compare_arena(&w, "gather 4096", 0);
	world_close(&w);
}

int main(void)
{
	test_init();
	RUN(every_operation_is_byte_exact_in_every_domain_kind);
	RUN(translations_agree_with_what_the_engine_reads);
	RUN(a_fault_does_the_bytes_before_and_none_after);
	RUN(broken_descriptors_complete_invalid_and_touch_nothing);
	RUN(gather_and_scatter_take_4096_entries);
	return attack_status();
}
