/* SPDX-License-Identifier: MIT */
/*
 * test_attack9_mr_model.c - an MR mapped on a device queue
 * (iovm_rqueue_map_mr()) against a plain model: random copies (MR to heap,
 * heap to MR, MR to MR, overlapping too), fills, compares, CRCs, scatters
 * and gathers, with odd offsets and lengths that cross 64 KiB pieces and
 * the MR's unaligned ends, every byte checked after each, the bytes
 * around the MR included; on demand with a large and a 64 KiB pin
 * budget, and pinned. The first sweep asks once per 64 KiB piece, cut at
 * the MR's ends.
 */
#include "attack/attack9_mr.h"

#define NPG 80             /* the client's pages; the MR is inside, unaligned */
static size_t OFF0 = 3 * 4096 + 123; /* where the MR starts in the client's pages */
#define OFF1 (4096 + 77)
#define HLEN (512 * 1024)

struct model {
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app, *shadow, *hshadow;
	size_t mrlen;
	iovm_iova_t io;
	uint64_t seed;
	unsigned ops;
};

static void model_open(struct model *m, const char *tag, const char *opts, uint32_t access, uint64_t seed)
{
	memset(m, 0, sizeof(*m));
	a9_open(&m->r, tag, opts, HLEN);
	m->app = a9_pages_64k(NPG);
	m->shadow = malloc(NPG * A9_PAGE);
	m->hshadow = malloc(HLEN);
	CHECK(m->shadow && m->hshadow);
	m->seed = seed;
	for (size_t i = 0; i < NPG * A9_PAGE; i++)
		m->app[i] = (uint8_t)a9_rng(&m->seed);
	for (size_t i = 0; i < HLEN; i++)
		m->r.heap[i] = (uint8_t)a9_rng(&m->seed);
	memcpy(m->shadow, m->app, NPG * A9_PAGE);
	memcpy(m->hshadow, m->r.heap, HLEN);
	m->mrlen = NPG * A9_PAGE - OFF0 - OFF1;
	CHECK_OK(iovm_mr_reg(m->r.dom, m->app + OFF0, m->mrlen, access, &m->mr));
	CHECK_OK(iovm_rqueue_map_mr(m->r.q, m->mr, IOVM_MAP_READ | IOVM_MAP_WRITE, &m->io));
}

static void model_close(struct model *m)
{
	CHECK_EQ(iovm_mr_dereg(m->mr), -EBUSY);
	CHECK_OK(iovm_rqueue_unmap_mr(m->r.q, m->mr));
	CHECK_OK(iovm_mr_dereg(m->mr));
	a9_close(&m->r, true);
	CHECK_OK(munmap(m->app, NPG * A9_PAGE));
	free(m->shadow);
	free(m->hshadow);
}

static void model_check(struct model *m, const char *what)
{
	long d = a9_diff(m->app, m->shadow, NPG * A9_PAGE);

	CHECK_MSG(d < 0, "op %u (%s): client byte %ld (MR offset %ld) is %#x, model %#x", m->ops, what, d,
		  d - (long)OFF0, d >= 0 ? m->app[d] : 0, d >= 0 ? m->shadow[d] : 0);
	d = a9_diff(m->r.heap, m->hshadow, HLEN);
	CHECK_MSG(d < 0, "op %u (%s): heap byte %ld is %#x, model %#x", m->ops, what, d, d >= 0 ? m->r.heap[d] : 0,
		  d >= 0 ? m->hshadow[d] : 0);
}

/* A random range of the MR: offset and length (1 up to @max). */
static void rnd_range(struct model *m, size_t total, size_t max, size_t *off, size_t *len)
{
	uint64_t k = a9_rng(&m->seed) % 8;

	*len = 1 + a9_rng(&m->seed) % max;
	if (k == 0)
		*len = 1;
	if (*len > total)
		*len = total;
	*off = a9_rng(&m->seed) % (total - *len + 1);
	if (k == 1)
		*off = 0;               /* at the MR's start */
	else if (k == 2)
		*off = total - *len;    /* at its end */
	else if (k == 3 && *off >= 7)
		*off = (((*off + OFF0) & ~(A9_K64 - 1)) - OFF0 + A9_K64 - 3) % (total - *len + 1); /* near a 64 KiB line */
}

