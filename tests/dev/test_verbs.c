/* SPDX-License-Identifier: MIT */
/*
 * test_verbs.c - the verbs backend against a stand-in libibverbs
 * (fake_ibverbs.c, loaded through IOVM_VERBS_LIBRARY): "verbs:" devices
 * opened, refused and closed; every MR of the bound domain registered on
 * the device with the rights asked, known by the device's keys, and gone
 * from the device first; on demand only where the device pages; a device
 * registration that fails leaves nothing behind; the registration cache
 * hits without a device call and never hands out a registration of memory
 * that was replaced. The real device (rxe) is the VM test's.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include <iovm.h>

#include "base/fault_inject.h"
#include "dev/fake_ibverbs.h"
#include "harness.h"

#define PG 4096u

static struct iovm_ctx *ctx;

static struct iovm_domain *managed_domain(void)
{
	struct iovm_domain *dom;

	CHECK_OK(iovm_domain_create(ctx, NULL, &dom));
	return dom;
}

/* A device of the fake, attached to a new VA domain. */
static void open_bound(const char *spec, struct iovm_device **dev, struct iovm_domain **dom)
{
	CHECK_OK(iovm_device_open(ctx, spec, dev));
	*dom = managed_domain();
	CHECK_OK(iovm_device_attach(*dev, *dom, IOVM_PASID_NONE));
}

static void close_bound(struct iovm_device *dev, struct iovm_domain *dom)
{
	CHECK_OK(iovm_device_detach(dev, IOVM_PASID_NONE));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_device_close(dev));
}

static void *pages(size_t n)
{
	void *p = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	memset(p, 0x5a, n * PG);
	return p;
}

TEST(devices_by_name)
{
	struct iovm_device_verbs v;
	struct iovm_device_info info;
	struct iovm_device *dev;
	struct fake_ibv_counts c0 = fake_ibv_counts(), c;

	CHECK_EQ(iovm_device_open(ctx, "verbs:nosuch", &dev), -ENODEV);
	CHECK(strstr(iovm_error_detail(), "fake0") && strstr(iovm_error_detail(), "fake1"));
	CHECK_EQ(iovm_device_open(ctx, "verbs:", &dev), -EINVAL);
	CHECK_OK(iovm_device_open(ctx, "verbs:fake0", &dev));
	CHECK_OK(iovm_device_query(dev, &info));
	CHECK_EQ(info.kind, IOVM_DEVICE_VERBS);
	CHECK_OK(iovm_device_verbs(dev, &v));
	CHECK(v.context && v.pd && !v.odp && !v.odp_implicit);
	CHECK(v.fork_safe);
	CHECK(!strcmp(v.name, "fake0"));
	CHECK(((struct ibv_pd *)v.pd)->context == (struct ibv_context *)v.context);
	c = fake_ibv_counts();
	CHECK_EQ(c.contexts, c0.contexts + 1);
	CHECK_EQ(c.pds, c0.pds + 1);
	/* No queues of iovm's: the caller posts to its own queue pairs. */
	struct iovm_queue *q;
	CHECK_EQ(iovm_queue_create(dev, NULL, &q), -EOPNOTSUPP);
	CHECK_OK(iovm_device_close(dev));
	c = fake_ibv_counts();
	CHECK_EQ(c.contexts, c0.contexts);
	CHECK_EQ(c.pds, c0.pds);

	CHECK_OK(iovm_device_open(ctx, "verbs:fake1", &dev));
	CHECK_OK(iovm_device_verbs(dev, &v));
	CHECK(v.odp && v.odp_implicit);
	CHECK_OK(iovm_device_close(dev));

	/* Not a verbs device. */
	CHECK_OK(iovm_device_open(ctx, "sw", &dev));
	CHECK_EQ(iovm_device_verbs(dev, &v), -EOPNOTSUPP);
	CHECK_OK(iovm_device_close(dev));
}

