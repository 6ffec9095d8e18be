/* SPDX-License-Identifier: MIT */
/*
 * test_reclaim.c - page tables an unmap detaches are freed only after a
 * grace period that began after they were detached: a device that walked
 * into one before the unmap, and is still inside its section, may read it
 * (and write its accessed bit) until then.
 *
 * Devices are played by threads that enter a section, walk, and stop
 * between the walk and the mark (where iommu_access() is between pt_walk()
 * and pt_mark()); each checks, at the point where a table was freed too
 * early, that it is still retired (a use after free besides, under ASan).
 */
#include <pthread.h>

#include "dev/dev_util.h"
#include "iommu/iommu.h"
#include "iommu/iommu_internal.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)

static const char *opts = "page_size=4K,host_pa=off,oracle=on";

static iovm_pa_t pa_of(struct iovm_ctx *ctx, const void *p)
{
	iovm_pa_t pa;

	CHECK_OK(iovm_dma_pa(ctx, p, &pa));
	return pa;
}

/* A device of its own (client and IOTLB), attached to @dom, that walks @iova and stalls. */
struct stalled_device {
	struct iommu_client *client;
	struct iommu_iotlb *tlb;
	struct iovm_domain *dom;
	uint64_t iova;          /* 0: enter only, walk nothing */
	_Atomic iopte_t *ptep;  /* the leaf it walked to */
	iopte_t pte;            /* what it held */
	_Atomic int stage;      /* 1: inside its section (walked); 2: may go on */
	pthread_t t;
};

static void *stalled_main(void *arg)
{
	struct stalled_device *d = arg;
	struct pt_walk w;

	iommu_enter(d->tlb);
	if (d->iova) {
		CHECK_OK(pt_walk(&d->dom->pt, IOVM_IOVA(d->iova), &w));
		d->ptep = w.ptep;
		d->pte = w.pte;
	}
	atomic_store(&d->stage, 1);
	while (atomic_load(&d->stage) != 2)
		usleep(100);
	if (d->iova)
		pt_mark(w.ptep, w.pte, true); /* into a freed table: a use after free (ASan) */
	iommu_exit(d->tlb);
	return NULL;
}

/* Its client and IOTLB: made before any grace period runs (a new reader waits for one to end). */
static void device_open(struct iovm_ctx *ctx, struct stalled_device *d, struct iovm_domain *dom, uint32_t pasid)
{
	d->dom = dom;
	CHECK_OK(iommu_client_create(ctx->iommu, &d->client));
	CHECK_OK(iommu_iotlb_create(d->client, &d->tlb));
	CHECK_OK(iommu_attach(d->client, dom, pasid));
}

/* Into a section, walk @iova (0: none), and stay there. */
static void stall(struct stalled_device *d, uint64_t iova)
{
	d->iova = iova;
	CHECK_EQ(pthread_create(&d->t, NULL, stalled_main, d), 0);
	while (atomic_load(&d->stage) != 1)
		usleep(100);
}

/* Out of its section. */
static void release(struct stalled_device *d)
{
	atomic_store(&d->stage, 2);
	CHECK_EQ(pthread_join(d->t, NULL), 0);
}

/* A detach waits for a grace period: only once no device stalls. */
static void device_close(struct stalled_device *d, uint32_t pasid)
{
	CHECK_OK(iommu_detach(d->client, pasid));
	iommu_iotlb_destroy(d->tlb);
	iommu_client_destroy(d->client);
}

/*
 * Whether the leaf the device walked to still holds @pte: its table not
 * freed. (A freed table is reused by malloc, which writes into its first
 * words at once; under ASan the read itself is reported.)
 */
static bool table_intact(_Atomic iopte_t *ptep, iopte_t pte)
{
	return atomic_load(ptep) == pte;
}

/* A mirror that accepts every map, or refuses every one, and counts the unmaps it is told of. */
struct counting {
	int refuse;
	_Atomic unsigned unmaps;
};