static void expect_ok(struct model *m, struct iovm_completion c, const char *what, size_t off, size_t len)
{
	if (c.status != IOVM_STATUS_SUCCESS) {
		struct iovm_reg_stats st = a9_stats(m->r.ctx);

		printf("# MR at %p (+%#lx in its 64K), len %zu, iova %#llx; odp_faults %llu pinned %llu evicted %llu budget %llu\n",
		       (void *)(m->app + OFF0), (unsigned long)(((uintptr_t)m->app + OFF0) & (A9_K64 - 1)), m->mrlen,
		       (unsigned long long)m->io.addr, (unsigned long long)st.odp_faults,
		       (unsigned long long)st.odp_pinned_bytes, (unsigned long long)st.odp_evicted_bytes,
		       (unsigned long long)st.pin_budget);
	}
	CHECK_MSG(c.status == IOVM_STATUS_SUCCESS, "op %u (%s off %zu len %zu): status %u, bytes %u, fault %#llx, reason %u access %u", m->ops,
		  what, off, len, c.status, c.bytes_completed, (unsigned long long)c.fault_addr, c.fault_reason, c.fault_access);
}

static bool one_piece; /* the budget holds one piece: no descriptor needs two MR pieces at once */

static void one_op(struct model *m)
{
	struct iovm_completion c;
	size_t a, b, len, la;
	uint64_t kind = a9_rng(&m->seed) % 9;

	if (one_piece && (kind == 2 || kind == 8)) /* two MR pieces at once: see mr_to_mr_budget64k */
		kind = 0;
	uint8_t *mrs = m->shadow + OFF0;

	m->ops++;
	switch (kind) {
	case 0: /* MR -> heap */
		rnd_range(m, m->mrlen, 200000, &a, &len);
		if (len > HLEN)
			len = HLEN;
		b = a9_rng(&m->seed) % (HLEN - len + 1);
		c = a9_go(&m->r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = m->io.addr + a, .dst = m->r.ih.addr + b,
						     .len = (uint32_t)len });
		expect_ok(m, c, "copy mr->heap", a, len);
		memcpy(m->hshadow + b, mrs + a, len);
		model_check(m, "copy mr->heap");
		break;
	case 1: /* heap -> MR */
		rnd_range(m, m->mrlen, 200000, &a, &len);
		if (len > HLEN)
			len = HLEN;
		b = a9_rng(&m->seed) % (HLEN - len + 1);
		c = a9_go(&m->r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = m->r.ih.addr + b, .dst = m->io.addr + a,
						     .len = (uint32_t)len });
		expect_ok(m, c, "copy heap->mr", a, len);
		memcpy(mrs + a, m->hshadow + b, len);
		model_check(m, "copy heap->mr");
		break;
	case 2: /* MR -> MR, may overlap: memmove */
		rnd_range(m, m->mrlen, 150000, &a, &len);
		b = a9_rng(&m->seed) % (m->mrlen - len + 1);
		c = a9_go(&m->r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = m->io.addr + a, .dst = m->io.addr + b,
						     .len = (uint32_t)len });
		expect_ok(m, c, "copy mr->mr", a, len);
		memmove(mrs + b, mrs + a, len);
		model_check(m, "copy mr->mr");
		break;
	case 3: { /* fill, one byte repeated */
		uint8_t v = (uint8_t)a9_rng(&m->seed);

		rnd_range(m, m->mrlen, 300000, &a, &len);
		c = a9_go(&m->r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = m->io.addr + a, .len = (uint32_t)len,
						     .pattern = 0x0101010101010101ull * v });
		expect_ok(m, c, "fill", a, len);
		memset(mrs + a, v, len);
		model_check(m, "fill");
		break;
	}
	case 4: { /* compare MR against heap: equal or not, and where */
		long d;

		rnd_range(m, m->mrlen, 100000, &a, &len);
		if (len > HLEN)
			len = HLEN;
		b = a9_rng(&m->seed) % (HLEN - len + 1);
		if (a9_rng(&m->seed) % 2) { /* make them equal, but maybe one byte */
			memcpy(m->r.heap + b, mrs + a, len);
			if (a9_rng(&m->seed) % 2)
				m->r.heap[b + a9_rng(&m->seed) % len] ^= 0x10;
			memcpy(m->hshadow + b, m->r.heap + b, len);
		}
		d = a9_diff(mrs + a, m->hshadow + b, len);
		c = a9_go(&m->r, (struct iovm_desc){ .op = IOVM_OP_COMPARE, .src = m->io.addr + a, .dst = m->r.ih.addr + b,
						     .len = (uint32_t)len });
		expect_ok(m, c, "compare", a, len);
		CHECK_EQ(c.result, d >= 0);
		if (d >= 0)
			CHECK_EQ(c.mismatch, d);
		model_check(m, "compare");
		break;
	}
	case 5: { /* CRC of the MR range against the CRC of the same bytes in the heap */
		struct iovm_completion c2;

		rnd_range(m, m->mrlen, 200000, &a, &len);
		if (len > HLEN)
			len = HLEN;
		memcpy(m->r.heap, mrs + a, len);
		memcpy(m->hshadow, mrs + a, len);
		c = a9_go(&m->r, (struct iovm_desc){ .op = IOVM_OP_CRC32C, .src = m->io.addr + a, .len = (uint32_t)len,
						     .crc_seed = 0x1234 });
		expect_ok(m, c, "crc", a, len);
		c2 = a9_go(&m->r, (struct iovm_desc){ .op = IOVM_OP_CRC32C, .src = m->r.ih.addr, .len = (uint32_t)len,
						      .crc_seed = 0x1234 });
		expect_ok(m, c2, "crc heap", a, len);
		CHECK_EQ(c.crc, c2.crc);
		model_check(m, "crc");
		break;
	}
	case 6:   /* scatter heap -> pieces of the MR */
	case 7: { /* gather pieces of the MR -> heap */
		struct iovm_sge *sg = (struct iovm_sge *)(m->r.heap + HLEN - 4096);
		unsigned n = 1 + (unsigned)(a9_rng(&m->seed) % 8);
		size_t offs[8], lens[8], total = 0, hb;

		for (unsigned i = 0; i < n; i++) {
			rnd_range(m, m->mrlen, 40000, &offs[i], &lens[i]);
			if (kind == 6) /* distinct destinations: no overlap among entries */
				for (unsigned j = 0; j < i; j++)
					if (offs[i] < offs[j] + lens[j] && offs[j] < offs[i] + lens[i])
						lens[i] = 0;
			if (!lens[i]) {
				offs[i] = 0;
				lens[i] = 0;
			}
			total += lens[i];
		}
		/* drop empty entries */
		unsigned k = 0;
		for (unsigned i = 0; i < n; i++)
			if (lens[i]) {
				offs[k] = offs[i];
				lens[k++] = lens[i];
			}
		n = k;
		if (!n)
			break;
		hb = a9_rng(&m->seed) % (HLEN - 4096 - total + 1);
		for (unsigned i = 0; i < n; i++)
			sg[i] = (struct iovm_sge){ .iova = m->io.addr + offs[i], .len = (uint32_t)lens[i] };
		memcpy(m->hshadow + HLEN - 4096, sg, n * sizeof(*sg));
		if (kind == 6) {
			c = a9_go(&m->r, (struct iovm_desc){ .op = IOVM_OP_SCATTER, .src = m->r.ih.addr + hb,
							     .dst = m->r.ih.addr + HLEN - 4096, .sg_count = (uint16_t)n,
							     .len = (uint32_t)total });
			expect_ok(m, c, "scatter", offs[0], total);
			size_t at = hb;
			for (unsigned i = 0; i < n; i++) {
				memcpy(mrs + offs[i], m->hshadow + at, lens[i]);
				at += lens[i];
			}
			model_check(m, "scatter");
		} else {
			c = a9_go(&m->r, (struct iovm_desc){ .op = IOVM_OP_GATHER, .src = m->r.ih.addr + HLEN - 4096,
							     .dst = m->r.ih.addr + hb, .sg_count = (uint16_t)n,
							     .len = (uint32_t)total });
			expect_ok(m, c, "gather", offs[0], total);
			size_t at = hb;
			for (unsigned i = 0; i < n; i++) {
				memcpy(m->hshadow + at, mrs + offs[i], lens[i]);
				at += lens[i];
			}
			model_check(m, "gather");
		}
		break;
	}
	case 8: /* dualcast heap -> two MR ranges */
		rnd_range(m, m->mrlen / 2, 60000, &a, &len);
		la = m->mrlen / 2 + a9_rng(&m->seed) % (m->mrlen / 2 - len + 1);
		b = a9_rng(&m->seed) % (HLEN - 4096 - len + 1);
		/* DSA's dualcast wants dst and dst2 alike in their low 12 bits */
		la = (la & ~(size_t)4095) | ((m->io.addr + a) & 4095);
		la -= m->io.addr & 4095;
		while (la + len > m->mrlen || la < a + len)
			la = la >= 4096 ? la - 4096 : la + 4096;
		c = a9_go(&m->r, (struct iovm_desc){ .op = IOVM_OP_DUALCAST, .src = m->r.ih.addr + b,
						     .dst = m->io.addr + a, .dst2 = m->io.addr + la,
						     .len = (uint32_t)len });
		if (c.status == IOVM_STATUS_INVALID)
			break; /* alignment rules of dualcast: not what is attacked here */
		expect_ok(m, c, "dualcast", a, len);
		memcpy(mrs + a, m->hshadow + b, len);
		memcpy(mrs + la, m->hshadow + b, len);
		model_check(m, "dualcast");
		break;
	}
}

