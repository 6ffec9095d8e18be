/* SPDX-License-Identifier: MIT */
/*
 * test_attack6_devown.c - a device process reaching a client's own memory
 * (malloc, anonymous pages, a memfd, the stack), checked against the
 * shared heap as the oracle: the same random descriptors (every operation
 * of dev.h, batches, lists, completion records, lengths of 1 byte to 64 KiB
 * at offsets straddling pages) run on heap buffers and on own buffers
 * holding the same bytes must give the same completions and the same
 * bytes. Then faults: a hole unmapped in own memory stops a descriptor at
 * the hole's first byte (IOVM_FAULT_BUS) with exactly what the same
 * descriptor, cut at the hole, does on the heap; memory mapped again at
 * the hole is reached there.
 *
 * IOVM_ATTACK6_SEED=N replays a seed; IOVM_ATTACK6_STEPS=N runs longer.
 * It found a DUALCAST whose dst2 runs into the hole writing dst to the end
 * of the stretch it read (fixed: a side that only writes is probed first).
 */
#include "attack6_devown.h"

#define DATA (160 * 1024ul) /* 40 pages per data region */
#define LIST (64 * 1024ul)
#define RECS (16 * 1024ul)

enum { RA, RB, RC, RL, RR, NREG };
static const size_t reg_size[NREG] = { DATA, DATA, DATA, LIST, RECS };
static const char *const reg_name[NREG] = { "A", "B", "C", "list", "records" };

/* One set of regions, mapped in the queue's domain: the heap's, or the client's own. */
struct world {
	uint8_t *base[NREG];
	uint64_t iova[NREG];
};

/* An abstract address: region+1 in bits 40 and up, the offset below; 0 stays 0. */
#define AADDR(r, off) (((uint64_t)(r) + 1) << 40 | (uint64_t)(off))

static uint64_t tr(const struct world *w, uint64_t a)
{
	if (!a)
		return 0;
	return w->iova[(a >> 40) - 1] + (a & ((UINT64_C(1) << 40) - 1));
}

static uint8_t *cpu(const struct world *w, uint64_t a)
{
	return w->base[(a >> 40) - 1] + (a & ((UINT64_C(1) << 40) - 1));
}

/* An IOVA back to an abstract address (the same in both worlds), or ~0 when in none. */
static uint64_t untr(const struct world *w, uint64_t iova)
{
	for (int r = 0; r < NREG; r++)
		if (iova >= w->iova[r] && iova <= w->iova[r] + reg_size[r])
			return AADDR(r, iova - w->iova[r]);
	return ~UINT64_C(0);
}

/* A list written in the list region before the step runs. */
struct alist {
	uint32_t off;
	unsigned n;
	int descs;
	struct iovm_sge sge[16];
	struct iovm_desc d[8];
};

/* CPU work before the step, on both worlds alike: make a compare meet equal bytes. */
struct prep {
	int kind; /* 1: copy b -> a; 2: fill a with pattern */
	uint64_t a, b, pattern;
	uint32_t len, flip; /* flip: a byte of a to change after, or UINT32_MAX */
};

struct step {
	struct iovm_desc top;
	struct alist lists[10];
	unsigned nlists;
	struct prep preps[10];
	unsigned npreps;
	uint32_t list_cursor;
	unsigned rec_slot;
};

static uint32_t rnd(uint64_t *s, uint32_t n)
{
	return (uint32_t)(test_rand(s) % n);
}

static uint32_t gen_len(uint64_t *s)
{
	switch (rnd(s, 4)) {
	case 0:
		return 1 + rnd(s, 64);
	case 1:
		return 1 + rnd(s, 8192);
	default:
		return 1 + rnd(s, 65536);
	}
}

