/* SPDX-License-Identifier: MIT */
/*
 * test_keys_all_or_nothing.c - dev.h's rule for keys in descriptors with
 * more than one range: every key a descriptor names (src_key, dst_key,
 * each scatter/gather entry's) is checked, with its right and its range,
 * before the first byte moves; one refused completes the descriptor with
 * IOVM_STATUS_KEY and bytes_completed 0, and touches nothing. A batch's
 * children are descriptors of their own: a refused child touches nothing,
 * the others run.
 *
 * Each operation runs with the bad key at every position (first, middle,
 * last entry; source and destination), for each way a key is bad (stale,
 * without the right, a range beyond its registration); every byte of the
 * destinations and of the canaries around them is checked afterwards.
 */
#include "reg/reg_util.h"

#define CANARY 0xc5
#define AREA (16 * PG) /* each registered buffer */
#define NR_ENTRIES 3

enum badness { BAD_STALE, BAD_RIGHT, BAD_RANGE, NR_BADNESS };
static const char *const bad_name[] = { "stale key", "key without the right", "range beyond the MR" };

struct keys {
	struct rig r;
	/* The application's memory: a source, a destination, each with a canary page on either side. */
	uint8_t *src_map, *dst_map, *src, *dst;
	struct iovm_mr *src_mr, *dst_mr, *ro_mr; /* ro_mr: dst's memory again, read-only */
	uint32_t src_key, dst_key, ro_key, stale_key;
	struct iovm_sge *sg;      /* in DMA memory */
	struct iovm_desc *batch;  /* in DMA memory */
	struct iovm_completion *child_comp; /* one record per batch child, in DMA memory */
};

