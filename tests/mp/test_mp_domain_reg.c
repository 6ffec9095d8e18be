/* SPDX-License-Identifier: MIT */
/*
 * test_mp_domain_reg.c - a process's own memory registered into a shared
 * domain (iovm_mr_reg() on a view of iovm_share_domain_create()), between
 * real processes: the registration takes IOVAs from the domain's shared
 * allocator, and its window sits at a PA its IOVA names, which means
 * nothing else in any process. The registering process's devices reach
 * the memory, and so do other processes' devices, through the registering
 * process (which moves the bytes with its own engine: mp.h); once it
 * unmaps, deregisters or dies, they fault. An munmap of registered memory takes the
 * pages out of the shared table before anyone's device reaches them
 * again; a deregistration gives the IOVAs back; a process that dies with
 * registrations leaves only IOVAs taken, at which every device faults.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mp_sdom.h"
#include "mp_util.h"

#define HEAP (UINT64_C(16) << 20)
#define DOM "reg-dom"
#define LEN (UINT64_C(64) << 10)
/* Where shared domains put registrations' windows (phys.h's PHYS_SHARED_REG_BASE, SIZE). */
#define REG_PA_LO (UINT64_C(1) << 46)
#define REG_PA_HI (UINT64_C(1) << 47)

static const char *g_name;

static uint8_t *app_map(size_t len, uint8_t seed)
{
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + seed);
	return p;
}

static uint64_t mr_iova(struct iovm_mr *mr)
{
	struct iovm_mr_info info;

	CHECK_OK(iovm_mr_query(mr, &info));
	CHECK(info.valid && info.valid_pages == info.pages);
	return info.iova.addr;
}

static uint64_t iova_allocated(struct iovm_domain *dom)
{
	struct iovm_domain_stats st;

	CHECK_OK(iovm_domain_stats(dom, &st));
	return st.iova_allocated;
}

/* LEN bytes of the shared heap, zeroed, mapped in @dom for the device to copy into: at *@iova. */
static uint8_t *back_open(struct iovm_ctx *ctx, struct iovm_domain *dom, iovm_iova_t *iova)
{
	uint8_t *back = iovm_dma_alloc(ctx, LEN, 4096, 0);

	CHECK(back != NULL);
	memset(back, 0, LEN);
	*iova = IOVM_IOVA(IOVM_ADDR_INVALID);
	CHECK_OK(iovm_domain_map_ptr(dom, back, LEN, IOVM_MAP_READ | IOVM_MAP_WRITE, iova));
	return back;
}

static void back_close(struct iovm_ctx *ctx, struct iovm_domain *dom, uint8_t *back, iovm_iova_t iova)
{
	CHECK_OK(iovm_domain_unmap(dom, iova, LEN));
	CHECK_OK(iovm_dma_free(ctx, back));
}

/* A copy of @len bytes by @d's device from @src to @dst, both IOVAs of the shared domain. */
static uint8_t copy(struct devq *d, uint64_t src, uint64_t dst, uint64_t len)
{
	return devq_run(d, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = src, .dst = dst, .len = (uint32_t)len });
}

/* Whether @p holds app_map(@len, @seed)'s bytes. */
static bool app_bytes(const uint8_t *p, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)(i * 7 + seed))
			return false;
	return true;
}

/*
 * The child: opens the domain, registers memory of its own, says where;
 * its device copies from the parent's registration and from its own (the
 * bytes, the parent's through the parent), and fills a page of the
 * parent's; then waits to be told to go.
 */