static void model_run(const char *tag, const char *opts, uint32_t access, uint64_t seed, unsigned nops)
{
	struct model m;
	struct iovm_reg_stats s0, s1;
	struct iovm_completion c;

	model_open(&m, tag, opts, access, seed);
	/* The first sweep: one request per piece, cut at 64 KiB and the MR's ends. */
	s0 = a9_stats(m.r.ctx);
	c = a9_go(&m.r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = m.io.addr, .dst = m.r.ih.addr,
					    .len = (uint32_t)m.mrlen });
	expect_ok(&m, c, "first sweep", 0, m.mrlen);
	memcpy(m.hshadow, m.shadow + OFF0, m.mrlen);
	model_check(&m, "first sweep");
	s1 = a9_stats(m.r.ctx);
	if ((access & IOVM_ACCESS_ON_DEMAND) && s1.pin_budget >= NPG * A9_PAGE)
		CHECK_EQ(s1.odp_faults - s0.odp_faults, a9_pieces((uintptr_t)m.app + OFF0, m.mrlen));
	for (unsigned i = 0; i < nops; i++)
		one_op(&m);
	s1 = a9_stats(m.r.ctx);
	if (access & IOVM_ACCESS_ON_DEMAND)
		CHECK(s1.odp_pinned_bytes <= s1.pin_budget);
	printf("# %s: %u ops, %llu requests, %llu evicted\n", tag, m.ops,
	       (unsigned long long)(s1.odp_faults - s0.odp_faults),
	       (unsigned long long)(s1.odp_evicted_bytes - s0.odp_evicted_bytes));
	model_close(&m);
}