/* An offset for @len bytes in a data region, often just before a page boundary. */
static uint32_t gen_off(uint64_t *s, uint32_t len)
{
	uint32_t max = (uint32_t)(DATA - len), off;

	if (rnd(s, 2)) {
		off = (1 + rnd(s, (uint32_t)(DATA / A6_PAGE) - 1)) * (uint32_t)A6_PAGE - 1 - rnd(s, 64);
		return off > max ? max : off;
	}
	return rnd(s, max + 1);
}

static void three(uint64_t *s, int r[3])
{
	r[0] = (int)rnd(s, 3);
	r[1] = (r[0] + 1 + (int)rnd(s, 2)) % 3;
	r[2] = 3 - r[0] - r[1];
}

static struct alist *new_list(struct step *st, unsigned align, size_t bytes)
{
	struct alist *l = &st->lists[st->nlists++];

	st->list_cursor = (st->list_cursor + align - 1) & ~(align - 1);
	CHECK(st->list_cursor + bytes <= LIST && st->nlists <= 10);
	memset(l, 0, sizeof(*l));
	l->off = st->list_cursor;
	st->list_cursor += (uint32_t)bytes;
	return l;
}

/* A random descriptor, not a batch. */
static struct iovm_desc gen_simple(struct step *st, uint64_t *s)
{
	struct iovm_desc d = { 0 };
	int r[3];
	uint32_t len = gen_len(s);

	three(s, r);
	d.op = (uint8_t)(IOVM_OP_COPY + rnd(s, 9));
	d.len = len;
	d.pattern = test_rand(s);
	d.crc_seed = rnd(s, 3) ? (uint32_t)test_rand(s) : 0;
	d.pasid = rnd(s, 4) ? rnd(s, 1u << 20) : 0;
	switch (d.op) {
	case IOVM_OP_COPY:
		if (!rnd(s, 3)) { /* overlapping, within one region: memmove */
			uint32_t off = gen_off(s, len), delta = 1 + rnd(s, len);
			uint32_t other = rnd(s, 2) ? off + delta : (off >= delta ? off - delta : 0);

			if (other + len > DATA)
				other = (uint32_t)(DATA - len);
			d.src = AADDR(r[0], off);
			d.dst = AADDR(r[0], other);
			break;
		}
		/* fall through */
	case IOVM_OP_COPY_CRC:
	case IOVM_OP_COMPARE:
		d.src = AADDR(r[0], gen_off(s, len));
		d.dst = AADDR(r[1], gen_off(s, len));
		if (d.op == IOVM_OP_COMPARE && rnd(s, 2)) {
			st->preps[st->npreps++] = (struct prep){ .kind = 1, .a = d.dst, .b = d.src, .len = len,
								 .flip = rnd(s, 2) ? rnd(s, len) : UINT32_MAX };
		}
		break;
	case IOVM_OP_FILL:
		d.dst = AADDR(r[1], gen_off(s, len));
		break;
	case IOVM_OP_COMPARE_PATTERN:
	case IOVM_OP_CRC32C:
		d.src = AADDR(r[0], gen_off(s, len));
		if (d.op == IOVM_OP_COMPARE_PATTERN && rnd(s, 2))
			st->preps[st->npreps++] = (struct prep){ .kind = 2, .a = d.src, .pattern = d.pattern,
								 .len = len,
								 .flip = rnd(s, 2) ? rnd(s, len) : UINT32_MAX };
		break;
	case IOVM_OP_DUALCAST: {
		uint32_t o1 = gen_off(s, len), o2 = gen_off(s, len);

		if (rnd(s, 4)) { /* as DSA asks: the same offset in a page */
			o2 = (o2 & ~(uint32_t)(A6_PAGE - 1)) | (o1 & (uint32_t)(A6_PAGE - 1));
			if (o2 + len > DATA)
				o2 -= (uint32_t)A6_PAGE;
		}
		d.src = AADDR(r[0], gen_off(s, len));
		d.dst = AADDR(r[1], o1);
		d.dst2 = AADDR(r[2], o2);
		break;
	}
	case IOVM_OP_GATHER:
	case IOVM_OP_SCATTER: {
		unsigned n = 1 + rnd(s, 16);
		struct alist *l;
		uint32_t left = len, cursor[2] = { rnd(s, 4096), rnd(s, 4096) };

		if (n > len)
			n = len;
		l = new_list(st, 8, n * sizeof(struct iovm_sge));
		l->n = n;
		for (unsigned i = 0; i < n; i++) {
			uint32_t el = i == n - 1 ? left : 1 + rnd(s, left - (n - 1 - i));
			int which = (int)rnd(s, 2);
			uint32_t off;

			left -= el;
			if (d.op == IOVM_OP_GATHER) {
				off = gen_off(s, el);
			} else { /* destinations apart from each other */
				off = cursor[which] + rnd(s, 64);
				if (off + el > DATA) {
					which ^= 1;
					off = cursor[which];
				}
				cursor[which] = off + el;
			}
			CHECK(off + el <= DATA);
			l->sge[i] = (struct iovm_sge){ .iova = AADDR(r[1 + which], off), .len = el };
		}
		d.sg_count = (uint16_t)n;
		if (d.op == IOVM_OP_GATHER) {
			d.src = AADDR(RL, l->off);
			d.dst = AADDR(r[0], gen_off(s, len));
		} else {
			d.src = AADDR(r[0], gen_off(s, len));
			d.dst = AADDR(RL, l->off);
		}
		break;
	}
	default: /* NOOP-like: the op number past the range stays, to compare INVALID */
		d.op = IOVM_OP_NOOP;
		break;
	}
	if (rnd(s, 2)) {
		d.flags |= IOVM_DESC_COMPLETION;
		d.completion = AADDR(RR, 32 * (uint64_t)st->rec_slot++);
	}
	return d;
}

