/* SPDX-License-Identifier: MIT */
/*
 * test_attack13_paths.c - every way a verbs domain's MR can go, against
 * what the device (the stand-in libibverbs) holds: deregistration, a
 * failed device deregistration, device close with MRs, a cache and held
 * gets alive, context close, detach and reattach, a second device,
 * refused opens, cache eviction under max_regions and max_bytes, memory
 * replaced under the cache (munmap, mmap MAP_FIXED, mremap both ways,
 * MADV_DONTNEED_LOCKED, free() and malloc()), and fork. Each MR is the
 * device's with exactly its range and rights; none is leaked, none
 * deregistered twice or after its device closed, and the device lets go
 * of one before its memory is unlocked.
 */
#include <malloc.h>

#include "attack/attack13.h"

static struct iovm_ctx *ctx;

/* Overlapping MRs: each the device's own, exact, and each goes alone. */
TEST(overlap_exact)
{
	static const uint32_t rights[] = {
		0,
		IOVM_ACCESS_LOCAL_WRITE,
		IOVM_ACCESS_REMOTE_READ,
		IOVM_ACCESS_REMOTE_WRITE,
		IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_READ | IOVM_ACCESS_REMOTE_WRITE,
		IOVM_ACCESS_REMOTE_READ | IOVM_ACCESS_REMOTE_WRITE,
	};
	enum { N = sizeof(rights) / sizeof(rights[0]) };
	struct fake_ibv_counts c0 = fake_ibv_counts();
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr[N];
	struct fake_ibv_mr fm[N];
	uint8_t *buf = a13_pages(40);
	void *pd;

	a13_bound(ctx, "verbs:fake0", &dev, &dom);
	pd = a13_pd(dev);
	for (int i = 0; i < N; i++) {
		/* All overlap [buf+8 pages, buf+9 pages); odd starts and lengths. */
		uint8_t *a = buf + (size_t)i * 1000 + 3;
		size_t len = 8 * PG + (size_t)i * 4097 + 11;
		iovm_iova_t iova;

		CHECK_OK(iovm_mr_reg(dom, a, len, rights[i], &mr[i]));
		fm[i] = a13_dev_mr(mr[i], pd);
		CHECK(fm[i].addr == a);
		CHECK_EQ(fm[i].len, len);
		CHECK(fm[i].resident); /* pinned before the device was asked */
		CHECK_EQ(!!(fm[i].access & IBV_ACCESS_REMOTE_READ), !!(rights[i] & IOVM_ACCESS_REMOTE_READ));
		CHECK_EQ(!!(fm[i].access & IBV_ACCESS_REMOTE_WRITE), !!(rights[i] & IOVM_ACCESS_REMOTE_WRITE));
		CHECK_EQ(!!(fm[i].access & IBV_ACCESS_LOCAL_WRITE),
			 !!(rights[i] & (IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE)));
		CHECK_EQ(fm[i].access & IBV_ACCESS_ON_DEMAND, 0);
		/* The IOVA of any byte inside is its address. */
		CHECK_OK(iovm_mr_iova(mr[i], a + len - 1, 1, &iova));
		CHECK_EQ(iova.addr, (uint64_t)(uintptr_t)(a + len - 1));
		CHECK_EQ(iovm_mr_iova(mr[i], a + len - 1, 2, &iova), -ERANGE);
		CHECK_EQ(iovm_mr_iova(mr[i], a - 1, 1, &iova), -ERANGE);
		for (int j = 0; j < i; j++)
			CHECK(fm[j].lkey != fm[i].lkey && fm[j].rkey != fm[i].rkey);
	}
	CHECK_EQ(fake_ibv_live_in_pd(pd), N);
	/* A device writes through each rkey: only where its rights and range let it. */
	for (int i = 0; i < N; i++) {
		uint8_t v[16];

		memset(v, 0x30 + i, sizeof(v));
		if (rights[i] & IOVM_ACCESS_REMOTE_WRITE) {
			CHECK_OK(fake_ibv_remote_write(fm[i].rkey, (uintptr_t)fm[i].addr + fm[i].len - 16, v, 16));
			CHECK(!memcmp((uint8_t *)fm[i].addr + fm[i].len - 16, v, 16));
			CHECK_EQ(fake_ibv_remote_write(fm[i].rkey, (uintptr_t)fm[i].addr + fm[i].len - 15, v, 16),
				 -ERANGE);
		} else {
			CHECK_EQ(fake_ibv_remote_write(fm[i].rkey, (uintptr_t)fm[i].addr, v, 16), -EACCES);
		}
	}
	/* Scrambled order: each dereg takes its own device MR and no other. */
	static const int order[N] = { 3, 0, 5, 1, 4, 2 };
	for (int k = 0; k < N; k++) {
		struct fake_ibv_mr x;
		int i = order[k];

		CHECK_OK(iovm_mr_dereg(mr[i]));
		CHECK_EQ(fake_ibv_find(fm[i].lkey, &x), -ENOENT);
		CHECK_EQ(fake_ibv_remote_write(fm[i].rkey, (uintptr_t)fm[i].addr, "x", 1), -ENOENT);
		CHECK_EQ(fake_ibv_live_in_pd(pd), N - 1 - k);
		for (int l = k + 1; l < N; l++)
			CHECK_OK(fake_ibv_find(fm[order[l]].lkey, &x));
	}
	a13_unbind(dev, dom);
	a13_device_clean(c0);
	munmap(buf, 40 * PG);
}

