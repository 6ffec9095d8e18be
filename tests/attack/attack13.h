/* SPDX-License-Identifier: MIT */
/*
 * attack13.h - what the thirteenth adversarial round (test_attack13_*.c)
 * shares: the verbs backend ("verbs:NAME", iovm/dev.h) against the
 * stand-in libibverbs (tests/dev/fake_ibverbs.c), attacked from the
 * public headers alone. The fake keeps every device MR, so each test can
 * say what the device holds: no MR leaked, none deregistered twice, none
 * left of memory that was replaced.
 *
 * Tests that found a broken promise run only with IOVM_ATTACK13_KNOWN=1
 * (A13_KNOWN()); otherwise they print a skip line naming the bug.
 */
#ifndef IOVM_TESTS_ATTACK13_H
#define IOVM_TESTS_ATTACK13_H

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include <iovm.h>

#include "dev/fake_ibverbs.h"
#include "harness.h"

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif

#define PG 4096u

#define A13_KNOWN(bug)                                                                   \
	do {                                                                             \
		const char *_k = getenv("IOVM_ATTACK13_KNOWN");                          \
		if (!_k || strcmp(_k, "1"))                                              \
			SKIP_CASE("known bug (IOVM_ATTACK13_KNOWN=1 runs it): %s", bug); \
	} while (0)

#define A13_RUN(name)                                  \
	do {                                           \
		const char *_o = getenv("A13_ONLY");   \
		if (!_o || !strcmp(_o, #name))         \
			RUN(name);                     \
	} while (0)

/* The program needs the stand-in library (meson sets IOVM_VERBS_LIBRARY). */
static inline void a13_init(void)
{
	test_init();
	if (!getenv("IOVM_VERBS_LIBRARY"))
		SKIP("IOVM_VERBS_LIBRARY does not name the stand-in library (meson sets it)");
}

static inline struct iovm_ctx *a13_ctx(void)
{
	struct iovm_ctx *c;

	CHECK_OK(iovm_open("log_level=error", &c));
	return c;
}

/* A device of the fake, attached to a new managed domain. */
static inline void a13_bound(struct iovm_ctx *c, const char *spec, struct iovm_device **dev,
			     struct iovm_domain **dom)
{
	CHECK_OK(iovm_device_open(c, spec, dev));
	CHECK_OK(iovm_domain_create(c, NULL, dom));
	CHECK_OK(iovm_device_attach(*dev, *dom, IOVM_PASID_NONE));
}

static inline void a13_unbind(struct iovm_device *dev, struct iovm_domain *dom)
{
	CHECK_OK(iovm_device_detach(dev, IOVM_PASID_NONE));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_device_close(dev));
}

static inline void *a13_pages(size_t n)
{
	void *p = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	memset(p, 0x5a, n * PG);
	return p;
}

/* The protection domain of a verbs device. */
static inline void *a13_pd(struct iovm_device *dev)
{
	struct iovm_device_verbs v;

	CHECK_OK(iovm_device_verbs(dev, &v));
	return v.pd;
}

/* The device's MR for @mr: exactly @addr/@len, in @pd, with the keys iovm_mr_query() gives. */
static inline struct fake_ibv_mr a13_dev_mr(const struct iovm_mr *mr, void *pd)
{
	struct iovm_mr_info info;
	struct fake_ibv_mr fm;

	CHECK_OK(iovm_mr_query(mr, &info));
	CHECK_OK(fake_ibv_find(info.lkey, &fm));
	CHECK(fm.pd == pd);
	CHECK(fm.addr == info.addr);
	CHECK_EQ(fm.len, info.len);
	CHECK_EQ(fm.rkey, info.rkey);
	return fm;
}

/* The device holds nothing more than at @c0, and nothing went wrong on it. */
static inline void a13_device_clean(struct fake_ibv_counts c0)
{
	struct fake_ibv_counts c = fake_ibv_counts();

	CHECK_EQ(c.live, c0.live);
	CHECK_EQ(c.bad_deregs, c0.bad_deregs);
	CHECK_EQ(c.deregs_after_close, c0.deregs_after_close);
	CHECK_EQ(c.regs_after_close, c0.regs_after_close);
	CHECK_EQ(c.dealloc_busy, c0.dealloc_busy);
	CHECK_EQ(c.close_busy, c0.close_busy);
}

/* No bad call reached the device since @c0 (MRs may still live). */
static inline void a13_device_sane(struct fake_ibv_counts c0)
{
	struct fake_ibv_counts c = fake_ibv_counts();

	CHECK_EQ(c.bad_deregs, c0.bad_deregs);
	CHECK_EQ(c.deregs_after_close, c0.deregs_after_close);
	CHECK_EQ(c.regs_after_close, c0.regs_after_close);
}

/* VmLck of /proc/self/status, in KiB. */
static inline long a13_vmlck_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmLck:", 6))
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

#endif /* IOVM_TESTS_ATTACK13_H */