static void gen_step(struct step *st, uint64_t *s)
{
	memset(st, 0, sizeof(*st));
	if (rnd(s, 5)) {
		st->top = gen_simple(st, s);
		return;
	}
	/* A batch of 1 to 6 children; its list is written last, after the children's lists. */
	{
		unsigned n = 1 + rnd(s, 6);
		struct iovm_desc kids[8];
		struct alist *l;

		for (unsigned i = 0; i < n; i++)
			kids[i] = gen_simple(st, s);
		l = new_list(st, 64, n * sizeof(struct iovm_desc));
		l->descs = 1;
		l->n = n;
		memcpy(l->d, kids, n * sizeof(kids[0]));
		st->top = (struct iovm_desc){ .op = IOVM_OP_BATCH, .src = AADDR(RL, l->off), .len = n,
					      .pasid = rnd(s, 1u << 20) };
		if (rnd(s, 2)) {
			st->top.flags = IOVM_DESC_COMPLETION;
			st->top.completion = AADDR(RR, 32 * (uint64_t)st->rec_slot++);
		}
	}
}

static struct iovm_desc tr_desc(const struct world *w, struct iovm_desc d)
{
	d.src = tr(w, d.src);
	d.dst = tr(w, d.dst);
	d.completion = tr(w, d.completion);
	if (d.op == IOVM_OP_DUALCAST)
		d.dst2 = tr(w, d.dst2);
	return d;
}

/* Write the step's lists and preparations into @w. */
static void materialize(const struct world *w, const struct step *st)
{
	memset(w->base[RR], 0, RECS);
	for (unsigned i = 0; i < st->npreps; i++) {
		const struct prep *p = &st->preps[i];
		uint8_t *a = cpu(w, p->a);

		if (p->kind == 1)
			memmove(a, cpu(w, p->b), p->len);
		else
			for (uint32_t k = 0; k < p->len; k++)
				a[k] = (uint8_t)(p->pattern >> (8 * (k % 8)));
		if (p->flip != UINT32_MAX)
			a[p->flip] ^= 0x5a;
	}
	for (unsigned i = 0; i < st->nlists; i++) {
		const struct alist *l = &st->lists[i];

		for (unsigned k = 0; k < l->n; k++) {
			if (l->descs) {
				struct iovm_desc d = tr_desc(w, l->d[k]);

				memcpy(w->base[RL] + l->off + k * sizeof(d), &d, sizeof(d));
			} else {
				struct iovm_sge e = l->sge[k];

				e.iova = tr(w, e.iova);
				memcpy(w->base[RL] + l->off + k * sizeof(e), &e, sizeof(e));
			}
		}
	}
}

