/* SPDX-License-Identifier: MIT */
/*
 * test_attack15_children.c - the children of an implicit MR on fake2 (a
 * device that pages on demand without implicit ODP, as rxe), through the
 * parent's life: asked from threads, same and different children, while
 * another thread registers and deregisters other MRs (another implicit
 * one included), runs iovm_mr_advise() over many children, or unmaps
 * memory inside a child; one registration per child whatever races; every
 * child off the device when the parent goes, also when the device
 * refuses one deregistration; refusals of a child's registration;
 * detach, device close and context close with children alive; the
 * registration cache beside an implicit MR; memory the monitor cannot
 * watch inside a child.
 */
#include <fcntl.h>
#include <sys/syscall.h>

#include "attack/attack15.h"

static struct iovm_ctx *ctx;

/* An untouched stretch of address space, reserved: @n children, aligned on a child. */
static uint8_t *reserve_children(unsigned n)
{
	size_t len = (size_t)(n + 1) * A15_CHILD;
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uintptr_t a;

	CHECK(p != MAP_FAILED);
	a = ((uintptr_t)p + A15_CHILD - 1) & ~(uintptr_t)(A15_CHILD - 1);
	if (a > (uintptr_t)p)
		munmap(p, a - (uintptr_t)p);
	if ((uintptr_t)p + len > a + (size_t)n * A15_CHILD)
		munmap((void *)(a + (size_t)n * A15_CHILD), (uintptr_t)p + len - (a + (size_t)n * A15_CHILD));
	return (uint8_t *)a;
}

/* Every child of [base, base + n children) has one live device MR, the one its keys name now. */
static void children_on_device(struct iovm_mr *mr, const uint8_t *base, unsigned n, const uint32_t *lkeys)
{
	for (unsigned i = 0; i < n; i++) {
		struct iovm_mr_keys k = a15_child_keys(mr, (uintptr_t)base + (uintptr_t)i * A15_CHILD + 64, 64);

		if (lkeys)
			CHECK_EQ(k.lkey, lkeys[i]);
	}
}

/* ---- keys from threads while other MRs come and go ---- */

#define NTHREADS 4
#define NCHILD 12

struct asker {
	struct iovm_mr *mr;
	uint8_t *base;
	unsigned id, rounds;
	uint32_t lkey[NCHILD], rkey[NCHILD];
	int bad;
	char why[160];
};

static void *ask_keys(void *arg)
{
	struct asker *a = arg;
	uint64_t rng = 0x9e3779b97f4a7c15ull * (a->id + 1);

	for (unsigned r = 0; r < a->rounds && !a->bad; r++) {
		/* Half the asks go to children every thread asks, half to the thread's own. */
		unsigned c = (r & 1) ? (unsigned)(test_rand(&rng) % 4) : 4 + (a->id * 2 + (r >> 1)) % (NCHILD - 4);
		uintptr_t off = (uintptr_t)(test_rand(&rng) % (A15_CHILD - 256));
		struct iovm_mr_keys k;
		int ret = iovm_mr_keys(a->mr, a->base + (uintptr_t)c * A15_CHILD + off, 256, &k);

		if (ret) {
			a->bad = 1;
			snprintf(a->why, sizeof(a->why), "thread %u child %u: %d (%s)", a->id, c, ret, iovm_error_detail());
		} else if ((uint8_t *)k.addr != a->base + (uintptr_t)c * A15_CHILD || k.len != A15_CHILD) {
			a->bad = 1;
			snprintf(a->why, sizeof(a->why), "thread %u child %u: range %p +%zx", a->id, c, k.addr, k.len);
		} else if (a->lkey[c] && (a->lkey[c] != k.lkey || a->rkey[c] != k.rkey)) {
			a->bad = 1;
			snprintf(a->why, sizeof(a->why), "thread %u child %u: keys changed %u -> %u", a->id, c, a->lkey[c],
				 k.lkey);
		} else {
			a->lkey[c] = k.lkey;
			a->rkey[c] = k.rkey;
		}
	}
	return NULL;
}

struct churner {
	struct iovm_domain *dom;
	uint8_t *buf;
	unsigned rounds;
	int ret;
};

/* Registers and deregisters other MRs: pinned, on demand, and an implicit one with a child. */
static void *churn(void *arg)
{
	struct churner *c = arg;

	for (unsigned r = 0; r < c->rounds && !c->ret; r++) {
		struct iovm_mr *o;
		struct iovm_mr_keys k;
		uint32_t acc = (r % 3 == 0) ? IOVM_ACCESS_LOCAL_WRITE : A15_ODP;
		int ret;

		if (r % 3 == 2) {
			ret = iovm_mr_reg(c->dom, NULL, SIZE_MAX, A15_ODP, &o);
			if (!ret)
				ret = iovm_mr_keys(o, c->buf, PG, &k);
		} else {
			ret = iovm_mr_reg(c->dom, c->buf, 8 * PG, acc, &o);
		}
		if (ret) {
			c->ret = ret;
			break;
		}
		c->ret = iovm_mr_dereg(o);
	}
	return NULL;
}

