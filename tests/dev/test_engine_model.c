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
#include "dev/engine_model.h"

struct gen {
	uint64_t s;
};

static uint64_t rnd(struct gen *g, uint64_t n)
{
	return n ? test_rand(&g->s) % n : 0;
}

static uint32_t gen_len(struct gen *g)
{
	uint64_t k = rnd(g, 100);

	if (k < 5)
		return 0;
	if (k < 35)
		return (uint32_t)(1 + rnd(g, 64));
	if (k < 70)
		return (uint32_t)(1 + rnd(g, EM_PG));
	return (uint32_t)(1 + rnd(g, 3 * EM_PG + 100));
}

/* A key for keyed addressing: mostly good ones, of every kind, sometimes not. */
static uint32_t gen_key(struct em *m, struct gen *g, unsigned mr)
{
	uint64_t k = rnd(g, 100);

	if (k < 50)
		return m->mr[mr].lkey;
	if (k < 80)
		return m->mr[mr].rkey;
	if (k < 86)
		return m->stale_key;
	if (k < 92)
		return m->foreign_key;
	return (uint32_t)test_rand(&g->s) | 1;
}

/*
 * Where @len bytes go: mostly the window (anywhere in it, across pages,
 * now and then past its end), sometimes the registered memory (by key in a
 * keyed descriptor), sometimes nowhere mapped.
 */
static void gen_addr(struct em *m, struct gen *g, bool keyed, uint32_t len, uint64_t *addr, uint32_t *key)
{
	uint64_t k = rnd(g, 100);

	*key = 0;
	if (keyed && k < 55) {
		unsigned mr = (unsigned)rnd(g, EM_NR_MR);
		uint64_t span = m->mr[mr].len;

		*key = gen_key(m, g, mr);
		/* Mostly inside; a range past the MR's end now and then. */
		*addr = m->mr[mr].addr + (rnd(g, 10) ? rnd(g, span > len ? span - len + 1 : 1) : rnd(g, span));
		return;
	}
	if (k < 85) {
		uint64_t win = EM_PAGES * EM_PG;

		*addr = EM_WIN + (rnd(g, 20) ? rnd(g, win > len ? win - len + 1 : 1) : rnd(g, win));
	} else if (k < 93) {
		unsigned mr = (unsigned)rnd(g, EM_NR_MR);

		*addr = m->mr[mr].addr + rnd(g, m->mr[mr].len);
	} else if (k < 97) {
		*addr = EM_WILD + rnd(g, 4 * EM_PG);
	} else {
		*addr = EM_WIN - 1 - rnd(g, 64);
	}
}

static uint64_t gen_completion(struct gen *g, unsigned slot)
{
	uint64_t k = rnd(g, 100);

	if (k < 94)
		return EM_REC + 32 * (slot % (EM_PG / 32));
	if (k < 96)
		return EM_REC + 32 * slot + 8; /* misaligned: invalid, no record */
	if (k < 98)
		return EM_WILD; /* unmapped: the record's write faults */
	return EM_WIN + 32 * rnd(g, EM_PAGES * EM_PG / 32);
}

static const uint8_t linear_ops[] = { IOVM_OP_NOOP, IOVM_OP_COPY, IOVM_OP_FILL, IOVM_OP_COMPARE,
				      IOVM_OP_COMPARE_PATTERN, IOVM_OP_CRC32C, IOVM_OP_COPY_CRC, IOVM_OP_DUALCAST };

/* Where the CPU puts a list of @n bytes: the window (or the registered memory, by key). */
static uint64_t gen_list_place(struct em *m, struct gen *g, bool keyed, size_t n, unsigned align, uint32_t *key)
{
	*key = 0;
	if (keyed && rnd(g, 3) == 0) {
		unsigned mr = (unsigned)rnd(g, EM_NR_MR);

		if (n <= m->mr[mr].len) {
			*key = rnd(g, 8) ? m->mr[mr].lkey : gen_key(m, g, mr);
			return m->mr[mr].addr + align_down(rnd(g, m->mr[mr].len - n + 1), align);
		}
	}
	if (n > EM_PAGES * EM_PG)
		return EM_WIN;
	return EM_WIN + align_down(rnd(g, EM_PAGES * EM_PG - n + 1), align);
}