TEST(model_odp)
{
	model_run("a9model", "", IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, 0x9e3779b97f4a7c15ull, 400);
}

TEST(model_odp_budget_64k_aligned)
{
	OFF0 = 0;
	one_piece = true;
	model_run("a9moda", "pin_budget=64K", IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, 0xdeadbeefcafe1ull, 300);
	OFF0 = 3 * 4096 + 123;
	one_piece = false;
}

TEST(model_odp_budget_64k)
{
	/* Unaligned: the pieces are cut from the MR's first page, so one piece per side still fits. */
	one_piece = true;
	model_run("a9modb", "pin_budget=64K", IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, 0xdeadbeefcafe1ull, 300);
	one_piece = false;
}

TEST(model_odp_budget_128k)
{
	model_run("a9modc", "pin_budget=128K", IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, 0x1234567ull, 300);
}

TEST(model_pinned)
{
	model_run("a9modp", "", IOVM_ACCESS_LOCAL_WRITE, 0xabcdef12345ull, 300);
}

/*
 * Beyond the MR's pages the device reaches nothing of the client: a fill
 * of the page after its last and before its first changes nothing there.
 */
TEST(beyond_the_ends)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k(48);
	struct iovm_completion c;
	iovm_iova_t io;
	uintptr_t first = ((uintptr_t)app + OFF0) & ~(uintptr_t)4095;
	size_t len = 32 * 4096 - OFF0 - 55;
	uintptr_t last_end = ((uintptr_t)app + OFF0 + len + 4095) & ~(uintptr_t)4095;

	a9_open(&r, "a9ends", "", 0);
	memset(app, 0x5a, 48 * 4096);
	CHECK_OK(iovm_mr_reg(r.dom, app + OFF0, len, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr));
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	CHECK_EQ(io.addr & 4095, ((uintptr_t)app + OFF0) & 4095);
	/* After the last page */
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .flags = IOVM_DESC_BLOCK_ON_FAULT,
					  .dst = io.addr + (last_end - ((uintptr_t)app + OFF0)), .len = 4096, .pattern = 0 });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(c.bytes_completed, 0);
	/* Running over the end: the MR's bytes done, then the fault */
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io.addr + len - 10, .len = 8192, .pattern = 0 });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_MSG(c.fault_addr == io.addr + len || c.fault_addr == io.addr + (last_end - ((uintptr_t)app + OFF0)),
		  "fault at %#llx: neither the MR's end %#llx nor its last page's", (unsigned long long)c.fault_addr,
		  (unsigned long long)(io.addr + len));
	/* Before the first page (unless the device has something else of ours there) */
	uint64_t before = io.addr - (((uintptr_t)app + OFF0) - first) - 4096;
	if (!(before >= r.ih.addr && before < r.ih.addr + r.heap_len) && !(before >= r.ir.addr && before < r.ir.addr + 4096)) {
		c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = before, .len = 4096, .pattern = 0 });
		CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	}
	CHECK(a9_all(app, 0x5a, first - (uintptr_t)app));
	CHECK(a9_all((uint8_t *)last_end, 0x5a, (uintptr_t)app + 48 * 4096 - last_end));
	CHECK(a9_all(app + OFF0, 0, len - 10) == false); /* the MR itself: 0x5a but the last 10 */
	CHECK(a9_all(app + OFF0, 0x5a, len - 10));
	CHECK(a9_all(app + OFF0 + len - 10, 0, 10));
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, mr));
	CHECK_OK(iovm_mr_dereg(mr));
	a9_close(&r, true);
	CHECK_OK(munmap(app, 48 * 4096));
}

int main(void)
{
	test_init();
	A9_RUN(model_odp);
	A9_RUN(model_odp_budget_64k_aligned);
	A9_RUN(model_odp_budget_128k);
	A9_RUN(model_pinned);
	A9_RUN(model_odp_budget_64k);
	A9_RUN(beyond_the_ends);
	return 0;
}