TEST(threads_while_other_mrs_go)
{
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	struct fake_ibv_counts c0;
	struct asker a[NTHREADS];
	struct churner ch;
	pthread_t t[NTHREADS], tc;
	uint8_t *base = reserve_children(NCHILD);
	uint8_t *other = a13_pages(8);
	uint32_t lkeys[NCHILD] = { 0 };
	uint64_t regs0;

	a13_bound(ctx, "verbs:fake2", &dev, &dom);
	mr = a15_implicit(dom);
	c0 = fake_ibv_counts();
	regs0 = c0.regs;
	fake_ibv_set_reg_delay(100); /* widen the window of each child's registration */
	ch = (struct churner){ .dom = dom, .buf = other, .rounds = 30 };
	CHECK_OK(pthread_create(&tc, NULL, churn, &ch));
	for (unsigned i = 0; i < NTHREADS; i++) {
		a[i] = (struct asker){ .mr = mr, .base = base, .id = i, .rounds = 400 };
		CHECK_OK(pthread_create(&t[i], NULL, ask_keys, &a[i]));
	}
	for (unsigned i = 0; i < NTHREADS; i++)
		CHECK_OK(pthread_join(t[i], NULL));
	CHECK_OK(pthread_join(tc, NULL));
	fake_ibv_set_reg_delay(0);
	CHECK_MSG(!ch.ret, "the other MRs: %d", ch.ret);
	for (unsigned i = 0; i < NTHREADS; i++) {
		CHECK_MSG(!a[i].bad, "%s", a[i].why);
		for (unsigned c = 0; c < NCHILD; c++) {
			if (!a[i].lkey[c])
				continue;
			if (!lkeys[c])
				lkeys[c] = a[i].lkey[c];
			CHECK_MSG(lkeys[c] == a[i].lkey[c], "child %u: threads got keys %u and %u", c, lkeys[c],
				  a[i].lkey[c]);
		}
	}
	/* One registration per child, each still live, whatever raced; the other MRs all gone. */
	children_on_device(mr, base, NCHILD, NULL);
	for (unsigned c = 0; c < NCHILD; c++)
		if (lkeys[c])
			CHECK_EQ(a15_child_keys(mr, (uintptr_t)base + (uintptr_t)c * A15_CHILD, 1).lkey, lkeys[c]);
	CHECK_EQ(a15_children(mr), NCHILD);
	CHECK_EQ(fake_ibv_counts().live, c0.live + NCHILD);
	/* The churner's 30 rounds: 10 pinned, 10 on demand, 10 implicit with one child. */
	CHECK_EQ(fake_ibv_counts().regs - regs0, NCHILD + 30);
	a13_device_sane(c0);
	CHECK_OK(iovm_mr_dereg(mr));
	a13_device_clean(c0);
	CHECK_EQ(fake_ibv_counts().deregs - c0.deregs, NCHILD + 30);
	a13_unbind(dev, dom);
	munmap(base, (size_t)NCHILD * A15_CHILD);
	munmap(other, 8 * PG);
}

/* ---- keys from threads while advice runs over many children ---- */

struct adviser {
	struct iovm_mr *mr;
	uint8_t *base;
	unsigned rounds;
	int ret;
	char why[160];
};

static void *advise_many(void *arg)
{
	struct adviser *v = arg;

	for (unsigned r = 0; r < v->rounds && !v->ret; r++) {
		unsigned c = 1 + r % (NCHILD - 1);
		/* Two pages each side of a boundary: two children in one call. */
		uint8_t *at = v->base + (uintptr_t)c * A15_CHILD - 2 * PG;
		int ret = iovm_mr_advise(v->mr, at, 4 * PG, (r & 1) ? IOVM_ADVISE_WRITE : 0);

		if (ret) {
			v->ret = ret;
			snprintf(v->why, sizeof(v->why), "advise at child %u: %d (%s)", c, ret, iovm_error_detail());
		}
	}
	return NULL;
}