static void reg_child(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain *dom;
	iovm_iova_t back_iova;
	iovm_pa_t pa;
	struct iovm_mr *mr;
	uint8_t *mine = app_map(LEN, 31), *back;
	uint64_t theirs, my_iova;
	struct devq d;

	(void)arg;
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	CHECK_OK(iovm_mr_reg(dom, mine, LEN, IOVM_ACCESS_LOCAL_WRITE, &mr));
	my_iova = mr_iova(mr);
	put64(wr, my_iova);
	theirs = get64(rd);
	CHECK(my_iova >= theirs + LEN || my_iova + LEN <= theirs);
	/* The parent's registration: the same PA here, which names nothing of this process's. */
	CHECK_OK(iovm_domain_translate(dom, IOVM_IOVA(theirs), &pa, NULL));
	CHECK(pa.addr >= REG_PA_LO && pa.addr < REG_PA_HI);
	put64(wr, pa.addr);
	d = devq_open(ctx, dom);
	back = back_open(ctx, dom, &back_iova);
	/* The parent's bytes: its pattern, and the page its own device filled. */
	CHECK_EQ(copy(&d, theirs, back_iova.addr, LEN), IOVM_STATUS_SUCCESS);
	CHECK(app_bytes(back, 4096, 3));
	CHECK(all_bytes(back + 4096, 4096, 0x5c));
	CHECK(app_bytes(back + 8192, LEN - 8192, (uint8_t)(3 + 8192 * 7)));
	/* Odd lengths and offsets, across pages, both ways, and from one registration to another. */
	CHECK_EQ(copy(&d, theirs + 8192 + 4000, my_iova + 3, 5000), IOVM_STATUS_SUCCESS);
	CHECK(app_bytes(mine + 3, 5000, (uint8_t)(3 + (8192 + 4000) * 7)));
	CHECK_EQ(devq_fill(&d, theirs + 3 * 4096, 4096, 0x99), IOVM_STATUS_SUCCESS);
	for (size_t i = 3; i < 5003; i++) /* this process's bytes back as they were */
		mine[i] = (uint8_t)(i * 7 + 31);
	CHECK_EQ(copy(&d, my_iova, back_iova.addr, LEN), IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(back, mine, LEN));
	put64(wr, 1);
	CHECK_EQ(get64(rd), 2);
	back_close(ctx, dom, back, back_iova);
	devq_close(&d);
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_close(ctx));
	munmap(mine, LEN);
}