static int counting_map(void *arg, iova_t iova, void *va, uint64_t len, bool write)
{
	(void)iova;
	(void)va;
	(void)len;
	(void)write;
	return ((struct counting *)arg)->refuse;
}

static void counting_unmap(void *arg, iova_t iova, uint64_t len)
{
	(void)iova;
	(void)len;
	atomic_fetch_add(&((struct counting *)arg)->unmaps, 1);
}

static const struct iommu_mirror_ops counting_ops = { .map = counting_map, .unmap = counting_unmap };

struct unmapper {
	struct iovm_domain *dom;
	uint64_t iova, len;
	pthread_t t;
	_Atomic bool done;
};

static void *unmap_main(void *arg)
{
	struct unmapper *u = arg;

	CHECK_OK(iovm_domain_unmap(u->dom, IOVM_IOVA(u->iova), u->len));
	atomic_store(&u->done, true);
	return NULL;
}

static void unmap_async(struct unmapper *u, struct iovm_domain *dom, uint64_t iova, uint64_t len)
{
	*u = (struct unmapper){ .dom = dom, .iova = iova, .len = len };
	CHECK_EQ(pthread_create(&u->t, NULL, unmap_main, u), 0);
}

/*
 * Two strict unmaps: A's grace period begins, then B detaches a table a
 * device walked after A's period began. A's reclaim, at the end of its
 * period, freed every retired table, B's too, while that device was still
 * inside its section.
 */
TEST(one_unmap_frees_no_table_of_another)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct stalled_device early = { 0 }, late = { 0 };
	struct counting mirror = { 0 };
	struct unmapper a, b;
	uint64_t tables, now;
	struct iovm_domain *dom;
	uint8_t *buf = iovm_dma_alloc(ctx, 4 * SZ_4K, SZ_4K, IOVM_DMA_CONTIG);
	const uint64_t ra = 0x40000000, rb = 0x80000000; /* 2 MiB aligned: their 4 KiB leaves fill a table each */
	iovm_iova_t at;

	CHECK_OK(iovm_domain_create(ctx, NULL, &dom));
	/* The mirror says when an unmap has detached its tables (it is told right after). */
	CHECK_OK(iommu_domain_mirror(dom, &counting_ops, &mirror, NULL, 0));
	at = IOVM_IOVA(ra);
	CHECK_OK(iovm_domain_map(dom, &at, pa_of(ctx, buf), 2 * SZ_4K, RW));
	at = IOVM_IOVA(rb);
	CHECK_OK(iovm_domain_map(dom, &at, pa_of(ctx, buf), 2 * SZ_4K, RW));
	device_open(ctx, &early, dom, 1);
	device_open(ctx, &late, dom, 2);
	tables = atomic_load(&dom->pt.cnt->nr_tables);
	/* A device inside a section from the start: every grace period waits for it. */
	stall(&early, 0);
	/* A unmaps its range, detaching its table, and waits for the early device. */
	now = atomic_load(&dom->is->epoch->now);
	unmap_async(&a, dom, ra, SZ_2M);
	while (atomic_load(&mirror.unmaps) < 1 || atomic_load(&dom->is->epoch->now) == now)
		usleep(100); /* until A's grace period has begun: a device entering now is not waited for */
	/* A device that enters after A detached walks B's range; B detaches that table. */
	stall(&late, rb + SZ_4K);
	unmap_async(&b, dom, rb, SZ_2M);
	while (atomic_load(&mirror.unmaps) < 2)
		usleep(100);
	/* A's period ends, and it frees what it detached (one table): not B's. */
	release(&early);
	CHECK_EQ(pthread_join(a.t, NULL), 0);
	CHECK_EQ(atomic_load(&dom->pt.cnt->nr_tables), tables - 1);
	CHECK_MSG(table_intact(late.ptep, late.pte), "B's table freed by A while a device was in it");
	CHECK(!atomic_load(&b.done));
	release(&late);
	CHECK_EQ(pthread_join(b.t, NULL), 0);
	device_close(&early, 1);
	device_close(&late, 2);
	no_violations(dom);
	iommu_domain_unmirror(dom);
	CHECK_OK(iovm_domain_destroy(dom));
	iovm_dma_free(ctx, buf);
	iovm_close(ctx);
}

