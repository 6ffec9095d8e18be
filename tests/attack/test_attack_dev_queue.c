/* SPDX-License-Identifier: MIT */
/*
 * test_attack_dev_queue.c - attacks the device and queue promises of
 * dev.h: open specs, attach/detach by PASID (faults of a detached PASID
 * go to the device's log, 64 kept, the rest counted), queue attributes,
 * a full submission ring (-EAGAIN), a completion ring nobody reaps
 * (nothing lost or overwritten), destroy with descriptors not fetched
 * (not run), concurrent process (-EBUSY), rings at given addresses, and
 * domain destroy while attached (-EBUSY).
 */
#include <sched.h>

#include "attack.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)

static struct iovm_ctx *ctx;

static struct iovm_domain *follow(void)
{
	struct iovm_domain_attr a = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	struct iovm_domain *d;

	CHECK_OK(iovm_domain_create(ctx, &a, &d));
	return d;
}

static uint64_t iova(struct iovm_domain *d, const void *p)
{
	iovm_iova_t i;

	CHECK_OK(iovm_dma_iova(d, p, &i));
	return i.addr;
}

TEST(device_open_specs_and_sw_only_calls)
{
	struct iovm_device *dev, *dev2;
	struct iovm_device_info info;
	void *bar;
	size_t len;
	uint32_t v;

	CHECK_RET(iovm_device_open(NULL, "sw", &dev), -EINVAL);
	CHECK_RET(iovm_device_open(ctx, NULL, &dev), -EINVAL);
	CHECK_RET(iovm_device_open(ctx, "sw", NULL), -EINVAL);
	CHECK_RET(iovm_device_open(ctx, "bogus", &dev), -ENODEV);
	CHECK_RET(iovm_device_open(ctx, "swx", &dev), -ENODEV);
	CHECK_RET(iovm_device_open(ctx, "vfio:0000:ff:1f.7", &dev), -ENOENT);
	CHECK_OK(iovm_device_open(ctx, "sw", &dev));
	CHECK_OK(iovm_device_open(ctx, "sw", &dev2));
	CHECK(iovm_device_id(dev) != iovm_device_id(dev2));
	CHECK_EQ(iovm_device_id(NULL), 0);
	CHECK_OK(iovm_device_query(dev, &info));
	CHECK_EQ(info.kind, IOVM_DEVICE_SW);
	CHECK_EQ(info.iommu_api, IOVM_IOMMU_API_NONE);
	CHECK_EQ(info.iommu_group, -1);
	CHECK_RET(iovm_device_query(NULL, &info), -EINVAL);
	CHECK_RET(iovm_device_query(dev, NULL), -EINVAL);
	CHECK_RET(iovm_device_bar(dev, 0, &bar, &len), -EOPNOTSUPP);
	CHECK_RET(iovm_device_config_read(dev, 0, &v, 4), -EOPNOTSUPP);
	CHECK_RET(iovm_device_config_write(dev, 4, &v, 2), -EOPNOTSUPP);
	CHECK_RET(iovm_device_msi(dev, -1), -EOPNOTSUPP);
	CHECK_RET(iovm_device_bar(NULL, 0, &bar, &len), -EINVAL);
	CHECK_RET(iovm_device_config_read(NULL, 0, &v, 4), -EINVAL);
	CHECK_RET(iovm_device_close(NULL), -EINVAL);
	CHECK_OK(iovm_device_close(dev));
	CHECK_OK(iovm_device_close(dev2));
}

