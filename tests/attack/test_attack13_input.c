/* SPDX-License-Identifier: MIT */
/*
 * test_attack13_input.c - bad input to the verbs backend: device specs
 * near the names, NULLs, PASIDs and domains a verbs device cannot take,
 * registrations and advice a verbs domain must refuse before the device
 * hears of them, on-demand on a device without ODP, advice past 4 GiB
 * (an ibv_sge's length is 32 bits), and libraries that are not
 * libibverbs. Every refusal is a negative errno, leaves nothing on the
 * device, and the next good call works.
 */
#include <stdint.h>

#include "attack/attack13.h"

static struct iovm_ctx *ctx;

TEST(specs)
{
	static const char *const bad[] = {
		"verbs:fake",   "verbs:fake00", "verbs:FAKE0", "verbs:fake0 ", " verbs:fake0", "verbs:fake0\n",
		"verbs:fake0:", "verbs: fake0", "verbs:fak",   "verbs:fake0/", "verbs:*",      "verbs:fake?",
		"verbs:.",      "verbs:..",     "Verbs:fake0", "verbs",        "verbs:\t",
	};
	struct fake_ibv_counts c0 = fake_ibv_counts();
	struct iovm_device *dev = NULL;
	char longname[400];
	int ret;

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		dev = NULL;
		ret = iovm_device_open(ctx, bad[i], &dev);
		CHECK_MSG(ret == -ENODEV || ret == -EINVAL, "\"%s\": %d", bad[i], ret);
		CHECK(*iovm_error_detail());
		if (ret == -ENODEV && !strncmp(bad[i], "verbs:", 6))
			CHECK_MSG(strstr(iovm_error_detail(), "fake0") && strstr(iovm_error_detail(), "fake1"),
				  "\"%s\": the detail does not list the devices: %s", bad[i], iovm_error_detail());
		CHECK_EQ(fake_ibv_counts().contexts, c0.contexts);
	}
	/* Names longer than any device's (IOVM_VERBS_NAME_MAX, the kernel's 64). */
	for (size_t n = IOVM_VERBS_NAME_MAX - 2; n < sizeof(longname) - 8; n += 37) {
		strcpy(longname, "verbs:");
		memset(longname + 6, 'f', n);
		memcpy(longname + 6, "fake0", 5);
		longname[6 + n] = 0;
		ret = iovm_device_open(ctx, longname, &dev);
		CHECK_MSG(ret == -ENODEV || ret == -EINVAL, "%zu-char name: %d", n, ret);
	}
	CHECK_EQ(iovm_device_open(NULL, "verbs:fake0", &dev), -EINVAL);
	CHECK_EQ(iovm_device_open(ctx, NULL, &dev), -EINVAL);
	CHECK_EQ(iovm_device_open(ctx, "verbs:fake0", NULL), -EINVAL);
	CHECK_EQ(fake_ibv_counts().contexts, c0.contexts);
	CHECK_EQ(fake_ibv_counts().pds, c0.pds);
	/* The same device twice: two of iovm's, each with its own protection domain. */
	{
		struct iovm_device *a, *b;

		CHECK_OK(iovm_device_open(ctx, "verbs:fake0", &a));
		CHECK_OK(iovm_device_open(ctx, "verbs:fake0", &b));
		CHECK(a13_pd(a) != a13_pd(b));
		CHECK(iovm_device_id(a) != iovm_device_id(b));
		CHECK_OK(iovm_device_close(a));
		CHECK_OK(iovm_device_close(b));
	}
	CHECK_EQ(fake_ibv_counts().contexts, c0.contexts);
	CHECK_EQ(fake_ibv_counts().pds, c0.pds);
}

