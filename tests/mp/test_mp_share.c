/* SPDX-License-Identifier: MIT */
/*
 * test_mp_share.c - iovm/mp.h's promises between real processes: attach by
 * name, one heap (any process allocates, any frees), the same PAs and
 * contents everywhere, zones by name, DMA by another process's engine into
 * memory a third allocated, fork, death of an attached process and of the
 * owner, credentials, and bad input on every new call.
 */
#include <grp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "dev/dev_util.h"
#include "mp_util.h"

#define HEAP (UINT64_C(8) << 20)

TEST(bad_input)
{
	struct iovm_share_params p = { .heap_size = HEAP, .group = -1 };
	struct iovm_share_info info;
	struct iovm_ctx *ctx, *other, *att = (struct iovm_ctx *)1;
	char longname[IOVM_SHARE_NAMESIZE + 1];
	const char *name = share_name("bad");

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK_OK(iovm_open("", &ctx));
	CHECK_EQ(iovm_share(NULL, name, NULL), -EINVAL);
	CHECK_EQ(iovm_share(ctx, NULL, NULL), -EINVAL);
	CHECK_EQ(iovm_share(ctx, "", NULL), -EINVAL);
	CHECK_EQ(iovm_share(ctx, longname, NULL), -EINVAL);
	longname[IOVM_SHARE_NAMESIZE - 1] = '\0'; /* 63 characters: the most a name has */
	CHECK_EQ(iovm_share(ctx, "a/b", NULL), -EINVAL);
	CHECK_EQ(iovm_share(ctx, "sp ace", NULL), -EINVAL);
	p.heap_size = 100;
	CHECK_EQ(iovm_share(ctx, name, &p), -EINVAL);
	p.heap_size = UINT64_C(1) << 41;
	CHECK_EQ(iovm_share(ctx, name, &p), -EINVAL);
	p.heap_size = HEAP;
	p.page_size = (UINT64_C(1) << 30);
	CHECK_EQ(iovm_share(ctx, name, &p), -EINVAL);
	p.page_size = 12345;
	CHECK_EQ(iovm_share(ctx, name, &p), -EINVAL);
	p.page_size = 0;
	p.group = -2;
	CHECK_EQ(iovm_share(ctx, name, &p), -EINVAL);
	p.group = -1;
	/* Not shared yet: the calls on a share say so. */
	CHECK_EQ(iovm_share_info(ctx, &info), -ENOENT);
	CHECK_EQ(iovm_share_info(ctx, NULL), -EINVAL);
	CHECK_EQ(iovm_share_info(NULL, &info), -EINVAL);
	CHECK_EQ(iovm_share_reap(ctx), -ENOENT);
	CHECK_EQ(iovm_share_reap(NULL), -EINVAL);
	CHECK_EQ(iovm_share_check(ctx), -ENOENT);
	CHECK_EQ(iovm_share_check(NULL), -EINVAL);
	/* Attach: bad arguments, and a name nobody shares; nothing is set. */
	CHECK_EQ(iovm_attach(NULL, "", &att), -EINVAL);
	CHECK_EQ(iovm_attach(name, "", NULL), -EINVAL);
	CHECK_EQ(iovm_attach("", "", &att), -EINVAL);
	CHECK_EQ(iovm_attach("x y", "", &att), -EINVAL);
	CHECK_EQ(iovm_attach(name, "", &att), -ENOENT);
	CHECK(strstr(iovm_error_detail(), "no process shares") != NULL);
	CHECK_EQ(iovm_attach(name, "no_such_option=1", &att), -EINVAL);
	CHECK(att == (struct iovm_ctx *)1);
	/* The longest name works; sharing twice does not; nor does a name taken. */
	CHECK_OK(iovm_share(ctx, longname, &p));
	CHECK_EQ(iovm_share(ctx, name, &p), -EBUSY);
	CHECK_OK(iovm_open("", &other));
	CHECK_EQ(iovm_share(other, longname, &p), -EEXIST);
	CHECK_OK(iovm_share(other, name, &p));
	CHECK_OK(iovm_close(other));
	/* Once its owner closed, the name is free again. */
	CHECK_OK(iovm_open("", &other));
	CHECK_OK(iovm_share(other, name, &p));
	CHECK_EQ(iovm_share_check(other), 0);
	CHECK_OK(iovm_close(other));
	CHECK_OK(iovm_close(ctx));
}