static uint64_t g_seed;
static unsigned g_step;

#define DIFF(cond, ...)                                                                              \
	CHECK_MSG(cond, "seed %" PRIu64 " step %u (op %u len %u): " __VA_ARGS__)

/* The records both worlds wrote: the same, fault addresses compared as abstract addresses. */
static void compare_records(const struct world *h, const struct world *o, unsigned slots, const struct step *st)
{
	for (unsigned i = 0; i < slots; i++) {
		struct iovm_completion a, b;

		memcpy(&a, h->base[RR] + 32 * i, sizeof(a));
		memcpy(&b, o->base[RR] + 32 * i, sizeof(b));
		if (a.fault_addr || b.fault_addr) {
			a.fault_addr = untr(h, a.fault_addr);
			b.fault_addr = untr(o, b.fault_addr);
		}
		DIFF(!memcmp(&a, &b, sizeof(a)),
		     "record %u differs: heap status %u result %u bytes %u crc %#x mismatch %" PRIu64
		     " reason %u; own status %u result %u bytes %u crc %#x mismatch %" PRIu64 " reason %u",
		     g_seed, g_step, st->top.op, st->top.len, i, a.status, a.result, a.bytes_completed, a.crc,
		     a.mismatch, a.fault_reason, b.status, b.result, b.bytes_completed, b.crc, b.mismatch,
		     b.fault_reason);
	}
}

static void compare_data(const struct world *h, const struct world *o, const struct step *st)
{
	for (int r = RA; r <= RC; r++) {
		if (memcmp(h->base[r], o->base[r], DATA)) {
			size_t i = 0;

			while (h->base[r][i] == o->base[r][i])
				i++;
			DIFF(0, "region %s differs at %zu: heap %#x own %#x", g_seed, g_step, st->top.op,
			     st->top.len, reg_name[r], i, h->base[r][i], o->base[r][i]);
		}
	}
}

static unsigned env_uint(const char *name, unsigned dflt)
{
	const char *e = getenv(name);

	return e && *e ? (unsigned)strtoul(e, NULL, 0) : dflt;
}