TEST(attach_refuses_bad_pasids_busy_pasids_and_foreign_domains)
{
	struct iovm_device *dev;
	struct iovm_domain *d = follow(), *d2 = follow();
	struct iovm_ctx *other = attack_open(NULL);
	struct iovm_domain *od;

	CHECK_OK(iovm_domain_create(other, NULL, &od));
	CHECK_OK(iovm_device_open(ctx, "sw", &dev));
	CHECK_RET(iovm_device_attach(dev, d, IOVM_PASID_MAX + 1), -EINVAL);
	CHECK_RET(iovm_device_attach(dev, d, UINT32_MAX), -EINVAL);
	CHECK_RET(iovm_device_attach(dev, NULL, 0), -EINVAL);
	CHECK_RET(iovm_device_attach(NULL, d, 0), -EINVAL);
	CHECK_RET(iovm_device_attach(dev, od, 0), -EINVAL);
	CHECK_RET(iovm_device_detach(dev, 0), -ENOENT);
	CHECK_RET(iovm_device_detach(dev, IOVM_PASID_MAX + 1), -EINVAL);
	CHECK_RET(iovm_device_attach(dev, d, 0), 0);
	CHECK_RET(iovm_device_attach(dev, d2, 0), -EBUSY);
	CHECK_RET(iovm_device_attach(dev, d, 0), -EBUSY);
	CHECK_RET(iovm_device_attach(dev, d, IOVM_PASID_MAX), 0);
	CHECK_RET(iovm_device_attach(dev, d2, 7), 0);
	/* A domain a device is attached to, at any PASID, cannot go. */
	CHECK_RET(iovm_domain_destroy(d), -EBUSY);
	CHECK_RET(iovm_domain_destroy(d2), -EBUSY);
	CHECK_RET(iovm_device_detach(dev, 0), 0);
	CHECK_RET(iovm_domain_destroy(d), -EBUSY);
	CHECK_RET(iovm_device_detach(dev, IOVM_PASID_MAX), 0);
	CHECK_RET(iovm_domain_destroy(d), 0);
	CHECK_RET(iovm_device_detach(dev, IOVM_PASID_MAX), -ENOENT);
	/* Closing detaches: the domain can go afterwards. */
	CHECK_OK(iovm_device_close(dev));
	CHECK_RET(iovm_domain_destroy(d2), 0);
	CHECK_OK(iovm_domain_destroy(od));
	iovm_close(other);
}

TEST(a_detached_pasid_faults_into_the_device_log)
{
	struct iovm_device *dev;
	struct iovm_domain *d0 = follow(), *d5 = follow();
	struct iovm_queue_attr qa = { .depth = 128, .flags = IOVM_QUEUE_POLLED };
	struct iovm_queue *q;
	uint8_t *buf = iovm_dma_alloc(ctx, 8192, 4096, 0);
	struct iovm_fault f;
	struct iovm_device_info info;

	CHECK(buf != NULL);
	memset(buf, 0x11, 8192);
	CHECK_OK(iovm_device_open(ctx, "sw", &dev));
	CHECK_OK(iovm_device_attach(dev, d0, 0));
	CHECK_OK(iovm_device_attach(dev, d5, 5));
	CHECK_OK(iovm_queue_create(dev, &qa, &q));
	struct iovm_desc dsc = { .op = IOVM_OP_FILL, .pasid = 5, .dst = iova(d5, buf), .len = 4096,
				 .pattern = 0x2222222222222222ull, .tag = 1 };
	CHECK_EQ(run_polled(q, dsc), IOVM_STATUS_SUCCESS);
	CHECK(all_bytes(buf, 4096, 0x22));
	CHECK_OK(iovm_device_detach(dev, 5));
	dsc.pattern = 0x3333333333333333ull;
	EXPECT_EQ(run_polled(q, dsc), IOVM_STATUS_PAGE_FAULT);
	CHECK(all_bytes(buf, 4096, 0x22));
	CHECK_RET(iovm_device_fault_pop(dev, &f), 0);
	EXPECT_EQ(f.reason, IOVM_FAULT_NO_DOMAIN);
	EXPECT_EQ(f.pasid, 5);
	EXPECT_EQ(f.device, iovm_device_id(dev));
	CHECK_RET(iovm_domain_fault_pop(d5, &f), -EAGAIN);
	CHECK_RET(iovm_domain_fault_pop(d0, &f), -EAGAIN);
	CHECK_RET(iovm_device_fault_pop(dev, &f), -EAGAIN);
	/* 100 more: 64 kept, in order, 36 counted as dropped. */
	uint64_t first_seq = 0;
	for (int i = 0; i < 100; i++) {
		dsc.tag = 100 + i;
		CHECK_EQ(run_polled(q, dsc), IOVM_STATUS_PAGE_FAULT);
	}
	CHECK_OK(iovm_device_query(dev, &info));
	EXPECT_EQ(info.unattached_faults, 101);
	EXPECT_EQ(info.unattached_faults_dropped, 36);
	int kept = 0;
	uint64_t last = 0;
	while (iovm_device_fault_pop(dev, &f) == 0) {
		if (!kept)
			first_seq = f.seq;
		else
			EXPECT_MSG(f.seq > last, "device faults out of order: %llu after %llu",
				   (unsigned long long)f.seq, (unsigned long long)last);
		last = f.seq;
		kept++;
	}
	EXPECT_EQ(kept, 64);
	(void)first_seq;
	CHECK_RET(iovm_device_fault_pop(NULL, &f), -EINVAL);
	CHECK_RET(iovm_device_fault_pop(dev, NULL), -EINVAL);
	CHECK(all_bytes(buf, 4096, 0x22));
	CHECK_OK(iovm_queue_destroy(q));
	CHECK_OK(iovm_device_close(dev));
	check_domain_clean(d0);
	check_domain_clean(d5);
	CHECK_OK(iovm_domain_destroy(d0));
	CHECK_OK(iovm_domain_destroy(d5));
	CHECK_OK(iovm_dma_free(ctx, buf));
}