/* The options: share= makes a share at iovm_open(), attach= joins it, as the calls do. */
TEST(options)
{
	struct iovm_ctx *owner, *att;
	char opts[160];
	const char *name = share_name("opts");
	struct iovm_share_info info;

	snprintf(opts, sizeof(opts), "share=%s,share_size=4M,share_group=-1", name);
	CHECK_OK(iovm_open(opts, &owner));
	info = share_info(owner);
	CHECK(info.owner);
	CHECK_EQ(info.heap_size, 4 << 20);
	snprintf(opts, sizeof(opts), "attach=%s", name);
	CHECK_OK(iovm_open(opts, &att));
	info = share_info(att);
	CHECK(!info.owner);
	CHECK_EQ(info.processes, 2);
	/* Its heap is the share's: what one allocates, the other translates. */
	{
		void *p = iovm_dma_alloc(att, 100, 0, 0);
		iovm_pa_t pa;

		CHECK(p != NULL);
		CHECK_OK(iovm_dma_pa(att, p, &pa));
		CHECK(iovm_dma_ptr(owner, pa) != NULL);
		CHECK_OK(iovm_dma_free(owner, iovm_dma_ptr(owner, pa)));
	}
	CHECK_EQ(iovm_open("attach=t-nobody-shares-this", &att), -ENOENT);
	CHECK_OK(iovm_close(att));
	CHECK_OK(iovm_close(owner));
}