TEST(random_ops_own_memory_as_heap)
{
	_Alignas(4096) uint8_t stack_records[RECS];
	struct world heap, own;
	struct iovm_ctx *owner;
	struct child srv;
	struct a6_cl c;
	unsigned steps = env_uint("IOVM_ATTACK6_STEPS", 400), ok = 0, faults = 0;
	uint64_t s;
	void *m;

	g_seed = env_uint("IOVM_ATTACK6_SEED", (unsigned)time(NULL) ^ (unsigned)getpid());
	printf("# seed %" PRIu64 " (IOVM_ATTACK6_SEED), %u steps\n", g_seed, steps);
	owner = a6_setup("a6diff", &srv, 2);
	c = a6_client(64);
	for (int r = 0; r < NREG; r++) {
		heap.base[r] = iovm_dma_alloc(c.ctx, reg_size[r], A6_PAGE, 0);
		CHECK(heap.base[r] != NULL);
	}
	/* Own memory of several kinds: malloc, anonymous pages, a memfd, anonymous lists, the stack. */
	CHECK(posix_memalign(&m, A6_PAGE, DATA) == 0);
	own.base[RA] = m;
	own.base[RB] = a6_anon(DATA, PROT_READ | PROT_WRITE);
	own.base[RC] = a6_memfd(DATA, NULL);
	own.base[RL] = a6_anon(LIST, PROT_READ | PROT_WRITE);
	own.base[RR] = stack_records;
	for (int r = 0; r < NREG; r++) {
		uint32_t perm = r == RL ? IOVM_MAP_READ : IOVM_MAP_READ | IOVM_MAP_WRITE;

		heap.iova[r] = a6_map(c.q, heap.base[r], reg_size[r], perm);
		own.iova[r] = a6_map(c.q, own.base[r], reg_size[r], perm);
	}
	s = g_seed * 2 + 1;
	for (int r = RA; r <= RC; r++) {
		a6_fill_rand(heap.base[r], DATA, &s);
		memcpy(own.base[r], heap.base[r], DATA);
	}
	for (g_step = 0; g_step < steps; g_step++) {
		struct step st;
		struct iovm_cqe ch, co;

		gen_step(&st, &s);
		materialize(&heap, &st);
		materialize(&own, &st);
		ch = a6_run(c.q, tr_desc(&heap, st.top));
		co = a6_run(c.q, tr_desc(&own, st.top));
		DIFF(ch.status == co.status && ch.bytes_completed == co.bytes_completed,
		     "heap status %u bytes %u, own status %u bytes %u", g_seed, g_step, st.top.op, st.top.len,
		     ch.status, ch.bytes_completed, co.status, co.bytes_completed);
		compare_records(&heap, &own, st.rec_slot, &st);
		compare_data(&heap, &own, &st);
		ok += ch.status == IOVM_STATUS_SUCCESS;
		faults += ch.status == IOVM_STATUS_PAGE_FAULT;
	}
	printf("# %u of %u steps succeeded, %u faulted (in both worlds alike)\n", ok, steps, faults);
	CHECK_MSG(ok > steps / 2, "seed %" PRIu64 ": only %u of %u steps succeeded on the heap", g_seed, ok, steps);
	CHECK_EQ(faults, 0);
	for (int r = 0; r < NREG; r++) {
		CHECK_OK(iovm_rqueue_unmap(c.q, IOVM_IOVA(heap.iova[r]), reg_size[r]));
		CHECK_OK(iovm_rqueue_unmap(c.q, IOVM_IOVA(own.iova[r]), reg_size[r]));
		CHECK_OK(iovm_dma_free(c.ctx, heap.base[r]));
	}
	a6_client_close(&c);
	free(own.base[RA]);
	munmap(own.base[RB], DATA);
	munmap(own.base[RC], DATA);
	munmap(own.base[RL], LIST);
	a6_teardown(owner, &srv);
}

/*
 * A hole (a page the client unmapped) in own memory: each operation that
 * crosses it stops at its first byte with IOVM_FAULT_BUS, having done
 * exactly what the same descriptor cut at the hole does on the heap; and
 * once a page is mapped there again, the device reaches that page.
 */