TEST(queue_create_refuses_bad_attributes)
{
	struct iovm_device *dev;
	struct iovm_domain *d = follow();
	struct iovm_queue *q;
	cpu_set_t set;
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);

	CHECK_OK(iovm_device_open(ctx, "sw", &dev));
	struct iovm_queue_attr qa = { .depth = 0 };
	CHECK_RET(iovm_queue_create(dev, &qa, &q), -ENODEV);
	CHECK_OK(iovm_device_attach(dev, d, 0));
	static const unsigned bad_depth[] = { 1, 3, 100, 65537, 131072, UINT32_MAX };
	for (unsigned i = 0; i < sizeof(bad_depth) / sizeof(bad_depth[0]); i++) {
		qa = (struct iovm_queue_attr){ .depth = bad_depth[i], .flags = IOVM_QUEUE_POLLED };
		CHECK_RET(iovm_queue_create(dev, &qa, &q), -EINVAL);
	}
	qa = (struct iovm_queue_attr){ .flags = 1u << 3 };
	CHECK_RET(iovm_queue_create(dev, &qa, &q), -EINVAL);
	qa = (struct iovm_queue_attr){ .flags = IOVM_QUEUE_POLLED | IOVM_QUEUE_CPU, .cpu = 0 };
	CHECK_RET(iovm_queue_create(dev, &qa, &q), -EINVAL);
	qa = (struct iovm_queue_attr){ .flags = IOVM_QUEUE_CPU, .cpu = (unsigned)ncpu };
	CHECK_RET(iovm_queue_create(dev, &qa, &q), -EINVAL);
	qa = (struct iovm_queue_attr){ .flags = IOVM_QUEUE_CPU, .cpu = 4096 };
	CHECK_RET(iovm_queue_create(dev, &qa, &q), -EINVAL);
	qa = (struct iovm_queue_attr){ .flags = IOVM_QUEUE_CPU, .cpu = UINT32_MAX };
	CHECK_RET(iovm_queue_create(dev, &qa, &q), -EINVAL);
	/*
	 * A CPU outside the process's affinity (under taskset -c 0, CPU 1).
	 * "cpuset" may mean the cgroup's, which taskset does not change:
	 * say what happens, do not fail.
	 */
	CHECK(sched_getaffinity(0, sizeof(set), &set) == 0);
	for (long c = 0; c < ncpu && c < CPU_SETSIZE; c++)
		if (!CPU_ISSET(c, &set)) {
			qa = (struct iovm_queue_attr){ .flags = IOVM_QUEUE_CPU, .cpu = (unsigned)c };
			int r = iovm_queue_create(dev, &qa, &q);
			printf("# a worker on CPU %ld, outside the process's affinity: %d\n", c, r);
			if (r == 0)
				CHECK_OK(iovm_queue_destroy(q));
			break;
		}
	CHECK_RET(iovm_queue_create(NULL, &qa, &q), -EINVAL);
	qa = (struct iovm_queue_attr){ .flags = IOVM_QUEUE_POLLED };
	CHECK_RET(iovm_queue_create(dev, &qa, NULL), -EINVAL);
	/* The bounds: 2 and 65536. */
	qa = (struct iovm_queue_attr){ .depth = 2, .flags = IOVM_QUEUE_POLLED };
	CHECK_RET(iovm_queue_create(dev, &qa, &q), 0);
	CHECK_OK(iovm_queue_destroy(q));
	qa = (struct iovm_queue_attr){ .depth = 65536, .flags = IOVM_QUEUE_POLLED };
	CHECK_RET(iovm_queue_create(dev, &qa, &q), 0);
	CHECK_OK(iovm_queue_destroy(q));
	/* A worker on an allowed CPU works. */
	for (long c = 0; c < ncpu && c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set)) {
			qa = (struct iovm_queue_attr){ .flags = IOVM_QUEUE_CPU, .cpu = (unsigned)c };
			CHECK_RET(iovm_queue_create(dev, &qa, &q), 0);
			struct rig r = { .ctx = ctx, .dom = d, .dev = dev, .q = q };
			r.comp = iovm_dma_zalloc(ctx, 64, 64, 0);
			r.comp_iova = IOVM_IOVA(iova(d, r.comp));
			uint8_t *b = iovm_dma_alloc(ctx, 256, 64, 0);
			struct iovm_completion cc = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL,
				.dst = iova(d, b), .len = 256, .pattern = 0x4545454545454545ull });
			CHECK_EQ(cc.status, IOVM_STATUS_SUCCESS);
			CHECK(all_bytes(b, 256, 0x45));
			CHECK_RET(iovm_queue_process(q, 1), -EINVAL);
			CHECK_OK(iovm_queue_destroy(q));
			iovm_dma_free(ctx, b);
			iovm_dma_free(ctx, r.comp);
			break;
		}
	CHECK_OK(iovm_device_close(dev));
	CHECK_OK(iovm_domain_destroy(d));
}

