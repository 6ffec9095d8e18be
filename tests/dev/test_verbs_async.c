/* SPDX-License-Identifier: MIT */
/*
 * test_verbs_async.c - iovm_mr_reg_async() in a domain bound to a verbs
 * device, against the stand-in libibverbs (fake_ibverbs.c, loaded through
 * IOVM_VERBS_LIBRARY): the device sees one registration of the whole
 * range, once every chunk is pinned, and its refusal stops the
 * registration.
 */
#include <errno.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <iovm.h>

#include "dev/fake_ibverbs.h"
#include "harness.h"
#include "reg/reg_internal.h"

#define PG 4096u

static struct iovm_ctx *ctx;

/* A device of the fake, attached to a new managed domain. */
static void open_bound(const char *spec, struct iovm_device **dev, struct iovm_domain **dom)
{
	CHECK_OK(iovm_device_open(ctx, spec, dev));
	CHECK_OK(iovm_domain_create(ctx, NULL, dom));
	CHECK_OK(iovm_device_attach(*dev, *dom, IOVM_PASID_NONE));
}

static void close_bound(struct iovm_device *dev, struct iovm_domain *dom)
{
	CHECK_OK(iovm_device_detach(dev, IOVM_PASID_NONE));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_device_close(dev));
}

/* The pinning thread held before chunk 1 until released. */
static sem_t reached;
static _Atomic bool released;

static void hold_at_1(struct iovm_mr *mr, uint64_t chunk)
{
	if (chunk != 1)
		return;
	sem_post(&reached);
	while (!atomic_load(&released) && !mr_async_cancelled(mr))
		sched_yield();
}

static void *pages(size_t n)
{
	void *p = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	memset(p, 0x5a, n * PG);
	return p;
}

/*
 * Registered in the background: the device sees one registration of the
 * whole range, made once every chunk is pinned; no part is usable before.
 * A device that refuses it stops the registration with its error.
 */
TEST(async_one_device_registration)
{
	struct iovm_mr_pinning pin;
	struct iovm_mr_info info;
	struct fake_ibv_counts c0;
	struct fake_ibv_mr f;
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	char *buf = pages(64);

	open_bound("verbs:fake0", &dev, &dom);
	c0 = fake_ibv_counts();
	sem_init(&reached, 0, 0);
	atomic_store(&mr_async_test_chunk, hold_at_1);
	CHECK_OK(iovm_mr_reg_async(dom, buf + 10, 60 * PG, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_READ,
				   IOVM_REG_THREADS(3) | IOVM_REG_CHUNK_SHIFT(16), &mr));
	/* Chunk 1 held: whatever else is pinned, nothing is usable, and the device has no registration. */
	sem_wait(&reached);
	CHECK_EQ(iovm_mr_wait(mr, buf + 10, PG, 0), -ETIMEDOUT);
	CHECK_EQ(iovm_mr_ready(mr, &pin), -EINPROGRESS);
	CHECK_EQ(pin.prefix, 0);
	CHECK_OK(iovm_mr_query(mr, &info));
	CHECK_EQ(info.lkey, 0);
	CHECK_EQ(fake_ibv_counts().regs, c0.regs);
	atomic_store(&released, true);
	CHECK_OK(iovm_mr_wait(mr, buf + 10, PG, -1));
	CHECK_OK(iovm_mr_ready(mr, &pin));
	CHECK(pin.done && pin.chunks >= 4 && pin.chunks_done == pin.chunks);
	CHECK_EQ(fake_ibv_counts().regs, c0.regs + 1);
	CHECK_EQ(fake_ibv_counts().live, c0.live + 1);
	CHECK_OK(iovm_mr_query(mr, &info));
	CHECK_OK(fake_ibv_find(info.lkey, &f));
	CHECK(f.addr == buf + 10 && f.len == 60 * PG && f.resident);
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_EQ(fake_ibv_counts().live, c0.live);
	atomic_store(&mr_async_test_chunk, NULL);
	sem_destroy(&reached);

	fake_ibv_fail_next_reg(EPERM);
	CHECK_OK(iovm_mr_reg_async(dom, buf, 64 * PG, IOVM_ACCESS_LOCAL_WRITE,
				   IOVM_REG_THREADS(2) | IOVM_REG_CHUNK_SHIFT(16), &mr));
	CHECK_EQ(iovm_mr_wait(mr, buf, PG, -1), -EPERM);
	CHECK_EQ(iovm_mr_ready(mr, &pin), -EPERM);
	/* Every chunk pinned, none usable: the device has no registration of them. */
	CHECK(pin.done && pin.chunks_done == pin.chunks && pin.prefix == 0);
	CHECK_EQ(fake_ibv_counts().live, c0.live);
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_EQ(fake_ibv_counts().bad_deregs, 0);
	close_bound(dev, dom);
	munmap(buf, 64 * PG);
}

int main(void)
{
	test_init();
	if (!getenv("IOVM_VERBS_LIBRARY")) {
		printf("SKIP: IOVM_VERBS_LIBRARY does not name the stand-in library (meson sets it)\n");
		return TEST_SKIP;
	}
	CHECK_OK(iovm_open("", &ctx));
	RUN(async_one_device_registration);
	CHECK_OK(iovm_close(ctx));
	return 0;
}