TEST(nulls_pasids_domains)
{
	struct fake_ibv_counts c0 = fake_ibv_counts();
	struct iovm_device *dev;
	struct iovm_device_verbs v;
	struct iovm_domain *dom, *other;
	struct iovm_ctx *c2 = a13_ctx();
	static const enum iovm_domain_type types[] = { IOVM_DOMAIN_IDENTITY, IOVM_DOMAIN_VA };

	CHECK_OK(iovm_device_open(ctx, "verbs:fake1", &dev));
	CHECK_EQ(iovm_device_verbs(NULL, &v), -EINVAL);
	CHECK_EQ(iovm_device_verbs(dev, NULL), -EINVAL);
	CHECK_EQ(iovm_device_close(NULL), -EINVAL);
	CHECK_OK(iovm_domain_create(ctx, NULL, &dom));
	CHECK_EQ(iovm_device_attach(NULL, dom, IOVM_PASID_NONE), -EINVAL);
	CHECK_EQ(iovm_device_attach(dev, NULL, IOVM_PASID_NONE), -EINVAL);
	CHECK_EQ(iovm_device_attach(dev, dom, 1), -EINVAL);
	CHECK_EQ(iovm_device_attach(dev, dom, IOVM_PASID_MAX), -EINVAL);
	CHECK_EQ(iovm_device_attach(dev, dom, IOVM_PASID_MAX + 1), -EINVAL);
	CHECK_EQ(iovm_device_attach(dev, dom, UINT32_MAX), -EINVAL);
	CHECK_EQ(iovm_device_detach(dev, IOVM_PASID_NONE), -ENOENT);
	CHECK(iovm_device_detach(dev, 7) < 0);
	CHECK(iovm_device_detach(dev, UINT32_MAX) < 0);
	for (unsigned i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct iovm_domain_attr a = { .type = types[i] };
		struct iovm_domain *d;

		if (iovm_domain_create(ctx, &a, &d))
			CHECK_MSG(iovm_device_attach(dev, d, IOVM_PASID_NONE) == -EINVAL, "domain type %d", types[i]);
		CHECK_OK(iovm_domain_destroy(d));
	}
	/* A domain of another context. */
	CHECK_OK(iovm_domain_create(c2, NULL, &other));
	CHECK_EQ(iovm_device_attach(dev, other, IOVM_PASID_NONE), -EINVAL);
	CHECK_OK(iovm_domain_destroy(other));
	CHECK_OK(iovm_close(c2));
	/* Refusals left the device free: it takes the domain now. */
	CHECK_OK(iovm_device_attach(dev, dom, IOVM_PASID_NONE));
	/* Queues, BARs, config space: none on a verbs device. */
	{
		struct iovm_queue *q;
		void *bar;
		size_t len;
		uint32_t w;

		CHECK_EQ(iovm_queue_create(dev, NULL, &q), -EOPNOTSUPP);
		CHECK(iovm_device_bar(dev, 0, &bar, &len) < 0);
		CHECK(iovm_device_config_read(dev, 0, &w, 4) < 0);
		CHECK(iovm_device_msi(dev, -1) < 0);
	}
	a13_unbind(dev, dom);
	a13_device_clean(c0);
}