TEST(own_memory_in_a_shared_domain)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	iovm_iova_t back_iova;
	iovm_pa_t pa, child_pa;
	struct iovm_mr *mr;
	uint64_t iova, theirs, before, iovas;
	uint8_t *app = app_map(LEN, 3), *back;
	struct child c;
	struct devq d;

	g_name = share_name("dom-reg");
	ctx = share_ok(g_name, HEAP);
	before = share_info(ctx).heap_free;
	CHECK_OK(iovm_share_domain_create(ctx, DOM, NULL, &dom));
	iovas = iova_allocated(dom);
	/*
	 * The child first: forked once this process registers, its fork waits
	 * for the memory monitor to read the fork's event, which a
	 * ThreadSanitizer build's fork, holding its own locks, never lets it.
	 */
	c = child_start(reg_child, NULL);
	{
		int ret = iovm_mr_reg(dom, app, LEN, IOVM_ACCESS_LOCAL_WRITE, &mr);

		CHECK_MSG(ret == 0, "iovm_mr_reg: %d: %s", ret, iovm_error_detail());
	}
	iova = mr_iova(mr);
	CHECK(iova >= (UINT64_C(4) << 30)); /* the shared window's */
	CHECK(iova_allocated(dom) > iovas);
	CHECK_OK(iovm_domain_translate(dom, IOVM_IOVA(iova), &pa, NULL));
	CHECK(pa.addr >= REG_PA_LO && pa.addr < REG_PA_HI);
	/* This process's device reaches it, both ways. */
	d = devq_open(ctx, dom);
	back = back_open(ctx, dom, &back_iova);
	CHECK_EQ(copy(&d, iova, back_iova.addr, LEN), IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(back, app, LEN));
	CHECK_EQ(devq_fill(&d, iova + 4096, 4096, 0x5c), IOVM_STATUS_SUCCESS);
	CHECK(all_bytes(app + 4096, 4096, 0x5c));

	/* Another process: its own registration elsewhere; its device reaches ours through us. */
	theirs = get64(c.rd);
	CHECK(theirs >= iova + LEN || theirs + LEN <= iova);
	put64(c.wr, iova);
	child_pa.addr = get64(c.rd);
	CHECK_EQ(child_pa.addr, pa.addr);
	CHECK_EQ(get64(c.rd), 1);
	CHECK(all_bytes(app + 3 * 4096, 4096, 0x99));
	CHECK(app_bytes(app + 4 * 4096, LEN - 4 * 4096, (uint8_t)(3 + 4 * 4096 * 7)));
	/* And this process's device the child's, through the child. */
	memset(back, 0, LEN);
	CHECK_EQ(copy(&d, theirs, back_iova.addr, LEN), IOVM_STATUS_SUCCESS);
	CHECK(app_bytes(back, LEN, 31));
	put64(c.wr, 2);
	child_ok(&c);
	CHECK_EQ(copy(&d, theirs, back_iova.addr, 4096), IOVM_STATUS_PAGE_FAULT); /* its IOVAs went with it */

	/* munmap of a registered page: out of the shared table before it returns to anyone's use. */
	CHECK_OK(munmap(app, 4096));
	CHECK(mmap(app, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == app);
	memset(app, 0xee, 4096);
	CHECK_EQ(devq_fill(&d, iova, 4096, 0x11), IOVM_STATUS_PAGE_FAULT);
	CHECK(all_bytes(app, 4096, 0xee));
	CHECK_EQ(iovm_domain_translate(dom, IOVM_IOVA(iova), &pa, NULL), -ENOENT);
	CHECK_EQ(copy(&d, iova + 8192, back_iova.addr, 4096), IOVM_STATUS_SUCCESS); /* the rest stays */
	CHECK(!memcmp(back, app + 8192, 4096));

	/* Deregistered: the IOVAs are the domain's again, the window gone. */
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_EQ(iovm_domain_translate(dom, IOVM_IOVA(iova + 8192), &pa, NULL), -ENOENT);
	CHECK_EQ(copy(&d, iova + 8192, back_iova.addr, 4096), IOVM_STATUS_PAGE_FAULT);
	back_close(ctx, dom, back, back_iova);
	CHECK_EQ(iova_allocated(dom), iovas);
	devq_close(&d);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_EQ(share_info(ctx).heap_free, before);
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
	munmap(app, LEN);
}

/* Registered, then killed: what it leaves is IOVAs taken, where every device faults. */
static void doomed_reg_child(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	uint8_t *mine = app_map(LEN, 77);

	(void)arg;
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	CHECK_OK(iovm_mr_reg(dom, mine, LEN, IOVM_ACCESS_LOCAL_WRITE, &mr));
	put64(wr, mr_iova(mr));
	get64(rd); /* killed here */
	_exit(1);
}

TEST(death_with_registrations)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	iovm_iova_t back_iova;
	iovm_pa_t pa;
	uint64_t theirs, before;
	struct child c;
	struct devq d;
	uint8_t *back;

	g_name = share_name("dom-regdeath");
	ctx = share_ok(g_name, HEAP);
	before = share_info(ctx).heap_free;
	CHECK_OK(iovm_share_domain_create(ctx, DOM, NULL, &dom));
	c = child_start(doomed_reg_child, NULL);
	theirs = get64(c.rd);
	child_kill(&c);
	WAIT_UNTIL(share_info(ctx).processes == 1);
	d = devq_open(ctx, dom);
	back = back_open(ctx, dom, &back_iova);
	/* Still in the table, at a PA nothing of this process's is at: a fault, no byte moved. */
	CHECK_OK(iovm_domain_translate(dom, IOVM_IOVA(theirs), &pa, NULL));
	CHECK(pa.addr >= REG_PA_LO && pa.addr < REG_PA_HI);
	CHECK(copy(&d, theirs, back_iova.addr, LEN) != IOVM_STATUS_SUCCESS);
	CHECK(devq_fill(&d, theirs, LEN, 0x42) != IOVM_STATUS_SUCCESS);
	CHECK(all_bytes(back, LEN, 0));
	/* Any process may unmap any range: the dead one's too, and the domain goes whole. */
	CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(theirs), LEN));
	CHECK_EQ(iovm_domain_translate(dom, IOVM_IOVA(theirs), &pa, NULL), -ENOENT);
	back_close(ctx, dom, back, back_iova);
	devq_close(&d);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_EQ(share_info(ctx).heap_free, before);
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
}