/*
 * "deregistered from the device before anything else of it goes": at each
 * ibv_dereg_mr(), the MR's pages are still locked (VmLck), on every path.
 */
static struct {
	long want_kb;
	int calls, early;
	long seen_kb;
} hookst;

static void lock_hook(const struct fake_ibv_mr *mr, void *arg)
{
	long kb = a13_vmlck_kb();

	(void)mr;
	(void)arg;
	hookst.calls++;
	if (kb < hookst.want_kb) {
		hookst.early++;
		hookst.seen_kb = kb;
	}
}

TEST(device_lets_go_before_unlock)
{
	struct fake_ibv_counts c0 = fake_ibv_counts();
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_rcache *cache;
	struct iovm_rcache_attr ra = { .max_regions = 1 };
	struct iovm_mr *mr, *mr2;
	uint8_t *buf = a13_pages(64);
	long l0 = a13_vmlck_kb();

	CHECK(l0 >= 0);
	a13_bound(ctx, "verbs:fake0", &dev, &dom);
	fake_ibv_on_dereg(lock_hook, NULL);

	/* 1: iovm_mr_dereg(). */
	memset(&hookst, 0, sizeof(hookst));
	CHECK_OK(iovm_mr_reg(dom, buf, 16 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
	hookst.want_kb = a13_vmlck_kb();
	CHECK(hookst.want_kb >= l0 + 64);
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_EQ(hookst.calls, 1);
	CHECK_MSG(!hookst.early, "dereg: VmLck %ld kB at ibv_dereg_mr, %ld kB locked before", hookst.seen_kb,
		  hookst.want_kb);

	/* 2: eviction from a cache of one region. */
	CHECK_OK(iovm_rcache_create(dom, &ra, &cache));
	CHECK_OK(iovm_rcache_get(cache, buf, 16 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
	CHECK_OK(iovm_rcache_put(cache, mr));
	memset(&hookst, 0, sizeof(hookst));
	/* Both regions locked when the first is evicted: want at least the first's 64 kB over l0. */
	hookst.want_kb = l0 + 64;
	CHECK_OK(iovm_rcache_get(cache, buf + 32 * PG, 16 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr2));
	CHECK_OK(iovm_rcache_put(cache, mr2));
	{
		struct iovm_rcache_stats st;

		CHECK_OK(iovm_rcache_stats(cache, &st));
		CHECK(st.evictions >= 1);
		CHECK(st.regions <= 1);
	}
	CHECK(hookst.calls >= 1);
	CHECK_MSG(!hookst.early, "eviction: VmLck %ld kB at ibv_dereg_mr, want %ld", hookst.seen_kb, hookst.want_kb);

	/* 3: cache destroy. */
	memset(&hookst, 0, sizeof(hookst));
	hookst.want_kb = a13_vmlck_kb();
	CHECK(hookst.want_kb >= l0 + 64);
	CHECK_OK(iovm_rcache_destroy(cache));
	CHECK_EQ(hookst.calls, 1);
	CHECK_MSG(!hookst.early, "cache destroy: VmLck %ld kB at ibv_dereg_mr, want %ld", hookst.seen_kb,
		  hookst.want_kb);
	CHECK_EQ(a13_vmlck_kb(), l0);

	/* 4: device close with an MR alive: the device lets go, the MR stays iovm's and locked. */
	CHECK_OK(iovm_mr_reg(dom, buf, 16 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
	memset(&hookst, 0, sizeof(hookst));
	hookst.want_kb = a13_vmlck_kb();
	CHECK_OK(iovm_device_close(dev));
	CHECK_EQ(hookst.calls, 1);
	CHECK(!hookst.early);
	CHECK_EQ(a13_vmlck_kb(), hookst.want_kb);
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_EQ(hookst.calls, 1); /* not the device's any more: no second device dereg */
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_EQ(a13_vmlck_kb(), l0);

	/*
	 * 5: context close with an MR and a cached region. Fresh memory: the
	 * first context's monitor may still own buf (its userfaultfd), and a
	 * second context's cache keeps no memory it cannot watch.
	 */
	munmap(buf, 64 * PG);
	buf = a13_pages(64);
	{
		struct iovm_ctx *c = a13_ctx();
		struct iovm_domain *d;

		a13_bound(c, "verbs:fake0", &dev, &d);
		CHECK_OK(iovm_mr_reg(d, buf, 16 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
		a13_dev_mr(mr, a13_pd(dev));
		CHECK_OK(iovm_rcache_create(d, NULL, &cache));
		CHECK_OK(iovm_rcache_get(cache, buf + 32 * PG, 16 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr2));
		a13_dev_mr(mr2, a13_pd(dev));
		{
			struct iovm_mr_info mi;

			CHECK_OK(iovm_mr_query(mr2, &mi));
			CHECK(mi.monitored);
		}
		CHECK_OK(iovm_rcache_put(cache, mr2));
		CHECK_EQ(fake_ibv_live_in_pd(a13_pd(dev)), 2);
		memset(&hookst, 0, sizeof(hookst));
		/* The first dereg at least sees both locked; each sees its own (>= l0 + 64). */
		hookst.want_kb = l0 + 64;
		struct fake_ibv_counts cb = fake_ibv_counts();
		CHECK_OK(iovm_close(c));
		struct fake_ibv_counts ca = fake_ibv_counts();
		printf("# context close: live %lld -> %lld, deregs +%llu, bad +%llu, hook calls %d\n",
		       (long long)cb.live, (long long)ca.live, (unsigned long long)(ca.deregs - cb.deregs),
		       (unsigned long long)(ca.bad_deregs - cb.bad_deregs), hookst.calls);
		CHECK_EQ(hookst.calls, 2);
		CHECK_MSG(!hookst.early, "context close: VmLck %ld kB at ibv_dereg_mr", hookst.seen_kb);
		CHECK_EQ(a13_vmlck_kb(), l0);
	}
	fake_ibv_on_dereg(NULL, NULL);
	a13_device_clean(c0);
	munmap(buf, 64 * PG);
}

/*
 * The device refuses to deregister (rdma-core: EBUSY while memory windows
 * are bound). No device MR may be left over memory iovm unlocked: either
 * the dereg fails and the MR is whole, or the device MR is gone.
 */
TEST(device_dereg_refused)
{
	struct fake_ibv_counts c0 = fake_ibv_counts();
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	struct fake_ibv_mr fm, x;
	uint8_t *buf = a13_pages(16);
	long l0 = a13_vmlck_kb();
	int ret;

	a13_bound(ctx, "verbs:fake0", &dev, &dom);
	CHECK_OK(iovm_mr_reg(dom, buf, 16 * PG, IOVM_ACCESS_REMOTE_WRITE, &mr));
	fm = a13_dev_mr(mr, a13_pd(dev));
	fake_ibv_fail_next_dereg(EBUSY);
	ret = iovm_mr_dereg(mr);
	printf("# iovm_mr_dereg() with the device's dereg refused: %d (%s); device MR %s; VmLck %+ld kB\n", ret,
	       iovm_error_detail(), fake_ibv_find(fm.lkey, &x) ? "gone" : "still live", a13_vmlck_kb() - l0);
	if (ret == 0 && fake_ibv_find(fm.lkey, &x) == 0) {
		/* iovm went on: the device still reaches memory iovm let go (unlocked, unmapped). */
		CHECK_OK(fake_ibv_remote_write(fm.rkey, (uintptr_t)buf, "!", 1));
		printf("# the device MR outlived iovm's MR: a remote write through rkey %#x still lands\n", fm.rkey);
		A13_KNOWN("iovm_mr_dereg() returns 0 when ibv_dereg_mr() fails: the device MR is leaked, "
			  "reaching memory iovm unlocked");
		CHECK(0);
	}
	CHECK(ret < 0);
	/* Refused: the MR is whole, still the device's, still locked. */
	{
		struct iovm_mr_info info;

		CHECK_OK(iovm_mr_query(mr, &info));
		CHECK(info.valid);
		CHECK_OK(fake_ibv_find(fm.lkey, &x));
		CHECK(a13_vmlck_kb() >= l0 + 64);
	}
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_EQ(fake_ibv_find(fm.lkey, &x), -ENOENT);
	a13_unbind(dev, dom);
	a13_device_clean(c0);
	munmap(buf, 16 * PG);
}

/*
 * The device refuses a dereg on the other paths: cache destroy, device
 * close, context close. Whatever iovm does, no device MR may be left
 * behind, nor a call made on a closed device.
 */
TEST(device_dereg_refused_elsewhere)
{
	static const char *const path[] = { "cache destroy", "device close", "context close" };
	uint8_t *buf = a13_pages(16);
	int leaks = 0;

	for (int k = 0; k < 3; k++) {
		struct fake_ibv_counts c0 = fake_ibv_counts(), c;
		struct iovm_ctx *c2 = a13_ctx();
		struct iovm_device *dev;
		struct iovm_domain *dom;
		struct iovm_rcache *cache;
		struct iovm_mr *mr;
		int ret;

		a13_bound(c2, "verbs:fake0", &dev, &dom);
		CHECK_OK(iovm_rcache_create(dom, NULL, &cache));
		CHECK_OK(iovm_rcache_get(cache, buf, 16 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
		CHECK_OK(iovm_rcache_put(cache, mr));
		fake_ibv_fail_next_dereg(EBUSY);
		if (k == 0)
			ret = iovm_rcache_destroy(cache);
		else if (k == 1)
			ret = iovm_device_close(dev);
		else
			ret = iovm_close(c2);
		c = fake_ibv_counts();
		printf("# %s with the device's dereg refused: %d; device MRs %+lld, pds %+lld, contexts %+lld, "
		       "busy deallocs %+lld, closes with MRs %+lld\n",
		       path[k], ret, (long long)(c.live - c0.live), (long long)(c.pds - c0.pds),
		       (long long)(c.contexts - c0.contexts), (long long)(c.dealloc_busy - c0.dealloc_busy),
		       (long long)(c.close_busy - c0.close_busy));
		fake_ibv_fail_next_dereg(0);
		if (k < 2)
			CHECK_OK(iovm_close(c2)); /* everything else goes */
		c = fake_ibv_counts();
		CHECK_EQ(c.bad_deregs, c0.bad_deregs);
		CHECK_EQ(c.deregs_after_close, c0.deregs_after_close);
		CHECK_EQ(c.regs_after_close, c0.regs_after_close);
		leaks += c.live != c0.live || c.close_busy != c0.close_busy;
		printf("# %s: after the context closed: device MRs %+lld, pds %+lld, contexts %+lld\n", path[k],
		       (long long)(c.live - c0.live), (long long)(c.pds - c0.pds), (long long)(c.contexts - c0.contexts));
	}
	munmap(buf, 16 * PG);
	if (leaks) {
		A13_KNOWN("a failed ibv_dereg_mr() is not retried or reported: the device MR is leaked (and its "
			  "device closed under it) on cache destroy, device close or context close");
		CHECK_EQ(leaks, 0);
	}
}

/* Device close with everything alive; then the domain, the MRs and the cache go as usual. */
TEST(close_with_everything)
{
	struct fake_ibv_counts c0 = fake_ibv_counts();
	struct iovm_device *dev, *dev2;
	struct iovm_domain *dom;
	struct iovm_rcache *cache;
	struct iovm_mr *pinned, *odp, *imp, *held, *kept;
	struct iovm_mr_info info;
	struct fake_ibv_mr x;
	uint8_t *buf = a13_pages(64);

	a13_bound(ctx, "verbs:fake1", &dev, &dom);
	CHECK_OK(iovm_mr_reg(dom, buf, 8 * PG, IOVM_ACCESS_LOCAL_WRITE, &pinned));
	CHECK_OK(iovm_mr_reg(dom, buf, 32 * PG, IOVM_ACCESS_ON_DEMAND | IOVM_ACCESS_LOCAL_WRITE, &odp));
	CHECK_OK(iovm_mr_reg(dom, NULL, SIZE_MAX, IOVM_ACCESS_ON_DEMAND, &imp));
	CHECK_OK(iovm_rcache_create(dom, NULL, &cache));
	CHECK_OK(iovm_rcache_get(cache, buf + 40 * PG, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &held));
	CHECK_OK(iovm_rcache_get(cache, buf + 48 * PG, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &kept));
	CHECK_OK(iovm_rcache_put(cache, kept));
	CHECK_OK(iovm_mr_advise(odp, buf, 4 * PG, IOVM_ADVISE_WRITE));
	CHECK_EQ(fake_ibv_counts().live, c0.live + 5);
	CHECK_EQ(iovm_device_detach(dev, IOVM_PASID_NONE), -EBUSY);
	CHECK_EQ(iovm_domain_destroy(dom), -EBUSY);
	CHECK_OK(iovm_device_close(dev));
	a13_device_clean(c0);
	/* They stay iovm's: queries work, the held MR is put, a hit needs no device. */
	CHECK_OK(iovm_mr_query(held, &info));
	CHECK_EQ(fake_ibv_find(info.lkey, &x) == 0 && x.addr == info.addr, 0);
	uint64_t regs = fake_ibv_counts().regs;
	CHECK_OK(iovm_rcache_put(cache, held));
	CHECK_OK(iovm_rcache_get(cache, buf + 48 * PG, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &kept));
	CHECK_OK(iovm_rcache_put(cache, kept));
	/* A miss now registers on no device: the domain has none. */
	CHECK_OK(iovm_rcache_get(cache, buf + 56 * PG, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &kept));
	CHECK_OK(iovm_rcache_put(cache, kept));
	CHECK_EQ(fake_ibv_counts().regs, regs);
	/* Advice on an on-demand MR with no device: iovm's own, the closed device hears nothing. */
	uint64_t adv = fake_ibv_counts().advises;
	CHECK_OK(iovm_mr_advise(odp, buf + 4 * PG, 4 * PG, 0));
	CHECK_EQ(fake_ibv_counts().advises, adv);
	/* A new device cannot take a domain that has MRs already. */
	CHECK_OK(iovm_device_open(ctx, "verbs:fake1", &dev2));
	CHECK_EQ(iovm_device_attach(dev2, dom, IOVM_PASID_NONE), -EBUSY);
	CHECK_OK(iovm_mr_dereg(pinned));
	CHECK_OK(iovm_mr_dereg(odp));
	CHECK_OK(iovm_mr_dereg(imp));
	CHECK_EQ(iovm_device_attach(dev2, dom, IOVM_PASID_NONE), -EBUSY); /* the cache's */
	CHECK_OK(iovm_rcache_destroy(cache));
	a13_device_clean(c0);
	/* Empty now: the new device takes it, and its MRs are the new device's. */
	CHECK_OK(iovm_device_attach(dev2, dom, IOVM_PASID_NONE));
	CHECK_OK(iovm_mr_reg(dom, buf, 8 * PG, IOVM_ACCESS_LOCAL_WRITE, &pinned));
	a13_dev_mr(pinned, a13_pd(dev2));
	CHECK_OK(iovm_mr_dereg(pinned));
	a13_unbind(dev2, dom);
	a13_device_clean(c0);
	munmap(buf, 64 * PG);
}

/* Detach, reattach, another device; a domain cannot go while attached. */
TEST(reattach_and_second_device)
{
	struct fake_ibv_counts c0 = fake_ibv_counts();
	struct iovm_device *dev, *dev2;
	struct iovm_domain *dom, *dom2;
	struct iovm_mr *mr;
	uint8_t *buf = a13_pages(16);

	a13_bound(ctx, "verbs:fake0", &dev, &dom);
	/* Attached and empty: the domain still cannot be destroyed under the device. */
	CHECK_EQ(iovm_domain_destroy(dom), -EBUSY);
	CHECK_EQ(iovm_device_attach(dev, dom, IOVM_PASID_NONE), -EBUSY);
	for (int round = 0; round < 3; round++) {
		CHECK_OK(iovm_mr_reg(dom, buf, 4 * PG, IOVM_ACCESS_REMOTE_READ, &mr));
		a13_dev_mr(mr, a13_pd(dev));
		CHECK_OK(iovm_mr_dereg(mr));
		CHECK_OK(iovm_device_detach(dev, IOVM_PASID_NONE));
		CHECK_EQ(iovm_device_detach(dev, IOVM_PASID_NONE), -ENOENT);
		/* Detached: registrations stay iovm's. */
		uint64_t regs = fake_ibv_counts().regs;
		CHECK_OK(iovm_mr_reg(dom, buf, 4 * PG, IOVM_ACCESS_REMOTE_READ, &mr));
		CHECK_EQ(fake_ibv_counts().regs, regs);
		CHECK_OK(iovm_mr_dereg(mr));
		CHECK_OK(iovm_device_attach(dev, dom, IOVM_PASID_NONE));
	}
	/* A second device: not on the same domain while the first is there; on it once the first left. */
	CHECK_OK(iovm_device_open(ctx, "verbs:fake0", &dev2));
	CHECK_EQ(iovm_device_attach(dev2, dom, IOVM_PASID_NONE), -EBUSY);
	CHECK_OK(iovm_device_detach(dev, IOVM_PASID_NONE));
	CHECK_OK(iovm_device_attach(dev2, dom, IOVM_PASID_NONE));
	CHECK(a13_pd(dev2) != a13_pd(dev));
	CHECK_OK(iovm_mr_reg(dom, buf, 4 * PG, IOVM_ACCESS_REMOTE_READ, &mr));
	a13_dev_mr(mr, a13_pd(dev2));
	CHECK_EQ(fake_ibv_live_in_pd(a13_pd(dev)), 0);
	/* The first device, free now, takes another domain. */
	CHECK_OK(iovm_domain_create(ctx, NULL, &dom2));
	CHECK_OK(iovm_device_attach(dev, dom2, IOVM_PASID_NONE));
	/* Closing the first touches nothing of the second's. */
	CHECK_OK(iovm_device_detach(dev, IOVM_PASID_NONE));
	CHECK_OK(iovm_device_close(dev));
	a13_dev_mr(mr, a13_pd(dev2));
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(iovm_domain_destroy(dom2));
	a13_unbind(dev2, dom);
	a13_device_clean(c0);
	munmap(buf, 16 * PG);
}

/* The device cannot be opened, or has no protection domain for iovm: nothing is left. */
TEST(open_refused_leaves_nothing)
{
	struct fake_ibv_counts c0 = fake_ibv_counts();
	struct iovm_device *dev = NULL;
	int ret;

	fake_ibv_fail_next_open(EACCES);
	ret = iovm_device_open(ctx, "verbs:fake0", &dev);
	printf("# open refused: %d (%s)\n", ret, iovm_error_detail());
	CHECK(ret < 0);
	CHECK(*iovm_error_detail());
	CHECK_EQ(fake_ibv_counts().contexts, c0.contexts);
	fake_ibv_fail_next_pd(ENOMEM);
	ret = iovm_device_open(ctx, "verbs:fake1", &dev);
	printf("# no protection domain: %d (%s)\n", ret, iovm_error_detail());
	CHECK(ret < 0);
	CHECK_EQ(fake_ibv_counts().contexts, c0.contexts);
	CHECK_EQ(fake_ibv_counts().pds, c0.pds);
	/* And the next open works. */
	CHECK_OK(iovm_device_open(ctx, "verbs:fake1", &dev));
	CHECK_OK(iovm_device_close(dev));
	CHECK_EQ(fake_ibv_counts().contexts, c0.contexts);
	CHECK_EQ(fake_ibv_counts().pds, c0.pds);
}

/* The cache's limits: every region evicted leaves the device; a held one stays on it. */
TEST(eviction)
{
	struct fake_ibv_counts c0 = fake_ibv_counts();
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_rcache *cache;
	struct iovm_rcache_stats st;
	struct iovm_mr *mr[8];
	uint32_t lk[8];
	uint8_t *buf = a13_pages(128);
	void *pd;

	bool over_any = false;

	a13_bound(ctx, "verbs:fake0", &dev, &dom);
	pd = a13_pd(dev);
	for (int lim = 0; lim < 2; lim++) {
		/* 3 regions, or 3 regions' bytes (4 pages each). */
		struct iovm_rcache_attr ra = lim ? (struct iovm_rcache_attr){ .max_bytes = 12 * PG }
						 : (struct iovm_rcache_attr){ .max_regions = 3 };

		CHECK_OK(iovm_rcache_create(dom, &ra, &cache));
		for (int i = 0; i < 8; i++) {
			/* Apart, so that no two merge. */
			CHECK_OK(iovm_rcache_get(cache, buf + (size_t)i * 16 * PG, 4 * PG, IOVM_ACCESS_LOCAL_WRITE,
						 &mr[i]));
			lk[i] = a13_dev_mr(mr[i], pd).lkey;
			CHECK_OK(iovm_rcache_put(cache, mr[i]));
			CHECK_OK(iovm_rcache_stats(cache, &st));
			CHECK(st.regions <= 3);
			/* The device holds what the cache keeps, no more. */
			CHECK_EQ(fake_ibv_live_in_pd(pd), (int64_t)st.regions);
		}
		CHECK(st.evictions >= 5);
		/* The newest is kept: a hit, no device call. */
		uint64_t regs = fake_ibv_counts().regs;
		CHECK_OK(iovm_rcache_get(cache, buf + 7 * 16 * PG, 4 * PG, 0, &mr[7]));
		CHECK_EQ(fake_ibv_counts().regs, regs);
		CHECK_OK(iovm_rcache_put(cache, mr[7]));
		/* The oldest went from the device. */
		struct fake_ibv_mr x;
		CHECK_EQ(fake_ibv_find(lk[0], &x), -ENOENT);

		/* Held past the limit: all 8 stay on the device until put. */
		for (int i = 0; i < 8; i++) {
			CHECK_OK(iovm_rcache_get(cache, buf + (size_t)i * 16 * PG + 8 * PG, 4 * PG,
						 IOVM_ACCESS_LOCAL_WRITE, &mr[i]));
			lk[i] = a13_dev_mr(mr[i], pd).lkey;
		}
		for (int i = 0; i < 8; i++)
			CHECK_OK(fake_ibv_find(lk[i], &x));
		for (int i = 0; i < 8; i++)
			CHECK_OK(iovm_rcache_put(cache, mr[i]));
		CHECK_OK(iovm_rcache_stats(cache, &st));
		CHECK_EQ(fake_ibv_live_in_pd(pd), (int64_t)st.regions);
		bool over = st.regions > 3;
		printf("# %s: after 8 held gets were put: %llu regions kept, %lld device MRs\n",
		       lim ? "max_bytes" : "max_regions", (unsigned long long)st.regions,
		       (long long)fake_ibv_live_in_pd(pd));
		/* Misses after it bring it back within the limit. */
		for (int k = 0; k < 6; k++) {
			CHECK_OK(iovm_rcache_get(cache, buf + 124 * PG - (size_t)k * 16 * PG, 2 * PG,
						 IOVM_ACCESS_LOCAL_WRITE, &mr[0]));
			CHECK_OK(iovm_rcache_put(cache, mr[0]));
			CHECK_OK(iovm_rcache_stats(cache, &st));
			printf("# %s: after %d more miss(es): %llu regions kept, %lld device MRs, %llu evictions\n",
			       lim ? "max_bytes" : "max_regions", k + 1, (unsigned long long)st.regions,
			       (long long)fake_ibv_live_in_pd(pd), (unsigned long long)st.evictions);
		}
		CHECK_EQ(fake_ibv_live_in_pd(pd), (int64_t)st.regions);
		over_any |= over;
		if (lim)
			CHECK(st.bytes <= 12 * PG);
		else
			CHECK(st.regions <= 3);
		CHECK_OK(iovm_rcache_destroy(cache));
		CHECK_EQ(fake_ibv_live_in_pd(pd), 0);
	}
	a13_unbind(dev, dom);
	a13_device_clean(c0);
	munmap(buf, 128 * PG);
	CHECK_MSG(!over_any, "regions held past the cache's limit stayed cached, and registered on the device, "
			     "after they were put: the cache kept more than max_regions/max_bytes");
}

enum repl { R_MUNMAP_MMAP, R_FIXED, R_MREMAP_AWAY, R_MREMAP_OVER, R_DONTNEED_LOCKED, R_FREE_MALLOC, R_NR };
static const char *const repl_name[R_NR] = { "munmap+mmap", "mmap MAP_FIXED", "mremap away and back",
					     "mremap over", "MADV_DONTNEED_LOCKED", "free+malloc" };

/* Replace [p, p+len) by the application's call @how; the memory is there again afterwards. */
static uint8_t *replace(enum repl how, uint8_t *p, size_t len)
{
	void *q;

	switch (how) {
	case R_MUNMAP_MMAP:
		CHECK_OK(munmap(p, len));
		q = mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		CHECK(q == p);
		break;
	case R_FIXED:
		q = mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		CHECK(q == p);
		break;
	case R_MREMAP_AWAY: {
		/* Moved away (the old range unmapped), then a fresh mapping there. */
		void *dst = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		CHECK(dst != MAP_FAILED);
		q = mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
		CHECK(q == dst);
		CHECK_OK(munmap(dst, len));
		q = mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		CHECK(q == p);
		break;
	}
	case R_MREMAP_OVER: {
		/* Another mapping moved over it. */
		void *src = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		CHECK(src != MAP_FAILED);
		memset(src, 0x77, len);
		q = mremap(src, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, p);
		CHECK(q == p);
		break;
	}
	case R_DONTNEED_LOCKED:
		CHECK_OK(madvise(p, len, MADV_DONTNEED_LOCKED));
		break;
	default:
		CHECK(0);
	}
	memset(p, 0x11, len);
	return p;
}

/*
 * Memory replaced under the cache, held or not: the next get is a new
 * device MR, registered after the replacement; the old one leaves the
 * device by the put (held) or the destroy at the latest.
 */
TEST(replaced_memory)
{
	struct fake_ibv_counts c0 = fake_ibv_counts();
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_rcache *cache;
	void *pd;

	a13_bound(ctx, "verbs:fake0", &dev, &dom);
	pd = a13_pd(dev);
	CHECK_OK(iovm_rcache_create(dom, NULL, &cache));
	for (int how = 0; how < R_NR; how++) {
		/* free+malloc: 1 MiB, more than the heap's top keeps (trimmed past 128 KiB): mmapped. */
		const size_t len = how == R_FREE_MALLOC ? (1u << 20) : 16 * PG;

		for (int held = 0; held < 2; held++) {
			struct iovm_mr *mr, *mr2;
			struct fake_ibv_mr old, nw, x;
			uint64_t s;
			uint8_t *p;

			if (how == R_FREE_MALLOC) {
				if (TEST_ASAN || TEST_TSAN)
					continue; /* their malloc never gives an address back */
				/* Fixed threshold: a free()d large block is unmapped, and its address comes back. */
				CHECK(mallopt(M_MMAP_THRESHOLD, 64 * 1024) == 1);
				p = malloc(len);
				CHECK(p != NULL);
				/* glibc's chunk header: IS_MMAPPED (2) in the size word before the block. */
				CHECK_MSG(*(volatile size_t *)((uintptr_t)p - sizeof(size_t)) & 2, "malloc(%zu) did not mmap",
					  len);
				memset(p, 1, len);
			} else {
				p = a13_pages(16);
			}
			CHECK_OK(iovm_rcache_get(cache, p, len, IOVM_ACCESS_REMOTE_WRITE, &mr));
			old = a13_dev_mr(mr, pd);
			if (!held)
				CHECK_OK(iovm_rcache_put(cache, mr));
			s = fake_ibv_seq();
			if (how == R_FREE_MALLOC) {
				uint8_t *p2;
				uintptr_t pv = (uintptr_t)p;

				free(p);
				p2 = malloc(len);
				CHECK(p2 != NULL);
				if ((uintptr_t)p2 != pv) {
					printf("# free+malloc: the address did not come back (%#lx, %p)\n",
					       (unsigned long)pv, (void *)p2);
					CHECK_OK(iovm_rcache_get(cache, p2, len, IOVM_ACCESS_REMOTE_WRITE, &mr2));
					CHECK_OK(iovm_rcache_put(cache, mr2));
					if (held)
						CHECK_OK(iovm_rcache_put(cache, mr));
					free(p2);
					continue;
				}
				CHECK(*(volatile size_t *)((uintptr_t)p2 - sizeof(size_t)) & 2);
				memset(p2, 2, len);
				p = p2;
			} else {
				replace(how, p, len);
			}
			bool old_live = !fake_ibv_find(old.lkey, &x);
			CHECK_OK(iovm_rcache_get(cache, p, len, IOVM_ACCESS_REMOTE_WRITE, &mr2));
			CHECK_MSG(mr2 != mr || !held, "%s: a held MR of replaced memory handed out again",
				  repl_name[how]);
			nw = a13_dev_mr(mr2, pd);
			CHECK_MSG(nw.seq >= s, "%s (%s): get after the replacement gave device MR seq %llu, registered "
				  "before it (%llu)", repl_name[how], held ? "held" : "cached",
				  (unsigned long long)nw.seq, (unsigned long long)s);
			CHECK(nw.lkey != old.lkey);
			CHECK(nw.resident);
			/* A device write through the new rkey lands in the new memory. */
			CHECK_OK(fake_ibv_remote_write(nw.rkey, (uintptr_t)p + 5, "new", 3));
			CHECK(!memcmp(p + 5, "new", 3));
			printf("# %s, %s: old device MR %s after the call returned; %s after the get\n",
			       repl_name[how], held ? "held" : "cached", old_live ? "live" : "gone",
			       fake_ibv_find(old.lkey, &x) ? "gone" : "live");
			CHECK_OK(iovm_rcache_put(cache, mr2));
			if (held)
				CHECK_OK(iovm_rcache_put(cache, mr));
			/* A few hits: still the new one. */
			for (int i = 0; i < 3; i++) {
				CHECK_OK(iovm_rcache_get(cache, p + PG, PG, IOVM_ACCESS_REMOTE_WRITE, &mr2));
				CHECK(a13_dev_mr(mr2, pd).seq >= s);
				CHECK_OK(iovm_rcache_put(cache, mr2));
			}
			a13_device_sane(c0);
			if (how == R_FREE_MALLOC)
				free(p);
			else
				munmap(p, len);
		}
	}
	CHECK_OK(iovm_rcache_destroy(cache));
	CHECK_EQ(fake_ibv_live_in_pd(pd), 0);
	a13_unbind(dev, dom);
	a13_device_clean(c0);
}

/* An explicit MR whose memory was replaced: invalid for iovm, and its device MR goes at its dereg, once. */
TEST(explicit_mr_replaced)
{
	struct fake_ibv_counts c0 = fake_ibv_counts();
	struct iovm_device *dev;
	struct iovm_domain *dom;
	void *pd;

	a13_bound(ctx, "verbs:fake0", &dev, &dom);
	pd = a13_pd(dev);
	for (int how = 0; how < R_FREE_MALLOC; how++) {
		uint8_t *p = a13_pages(8);
		struct iovm_mr *mr, *mr2;
		struct iovm_mr_info info;
		struct fake_ibv_mr fm, x;

		CHECK_OK(iovm_mr_reg(dom, p, 8 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
		fm = a13_dev_mr(mr, pd);
		replace(how, p + 2 * PG, 2 * PG);
		CHECK_OK(iovm_mr_query(mr, &info));
		CHECK_MSG(info.valid_pages == 6, "%s: valid_pages %llu", repl_name[how],
			  (unsigned long long)info.valid_pages);
		/* The new memory registers whole: a device MR of its own, alongside. */
		CHECK_OK(iovm_mr_reg(dom, p, 8 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr2));
		CHECK(a13_dev_mr(mr2, pd).lkey != fm.lkey);
		CHECK_OK(iovm_mr_dereg(mr));
		CHECK_EQ(fake_ibv_find(fm.lkey, &x), -ENOENT);
		CHECK_OK(iovm_mr_dereg(mr2));
		CHECK_EQ(fake_ibv_live_in_pd(pd), 0);
		a13_device_sane(c0);
		munmap(p, 8 * PG);
	}
	a13_unbind(dev, dom);
	a13_device_clean(c0);
}

/* Fork: the child's unmap of its copy, and its own device, never reach the parent's MRs. */
TEST(fork_child)
{
	struct fake_ibv_counts c0 = fake_ibv_counts();
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_rcache *cache;
	struct iovm_mr *mr, *cmr;
	struct iovm_mr_info info;
	struct fake_ibv_mr fm, cfm;
	uint8_t *buf = a13_pages(32);
	pid_t pid;
	int st;

	if (TEST_TSAN)
		SKIP_CASE("TSan's fork cannot wait for the memory monitor");
	a13_bound(ctx, "verbs:fake0", &dev, &dom);
	CHECK_OK(iovm_mr_reg(dom, buf, 16 * PG, IOVM_ACCESS_REMOTE_WRITE, &mr));
	fm = a13_dev_mr(mr, a13_pd(dev));
	CHECK_OK(iovm_rcache_create(dom, NULL, &cache));
	CHECK_OK(iovm_rcache_get(cache, buf + 16 * PG, 16 * PG, IOVM_ACCESS_REMOTE_WRITE, &cmr));
	cfm = a13_dev_mr(cmr, a13_pd(dev));
	CHECK_OK(iovm_rcache_put(cache, cmr));
	pid = fork();
	CHECK(pid >= 0);
	if (!pid) {
		struct iovm_ctx *c;
		struct iovm_device *d;
		struct iovm_domain *dm;
		struct iovm_mr *m;
		int ok = 1;

		/* Replace the child's copy, every way at once. */
		ok &= munmap(buf, 8 * PG) == 0;
		ok &= mmap(buf + 16 * PG, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
			   0) == buf + 16 * PG;
		/* Its own context and device work. */
		if (iovm_open("log_level=error", &c))
			_exit(2);
		ok &= !iovm_device_open(c, "verbs:fake0", &d);
		ok &= !iovm_domain_create(c, NULL, &dm);
		ok &= !iovm_device_attach(d, dm, IOVM_PASID_NONE);
		ok &= !iovm_mr_reg(dm, buf + 16 * PG, 16 * PG, IOVM_ACCESS_LOCAL_WRITE, &m);
		ok &= !iovm_mr_dereg(m);
		ok &= !iovm_device_detach(d, IOVM_PASID_NONE);
		ok &= !iovm_device_close(d);
		iovm_close(c);
		_exit(ok ? 0 : 1);
	}
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_OK(iovm_mr_query(mr, &info));
	CHECK(info.valid && info.valid_pages == 16);
	CHECK_OK(fake_ibv_find(fm.lkey, &fm));
	uint64_t regs = fake_ibv_counts().regs;
	CHECK_OK(iovm_rcache_get(cache, buf + 16 * PG, 16 * PG, IOVM_ACCESS_REMOTE_WRITE, &cmr));
	CHECK_EQ(a13_dev_mr(cmr, a13_pd(dev)).lkey, cfm.lkey);
	CHECK_EQ(fake_ibv_counts().regs, regs);
	CHECK_OK(iovm_rcache_put(cache, cmr));
	CHECK_OK(iovm_rcache_destroy(cache));
	CHECK_OK(iovm_mr_dereg(mr));
	a13_unbind(dev, dom);
	a13_device_clean(c0);
	munmap(buf, 32 * PG);
}

int main(void)
{
	a13_init();
	ctx = a13_ctx();
	A13_RUN(overlap_exact);
	A13_RUN(device_lets_go_before_unlock);
	A13_RUN(device_dereg_refused);
	A13_RUN(device_dereg_refused_elsewhere);
	A13_RUN(close_with_everything);
	A13_RUN(reattach_and_second_device);
	A13_RUN(open_refused_leaves_nothing);
	A13_RUN(eviction);
	A13_RUN(replaced_memory);
	A13_RUN(explicit_mr_replaced);
	A13_RUN(fork_child);
	CHECK_OK(iovm_close(ctx));
	return 0;
}
