/* SPDX-License-Identifier: MIT */
/*
 * test_attack_keys.c - attacks dev.h's rule for keyed descriptors, across
 * layers (registrations from reg.h): every key of a descriptor is checked,
 * over its whole range, before its first byte moves; a refused key
 * completes KEY with bytes_completed 0 and nothing written, whichever
 * entry holds it; a batch goes on past a refused child; lengths that do
 * not add up are INVALID. And iommu.h's -EBUSY for destroying a domain
 * that registrations or a registration cache use.
 */
#include <sys/mman.h>

#include "attack.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)
#define LEN (64u * 4096)

static struct rig r;
static uint8_t *app;        /* application memory, mmap'ed */
static uint8_t *shadow;
static struct iovm_mr *mr_rw, *mr_ro, *mr_remote;
static struct iovm_mr_info in_rw, in_ro, in_remote;

static void compare(const char *what)
{
	if (memcmp(app, shadow, LEN)) {
		size_t i = 0;
		while (app[i] == shadow[i])
			i++;
		EXPECT_MSG(0, "%s: application byte %zu is %#x, expected %#x", what, i, app[i], shadow[i]);
		memcpy(shadow, app, LEN);
	}
}

static struct iovm_completion keyed(struct iovm_desc d)
{
	d.flags |= IOVM_DESC_KEYED;
	return run_desc(&r, d);
}

static uint8_t *lists;     /* DMA memory for sg and batch lists */
static uint64_t lists_iova;

TEST(a_keyed_copy_is_byte_exact)
{
	struct iovm_completion c = keyed((struct iovm_desc){ .op = IOVM_OP_COPY, .src = (uintptr_t)app + 100,
		.dst = (uintptr_t)app + 3 * 65536 + 7, .len = 20000, .src_key = in_rw.lkey, .dst_key = in_rw.lkey });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	memmove(shadow + 3 * 65536 + 7, shadow + 100, 20000);
	compare("keyed copy");
}

TEST(each_refused_key_touches_nothing)
{
	static const char *const names[] = {
		"unknown src key", "unknown dst key", "dst without LOCAL_WRITE", "src range past the MR",
		"dst range past the MR", "remote key without REMOTE_READ as src", "key + 1 (another generation?)",
		"dst starts before the MR",
	};
	uint64_t base = (uintptr_t)app;
	struct iovm_desc d[8] = {
		{ .op = IOVM_OP_COPY, .src = base, .dst = base + 65536, .len = 4096, .src_key = 0x7fffffff,
		  .dst_key = in_rw.lkey },
		{ .op = IOVM_OP_COPY, .src = base, .dst = base + 65536, .len = 4096, .src_key = in_rw.lkey,
		  .dst_key = 0x7ffffffe },
		{ .op = IOVM_OP_FILL, .dst = in_ro.addr ? (uintptr_t)in_ro.addr : base, .len = 4096,
		  .pattern = 1, .dst_key = in_ro.lkey },
		{ .op = IOVM_OP_COPY, .src = base + LEN / 2 - 10, .dst = base + 65536, .len = 20,
		  .src_key = in_remote.lkey, .dst_key = in_rw.lkey },
		{ .op = IOVM_OP_COPY, .src = base, .dst = base + LEN - 10, .len = 20, .src_key = in_rw.lkey,
		  .dst_key = in_rw.lkey },
		{ .op = IOVM_OP_COPY, .src = (uintptr_t)in_ro.addr, .dst = base + 65536, .len = 64,
		  .src_key = in_ro.rkey, .dst_key = in_rw.lkey },
		{ .op = IOVM_OP_COPY, .src = base, .dst = base + 65536, .len = 64, .src_key = in_rw.lkey + 1,
		  .dst_key = in_rw.lkey },
		{ .op = IOVM_OP_COPY, .src = base + 4096, .dst = base - 8, .len = 64, .src_key = in_rw.lkey,
		  .dst_key = in_rw.lkey },
	};
	for (int i = 0; i < 8; i++) {
		struct iovm_completion c = keyed(d[i]);
		EXPECT_MSG(c.status == IOVM_STATUS_KEY && c.bytes_completed == 0, "%s: status %u, %u bytes",
			   names[i], c.status, c.bytes_completed);
		compare(names[i]);
	}
}