TEST(threads_while_advice_runs)
{
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	struct fake_ibv_counts c0;
	struct asker a[NTHREADS];
	struct adviser v;
	pthread_t t[NTHREADS], tv;
	uint8_t *base = reserve_children(NCHILD);
	uint64_t advises0;

	a13_bound(ctx, "verbs:fake2", &dev, &dom);
	mr = a15_implicit(dom);
	c0 = fake_ibv_counts();
	advises0 = c0.advises;
	fake_ibv_set_reg_delay(100);
	v = (struct adviser){ .mr = mr, .base = base, .rounds = 60 };
	CHECK_OK(pthread_create(&tv, NULL, advise_many, &v));
	for (unsigned i = 0; i < NTHREADS; i++) {
		a[i] = (struct asker){ .mr = mr, .base = base, .id = i, .rounds = 300 };
		CHECK_OK(pthread_create(&t[i], NULL, ask_keys, &a[i]));
	}
	for (unsigned i = 0; i < NTHREADS; i++)
		CHECK_OK(pthread_join(t[i], NULL));
	CHECK_OK(pthread_join(tv, NULL));
	fake_ibv_set_reg_delay(0);
	CHECK_MSG(!v.ret, "%s", v.why);
	for (unsigned i = 0; i < NTHREADS; i++)
		CHECK_MSG(!a[i].bad, "%s", a[i].why);
	/* Advice went to the device, each side of each boundary: 4 pages a call. */
	CHECK(fake_ibv_counts().advises - advises0 >= 60);
	CHECK_EQ(fake_ibv_counts().advised_bytes - c0.advised_bytes, 60 * 4 * PG);
	/* Every child made once, by whichever came first. */
	children_on_device(mr, base, NCHILD, NULL);
	CHECK_EQ(a15_children(mr), NCHILD);
	CHECK_EQ(fake_ibv_counts().live, c0.live + NCHILD);
	CHECK_EQ(fake_ibv_counts().regs - c0.regs, NCHILD);
	/* The last advice named the child that holds its end. */
	{
		uint8_t *end = base + (uintptr_t)(1 + 59 % (NCHILD - 1)) * A15_CHILD;
		struct fake_ibv_advice last = fake_ibv_last_advice();
		struct iovm_mr_keys k = a15_child_keys(mr, (uintptr_t)end, 1);
		struct iovm_mr_keys kl = a15_child_keys(mr, (uintptr_t)end - 1, 1);

		CHECK(last.lkey == k.lkey || last.lkey == kl.lkey);
	}
	CHECK_OK(iovm_mr_dereg(mr));
	a13_device_clean(c0);
	a13_unbind(dev, dom);
	munmap(base, (size_t)NCHILD * A15_CHILD);
}

/* ---- keys from threads while the monitor invalidates memory inside a child ---- */

struct unmapper {
	uint8_t *at;
	unsigned rounds;
	int ret;
};