/* CPU stores at @addr, in the window or the registered memory, with its shadow. */
static void cpu_store(struct em *m, uint64_t addr, const void *p, size_t n)
{
	uintptr_t app = (uintptr_t)m->app;

	if (addr >= EM_WIN && addr + n <= EM_WIN + EM_PAGES * EM_PG) {
		em_cpu_write(m, addr - EM_WIN, p, n);
	} else if (addr >= app + EM_PG && addr + n <= app + (EM_APP_PAGES + 1) * EM_PG) {
		memcpy(m->app + (addr - app), p, n);
		memcpy(m->app_sh + (addr - app), p, n);
	}
}

static void gen_desc(struct em *m, struct gen *g, struct iovm_desc *d, bool in_batch, unsigned slot);

static void gen_sg(struct em *m, struct gen *g, struct iovm_desc *d)
{
	bool keyed = d->flags & IOVM_DESC_KEYED, gather = rnd(g, 2);
	unsigned count = rnd(g, 30) ? 1 + (unsigned)rnd(g, 8) : (unsigned)rnd(g, 80);
	struct iovm_sge sge[80];
	uint64_t total = 0, list, linear;
	uint32_t list_key, linear_key;

	d->op = gather ? IOVM_OP_GATHER : IOVM_OP_SCATTER;
	d->sg_count = (uint16_t)count;
	for (unsigned i = 0; i < count; i++) {
		uint32_t len = rnd(g, 4) ? gen_len(g) / 3 : gen_len(g);
		uint64_t a;
		uint32_t k;

		gen_addr(m, g, keyed, len, &a, &k);
		sge[i] = (struct iovm_sge){ .iova = a, .len = len, .key = k };
		total += len;
	}
	list = gen_list_place(m, g, keyed, count * sizeof(sge[0]), rnd(g, 40) ? 8 : 4, &list_key);
	cpu_store(m, list, sge, count * sizeof(sge[0]));
	gen_addr(m, g, keyed, (uint32_t)total, &linear, &linear_key);
	d->len = (uint32_t)(rnd(g, 12) ? total : total + rnd(g, 3) - 1);
	if (gather) {
		d->src = list, d->src_key = list_key, d->dst = linear, d->dst_key = linear_key;
	} else {
		d->dst = list, d->dst_key = list_key, d->src = linear, d->src_key = linear_key;
	}
}

static void gen_batch(struct em *m, struct gen *g, struct iovm_desc *d)
{
	bool keyed = d->flags & IOVM_DESC_KEYED;
	unsigned n = rnd(g, 25) ? 1 + (unsigned)rnd(g, 6) : (unsigned)rnd(g, 9);
	struct iovm_desc child[9];
	uint32_t key;

	for (unsigned i = 0; i < n; i++)
		gen_desc(m, g, &child[i], true, 1 + i);
	d->op = IOVM_OP_BATCH;
	d->len = n;
	d->src = gen_list_place(m, g, keyed, n * sizeof(child[0]), rnd(g, 40) ? 64 : 32, &key);
	d->src_key = key;
	cpu_store(m, d->src, child, n * sizeof(child[0]));
}

