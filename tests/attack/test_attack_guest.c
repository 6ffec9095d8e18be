/* SPDX-License-Identifier: MIT */
/*
 * test_attack_guest.c - attacks the guest and pool promises (guest.h,
 * phys.h): attribute checks, zeroed memory on create, start and reboot,
 * iovm_guest_ptr() while stopped, the state machine's -EALREADY, -EBUSY
 * for destroy with a device or a nested domain, -EPERM for the stage 2
 * and for identity assignment, pools out of others' reach, and a guest
 * shut down while its device copies: from then on the device faults and
 * never writes the memory others take meanwhile.
 */
#include "attack.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)

static struct iovm_ctx *ctx;

static struct iovm_guest *mkguest(uint64_t size, uint32_t flags, struct iovm_pool *pool)
{
	struct iovm_guest_attr a = { .size = size, .flags = flags, .page_size = 4096,
				     .placement = pool ? IOVM_PLACE_POOL : IOVM_PLACE_AUTO, .pool = pool };
	struct iovm_guest *g = NULL;
	int r = iovm_guest_create(ctx, &a, &g);

	CHECK_MSG(r == 0, "guest_create %llu: %d [%s]", (unsigned long long)size, r, iovm_error_detail());
	return g;
}

static void check_zeroed(struct iovm_guest *g, const char *when)
{
	struct iovm_guest_info gi;
	struct iovm_guest_bank b[16];
	unsigned n;

	CHECK_OK(iovm_guest_info(g, &gi));
	CHECK_OK(iovm_guest_banks(g, b, 16, &n));
	for (unsigned i = 0; i < n && i < 16; i++) {
		size_t len;
		uint8_t *p = iovm_guest_ptr(g, b[i].gpa, &len);
		CHECK(p != NULL);
		EXPECT_MSG(len == b[i].len, "guest_ptr of bank %u: %zu contiguous, bank %llu", i, len,
			   (unsigned long long)b[i].len);
		EXPECT_MSG(all_bytes(p, b[i].len, 0), "%s: bank %u not zeroed at byte %zu", when, i,
			   first_not(p, b[i].len, 0));
	}
}

static void dirty(struct iovm_guest *g)
{
	struct iovm_guest_info gi;

	CHECK_OK(iovm_guest_info(g, &gi));
	memset(gi.ram, 0xdd, gi.size);
}