/* Registrations a verbs domain refuses: none reaches the device. */
TEST(bad_registrations)
{
	struct fake_ibv_counts c0 = fake_ibv_counts();
	struct iovm_device *dev, *dev0;
	struct iovm_domain *dom, *dom0;
	struct iovm_rcache *cache;
	struct iovm_mr *mr;
	struct iovm_reg_stats st0, st;
	uint8_t *buf = a13_pages(8);
	uint8_t *ro = mmap(NULL, 4 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(ro != MAP_FAILED);
	a13_bound(ctx, "verbs:fake1", &dev, &dom);
	a13_bound(ctx, "verbs:fake0", &dev0, &dom0);
	CHECK_OK(iovm_rcache_create(dom, NULL, &cache));
	CHECK_OK(iovm_reg_stats(ctx, &st0));
	CHECK_EQ(iovm_mr_reg(dom, NULL, 4 * PG, 0, &mr), -EINVAL);
	CHECK_EQ(iovm_mr_reg(dom, buf, 0, 0, &mr), -EINVAL);
	CHECK_EQ(iovm_mr_reg(dom, buf, 4 * PG, 0, NULL), -EINVAL);
	CHECK_EQ(iovm_mr_reg(NULL, buf, 4 * PG, 0, &mr), -EINVAL);
	CHECK_EQ(iovm_mr_reg(dom, (void *)(UINTPTR_MAX - PG + 1), 2 * PG, 0, &mr), -EINVAL);
	CHECK_EQ(iovm_mr_reg(dom, buf, SIZE_MAX, 0, &mr), -EINVAL);
	CHECK_EQ(iovm_mr_reg(dom, buf, 4 * PG, 1u << 5, &mr), -EINVAL);
	CHECK_EQ(iovm_mr_reg(dom, buf, 4 * PG, 1u << 31, &mr), -EINVAL);
	/* Implicit needs on-demand, NULL and SIZE_MAX together. */
	CHECK_EQ(iovm_mr_reg(dom, NULL, SIZE_MAX, IOVM_ACCESS_LOCAL_WRITE, &mr), -EINVAL);
	CHECK_EQ(iovm_mr_reg(dom, buf, SIZE_MAX, IOVM_ACCESS_ON_DEMAND, &mr), -EINVAL);
	CHECK(iovm_mr_reg(dom, NULL, SIZE_MAX - 1, IOVM_ACCESS_ON_DEMAND, &mr) < 0);
	/* Pinned over memory not all there, or read-only for a write right. */
	CHECK_EQ(iovm_mr_reg(dom, ro, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr), -EFAULT);
	CHECK_EQ(iovm_mr_reg(dom, ro, 4 * PG, IOVM_ACCESS_REMOTE_WRITE, &mr), -EFAULT);
	CHECK_EQ(iovm_rcache_get(cache, ro, 4 * PG, IOVM_ACCESS_REMOTE_WRITE, &mr), -EFAULT);
	/* The cache takes no on-demand or unknown rights. */
	CHECK_EQ(iovm_rcache_get(cache, buf, 4 * PG, IOVM_ACCESS_ON_DEMAND, &mr), -EINVAL);
	CHECK_EQ(iovm_rcache_get(cache, buf, 4 * PG, 1u << 6, &mr), -EINVAL);
	CHECK_EQ(iovm_rcache_get(cache, buf, 0, 0, &mr), -EINVAL);
	CHECK_EQ(iovm_rcache_get(cache, NULL, 4 * PG, 0, &mr), -EINVAL);
	/* On demand on the device without ODP: -EOPNOTSUPP, every shape of it. */
	CHECK_EQ(iovm_mr_reg(dom0, buf, 4 * PG, IOVM_ACCESS_ON_DEMAND, &mr), -EOPNOTSUPP);
	CHECK_EQ(iovm_mr_reg(dom0, buf, 4 * PG, IOVM_ACCESS_ON_DEMAND | IOVM_ACCESS_REMOTE_WRITE, &mr),
		 -EOPNOTSUPP);
	CHECK_EQ(iovm_mr_reg(dom0, ro, 4 * PG, IOVM_ACCESS_ON_DEMAND, &mr), -EOPNOTSUPP);
	CHECK_EQ(iovm_mr_reg(dom0, NULL, SIZE_MAX, IOVM_ACCESS_ON_DEMAND | IOVM_ACCESS_REMOTE_READ, &mr),
		 -EOPNOTSUPP);
	CHECK(strstr(iovm_error_detail(), "fake0") || strstr(iovm_error_detail(), "on-demand"));
	CHECK_EQ(fake_ibv_counts().regs, c0.regs);
	CHECK_OK(iovm_reg_stats(ctx, &st));
	CHECK_EQ(st.mrs, st0.mrs);
	CHECK_EQ(st.locked_bytes, st0.locked_bytes);
	/* The good call works after all of it. */
	CHECK_OK(iovm_mr_reg(dom, buf, 4 * PG, IOVM_ACCESS_REMOTE_WRITE, &mr));
	CHECK(a13_dev_mr(mr, a13_pd(dev)).access == (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE));
	CHECK_EQ(iovm_mr_dereg(NULL), -EINVAL);
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(iovm_mr_reg(dom, ro, 4 * PG, IOVM_ACCESS_REMOTE_READ, &mr));
	CHECK(a13_dev_mr(mr, a13_pd(dev)).access == IBV_ACCESS_REMOTE_READ);
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(iovm_rcache_destroy(cache));
	a13_unbind(dev, dom);
	a13_unbind(dev0, dom0);
	a13_device_clean(c0);
	munmap(buf, 8 * PG);
	munmap(ro, 4 * PG);
}

/* Advice: only valid ranges and flags reach the device, with the MR's key. */
TEST(advice)
{
	struct fake_ibv_counts c0 = fake_ibv_counts();
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *odp, *odp_ro, *pinned, *imp;
	struct fake_ibv_mr fm;
	struct fake_ibv_advice a;
	uint8_t *buf = a13_pages(32);
	uint64_t n;
	bool hole_bug = false;

	a13_bound(ctx, "verbs:fake1", &dev, &dom);
	CHECK_OK(iovm_mr_reg(dom, buf + 8 * PG, 16 * PG, IOVM_ACCESS_ON_DEMAND | IOVM_ACCESS_LOCAL_WRITE, &odp));
	CHECK_OK(iovm_mr_reg(dom, buf, 8 * PG, IOVM_ACCESS_ON_DEMAND | IOVM_ACCESS_REMOTE_READ, &odp_ro));
	CHECK_OK(iovm_mr_reg(dom, buf, 8 * PG, IOVM_ACCESS_LOCAL_WRITE, &pinned));
	CHECK_OK(iovm_mr_reg(dom, NULL, SIZE_MAX, IOVM_ACCESS_ON_DEMAND | IOVM_ACCESS_LOCAL_WRITE, &imp));
	fm = a13_dev_mr(odp, a13_pd(dev));
	n = fake_ibv_counts().advises;
	CHECK_EQ(iovm_mr_advise(NULL, buf, PG, 0), -EINVAL);
	CHECK_EQ(iovm_mr_advise(odp, NULL, PG, 0), -EINVAL);
	CHECK_EQ(iovm_mr_advise(odp, buf + 8 * PG, 0, 0), -EINVAL);
	CHECK_EQ(iovm_mr_advise(odp, buf + 8 * PG, PG, 1u << 1), -EINVAL);
	CHECK_EQ(iovm_mr_advise(odp, buf + 8 * PG, PG, 1u << 31), -EINVAL);
	CHECK_EQ(iovm_mr_advise(odp_ro, buf, PG, IOVM_ADVISE_WRITE), -EINVAL);
	CHECK_EQ(iovm_mr_advise(pinned, buf, PG, 0), -EINVAL);
	CHECK_EQ(iovm_mr_advise(odp, buf + 7 * PG, 2 * PG, 0), -ERANGE);
	CHECK_EQ(iovm_mr_advise(odp, buf + 23 * PG, 2 * PG, 0), -ERANGE);
	CHECK_EQ(iovm_mr_advise(odp, buf + 8 * PG, SIZE_MAX, 0), -ERANGE);
	CHECK_EQ(iovm_mr_advise(odp, buf + 24 * PG, 1, 0), -ERANGE);
	CHECK_EQ(iovm_mr_advise(imp, (void *)(UINTPTR_MAX - PG + 1), PG, 0), -ERANGE);
	CHECK_EQ(iovm_mr_advise(imp, (void *)(UINTPTR_MAX - PG + 1), 2 * PG, 0), -ERANGE);
	/* A hole in the range. */
	CHECK_EQ(fake_ibv_counts().advises, n);
	munmap(buf + 20 * PG, PG);
	{
		/* The same on a domain with no device: iovm's own answer, to compare. */
		struct iovm_domain *plain;
		struct iovm_mr *pm;
		int r_plain, r_odp, r_imp;

		CHECK_OK(iovm_domain_create(ctx, NULL, &plain));
		CHECK_OK(iovm_mr_reg(plain, buf + 8 * PG, 16 * PG, IOVM_ACCESS_ON_DEMAND, &pm));
		r_plain = iovm_mr_advise(pm, buf + 19 * PG, 3 * PG, 0);
		CHECK_OK(iovm_mr_dereg(pm));
		CHECK_OK(iovm_domain_destroy(plain));
		r_odp = iovm_mr_advise(odp, buf + 19 * PG, 3 * PG, 0);
		r_imp = iovm_mr_advise(imp, buf + 19 * PG, 3 * PG, 0);
		printf("# advise over a hole: %d without a device; on the verbs device %d (MR), %d (implicit); the "
		       "device was told %llu time(s)\n",
		       r_plain, r_odp, r_imp, (unsigned long long)(fake_ibv_counts().advises - n));
		CHECK_EQ(r_plain, -EFAULT);
		hole_bug = r_odp != -EFAULT || r_imp != -EFAULT;
	}
	n = fake_ibv_counts().advises;
	/* Good advice: exact, with the MR's key. */
	CHECK_OK(iovm_mr_advise(odp, buf + 8 * PG + 1, 3 * PG, 0));
	CHECK_EQ(fake_ibv_counts().advises, n + 1);
	a = fake_ibv_last_advice();
	CHECK_EQ(a.lkey, fm.lkey);
	CHECK(!a.write);
	CHECK(a.addr <= (uint64_t)(uintptr_t)buf + 8 * PG + 1);
	CHECK(a.addr + a.total >= (uint64_t)(uintptr_t)buf + 11 * PG + 1);
	CHECK(a.addr >= (uint64_t)(uintptr_t)buf + 8 * PG && a.addr + a.total <= (uint64_t)(uintptr_t)buf + 24 * PG);
	CHECK_OK(iovm_mr_advise(odp_ro, buf + PG, PG, 0));
	CHECK_EQ(fake_ibv_last_advice().lkey, a13_dev_mr(odp_ro, a13_pd(dev)).lkey);
	CHECK_OK(iovm_mr_dereg(odp));
	CHECK_OK(iovm_mr_dereg(odp_ro));
	CHECK_OK(iovm_mr_dereg(pinned));
	CHECK_OK(iovm_mr_dereg(imp));
	a13_unbind(dev, dom);
	a13_device_clean(c0);
	munmap(buf, 32 * PG);
	if (hole_bug) {
		A13_KNOWN("iovm_mr_advise() of a verbs on-demand MR (or implicit) over a hole returns 0, not -EFAULT, "
			  "and hands the range to ibv_advise_mr(); on a domain without a device it is -EFAULT");
		CHECK(!hole_bug);
	}
}

/*
 * Advice of more than 4 GiB: an ibv_sge's length is 32 bits. The device
 * must be told the range asked (split over entries or calls), or a part
 * of it, never a length cut modulo 2^32. Read-only memory: the pages are
 * the zero page, and a tiny pin budget keeps iovm's own prefetch small.
 */
TEST(advice_past_4g)
{
	const size_t len = (4ull << 30) + 8 * PG;
	struct fake_ibv_counts c0 = fake_ibv_counts();
	struct iovm_ctx *c;
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	struct fake_ibv_advice a;
	uint64_t n, bytes;
	uint8_t *big;
	int ret;

	if (sizeof(size_t) < 8)
		SKIP_CASE("32-bit");
	big = mmap(NULL, len + PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (big == MAP_FAILED)
		SKIP_CASE("no 4 GiB of address space");
	CHECK_OK(iovm_open("log_level=error,pin_budget=64K", &c));
	a13_bound(c, "verbs:fake1", &dev, &dom);
	CHECK_OK(iovm_mr_reg(dom, big, len + PG, IOVM_ACCESS_ON_DEMAND, &mr));
	n = fake_ibv_counts().advises;
	bytes = fake_ibv_counts().advised_bytes;
	ret = iovm_mr_advise(mr, big, len, 0);
	a = fake_ibv_last_advice();
	bytes = fake_ibv_counts().advised_bytes - bytes;
	printf("# advise of %zu bytes: %d; the device was told %llu call(s), %llu bytes in all; last: addr +%llu, "
	       "%u entries, %llu bytes\n",
	       len, ret, (unsigned long long)(fake_ibv_counts().advises - n), (unsigned long long)bytes,
	       (unsigned long long)(a.addr - (uintptr_t)big), a.nsge, (unsigned long long)a.total);
	CHECK_OK(ret);
	/* Told of the whole range (split as ibv_sge's 32 bits need), and of nothing beyond it. */
	CHECK(fake_ibv_counts().advises > n);
	CHECK(a.addr >= (uintptr_t)big && a.addr + a.total <= (uintptr_t)big + len);
	CHECK_EQ(bytes, len);
	CHECK_OK(iovm_mr_dereg(mr));
	a13_unbind(dev, dom);
	CHECK_OK(iovm_close(c));
	a13_device_clean(c0);
	munmap(big, len + PG);
}

/* IOVM_VERBS_LIBRARY naming things that are not libibverbs: refused, saying so; the rest works. */
TEST(not_libibverbs)
{
	static const char *const libs[] = {
		"libc.so.6", "/nonexistent.so", "/tmp", "/proc/self/status", "libm.so.6", "./nonexistent.so",
	};

	for (unsigned i = 0; i < sizeof(libs) / sizeof(libs[0]); i++) {
		int p[2], st;
		char msg[512] = "";
		pid_t pid;

		CHECK_OK(pipe(p));
		pid = fork();
		CHECK(pid >= 0);
		if (!pid) {
			struct iovm_device *dev;
			struct iovm_ctx *c;
			int ret, ok;

			close(p[0]);
			setenv("IOVM_VERBS_LIBRARY", libs[i], 1);
			if (iovm_open("log_level=error", &c))
				_exit(2);
			ret = iovm_device_open(c, "verbs:fake0", &dev);
			dprintf(p[1], "%d %s", ret, iovm_error_detail());
			ok = ret == -EOPNOTSUPP && *iovm_error_detail();
			/* Again: still refused, no crash. */
			ok = ok && iovm_device_open(c, "verbs:fake1", &dev) == -EOPNOTSUPP;
			ok = ok && !iovm_device_open(c, "sw", &dev) && !iovm_device_close(dev);
			iovm_close(c);
			_exit(ok ? 0 : 1);
		}
		close(p[1]);
		CHECK(read(p[0], msg, sizeof(msg) - 1) >= 0);
		close(p[0]);
		CHECK_EQ(waitpid(pid, &st, 0), pid);
		printf("# IOVM_VERBS_LIBRARY=%s: exit %d: %s\n", libs[i], WIFEXITED(st) ? WEXITSTATUS(st) : -1, msg);
		CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "IOVM_VERBS_LIBRARY=%s: status %#x, %s", libs[i], st,
			  msg);
	}
}

int main(void)
{
	a13_init();
	ctx = a13_ctx();
	/* First: the library is loaded once per process, and a fork()ed child inherits it. */
	A13_RUN(not_libibverbs);
	A13_RUN(specs);
	A13_RUN(nulls_pasids_domains);
	A13_RUN(bad_registrations);
	A13_RUN(advice);
	A13_RUN(advice_past_4g);
	CHECK_OK(iovm_close(ctx));
	return 0;
}
