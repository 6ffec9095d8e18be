/* SPDX-License-Identifier: MIT */
/*
 * engine_model_gen.h - descriptors for the engine model (engine_model.h):
 * every operation, every kind of address and key, lists and batches
 * written into memory the descriptors reach, mappings and bytes that
 * change between descriptors. The choices come from a seeded generator
 * (test_engine_model.c) or from a fuzzer's input (fuzz_engine.c).
 */
#ifndef IOVM_TESTS_ENGINE_MODEL_GEN_H
#define IOVM_TESTS_ENGINE_MODEL_GEN_H

#include "dev/engine_model_rig.h"

/*
 * The source of every choice: a seeded xorshift (the model test), or the
 * bytes of a fuzzer's input, read in order (0 once they run out), so that
 * the fuzzer's mutations are the generator's choices.
 */
struct gen {
	uint64_t s;
	const uint8_t *data;
	size_t size, pos;
};

static inline uint64_t rnd64(struct gen *g)
{
	uint64_t v = 0;

	if (!g->data)
		return test_rand(&g->s);
	for (unsigned i = 0; i < 8 && g->pos < g->size; i++)
		v |= (uint64_t)g->data[g->pos++] << (8 * i);
	return v;
}

/* A choice below @n: a byte of input where a byte holds it, else a word. */
static inline uint64_t rnd(struct gen *g, uint64_t n)
{
	if (!n)
		return 0;
	if (g->data && n <= 256) {
		uint64_t v = g->pos < g->size ? g->data[g->pos++] : 0;

		return v % n;
	}
	return rnd64(g) % n;
}

static inline bool gen_done(const struct gen *g)
{
	return g->data && g->pos >= g->size;
}

static inline uint32_t gen_len(struct gen *g)
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
static inline uint32_t gen_key(struct em *m, struct gen *g, unsigned mr)
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
	return (uint32_t)rnd64(g) | 1;
}

/*
 * Where @len bytes go: mostly the window (anywhere in it, across pages,
 * now and then past its end), sometimes the registered memory (by key in a
 * keyed descriptor), sometimes nowhere mapped.
 */
static inline void gen_addr(struct em *m, struct gen *g, bool keyed, uint32_t len, uint64_t *addr, uint32_t *key)
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

static inline uint64_t gen_completion(struct gen *g, unsigned slot)
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
static inline uint64_t gen_list_place(struct em *m, struct gen *g, bool keyed, size_t n, unsigned align, uint32_t *key)
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
static inline void cpu_store(struct em *m, uint64_t addr, const void *p, size_t n)
{
	uintptr_t app = (uintptr_t)m->app;

	if (addr >= EM_WIN && addr + n <= EM_WIN + EM_PAGES * EM_PG) {
		em_cpu_write(m, addr - EM_WIN, p, n);
	} else if (addr >= app + EM_PG && addr + n <= app + (EM_APP_PAGES + 1) * EM_PG) {
		memcpy(m->app + (addr - app), p, n);
		memcpy(m->app_sh + (addr - app), p, n);
	}
}

static inline void gen_desc(struct em *m, struct gen *g, struct iovm_desc *d, bool in_batch, unsigned slot);

static inline void gen_sg(struct em *m, struct gen *g, struct iovm_desc *d)
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

static inline void gen_batch(struct em *m, struct gen *g, struct iovm_desc *d)
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

static inline void gen_desc(struct em *m, struct gen *g, struct iovm_desc *d, bool in_batch, unsigned slot)
{
	uint64_t k = rnd(g, 100);
	uint32_t len;

	*d = (struct iovm_desc){ .tag = rnd64(g), .pattern = rnd64(g),
				 .crc_seed = (uint32_t)rnd64(g) };
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
static inline void perturb(struct em *m, struct gen *g)
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
			junk[i] = (uint8_t)rnd64(g);
		/* Equal runs too: COMPARE_PATTERN must find a match sometimes. */
		if (rnd(g, 2))
			for (size_t i = 0; i < n; i++)
				junk[i] = (uint8_t)(0x1122334455667788ull >> (8 * (i % 8)));
		em_cpu_write(m, rnd(g, EM_PAGES * EM_PG - n), junk, n);
	}
}

/* Every window page mapped as the choices say, every byte from them: the state an input starts from. */
static inline void em_reset(struct em *m, struct gen *g)
{
	uint64_t x = rnd64(g) | 1;

	for (unsigned i = 0; i < EM_PAGES; i++)
		em_set_page(m, i, (unsigned)rnd(g, 4), rnd(g, 2));
	for (size_t i = 0; i < (EM_PAGES + 2) * EM_PG; i += 8) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		memcpy(m->back + i, &x, 8);
	}
	for (size_t i = 0; i < (EM_APP_PAGES + 2) * EM_PG; i += 8) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		memcpy(m->app + i, &x, 8);
	}
	memset(m->rec, 0, EM_PG);
	memcpy(m->back_sh, m->back, (EM_PAGES + 2) * EM_PG);
	memcpy(m->app_sh, m->app, (EM_APP_PAGES + 2) * EM_PG);
	memcpy(m->rec_sh, m->rec, EM_PG);
}

#endif /* IOVM_TESTS_ENGINE_MODEL_GEN_H */