/* Pinned in the background, chunk by chunk: usable part by part, the same as in a domain of its own. */
TEST(async_in_a_shared_domain)
{
	const size_t len = UINT64_C(4) << 20;
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	iovm_iova_t back_iova;
	struct iovm_mr *mr;
	uint8_t *app = app_map(len, 9), *back;
	uint64_t iova;
	struct devq d;

	g_name = share_name("dom-regasync");
	ctx = share_ok(g_name, HEAP);
	CHECK_OK(iovm_share_domain_create(ctx, DOM, NULL, &dom));
	CHECK_OK(iovm_mr_reg_async(dom, app, len, IOVM_ACCESS_LOCAL_WRITE, 0, &mr));
	CHECK_OK(iovm_mr_wait(mr, app, len, -1));
	iova = mr_iova(mr);
	d = devq_open(ctx, dom);
	back = back_open(ctx, dom, &back_iova);
	for (size_t off = 0; off < len; off += len / 4) {
		memset(back, 0, LEN);
		CHECK_EQ(copy(&d, iova + off, back_iova.addr, LEN), IOVM_STATUS_SUCCESS);
		CHECK(!memcmp(back, app + off, LEN));
	}
	CHECK_OK(iovm_mr_dereg(mr));
	back_close(ctx, dom, back, back_iova);
	devq_close(&d);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
	munmap(app, len);
}

/*
 * The device fills registered memory over and over while another thread
 * replaces it (MAP_FIXED over it, then the new memory set to 0xee): no
 * fill may land in the new memory, however the two interleave; fills
 * after the replacement fault. Rounds, each with a new registration.
 */
#define RACE_ROUNDS 40
#define RACE_LEN (UINT64_C(16) << 12)

struct racer {
	uint8_t *app;
	_Atomic int go, replaced;
	unsigned delay_us;
};

static void *replacer(void *arg)
{
	struct racer *r = arg;

	while (!atomic_load(&r->go))
		sched_yield();
	usleep(r->delay_us);
	CHECK(mmap(r->app, RACE_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == r->app);
	memset(r->app, 0xee, RACE_LEN);
	atomic_store(&r->replaced, 1);
	return NULL;
}

TEST(replaced_under_a_running_device)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct devq d;
	uint64_t landed_before = 0, faults = 0;

	g_name = share_name("dom-regrace");
	ctx = share_ok(g_name, HEAP);
	CHECK_OK(iovm_share_domain_create(ctx, DOM, NULL, &dom));
	d = devq_open(ctx, dom);
	for (unsigned round = 0; round < RACE_ROUNDS; round++) {
		struct racer r = { .app = app_map(RACE_LEN, (uint8_t)round), .delay_us = round * 37 % 400 };
		struct iovm_mr *mr;
		pthread_t th;
		uint64_t iova;
		unsigned after = 0;

		CHECK_OK(iovm_mr_reg(dom, r.app, RACE_LEN, IOVM_ACCESS_LOCAL_WRITE, &mr));
		iova = mr_iova(mr);
		CHECK_OK(pthread_create(&th, NULL, replacer, &r));
		atomic_store(&r.go, 1);
		/* Fill until the replacement is done and 8 fills after it faulted. */
		while (after < 8) {
			bool done = atomic_load(&r.replaced);
			uint8_t st = devq_fill(&d, iova, RACE_LEN, 0x11);

			CHECK(st == IOVM_STATUS_SUCCESS || st == IOVM_STATUS_PAGE_FAULT);
			landed_before += st == IOVM_STATUS_SUCCESS;
			if (done) {
				CHECK_EQ(st, IOVM_STATUS_PAGE_FAULT);
				after++;
			}
		}
		faults += after;
		CHECK_OK(pthread_join(th, NULL));
		CHECK(all_bytes(r.app, RACE_LEN, 0xee));
		CHECK_OK(iovm_mr_dereg(mr));
		munmap(r.app, RACE_LEN);
	}
	printf("# %llu fills landed before the replacements, %llu faulted after\n", (unsigned long long)landed_before,
	       (unsigned long long)faults);
	CHECK(landed_before > 0);
	devq_close(&d);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
}