TEST(guest_create_refuses_bad_attributes)
{
	struct iovm_guest *g;
	struct iovm_guest_attr a;
	struct iovm_guest_bank banks[2];

	memset(&a, 0, sizeof(a));
	CHECK_RET(iovm_guest_create(NULL, &a, &g), -EINVAL);
	a.size = 4u << 20;
	CHECK_RET(iovm_guest_create(ctx, NULL, &g), -EINVAL);
	CHECK_RET(iovm_guest_create(ctx, &a, NULL), -EINVAL);
	a.size = 0;
	CHECK_RET(iovm_guest_create(ctx, &a, &g), -EINVAL);
	a.size = (4u << 20) + 1;
	a.page_size = 4096;
	CHECK_RET(iovm_guest_create(ctx, &a, &g), -EINVAL);
	a.size = 4u << 20;
	a.page_size = 8192;
	CHECK_RET(iovm_guest_create(ctx, &a, &g), -EINVAL);
	a.page_size = 4096;
	a.flags = 1u << 5;
	CHECK_RET(iovm_guest_create(ctx, &a, &g), -EINVAL);
	a.flags = 0;
	a.placement = 7;
	CHECK_RET(iovm_guest_create(ctx, &a, &g), -EINVAL);
	a.placement = IOVM_PLACE_POOL; /* no pool */
	CHECK_RET(iovm_guest_create(ctx, &a, &g), -EINVAL);
	a.placement = IOVM_PLACE_AUTO;
	a.min_chunk = 12345; /* not a power of two */
	CHECK_RET(iovm_guest_create(ctx, &a, &g), -EINVAL);
	a.min_chunk = 0;
	/* Named banks: not page aligned, a size that is not their sum. */
	uint8_t *m = iovm_dma_alloc(ctx, 1u << 20, 1u << 20, IOVM_DMA_CONTIG | IOVM_DMA_PAGE_4K);
	iovm_pa_t pa;
	CHECK(m != NULL);
	CHECK_OK(iovm_dma_pa(ctx, m, &pa));
	CHECK_OK(iovm_dma_free(ctx, m));
	CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= 0);
	a.placement = IOVM_PLACE_BANKS;
	a.banks = banks;
	a.nr_banks = 1;
	banks[0] = (struct iovm_guest_bank){ .pa = IOVM_PA(pa.addr + 100), .len = 65536 };
	a.size = 0;
	CHECK_RET(iovm_guest_create(ctx, &a, &g), -EINVAL);
	banks[0] = (struct iovm_guest_bank){ .pa = pa, .len = 65536 + 100 };
	CHECK_RET(iovm_guest_create(ctx, &a, &g), -EINVAL);
	banks[0] = (struct iovm_guest_bank){ .pa = pa, .len = 65536 };
	a.size = 131072;
	CHECK_RET(iovm_guest_create(ctx, &a, &g), -EINVAL);
	/* Not memory iovm has. */
	a.size = 0;
	banks[0] = (struct iovm_guest_bank){ .pa = IOVM_PA(1ull << 52), .len = 65536 };
	CHECK_RET(iovm_guest_create(ctx, &a, &g), -ENOENT);
	banks[0] = (struct iovm_guest_bank){ .pa = IOVM_PA(UINT64_MAX & ~0xfffull), .len = 8192 };
	int r = iovm_guest_create(ctx, &a, &g);
	EXPECT_MSG(r == -ENOENT || r == -EINVAL, "a bank that wraps past 2^64: %d", r);
	/* Two banks that overlap. */
	banks[0] = (struct iovm_guest_bank){ .pa = pa, .len = 65536 };
	banks[1] = (struct iovm_guest_bank){ .pa = IOVM_PA(pa.addr + 4096), .len = 65536 };
	a.nr_banks = 2;
	r = iovm_guest_create(ctx, &a, &g);
	EXPECT_MSG(r < 0, "two overlapping named banks accepted");
	if (r == 0)
		iovm_guest_destroy(g);
	/* A named bank taken: by a live allocation. */
	m = iovm_dma_alloc(ctx, 65536, 65536, IOVM_DMA_CONTIG | IOVM_DMA_PAGE_4K);
	CHECK(m != NULL);
	CHECK_OK(iovm_dma_pa(ctx, m, &pa));
	banks[0] = (struct iovm_guest_bank){ .pa = pa, .len = 65536 };
	a.nr_banks = 1;
	CHECK_RET(iovm_guest_create(ctx, &a, &g), -EBUSY);
	CHECK_OK(iovm_dma_free(ctx, m));
	CHECK_RET(iovm_guest_destroy(NULL), -EINVAL);
	CHECK_RET(iovm_guest_shutdown(NULL), -EINVAL);
	CHECK_RET(iovm_guest_start(NULL), -EINVAL);
}

TEST(guest_state_machine_and_zeroing)
{
	struct iovm_guest *g = mkguest(8u << 20, 0, NULL);
	struct iovm_guest_info gi;
	size_t len;

	check_zeroed(g, "create");
	CHECK_RET(iovm_guest_start(g), -EALREADY);
	dirty(g);
	CHECK_RET(iovm_guest_reboot(g), 0);
	check_zeroed(g, "reboot");
	dirty(g);
	CHECK_RET(iovm_guest_shutdown(g), 0);
	CHECK_RET(iovm_guest_shutdown(g), -EALREADY);
	CHECK_OK(iovm_guest_info(g, &gi));
	CHECK(!gi.running);
	CHECK_NULL_ERRNO(iovm_guest_ptr(g, IOVM_GPA(0), &len), EAGAIN);
	CHECK_RET(iovm_guest_start(g), 0);
	check_zeroed(g, "start");
	CHECK_OK(iovm_guest_info(g, &gi));
	CHECK(gi.running);
	EXPECT_EQ(gi.starts, 3);
	CHECK_NULL_ERRNO(iovm_guest_ptr(g, IOVM_GPA(8u << 20), &len), ENOENT);
	CHECK_NULL_ERRNO(iovm_guest_ptr(g, IOVM_GPA(UINT64_MAX), &len), ENOENT);
	CHECK_NULL_ERRNO(iovm_guest_ptr(NULL, IOVM_GPA(0), &len), EINVAL);
	uint8_t *p = iovm_guest_ptr(g, IOVM_GPA((8u << 20) - 1), NULL);
	CHECK(p != NULL);
	*p = 1;
	/* The stage 2 belongs to the guest. */
	struct iovm_domain *s2;
	CHECK_OK(iovm_guest_stage2(g, &s2));
	CHECK_RET(iovm_domain_destroy(s2), -EPERM);
	CHECK_OK(iovm_guest_destroy(g));
}