static void keys_open(struct keys *k)
{
	struct iovm_mr *gone;

	rig_open(&k->r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	k->src_map = app_map(AREA + 2 * PG);
	k->dst_map = app_map(AREA + 2 * PG);
	k->src = k->src_map + PG;
	k->dst = k->dst_map + PG;
	fill_random(k->src_map, AREA + 2 * PG, 7);
	CHECK_OK(iovm_mr_reg(k->r.dom, k->src, AREA, 0, &k->src_mr));
	CHECK_OK(iovm_mr_reg(k->r.dom, k->dst, AREA, IOVM_ACCESS_LOCAL_WRITE, &k->dst_mr));
	CHECK_OK(iovm_mr_reg(k->r.dom, k->dst, AREA, 0, &k->ro_mr));
	k->src_key = mr_info(k->src_mr).lkey;
	k->dst_key = mr_info(k->dst_mr).lkey;
	k->ro_key = mr_info(k->ro_mr).lkey;
	/* A key that was good once. */
	CHECK_OK(iovm_mr_reg(k->r.dom, k->src, PG, IOVM_ACCESS_LOCAL_WRITE, &gone));
	k->stale_key = mr_info(gone).lkey;
	CHECK_OK(iovm_mr_dereg(gone));
	k->sg = iovm_dma_zalloc(k->r.ctx, NR_ENTRIES * sizeof(*k->sg), 64, 0);
	k->batch = iovm_dma_zalloc(k->r.ctx, NR_ENTRIES * sizeof(*k->batch), 64, 0);
	k->child_comp = iovm_dma_zalloc(k->r.ctx, NR_ENTRIES * sizeof(*k->child_comp), 64, 0);
	CHECK(k->sg && k->batch && k->child_comp);
}

static void keys_close(struct keys *k)
{
	CHECK_OK(iovm_mr_dereg(k->ro_mr));
	CHECK_OK(iovm_mr_dereg(k->dst_mr));
	CHECK_OK(iovm_mr_dereg(k->src_mr));
	rig_close(&k->r);
	app_unmap(k->src_map, AREA + 2 * PG);
	app_unmap(k->dst_map, AREA + 2 * PG);
}

/* The destination and its canaries, all CANARY. */
static void dst_reset(struct keys *k)
{
	memset(k->dst_map, CANARY, AREA + 2 * PG);
}

/* Nothing of the destination (or its canary pages) changed. */
static void dst_untouched(struct keys *k, const char *what)
{
	for (size_t i = 0; i < AREA + 2 * PG; i++)
		if (k->dst_map[i] != CANARY)
			CHECK_MSG(0, "%s: byte %zd of the destination written (%#x)", what, (ssize_t)i - (ssize_t)PG,
				  k->dst_map[i]);
	CHECK(1);
}

/*
 * A bad (key, address, length) for an access of @write, of the kind
 * @bad, in place of the good one given: same place, different key, or the
 * good key over a range its MR does not hold.
 */
static void make_bad(struct keys *k, enum badness bad, bool write, uint32_t *key, uint64_t *addr, uint32_t len)
{
	switch (bad) {
	case BAD_STALE:
		*key = k->stale_key;
		break;
	case BAD_RIGHT:
		/* Writing through the read-only MR; reading through a remote key without remote read. */
		*key = write ? k->ro_key : mr_info(k->src_mr).rkey;
		break;
	case BAD_RANGE:
	default:
		/* The last bytes run one past the registration's end. */
		*addr = (uint64_t)(uintptr_t)(write ? k->dst : k->src) + AREA - len + 1;
		break;
	}
}

/* Entry @i of a list: a piece of @base at its own offset, odd lengths. */
static struct iovm_sge entry(uint8_t *base, unsigned i, uint32_t key)
{
	return (struct iovm_sge){ .iova = (uintptr_t)(base + 100 + i * 3 * PG + i * 7), .len = 777 + i * 2000,
				  .key = key };
}

static uint32_t list_total(void)
{
	uint32_t t = 0;

	for (unsigned i = 0; i < NR_ENTRIES; i++)
		t += entry(NULL, i, 0).len;
	return t;
}

static void expect_refused(struct keys *k, struct iovm_completion c, const char *what)
{
	CHECK_MSG(c.status == IOVM_STATUS_KEY, "%s: status %u, not KEY", what, c.status);
	CHECK_MSG(c.bytes_completed == 0, "%s: %u bytes completed", what, c.bytes_completed);
	dst_untouched(k, what);
}

/* SCATTER from the source into NR_ENTRIES pieces of the destination; entry @pos bad. */
TEST(scatter_with_a_bad_entry_anywhere)
{
	struct keys k;
	char what[128];

	keys_open(&k);
	for (unsigned bad = 0; bad < NR_BADNESS; bad++)
		for (unsigned pos = 0; pos < NR_ENTRIES; pos++) {
			for (unsigned i = 0; i < NR_ENTRIES; i++)
				k.sg[i] = entry(k.dst, i, k.dst_key);
			make_bad(&k, (enum badness)bad, true, &k.sg[pos].key, &k.sg[pos].iova, k.sg[pos].len);
			dst_reset(&k);
			snprintf(what, sizeof(what), "scatter, entry %u of %u: %s", pos, NR_ENTRIES, bad_name[bad]);
			expect_refused(&k, run_desc(&k.r, (struct iovm_desc){ .op = IOVM_OP_SCATTER,
					   .flags = IOVM_DESC_KEYED, .sg_count = NR_ENTRIES,
					   .src = (uintptr_t)k.src, .src_key = k.src_key,
					   .dst = iova_of(&k.r, k.sg), .len = list_total() }),
				       what);
		}
	/* The contiguous source bad: nothing either. */
	for (unsigned i = 0; i < NR_ENTRIES; i++)
		k.sg[i] = entry(k.dst, i, k.dst_key);
	dst_reset(&k);
	expect_refused(&k, run_desc(&k.r, (struct iovm_desc){ .op = IOVM_OP_SCATTER, .flags = IOVM_DESC_KEYED,
			   .sg_count = NR_ENTRIES, .src = (uintptr_t)k.src, .src_key = k.stale_key,
			   .dst = iova_of(&k.r, k.sg), .len = list_total() }),
		       "scatter, stale source key");
	/* All good: every piece lands, the canaries between them stay. */
	dst_reset(&k);
	CHECK_EQ(run_desc(&k.r, (struct iovm_desc){ .op = IOVM_OP_SCATTER, .flags = IOVM_DESC_KEYED,
			  .sg_count = NR_ENTRIES, .src = (uintptr_t)k.src, .src_key = k.src_key,
			  .dst = iova_of(&k.r, k.sg), .len = list_total() }).status,
		 IOVM_STATUS_SUCCESS);
	for (unsigned i = 0, off = 0; i < NR_ENTRIES; off += k.sg[i].len, i++) {
		uint8_t *at = (uint8_t *)(uintptr_t)k.sg[i].iova;

		CHECK(!memcmp(at, k.src + off, k.sg[i].len));
		CHECK_EQ(at[-1], CANARY);
		CHECK_EQ(at[k.sg[i].len], CANARY);
	}
	keys_close(&k);
}

/* GATHER NR_ENTRIES pieces of the source into the destination; entry @pos bad. */
TEST(gather_with_a_bad_entry_anywhere)
{
	struct keys k;
	char what[128];

	keys_open(&k);
	for (unsigned bad = 0; bad < NR_BADNESS; bad++)
		for (unsigned pos = 0; pos < NR_ENTRIES; pos++) {
			for (unsigned i = 0; i < NR_ENTRIES; i++)
				k.sg[i] = entry(k.src, i, k.src_key);
			make_bad(&k, (enum badness)bad, false, &k.sg[pos].key, &k.sg[pos].iova, k.sg[pos].len);
			dst_reset(&k);
			snprintf(what, sizeof(what), "gather, entry %u of %u: %s", pos, NR_ENTRIES, bad_name[bad]);
			expect_refused(&k, run_desc(&k.r, (struct iovm_desc){ .op = IOVM_OP_GATHER,
					   .flags = IOVM_DESC_KEYED, .sg_count = NR_ENTRIES,
					   .src = iova_of(&k.r, k.sg), .dst = (uintptr_t)(k.dst + 50),
					   .dst_key = k.dst_key, .len = list_total() }),
				       what);
		}
	/* The contiguous destination bad. */
	for (unsigned bad = 0; bad < NR_BADNESS; bad++) {
		uint32_t key = k.dst_key;
		uint64_t addr = (uintptr_t)(k.dst + 50);

		for (unsigned i = 0; i < NR_ENTRIES; i++)
			k.sg[i] = entry(k.src, i, k.src_key);
		make_bad(&k, (enum badness)bad, true, &key, &addr, list_total());
		dst_reset(&k);
		snprintf(what, sizeof(what), "gather, destination: %s", bad_name[bad]);
		expect_refused(&k, run_desc(&k.r, (struct iovm_desc){ .op = IOVM_OP_GATHER, .flags = IOVM_DESC_KEYED,
				   .sg_count = NR_ENTRIES, .src = iova_of(&k.r, k.sg), .dst = addr,
				   .dst_key = key, .len = list_total() }),
			       what);
	}
	keys_close(&k);
}

/*
 * The contiguous operations with a key each side: the bad key first
 * (source) or last (destination), each way.
 */
TEST(linear_operations_with_a_bad_key_either_side)
{
	static const uint8_t ops[] = { IOVM_OP_COPY, IOVM_OP_COPY_CRC, IOVM_OP_FILL, IOVM_OP_COMPARE,
				       IOVM_OP_COMPARE_PATTERN, IOVM_OP_CRC32C };
	struct keys k;
	char what[128];

	keys_open(&k);
	for (size_t o = 0; o < ARRAY_SIZE(ops); o++) {
		bool has_src = ops[o] != IOVM_OP_FILL;
		bool has_dst = ops[o] == IOVM_OP_COPY || ops[o] == IOVM_OP_COPY_CRC || ops[o] == IOVM_OP_FILL ||
			       ops[o] == IOVM_OP_COMPARE;
		bool dst_written = has_dst && ops[o] != IOVM_OP_COMPARE;

		for (unsigned bad = 0; bad < NR_BADNESS; bad++)
			for (unsigned side = 0; side < 2; side++) {
				uint32_t len = 3 * PG + 5, src_key = k.src_key, dst_key = k.dst_key;
				uint64_t src = (uintptr_t)(k.src + 3), dst = (uintptr_t)(k.dst + 9);
				struct iovm_completion c;

				if ((side == 0 && !has_src) || (side == 1 && !has_dst))
					continue;
				if (side == 0)
					make_bad(&k, (enum badness)bad, false, &src_key, &src, len);
				else
					make_bad(&k, (enum badness)bad, dst_written, &dst_key, &dst, len);
				dst_reset(&k);
				snprintf(what, sizeof(what), "op %u, %s: %s", ops[o], side ? "destination" : "source",
					 bad_name[bad]);
				c = run_desc(&k.r, (struct iovm_desc){ .op = ops[o], .flags = IOVM_DESC_KEYED,
						 .src = src, .src_key = src_key, .dst = dst, .dst_key = dst_key,
						 .len = len, .pattern = 0x0102030405060708ull });
				expect_refused(&k, c, what);
				CHECK_MSG(c.result == 0 && c.mismatch == 0, "%s: a compare result", what);
			}
	}
	keys_close(&k);
}

/*
 * A batch of NR_ENTRIES keyed copies, each to its own piece of the
 * destination, child @pos with a bad key: that child alone is refused
 * (its record says KEY, 0 bytes; its piece untouched), the others run,
 * and the batch says BATCH_FAIL with NR_ENTRIES - 1 children done. A bad
 * key for the list itself runs no child.
 */
TEST(batch_with_a_bad_child_anywhere)
{
	struct keys k;
	char what[128];

	keys_open(&k);
	for (unsigned bad = 0; bad < NR_BADNESS; bad++)
		for (unsigned pos = 0; pos < NR_ENTRIES; pos++) {
			struct iovm_completion c;

			memset(k.child_comp, 0, NR_ENTRIES * sizeof(*k.child_comp));
			for (unsigned i = 0; i < NR_ENTRIES; i++) {
				struct iovm_sge piece = entry(k.dst, i, k.dst_key);

				k.batch[i] = (struct iovm_desc){ .op = IOVM_OP_COPY,
					.flags = IOVM_DESC_KEYED | IOVM_DESC_COMPLETION, .src = (uintptr_t)k.src,
					.src_key = k.src_key, .dst = piece.iova, .dst_key = k.dst_key, .len = piece.len,
					.completion = iova_of(&k.r, &k.child_comp[i]) };
			}
			make_bad(&k, (enum badness)bad, true, &k.batch[pos].dst_key, &k.batch[pos].dst, k.batch[pos].len);
			dst_reset(&k);
			snprintf(what, sizeof(what), "batch, child %u of %u: %s", pos, NR_ENTRIES, bad_name[bad]);
			c = run_desc(&k.r, (struct iovm_desc){ .op = IOVM_OP_BATCH, .src = iova_of(&k.r, k.batch),
							       .len = NR_ENTRIES });
			CHECK_MSG(c.status == IOVM_STATUS_BATCH_FAIL, "%s: batch status %u", what, c.status);
			CHECK_EQ(c.bytes_completed, NR_ENTRIES - 1);
			for (unsigned i = 0; i < NR_ENTRIES; i++) {
				struct iovm_sge piece = entry(k.dst, i, 0);
				uint8_t *at = (uint8_t *)(uintptr_t)piece.iova;

				if (i == pos) {
					CHECK_EQ(k.child_comp[i].status, IOVM_STATUS_KEY);
					CHECK_EQ(k.child_comp[i].bytes_completed, 0);
					for (uint32_t b = 0; b < piece.len; b++)
						if (at[b] != CANARY)
							CHECK_MSG(0, "%s: the refused child wrote byte %u", what, b);
					/* Put the canary back where the others wrote: then all of it must be canary. */
					continue;
				}
				CHECK_EQ(k.child_comp[i].status, IOVM_STATUS_SUCCESS);
				CHECK(!memcmp(at, k.src, piece.len));
				memset(at, CANARY, piece.len);
			}
			dst_untouched(&k, what);
		}
	/* The list's own key bad: no child runs. */
	{
		uint8_t *list_app = app_map(PG);
		struct iovm_mr *list_mr;
		struct iovm_completion c;

		CHECK_OK(iovm_mr_reg(k.r.dom, list_app, PG, 0, &list_mr));
		for (unsigned i = 0; i < NR_ENTRIES; i++) {
			struct iovm_sge piece = entry(k.dst, i, k.dst_key);

			((struct iovm_desc *)list_app)[i] = (struct iovm_desc){ .op = IOVM_OP_COPY,
				.flags = IOVM_DESC_KEYED, .src = (uintptr_t)k.src, .src_key = k.src_key,
				.dst = piece.iova, .dst_key = k.dst_key, .len = piece.len };
		}
		dst_reset(&k);
		c = run_desc(&k.r, (struct iovm_desc){ .op = IOVM_OP_BATCH, .flags = IOVM_DESC_KEYED,
						       .src = (uintptr_t)list_app, .src_key = k.stale_key,
						       .len = NR_ENTRIES });
		expect_refused(&k, c, "batch, stale list key");
		/* The list's key good but the list runs past its MR: no child runs either. */
		c = run_desc(&k.r, (struct iovm_desc){ .op = IOVM_OP_BATCH, .flags = IOVM_DESC_KEYED,
						       .src = (uintptr_t)(list_app + PG - 2 * sizeof(struct iovm_desc)),
						       .src_key = mr_info(list_mr).lkey, .len = NR_ENTRIES });
		expect_refused(&k, c, "batch, list beyond its MR");
		/* And good: every child runs. */
		c = run_desc(&k.r, (struct iovm_desc){ .op = IOVM_OP_BATCH, .flags = IOVM_DESC_KEYED,
						       .src = (uintptr_t)list_app, .src_key = mr_info(list_mr).lkey,
						       .len = NR_ENTRIES });
		CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
		CHECK_EQ(c.bytes_completed, NR_ENTRIES);
		CHECK_OK(iovm_mr_dereg(list_mr));
		app_unmap(list_app, PG);
	}
	keys_close(&k);
}

/*
 * DUALCAST has no keys (dst2 is where they would be): keyed, it is
 * invalid and touches nothing. By IOVA, its partial completion is the
 * page-fault rule: bytes_completed bytes reached both destinations, not
 * one more, whichever destination faulted.
 */
TEST(dualcast)
{
	struct rig r;
	uint8_t *src, *d1, *d2;
	uint64_t hole_iova;
	iovm_iova_t at;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	src = iovm_dma_alloc(r.ctx, 4 * PG, PG, 0);
	d1 = iovm_dma_alloc(r.ctx, 4 * PG, PG, 0);
	d2 = iovm_dma_alloc(r.ctx, 4 * PG, PG, 0);
	fill_random(src, 4 * PG, 5);
	memset(d1, CANARY, 4 * PG);
	memset(d2, CANARY, 4 * PG);
	CHECK_EQ(run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_DUALCAST, .flags = IOVM_DESC_KEYED,
						  .src = iova_of(&r, src), .dst = iova_of(&r, d1), .len = 100 })
			 .status,
		 IOVM_STATUS_INVALID);
	for (unsigned i = 0; i < 4 * PG; i++)
		CHECK(d1[i] == CANARY && d2[i] == CANARY);
	/* A second mapping of d1's first two pages, then a hole: the copy to it stops at the hole. */
	at = IOVM_IOVA_ANY;
	{
		struct iovm_dma_xlate x;

		CHECK_OK(iovm_dma_xlate(r.ctx, d1, &x));
		CHECK(x.contig >= 3 * PG);
		CHECK_OK(iovm_domain_map(r.dom, &at, x.pa, 3 * PG, IOVM_MAP_READ | IOVM_MAP_WRITE));
	}
	/* Whatever follows the range, its third page is a hole. */
	hole_iova = at.addr + 2 * PG;
	CHECK_OK(iovm_domain_unmap(r.dom, IOVM_IOVA(hole_iova), PG));
	for (unsigned first = 0; first < 2; first++) {
		/* The mapped-then-hole destination as dst, then as dst2; the other one whole. */
		uint64_t dst = first ? at.addr + 100 : iova_of(&r, d2), dst2 = first ? iova_of(&r, d2) : at.addr + 100;
		struct iovm_completion c;

		memset(d1, CANARY, 4 * PG);
		memset(d2, CANARY, 4 * PG);
		c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_DUALCAST, .src = iova_of(&r, src), .dst = dst,
						     .dst2 = dst2, .len = 3 * PG });
		CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
		CHECK_EQ(c.fault_addr, hole_iova);
		CHECK_EQ(c.bytes_completed, 2 * PG - 100);
		CHECK(!memcmp(d1 + 100, src, 2 * PG - 100));
		CHECK(!memcmp(d2, src, 2 * PG - 100));
		for (unsigned i = 2 * PG - 100; i < 4 * PG; i++)
			CHECK(d2[i] == CANARY);
		for (unsigned i = 0; i < 100; i++)
			CHECK(d1[i] == CANARY);
	}
	CHECK_OK(iovm_domain_unmap(r.dom, at, 2 * PG));
	rig_close(&r);
}

int main(void)
{
	test_init();
	RUN(scatter_with_a_bad_entry_anywhere);
	RUN(gather_with_a_bad_entry_anywhere);
	RUN(linear_operations_with_a_bad_key_either_side);
	RUN(batch_with_a_bad_child_anywhere);
	RUN(dualcast);
	return 0;
}