TEST(a_full_ring_is_eagain_and_an_unreaped_completion_ring_loses_nothing)
{
	struct iovm_device *dev;
	struct iovm_domain *d = follow();
	struct iovm_queue *q;
	uint8_t *buf = iovm_dma_zalloc(ctx, 4096, 4096, 0);
	const unsigned depth = 8;
	struct iovm_queue_attr qa = { .depth = depth, .flags = IOVM_QUEUE_POLLED };
	struct iovm_cqe cqe[64];
	unsigned submitted = 0, reaped = 0;

	CHECK_OK(iovm_device_open(ctx, "sw", &dev));
	CHECK_OK(iovm_device_attach(dev, d, 0));
	CHECK_OK(iovm_queue_create(dev, &qa, &q));
	CHECK_RET(iovm_queue_submit(q, NULL), -EINVAL);
	CHECK_RET(iovm_queue_submit(NULL, NULL), -EINVAL);
	CHECK_RET(iovm_queue_reap(q, NULL, 1), -EINVAL);
	CHECK_RET(iovm_queue_reap(NULL, cqe, 1), -EINVAL);
	CHECK_RET(iovm_queue_process(NULL, 1), -EINVAL);
	/* Each descriptor writes its tag at its own byte: order and loss are visible. */
	for (;;) {
		struct iovm_desc ds = { .op = IOVM_OP_FILL, .dst = iova(d, buf + submitted), .len = 1,
					.pattern = submitted + 1, .tag = submitted + 1 };
		int r = iovm_queue_submit(q, &ds);
		if (r == -EAGAIN)
			break;
		CHECK_OK(r);
		submitted++;
		CHECK(submitted <= depth);
	}
	CHECK_MSG(submitted >= depth - 1, "only %u of a ring of %u accepted", submitted, depth);
	/* Run them all, never reaping, then submit and run as much again. */
	while (iovm_queue_process(q, 64) > 0)
		;
	unsigned second = 0;
	for (int round = 0; round < 4; round++) {
		struct iovm_desc ds = { .op = IOVM_OP_FILL, .dst = iova(d, buf + submitted), .len = 1,
					.pattern = submitted + 1, .tag = submitted + 1 };
		if (iovm_queue_submit(q, &ds) == 0) {
			submitted++;
			second++;
		}
		while (iovm_queue_process(q, 64) > 0)
			;
	}
	/* Now reap: every tag once, in order; what ran wrote its byte. */
	for (int spins = 0; reaped < submitted && spins < 1000; spins++) {
		int n = iovm_queue_reap(q, cqe, 64);
		CHECK(n >= 0);
		for (int i = 0; i < n; i++) {
			EXPECT_MSG(cqe[i].tag == reaped + 1, "reaped tag %llu, expected %u",
				   (unsigned long long)cqe[i].tag, reaped + 1);
			EXPECT_EQ(cqe[i].status, IOVM_STATUS_SUCCESS);
			reaped++;
		}
		iovm_queue_process(q, 64);
	}
	EXPECT_MSG(reaped == submitted, "reaped %u of %u", reaped, submitted);
	for (unsigned i = 0; i < submitted; i++)
		EXPECT_EQ(buf[i], i + 1);
	CHECK_RET(iovm_queue_reap(q, cqe, 64), 0);
	struct iovm_queue_stats st;
	CHECK_OK(iovm_queue_stats(q, &st));
	EXPECT_EQ(st.submitted, submitted);
	EXPECT_EQ(st.completed, submitted);
	/* Phases: a long run across many wraps stays in order. */
	for (unsigned i = 0; i < 1000; i++) {
		struct iovm_desc ds = { .op = IOVM_OP_NOOP, .tag = 5000 + i };
		CHECK_OK(iovm_queue_submit(q, &ds));
		CHECK_EQ(iovm_queue_process(q, 1), 1);
		CHECK_EQ(iovm_queue_reap(q, cqe, 1), 1);
		CHECK_EQ(cqe[0].tag, 5000 + i);
	}
	CHECK_OK(iovm_queue_destroy(q));
	CHECK_OK(iovm_device_close(dev));
	check_domain_clean(d);
	CHECK_OK(iovm_domain_destroy(d));
	iovm_dma_free(ctx, buf);
}