TEST(destroy_is_ebusy_with_a_device_or_a_nested_domain)
{
	struct iovm_guest *g = mkguest(4u << 20, 0, NULL);
	struct iovm_device *dev;
	struct iovm_domain *nd;
	struct iovm_domain_attr na = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_DEFERRED };

	CHECK_OK(iovm_device_open(ctx, "sw", &dev));
	CHECK_RET(iovm_guest_assign(g, dev, 0, 0), 0);
	CHECK_RET(iovm_guest_assign(g, dev, 0, 0), -EBUSY);
	CHECK_RET(iovm_guest_assign(g, dev, 0, IOVM_ASSIGN_IDENTITY), -EPERM);
	CHECK_RET(iovm_guest_destroy(g), -EBUSY);
	CHECK_RET(iovm_guest_unassign(g, dev, 3), -ENOENT);
	CHECK_RET(iovm_guest_unassign(g, dev, 0), 0);
	CHECK_RET(iovm_guest_unassign(g, dev, 0), -ENOENT);
	CHECK_RET(iovm_guest_domain_create(g, &na, &nd), -EINVAL);
	CHECK_RET(iovm_guest_domain_create(g, NULL, &nd), 0);
	CHECK_RET(iovm_guest_destroy(g), -EBUSY);
	CHECK_OK(iovm_domain_destroy(nd));
	/* Identity for a direct-mapped guest that is not trusted, or trusted not direct: EPERM. */
	struct iovm_guest *t = mkguest(4u << 20, IOVM_GUEST_TRUSTED, NULL);
	CHECK_RET(iovm_guest_assign(t, dev, 1, IOVM_ASSIGN_IDENTITY), -EPERM);
	CHECK_RET(iovm_guest_assign(t, dev, 1, 1u << 4), -EINVAL);
	CHECK_OK(iovm_guest_destroy(t));
	CHECK_OK(iovm_device_close(dev));
	CHECK_OK(iovm_guest_destroy(g));
}