TEST(refused)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	struct iovm_rcache *rc;
	uint8_t *app = app_map(LEN, 1);

	g_name = share_name("dom-regbad");
	ctx = share_ok(g_name, HEAP);
	CHECK_OK(iovm_share_domain_create(ctx, DOM, NULL, &dom));
	/* No implicit registration: its children's IOVAs would come from the shared allocator as faults come. */
	CHECK_EQ(iovm_mr_reg(dom, NULL, SIZE_MAX, IOVM_ACCESS_ON_DEMAND, &mr), -EOPNOTSUPP);
	/* A registration cache is made (test_mp_domain_rcache.c tries it). */
	CHECK_OK(iovm_rcache_create(dom, NULL, &rc));
	CHECK_OK(iovm_rcache_destroy(rc));
	CHECK_EQ(iovm_mr_reg(dom, app, 0, IOVM_ACCESS_LOCAL_WRITE, &mr), -EINVAL);
	/* The view cannot close under a registration. */
	CHECK_OK(iovm_mr_reg(dom, app, LEN, IOVM_ACCESS_LOCAL_WRITE, &mr));
	CHECK_EQ(iovm_domain_destroy(dom), -EBUSY);
	/*
	 * Its PA is the registration's alone: mapped by hand, into the shared
	 * domain or a private one, at a chosen IOVA or any, it is memory
	 * iovm's banks do not hold (-EINVAL), and nothing is mapped.
	 */
	{
		uint64_t iova = mr_iova(mr);
		struct iovm_domain *priv;
		iovm_pa_t pa, got;
		iovm_iova_t at = IOVM_IOVA_ANY;

		CHECK_OK(iovm_domain_translate(dom, IOVM_IOVA(iova), &pa, NULL));
		CHECK(pa.addr >= REG_PA_LO && pa.addr < REG_PA_HI);
		CHECK_EQ(iovm_domain_map(dom, &at, pa, 4096, IOVM_MAP_READ), -EINVAL);
		at = IOVM_IOVA(iova + (UINT64_C(1) << 30));
		CHECK_EQ(iovm_domain_map(dom, &at, pa, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE), -EINVAL);
		CHECK_EQ(iovm_domain_translate(dom, at, &got, NULL), -ENOENT);
		CHECK_OK(iovm_domain_create(ctx, NULL, &priv));
		at = IOVM_IOVA_ANY;
		CHECK_EQ(iovm_domain_map(priv, &at, pa, 4096, IOVM_MAP_READ), -EINVAL);
		CHECK_EQ(iovm_domain_map(priv, &at, IOVM_PA(pa.addr + LEN - 4096), 4096, IOVM_MAP_READ), -EINVAL);
		CHECK_OK(iovm_domain_destroy(priv));
	}
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
	munmap(app, LEN);
}

int main(void)
{
	RUN(own_memory_in_a_shared_domain);
	RUN(death_with_registrations);
	RUN(async_in_a_shared_domain);
	RUN(replaced_under_a_running_device);
	RUN(refused);
	return 0;
}
