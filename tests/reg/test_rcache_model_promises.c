/* SPDX-License-Identifier: MIT */
/*
 * test_rcache_model_promises.c - reg.h's promises attacked one by one,
 * from the header alone: every documented errno of the registration and
 * cache calls, odd sizes and addresses (one byte, page-straddling, len 0,
 * SIZE_MAX, wrapping past the top of the address space, the last user
 * page, kernel addresses), keys of dead MRs, misuse of iovm_rcache_put,
 * and destroying what still has registrations. Each test is named after
 * the promise it tries to break.
 */
#include <pthread.h>

#include "reg/test_peer_util.h"

static struct env E;

static struct iovm_rcache *cache_new(size_t max_regions)
{
	struct iovm_rcache_attr attr = { .max_regions = max_regions };
	struct iovm_rcache *c;

	CHECK_OK(iovm_rcache_create(E.r.dom, &attr, &c));
	return c;
}

/* @ret is one of the errnos a call may give for it; a registration it made anyway is undone. */
static void refused(int ret, struct iovm_mr **mr, int e1, int e2, const char *what)
{
	if (ret == 0 && *mr) {
		iovm_mr_dereg(*mr);
		*mr = NULL;
	}
	CHECK_MSG(ret == e1 || ret == e2, "%s: %d (%s)", what, ret, strerror(-ret));
}

/* An address no one maps: unmapped after mapping it. */
static uint8_t *unmapped_page(void)
{
	uint8_t *p = app_map(PG);

	app_unmap(p, PG);
	return p;
}

TEST(mr_reg_refuses_bad_arguments_with_einval)
{
	uint8_t *p = app_map(4 * PG);
	struct iovm_mr *mr = NULL;
	uint64_t mrs = rstats(&E.r).mrs;

	refused(iovm_mr_reg(NULL, p, PG, RW, &mr), &mr, -EINVAL, -EINVAL, "NULL domain");
	CHECK_EQ(iovm_mr_reg(E.r.dom, p, PG, RW, NULL), -EINVAL);
	refused(iovm_mr_reg(E.r.dom, p, 0, RW, &mr), &mr, -EINVAL, -EINVAL, "len 0");
	refused(iovm_mr_reg(E.r.dom, p, PG, RW | (1u << 7), &mr), &mr, -EINVAL, -EINVAL, "an unknown access bit");
	refused(iovm_mr_reg(E.r.dom, NULL, SIZE_MAX, RW, &mr), &mr, -EINVAL, -EINVAL,
		"the whole address space without IOVM_ACCESS_ON_DEMAND");
	refused(iovm_mr_reg(E.r.dom, p, SIZE_MAX, RW, &mr), &mr, -EINVAL, -EFAULT, "len SIZE_MAX");
	refused(iovm_mr_reg(E.r.dom, (void *)(UINTPTR_MAX - 100), 200, RW, &mr), &mr, -EINVAL, -EFAULT,
		"a range wrapping past the top of the address space");
	refused(iovm_mr_reg(E.r.dom, p, (size_t)-(uintptr_t)p, RW, &mr), &mr, -EINVAL, -EFAULT,
		"a range ending exactly at 2^64");
	refused(iovm_mr_reg(E.r.dom, (void *)0xffff800000000000ull, PG, RW, &mr), &mr, -EINVAL, -EFAULT,
		"a kernel address");
	CHECK_EQ(rstats(&E.r).mrs, mrs);
	app_unmap(p, 4 * PG);
}