TEST(destroy_does_not_run_descriptors_not_fetched)
{
	struct iovm_device *dev;
	struct iovm_domain *d = follow();
	struct iovm_queue *q;
	uint8_t *buf = iovm_dma_zalloc(ctx, 4096, 4096, 0);
	struct iovm_queue_attr qa = { .depth = 16, .flags = IOVM_QUEUE_POLLED };

	CHECK_OK(iovm_device_open(ctx, "sw", &dev));
	CHECK_OK(iovm_device_attach(dev, d, 0));
	CHECK_OK(iovm_queue_create(dev, &qa, &q));
	for (int i = 0; i < 8; i++) {
		struct iovm_desc ds = { .op = IOVM_OP_FILL, .dst = iova(d, buf + 64 * i), .len = 64,
					.pattern = 0x7777777777777777ull };
		CHECK_OK(iovm_queue_submit(q, &ds));
	}
	CHECK_OK(iovm_queue_destroy(q));
	EXPECT_MSG(all_bytes(buf, 4096, 0), "queue_destroy ran descriptors nobody processed");
	CHECK_OK(iovm_device_close(dev));
	CHECK_OK(iovm_domain_destroy(d));
	iovm_dma_free(ctx, buf);
}

/* Two threads processing one polled queue: -EBUSY or work, never both at once. */
static struct iovm_queue *shared_q;
static _Atomic int stop_proc;
static _Atomic unsigned long busy, ran;

static void *processor(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop_proc)) {
		int r = iovm_queue_process(shared_q, 4);
		if (r == -EBUSY)
			atomic_fetch_add(&busy, 1);
		else if (r >= 0)
			atomic_fetch_add(&ran, (unsigned long)r);
		else
			test_fail("iovm_queue_process: %d", r);
	}
	return NULL;
}