/* Frees through a shared context: bad pointers, double frees, interior pointers. */
TEST(bad_frees)
{
	struct iovm_ctx *ctx = share_ok(share_name("frees"), HEAP);
	struct iovm_share_info info = share_info(ctx);
	uint8_t *p = iovm_dma_alloc(ctx, 4096, 0, 0), *heap = info.heap_va;
	int x;

	CHECK(p != NULL);
	CHECK(p >= heap && p < heap + info.heap_size);
	CHECK_EQ(iovm_dma_size(ctx, p), 4096);
	CHECK_EQ(iovm_dma_free(ctx, p + 64), -EINVAL);
	CHECK_EQ(iovm_dma_free(ctx, p + 1), -EINVAL);
	CHECK_EQ(iovm_dma_free(ctx, heap + info.heap_size - 64), -EINVAL);
	CHECK_EQ(iovm_dma_free(ctx, &x), -EINVAL);
	CHECK_OK(iovm_dma_free(ctx, p));
	CHECK_EQ(iovm_dma_free(ctx, p), -EINVAL);
	CHECK_EQ(iovm_dma_size(ctx, p), 0);
	CHECK_EQ(errno, EINVAL);
	/* Placement the shared heap cannot give, and flags nobody can. */
	CHECK(iovm_dma_alloc(ctx, 64, 0, IOVM_DMA_NODE(0)) == NULL);
	CHECK_EQ(errno, EOPNOTSUPP);
	CHECK(iovm_dma_alloc(ctx, 64, 0, IOVM_DMA_PAGE_1G) == NULL);
	CHECK_EQ(errno, EOPNOTSUPP);
	CHECK(iovm_dma_alloc(ctx, 64, 3, 0) == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK(iovm_dma_alloc(ctx, 0, 0, 0) == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK(iovm_dma_alloc(ctx, 64, 0, 1u << 30) == NULL);
	CHECK_EQ(errno, EINVAL);
	/* Larger than the heap: no memory, not a crash. */
	CHECK(iovm_dma_alloc(ctx, HEAP * 2, 0, 0) == NULL);
	CHECK_EQ(errno, ENOMEM);
	/* Boundaries: no block crosses one, in PA. */
	for (int i = 0; i < 64; i++) {
		iovm_pa_t pa;
		uint8_t *q = iovm_dma_alloc(ctx, 3000, 0, IOVM_DMA_BOUNDARY(12));

		CHECK(q != NULL);
		CHECK_OK(iovm_dma_pa(ctx, q, &pa));
		CHECK_EQ(pa.addr >> 12, (pa.addr + 2999) >> 12);
	}
	CHECK_EQ(iovm_share_check(ctx), 0);
	CHECK_OK(iovm_close(ctx));
}

static const char *g_name;

/* The child: attach, allocate a page with a pattern, hand its PA over; then free what it is sent. */
static void basic_child(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_share_info info = share_info(ctx);
	uint8_t *p = iovm_dma_alloc(ctx, 4096, 4096, 0);
	struct iovm_dma_xlate x;
	iovm_pa_t pa;
	uint8_t *q;

	(void)arg;
	CHECK(!info.owner);
	CHECK_EQ(info.processes, 2);
	CHECK(p != NULL);
	memset(p, 0xa5, 4096);
	CHECK_OK(iovm_dma_pa(ctx, p, &pa));
	CHECK_OK(iovm_dma_xlate(ctx, p, &x));
	CHECK_EQ(x.pa.addr, pa.addr);
	CHECK(x.contig >= 4096);
	CHECK(iovm_dma_ptr(ctx, pa) == p);
	put64(wr, pa.addr);
	put64(wr, (uint64_t)(uintptr_t)info.heap_va);
	/* The parent freed it: gone here too. */
	CHECK_EQ(get64(rd), 1);
	CHECK_EQ(iovm_dma_size(ctx, p), 0);
	/* Now free what the parent allocated. */
	q = iovm_dma_ptr(ctx, IOVM_PA(get64(rd)));
	CHECK(q != NULL);
	for (int i = 0; i < 8192; i++)
		CHECK_MSG(q[i] == 0x3c, "byte %d", i);
	CHECK_OK(iovm_dma_free(ctx, q));
	CHECK_OK(iovm_close(ctx));
}

TEST(one_heap)
{
	struct iovm_ctx *ctx;
	struct iovm_share_info info;
	struct child c;
	uint64_t blocks;
	iovm_pa_t pa;
	uint8_t *p, *q;

	g_name = share_name("one");
	ctx = share_ok(g_name, HEAP);
	info = share_info(ctx);
	CHECK(info.owner);
	CHECK_EQ(info.processes, 1);
	CHECK_EQ(info.owner_pid, getpid());
	CHECK(info.heap_size >= HEAP);
	blocks = info.blocks;
	c = child_start(basic_child, NULL);
	pa.addr = get64(c.rd);
	get64(c.rd);
	p = iovm_dma_ptr(ctx, pa);
	CHECK(p != NULL);
	for (int i = 0; i < 4096; i++)
		CHECK_MSG(p[i] == 0xa5, "byte %d", i);
	CHECK_EQ(iovm_dma_size(ctx, p), 4096);
	/* Allocated before p is freed, so that it cannot take p's place while the child looks. */
	q = iovm_dma_alloc(ctx, 8192, 0, 0);
	CHECK(q != NULL);
	CHECK_OK(iovm_dma_free(ctx, p));
	put64(c.wr, 1);
	p = q;
	memset(p, 0x3c, 8192);
	CHECK_OK(iovm_dma_pa(ctx, p, &pa));
	put64(c.wr, pa.addr);
	child_ok(&c);
	CHECK_EQ(iovm_dma_size(ctx, p), 0);
	info = share_info(ctx);
	CHECK_EQ(info.blocks, blocks);
	CHECK_EQ(info.processes, 1);
	CHECK_EQ(info.attaches, 2);
	CHECK_EQ(iovm_share_check(ctx), 0);
	CHECK_OK(iovm_close(ctx));
}

static void zone_child(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	const struct iovm_zone *z, *z2;

	(void)arg;
	CHECK_OK(iovm_zone_lookup(ctx, "ring", &z));
	put64(wr, z->pa.addr);
	CHECK_EQ(z->len, 8192);
	for (int i = 0; i < 8192; i++)
		CHECK_MSG(((uint8_t *)z->va)[i] == 0x77, "byte %d", i);
	/* Reserving an existing zone finds it. */
	CHECK_EQ(iovm_zone_reserve(ctx, "ring", 4096, 0, 0, &z2), 1);
	CHECK_EQ(z2->pa.addr, z->pa.addr);
	CHECK_EQ(iovm_zone_reserve(ctx, "ring", 65536, 0, 0, &z2), -EEXIST);
	memset(z->va, 0x11, 8192);
	CHECK_EQ(iovm_zone_reserve(ctx, "child-zone", 1000, 4096, 0, &z2), 0);
	memset(z2->va, 0x22, 1000);
	put64(wr, z2->pa.addr);
	CHECK_EQ(get64(rd), 1);
	/* The parent freed the ring; this process's view is stale: freeing it is refused. */
	CHECK_EQ(iovm_zone_lookup(ctx, "ring", &z2), -ENOENT);
	CHECK_EQ(iovm_zone_free(ctx, z), -EINVAL);
	CHECK_OK(iovm_close(ctx));
}

static int count_zone(void *arg, const struct iovm_zone *z)
{
	(void)z;
	(*(int *)arg)++;
	return 0;
}

TEST(zones_by_name)
{
	const struct iovm_zone *z, *cz;
	struct iovm_ctx *ctx;
	uint64_t pa_child;
	struct child c;
	int n = 0;

	g_name = share_name("zone");
	ctx = share_ok(g_name, HEAP);
	CHECK_EQ(iovm_zone_reserve(ctx, "ring", 8192, 4096, 0, &z), 0);
	CHECK(((uintptr_t)z->va & 4095) == 0);
	CHECK((z->pa.addr & 4095) == 0);
	memset(z->va, 0x77, 8192);
	c = child_start(zone_child, NULL);
	CHECK_EQ(get64(c.rd), z->pa.addr);
	pa_child = get64(c.rd);
	CHECK_OK(iovm_zone_lookup(ctx, "child-zone", &cz));
	CHECK_EQ(cz->pa.addr, pa_child);
	for (int i = 0; i < 1000; i++)
		CHECK(((uint8_t *)cz->va)[i] == 0x22);
	for (int i = 0; i < 8192; i++)
		CHECK(((uint8_t *)z->va)[i] == 0x11);
	CHECK_OK(iovm_zone_walk(ctx, count_zone, &n));
	CHECK_EQ(n, 2);
	CHECK_EQ(share_info(ctx).zones, 2);
	CHECK_OK(iovm_zone_free(ctx, z));
	put64(c.wr, 1);
	child_ok(&c);
	/* Zones belong to the share: the child's zone outlives the child. */
	CHECK_OK(iovm_zone_lookup(ctx, "child-zone", &z));
	CHECK_EQ(z->pa.addr, cz->pa.addr);
	CHECK_EQ(iovm_share_check(ctx), 0);
	CHECK_OK(iovm_close(ctx));
}

/* The child: allocate 50 blocks of its own and 3 kept ones, report, and wait to be killed. */
static void doomed_child(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);

	(void)arg;
	for (int i = 0; i < 50; i++)
		CHECK(iovm_dma_alloc(ctx, 64u << (i % 8), 0, 0) != NULL);
	for (int i = 0; i < 3; i++) {
		void *k = iovm_dma_alloc(ctx, 4096, 0, IOVM_DMA_KEEP);
		iovm_pa_t pa;

		CHECK(k != NULL);
		CHECK_OK(iovm_dma_pa(ctx, k, &pa));
		put64(wr, pa.addr);
	}
	get64(rd); /* never comes */
	_exit(3);
}

TEST(death_frees_but_kept)
{
	struct iovm_share_info before, after;
	struct iovm_ctx *ctx;
	uint64_t kept[3];
	struct child c;

	g_name = share_name("death");
	ctx = share_ok(g_name, HEAP);
	before = share_info(ctx);
	c = child_start(doomed_child, NULL);
	for (int i = 0; i < 3; i++)
		kept[i] = get64(c.rd);
	CHECK_EQ(share_info(ctx).blocks, before.blocks + 53);
	child_kill(&c);
	/* The owner watches the child's pidfd: its memory goes without anyone asking. */
	WAIT_UNTIL(share_info(ctx).reaped == before.reaped + 1);
	after = share_info(ctx);
	CHECK_EQ(after.blocks, before.blocks + 3);
	CHECK_EQ(after.reaped_blocks, before.reaped_blocks + 50);
	CHECK_EQ(after.processes, 1);
	CHECK_EQ(iovm_share_check(ctx), 0);
	/* What it kept is anyone's to free. */
	for (int i = 0; i < 3; i++)
		CHECK_OK(iovm_dma_free(ctx, iovm_dma_ptr(ctx, IOVM_PA(kept[i]))));
	CHECK_EQ(share_info(ctx).blocks, before.blocks);
	CHECK_EQ(share_info(ctx).heap_free, before.heap_free);
	CHECK_OK(iovm_close(ctx));
}

static void owner_child(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = share_ok(g_name, HEAP);
	const struct iovm_zone *z;
	void *p = iovm_dma_alloc(ctx, 4096, 0, 0);

	(void)arg;
	CHECK(p != NULL);
	CHECK_OK(iovm_zone_reserve(ctx, "owners", 4096, 0, 0, &z));
	memset(z->va, 0x5e, 4096);
	put64(wr, 1);
	get64(rd); /* never comes */
	_exit(3);
}

TEST(owner_dies)
{
	const struct iovm_zone *z;
	struct iovm_ctx *ctx, *late;
	struct child c;
	void *p[100];

	g_name = share_name("owner");
	c = child_start(owner_child, NULL);
	CHECK_EQ(get64(c.rd), 1);
	ctx = attach_ok(g_name);
	CHECK_EQ(share_info(ctx).processes, 2);
	child_kill(&c);
	/* Nobody new may attach; those attached keep working on the memory. */
	CHECK_EQ(iovm_attach(g_name, "", &late), -ENOENT);
	CHECK_OK(iovm_zone_lookup(ctx, "owners", &z));
	for (int i = 0; i < 4096; i++)
		CHECK(((uint8_t *)z->va)[i] == 0x5e);
	for (int round = 0; round < 10; round++) {
		for (int i = 0; i < 100; i++) {
			p[i] = iovm_dma_alloc(ctx, 100 + (size_t)i * 37, 0, 0);
			CHECK(p[i] != NULL);
		}
		for (int i = 0; i < 100; i++)
			CHECK_OK(iovm_dma_free(ctx, p[i]));
	}
	/* With no owner to watch it, the dead owner's block waits for a reap. */
	CHECK_EQ(iovm_share_reap(ctx), 1);
	CHECK_EQ(share_info(ctx).processes, 1);
	CHECK_EQ(share_info(ctx).blocks, 1); /* the zone */
	CHECK_EQ(iovm_share_check(ctx), 0);
	CHECK_OK(iovm_close(ctx));
}

static struct iovm_ctx *g_parent_ctx;

static void fork_child(int rd, int wr, void *arg)
{
	struct iovm_share_info info;
	struct iovm_ctx *ctx;
	void *p;

	(void)rd;
	(void)wr;
	(void)arg;
	/* The parent's context is not the child's. */
	CHECK(iovm_dma_alloc(g_parent_ctx, 64, 0, 0) == NULL);
	CHECK_EQ(errno, EPERM);
	CHECK_EQ(iovm_share_info(g_parent_ctx, &info), -EPERM);
	CHECK_EQ(iovm_share_reap(g_parent_ctx), -EPERM);
	/* It attaches on its own. */
	ctx = attach_ok(g_name);
	p = iovm_dma_alloc(ctx, 64, 0, 0);
	CHECK(p != NULL);
	CHECK_OK(iovm_dma_free(ctx, p));
	CHECK_OK(iovm_close(ctx));
	/* Closing the parent's context in the child leaves the parent's share alone. */
	CHECK_OK(iovm_close(g_parent_ctx));
}

TEST(fork_inherits_nothing)
{
	struct child c;

	g_name = share_name("fork");
	g_parent_ctx = share_ok(g_name, HEAP);
	c = child_start(fork_child, NULL);
	child_ok(&c);
	CHECK_EQ(share_info(g_parent_ctx).processes, 1);
	CHECK_EQ(iovm_share_check(g_parent_ctx), 0);
	CHECK_OK(iovm_close(g_parent_ctx));
}

static void stranger_child(int rd, int wr, void *arg)
{
	gid_t group = (gid_t)(uintptr_t)arg;
	struct iovm_ctx *ctx = (struct iovm_ctx *)1;

	(void)rd;
	(void)wr;
	if (group) {
		CHECK(setgroups(1, &group) == 0);
	} else {
		CHECK(setgroups(0, NULL) == 0);
	}
	CHECK(setgid(65534) == 0);
	CHECK(setuid(65534) == 0);
	if (!group) {
		CHECK_EQ(iovm_attach(g_name, "", &ctx), -EACCES);
		CHECK(ctx == (struct iovm_ctx *)1);
		CHECK(strstr(iovm_error_detail(), "does not let user") != NULL);
		return;
	}
	/* A member of the group the owner named may attach. */
	ctx = attach_ok(g_name);
	CHECK(iovm_dma_alloc(ctx, 64, 0, 0) != NULL);
	CHECK_OK(iovm_close(ctx));
}

TEST(credentials)
{
	struct iovm_share_params p = { .heap_size = HEAP, .group = 4242 };
	struct iovm_ctx *ctx;
	struct child c;

	if (geteuid() != 0)
		SKIP_CASE("needs root, to be another user (nobody); the owner's check is SO_PEERCRED's uid");
	g_name = share_name("cred");
	ctx = share_ok(g_name, HEAP);
	c = child_start(stranger_child, (void *)0);
	child_ok(&c);
	CHECK_EQ(share_info(ctx).attaches, 1);
	CHECK_OK(iovm_close(ctx));

	g_name = share_name("group");
	CHECK_OK(iovm_open("", &ctx));
	CHECK_OK(iovm_share(ctx, g_name, &p));
	c = child_start(stranger_child, (void *)(uintptr_t)4242);
	child_ok(&c);
	CHECK_EQ(share_info(ctx).attaches, 2);
	CHECK_EQ(share_info(ctx).blocks, 0); /* the stranger's block went with it */
	CHECK_OK(iovm_close(ctx));
}

/*
 * The child: a device of its own (the software engine, the oracle on)
 * copies a buffer the parent allocated into one it allocated, through a
 * domain of its own; a descriptor to an IOVA it did not map faults.
 */
static void dma_child(int rd, int wr, void *arg)
{
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_MANAGED };
	struct iovm_queue_attr qa = { .depth = 16, .flags = IOVM_QUEUE_POLLED };
	struct iovm_ctx *ctx = NULL;
	struct iovm_domain *dom;
	struct iovm_device *dev;
	iovm_iova_t src_iova, dst_iova;
	struct iovm_queue *q;
	uint8_t *src, *dst;
	iovm_pa_t pa;
	int ret;

	(void)arg;
	ret = iovm_attach(g_name, "oracle=on", &ctx);
	CHECK_MSG(ret == 0, "attach: %s", iovm_error_detail());
	src = iovm_dma_ptr(ctx, IOVM_PA(get64(rd)));
	CHECK(src != NULL);
	dst = iovm_dma_alloc(ctx, 65536, 4096, 0);
	CHECK(dst != NULL);
	memset(dst, 0, 65536);
	CHECK_OK(iovm_domain_create(ctx, &attr, &dom));
	CHECK_OK(iovm_device_open(ctx, "sw", &dev));
	CHECK_OK(iovm_device_attach(dev, dom, IOVM_PASID_NONE));
	CHECK_OK(iovm_queue_create(dev, &qa, &q));
	CHECK_OK(iovm_domain_map_ptr(dom, src, 65536, IOVM_MAP_READ, &src_iova));
	CHECK_OK(iovm_domain_map_ptr(dom, dst, 65536, IOVM_MAP_READ | IOVM_MAP_WRITE, &dst_iova));
	CHECK_EQ(run_polled(q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = src_iova.addr, .dst = dst_iova.addr,
						   .len = 65536 }),
		 IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(src, dst, 65536));
	/* Past what it mapped: a fault, and not a byte written. */
	CHECK_EQ(run_polled(q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = dst_iova.addr + 65536, .len = 4096,
						   .pattern = 0x1111111111111111ull }),
		 IOVM_STATUS_PAGE_FAULT);
	no_violations(dom);
	CHECK_OK(iovm_dma_pa(ctx, dst, &pa));
	put64(wr, pa.addr);
	CHECK_EQ(get64(rd), 1);
	CHECK_OK(iovm_queue_destroy(q));
	CHECK_OK(iovm_device_close(dev));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_dma_free(ctx, dst));
	CHECK_OK(iovm_close(ctx));
}