TEST(a_bad_entry_key_anywhere_in_a_scatter_or_gather_touches_nothing)
{
	struct iovm_sge *sg = (struct iovm_sge *)lists;
	uint64_t base = (uintptr_t)app;

	for (unsigned op = IOVM_OP_GATHER; op <= IOVM_OP_SCATTER; op++)
		for (unsigned n = 1; n <= 8; n++)
			for (unsigned bad = 0; bad < n; bad++) {
				for (unsigned i = 0; i < n; i++)
					sg[i] = (struct iovm_sge){ .iova = base + 65536 + i * 8192, .len = 1000,
								   .key = in_rw.lkey };
				/* bad: unknown key, or a range past its MR, or a read-only MR written. */
				if (bad % 3 == 0)
					sg[bad].key = 0x6ffffff0;
				else if (bad % 3 == 1)
					sg[bad].iova = base + LEN - 500;
				else if (op == IOVM_OP_SCATTER)
					sg[bad] = (struct iovm_sge){ .iova = (uintptr_t)in_ro.addr, .len = 1000,
								     .key = in_ro.lkey };
				else
					sg[bad].key = in_rw.lkey ^ 0x80000000u;
				struct iovm_desc d = { .op = (uint8_t)op, .sg_count = (uint16_t)n, .len = 1000 * n };
				if (op == IOVM_OP_GATHER) {
					d.src = lists_iova;
					d.dst = base;
					d.dst_key = in_rw.lkey;
				} else {
					d.src = base;
					d.src_key = in_rw.lkey;
					d.dst = lists_iova;
				}
				struct iovm_completion c = keyed(d);
				EXPECT_MSG(c.status == IOVM_STATUS_KEY && c.bytes_completed == 0,
					   "%s of %u entries, entry %u bad (%u): status %u, %u bytes",
					   op == IOVM_OP_GATHER ? "gather" : "scatter", n, bad, bad % 3, c.status,
					   c.bytes_completed);
				compare(op == IOVM_OP_GATHER ? "gather with a bad entry" : "scatter with a bad entry");
			}
}

TEST(entry_lengths_that_do_not_add_up_are_invalid_and_touch_nothing)
{
	struct iovm_sge *sg = (struct iovm_sge *)lists;
	uint64_t base = (uintptr_t)app;

	for (int i = 0; i < 4; i++)
		sg[i] = (struct iovm_sge){ .iova = base + 65536 + i * 8192, .len = 1000, .key = in_rw.lkey };
	static const uint32_t lens[] = { 3999, 4001, 1, 8000 };
	for (int k = 0; k < 4; k++) {
		struct iovm_desc d = { .op = IOVM_OP_SCATTER, .sg_count = 4, .len = lens[k], .src = base,
				       .src_key = in_rw.lkey, .dst = lists_iova };
		struct iovm_completion c = keyed(d);
		EXPECT_MSG(c.status == IOVM_STATUS_INVALID, "scatter of 4x1000 with len %u: status %u", lens[k],
			   c.status);
		compare("scatter with lengths that do not add up");
	}
}

TEST(a_batch_goes_on_past_a_refused_child)
{
	struct iovm_desc *bl = (struct iovm_desc *)lists;
	uint64_t base = (uintptr_t)app;

	bl[0] = (struct iovm_desc){ .op = IOVM_OP_FILL, .flags = IOVM_DESC_KEYED, .dst = base, .len = 100,
				    .pattern = 0x0202020202020202ull, .dst_key = in_rw.lkey };
	bl[1] = (struct iovm_desc){ .op = IOVM_OP_FILL, .flags = IOVM_DESC_KEYED, .dst = base + 200, .len = 100,
				    .pattern = 0x0303030303030303ull, .dst_key = 0x12345 };
	bl[2] = (struct iovm_desc){ .op = IOVM_OP_FILL, .flags = IOVM_DESC_KEYED, .dst = base + 400, .len = 100,
				    .pattern = 0x0404040404040404ull, .dst_key = in_rw.lkey };
	struct iovm_completion c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_BATCH, .src = lists_iova, .len = 3 });
	EXPECT_EQ(c.status, IOVM_STATUS_BATCH_FAIL);
	memset(shadow, 0x02, 100);
	memset(shadow + 400, 0x04, 100);
	compare("batch with a refused child");
	/* The batch's list itself keyed with a bad key: no child runs. */
	c = keyed((struct iovm_desc){ .op = IOVM_OP_BATCH, .src = lists_iova, .len = 3, .src_key = 0x777 });
	EXPECT_MSG(c.status == IOVM_STATUS_KEY, "batch list with a bad key: %u", c.status);
	compare("batch with a bad list key");
}