TEST(concurrent_process_is_ebusy_and_loses_nothing)
{
	struct iovm_device *dev;
	struct iovm_domain *d = follow();
	uint8_t *buf = iovm_dma_zalloc(ctx, 65536, 4096, 0);
	struct iovm_queue_attr qa = { .depth = 256, .flags = IOVM_QUEUE_POLLED };
	pthread_t t[3];
	unsigned submitted = 0, reaped = 0;
	struct iovm_cqe cqe[32];

	CHECK_OK(iovm_device_open(ctx, "sw", &dev));
	CHECK_OK(iovm_device_attach(dev, d, 0));
	CHECK_OK(iovm_queue_create(dev, &qa, &shared_q));
	atomic_store(&stop_proc, 0);
	for (int i = 0; i < 3; i++)
		CHECK(pthread_create(&t[i], NULL, processor, NULL) == 0);
	while (submitted < 20000) {
		struct iovm_desc ds = { .op = IOVM_OP_FILL, .dst = iova(d, buf + (submitted % 65536)), .len = 1,
					.pattern = (uint8_t)(submitted * 7 + 1), .tag = submitted + 1 };
		if (iovm_queue_submit(shared_q, &ds) == 0)
			submitted++;
		int n = iovm_queue_reap(shared_q, cqe, 32);
		CHECK(n >= 0);
		for (int i = 0; i < n; i++) {
			EXPECT_MSG(cqe[i].tag == reaped + 1, "tag %llu, expected %u",
				   (unsigned long long)cqe[i].tag, reaped + 1);
			reaped++;
		}
	}
	for (int spins = 0; reaped < submitted && spins < 10000000; spins++) {
		int n = iovm_queue_reap(shared_q, cqe, 32);
		for (int i = 0; i < n; i++) {
			EXPECT_EQ(cqe[i].tag, reaped + 1);
			reaped++;
		}
	}
	atomic_store(&stop_proc, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	EXPECT_EQ(reaped, submitted);
	EXPECT_EQ(atomic_load(&ran), submitted);
	printf("# %lu EBUSY answers\n", atomic_load(&busy));
	CHECK_OK(iovm_queue_destroy(shared_q));
	CHECK_OK(iovm_device_close(dev));
	check_domain_clean(d);
	CHECK_OK(iovm_domain_destroy(d));
	iovm_dma_free(ctx, buf);
}

TEST(rings_at_refuses_misaligned_overlapping_unmapped_readonly_and_scattered)
{
	struct iovm_device *dev;
	struct iovm_domain_attr a = { .type = IOVM_DOMAIN_MANAGED };
	struct iovm_domain *d;
	struct iovm_queue *q;
	const unsigned depth = 64; /* 64 * 64 = one 4 KiB page of descriptors */
	uint8_t *mem = iovm_dma_alloc(ctx, 16 * 4096, 4096, IOVM_DMA_CONTIG);
	iovm_iova_t io;
	iovm_pa_t pa;

	CHECK(mem != NULL);
	memset(mem, 0x5c, 16 * 4096);
	CHECK_OK(iovm_domain_create(ctx, &a, &d));
	CHECK_OK(iovm_device_open(ctx, "sw", &dev));
	CHECK_OK(iovm_device_attach(dev, d, 0));
	CHECK_OK(iovm_dma_pa(ctx, mem, &pa));
	/* Pages 0-3 RW at a chosen IOVA, 4 read-only, 5 unmapped, 6-7 RW. */
	const uint64_t base = 0x10000000;
	io = IOVM_IOVA(base);
	CHECK_OK(iovm_domain_map(d, &io, pa, 4 * 4096, RW));
	io = IOVM_IOVA(base + 4 * 4096);
	CHECK_OK(iovm_domain_map(d, &io, IOVM_PA(pa.addr + 4 * 4096), 4096, IOVM_MAP_READ));
	io = IOVM_IOVA(base + 6 * 4096);
	CHECK_OK(iovm_domain_map(d, &io, IOVM_PA(pa.addr + 6 * 4096), 2 * 4096, RW));
	/* Pages 8-9: two pages not contiguous in PA (9 then 11). */
	iovm_pa_t sc[2] = { IOVM_PA(pa.addr + 9 * 4096), IOVM_PA(pa.addr + 11 * 4096) };
	io = IOVM_IOVA(base + 8 * 4096);
	CHECK_OK(iovm_domain_map_pages(d, &io, sc, 2, RW));
	struct iovm_queue_attr qa = { .depth = depth, .flags = IOVM_QUEUE_POLLED | IOVM_QUEUE_RINGS_AT };
	static const struct {
		uint64_t sq, cq;
		int err;
		const char *what;
	} cases[] = {
		{ base + 8, base + 4096, -EINVAL, "misaligned sq" },
		{ base, base + 4096 + 64, -EINVAL, "misaligned cq" },
		{ base, base, -EINVAL, "the same ring twice" },
		{ base + 5 * 4096, base + 4096, -EFAULT, "unmapped sq" },
		{ base, base + 5 * 4096, -EFAULT, "unmapped cq" },
		{ base + 4 * 4096, base + 4096, -EFAULT, "read-only sq" },
		{ base, base + 4 * 4096, -EFAULT, "read-only cq" },
		{ 0x7000000000ull, base + 4096, -EFAULT, "far away sq" },
		{ UINT64_MAX & ~0xfffull, base + 4096, -EFAULT, "sq at the top of 2^64" },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		qa.sq_addr = cases[i].sq;
		qa.cq_addr = cases[i].cq;
		int r = iovm_queue_create(dev, &qa, &q);
		EXPECT_MSG(r == cases[i].err, "%s: %d, expected %d", cases[i].what, r, cases[i].err);
		if (r == 0)
			iovm_queue_destroy(q);
	}
	/* A ring of two pages that are not contiguous in PA: depth 128 descriptors = 8 KiB. */
	qa.depth = 128;
	qa.sq_addr = base + 8 * 4096;
	qa.cq_addr = base;
	int r = iovm_queue_create(dev, &qa, &q);
	EXPECT_MSG(r == -EFAULT, "scattered sq: %d", r);
	if (r == 0)
		iovm_queue_destroy(q);
	/* Overlapping, not equal: sq of 8 KiB at base, cq at base + 4096. */
	qa.sq_addr = base;
	qa.cq_addr = base + 4096;
	r = iovm_queue_create(dev, &qa, &q);
	EXPECT_MSG(r == -EINVAL, "overlapping rings: %d", r);
	if (r == 0)
		iovm_queue_destroy(q);
	/* A good one: sq at page 0, cq at page 6; the cq is zeroed, the rest untouched. */
	qa.depth = depth;
	qa.sq_addr = base;
	qa.cq_addr = base + 6 * 4096;
	CHECK_RET(iovm_queue_create(dev, &qa, &q), 0);
	CHECK(all_bytes(mem + 6 * 4096, depth * sizeof(struct iovm_cqe), 0));
	CHECK(all_bytes(mem + 4096, 4096, 0x5c));
	struct iovm_desc ds = { .op = IOVM_OP_FILL, .dst = base + 2 * 4096, .len = 100,
				.pattern = 0x6666666666666666ull, .tag = 9 };
	CHECK_EQ(run_polled(q, ds), IOVM_STATUS_SUCCESS);
	CHECK(all_bytes(mem + 2 * 4096, 100, 0x66));
	CHECK(all_bytes(mem + 2 * 4096 + 100, 4096 - 100, 0x5c));
	CHECK_OK(iovm_queue_destroy(q));
	CHECK_OK(iovm_device_close(dev));
	check_domain_clean(d);
	CHECK_OK(iovm_domain_destroy(d));
	iovm_dma_free(ctx, mem);
}

int main(void)
{
	test_init();
	ctx = attack_open(NULL);
	RUN(device_open_specs_and_sw_only_calls);
	RUN(attach_refuses_bad_pasids_busy_pasids_and_foreign_domains);
	RUN(a_detached_pasid_faults_into_the_device_log);
	RUN(queue_create_refuses_bad_attributes);
	RUN(a_full_ring_is_eagain_and_an_unreaped_completion_ring_loses_nothing);
	RUN(destroy_does_not_run_descriptors_not_fetched);
	RUN(concurrent_process_is_ebusy_and_loses_nothing);
	RUN(rings_at_refuses_misaligned_overlapping_unmapped_readonly_and_scattered);
	iovm_close(ctx);
	return attack_status();
}