TEST(mr_reg_refuses_unmapped_and_unwritable_memory_with_efault)
{
	uint8_t *p = app_map(4 * PG), *last = (uint8_t *)0x7ffffffff000ull;
	struct iovm_mr *mr = NULL;
	unsigned char vec;
	uint64_t mrs = rstats(&E.r).mrs;

	memset(p, 1, 4 * PG);
	refused(iovm_mr_reg(E.r.dom, unmapped_page(), PG, RW, &mr), &mr, -EFAULT, -EFAULT, "unmapped memory");
	refused(iovm_mr_reg(E.r.dom, NULL, 1, RW, &mr), &mr, -EFAULT, -EINVAL, "page zero");
	if (mincore(last, PG, &vec) && errno == ENOMEM)
		refused(iovm_mr_reg(E.r.dom, last, PG, RW, &mr), &mr, -EFAULT, -EFAULT, "the last user page");
	/* Half mapped: nothing of it stays registered or locked. */
	CHECK(munmap(p + 2 * PG, PG) == 0);
	refused(iovm_mr_reg(E.r.dom, p + PG, 2 * PG, RW, &mr), &mr, -EFAULT, -EFAULT, "a range half unmapped");
	CHECK(!page_locked(p + PG));
	refused(iovm_mr_reg(E.r.dom, p + 2 * PG - 1, 2, RW, &mr), &mr, -EFAULT, -EFAULT,
		"two bytes straddling into an unmapped page");
	CHECK(mprotect(p, PG, PROT_NONE) == 0);
	refused(iovm_mr_reg(E.r.dom, p, PG, IOVM_ACCESS_LOCAL_READ, &mr), &mr, -EFAULT, -EFAULT, "PROT_NONE memory");
	CHECK(mprotect(p + PG, PG, PROT_READ) == 0);
	refused(iovm_mr_reg(E.r.dom, p + PG, PG, RW, &mr), &mr, -EFAULT, -EFAULT, "read-only memory, local write");
	refused(iovm_mr_reg(E.r.dom, p + PG, PG, IOVM_ACCESS_LOCAL_READ | IOVM_ACCESS_REMOTE_WRITE, &mr), &mr, -EFAULT,
		-EFAULT, "read-only memory, remote write");
	CHECK_EQ(rstats(&E.r).mrs, mrs);
	/* Read-only memory for reading is fine, and a device cannot write it. */
	CHECK_OK(iovm_mr_reg(E.r.dom, p + PG, PG, IOVM_ACCESS_LOCAL_READ | IOVM_ACCESS_REMOTE_READ, &mr));
	mr_reaches(&E, mr, p + PG, PG);
	CHECK(env_write(&E, (uintptr_t)p + PG, mr_info(mr).lkey, 64, 9).status != IOVM_STATUS_SUCCESS);
	CHECK(env_write(&E, mr_iova(mr, p + PG), 0, 64, 9).status != IOVM_STATUS_SUCCESS);
	CHECK_EQ(p[PG], 1);
	CHECK_OK(iovm_mr_dereg(mr));
	app_unmap(p, 2 * PG);
	app_unmap(p + 3 * PG, PG);
}

