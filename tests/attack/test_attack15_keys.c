/* SPDX-License-Identifier: MIT */
/*
 * test_attack15_keys.c - iovm_mr_keys() at every edge of its arguments:
 * NULLs, zero and wrapping lengths, ranges at, ending at and crossing 64
 * MiB boundaries by one byte, the top of user space (a page below 2^47)
 * and its bottom (mmap_min_addr); keys stable across calls, advice and
 * munmap; the parent's iovm_mr_query() keys; the same asks on fake1 (one
 * key), on iovm's own engine, and for MRs of a range; fake0 refusing the
 * implicit MR and keeping nothing. Each refusal leaves the device as it
 * was.
 */
#include "attack/attack15.h"

static struct iovm_ctx *ctx;

/* Nothing reached the device since @c0: no registration asked, none live more. */
static void untouched(struct fake_ibv_counts c0)
{
	struct fake_ibv_counts c = fake_ibv_counts();

	CHECK_EQ(c.regs, c0.regs);
	CHECK_EQ(c.live, c0.live);
}

/* Bad arguments: each refused with a negative errno, no child made, the device untouched. */
TEST(bad_arguments)
{
	static const char *const specs[] = { "verbs:fake2", "verbs:fake1" };
	uint8_t *buf = a13_pages(4);

	for (unsigned s = 0; s < 2; s++) {
		struct iovm_device *dev;
		struct iovm_domain *dom;
		struct iovm_mr *mr;
		struct iovm_mr_keys k;
		struct fake_ibv_counts c0;
		int ret;

		a13_bound(ctx, specs[s], &dev, &dom);
		mr = a15_implicit(dom);
		c0 = fake_ibv_counts();
		CHECK_EQ(iovm_mr_keys(NULL, buf, 8, &k), -EINVAL);
		CHECK_EQ(iovm_mr_keys(mr, buf, 8, NULL), -EINVAL);
		CHECK_EQ(iovm_mr_keys(NULL, NULL, 0, NULL), -EINVAL);
		/* Zero bytes: no range to reach; refused, or the keys of its child, never a crash. */
		memset(&k, 0xee, sizeof(k));
		ret = iovm_mr_keys(mr, buf, 0, &k);
		CHECK_MSG(ret == -EINVAL || ret == 0, "%s: len 0: %d", specs[s], ret);
		/* A length that wraps past the end of the address space. */
		CHECK_MSG((ret = iovm_mr_keys(mr, buf, SIZE_MAX, &k)) == -ERANGE || ret == -EINVAL, "%d", ret);
		CHECK_MSG((ret = iovm_mr_keys(mr, buf, SIZE_MAX - (uintptr_t)buf + 2, &k)) == -ERANGE || ret == -EINVAL,
			  "%d", ret);
		CHECK_MSG((ret = iovm_mr_keys(mr, (void *)(UINTPTR_MAX - 7), 16, &k)) == -ERANGE || ret == -EINVAL,
			  "%d", ret);
		/* The NULL page and kernel addresses are not user space: outside the MR. */
		CHECK_MSG((ret = iovm_mr_keys(mr, NULL, 8, &k)) == -ERANGE || ret == -EINVAL, "%s: NULL: %d",
			  specs[s], ret);
		CHECK_EQ(iovm_mr_keys(mr, (void *)(uintptr_t)8, 8, &k), -ERANGE);
		CHECK_EQ(iovm_mr_keys(mr, (void *)(UINT64_C(1) << 47), 1, &k), -ERANGE);
		CHECK_EQ(iovm_mr_keys(mr, (void *)(UINT64_C(0xffff800000000000)), 4096, &k), -ERANGE);
		if (!strcmp(specs[s], "verbs:fake2")) {
			untouched(c0);
			CHECK_EQ(a15_children(mr), 0);
		} else {
			CHECK_EQ(fake_ibv_counts().live, c0.live);
		}
		CHECK_OK(iovm_mr_dereg(mr));
		a13_unbind(dev, dom);
	}
	munmap(buf, 4 * PG);
}