TEST(a_deregistered_or_foreign_key_is_refused)
{
	struct iovm_mr *tmp;
	struct iovm_mr_info ti;
	uint64_t base = (uintptr_t)app;

	CHECK_OK(iovm_mr_reg(r.dom, app + 32 * 4096, 8 * 4096, IOVM_ACCESS_LOCAL_WRITE, &tmp));
	CHECK_OK(iovm_mr_query(tmp, &ti));
	struct iovm_desc d = { .op = IOVM_OP_FILL, .dst = base + 32 * 4096, .len = 4096, .pattern = 9,
			       .dst_key = ti.lkey };
	struct iovm_completion c = keyed(d);
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	for (int i = 0; i < 4096; i++)
		shadow[32 * 4096 + i] = (uint8_t)(9ull >> (8 * (i % 8)));
	compare("fill through a live key");
	CHECK_OK(iovm_mr_dereg(tmp));
	c = keyed(d);
	EXPECT_MSG(c.status == IOVM_STATUS_KEY, "a deregistered key: %u", c.status);
	compare("a deregistered key");
	/* A new MR of the same memory: the old key still refused. */
	CHECK_OK(iovm_mr_reg(r.dom, app + 32 * 4096, 8 * 4096, IOVM_ACCESS_LOCAL_WRITE, &tmp));
	c = keyed(d);
	EXPECT_MSG(c.status == IOVM_STATUS_KEY, "the key of a deregistered MR reached its successor: %u", c.status);
	compare("an old key after re-registration");
	CHECK_OK(iovm_mr_dereg(tmp));
	/* A key of another domain. */
	struct iovm_domain *other;
	CHECK_OK(iovm_domain_create(r.ctx, NULL, &other));
	CHECK_OK(iovm_mr_reg(other, app, LEN, IOVM_ACCESS_LOCAL_WRITE, &tmp));
	CHECK_OK(iovm_mr_query(tmp, &ti));
	d.dst_key = ti.lkey;
	c = keyed(d);
	EXPECT_MSG(c.status == IOVM_STATUS_KEY, "a key of another domain: %u", c.status);
	compare("a key of another domain");
	/* That domain cannot go while the MR lives, nor while a cache does. */
	CHECK_RET(iovm_domain_destroy(other), -EBUSY);
	CHECK_OK(iovm_mr_dereg(tmp));
	struct iovm_rcache *rc;
	CHECK_OK(iovm_rcache_create(other, NULL, &rc));
	CHECK_RET(iovm_domain_destroy(other), -EBUSY);
	struct iovm_mr *got;
	CHECK_OK(iovm_rcache_get(rc, app, 4096, IOVM_ACCESS_LOCAL_WRITE, &got));
	CHECK_RET(iovm_rcache_destroy(rc), -EBUSY);
	CHECK_OK(iovm_rcache_put(rc, got));
	CHECK_OK(iovm_rcache_destroy(rc));
	CHECK_RET(iovm_domain_destroy(other), 0);
}

int main(void)
{
	test_init();
	rig_open(&r, "oracle=on,log_level=error", NULL, IOVM_QUEUE_POLLED);
	app = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(app != MAP_FAILED);
	shadow = malloc(LEN);
	uint64_t seed = 8;
	for (unsigned i = 0; i < LEN; i++)
		app[i] = (uint8_t)test_rand(&seed);
	memcpy(shadow, app, LEN);
	lists = iovm_dma_zalloc(r.ctx, 65536, 4096, 0);
	lists_iova = iova_of(&r, lists);
	/* Three MRs: the whole buffer RW; its first half with remote rights; 16 pages read-only. */
	CHECK_OK(iovm_mr_reg(r.dom, app, LEN, IOVM_ACCESS_LOCAL_WRITE, &mr_rw));
	CHECK_OK(iovm_mr_reg(r.dom, app, LEN / 2, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE, &mr_remote));
	CHECK_OK(iovm_mr_reg(r.dom, app + LEN / 2, 16 * 4096, IOVM_ACCESS_LOCAL_READ, &mr_ro));
	CHECK_OK(iovm_mr_query(mr_rw, &in_rw));
	CHECK_OK(iovm_mr_query(mr_remote, &in_remote));
	CHECK_OK(iovm_mr_query(mr_ro, &in_ro));
	CHECK_RET(iovm_domain_destroy(r.dom), -EBUSY);
	RUN(a_keyed_copy_is_byte_exact);
	RUN(each_refused_key_touches_nothing);
	RUN(a_bad_entry_key_anywhere_in_a_scatter_or_gather_touches_nothing);
	RUN(entry_lengths_that_do_not_add_up_are_invalid_and_touch_nothing);
	RUN(a_batch_goes_on_past_a_refused_child);
	RUN(a_deregistered_or_foreign_key_is_refused);
	CHECK_OK(iovm_mr_dereg(mr_rw));
	CHECK_OK(iovm_mr_dereg(mr_remote));
	CHECK_OK(iovm_mr_dereg(mr_ro));
	iovm_dma_free(r.ctx, lists);
	rig_close(&r);
	munmap(app, LEN);
	free(shadow);
	return attack_status();
}