/*
 * A map the mirror refuses is undone in iovm's table; that undo freed
 * every retired table at once, those of another thread's strict unmap
 * too, whose grace period was still running.
 */
struct mapper {
	struct iovm_domain *dom;
	iovm_pa_t pa;
	int ret;
	_Atomic bool done;
	pthread_t t;
};

static void *refused_map_main(void *arg)
{
	struct mapper *m = arg;
	iovm_iova_t at = IOVM_IOVA(0xc0000000);

	m->ret = iovm_domain_map(m->dom, &at, m->pa, SZ_4K, RW);
	atomic_store(&m->done, true);
	return NULL;
}

TEST(refused_map_frees_no_table_in_use)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct counting mirror = { 0 };
	struct stalled_device d = { 0 };
	struct unmapper u;
	struct mapper m;
	struct iovm_domain *dom;
	uint8_t *buf = iovm_dma_alloc(ctx, 4 * SZ_4K, SZ_4K, IOVM_DMA_CONTIG);
	const uint64_t at = 0x40000000; /* 2 MiB aligned: its 4 KiB leaves fill one table */
	iovm_iova_t where = IOVM_IOVA(at), other;
	uint64_t tables;

	CHECK_OK(iovm_domain_create(ctx, NULL, &dom));
	CHECK_OK(iommu_domain_mirror(dom, &counting_ops, &mirror, NULL, 0));
	CHECK_OK(iovm_domain_map(dom, &where, pa_of(ctx, buf), 2 * SZ_4K, RW));
	/* The tables the refused map will use, made now (and left empty): it allocates none. */
	other = IOVM_IOVA(0xc0000000);
	CHECK_OK(iovm_domain_map(dom, &other, pa_of(ctx, buf), SZ_4K, RW));
	CHECK_OK(iovm_domain_unmap(dom, other, SZ_4K));
	mirror.refuse = -ENOSPC; /* from now on */
	device_open(ctx, &d, dom, IOVM_PASID_NONE);
	tables = atomic_load(&dom->pt.cnt->nr_tables);
	stall(&d, at + SZ_4K);
	/* The unmap detaches the walked table, tells the mirror, then waits for the device's section. */
	unmap_async(&u, dom, at, SZ_2M);
	while (atomic_load(&mirror.unmaps) < 1)
		usleep(100);
	/*
	 * A map the mirror refuses, meanwhile. Its undo is a strict unmap of
	 * its own, which waits for the device too: give it time to do what
	 * it would, then look (a check, whatever the machine's speed).
	 */
	m = (struct mapper){ .dom = dom, .pa = pa_of(ctx, buf) };
	CHECK_EQ(pthread_create(&m.t, NULL, refused_map_main, &m), 0);
	for (int i = 0; i < 100 && !atomic_load(&m.done); i++)
		usleep(2000);
	CHECK_EQ(atomic_load(&dom->pt.cnt->nr_tables), tables); /* the walked table is not freed */
	CHECK_MSG(table_intact(d.ptep, d.pte), "a table in use was freed before its grace period");
	release(&d);
	CHECK_EQ(pthread_join(u.t, NULL), 0);
	CHECK_EQ(pthread_join(m.t, NULL), 0);
	CHECK_EQ(m.ret, -ENOSPC);
	device_close(&d, IOVM_PASID_NONE);
	no_violations(dom);
	iommu_domain_unmirror(dom);
	CHECK_OK(iovm_domain_destroy(dom));
	iovm_dma_free(ctx, buf);
	iovm_close(ctx);
}

int main(void)
{
	test_init();
	RUN(one_unmap_frees_no_table_of_another);
	RUN(refused_map_frees_no_table_in_use);
	return 0;
}