/*
 * fake2: ranges at 64 MiB boundaries. One byte each side of a boundary is
 * in the child each side; a range ending exactly at it is the lower
 * child's; crossing it by one byte is -ERANGE; a whole child is one ask.
 */
TEST(boundaries)
{
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	struct iovm_mr_keys k, lo, hi, again;
	struct fake_ibv_counts c0;
	uint8_t *buf = a13_pages(4);
	/* Boundaries: near the buffer, low in the address space, at 2^32, and 2^46. */
	uintptr_t bounds[] = {
		((uintptr_t)buf & ~(uintptr_t)(A15_CHILD - 1)) + A15_CHILD,
		2 * A15_CHILD,
		UINT64_C(1) << 32,
		UINT64_C(1) << 46,
	};
	uint64_t made = 0;

	a13_bound(ctx, "verbs:fake2", &dev, &dom);
	mr = a15_implicit(dom);
	c0 = fake_ibv_counts();
	for (unsigned i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) {
		uintptr_t b = bounds[i];
		uint64_t regs;

		lo = a15_child_keys(mr, b - 1, 1);
		hi = a15_child_keys(mr, b, 1);
		made += 2;
		CHECK((uintptr_t)lo.addr + lo.len == b && (uintptr_t)hi.addr == b);
		CHECK(lo.lkey != hi.lkey && lo.rkey != hi.rkey);
		regs = fake_ibv_counts().regs;
		/* Ending exactly at the boundary: the lower child, no registration. */
		again = a15_child_keys(mr, b - 8, 8);
		CHECK(again.lkey == lo.lkey && again.rkey == lo.rkey);
		/* The whole lower child, and the whole upper one, in one ask. */
		again = a15_child_keys(mr, b - A15_CHILD, A15_CHILD);
		CHECK(again.lkey == lo.lkey);
		again = a15_child_keys(mr, b, A15_CHILD);
		CHECK(again.lkey == hi.lkey);
		CHECK_EQ(fake_ibv_counts().regs, regs);
		/* Crossing by one byte, either side, or a child and a byte. */
		CHECK_EQ(iovm_mr_keys(mr, (void *)(b - 8), 9, &k), -ERANGE);
		CHECK_EQ(iovm_mr_keys(mr, (void *)(b - 1), 2, &k), -ERANGE);
		CHECK_EQ(iovm_mr_keys(mr, (void *)(b - A15_CHILD), A15_CHILD + 1, &k), -ERANGE);
		CHECK_EQ(iovm_mr_keys(mr, (void *)(b - 1), A15_CHILD, &k), -ERANGE);
		CHECK_EQ(fake_ibv_counts().regs, regs);
	}
	CHECK_EQ(a15_children(mr), made);
	CHECK_EQ(fake_ibv_counts().live, c0.live + (int64_t)made);
	CHECK_OK(iovm_mr_dereg(mr));
	a13_device_clean(c0);
	a13_unbind(dev, dom);
	munmap(buf, 4 * PG);
}

/*
 * fake2: the top child ends where user space does (a page below 2^47):
 * its last byte is reachable, the page above is not; its whole range is
 * one ask; a device write through its rkey reaches memory mapped at the
 * very top.
 */