static void gen_desc(struct em *m, struct gen *g, struct iovm_desc *d, bool in_batch, unsigned slot)
{
	uint64_t k = rnd(g, 100);
	uint32_t len;

	*d = (struct iovm_desc){ .tag = test_rand(&g->s), .pattern = test_rand(&g->s),
				 .crc_seed = (uint32_t)test_rand(&g->s) };
	if (rnd(g, 100) < 85)
		d->flags |= IOVM_DESC_COMPLETION;
	if (rnd(g, 100) < 30)
		d->flags |= IOVM_DESC_BLOCK_ON_FAULT;
	if (rnd(g, 100) < 35)
		d->flags |= IOVM_DESC_KEYED;
	if (rnd(g, 100) < 1)
		d->flags |= 1u << (3 + rnd(g, 5));
	k = rnd(g, 100);
	d->pasid = k < 90 ? EM_PASID : k < 94 ? IOVM_PASID_NONE : k < 99 ? EM_BAD_PASID : IOVM_PASID_MAX + 1;
	d->completion = gen_completion(g, slot);
	k = rnd(g, 100);
	if (k < 12) {
		gen_sg(m, g, d);
	} else if (k < 20 && !in_batch) {
		gen_batch(m, g, d);
	} else if (k < 21) {
		d->op = (uint8_t)(in_batch ? IOVM_OP_BATCH : 11 + rnd(g, 200));
		d->len = 1;
	} else {
		bool keyed = d->flags & IOVM_DESC_KEYED;
		uint64_t a;
		uint32_t key;

		d->op = linear_ops[rnd(g, ARRAY_SIZE(linear_ops))];
		d->len = len = gen_len(g);
		gen_addr(m, g, keyed, len, &a, &key);
		d->src = a;
		d->src_key = key;
		/* Overlapping copies now and then: dst a little above or below src. */
		if (d->op == IOVM_OP_COPY && rnd(g, 6) == 0 && !key) {
			d->dst = d->src + rnd(g, 2 * (uint64_t)len + 1) - len;
			d->dst_key = 0;
		} else {
			gen_addr(m, g, keyed, len, &a, &key);
			d->dst = a;
			d->dst_key = key;
		}
		if (d->op == IOVM_OP_DUALCAST) {
			gen_addr(m, g, false, len, &a, &key);
			d->dst2 = a;
		}
		/* COMPARE of equal ranges now and then, so that equality is seen too. */
		if (d->op == IOVM_OP_COMPARE && rnd(g, 4) == 0 && !d->src_key && !d->dst_key)
			d->dst = d->src;
	}
}

/* Between descriptors: some pages change their mapping, some bytes change under the CPU. */
static void perturb(struct em *m, struct gen *g)
{
	static const uint8_t perms[] = { 0, IOVM_MAP_READ, IOVM_MAP_WRITE, IOVM_MAP_READ | IOVM_MAP_WRITE,
					 IOVM_MAP_READ | IOVM_MAP_WRITE };

	if (rnd(g, 5) == 0)
		for (unsigned n = 1 + (unsigned)rnd(g, 3); n--;)
			em_set_page(m, (unsigned)rnd(g, EM_PAGES), perms[rnd(g, ARRAY_SIZE(perms))], rnd(g, 2));
	if (rnd(g, 20) == 0) {
		uint8_t junk[256];
		size_t n = 1 + rnd(g, sizeof(junk));

		for (size_t i = 0; i < n; i++)
			junk[i] = (uint8_t)test_rand(&g->s);
		/* Equal runs too: COMPARE_PATTERN must find a match sometimes. */
		if (rnd(g, 2))
			for (size_t i = 0; i < n; i++)
				junk[i] = (uint8_t)(0x1122334455667788ull >> (8 * (i % 8)));
		em_cpu_write(m, rnd(g, EM_PAGES * EM_PG - n), junk, n);
	}
}

static void run_seed(uint64_t seed, unsigned steps)
{
	struct gen g = { .s = seed * 0x9e3779b97f4a7c15ull + 1 };
	static struct em m;
	unsigned by_status[8] = { 0 }, unmodeled = 0, resolved = 0, faults = 0, down = 0;
	int ret;

	em_open(&m);
	for (unsigned i = 0; i < EM_PAGES; i++)
		em_set_page(&m, i, (unsigned)rnd(&g, 4), rnd(&g, 2));
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