/* Odd sizes: one byte, two bytes across a page boundary, the last byte of a mapping. */
TEST(mr_reg_holds_odd_sizes_exactly)
{
	uint8_t *p = app_map(2 * PG);
	struct iovm_mr *mr;
	struct iovm_mr_info in;
	iovm_iova_t io;

	fill_random(p, 2 * PG, 30);
	CHECK_OK(iovm_mr_reg(E.r.dom, p + PG - 1, 2, RW, &mr));
	in = mr_info(mr);
	CHECK_EQ(in.pages, 2);
	CHECK(in.addr == p + PG - 1 && in.len == 2);
	mr_reaches(&E, mr, p + PG - 1, 2);
	CHECK_EQ(mr_iova(mr, p + PG) - mr_iova(mr, p + PG - 1), 1);
	CHECK_EQ(iovm_mr_iova(mr, p + PG - 2, 1, &io), -ERANGE);
	CHECK_EQ(iovm_mr_iova(mr, p + PG, 2, &io), -ERANGE);
	CHECK(iovm_mr_iova(mr, p + PG - 1, SIZE_MAX, &io) < 0); /* -ERANGE or -EINVAL: the header says neither */
	CHECK(iovm_mr_iova(mr, (void *)UINTPTR_MAX, 2, &io) < 0);
	CHECK_EQ(iovm_mr_iova(NULL, p, 1, &io), -EINVAL);
	CHECK_EQ(iovm_mr_iova(mr, p + PG, 1, NULL), -EINVAL);
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(iovm_mr_reg(E.r.dom, p + 2 * PG - 1, 1, RW, &mr));
	CHECK_EQ(mr_info(mr).pages, 1);
	mr_reaches(&E, mr, p + 2 * PG - 1, 1);
	CHECK_EQ(env_write(&E, (uintptr_t)p + 2 * PG - 1, mr_info(mr).lkey, 1, 0x42).status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(p[2 * PG - 1], 0x42);
	/* One byte more than the MR holds is refused, and nothing is written. */
	CHECK(env_write(&E, (uintptr_t)p + 2 * PG - 1, mr_info(mr).lkey, 2, 0x43).status != IOVM_STATUS_SUCCESS);
	CHECK_EQ(p[2 * PG - 1], 0x42);
	CHECK_OK(iovm_mr_dereg(mr));
	app_unmap(p, 2 * PG);
}

TEST(mr_dereg_query_advise_refuse_misuse)
{
	uint8_t *p = app_map(16 * PG);
	struct iovm_rcache *c = cache_new(0);
	struct iovm_mr *mr, *odp;
	struct iovm_mr_info in;

	CHECK_EQ(iovm_mr_dereg(NULL), -EINVAL);
	CHECK_EQ(iovm_mr_query(NULL, &in), -EINVAL);
	CHECK_OK(iovm_mr_reg(E.r.dom, p, PG, RW, &mr));
	CHECK_EQ(iovm_mr_query(mr, NULL), -EINVAL);
	CHECK_EQ(iovm_mr_advise(mr, p, PG, 0), -EINVAL); /* a pinned registration */
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(iovm_mr_reg(E.r.dom, p, 8 * PG, RW | IOVM_ACCESS_ON_DEMAND, &odp));
	CHECK_EQ(iovm_mr_advise(odp, p + 8 * PG, PG, 0), -ERANGE);
	CHECK_EQ(iovm_mr_advise(odp, p - PG, 2 * PG, 0), -ERANGE);
	CHECK_EQ(iovm_mr_advise(NULL, p, PG, 0), -EINVAL);
	CHECK_MSG(iovm_mr_advise(odp, p, SIZE_MAX, 0) == -ERANGE, "advise of len SIZE_MAX: %d, not -ERANGE",
		  iovm_mr_advise(odp, p, SIZE_MAX, 0));
	CHECK_OK(iovm_mr_advise(odp, p, 8 * PG, IOVM_ADVISE_WRITE));
	CHECK_OK(iovm_mr_dereg(odp));
	/* An MR of the cache is the cache's: dereg refuses it, and it stays usable. */
	CHECK_OK(iovm_rcache_get(c, p, PG, RW, &mr));
	CHECK_EQ(iovm_mr_dereg(mr), -EBUSY);
	mr_reaches(&E, mr, p, PG);
	CHECK_OK(iovm_rcache_put(c, mr));
	CHECK_OK(iovm_rcache_destroy(c));
	app_unmap(p, 16 * PG);
}

TEST(rcache_calls_refuse_bad_arguments)
{
	uint8_t *p = app_map(4 * PG);
	struct iovm_rcache *c = cache_new(0), *x = NULL;
	struct iovm_rcache_stats st;
	struct iovm_mr *mr = NULL;
	int ret;

	CHECK_EQ(iovm_rcache_create(NULL, NULL, &x), -EINVAL);
	CHECK_EQ(iovm_rcache_create(E.r.dom, NULL, NULL), -EINVAL);
	CHECK_EQ(iovm_rcache_destroy(NULL), -EINVAL);
	CHECK_EQ(iovm_rcache_get(NULL, p, PG, RW, &mr), -EINVAL);
	CHECK_EQ(iovm_rcache_get(c, p, PG, RW, NULL), -EINVAL);
	CHECK_EQ(iovm_rcache_get(c, p, 0, RW, &mr), -EINVAL);
	ret = iovm_rcache_get(c, p, PG, RW | IOVM_ACCESS_ON_DEMAND, &mr);
	if (ret == 0)
		iovm_rcache_put(c, mr);
	CHECK_MSG(ret == -EINVAL, "a get with IOVM_ACCESS_ON_DEMAND (pinned rights only): %d", ret);
	CHECK_EQ(iovm_rcache_get(c, p, PG, RW | (1u << 9), &mr), -EINVAL);
	ret = iovm_rcache_get(c, p, SIZE_MAX, RW, &mr);
	CHECK(ret == -EINVAL || ret == -EFAULT);
	ret = iovm_rcache_get(c, (void *)(UINTPTR_MAX - 100), 200, RW, &mr);
	CHECK(ret == -EINVAL || ret == -EFAULT);
	CHECK_EQ(iovm_rcache_get(c, unmapped_page(), PG, RW, &mr), -EFAULT);
	CHECK(mprotect(p, PG, PROT_NONE) == 0);
	CHECK_EQ(iovm_rcache_get(c, p, PG, IOVM_ACCESS_LOCAL_READ, &mr), -EFAULT);
	CHECK(mprotect(p + PG, PG, PROT_READ) == 0);
	CHECK_EQ(iovm_rcache_get(c, p + PG, PG, RW, &mr), -EFAULT);
	CHECK_OK(iovm_rcache_get(c, p + PG, PG, IOVM_ACCESS_LOCAL_READ, &mr));
	CHECK(env_write(&E, (uintptr_t)p + PG, mr_info(mr).lkey, 8, 1).status != IOVM_STATUS_SUCCESS);
	CHECK_EQ(iovm_rcache_put(NULL, mr), -EINVAL);
	CHECK_EQ(iovm_rcache_put(c, NULL), -EINVAL);
	CHECK_EQ(iovm_rcache_stats(NULL, &st), -EINVAL);
	CHECK_EQ(iovm_rcache_stats(c, NULL), -EINVAL);
	CHECK_EQ(iovm_reg_stats(NULL, &(struct iovm_reg_stats){ 0 }), -EINVAL);
	/* Destroy refuses while an MR is held, and leaves the cache as it was. */
	CHECK_EQ(iovm_rcache_destroy(c), -EBUSY);
	mr_reaches(&E, mr, p + PG, PG);
	CHECK_OK(iovm_rcache_put(c, mr));
	CHECK_OK(iovm_rcache_destroy(c));
	app_unmap(p, 4 * PG);
}

/* iovm_rcache_put: "0, or -EINVAL" - a second put of one get, or an MR the cache never gave, is refused. */
TEST(rcache_put_refuses_double_and_foreign_puts)
{
	uint8_t *p = app_map(8 * PG);
	struct iovm_rcache *c = cache_new(0), *other = cache_new(0);
	struct iovm_mr *mr, *own, *again;
	uint32_t k;
	int ret;

	fill_random(p, 8 * PG, 31);
	CHECK_OK(iovm_rcache_get(c, p, 4 * PG, RW, &mr));
	k = mr_info(mr).lkey;
	CHECK_OK(iovm_rcache_put(c, mr));
	ret = iovm_rcache_put(c, mr);
	CHECK_MSG(ret == -EINVAL, "a second put of the same get: %d", ret);
	/* No side effect: the region is still there, and a get and put work as before. */
	CHECK_OK(iovm_rcache_get(c, p, 4 * PG, RW, &again));
	CHECK_EQ(mr_info(again).lkey, k);
	mr_reaches(&E, again, p, 4 * PG);
	CHECK_EQ(iovm_rcache_put(other, again), -EINVAL);
	CHECK_OK(iovm_rcache_put(c, again));
	CHECK_OK(iovm_mr_reg(E.r.dom, p + 4 * PG, 4 * PG, RW, &own));
	ret = iovm_rcache_put(c, own);
	CHECK_MSG(ret == -EINVAL, "a put of an MR the cache never gave: %d", ret);
	/* The caller's own MR is untouched: registered, valid, reachable. */
	CHECK_EQ(mr_info(own).valid_pages, 4);
	mr_reaches(&E, own, p + 4 * PG, 4 * PG);
	CHECK_OK(iovm_mr_dereg(own));
	CHECK_OK(iovm_rcache_destroy(c));
	CHECK_OK(iovm_rcache_destroy(other));
	CHECK_EQ(rstats(&E.r).mrs, 0);
	app_unmap(p, 8 * PG);
}

/* iovm_domain_destroy: a domain with registrations, or a cache, on it is not destroyed (-EBUSY). */
TEST(domain_destroy_refuses_live_registrations)
{
	uint8_t *p = app_map(8 * PG);
	struct iovm_domain *dom;
	struct iovm_rcache *c;
	struct iovm_mr *mr;
	int ret;

	memset(p, 1, 8 * PG);
	CHECK_OK(iovm_domain_create(E.r.ctx, NULL, &dom));
	CHECK_OK(iovm_mr_reg(dom, p, 4 * PG, RW, &mr));
	ret = iovm_domain_destroy(dom);
	CHECK_MSG(ret == -EBUSY, "destroy of a domain with a registration on it: %d", ret);
	if (ret == 0)
		return; /* Freed: what follows would use it. */
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(iovm_rcache_create(dom, NULL, &c));
	get_put(c, p + 4 * PG, 4 * PG, RW);
	ret = iovm_domain_destroy(dom);
	CHECK_MSG(ret == -EBUSY, "destroy of a domain with a registration cache on it: %d", ret);
	if (ret == 0)
		return;
	/* The monitor's invalidation of the cached region finds its domain alive. */
	app_unmap(p, 8 * PG);
	CHECK_OK(iovm_rcache_destroy(c));
	CHECK_OK(iovm_domain_destroy(dom));
}

/* A key of a deregistered MR is refused, never reaches the next MR of the same memory. */
TEST(dead_keys_never_reach_new_memory)
{
	uint8_t *p = far_map(4 * PG);
	struct iovm_rcache *c = cache_new(1);
	struct iovm_domain *dom2;
	struct iovm_mr *a, *b, *other;
	struct iovm_mr_info ia, ic;
	uint32_t k1;

	fill_random(p, 4 * PG, 32);
	CHECK_OK(iovm_mr_reg(E.r.dom, p, 4 * PG, ALL_RIGHTS, &a));
	ia = mr_info(a);
	CHECK_OK(iovm_mr_dereg(a));
	CHECK_OK(iovm_mr_reg(E.r.dom, p, 4 * PG, ALL_RIGHTS, &b));
	CHECK(mr_info(b).lkey != ia.lkey && mr_info(b).rkey != ia.rkey);
	CHECK_EQ(env_read(&E, (uintptr_t)p, ia.lkey, PG).status, IOVM_STATUS_KEY);
	CHECK_EQ(env_write(&E, (uintptr_t)p, ia.rkey, PG, 0).status, IOVM_STATUS_KEY);
	mr_reaches(&E, b, p, 4 * PG);
	CHECK_OK(iovm_mr_dereg(b));
	/* A key of another domain's MR. */
	CHECK_OK(iovm_domain_create(E.r.ctx, NULL, &dom2));
	CHECK_OK(iovm_mr_reg(dom2, p, PG, ALL_RIGHTS, &other));
	CHECK_EQ(env_read(&E, (uintptr_t)p, mr_info(other).lkey, 64).status, IOVM_STATUS_KEY);
	CHECK_OK(iovm_mr_dereg(other));
	CHECK_OK(iovm_domain_destroy(dom2));
	/* A key of an MR the cache evicted. */
	k1 = get_put(c, p, PG, RW);
	get_put(c, p + 2 * PG, PG, RW);
	CHECK_EQ(env_read(&E, (uintptr_t)p, k1, 64).status, IOVM_STATUS_KEY);
	/* A key of an MR held across munmap and mmap of its memory. */
	CHECK_OK(iovm_rcache_get(c, p, 4 * PG, ALL_RIGHTS, &a));
	ic = mr_info(a);
	app_unmap(p, 4 * PG);
	CHECK(remap_same(p, 4 * PG));
	memset(p, 0x77, 4 * PG);
	keys_reach_nothing(&E, &ic, p, 4 * PG);
	CHECK_OK(iovm_rcache_put(c, a));
	CHECK_OK(iovm_rcache_destroy(c));
	app_unmap(p, 4 * PG);
}

struct racer {
	uint8_t *p;
	size_t len;
	_Atomic bool stop;
	_Atomic unsigned long rounds;
};

static void *remapper(void *arg)
{
	struct racer *r = arg;

	while (!r->stop) {
		munmap(r->p, r->len);
		if (!remap_same(r->p, r->len))
			break;
		r->p[0] = 1;
		r->rounds++;
	}
	return NULL;
}

/* iovm_rcache_get under a concurrent munmap: 0 (with a usable MR) or -EFAULT, as iovm_mr_reg(). */
TEST(rcache_get_racing_munmap_fails_with_efault)
{
	struct racer r = { .len = 16 * PG };
	struct iovm_rcache *c = cache_new(1); /* one region: gets of two halves in turn register, not hit */
	unsigned ok = 0, efault = 0, other = 0;
	int last_other = 0;
	pthread_t t;

	r.p = far_map(r.len); /* the holes the racer makes are not taken by others */
	CHECK(pthread_create(&t, NULL, remapper, &r) == 0);
	while (r.rounds < 10)
		usleep(100);
	/* Gets are far faster than a munmap: go on until both outcomes were seen a while, 3 s at most. */
	for (unsigned long i = 0; i < 3000000 && (i < 30000 || !ok || !efault); i++) {
		struct iovm_mr *mr;
		int ret = iovm_rcache_get(c, r.p + (i & 1) * r.len / 2, r.len / 2, RW, &mr);

		if (ret == 0) {
			ok++;
			CHECK_OK(iovm_rcache_put(c, mr));
		} else if (ret == -EFAULT) {
			efault++;
		} else {
			other++;
			last_other = ret;
		}
	}
	r.stop = true;
	CHECK(pthread_join(t, NULL) == 0);
	printf("# %u got, %u -EFAULT, %u other; the memory was replaced %lu times\n", ok, efault, other,
	       (unsigned long)r.rounds);
	CHECK_MSG(other == 0, "%u gets failed with neither 0 nor -EFAULT (last %d, %s)", other, last_other,
		  strerror(-last_other));
	if (!ok || !efault)
		SKIP_CASE("the racer never met a get while its memory was %s", ok ? "unmapped" : "mapped");
	CHECK_OK(iovm_rcache_destroy(c));
	app_unmap(r.p, r.len);
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;

	test_init();
	env_open(&E);
	RUN_ONLY(only, mr_reg_refuses_bad_arguments_with_einval);
	RUN_ONLY(only, mr_reg_refuses_unmapped_and_unwritable_memory_with_efault);
	RUN_ONLY(only, mr_reg_holds_odd_sizes_exactly);
	RUN_ONLY(only, mr_dereg_query_advise_refuse_misuse);
	RUN_ONLY(only, rcache_calls_refuse_bad_arguments);
	RUN_ONLY(only, rcache_put_refuses_double_and_foreign_puts);
	RUN_ONLY(only, domain_destroy_refuses_live_registrations);
	RUN_ONLY(only, dead_keys_never_reach_new_memory);
	RUN_ONLY(only, rcache_get_racing_munmap_fails_with_efault);
	env_close(&E);
	return 0;
}