TEST(dma_from_another_process)
{
	struct iovm_ctx *ctx;
	struct child c;
	iovm_pa_t pa;
	uint8_t *src, *dst;

	g_name = share_name("dma");
	ctx = share_ok(g_name, HEAP);
	src = iovm_dma_alloc(ctx, 65536, 4096, 0);
	CHECK(src != NULL);
	for (int i = 0; i < 65536; i++)
		src[i] = (uint8_t)(i * 7 + 3);
	CHECK_OK(iovm_dma_pa(ctx, src, &pa));
	c = child_start(dma_child, NULL);
	put64(c.wr, pa.addr);
	dst = iovm_dma_ptr(ctx, IOVM_PA(get64(c.rd)));
	CHECK(dst != NULL);
	CHECK(!memcmp(src, dst, 65536));
	put64(c.wr, 1);
	child_ok(&c);
	CHECK_OK(iovm_dma_free(ctx, src));
	CHECK_EQ(share_info(ctx).blocks, 0);
	CHECK_OK(iovm_close(ctx));
}

/* The attached child runs the usual rig: a domain that follows the heap, made before or after the share. */
static void follow_child(int rd, int wr, void *arg)
{
	struct rig r;
	uint8_t *a, *b;

	(void)rd;
	(void)arg;
	memset(&r, 0, sizeof(r));
	r.ctx = attach_ok(g_name);
	/* rig_open()'s steps on an attached context: a managed domain following the (shared) heap. */
	{
		struct iovm_domain_attr follow = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP };
		struct iovm_queue_attr qa = { .depth = 16 };

		CHECK_OK(iovm_domain_create(r.ctx, &follow, &r.dom));
		CHECK_OK(iovm_device_open(r.ctx, "sw", &r.dev));
		CHECK_OK(iovm_device_attach(r.dev, r.dom, IOVM_PASID_NONE));
		CHECK_OK(iovm_queue_create(r.dev, &qa, &r.q));
		r.comp = iovm_dma_zalloc(r.ctx, 4096, 4096, 0);
		CHECK(r.comp != NULL);
		CHECK_OK(iovm_dma_iova(r.dom, r.comp, &r.comp_iova));
	}
	a = iovm_dma_alloc(r.ctx, 100000, 0, 0);
	b = iovm_dma_alloc(r.ctx, 100000, 0, 0);
	CHECK(a && b);
	memset(a, 0x42, 100000);
	CHECK_EQ(run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = iova_of(&r, a), .dst = iova_of(&r, b),
						  .len = 100000 }).status,
		 IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(a, b, 100000));
	CHECK_OK(iovm_dma_free(r.ctx, a));
	CHECK_OK(iovm_dma_free(r.ctx, b));
	CHECK_OK(iovm_dma_free(r.ctx, r.comp));
	rig_close(&r);
	put64(wr, 1);
}