TEST(attach_rules)
{
	struct iovm_device *dev, *dev2;
	struct iovm_domain *vadom, *va, *va2;
	struct iovm_domain_attr vattr = { .type = IOVM_DOMAIN_VA };
	struct iovm_mr *mr;
	void *buf = pages(4);

	CHECK_OK(iovm_device_open(ctx, "verbs:fake0", &dev));
	CHECK_OK(iovm_device_open(ctx, "verbs:fake1", &dev2));
	CHECK_OK(iovm_domain_create(ctx, &vattr, &vadom));
	va = managed_domain();
	va2 = managed_domain();
	/* A VA domain maps an address once: the device's MRs may overlap. */
	CHECK_EQ(iovm_device_attach(dev, vadom, IOVM_PASID_NONE), -EINVAL);
	CHECK_EQ(iovm_device_attach(dev, va, 5), -EINVAL);
	/* A domain with MRs already would have some the device lacks. */
	CHECK_OK(iovm_mr_reg(va2, buf, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
	CHECK_EQ(iovm_device_attach(dev, va2, IOVM_PASID_NONE), -EBUSY);
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(iovm_device_attach(dev, va, IOVM_PASID_NONE));
	/* One protection domain per iovm domain, one domain per device. */
	CHECK_EQ(iovm_device_attach(dev2, va, IOVM_PASID_NONE), -EBUSY);
	CHECK_EQ(iovm_device_attach(dev, va2, IOVM_PASID_NONE), -EBUSY);
	/* Refused attaches left nothing: dev2 binds va2 now, and both detach. */
	CHECK_OK(iovm_device_attach(dev2, va2, IOVM_PASID_NONE));
	CHECK_OK(iovm_device_detach(dev2, IOVM_PASID_NONE));
	CHECK_OK(iovm_device_detach(dev, IOVM_PASID_NONE));
	/* Detached, the domain registers on no device. */
	struct fake_ibv_counts c0 = fake_ibv_counts();
	CHECK_OK(iovm_mr_reg(va, buf, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
	CHECK_EQ(fake_ibv_counts().regs, c0.regs);
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(iovm_domain_destroy(vadom));
	CHECK_OK(iovm_domain_destroy(va));
	CHECK_OK(iovm_domain_destroy(va2));
	CHECK_OK(iovm_device_close(dev));
	CHECK_OK(iovm_device_close(dev2));
	munmap(buf, 4 * PG);
}

/* Each IOVM_ACCESS_* set, as the device got it. */
TEST(rights_and_keys)
{
	static const struct {
		uint32_t iovm;
		int ibv;
	} rights[] = {
		{ 0, 0 },
		{ IOVM_ACCESS_LOCAL_WRITE, IBV_ACCESS_LOCAL_WRITE },
		{ IOVM_ACCESS_REMOTE_READ, IBV_ACCESS_REMOTE_READ },
		/* Verbs wants local write with remote write. */
		{ IOVM_ACCESS_REMOTE_WRITE, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE },
		{ IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_READ | IOVM_ACCESS_REMOTE_WRITE,
		  IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE },
	};
	struct iovm_device *dev;
	struct iovm_domain *dom;
	uint8_t *buf = pages(8);

	open_bound("verbs:fake0", &dev, &dom);
	for (unsigned i = 0; i < sizeof(rights) / sizeof(rights[0]); i++) {
		/* Odd addresses and lengths: the device gets exactly what was asked. */
		void *addr = buf + 100 + i;
		size_t len = 3 * PG + 7 * i + 1;
		struct fake_ibv_counts c0 = fake_ibv_counts();
		struct iovm_mr_info info;
		struct fake_ibv_mr fm;
		struct iovm_mr *mr;
		iovm_iova_t iova;

		CHECK_OK(iovm_mr_reg(dom, addr, len, rights[i].iovm, &mr));
		CHECK_OK(iovm_mr_query(mr, &info));
		CHECK_OK(fake_ibv_find(info.lkey, &fm));
		CHECK_EQ(fm.rkey, info.rkey);
		CHECK(fm.addr == addr);
		CHECK_EQ(fm.len, len);
		CHECK_EQ(fm.access, rights[i].ibv);
		CHECK(info.valid);
		/* The IOVA is the address, as a work request names it. */
		CHECK_EQ(info.iova.addr, (uint64_t)(uintptr_t)addr);
		CHECK_OK(iovm_mr_iova(mr, addr, len, &iova));
		CHECK_EQ(iova.addr, (uint64_t)(uintptr_t)addr);
		CHECK_EQ(fake_ibv_counts().live, c0.live + 1);
		CHECK_OK(iovm_mr_dereg(mr));
		CHECK_EQ(fake_ibv_find(info.lkey, &fm), -ENOENT);
		CHECK_EQ(fake_ibv_counts().live, c0.live);
	}
	CHECK_EQ(fake_ibv_counts().bad_deregs, 0);
	close_bound(dev, dom);
	munmap(buf, 8 * PG);
}

TEST(on_demand_needs_odp)
{
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_reg_stats st0, st;
	struct iovm_mr *mr;
	struct fake_ibv_counts c0;
	void *buf = pages(32);

	open_bound("verbs:fake0", &dev, &dom);
	CHECK_OK(iovm_reg_stats(ctx, &st0));
	c0 = fake_ibv_counts();
	/* Not quietly pinned: refused, saying so, and nothing left of it. */
	CHECK_EQ(iovm_mr_reg(dom, buf, 32 * PG, IOVM_ACCESS_ON_DEMAND | IOVM_ACCESS_LOCAL_WRITE, &mr), -EOPNOTSUPP);
	CHECK(strstr(iovm_error_detail(), "on-demand"));
	CHECK_EQ(iovm_mr_reg(dom, NULL, SIZE_MAX, IOVM_ACCESS_ON_DEMAND, &mr), -EOPNOTSUPP);
	CHECK_OK(iovm_reg_stats(ctx, &st));
	CHECK_EQ(st.mrs, st0.mrs);
	CHECK_EQ(st.locked_bytes, st0.locked_bytes);
	CHECK_EQ(fake_ibv_counts().live, c0.live);
	/* The domain is still good for pinned MRs. */
	CHECK_OK(iovm_mr_reg(dom, buf, 32 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
	CHECK_OK(iovm_mr_dereg(mr));
	close_bound(dev, dom);

	open_bound("verbs:fake1", &dev, &dom);
	{
		struct iovm_mr_info info;
		struct fake_ibv_mr fm;
		struct fake_ibv_advice adv;

		CHECK_OK(iovm_mr_reg(dom, buf, 32 * PG, IOVM_ACCESS_ON_DEMAND | IOVM_ACCESS_REMOTE_WRITE, &mr));
		CHECK_OK(iovm_mr_query(mr, &info));
		CHECK_OK(fake_ibv_find(info.lkey, &fm));
		CHECK_EQ(fm.access, IBV_ACCESS_ON_DEMAND | IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
		/* Advice goes to the device, with the MR's key, flushed. */
		CHECK_OK(iovm_mr_advise(mr, (char *)buf + PG, 5 * PG, IOVM_ADVISE_WRITE));
		adv = fake_ibv_last_advice();
		CHECK_EQ(adv.addr, (uint64_t)(uintptr_t)buf + PG);
		CHECK_EQ(adv.len, 5 * PG);
		CHECK_EQ(adv.lkey, info.lkey);
		CHECK(adv.write && adv.flush);
		/* Outside the MR: refused before the device hears of it. */
		uint64_t advises = fake_ibv_counts().advises;
		CHECK_EQ(iovm_mr_advise(mr, (char *)buf + 31 * PG, 2 * PG, 0), -ERANGE);
		CHECK_EQ(fake_ibv_counts().advises, advises);
		CHECK_OK(iovm_mr_dereg(mr));

		/* Implicit: the device's own, whole address space. */
		CHECK_OK(iovm_mr_reg(dom, NULL, SIZE_MAX, IOVM_ACCESS_ON_DEMAND | IOVM_ACCESS_LOCAL_WRITE, &mr));
		CHECK_OK(iovm_mr_query(mr, &info));
		CHECK(info.implicit);
		CHECK_OK(fake_ibv_find(info.lkey, &fm));
		CHECK(fm.addr == NULL && fm.len == SIZE_MAX && (fm.access & IBV_ACCESS_ON_DEMAND));
		CHECK_OK(iovm_mr_advise(mr, buf, 3 * PG, 0));
		CHECK_EQ(fake_ibv_last_advice().lkey, info.lkey);
		CHECK_OK(iovm_mr_dereg(mr));
		CHECK_EQ(fake_ibv_find(info.lkey, &fm), -ENOENT);
	}
	close_bound(dev, dom);
	munmap(buf, 32 * PG);
}

/* The device refuses: iovm's registration is undone whole, and the next one works. */
TEST(device_refusal_leaves_nothing)
{
	static const int errs[] = { ENOMEM, EFAULT, EPERM, EAGAIN };
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	void *buf = pages(16);

	open_bound("verbs:fake1", &dev, &dom);
	for (unsigned i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		struct iovm_reg_stats st0, st;
		struct fake_ibv_counts c0 = fake_ibv_counts();

		CHECK_OK(iovm_reg_stats(ctx, &st0));
		fake_ibv_fail_next_reg(errs[i]);
		CHECK_EQ(iovm_mr_reg(dom, buf, 16 * PG, i % 2 ? IOVM_ACCESS_ON_DEMAND : IOVM_ACCESS_LOCAL_WRITE, &mr),
			 -errs[i]);
		CHECK_OK(iovm_reg_stats(ctx, &st));
		CHECK_EQ(st.mrs, st0.mrs);
		CHECK_EQ(st.locked_bytes, st0.locked_bytes);
		CHECK_EQ(fake_ibv_counts().live, c0.live);
		fake_ibv_fail_next_reg(errs[i]);
		CHECK_EQ(iovm_mr_reg(dom, NULL, SIZE_MAX, IOVM_ACCESS_ON_DEMAND, &mr), -errs[i]);
		CHECK_OK(iovm_reg_stats(ctx, &st));
		CHECK_EQ(st.mrs, st0.mrs);
		/* The same memory registers at once afterwards. */
		CHECK_OK(iovm_mr_reg(dom, buf, 16 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
		CHECK_OK(iovm_mr_dereg(mr));
	}
	/* A pinned MR of memory that is not all there: iovm refuses before the device is asked. */
	{
		struct fake_ibv_counts c0 = fake_ibv_counts();

		munmap((char *)buf + 8 * PG, PG);
		CHECK_EQ(iovm_mr_reg(dom, buf, 16 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr), -EFAULT);
		CHECK_EQ(fake_ibv_counts().regs, c0.regs);
	}
	close_bound(dev, dom);
	munmap(buf, 16 * PG);
}

/* The cache in front of the device: hits make no device call; replaced memory is never a hit. */
TEST(cache_hits_and_replacement)
{
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_rcache *cache;
	struct iovm_mr *mr, *mr2;
	struct iovm_mr_info i1, i2;
	struct fake_ibv_counts c0;
	struct fake_ibv_mr fm;
	uint8_t *buf = pages(64);

	open_bound("verbs:fake0", &dev, &dom);
	CHECK_OK(iovm_rcache_create(dom, NULL, &cache));
	c0 = fake_ibv_counts();
	CHECK_OK(iovm_rcache_get(cache, buf, 64 * PG, IOVM_ACCESS_REMOTE_WRITE, &mr));
	CHECK_EQ(fake_ibv_counts().regs, c0.regs + 1);
	CHECK_OK(iovm_mr_query(mr, &i1));
	CHECK_OK(fake_ibv_find(i1.lkey, &fm));
	CHECK_OK(iovm_rcache_put(cache, mr));
	for (int i = 0; i < 100; i++) {
		CHECK_OK(iovm_rcache_get(cache, buf + 1000, 10 * PG, i % 2 ? IOVM_ACCESS_REMOTE_WRITE : 0, &mr2));
		CHECK(mr2 == mr);
		CHECK_OK(iovm_rcache_put(cache, mr2));
	}
	/* 100 hits, no device call. */
	CHECK_EQ(fake_ibv_counts().regs, c0.regs + 1);
	/* The memory replaced: the next get is a fresh registration on the device, with new keys. */
	CHECK(mmap(buf + 16 * PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
	      buf + 16 * PG);
	CHECK_OK(iovm_rcache_get(cache, buf, 64 * PG, IOVM_ACCESS_REMOTE_WRITE, &mr2));
	CHECK_OK(iovm_mr_query(mr2, &i2));
	CHECK(i2.valid && i2.valid_pages == 64);
	CHECK(i2.lkey != i1.lkey && i2.rkey != i1.rkey);
	CHECK_OK(fake_ibv_find(i2.lkey, &fm));
	CHECK(fm.addr == (void *)buf);
	CHECK_EQ(fake_ibv_counts().regs, c0.regs + 2);
	CHECK_OK(iovm_rcache_put(cache, mr2));
	CHECK_OK(iovm_rcache_destroy(cache));
	/* Everything the cache registered is gone from the device too. */
	CHECK_EQ(fake_ibv_counts().live, c0.live);
	CHECK_EQ(fake_ibv_counts().bad_deregs, 0);
	close_bound(dev, dom);
	munmap(buf, 64 * PG);
}

/* Detach is refused while the device's MRs live; closing the device takes them off it. */
TEST(detach_and_close_with_mrs)
{
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr[3];
	struct fake_ibv_counts c0 = fake_ibv_counts();
	void *buf = pages(16);

	open_bound("verbs:fake1", &dev, &dom);
	CHECK_OK(iovm_mr_reg(dom, buf, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr[0]));
	CHECK_OK(iovm_mr_reg(dom, (char *)buf + 4 * PG, 4 * PG, IOVM_ACCESS_ON_DEMAND, &mr[1]));
	CHECK_OK(iovm_mr_reg(dom, NULL, SIZE_MAX, IOVM_ACCESS_ON_DEMAND, &mr[2]));
	CHECK_EQ(fake_ibv_counts().live, c0.live + 3);
	CHECK_EQ(iovm_device_detach(dev, IOVM_PASID_NONE), -EBUSY);
	CHECK_EQ(iovm_domain_destroy(dom), -EBUSY);
	CHECK_OK(iovm_mr_dereg(mr[0]));
	CHECK_EQ(iovm_device_detach(dev, IOVM_PASID_NONE), -EBUSY);
	/* Closed with two MRs: off the device first (its protection domain could not go otherwise). */
	CHECK_OK(iovm_device_close(dev));
	CHECK_EQ(fake_ibv_counts().live, c0.live);
	CHECK_EQ(fake_ibv_counts().pds, c0.pds);
	CHECK_EQ(fake_ibv_counts().contexts, c0.contexts);
	/* They stay iovm's, and go as usual. */
	CHECK_OK(iovm_mr_dereg(mr[1]));
	CHECK_OK(iovm_mr_dereg(mr[2]));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_EQ(fake_ibv_counts().bad_deregs, 0);
	munmap(buf, 16 * PG);
}

/* The context closed with devices, MRs and a cache in place: all of it gone from the device. */
TEST(context_close_takes_all)
{
	struct iovm_ctx *c;
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_rcache *cache;
	struct iovm_mr *mr;
	struct fake_ibv_counts c0 = fake_ibv_counts();
	void *buf = pages(16);

	CHECK_OK(iovm_open("", &c));
	CHECK_OK(iovm_device_open(c, "verbs:fake1", &dev));
	CHECK_OK(iovm_domain_create(c, NULL, &dom));
	CHECK_OK(iovm_device_attach(dev, dom, IOVM_PASID_NONE));
	CHECK_OK(iovm_mr_reg(dom, buf, 8 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
	CHECK_OK(iovm_rcache_create(dom, NULL, &cache));
	CHECK_OK(iovm_rcache_get(cache, (char *)buf + 8 * PG, 8 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
	CHECK_OK(iovm_rcache_put(cache, mr));
	CHECK_EQ(fake_ibv_counts().live, c0.live + 2);
	CHECK_OK(iovm_close(c));
	CHECK_EQ(fake_ibv_counts().live, c0.live);
	CHECK_EQ(fake_ibv_counts().pds, c0.pds);
	CHECK_EQ(fake_ibv_counts().contexts, c0.contexts);
	CHECK_EQ(fake_ibv_counts().bad_deregs, 0);
	munmap(buf, 16 * PG);
}

/* Without the library: a clear refusal, and iovm goes on. In a child: the library is loaded here. */
TEST(no_library)
{
	pid_t pid = fork();
	int st;

	CHECK(pid >= 0);
	if (!pid) {
		struct iovm_device *dev;
		struct iovm_ctx *c;
		int ok;

		setenv("IOVM_VERBS_LIBRARY", "/nonexistent/libibverbs.so.1", 1);
		if (iovm_open("", &c))
			_exit(2);
		ok = iovm_device_open(c, "verbs:rxe0", &dev) == -EOPNOTSUPP &&
		     strstr(iovm_error_detail(), "libibverbs1") != NULL;
		/* The rest works. */
		ok = ok && !iovm_device_open(c, "sw", &dev) && !iovm_device_close(dev);
		iovm_close(c);
		_exit(ok ? 0 : 1);
	}
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/*
 * rdma-core's own library where it is installed, on a machine with no RDMA
 * device (or with some: then not "nosuch"): refused with -ENODEV, or
 * -EOPNOTSUPP where the library finds no RDMA subsystem at all.
 */
TEST(real_library_without_the_device)
{
	void *h = dlopen("libibverbs.so.1", RTLD_NOW | RTLD_LOCAL);
	pid_t pid;
	int st;

	if (!h)
		SKIP_CASE("rdma-core's libibverbs.so.1 is not installed");
	dlclose(h);
	pid = fork();
	CHECK(pid >= 0);
	if (!pid) {
		struct iovm_device *dev;
		struct iovm_ctx *c;
		int ret;

		unsetenv("IOVM_VERBS_LIBRARY");
		if (iovm_open("", &c))
			_exit(2);
		ret = iovm_device_open(c, "verbs:iovm-nosuch", &dev);
		printf("# real libibverbs: %d (%s)\n", ret, iovm_error_detail());
		iovm_close(c);
		_exit(ret == -ENODEV || ret == -EOPNOTSUPP ? 0 : 1);
	}
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/*
 * Every allocation and system call under a registration on a verbs
 * domain (and under opening the device) fails in turn: each failure says
 * so, leaves neither an MR of iovm's nor one of the device's, and the
 * same call works once disarmed.
 */
TEST(every_failure_point)
{
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_rcache *cache;
	unsigned long fired = 0;
	void *buf;

#ifndef IOVM_DEBUG_CHECKS
	SKIP_CASE("fault injection needs the debug_checks build option");
#endif
	buf = pages(16);
	open_bound("verbs:fake1", &dev, &dom);
	CHECK_OK(iovm_rcache_create(dom, NULL, &cache));
	for (int kind = 0; kind < 3; kind++) {
		for (unsigned long n = 1;; n++) {
			struct fake_ibv_counts c0 = fake_ibv_counts();
			struct iovm_reg_stats st0, st;
			struct iovm_mr *mr = NULL;
			int ret;
			bool hit;

			CHECK_OK(iovm_reg_stats(ctx, &st0));
			fi_arm(FI_ALL, n, 0);
			if (kind == 0)
				ret = iovm_mr_reg(dom, buf, 16 * PG, IOVM_ACCESS_REMOTE_WRITE, &mr);
			else if (kind == 1)
				ret = iovm_mr_reg(dom, NULL, SIZE_MAX, IOVM_ACCESS_ON_DEMAND, &mr);
			else
				ret = iovm_rcache_get(cache, buf, 16 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr);
			hit = fi_disarm();
			if (!hit) {
				CHECK_OK(ret);
				if (kind == 2) {
					CHECK_OK(iovm_rcache_put(cache, mr));
					CHECK_OK(iovm_rcache_destroy(cache));
					CHECK_OK(iovm_rcache_create(dom, NULL, &cache));
				} else {
					CHECK_OK(iovm_mr_dereg(mr));
				}
				break;
			}
			fired++;
			if (!ret) {
				/* A failure the call got past (a retried or optional step): it works whole. */
				struct iovm_mr_info info;
				struct fake_ibv_mr fm;

				CHECK_OK(iovm_mr_query(mr, &info));
				CHECK_OK(fake_ibv_find(info.lkey, &fm));
				if (kind == 2) {
					CHECK_OK(iovm_rcache_put(cache, mr));
					CHECK_OK(iovm_rcache_destroy(cache));
					CHECK_OK(iovm_rcache_create(dom, NULL, &cache));
				} else {
					CHECK_OK(iovm_mr_dereg(mr));
				}
				continue;
			}
			CHECK(ret < 0);
			CHECK_OK(iovm_reg_stats(ctx, &st));
			CHECK_EQ(st.mrs, st0.mrs);
			CHECK_EQ(st.locked_bytes, st0.locked_bytes);
			CHECK_EQ(fake_ibv_counts().live, c0.live);
		}
	}
	CHECK(fired > 3);
	printf("# %lu failure points under verbs registrations\n", fired);
	/* Opening the device. */
	for (unsigned long n = 1;; n++) {
		struct fake_ibv_counts c0 = fake_ibv_counts();
		struct iovm_device *d = NULL;
		int ret;

		fi_arm(FI_ALL, n, 0);
		ret = iovm_device_open(ctx, "verbs:fake0", &d);
		if (!fi_disarm()) {
			CHECK_OK(ret);
			CHECK_OK(iovm_device_close(d));
			break;
		}
		if (!ret) {
			CHECK_OK(iovm_device_close(d));
			continue;
		}
		CHECK_EQ(fake_ibv_counts().contexts, c0.contexts);
		CHECK_EQ(fake_ibv_counts().pds, c0.pds);
	}
	CHECK_OK(iovm_rcache_destroy(cache));
	CHECK_EQ(fake_ibv_counts().bad_deregs, 0);
	close_bound(dev, dom);
	munmap(buf, 16 * PG);
}

int main(void)
{
	test_init();
	if (!getenv("IOVM_VERBS_LIBRARY")) {
		printf("SKIP: IOVM_VERBS_LIBRARY does not name the stand-in library (meson sets it)\n");
		return TEST_SKIP;
	}
	CHECK_OK(iovm_open("", &ctx));
	RUN(no_library);
	RUN(real_library_without_the_device);
	RUN(devices_by_name);
	RUN(attach_rules);
	RUN(rights_and_keys);
	RUN(on_demand_needs_odp);
	RUN(device_refusal_leaves_nothing);
	RUN(cache_hits_and_replacement);
	RUN(detach_and_close_with_mrs);
	RUN(context_close_takes_all);
	RUN(every_failure_point);
	CHECK_OK(iovm_close(ctx));
	return 0;
}