TEST(top_of_user_space)
{
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	struct iovm_mr_keys top, k;
	struct fake_ibv_counts c0;
	uintptr_t base = A15_TOP & ~(uintptr_t)(A15_CHILD - 1);
	uint8_t *page;

	a13_bound(ctx, "verbs:fake2", &dev, &dom);
	mr = a15_implicit(dom);
	c0 = fake_ibv_counts();
	top = a15_child_keys(mr, A15_TOP - 1, 1);
	CHECK_EQ((uintptr_t)top.addr, base);
	CHECK_EQ(top.len, A15_CHILD - PG);
	k = a15_child_keys(mr, A15_TOP - 8, 8);
	CHECK_EQ(k.lkey, top.lkey);
	k = a15_child_keys(mr, base, A15_CHILD - PG);
	CHECK_EQ(k.lkey, top.lkey);
	CHECK_EQ(fake_ibv_counts().live, c0.live + 1);

	/* Memory at the very top (the stack may live there: then skip that part). */
	page = mmap((void *)(A15_TOP - PG), PG, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (page == (void *)(A15_TOP - PG)) {
		CHECK_OK(fake_ibv_remote_write(top.rkey, A15_TOP - 5, "top!", 5));
		CHECK(!memcmp(page + PG - 5, "top!", 5));
		munmap(page, PG);
	} else if (page != MAP_FAILED) {
		munmap(page, PG);
	}
	CHECK_OK(iovm_mr_dereg(mr));
	a13_device_clean(c0);
	a13_unbind(dev, dom);
}

/*
 * The last page below 2^47 is not user space (the kernel's TASK_SIZE; the
 * device refuses it, and the top child ends below it). A range there, or
 * one that runs into it from the last child, is not inside the MR: its
 * keys would not reach it. On fake2 and fake1, iovm_mr_keys() must say
 * -ERANGE, or give keys whose range holds the request; never keys of a
 * range that stops short of it.
 */
TEST(beyond_top)
{
	static const char *const specs[] = { "verbs:fake2", "verbs:fake1", NULL };
	static const uintptr_t asks[][2] = {
		{ A15_TOP, 1 },
		{ A15_TOP - 8, 9 },
		{ A15_TOP - 1, 2 },
		{ (UINT64_C(1) << 47) - 1, 1 },
		{ A15_TOP & ~(uintptr_t)(A15_CHILD - 1), A15_CHILD },
	};
	char bad[512] = "";

	for (unsigned s = 0; s < 3; s++) {
		struct iovm_device *dev = NULL;
		struct iovm_domain *dom;
		struct iovm_mr *mr;
		struct fake_ibv_counts c0 = fake_ibv_counts();

		if (specs[s])
			a13_bound(ctx, specs[s], &dev, &dom);
		else
			CHECK_OK(iovm_domain_create(ctx, NULL, &dom));
		mr = a15_implicit(dom);
		for (unsigned i = 0; i < sizeof(asks) / sizeof(asks[0]); i++) {
			struct iovm_mr_keys k;
			int ret = iovm_mr_keys(mr, (void *)asks[i][0], asks[i][1], &k);

			CHECK(ret == 0 || ret == -ERANGE);
			if (!ret && ((uintptr_t)k.addr > asks[i][0] ||
				     (uintptr_t)k.addr + k.len < asks[i][0] + asks[i][1])) {
				if (!bad[0])
					snprintf(bad, sizeof(bad),
					 "%s: iovm_mr_keys(%#lx, %#lx) = 0 with keys of [%p, +%#zx), which stops short of it",
					 specs[s] ? specs[s] : "sw", (unsigned long)asks[i][0], (unsigned long)asks[i][1],
					 k.addr, k.len);
				printf("# %s: [%#lx, +%#lx): keys of [%p, +%#zx)\n", specs[s] ? specs[s] : "sw",
				       (unsigned long)asks[i][0], (unsigned long)asks[i][1], k.addr, k.len);
			}
		}
		CHECK_OK(iovm_mr_dereg(mr));
		if (dev)
			a13_unbind(dev, dom);
		else
			CHECK_OK(iovm_domain_destroy(dom));
		a13_device_clean(c0);
	}
	if (bad[0]) {
		A15_KNOWN("fake2 (child by child): iovm_mr_keys() of the last page below 2^47, or a range running "
			  "into it, returns 0 with the top child's keys, whose range (and the device's MR) ends a "
			  "page below the request (reg.h: keys that reach the range, or -ERANGE)");
		CHECK_MSG(0, "%s", bad);
	}
}

/*
 * fake2: the bottom of user space. The kernel lets a process map memory
 * from mmap_min_addr up; an implicit MR is "the whole user address
 * space", so memory mapped in the first 64 MiB has keys that reach it.
 */
TEST(bottom_of_user_space)
{
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	struct iovm_mr_keys k;
	struct fake_ibv_counts c0;
	unsigned long min_addr = 65536;
	uintptr_t at;
	uint8_t *page;
	FILE *f = fopen("/proc/sys/vm/mmap_min_addr", "r");
	int ret;

	if (f) {
		if (fscanf(f, "%lu", &min_addr) != 1)
			min_addr = 65536;
		fclose(f);
	}
	at = (min_addr + PG - 1) & ~(uintptr_t)(PG - 1);
	if (at == 0)
		at = PG;
	page = mmap((void *)at, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (page != (void *)at) {
		if (page != MAP_FAILED)
			munmap(page, PG);
		CHECK(1);
		SKIP_CASE("cannot map a page at mmap_min_addr %#lx", (unsigned long)at);
	}
	memset(page, 0, PG);
	a13_bound(ctx, "verbs:fake2", &dev, &dom);
	mr = a15_implicit(dom);
	c0 = fake_ibv_counts();
	ret = iovm_mr_keys(mr, page + 16, 8, &k);
	if (ret) {
		CHECK_OK(iovm_mr_dereg(mr));
		a13_unbind(dev, dom);
		munmap(page, PG);
		A15_KNOWN("iovm_mr_keys() of memory mapped in the first 64 MiB of user space (at mmap_min_addr) fails: "
			  "the implicit MR does not reach the bottom child");
		CHECK_OK(ret);
	}
	CHECK((uintptr_t)k.addr <= at && (uintptr_t)k.addr + k.len >= at + PG);
	CHECK_EQ(fake_ibv_counts().live, c0.live + 1);
	CHECK_OK(fake_ibv_remote_write(k.rkey, at + 16, "low", 4));
	CHECK(!memcmp(page + 16, "low", 4));
	CHECK_OK(iovm_mr_dereg(mr));
	a13_device_clean(c0);
	a13_unbind(dev, dom);
	munmap(page, PG);
}

/* fake2: a child's keys are the same at every ask, after advice, munmap and mmap again of its memory. */
TEST(keys_stable)
{
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	struct iovm_mr_keys k0, k;
	struct fake_ibv_counts c0;
	uint8_t *buf = a13_pages(16);
	uint64_t regs;

	a13_bound(ctx, "verbs:fake2", &dev, &dom);
	mr = a15_implicit(dom);
	c0 = fake_ibv_counts();
	k0 = a15_child_keys(mr, (uintptr_t)buf, 16 * PG);
	regs = fake_ibv_counts().regs;
	for (int i = 0; i < 100; i++) {
		k = a15_child_keys(mr, (uintptr_t)buf + (uintptr_t)i * 37, 64);
		CHECK(k.lkey == k0.lkey && k.rkey == k0.rkey);
	}
	CHECK_OK(iovm_mr_advise(mr, buf, 16 * PG, IOVM_ADVISE_WRITE));
	k = a15_child_keys(mr, (uintptr_t)buf, PG);
	CHECK(k.lkey == k0.lkey && k.rkey == k0.rkey);
	/* The memory goes and comes back: the child is kept as long as the MR. */
	CHECK_OK(munmap(buf, 16 * PG));
	CHECK_OK(iovm_mr_query(mr, &(struct iovm_mr_info){ 0 }));
	k = a15_child_keys(mr, (uintptr_t)buf, PG);
	CHECK(k.lkey == k0.lkey && k.rkey == k0.rkey);
	CHECK(mmap(buf, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) ==
	      buf);
	k = a15_child_keys(mr, (uintptr_t)buf + PG, PG);
	CHECK(k.lkey == k0.lkey && k.rkey == k0.rkey);
	CHECK_OK(fake_ibv_remote_write(k.rkey, (uintptr_t)buf + PG, "new", 4));
	CHECK(!memcmp(buf + PG, "new", 4));
	CHECK_EQ(fake_ibv_counts().regs, regs);
	CHECK_EQ(a15_children(mr), 1);
	CHECK_OK(iovm_mr_dereg(mr));
	a13_device_clean(c0);
	a13_unbind(dev, dom);
	munmap(buf, 16 * PG);
}

/*
 * The parent's keys: 0 on fake2 (no key for it all, nothing on the
 * device); on fake1 the device's one implicit MR, whose keys
 * iovm_mr_keys() gives for any range of user space, across children, up
 * to the top; on iovm's own engine its one key. The same ranges outside
 * user space are refused on all three.
 */
TEST(parent_keys)
{
	static const char *const specs[] = { "verbs:fake2", "verbs:fake1", NULL };
	uint8_t *buf = a13_pages(4);

	for (unsigned s = 0; s < 3; s++) {
		struct iovm_device *dev = NULL;
		struct iovm_domain *dom;
		struct iovm_mr *mr;
		struct iovm_mr_info info;
		struct iovm_mr_keys k;
		struct fake_ibv_counts c0 = fake_ibv_counts();
		struct fake_ibv_mr fm;
		iovm_iova_t iova;

		if (specs[s])
			a13_bound(ctx, specs[s], &dev, &dom);
		else
			CHECK_OK(iovm_domain_create(ctx, NULL, &dom));
		mr = a15_implicit(dom);
		CHECK_OK(iovm_mr_query(mr, &info));
		CHECK(info.implicit && info.on_demand && info.addr == NULL && info.len == SIZE_MAX);
		CHECK_EQ(iovm_mr_iova(mr, buf, 8, &iova), -EINVAL);
		if (s == 0) {
			CHECK(info.lkey == 0 && info.rkey == 0);
			CHECK_EQ(fake_ibv_counts().live, c0.live);
		} else {
			uintptr_t spans[][2] = {
				{ (uintptr_t)buf, 4 * PG },
				{ (uintptr_t)(UINT64_C(1) << 32) - 8, 16 },       /* across a 64 MiB boundary */
				{ (uintptr_t)buf & ~(uintptr_t)(A15_CHILD - 1), 3 * A15_CHILD },
				{ A15_TOP - 8, 8 },                               /* the last bytes */
				{ PG * 16, A15_TOP - PG * 16 },                   /* nearly all of it */
			};

			CHECK(info.lkey && info.rkey && info.lkey != info.rkey);
			if (s == 1) {
				CHECK_OK(fake_ibv_find(info.lkey, &fm));
				CHECK(fm.addr == NULL && fm.len == SIZE_MAX && (fm.access & IBV_ACCESS_ON_DEMAND));
				CHECK_EQ(fm.rkey, info.rkey);
				CHECK_EQ(fake_ibv_counts().live, c0.live + 1);
			}
			for (unsigned i = 0; i < sizeof(spans) / sizeof(spans[0]); i++) {
				CHECK_OK(iovm_mr_keys(mr, (void *)spans[i][0], spans[i][1], &k));
				CHECK(k.lkey == info.lkey && k.rkey == info.rkey);
				CHECK_MSG((uintptr_t)k.addr <= spans[i][0] &&
						  (uintptr_t)k.addr + k.len >= spans[i][0] + spans[i][1],
					  "%s: keys' range [%p +%zx) does not hold [%#lx +%#lx)",
					  specs[s] ? specs[s] : "sw", k.addr, k.len, (unsigned long)spans[i][0],
					  (unsigned long)spans[i][1]);
			}
			if (s == 1)
				CHECK_EQ(fake_ibv_counts().live, c0.live + 1);
		}
		CHECK_EQ(iovm_mr_keys(mr, (void *)(UINT64_C(1) << 47), 1, &k), -ERANGE);
		CHECK_OK(iovm_mr_dereg(mr));
		CHECK_EQ(fake_ibv_counts().live, c0.live);
		if (dev) {
			a13_unbind(dev, dom);
		} else {
			CHECK_OK(iovm_domain_destroy(dom));
		}
		a13_device_clean(c0);
	}
	munmap(buf, 4 * PG);
}

/* Keys of MRs of a range, pinned and on demand, on fake2: their own, exactly their range. */
TEST(range_mrs)
{
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr[2];
	uint32_t acc[2] = { IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE, A15_ODP };
	uint8_t *buf = a13_pages(32);
	struct fake_ibv_counts c0;

	a13_bound(ctx, "verbs:fake2", &dev, &dom);
	c0 = fake_ibv_counts();
	for (int i = 0; i < 2; i++) {
		struct iovm_mr_info info;
		struct iovm_mr_keys k;
		uint64_t regs;
		int ret;

		CHECK_OK(iovm_mr_reg(dom, buf + PG, 30 * PG + 100, acc[i], &mr[i]));
		CHECK_OK(iovm_mr_query(mr[i], &info));
		regs = fake_ibv_counts().regs;
		CHECK_OK(iovm_mr_keys(mr[i], buf + PG, 30 * PG + 100, &k));
		CHECK(k.lkey == info.lkey && k.rkey == info.rkey && k.addr == buf + PG && k.len == 30 * PG + 100);
		CHECK_OK(iovm_mr_keys(mr[i], buf + 31 * PG + 99, 1, &k));
		CHECK_EQ(k.lkey, info.lkey);
		CHECK_EQ(iovm_mr_keys(mr[i], buf + 31 * PG + 100, 1, &k), -ERANGE);
		CHECK_EQ(iovm_mr_keys(mr[i], buf + PG - 1, 1, &k), -ERANGE);
		CHECK_EQ(iovm_mr_keys(mr[i], buf + PG - 1, 2, &k), -ERANGE);
		CHECK_EQ(iovm_mr_keys(mr[i], buf + PG, 30 * PG + 101, &k), -ERANGE);
		CHECK_EQ(iovm_mr_keys(mr[i], buf + PG, SIZE_MAX, &k), -ERANGE);
		ret = iovm_mr_keys(mr[i], buf + PG, 0, &k);
		CHECK_MSG(ret == 0 || ret == -EINVAL, "len 0: %d", ret);
		CHECK_EQ(fake_ibv_counts().regs, regs);
	}
	for (int i = 0; i < 2; i++)
		CHECK_OK(iovm_mr_dereg(mr[i]));
	a13_device_clean(c0);
	a13_unbind(dev, dom);
	munmap(buf, 32 * PG);
}

/* fake0 has no ODP: the implicit MR is refused, and nothing of it is left anywhere. */
TEST(fake0_refuses)
{
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr = NULL;
	struct iovm_reg_stats st0, st;
	struct fake_ibv_counts c0;

	a13_bound(ctx, "verbs:fake0", &dev, &dom);
	CHECK_OK(iovm_reg_stats(ctx, &st0));
	c0 = fake_ibv_counts();
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(iovm_mr_reg(dom, NULL, SIZE_MAX, A15_ODP, &mr), -EOPNOTSUPP);
		CHECK(*iovm_error_detail());
	}
	CHECK_OK(iovm_reg_stats(ctx, &st));
	CHECK_EQ(st.mrs, st0.mrs);
	CHECK_EQ(fake_ibv_counts().live, c0.live);
	/* Nothing holds the domain or the device: detach and destroy work. */
	a13_unbind(dev, dom);
	a13_device_clean(c0);
}

int main(void)
{
	a13_init();
	ctx = a13_ctx();
	A15_RUN(bad_arguments);
	A15_RUN(boundaries);
	A15_RUN(top_of_user_space);
	A15_RUN(beyond_top);
	A15_RUN(bottom_of_user_space);
	A15_RUN(keys_stable);
	A15_RUN(parent_keys);
	A15_RUN(range_mrs);
	A15_RUN(fake0_refuses);
	CHECK_OK(iovm_close(ctx));
	return 0;
}