TEST(hole_in_own_memory_is_the_heap_cut_short)
{
	struct world heap, own;
	struct iovm_ctx *owner;
	struct child srv;
	struct a6_cl c;
	uint64_t s = 0xa6f17;
	const uint32_t hole = 20 * A6_PAGE; /* page 20 of region B */
	unsigned cases = 0;

	owner = a6_setup("a6hole", &srv, 2);
	c = a6_client(16);
	for (int r = 0; r < NREG; r++) {
		heap.base[r] = iovm_dma_alloc(c.ctx, reg_size[r], A6_PAGE, 0);
		own.base[r] = a6_anon(reg_size[r], PROT_READ | PROT_WRITE);
		CHECK(heap.base[r] != NULL);
		heap.iova[r] = a6_map(c.q, heap.base[r], reg_size[r], IOVM_MAP_READ | IOVM_MAP_WRITE);
		own.iova[r] = a6_map(c.q, own.base[r], reg_size[r], IOVM_MAP_READ | IOVM_MAP_WRITE);
	}
	CHECK(munmap(own.base[RB] + hole, A6_PAGE) == 0);
	for (int round = 0; round < 60; round++) {
		/* Region B plays the role that crosses the hole: the source, a destination, or dst2. */
		static const uint8_t ops[] = { IOVM_OP_COPY, IOVM_OP_FILL, IOVM_OP_CRC32C, IOVM_OP_COPY_CRC,
					       IOVM_OP_DUALCAST, IOVM_OP_COPY, IOVM_OP_DUALCAST };
		uint8_t op = ops[round % sizeof(ops)];
		int b_is_dst = op == IOVM_OP_FILL || (op == IOVM_OP_COPY && round % 2) ||
			       (op == IOVM_OP_DUALCAST && round % 3);
		uint32_t before = 1 + rnd(&s, 9000), after = 1 + rnd(&s, 9000), len = before + A6_PAGE + after;
		uint32_t off = hole - before, other = gen_off(&s, len);
		struct iovm_desc d = { .op = op, .len = len, .pattern = test_rand(&s), .crc_seed = (uint32_t)round,
				       .flags = IOVM_DESC_COMPLETION, .completion = AADDR(RR, 0) };
		struct iovm_cqe co, ch;
		struct iovm_completion ro, rh;

		if (op == IOVM_OP_DUALCAST) {
			uint64_t b = AADDR(RB, off), a = AADDR(RA, other);

			d.src = AADDR(RC, gen_off(&s, len));
			d.dst = b_is_dst ? a : b;
			d.dst2 = b_is_dst ? b : a;
			if (!b_is_dst) /* the hole in dst; dst2 at dst's offset in a page */
				d.dst2 = AADDR(RA, (other & ~(uint32_t)(A6_PAGE - 1)) | (off & (A6_PAGE - 1)));
			else
				d.dst = AADDR(RA, (other & ~(uint32_t)(A6_PAGE - 1)) | (off & (A6_PAGE - 1)));
			if (((d.dst & 0xffffffffff) + len > DATA) || ((d.dst2 & 0xffffffffff) + len > DATA))
				continue;
		} else if (b_is_dst) {
			d.dst = AADDR(RB, off);
			if (op != IOVM_OP_FILL)
				d.src = AADDR(RC, other);
		} else {
			d.src = AADDR(RB, off);
			if (op != IOVM_OP_CRC32C)
				d.dst = AADDR(RC, other);
		}
		a6_fill_rand(heap.base[RA], DATA, &s);
		a6_fill_rand(heap.base[RC], DATA, &s);
		a6_fill_rand(heap.base[RB], hole, &s);
		a6_fill_rand(heap.base[RB] + hole + A6_PAGE, DATA - hole - A6_PAGE, &s);
		memcpy(own.base[RA], heap.base[RA], DATA);
		memcpy(own.base[RC], heap.base[RC], DATA);
		memcpy(own.base[RB], heap.base[RB], hole);
		memcpy(own.base[RB] + hole + A6_PAGE, heap.base[RB] + hole + A6_PAGE, DATA - hole - A6_PAGE);
		memset(own.base[RR], 0, 64);
		memset(heap.base[RR], 0, 64);
		co = a6_run(c.q, tr_desc(&own, d));
		memcpy(&ro, own.base[RR], sizeof(ro));
		/* The oracle: the heap, with the descriptor cut at the hole. */
		d.len = before;
		ch = a6_run(c.q, tr_desc(&heap, d));
		memcpy(&rh, heap.base[RR], sizeof(rh));
		CHECK_MSG(co.status == IOVM_STATUS_PAGE_FAULT && co.bytes_completed == before,
			  "round %d op %u (hole in %s): status %u bytes %u, want a fault after %u", round, op,
			  b_is_dst ? "a destination" : "the source", co.status, co.bytes_completed, before);
		CHECK_EQ(ch.status, IOVM_STATUS_SUCCESS);
		CHECK_EQ(ro.status, IOVM_STATUS_PAGE_FAULT);
		CHECK_EQ(ro.bytes_completed, before);
		CHECK_EQ(ro.fault_reason, IOVM_FAULT_BUS);
		CHECK_EQ(ro.fault_access, b_is_dst || op == IOVM_OP_DUALCAST ? IOVM_MAP_WRITE : IOVM_MAP_READ);
		CHECK_MSG(ro.fault_addr == own.iova[RB] + hole, "round %d op %u: fault at %#" PRIx64 ", hole at %#" PRIx64,
			  round, op, ro.fault_addr, own.iova[RB] + hole);
		if (op == IOVM_OP_CRC32C || op == IOVM_OP_COPY_CRC)
			CHECK_MSG(ro.crc == rh.crc, "round %d op %u: crc of the bytes done %#x, heap's %#x", round, op,
				  ro.crc, rh.crc);
		for (int r = RA; r <= RC; r++)
			for (size_t i = 0; i < DATA; i++)
				if (!(r == RB && i >= hole && i < hole + A6_PAGE) && own.base[r][i] != heap.base[r][i]) {
					printf("# round %d op %u: region %s byte %zu (op at %#" PRIx64 " %#" PRIx64
					       " %#" PRIx64 ", len %u, before %u) own %#x heap %#x\n",
					       round, op, reg_name[r], i, d.src, d.dst, d.dst2, len, before,
					       own.base[r][i], heap.base[r][i]);
					for (size_t j = DATA; j-- > i;)
						if (own.base[r][j] != heap.base[r][j]) {
							printf("# ... the last byte that differs: %zu\n", j);
							break;
						}
					break;
				}
		CHECK_MSG(!memcmp(own.base[RA], heap.base[RA], DATA) && !memcmp(own.base[RC], heap.base[RC], DATA) &&
				  !memcmp(own.base[RB], heap.base[RB], hole) &&
				  !memcmp(own.base[RB] + hole + A6_PAGE, heap.base[RB] + hole + A6_PAGE,
					  DATA - hole - A6_PAGE),
			  "round %d op %u: own bytes differ from the heap's cut at the hole", round, op);
		cases++;
	}
	CHECK(cases >= 30);
	/* A page mapped again at the hole: reached there, by reads and by writes. */
	{
		uint8_t *p = mmap(own.base[RB] + hole, A6_PAGE, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		struct iovm_cqe cq;

		CHECK(p == own.base[RB] + hole);
		memset(p, 0x3c, A6_PAGE);
		cq = a6_run(c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = own.iova[RB] + hole - 100,
						     .dst = own.iova[RA], .len = A6_PAGE + 200 });
		CHECK_EQ(cq.status, IOVM_STATUS_SUCCESS);
		CHECK(!memcmp(own.base[RA], own.base[RB] + hole - 100, A6_PAGE + 200));
		CHECK_EQ(own.base[RA][100 + 17], 0x3c);
		cq = a6_run(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = own.iova[RB] + hole, .len = A6_PAGE,
						     .pattern = 0x4d4d4d4d4d4d4d4dull });
		CHECK_EQ(cq.status, IOVM_STATUS_SUCCESS);
		CHECK_EQ(p[0], 0x4d);
		CHECK_EQ(p[A6_PAGE - 1], 0x4d);
	}
	for (int r = 0; r < NREG; r++) {
		CHECK_OK(iovm_rqueue_unmap(c.q, IOVM_IOVA(heap.iova[r]), reg_size[r]));
		CHECK_OK(iovm_rqueue_unmap(c.q, IOVM_IOVA(own.iova[r]), reg_size[r]));
		CHECK_OK(iovm_dma_free(c.ctx, heap.base[r]));
		munmap(own.base[r], reg_size[r]);
	}
	a6_client_close(&c);
	a6_teardown(owner, &srv);
}

int main(void)
{
	test_init();
	RUN(random_ops_own_memory_as_heap);
	RUN(hole_in_own_memory_is_the_heap_cut_short);
	return 0;
}