TEST(pool_arguments_lookup_and_busy)
{
	struct iovm_pool *p, *p2;
	char n32[33];

	memset(n32, 'p', 32);
	n32[32] = 0;
	CHECK_RET(iovm_pool_create(NULL, "a", 1u << 20, 4096, 1, &p), -EINVAL);
	CHECK_RET(iovm_pool_create(ctx, NULL, 1u << 20, 4096, 1, &p), -EINVAL);
	CHECK_RET(iovm_pool_create(ctx, "", 1u << 20, 4096, 1, &p), -EINVAL);
	CHECK_RET(iovm_pool_create(ctx, n32, 1u << 20, 4096, 1, &p), -EINVAL);
	CHECK_RET(iovm_pool_create(ctx, "a", 0, 4096, 1, &p), -EINVAL);
	CHECK_RET(iovm_pool_create(ctx, "a", 4095, 4096, 1, &p), -EINVAL);
	CHECK_RET(iovm_pool_create(ctx, "a", 1u << 20, 8192, 1, &p), -EINVAL);
	CHECK_RET(iovm_pool_create(ctx, "a", 1u << 20, 4096, 0, &p), -EINVAL);
	CHECK_RET(iovm_pool_create(ctx, "a", 1u << 20, 4096, IOVM_POOL_MAX_RANGES + 1, &p), -EINVAL);
	CHECK_RET(iovm_pool_create(ctx, "a", 3u << 20, 2u << 20, 1, &p), -EINVAL);
	CHECK_RET(iovm_pool_create(ctx, "a", 1ull << 50, 4096, 1, &p), -ENOMEM);
	CHECK_RET(iovm_pool_create(ctx, "a", UINT64_MAX & ~0xfffull, 4096, 64, &p), -ENOMEM);
	CHECK_RET(iovm_pool_create(ctx, "a", 8u << 20, 4096, 2, &p), 0);
	CHECK_RET(iovm_pool_create(ctx, "a", 8u << 20, 4096, 2, &p2), -EEXIST);
	CHECK_RET(iovm_pool_lookup(ctx, "a", &p2), 0);
	CHECK(p2 == p);
	CHECK_RET(iovm_pool_lookup(ctx, "b", &p2), -ENOENT);
	CHECK_RET(iovm_pool_lookup(ctx, NULL, &p2), -EINVAL);
	CHECK_RET(iovm_pool_destroy(NULL), -EINVAL);
	struct iovm_phys_stats ps;
	CHECK_OK(iovm_phys_stats(ctx, &ps));
	int found = -1;
	for (unsigned i = 0; i < ps.nr_pools; i++)
		if (!strcmp(ps.pools[i].name, "a"))
			found = (int)i;
	CHECK(found >= 0);
	EXPECT_EQ(ps.pools[found].total, 8u << 20);
	EXPECT_EQ(ps.pools[found].free, 8u << 20);
	struct iovm_guest *g = mkguest(4u << 20, 0, p);
	CHECK_OK(iovm_phys_stats(ctx, &ps));
	EXPECT_EQ(ps.pools[found].free, 4u << 20);
	CHECK_RET(iovm_pool_destroy(p), -EBUSY);
	/* A guest of another page size than the pool's. */
	struct iovm_guest_attr a = { .size = 2u << 20, .page_size = 2u << 20, .placement = IOVM_PLACE_POOL,
				     .pool = p };
	struct iovm_guest *g2;
	CHECK_RET(iovm_guest_create(ctx, &a, &g2), -EINVAL);
	/* More than is left: ENOMEM, and the pool is as it was. */
	a.page_size = 4096;
	a.size = 6u << 20;
	CHECK_RET(iovm_guest_create(ctx, &a, &g2), -ENOMEM);
	CHECK_OK(iovm_phys_stats(ctx, &ps));
	EXPECT_EQ(ps.pools[found].free, 4u << 20);
	/* Shut down, the pool's memory stays the guest's: no heap allocation gets it. */
	struct iovm_guest_bank b[8];
	unsigned nb;
	CHECK_OK(iovm_guest_banks(g, b, 8, &nb));
	CHECK_OK(iovm_guest_shutdown(g));
	void *v[64];
	for (int i = 0; i < 64; i++) {
		v[i] = iovm_dma_alloc(ctx, 65536, 4096, IOVM_DMA_PAGE_4K);
		CHECK(v[i] != NULL);
		iovm_pa_t pa;
		CHECK_OK(iovm_dma_pa(ctx, v[i], &pa));
		for (unsigned k = 0; k < nb && k < 8; k++)
			EXPECT_MSG(!(pa.addr < b[k].pa.addr + b[k].len && b[k].pa.addr < pa.addr + 65536),
				   "a heap allocation got the PA of a stopped pool guest");
	}
	CHECK_RET(iovm_guest_start(g), 0);
	check_zeroed(g, "pool start");
	for (int i = 0; i < 64; i++)
		iovm_dma_free(ctx, v[i]);
	CHECK_OK(iovm_guest_destroy(g));
	CHECK_RET(iovm_pool_destroy(p), 0);
	CHECK_RET(iovm_pool_lookup(ctx, "a", &p2), -ENOENT);
}

/* A guest's device copying while the guest is shut down and others take its memory. */
static _Atomic int gstop;
static _Atomic unsigned long gdone, gfault, gok;

struct gdev {
	struct iovm_queue *q;
	uint64_t size;
};