TEST(domains_follow_the_shared_heap)
{
	struct iovm_domain_attr follow = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	struct iovm_domain_attr va = { .type = IOVM_DOMAIN_VA, .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	struct iovm_share_params p = { .heap_size = HEAP, .group = -1 };
	struct iovm_domain *before, *vadom, *after;
	iovm_iova_t i1, i2, i3;
	struct iovm_ctx *ctx;
	struct child c;
	uint8_t *buf;

	g_name = share_name("follow");
	CHECK_OK(iovm_open("", &ctx));
	/* Made before the share: it hears of the shared heap as one commit. */
	CHECK_OK(iovm_domain_create(ctx, &follow, &before));
	CHECK_OK(iovm_domain_create(ctx, &va, &vadom));
	CHECK_OK(iovm_share(ctx, g_name, &p));
	CHECK_OK(iovm_domain_create(ctx, &follow, &after));
	buf = iovm_dma_alloc(ctx, 8192, 0, 0);
	CHECK(buf != NULL);
	CHECK_OK(iovm_dma_iova(before, buf, &i1));
	CHECK_OK(iovm_dma_iova(after, buf, &i2));
	CHECK_OK(iovm_dma_iova(vadom, buf, &i3));
	CHECK_EQ(i3.addr, (uintptr_t)buf);
	/* IOVA as contiguous as VA over the whole heap. */
	{
		iovm_iova_t j;

		CHECK_OK(iovm_dma_iova(before, buf + 8191, &j));
		CHECK_EQ(j.addr, i1.addr + 8191);
	}
	c = child_start(follow_child, NULL);
	CHECK_EQ(get64(c.rd), 1);
	child_ok(&c);
	CHECK_OK(iovm_dma_free(ctx, buf));
	CHECK_OK(iovm_domain_destroy(after));
	CHECK_OK(iovm_domain_destroy(before));
	CHECK_OK(iovm_domain_destroy(vadom));
	CHECK_OK(iovm_close(ctx));
}

/* Two processes free one block at once (the owner from its cache, the other under the lock): one wins. */
struct race {
	_Atomic uint64_t pa;
	_Atomic unsigned go, done;
	_Atomic int result[2];
};

static void racer(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	const struct iovm_zone *z;
	struct race *r;

	(void)rd;
	(void)arg;
	CHECK_OK(iovm_zone_lookup(ctx, "race", &z));
	r = z->va;
	for (unsigned round = 1; round <= 2000; round++) {
		void *p;

		while (atomic_load(&r->go) != round)
			;
		p = iovm_dma_ptr(ctx, IOVM_PA(atomic_load(&r->pa)));
		CHECK(p != NULL);
		atomic_store(&r->result[1], iovm_dma_free(ctx, p));
		atomic_fetch_add(&r->done, 1);
	}
	CHECK_OK(iovm_close(ctx));
	put64(wr, 1);
}

TEST(double_free_race)
{
	struct iovm_ctx *ctx;
	const struct iovm_zone *z;
	unsigned mine = 0, theirs = 0;
	struct race *r;
	struct child c;

	g_name = share_name("race");
	ctx = share_ok(g_name, HEAP);
	CHECK_EQ(iovm_zone_reserve(ctx, "race", sizeof(*r), 0, 0, &z), 0);
	r = z->va;
	c = child_start(racer, NULL);
	for (unsigned round = 1; round <= 2000; round++) {
		void *p = iovm_dma_alloc(ctx, 64 + round % 1000, 0, 0);
		iovm_pa_t pa;
		int res;

		CHECK(p != NULL);
		CHECK_OK(iovm_dma_pa(ctx, p, &pa));
		atomic_store(&r->pa, pa.addr);
		atomic_store(&r->done, 0);
		atomic_store(&r->go, round);
		res = iovm_dma_free(ctx, p);
		while (atomic_load(&r->done) != 1)
			;
		CHECK_MSG((res == 0) != (atomic_load(&r->result[1]) == 0),
			  "round %u: both frees said %d and %d", round, res, atomic_load(&r->result[1]));
		CHECK(res == 0 || res == -EINVAL);
		CHECK(atomic_load(&r->result[1]) == 0 || atomic_load(&r->result[1]) == -EINVAL);
		mine += res == 0;
		theirs += res != 0;
	}
	CHECK_EQ(get64(c.rd), 1);
	child_ok(&c);
	printf("# 2000 double frees: the owner's won %u, the other process's %u\n", mine, theirs);
	CHECK_OK(iovm_share_check(ctx));
	CHECK_EQ(share_info(ctx).blocks, 1);
	CHECK_OK(iovm_close(ctx));
}

/* Exec'd: a process with an address layout of its own attaches and checks what it is given. */
static int exec_worker(const char *name, const char *pa_text)
{
	struct iovm_ctx *ctx;
	uint8_t *p;

	test_init();
	ctx = attach_ok(name);
	p = iovm_dma_ptr(ctx, IOVM_PA(strtoull(pa_text, NULL, 0)));
	CHECK(p != NULL);
	for (int i = 0; i < 4096; i++)
		CHECK(p[i] == (uint8_t)(i ^ 0x5a));
	for (int i = 0; i < 4096; i++)
		p[i] = (uint8_t)~p[i];
	printf("%p\n", (void *)p);
	CHECK_OK(iovm_close(ctx));
	return 0;
}

TEST(exec_any_address)
{
	struct iovm_ctx *ctx;
	char cmd[512], line[64];
	iovm_pa_t pa;
	uint8_t *p;
	FILE *f;

	g_name = share_name("exec");
	ctx = share_ok(g_name, HEAP);
	p = iovm_dma_alloc(ctx, 4096, 0, 0);
	CHECK(p != NULL);
	for (int i = 0; i < 4096; i++)
		p[i] = (uint8_t)(i ^ 0x5a);
	CHECK_OK(iovm_dma_pa(ctx, p, &pa));
	snprintf(cmd, sizeof(cmd), "/proc/%d/exe exec-worker %s %#llx", (int)getpid(), g_name,
		 (unsigned long long)pa.addr);
	f = popen(cmd, "r");
	CHECK(f != NULL);
	CHECK(fgets(line, sizeof(line), f) != NULL);
	/* The rest (its checks' count), so that it does not write to a closed pipe. */
	while (fgets(cmd, sizeof(cmd), f))
		;
	CHECK_EQ(pclose(f), 0);
	printf("# the same memory at %p here and at %s", (void *)p, line);
	for (int i = 0; i < 4096; i++)
		CHECK(p[i] == (uint8_t)~(i ^ 0x5a));
	CHECK_OK(iovm_close(ctx));
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "exec-worker"))
		return exec_worker(argv[2], argv[3]);
	test_init();
	RUN(bad_input);
	RUN(bad_frees);
	RUN(options);
	RUN(one_heap);
	RUN(zones_by_name);
	RUN(death_frees_but_kept);
	RUN(owner_dies);
	RUN(fork_inherits_nothing);
	RUN(credentials);
	RUN(dma_from_another_process);
	RUN(exec_any_address);
	RUN(domains_follow_the_shared_heap);
	RUN(double_free_race);
	return 0;
}