static void *unmap_remap(void *arg)
{
	struct unmapper *u = arg;

	for (unsigned r = 0; r < u->rounds && !u->ret; r++) {
		memset(u->at, (int)r, 16 * PG);
		switch (r % 3) {
		case 0:
			if (munmap(u->at, 16 * PG) ||
			    mmap(u->at, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) !=
				    u->at)
				u->ret = -errno;
			break;
		case 1:
			if (madvise(u->at, 16 * PG, MADV_DONTNEED))
				u->ret = -errno;
			break;
		default:
			if (mmap(u->at + 4 * PG, 4 * PG, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != u->at + 4 * PG)
				u->ret = -errno;
			break;
		}
	}
	return NULL;
}

TEST(threads_while_monitor_invalidates)
{
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	struct fake_ibv_counts c0;
	struct asker a[NTHREADS];
	struct unmapper u;
	struct iovm_reg_stats st0, st;
	pthread_t t[NTHREADS], tu;
	uint8_t *base = reserve_children(NCHILD);
	uint32_t lkeys[NCHILD];

	a13_bound(ctx, "verbs:fake2", &dev, &dom);
	mr = a15_implicit(dom);
	c0 = fake_ibv_counts();
	/* Every child first, and its memory faulted in through advice. */
	for (unsigned c = 0; c < NCHILD; c++)
		lkeys[c] = a15_child_keys(mr, (uintptr_t)base + (uintptr_t)c * A15_CHILD, PG).lkey;
	CHECK_OK(iovm_mr_advise(mr, base + 3 * A15_CHILD, 64 * PG, IOVM_ADVISE_WRITE));
	CHECK_OK(iovm_reg_stats(ctx, &st0));
	u = (struct unmapper){ .at = base + 3 * A15_CHILD + 8 * PG, .rounds = 60 };
	CHECK_OK(pthread_create(&tu, NULL, unmap_remap, &u));
	for (unsigned i = 0; i < NTHREADS; i++) {
		a[i] = (struct asker){ .mr = mr, .base = base, .id = i, .rounds = 300 };
		memcpy(a[i].lkey, lkeys, sizeof(lkeys));
		for (unsigned c = 0; c < NCHILD; c++)
			a[i].rkey[c] = a15_child_keys(mr, (uintptr_t)base + (uintptr_t)c * A15_CHILD, 1).rkey;
		CHECK_OK(pthread_create(&t[i], NULL, ask_keys, &a[i]));
	}
	for (unsigned i = 0; i < NTHREADS; i++)
		CHECK_OK(pthread_join(t[i], NULL));
	CHECK_OK(pthread_join(tu, NULL));
	CHECK_MSG(!u.ret, "unmapper: %d", u.ret);
	for (unsigned i = 0; i < NTHREADS; i++)
		CHECK_MSG(!a[i].bad, "%s", a[i].why);
	/* The monitor saw the memory go; the children stayed, with the same keys, none registered again. */
	CHECK_OK(iovm_mr_query(mr, &(struct iovm_mr_info){ 0 }));
	CHECK_OK(iovm_reg_stats(ctx, &st));
	printf("# monitor %d: events unmap %lu -> %lu, remove %lu -> %lu, remap %lu -> %lu, invalidated pages %lu -> %lu\n",
	       st.monitor, (unsigned long)st0.events_unmap, (unsigned long)st.events_unmap,
	       (unsigned long)st0.events_remove, (unsigned long)st.events_remove, (unsigned long)st0.events_remap,
	       (unsigned long)st.events_remap, (unsigned long)st0.invalidated_pages, (unsigned long)st.invalidated_pages);
	children_on_device(mr, base, NCHILD, lkeys);
	CHECK_EQ(fake_ibv_counts().regs, c0.regs + NCHILD);
	CHECK_EQ(fake_ibv_counts().live, c0.live + NCHILD);
	/* A device write through the child lands in the memory there now. */
	CHECK_OK(fake_ibv_remote_write(a[0].rkey[3], (uintptr_t)u.at + 5 * PG, "now", 4));
	CHECK(!memcmp(u.at + 5 * PG, "now", 4));
	CHECK_OK(iovm_mr_dereg(mr));
	a13_device_clean(c0);
	a13_unbind(dev, dom);
	munmap(base, (size_t)NCHILD * A15_CHILD);
}

/* ---- the parent's end ---- */

/* Forty children: all off the device when the parent goes, each once. */
TEST(parent_takes_children)
{
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	struct fake_ibv_counts c0;
	uint32_t lkeys[40];
	struct fake_ibv_mr fm;

	a13_bound(ctx, "verbs:fake2", &dev, &dom);
	mr = a15_implicit(dom);
	c0 = fake_ibv_counts();
	for (unsigned i = 0; i < 40; i++)
		lkeys[i] = a15_child_keys(mr, (uintptr_t)(UINT64_C(1) << 40) + (uintptr_t)i * 7 * A15_CHILD + 3, 9).lkey;
	CHECK_EQ(a15_children(mr), 40);
	CHECK_EQ(fake_ibv_counts().live, c0.live + 40);
	CHECK_OK(iovm_mr_dereg(mr));
	a13_device_clean(c0);
	CHECK_EQ(fake_ibv_counts().deregs, c0.deregs + 40);
	for (unsigned i = 0; i < 40; i++)
		CHECK_EQ(fake_ibv_find(lkeys[i], &fm), -ENOENT);
	a13_unbind(dev, dom);
}

/*
 * A device that refuses one child's deregistration (rdma-core's EBUSY):
 * iovm_mr_dereg() fails with its error and leaves the MR whole (dev.h);
 * then, asked again, it goes, all of it.
 */
TEST(parent_dereg_refused)
{
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	struct fake_ibv_counts c0;
	uint8_t *base = reserve_children(4);
	uint32_t lkeys[4];
	int ret;

	a13_bound(ctx, "verbs:fake2", &dev, &dom);
	mr = a15_implicit(dom);
	c0 = fake_ibv_counts();
	for (unsigned i = 0; i < 4; i++)
		lkeys[i] = a15_child_keys(mr, (uintptr_t)base + (uintptr_t)i * A15_CHILD, PG).lkey;
	fake_ibv_fail_next_dereg(EBUSY);
	ret = iovm_mr_dereg(mr);
	if (ret == 0) {
		struct fake_ibv_counts c = fake_ibv_counts();

		printf("# dereg refused once: iovm_mr_dereg() 0; %lld of 4 children still on the device, "
		       "%llu deregs failed, %llu deregs asked\n", (long long)(c.live - c0.live),
		       (unsigned long long)(c.failed_deregs - c0.failed_deregs), (unsigned long long)(c.deregs - c0.deregs));
		a13_device_sane(c0);
		A15_KNOWN("iovm_mr_dereg() of an implicit MR returns 0 when the device refuses a child's "
			  "deregistration (dev.h: fails with its error, the MR whole)");
	}
	CHECK_EQ(ret, -EBUSY);
	/* Whole: the same four children, the same keys, on the device. */
	CHECK_EQ(a15_children(mr), 4);
	children_on_device(mr, base, 4, lkeys);
	CHECK_EQ(fake_ibv_counts().live, c0.live + 4);
	CHECK_OK(iovm_mr_dereg(mr));
	a13_device_clean(c0);
	a13_unbind(dev, dom);
	munmap(base, 4 * A15_CHILD);
}

/* Each deregistration of the MR whose lkey is *arg is refused, as while a memory window is bound. */
static void refuse_dereg(const struct fake_ibv_mr *m, void *arg)
{
	if (m->lkey == *(uint32_t *)arg)
		fake_ibv_fail_next_dereg(EBUSY);
}

/*
 * A child whose deregistration the device keeps refusing (a memory window
 * bound to it): iovm_mr_dereg() of the parent must fail with the error,
 * not return 0 and leave the child on the device with nothing of iovm's
 * holding it. dev.h: the children go in address order; the one refused
 * and those after it stay, with their keys; those before are gone, made
 * anew with new keys when asked.
 */
TEST(parent_dereg_refused_always)
{
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	struct fake_ibv_counts c0, c;
	uint8_t *base = reserve_children(3);
	uint32_t lkeys[3], victim;
	int ret;

	a13_bound(ctx, "verbs:fake2", &dev, &dom);
	mr = a15_implicit(dom);
	c0 = fake_ibv_counts();
	for (unsigned i = 0; i < 3; i++)
		lkeys[i] = a15_child_keys(mr, (uintptr_t)base + (uintptr_t)i * A15_CHILD, PG).lkey;
	victim = lkeys[1];
	fake_ibv_on_dereg(refuse_dereg, &victim);
	ret = iovm_mr_dereg(mr);
	c = fake_ibv_counts();
	if (ret == 0) {
		/* Let the device go: the refused child goes with its protection domain. */
		fake_ibv_on_dereg(NULL, NULL);
		printf("# dereg always refused for one child: iovm_mr_dereg() 0; %lld children left on the device\n",
		       (long long)(c.live - c0.live));
		a13_unbind(dev, dom);
		munmap(base, 3 * A15_CHILD);
		A15_KNOWN("iovm_mr_dereg() of an implicit MR returns 0 when the device keeps refusing a child's "
			  "deregistration: the child stays registered on the device, the MR is gone from iovm "
			  "(dev.h: iovm_mr_dereg() fails with the device's error, the MR whole)");
		CHECK_EQ(ret, -EBUSY);
	}
	CHECK_EQ(ret, -EBUSY);
	/* The first went; the victim and the one after it stay, keys and all. */
	CHECK_EQ(c.live, c0.live + 2);
	fake_ibv_on_dereg(NULL, NULL);
	CHECK_EQ(a15_children(mr), 2);
	children_on_device(mr, base + A15_CHILD, 2, lkeys + 1);
	{
		struct fake_ibv_mr fm;

		CHECK_EQ(fake_ibv_find(lkeys[0], &fm), -ENOENT);
		/* Asked again, the first is made anew. */
		CHECK(a15_child_keys(mr, (uintptr_t)base + 64, 64).lkey != lkeys[0]);
		CHECK_EQ(a15_children(mr), 3);
	}
	CHECK_OK(iovm_mr_dereg(mr));
	a13_device_clean(c0);
	a13_unbind(dev, dom);
	munmap(base, 3 * A15_CHILD);
}

/* A device that refuses a child's registration, by keys and by advice: no child, then one. */
TEST(child_refused_then_made)
{
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	struct iovm_mr_keys k;
	struct fake_ibv_counts c0;
	uint8_t *base = reserve_children(3);
	static const int errs[] = { ENOMEM, EFAULT, EPERM, EAGAIN };
	int ret;

	a13_bound(ctx, "verbs:fake2", &dev, &dom);
	mr = a15_implicit(dom);
	c0 = fake_ibv_counts();
	for (unsigned i = 0; i < 4; i++) {
		fake_ibv_fail_next_reg(errs[i]);
		ret = iovm_mr_keys(mr, base + 10, 8, &k);
		CHECK_MSG(ret < 0, "refused with %d: %d", errs[i], ret);
		CHECK_EQ(a15_children(mr), 0);
		CHECK_EQ(fake_ibv_counts().live, c0.live);
	}
	k = a15_child_keys(mr, (uintptr_t)base + 10, 8);
	CHECK_EQ(a15_children(mr), 1);
	/* By advice: refused (an error, or a hint that returns 0), no child; then made. */
	memset(base + A15_CHILD, 1, 2 * PG);
	fake_ibv_fail_next_reg(ENOMEM);
	ret = iovm_mr_advise(mr, base + A15_CHILD, 2 * PG, 0);
	CHECK_MSG(ret == 0 || ret == -ENOMEM, "advise refused: %d", ret);
	CHECK_EQ(a15_children(mr), 1);
	CHECK_EQ(fake_ibv_counts().live, c0.live + 1);
	CHECK_OK(iovm_mr_advise(mr, base + A15_CHILD, 2 * PG, 0));
	CHECK_EQ(a15_children(mr), 2);
	CHECK_EQ(fake_ibv_last_advice().lkey, a15_child_keys(mr, (uintptr_t)base + A15_CHILD, 1).lkey);
	CHECK_OK(iovm_mr_dereg(mr));
	a13_device_clean(c0);
	a13_unbind(dev, dom);
	munmap(base, 3 * A15_CHILD);
}

struct same_child {
	struct iovm_mr *mr;
	uint8_t *at;
	struct iovm_mr_keys k;
	int ret;
};

static void *ask_same(void *arg)
{
	struct same_child *a = arg;

	a->ret = iovm_mr_keys(a->mr, a->at, 64, &a->k);
	return NULL;
}

/*
 * Four threads ask one new child while the device refuses its first
 * registration: each gets the refusal or the child's one set of keys,
 * never another; the device holds at most one MR for it, the one named.
 */
TEST(threads_on_a_refused_child)
{
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	struct fake_ibv_counts c0;
	uint8_t *base = reserve_children(2);

	a13_bound(ctx, "verbs:fake2", &dev, &dom);
	mr = a15_implicit(dom);
	c0 = fake_ibv_counts();
	for (unsigned round = 0; round < 4; round++) {
		struct same_child a[4];
		pthread_t t[4];
		uint32_t lkey = 0;
		unsigned ok = 0;
		uint8_t *child = base + (uintptr_t)(round & 1) * A15_CHILD;

		if (round >= 2) {
			/* A second go at the same two children: they exist now, or are made now. */
			fake_ibv_set_reg_delay(0);
		} else {
			fake_ibv_set_reg_delay(2000);
			fake_ibv_fail_next_reg(ENOMEM);
		}
		for (unsigned i = 0; i < 4; i++) {
			a[i] = (struct same_child){ .mr = mr, .at = child + (uintptr_t)i * 4096 };
			CHECK_OK(pthread_create(&t[i], NULL, ask_same, &a[i]));
		}
		for (unsigned i = 0; i < 4; i++)
			CHECK_OK(pthread_join(t[i], NULL));
		fake_ibv_set_reg_delay(0);
		for (unsigned i = 0; i < 4; i++) {
			CHECK_MSG(a[i].ret == 0 || a[i].ret == -ENOMEM, "round %u thread %u: %d", round, i, a[i].ret);
			if (a[i].ret)
				continue;
			ok++;
			if (!lkey)
				lkey = a[i].k.lkey;
			CHECK_EQ(a[i].k.lkey, lkey);
			CHECK((uint8_t *)a[i].k.addr == child && a[i].k.len == A15_CHILD);
		}
		if (round < 2)
			CHECK_MSG(ok < 4, "round %u: the refusal reached no thread", round);
		else
			CHECK_EQ(ok, 4);
		if (ok)
			CHECK_EQ(a15_child_keys(mr, (uintptr_t)child, 1).lkey, lkey);
	}
	CHECK_EQ(a15_children(mr), 2);
	CHECK_EQ(fake_ibv_counts().live, c0.live + 2);
	CHECK_OK(iovm_mr_dereg(mr));
	a13_device_clean(c0);
	a13_unbind(dev, dom);
	munmap(base, 2 * A15_CHILD);
}

/* ---- the device and the context going with children alive ---- */

/* Detach is -EBUSY while the implicit MR lives, with no child or with some; after it goes, fine. */
TEST(detach_busy)
{
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	struct fake_ibv_counts c0;
	uint8_t *buf = a13_pages(2);

	a13_bound(ctx, "verbs:fake2", &dev, &dom);
	c0 = fake_ibv_counts();
	mr = a15_implicit(dom);
	CHECK_EQ(iovm_device_detach(dev, IOVM_PASID_NONE), -EBUSY);
	a15_child_keys(mr, (uintptr_t)buf, 8);
	CHECK_EQ(iovm_device_detach(dev, IOVM_PASID_NONE), -EBUSY);
	CHECK_EQ(iovm_domain_destroy(dom), -EBUSY);
	/* Still whole. */
	a15_child_keys(mr, (uintptr_t)buf, 8);
	CHECK_EQ(fake_ibv_counts().live, c0.live + 1);
	CHECK_OK(iovm_mr_dereg(mr));
	a13_device_clean(c0);
	a13_unbind(dev, dom);
	munmap(buf, 2 * PG);
}

/*
 * Closing the device with an implicit MR and children alive deregisters
 * them from the device first; the MR stays iovm's alone: no later call on
 * it reaches the closed device (no registration on its protection domain,
 * no deregistration), and it goes cleanly.
 */
TEST(close_with_children)
{
	static const char *const specs[] = { "verbs:fake2", "verbs:fake1" };

	for (unsigned s = 0; s < 2; s++) {
		struct iovm_device *dev;
		struct iovm_domain *dom;
		struct iovm_mr *mr;
		struct iovm_mr_keys k;
		struct iovm_mr_info info;
		struct fake_ibv_counts c0 = fake_ibv_counts();
		uint8_t *base = reserve_children(3);
		int ret;

		a13_bound(ctx, specs[s], &dev, &dom);
		mr = a15_implicit(dom);
		for (unsigned i = 0; i < 2; i++)
			CHECK_OK(iovm_mr_keys(mr, base + (uintptr_t)i * A15_CHILD, PG, &k));
		CHECK(fake_ibv_counts().live > c0.live);
		CHECK_OK(iovm_device_close(dev));
		a13_device_clean(c0);
		CHECK_EQ(fake_ibv_counts().contexts, c0.contexts);
		CHECK_EQ(fake_ibv_counts().pds, c0.pds);
		/* iovm's alone: keys of a child made before, and of a new one, reach nothing of the device's. */
		CHECK_OK(iovm_mr_query(mr, &info));
		CHECK(info.implicit);
		for (unsigned i = 0; i < 3; i++) {
			ret = iovm_mr_keys(mr, base + (uintptr_t)i * A15_CHILD, PG, &k);
			printf("# %s closed: keys of child %u: %d (lkey %u, parent's %u)\n", specs[s], i, ret,
			       ret ? 0 : k.lkey, info.lkey);
			if (!ret)
				CHECK_EQ(fake_ibv_find(k.lkey, &(struct fake_ibv_mr){ 0 }), -ENOENT);
		}
		memset(base, 7, PG);
		ret = iovm_mr_advise(mr, base, PG, IOVM_ADVISE_WRITE);
		CHECK_MSG(ret == 0 || ret < 0, "%d", ret);
		a13_device_clean(c0);
		CHECK_EQ(fake_ibv_counts().regs_after_close, c0.regs_after_close);
		CHECK_OK(iovm_mr_dereg(mr));
		a13_device_clean(c0);
		CHECK_OK(iovm_domain_destroy(dom));
		munmap(base, 3 * A15_CHILD);
	}
}

/* Closing the context with an implicit MR, children and a cache alive: the device holds nothing after. */
TEST(context_close_with_children)
{
	struct iovm_ctx *c;
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr, *cached, *odp;
	struct iovm_rcache *cache;
	struct fake_ibv_counts c0 = fake_ibv_counts();
	uint8_t *base = reserve_children(3);
	uint8_t *buf = a13_pages(8);

	CHECK_OK(iovm_open("log_level=error", &c));
	a13_bound(c, "verbs:fake2", &dev, &dom);
	mr = a15_implicit(dom);
	for (unsigned i = 0; i < 3; i++)
		a15_child_keys(mr, (uintptr_t)base + (uintptr_t)i * A15_CHILD, PG);
	CHECK_OK(iovm_mr_advise(mr, buf, 8 * PG, IOVM_ADVISE_WRITE));
	CHECK_OK(iovm_rcache_create(dom, NULL, &cache));
	CHECK_OK(iovm_rcache_get(cache, buf, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &cached));
	CHECK_OK(iovm_rcache_put(cache, cached));
	CHECK_OK(iovm_mr_reg(dom, buf, 8 * PG, A15_ODP, &odp));
	CHECK(fake_ibv_counts().live >= c0.live + 5);
	CHECK_OK(iovm_close(c));
	a13_device_clean(c0);
	CHECK_EQ(fake_ibv_counts().contexts, c0.contexts);
	CHECK_EQ(fake_ibv_counts().pds, c0.pds);
	munmap(base, 3 * A15_CHILD);
	munmap(buf, 8 * PG);
}

/*
 * The registration cache beside an implicit MR on fake2: a region inside
 * a child is its own device MR with its own keys; replacing its memory
 * invalidates the region, not the child; destroying the cache leaves the
 * children.
 */
TEST(cache_beside_implicit)
{
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr, *r1, *r2;
	struct iovm_rcache *cache;
	struct iovm_rcache_stats cs;
	struct iovm_mr_info info;
	struct iovm_mr_keys ck, k;
	struct fake_ibv_counts c0;
	uint8_t *buf = a13_pages(16);
	struct fake_ibv_mr fm;

	a13_bound(ctx, "verbs:fake2", &dev, &dom);
	c0 = fake_ibv_counts();
	mr = a15_implicit(dom);
	CHECK_OK(iovm_rcache_create(dom, NULL, &cache));
	ck = a15_child_keys(mr, (uintptr_t)buf, 16 * PG);
	CHECK_OK(iovm_rcache_get(cache, buf, 8 * PG, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE, &r1));
	fm = a13_dev_mr(r1, a13_pd(dev));
	CHECK(!(fm.access & IBV_ACCESS_ON_DEMAND) && fm.resident);
	CHECK_OK(iovm_mr_query(r1, &info));
	CHECK(info.lkey != ck.lkey && info.lkey != 0);
	CHECK_OK(iovm_mr_keys(r1, buf + PG, PG, &k));
	CHECK(k.lkey == info.lkey && k.addr == buf && k.len == 8 * PG);
	CHECK_OK(iovm_rcache_put(cache, r1));
	/* Replace part of the region's memory: the region is no hit any more; the child stays. */
	CHECK(mmap(buf + 2 * PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
	      buf + 2 * PG);
	CHECK_OK(iovm_rcache_get(cache, buf, 8 * PG, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE, &r2));
	CHECK_OK(iovm_rcache_stats(cache, &cs));
	CHECK_EQ(cs.hits, 0);
	CHECK_EQ(cs.misses, 2);
	k = a15_child_keys(mr, (uintptr_t)buf + 2 * PG, 8);
	CHECK(k.lkey == ck.lkey && k.rkey == ck.rkey);
	CHECK_OK(fake_ibv_remote_write(ck.rkey, (uintptr_t)buf + 2 * PG, "kid", 4));
	CHECK(!memcmp(buf + 2 * PG, "kid", 4));
	CHECK_OK(iovm_rcache_put(cache, r2));
	CHECK_OK(iovm_rcache_destroy(cache));
	CHECK_EQ(fake_ibv_counts().live, c0.live + 1);
	CHECK_OK(fake_ibv_find(ck.lkey, &fm));
	CHECK_OK(iovm_mr_dereg(mr));
	a13_device_clean(c0);
	a13_unbind(dev, dom);
	munmap(buf, 16 * PG);
}

/*
 * reg.h: memory the monitor does not watch (a file's mappings, shared
 * memory) is not reachable through an implicit MR on iovm's own devices;
 * a verbs device pages by itself and reaches any memory mapped there, the
 * kernel keeping it current. On fake2 a shared memfd mapped inside a
 * child is reached through the child's rkey.
 */
TEST(unmonitored_inside_child)
{
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	struct iovm_mr_keys k;
	struct fake_ibv_counts c0;
	uint8_t *base = reserve_children(1);
	int fd = (int)syscall(SYS_memfd_create, "a15", 0);
	uint8_t *shm;
	int ret, wr;

	CHECK(fd >= 0);
	CHECK_OK(ftruncate(fd, 4 * PG));
	shm = mmap(base + 16 * PG, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	CHECK(shm == base + 16 * PG);
	memset(shm, 0, 4 * PG);
	a13_bound(ctx, "verbs:fake2", &dev, &dom);
	mr = a15_implicit(dom);
	c0 = fake_ibv_counts();
	ret = iovm_mr_keys(mr, shm, PG, &k);
	CHECK(ret == 0 || ret < 0);
	wr = ret ? -1 : fake_ibv_remote_write(k.rkey, (uintptr_t)shm + 8, "shm", 4);
	printf("# keys of a shared memfd inside a child: %d; a device write through them: %d\n", ret, wr);
	CHECK_OK(ret);
	CHECK_OK(wr);
	CHECK(!memcmp(shm + 8, "shm", 4));
	CHECK_OK(iovm_mr_dereg(mr));
	a13_device_clean(c0);
	a13_unbind(dev, dom);
	munmap(base, A15_CHILD);
	close(fd);
}

int main(void)
{
	a13_init();
	ctx = a13_ctx();
	A15_RUN(threads_while_other_mrs_go);
	A15_RUN(threads_while_advice_runs);
	A15_RUN(threads_while_monitor_invalidates);
	A15_RUN(parent_takes_children);
	A15_RUN(parent_dereg_refused);
	A15_RUN(parent_dereg_refused_always);
	A15_RUN(child_refused_then_made);
	A15_RUN(threads_on_a_refused_child);
	A15_RUN(detach_busy);
	A15_RUN(close_with_children);
	A15_RUN(context_close_with_children);
	A15_RUN(cache_beside_implicit);
	A15_RUN(unmonitored_inside_child);
	CHECK_OK(iovm_close(ctx));
	return 0;
}