static void *guest_engine(void *arg)
{
	struct gdev *g = arg;
	uint64_t seed = 9;
	struct iovm_cqe cqe;

	while (!atomic_load(&gstop)) {
		uint64_t dst = (test_rand(&seed) % (g->size / 4096)) * 4096;
		struct iovm_desc d = { .op = IOVM_OP_FILL, .pasid = 1, .dst = dst, .len = 4096,
				       .pattern = 0xeeeeeeeeeeeeeeeeull };
		int n = 0;
		CHECK_OK(iovm_queue_submit(g->q, &d));
		while (n == 0) {
			CHECK(iovm_queue_process(g->q, 1) >= 0);
			n = iovm_queue_reap(g->q, &cqe, 1);
		}
		if (cqe.status == IOVM_STATUS_SUCCESS)
			atomic_fetch_add(&gok, 1);
		else if (cqe.status == IOVM_STATUS_PAGE_FAULT)
			atomic_fetch_add(&gfault, 1);
		else
			test_fail("guest engine: status %u", cqe.status);
		atomic_fetch_add(&gdone, 1);
	}
	return NULL;
}

TEST(a_shut_down_guest_device_never_writes_memory_others_took)
{
	const uint64_t size = 16u << 20;
	struct iovm_guest *g = mkguest(size, 0, NULL);
	struct iovm_device *dev;
	struct iovm_queue *q;
	struct iovm_domain *s2;
	/* Rings in the heap, in a domain of their own at PASID 0; the guest at PASID 1. */
	struct iovm_domain_attr fa = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	struct iovm_domain *rings;
	pthread_t t;
	unsigned broken = 0;

	CHECK_OK(iovm_domain_create(ctx, &fa, &rings));
	CHECK_OK(iovm_device_open(ctx, "sw", &dev));
	CHECK_OK(iovm_device_attach(dev, rings, 0));
	CHECK_OK(iovm_guest_assign(g, dev, 1, 0));
	CHECK_OK(iovm_guest_stage2(g, &s2));
	struct iovm_queue_attr qa = { .depth = 64, .flags = IOVM_QUEUE_POLLED };
	CHECK_OK(iovm_queue_create(dev, &qa, &q));
	struct gdev gd = { .q = q, .size = size };
	atomic_store(&gstop, 0);
	CHECK(pthread_create(&t, NULL, guest_engine, &gd) == 0);
	for (int round = 0; round < 20; round++) {
		usleep(2000);
		CHECK_OK(iovm_guest_shutdown(g));
		/* Others take memory: maybe the guest's frames. */
		void *v[32];
		for (int i = 0; i < 32; i++) {
			v[i] = iovm_dma_alloc(ctx, size / 16, 4096, IOVM_DMA_PAGE_4K);
			CHECK(v[i] != NULL);
			memset(v[i], 0x11, size / 16);
		}
		unsigned long d0 = atomic_load(&gdone);
		while (atomic_load(&gdone) < d0 + 50)
			sched_yield();
		for (int i = 0; i < 32; i++) {
			if (!all_bytes(v[i], size / 16, 0x11) && broken++ < 3)
				EXPECT_MSG(0, "round %d: the shut-down guest's device wrote memory allocated "
					   "after the shutdown", round);
			iovm_dma_free(ctx, v[i]);
		}
		CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= 0);
		int r = iovm_guest_start(g);
		CHECK_MSG(r == 0 || r == -EBUSY, "start: %d", r);
		if (r == -EBUSY)
			break;
	}
	atomic_store(&gstop, 1);
	pthread_join(t, NULL);
	printf("# %lu fills, %lu faults\n", atomic_load(&gok), atomic_load(&gfault));
	CHECK(atomic_load(&gfault) > 0);
	CHECK_OK(iovm_queue_destroy(q));
	CHECK_OK(iovm_guest_unassign(g, dev, 1));
	CHECK_OK(iovm_device_close(dev));
	check_domain_clean(s2);
	check_domain_clean(rings);
	CHECK_OK(iovm_guest_destroy(g));
	CHECK_OK(iovm_domain_destroy(rings));
}

int main(void)
{
	test_init();
	ctx = attack_open("release_delay_ms=0");
	RUN(guest_create_refuses_bad_attributes);
	RUN(guest_state_machine_and_zeroing);
	RUN(destroy_is_ebusy_with_a_device_or_a_nested_domain);
	RUN(pool_arguments_lookup_and_busy);
	RUN(a_shut_down_guest_device_never_writes_memory_others_took);
	iovm_close(ctx);
	return attack_status();
}
