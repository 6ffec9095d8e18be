/* SPDX-License-Identifier: MIT */
/*
 * test_attack19_edges.c - a process's own memory in a shared domain
 * (iovm/mp.h), at its edges: odd sizes and alignments, the same memory
 * twice, overlaps, heap memory registered as own memory, a deregistration
 * racing a running device (while another process takes the IOVAs that
 * come free), munmap/mremap/madvise/MAP_FIXED under a device that copies
 * both ways, fork of a registering process, an IOVA window run dry, and a
 * deferred shared domain. The oracle is on in every process (share_ok,
 * attach_ok): it must see no violation.
 */
#include <sys/mman.h>

#include "attack19.h"

#define HEAP (UINT64_C(32) << 20)
#define DOM "a19-edges"

static const char *g_name;

static uint8_t *amap(size_t len, uint8_t seed)
{
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	for (size_t i = 0; i < len; i++)
		p[i] = a19_pat(seed, i);
	return p;
}

static struct iovm_mr *reg(struct iovm_domain *dom, void *p, size_t len)
{
	struct iovm_mr *mr = NULL;
	int ret = iovm_mr_reg(dom, p, len, IOVM_ACCESS_LOCAL_WRITE, &mr);

	CHECK_MSG(ret == 0, "iovm_mr_reg(%p, %zu): %d %s", p, len, ret, iovm_error_detail());
	return mr;
}

static struct iovm_mr_info query(struct iovm_mr *mr)
{
	struct iovm_mr_info i;

	CHECK_OK(iovm_mr_query(mr, &i));
	return i;
}

static void open_all(const char *what, struct iovm_ctx **ctx, struct iovm_domain **dom,
		     const struct iovm_share_domain_params *p)
{
	g_name = share_name(what);
	*ctx = share_ok(g_name, HEAP);
	CHECK_OK(iovm_share_domain_create(*ctx, DOM, p, dom));
}

static void close_all(struct iovm_ctx *ctx, struct iovm_domain *dom, struct devq *d, struct sdom_buf *b)
{
	CHECK(a19_stats(dom).oracle_checks > 0);
	sdom_buf_close(ctx, dom, b);
	devq_close(d);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
}

static uint64_t fnv(const uint8_t *p, uint64_t len)
{
	uint64_t h = UINT64_C(1469598103934665603);

	for (uint64_t i = 0; i < len; i++)
		h = (h ^ p[i]) * UINT64_C(1099511628211);
	return h;
}

/*
 * A child that reads the IOVAs it is sent (mp.h: another process's
 * registration, read through that process) and says what it got, its
 * status and a hash of the bytes; 0 ends it. It writes none of them: the
 * owner's checks would not know.
 */
static void prober(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain *dom;
	struct sdom_buf b;
	struct devq d;
	uint64_t iova;

	(void)arg;
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	d = devq_open(ctx, dom);
	b = sdom_buf_open(ctx, dom, 65536);
	put64(wr, 1);
	while ((iova = get64(rd))) {
		uint64_t len = get64(rd);

		CHECK(len <= b.len);
		memset(b.p, 0x5a, b.len);
		put64(wr, a19_copy(&d, iova, b.iova, len));
		put64(wr, fnv(b.p, len));
	}
	sdom_buf_close(ctx, dom, &b);
	devq_close(&d);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_close(ctx));
}

/* Another process's device reads [iova, +len) of this process's registration: @expect's bytes. */
static void probe_reaches(struct child *c, uint64_t iova, uint64_t len, const uint8_t *expect)
{
	uint64_t st, h;

	put64(c->wr, iova);
	put64(c->wr, len);
	st = get64(c->rd);
	h = get64(c->rd);
	CHECK_MSG(st == IOVM_STATUS_SUCCESS, "another process's device could not read %#llx+%llu: status %llu",
		  (unsigned long long)iova, (unsigned long long)len, (unsigned long long)st);
	CHECK_MSG(h == fnv(expect, len), "another process's device read other bytes at %#llx+%llu",
		  (unsigned long long)iova, (unsigned long long)len);
}

TEST(odd_shapes)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct sdom_buf b;
	struct devq d;
	struct child c;
	uint8_t *m = amap(UINT64_C(8) << 20, 1), *big, *heapmem, *model;
	struct iovm_mr *one, *strad, *hmr, *twice1, *twice2, *ovl, *hp;
	struct iovm_mr_info i1, i2;
	uint64_t iovas;

	open_all("a19odd", &ctx, &dom, NULL);
	iovas = a19_stats(dom).iova_allocated;
	d = devq_open(ctx, dom);
	b = sdom_buf_open(ctx, dom, UINT64_C(1) << 20);
	c = child_start(prober, NULL);
	CHECK_EQ(get64(c.rd), 1);

	/* One byte in the middle of a page: that byte, nothing around it. */
	one = reg(dom, m + 4096 + 777, 1);
	i1 = query(one);
	CHECK_EQ(i1.pages, 1);
	CHECK_EQ(i1.iova.addr & 4095, 777);
	memset(b.p, 0, 16);
	CHECK_EQ(a19_copy(&d, i1.iova.addr, b.iova, 1), IOVM_STATUS_SUCCESS);
	CHECK_EQ(b.p[0], m[4096 + 777]);
	CHECK_EQ(devq_fill(&d, i1.iova.addr, 1, 0x3c), IOVM_STATUS_SUCCESS);
	CHECK_EQ(m[4096 + 777], 0x3c);
	CHECK_EQ(m[4096 + 776], a19_pat(1, 4096 + 776));
	CHECK_EQ(m[4096 + 778], a19_pat(1, 4096 + 778));
	probe_reaches(&c, i1.iova.addr, 1, m + 4096 + 777);
	CHECK_EQ(m[4096 + 777], 0x3c);

	/* Two bytes across a page boundary: two pages, contiguous in IOVA. */
	strad = reg(dom, m + 3 * 4096 - 1, 2);
	i2 = query(strad);
	CHECK_EQ(i2.pages, 2);
	CHECK_EQ(devq_fill(&d, i2.iova.addr, 2, 0x4d), IOVM_STATUS_SUCCESS);
	CHECK(m[3 * 4096 - 1] == 0x4d && m[3 * 4096] == 0x4d);
	CHECK(m[3 * 4096 - 2] == a19_pat(1, 3 * 4096 - 2) && m[3 * 4096 + 1] == a19_pat(1, 3 * 4096 + 1));
	probe_reaches(&c, i2.iova.addr, 2, m + 3 * 4096 - 1);
	CHECK(i2.iova.addr + 2 <= i1.iova.addr - 777 || i1.iova.addr + 1 <= i2.iova.addr - 4095);

	/* 4 MiB, 2 MiB-aligned: the device reads it all, byte for byte. */
	big = (uint8_t *)(((uintptr_t)m + 65536 + (UINT64_C(2) << 20) - 1) & ~((UINT64_C(2) << 20) - 1));
	CHECK(big + (UINT64_C(4) << 20) <= m + (UINT64_C(8) << 20));
	hmr = reg(dom, big, UINT64_C(4) << 20);
	i1 = query(hmr);
	printf("# a 2 MiB-aligned registration: IOVA %#llx, %llu huge leaves\n", (unsigned long long)i1.iova.addr,
	       (unsigned long long)i1.huge_leaves);
	CHECK_EQ(a19_copy(&d, i1.iova.addr, b.iova, b.len), IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(b.p, big, b.len));
	CHECK_EQ(a19_copy(&d, i1.iova.addr + (UINT64_C(3) << 20), b.iova, b.len), IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(b.p, big + (UINT64_C(3) << 20), b.len));
	/* Across the 2 MiB boundary in the middle. */
	CHECK_EQ(devq_fill(&d, i1.iova.addr + (UINT64_C(2) << 20) - 3, 6, 0x5e), IOVM_STATUS_SUCCESS);
	CHECK(all_bytes(big + (UINT64_C(2) << 20) - 3, 6, 0x5e));
	CHECK(big[(UINT64_C(2) << 20) - 4] == a19_pat(1, (size_t)(big - m) + (UINT64_C(2) << 20) - 4));
	probe_reaches(&c, i1.iova.addr + (UINT64_C(1) << 20), 65536, big + (UINT64_C(1) << 20));

	/* The same memory twice, and an overlap: three IOVA ranges, one memory. */
	twice1 = reg(dom, m + 8 * 4096, 3 * 4096);
	twice2 = reg(dom, m + 8 * 4096, 3 * 4096);
	ovl = reg(dom, m + 9 * 4096 + 7, 4 * 4096);
	i1 = query(twice1);
	i2 = query(twice2);
	CHECK(i1.iova.addr != i2.iova.addr);
	CHECK(i1.iova.addr + 3 * 4096 <= i2.iova.addr || i2.iova.addr + 3 * 4096 <= i1.iova.addr);
	CHECK_EQ(devq_fill(&d, i2.iova.addr + 4096, 4096, 0x61), IOVM_STATUS_SUCCESS);
	CHECK_EQ(a19_copy(&d, i1.iova.addr + 4096, b.iova, 4096), IOVM_STATUS_SUCCESS);
	CHECK(all_bytes(b.p, 4096, 0x61));
	CHECK_EQ(a19_copy(&d, query(ovl).iova.addr - 7, b.iova, 4096), IOVM_STATUS_SUCCESS);
	CHECK(all_bytes(b.p, 4096, 0x61));
	probe_reaches(&c, i1.iova.addr, 3 * 4096, m + 8 * 4096);
	probe_reaches(&c, i2.iova.addr, 3 * 4096, m + 8 * 4096);
	CHECK(all_bytes(m + 9 * 4096, 4096, 0x61));
	/* One page of it goes: out of all three, the rest stays in all three. */
	CHECK(mmap(m + 9 * 4096, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
	      m + 9 * 4096);
	memset(m + 9 * 4096, 0xee, 4096);
	CHECK_EQ(devq_fill(&d, i1.iova.addr + 4096, 4096, 0x11), IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(devq_fill(&d, i2.iova.addr + 4096, 4096, 0x11), IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(devq_fill(&d, query(ovl).iova.addr - 7, 4096, 0x11), IOVM_STATUS_PAGE_FAULT);
	CHECK(all_bytes(m + 9 * 4096, 4096, 0xee));
	CHECK_EQ(query(twice1).valid_pages, 2);
	CHECK_EQ(query(twice2).valid_pages, 2);
	CHECK_EQ(devq_fill(&d, i1.iova.addr + 8192, 4096, 0x12), IOVM_STATUS_SUCCESS);
	CHECK_EQ(a19_copy(&d, i2.iova.addr + 8192, b.iova, 4096), IOVM_STATUS_SUCCESS);
	CHECK(all_bytes(b.p, 4096, 0x12));
	CHECK_OK(iovm_mr_dereg(twice1));
	CHECK_EQ(a19_copy(&d, i2.iova.addr, b.iova, 4096), IOVM_STATUS_SUCCESS); /* the other lives on */
	CHECK(!memcmp(b.p, m + 8 * 4096, 4096));

	/* Registered for reading only: the device reads it, never writes it (memory writable or not). */
	{
		uint8_t *ro = amap(3 * 4096, 21);
		struct iovm_mr *rmr, *wmr;
		uint64_t riova;

		CHECK_OK(mprotect(ro + 2 * 4096, 4096, PROT_READ));
		CHECK_OK(iovm_mr_reg(dom, ro, 2 * 4096, IOVM_ACCESS_LOCAL_READ, &rmr));
		CHECK_OK(iovm_mr_reg(dom, ro + 2 * 4096, 4096, IOVM_ACCESS_LOCAL_READ, &wmr));
		CHECK_EQ(iovm_mr_reg(dom, ro + 2 * 4096, 4096, IOVM_ACCESS_LOCAL_WRITE, &hp), -EFAULT);
		riova = a19_mr_iova(rmr);
		CHECK_EQ(a19_copy(&d, riova, b.iova, 2 * 4096), IOVM_STATUS_SUCCESS);
		CHECK(!memcmp(b.p, ro, 2 * 4096));
		CHECK_MSG(devq_fill(&d, riova + 4096, 4096, 0x66) != IOVM_STATUS_SUCCESS,
			  "a device wrote a registration made for reading only");
		CHECK_MSG(devq_fill(&d, a19_mr_iova(wmr), 4096, 0x66) != IOVM_STATUS_SUCCESS,
			  "a device wrote read-only memory registered for reading");
		for (size_t i = 0; i < 3 * 4096; i++)
			CHECK(ro[i] == a19_pat(21, i));
		probe_reaches(&c, riova, 2 * 4096, ro);
		CHECK_OK(iovm_mr_dereg(rmr));
		CHECK_OK(iovm_mr_dereg(wmr));
		munmap(ro, 3 * 4096);
	}

	/* Memory of the shared heap registered as this process's own: another process's device reads it through this one. */
	heapmem = iovm_dma_alloc(ctx, 65536, 4096, 0);
	model = malloc(65536);
	CHECK(heapmem && model);
	for (size_t i = 0; i < 65536; i++)
		heapmem[i] = model[i] = a19_pat(7, i);
	hp = reg(dom, heapmem + 100, 65536 - 200);
	i1 = query(hp);
	CHECK_EQ(a19_copy(&d, i1.iova.addr, b.iova, 65536 - 200), IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(b.p, heapmem + 100, 65536 - 200));
	probe_reaches(&c, i1.iova.addr, 65536 - 200, heapmem + 100);
	CHECK(!memcmp(heapmem, model, 65536));
	{
		iovm_pa_t pa;
		struct iovm_dma_xlate x;

		CHECK_OK(iovm_domain_translate(dom, i1.iova, &pa, NULL));
		CHECK_OK(iovm_dma_xlate(ctx, heapmem + 100, &x));
		printf("# heap memory registered: PA %#llx in the domain, %#llx in the heap\n",
		       (unsigned long long)pa.addr, (unsigned long long)x.pa.addr);
		CHECK(pa.addr >= A19_REG_PA_LO && pa.addr < A19_REG_PA_HI);
	}
	CHECK_EQ(iovm_domain_destroy(dom), -EBUSY);
	CHECK_OK(iovm_mr_dereg(hp));
	CHECK_OK(iovm_dma_free(ctx, heapmem));
	free(model);

	CHECK_OK(iovm_mr_dereg(twice2));
	CHECK_OK(iovm_mr_dereg(ovl));
	CHECK_OK(iovm_mr_dereg(hmr));
	CHECK_OK(iovm_mr_dereg(strad));
	CHECK_OK(iovm_mr_dereg(one));
	put64(c.wr, 0);
	child_ok(&c);
	CHECK_EQ(a19_stats(dom).iova_allocated, iovas + b.len);
	close_all(ctx, dom, &d, &b);
	munmap(m, UINT64_C(8) << 20);
}

/* ---- a deregistration racing a running device, while another process takes freed IOVAs ---- */

#define RLEN (UINT64_C(16) << 12)

struct filler {
	struct devq *d;
	uint64_t iova;
	_Atomic int go, deregged, stop;
	_Atomic unsigned before, after;
};

static void *fill_loop(void *arg)
{
	struct filler *f = arg;

	while (!atomic_load(&f->go))
		sched_yield();
	while (!atomic_load(&f->stop)) {
		int was = atomic_load(&f->deregged);
		uint8_t st = devq_fill(f->d, f->iova, RLEN, 0x11);

		CHECK(st == IOVM_STATUS_SUCCESS || st == IOVM_STATUS_PAGE_FAULT);
		if (was) {
			/*
			 * Faults, or reaches whatever the IOVAs name now: the other
			 * process's registration, if it took them (mp.h), never
			 * this one's old memory (checked after the round).
			 */
			atomic_fetch_add(&f->after, 1);
		} else if (st == IOVM_STATUS_SUCCESS) {
			atomic_fetch_add(&f->before, 1);
		}
	}
	return NULL;
}

/* Registers, checks its memory, deregisters, over and over: the IOVAs another process's dereg frees. */
static void taker(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain *dom;
	uint8_t *m = amap(RLEN, 5);
	uint64_t n = 0;

	(void)arg;
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	memset(m, 0x77, RLEN);
	put64(wr, 1);
	for (;;) {
		struct iovm_mr *mr = reg(dom, m, RLEN);

		/* Another process's device may fill it through the IOVAs it took (0x11), with nothing else. */
		for (int k = 0; k < 50; k++)
			for (uint64_t i = 0; i < RLEN; i++)
				CHECK_MSG(m[i] == 0x77 || m[i] == 0x11, "byte %llu of this registration is %#x",
					  (unsigned long long)i, m[i]);
		CHECK_OK(iovm_mr_dereg(mr));
		n++;
		{
			struct timespec ts = { 0, 0 };
			fd_set fds;

			FD_ZERO(&fds);
			FD_SET(rd, &fds);
			if (pselect(rd + 1, &fds, NULL, NULL, &ts, NULL) > 0)
				break;
		}
	}
	get64(rd);
	for (uint64_t i = 0; i < RLEN; i++)
		CHECK(m[i] == 0x77 || m[i] == 0x11);
	put64(wr, n);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_close(ctx));
}

TEST(dereg_races_device)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct sdom_buf b;
	struct devq d;
	struct child c;
	unsigned before = 0, after = 0;

	open_all("a19dereg", &ctx, &dom, NULL);
	d = devq_open(ctx, dom);
	b = sdom_buf_open(ctx, dom, 4096);
	c = child_start(taker, NULL);
	CHECK_EQ(get64(c.rd), 1);
	for (unsigned round = 0; round < 60; round++) {
		uint8_t *m = amap(RLEN, (uint8_t)round);
		struct filler f = { .d = &d };
		struct iovm_mr *mr = reg(dom, m, RLEN);
		pthread_t th;

		f.iova = a19_mr_iova(mr);
		CHECK_OK(pthread_create(&th, NULL, fill_loop, &f));
		atomic_store(&f.go, 1);
		usleep(round * 53 % 700);
		CHECK_OK(iovm_mr_dereg(mr));
		atomic_store(&f.deregged, 1);
		memset(m, 0xee, RLEN);
		while (atomic_load(&f.after) < 8)
			sched_yield();
		atomic_store(&f.stop, 1);
		CHECK_OK(pthread_join(th, NULL));
		CHECK_MSG(all_bytes(m, RLEN, 0xee), "round %u: a device fill landed after iovm_mr_dereg() returned",
			  round);
		before += f.before;
		after += f.after;
		munmap(m, RLEN);
	}
	put64(c.wr, 0);
	{
		uint64_t n = get64(c.rd);

		printf("# %u fills before the deregistrations, %u after; the other process registered %llu "
		       "times\n",
		       before, after, (unsigned long long)n);
		CHECK(n > 0);
	}
	child_ok(&c);
	CHECK(before > 0 && after > 0);
	close_all(ctx, dom, &d, &b);
}

/* ---- munmap / mremap / madvise / MAP_FIXED under a device that copies both ways ---- */

enum how { HOW_MUNMAP, HOW_FIXED, HOW_MREMAP, HOW_DONTNEED_LOCKED, HOW_PARTIAL };
static const char *const hows[] = { "munmap+mmap", "MAP_FIXED", "mremap", "MADV_DONTNEED_LOCKED", "partial munmap" };

struct mover {
	struct devq *d;
	struct sdom_buf *b;
	uint64_t iova;
	_Atomic int go, replaced, stop;
	_Atomic unsigned ok_before, faults_after;
};

static void *device_loop(void *arg)
{
	struct mover *mv = arg;

	while (!atomic_load(&mv->go))
		sched_yield();
	while (!atomic_load(&mv->stop)) {
		int was = atomic_load(&mv->replaced);
		uint8_t s1, s2;

		memset(mv->b->p, 0, RLEN);
		s1 = devq_fill(mv->d, mv->iova, RLEN, 0x11);
		s2 = a19_copy(mv->d, mv->iova, mv->b->iova, RLEN);
		/* Nothing read from the new memory (0xee, 0xdd, set once the call returned). */
		for (size_t i = 0; i < RLEN; i++)
			CHECK_MSG(mv->b->p[i] != 0xee && mv->b->p[i] != 0xdd,
				  "the device read byte %zu of the memory that replaced the registration's", i);
		if (was) {
			CHECK_MSG(s1 != IOVM_STATUS_SUCCESS && s2 != IOVM_STATUS_SUCCESS,
				  "the device reached the registration after its memory went (%u %u)", s1, s2);
			atomic_fetch_add(&mv->faults_after, 1);
		} else if (s1 == IOVM_STATUS_SUCCESS) {
			atomic_fetch_add(&mv->ok_before, 1);
		}
	}
	return NULL;
}

/*
 * New memory at @at, in the hole the call before left; false when another
 * thread's mapping took the hole first (AddressSanitizer's allocator maps
 * memory at any moment: the ASan leg saw it once), which is not the
 * test's to write or unmap.
 */
static bool map_back(uint8_t *at, size_t len)
{
	void *p = mmap(at, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (p == MAP_FAILED) {
		CHECK_MSG(errno == EEXIST, "mmap(MAP_FIXED_NOREPLACE): %s", strerror(errno));
		return false;
	}
	CHECK(p == at);
	return true;
}

TEST(replaced_both_ways)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct sdom_buf b;
	struct devq d;
	unsigned ok = 0, faults = 0, rounds = 0, lost = 0;

	open_all("a19move", &ctx, &dom, NULL);
	d = devq_open(ctx, dom);
	b = sdom_buf_open(ctx, dom, RLEN);
	for (unsigned round = 0; round < 100; round++) {
		enum how how = (enum how)(round % 5);

		/*
		 * Not under ThreadSanitizer: madvise() is what orders the device's
		 * writes before the new memory's here (the kernel lets it return
		 * once the monitor's reader, which waited for the device, read its
		 * event), which TSan cannot see; and it clears no shadow, as a new
		 * mapping does. The other ways still run there.
		 */
		if (TEST_TSAN && how == HOW_DONTNEED_LOCKED)
			continue;
		uint8_t *m = amap(RLEN, (uint8_t)round), *moved = NULL;
		struct mover mv = { .d = &d, .b = &b };
		struct iovm_mr *mr = reg(dom, m, RLEN);
		pthread_t th;
		size_t off = how == HOW_PARTIAL ? 5 * 4096 : 0, len = how == HOW_PARTIAL ? 4096 : RLEN;
		bool back = true; /* new memory where the old was */

		mv.iova = a19_mr_iova(mr);
		CHECK_OK(pthread_create(&th, NULL, device_loop, &mv));
		atomic_store(&mv.go, 1);
		usleep(round * 41 % 500);
		switch (how) {
		case HOW_MUNMAP:
		case HOW_PARTIAL:
			CHECK_OK(munmap(m + off, len));
			back = map_back(m + off, len);
			break;
		case HOW_FIXED:
			CHECK(mmap(m, RLEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == m);
			break;
		case HOW_MREMAP:
			moved = mremap(m, RLEN, RLEN, MREMAP_MAYMOVE | MREMAP_FIXED,
				       mmap(NULL, RLEN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
			CHECK(moved != MAP_FAILED);
			memset(moved, 0xdd, RLEN);
			back = map_back(m, RLEN);
			break;
		case HOW_DONTNEED_LOCKED:
			CHECK_OK(madvise(m, RLEN, MADV_DONTNEED_LOCKED));
			break;
		}
		if (back)
			memset(m + off, 0xee, len);
		atomic_store(&mv.replaced, 1);
		while (atomic_load(&mv.faults_after) < 8)
			sched_yield();
		atomic_store(&mv.stop, 1);
		CHECK_OK(pthread_join(th, NULL));
		rounds++;
		if (!back) {
			/* The registration's memory went all the same: the device faults there, and the rest is ours. */
			lost++;
			CHECK_EQ(query(mr).valid_pages, how == HOW_PARTIAL ? RLEN / 4096 - 1 : 0);
			ok += mv.ok_before;
			faults += mv.faults_after;
			CHECK_OK(iovm_mr_dereg(mr));
			if (how == HOW_PARTIAL) {
				munmap(m, off);
				munmap(m + off + len, RLEN - off - len);
			}
			if (moved)
				munmap(moved, RLEN);
			continue;
		}
		CHECK_MSG(all_bytes(m + off, len, 0xee), "round %u (%s): a device write landed in the new memory", round,
			  hows[how]);
		if (moved)
			CHECK_MSG(all_bytes(moved, RLEN, 0xdd), "round %u (mremap): a device write reached the moved memory",
				  round);
		if (how == HOW_PARTIAL) {
			/* The rest stays reachable; the page that went faults. */
			CHECK_EQ(devq_fill(&d, mv.iova + off, 4096, 0x22), IOVM_STATUS_PAGE_FAULT);
			CHECK(all_bytes(m + off, len, 0xee));
			CHECK_EQ(devq_fill(&d, mv.iova, 4096, 0x23), IOVM_STATUS_SUCCESS);
			CHECK(all_bytes(m, 4096, 0x23));
			CHECK_EQ(query(mr).valid_pages, RLEN / 4096 - 1);
		} else {
			CHECK_EQ(query(mr).valid_pages, 0);
		}
		ok += mv.ok_before;
		faults += mv.faults_after;
		CHECK_OK(iovm_mr_dereg(mr));
		munmap(m, RLEN);
		if (moved)
			munmap(moved, RLEN);
	}
	printf("# %u device rounds reached the memory before the replacements, %u faulted after; %u of %u rounds "
	       "found the hole taken by another thread's mapping\n",
	       ok, faults, lost, rounds);
	CHECK(ok > 0 && faults > 0);
	/* Not vacuous: most rounds put new memory back and checked it. */
	CHECK(lost * 4 < rounds);
	close_all(ctx, dom, &d, &b);
}

/* ---- munmap() racing iovm_mr_dereg() of the same registration ---- */

struct unmapper {
	uint8_t *m;
	_Atomic int go;
	unsigned delay;
};

static void *unmap_now(void *arg)
{
	struct unmapper *u = arg;

	while (!atomic_load(&u->go))
		sched_yield();
	for (unsigned i = 0; i < u->delay; i++)
		sched_yield();
	CHECK_OK(munmap(u->m, RLEN));
	return NULL;
}

TEST(munmap_races_dereg)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct sdom_buf b;
	struct devq d;
	uint64_t iovas;

	open_all("a19unreg", &ctx, &dom, NULL);
	d = devq_open(ctx, dom);
	b = sdom_buf_open(ctx, dom, 4096);
	iovas = a19_stats(dom).iova_allocated;
	for (unsigned round = 0; round < 200; round++) {
		struct unmapper u = { .m = amap(RLEN, (uint8_t)round), .delay = round % 50 };
		struct iovm_mr *mr = reg(dom, u.m, RLEN);
		uint64_t iova = a19_mr_iova(mr);
		pthread_t th;
		uint8_t *p;

		CHECK_EQ(devq_fill(&d, iova, RLEN, 0x11), IOVM_STATUS_SUCCESS);
		CHECK_OK(pthread_create(&th, NULL, unmap_now, &u));
		atomic_store(&u.go, 1);
		CHECK_OK(iovm_mr_dereg(mr));
		CHECK_OK(pthread_join(th, NULL));
		p = mmap(u.m, RLEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		CHECK(p == u.m);
		memset(p, 0xee, RLEN);
		CHECK_EQ(devq_fill(&d, iova, RLEN, 0x12), IOVM_STATUS_PAGE_FAULT);
		CHECK(all_bytes(p, RLEN, 0xee));
		CHECK_EQ(a19_stats(dom).iova_allocated, iovas);
		munmap(p, RLEN);
	}
	CHECK_OK(iovm_share_check(ctx));
	close_all(ctx, dom, &d, &b);
}

/* ---- fork of a registering process ---- */

static uint8_t *g_forked;
static uint64_t g_forked_iova;

static void forked_child(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct sdom_buf b;
	struct devq d;
	struct iovm_mr *mr;

	(void)arg;
	/* Its copy of the registered memory is its own: write it, then take it away. */
	CHECK(g_forked[0] == a19_pat(3, 0));
	memset(g_forked, 0xcc, RLEN);
	ctx = attach_ok(g_name);
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	d = devq_open(ctx, dom);
	b = sdom_buf_open(ctx, dom, RLEN);
	/* The parent's registration at the same address: the parent's bytes, through the parent; never the copy's. */
	CHECK_EQ(a19_copy(&d, g_forked_iova, b.iova, RLEN), IOVM_STATUS_SUCCESS);
	for (size_t i = 0; i < RLEN; i++)
		CHECK_MSG(b.p[i] == a19_pat(3, i), "byte %zu of the parent's registration read %#x", i, b.p[i]);
	CHECK(all_bytes(g_forked, RLEN, 0xcc));
	memset(b.p, 0, RLEN);
	/* Its own registration of its copy: another IOVA, its bytes. */
	mr = reg(dom, g_forked, RLEN);
	CHECK(a19_mr_iova(mr) != g_forked_iova);
	CHECK_EQ(a19_copy(&d, a19_mr_iova(mr), b.iova, RLEN), IOVM_STATUS_SUCCESS);
	CHECK(all_bytes(b.p, RLEN, 0xcc));
	put64(wr, a19_mr_iova(mr));
	CHECK_EQ(get64(rd), 1);
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(munmap(g_forked, RLEN));
	put64(wr, 2);
	sdom_buf_close(ctx, dom, &b);
	devq_close(&d);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_close(ctx));
}

TEST(fork_of_a_registering_process)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct sdom_buf b;

	/*
	 * A fork after a registration waits in the kernel until the memory
	 * monitor's reader reads the fork's event; TSan's fork holds, until it
	 * returns, the locks that reader needs.
	 */
	if (TEST_TSAN)
		SKIP_CASE("ThreadSanitizer's fork and the memory monitor's fork event wait for each other");
	struct devq d;
	struct child c;
	struct iovm_mr *mr;
	uint64_t theirs;

	open_all("a19fork", &ctx, &dom, NULL);
	d = devq_open(ctx, dom);
	b = sdom_buf_open(ctx, dom, RLEN);
	g_forked = amap(RLEN, 3);
	mr = reg(dom, g_forked, RLEN);
	g_forked_iova = a19_mr_iova(mr);
	CHECK_EQ(devq_fill(&d, g_forked_iova, 4096, 0x31), IOVM_STATUS_SUCCESS); /* the device has used it */
	for (size_t i = 0; i < 4096; i++)
		CHECK(g_forked[i] == 0x31);
	memset(g_forked, 0, 4096);
	for (size_t i = 0; i < 4096; i++)
		g_forked[i] = a19_pat(3, i);
	c = child_start(forked_child, NULL);
	theirs = get64(c.rd);
	/* The child's writes are to its copy: this device reads this process's bytes. */
	CHECK_EQ(a19_copy(&d, g_forked_iova, b.iova, RLEN), IOVM_STATUS_SUCCESS);
	CHECK_MSG(!memcmp(b.p, g_forked, RLEN) && b.p[0] == a19_pat(3, 0), "the device read the child's copy");
	/* The child's registration of its copy: its bytes, through the child; nothing of this process's. */
	CHECK_EQ(a19_copy(&d, theirs, b.iova, RLEN), IOVM_STATUS_SUCCESS);
	CHECK(all_bytes(b.p, RLEN, 0xcc));
	CHECK_EQ(devq_fill(&d, theirs, RLEN, 0x98), IOVM_STATUS_SUCCESS);
	CHECK(g_forked[0] == a19_pat(3, 0) && g_forked[RLEN - 1] == a19_pat(3, RLEN - 1));
	put64(c.wr, 1);
	CHECK_EQ(get64(c.rd), 2);
	child_ok(&c);
	/* The child's munmap of its copy took nothing from this registration. */
	CHECK_EQ(query(mr).valid_pages, RLEN / 4096);
	CHECK_EQ(devq_fill(&d, g_forked_iova, RLEN, 0x32), IOVM_STATUS_SUCCESS);
	CHECK(all_bytes(g_forked, RLEN, 0x32));
	CHECK_OK(iovm_mr_dereg(mr));
	munmap(g_forked, RLEN);
	close_all(ctx, dom, &d, &b);
}

/* ---- the IOVA window run dry by registrations ---- */

TEST(window_run_dry)
{
	struct iovm_share_domain_params p = { .iova_size = UINT64_C(64) << 20 };
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	uint8_t *m = amap(UINT64_C(1) << 20, 9);
	struct iovm_mr *mrs[256];
	unsigned n = 0, n2 = 0;
	uint64_t iovas, heap;
	struct sdom_buf b;
	struct devq d;
	int ret;

	g_name = share_name("a19dry");
	ctx = share_ok(g_name, HEAP);
	heap = share_info(ctx).heap_free;
	ret = iovm_share_domain_create(ctx, DOM, &p, &dom);
	if (ret == -EINVAL) {
		p.iova_size = UINT64_C(1) << 30;
		CHECK_OK(iovm_share_domain_create(ctx, DOM, &p, &dom));
	} else {
		CHECK_OK(ret);
	}
	iovas = a19_stats(dom).iova_allocated;
	/* The same MiB over and over (locks are counted: RLIMIT_MEMLOCK holds), until no IOVA is left. */
	for (;;) {
		size_t len = p.iova_size > (UINT64_C(64) << 20) ? UINT64_C(1) << 20 : UINT64_C(1) << 20;

		CHECK_MSG(n < 256 || p.iova_size > (UINT64_C(64) << 20), "64 MiB of window took 256 MiB of registrations");
		if (n == 256)
			break;
		ret = iovm_mr_reg(dom, m + (n % 2), len - (n % 2) * 2, IOVM_ACCESS_LOCAL_WRITE, &mrs[n]);
		if (ret)
			break;
		n++;
	}
	if (n == 256)
		SKIP_CASE("the window (%llu MiB) held 256 registrations", (unsigned long long)(p.iova_size >> 20));
	CHECK_MSG(ret == -ENOSPC, "registration %u: %d (%s)", n, ret, iovm_error_detail());
	printf("# %u registrations of 1 MiB filled a window of %llu MiB\n", n, (unsigned long long)(p.iova_size >> 20));
	/* Each takes whole 2 MiB units of IOVA (their 2 MiB leaves): the window is full, not leaking. */
	CHECK(n >= 16 && n <= 64);
	CHECK_MSG(a19_stats(dom).iova_largest_gap < (UINT64_C(1) << 20), "-ENOSPC with a gap of %llu bytes left",
		  (unsigned long long)a19_stats(dom).iova_largest_gap);
	CHECK_EQ(iovm_mr_reg_async(dom, m, 4096, IOVM_ACCESS_LOCAL_WRITE, 0, &mrs[n]), -ENOSPC);
	/* Full: a heap map is refused too, and nothing of the heap leaked for it. */
	{
		uint8_t *h = iovm_dma_alloc(ctx, 1 << 20, 4096, 0);
		iovm_iova_t iova = IOVM_IOVA(IOVM_ADDR_INVALID);

		CHECK(h != NULL);
		CHECK_EQ(iovm_domain_map_ptr(dom, h, 1 << 20, IOVM_MAP_READ | IOVM_MAP_WRITE, &iova), -ENOSPC);
		CHECK_OK(iovm_dma_free(ctx, h));
	}
	d = devq_open(ctx, dom);
	/* The last one works, whole. */
	{
		iovm_iova_t iova;

		CHECK_OK(iovm_mr_iova(mrs[n - 1], m + 4096, 4096, &iova));
		CHECK_EQ(devq_fill(&d, iova.addr, 4096, 0x44), IOVM_STATUS_SUCCESS);
		CHECK(all_bytes(m + 4096, 4096, 0x44));
	}
	for (unsigned i = 0; i < n; i++)
		CHECK_OK(iovm_mr_dereg(mrs[i]));
	CHECK_EQ(a19_stats(dom).iova_allocated, iovas);
	/* All back: as many again, asynchronously this time. */
	for (;;) {
		ret = iovm_mr_reg_async(dom, m, UINT64_C(1) << 20, IOVM_ACCESS_LOCAL_WRITE, IOVM_REG_THREADS(2), &mrs[n2]);
		if (ret)
			break;
		n2++;
		CHECK(n2 < 256);
	}
	CHECK_EQ(ret, -ENOSPC);
	CHECK_EQ(n2, n);
	for (unsigned i = 0; i < n2; i++)
		CHECK_OK(iovm_mr_wait(mrs[i], m, UINT64_C(1) << 20, -1));
	for (unsigned i = 0; i < n2; i++)
		CHECK_OK(iovm_mr_dereg(mrs[i]));
	CHECK_EQ(a19_stats(dom).iova_allocated, iovas);
	b = sdom_buf_open(ctx, dom, 4096);
	CHECK_EQ(devq_fill(&d, b.iova, 4096, 1), IOVM_STATUS_SUCCESS);
	CHECK(a19_stats(dom).oracle_checks > 0);
	sdom_buf_close(ctx, dom, &b);
	devq_close(&d);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_EQ(share_info(ctx).heap_free, heap);
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
	munmap(m, UINT64_C(1) << 20);
}

/* ---- a deferred shared domain ---- */

TEST(deferred_domain)
{
	struct iovm_share_domain_params p = { .flags = IOVM_DOMAIN_DEFERRED, .flush_batch = 4096,
					      .flush_timeout_us = 2000000 };
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct sdom_buf b;
	struct devq d;
	struct child c;
	unsigned reused = 0;

	open_all("a19defer", &ctx, &dom, &p);
	d = devq_open(ctx, dom);
	b = sdom_buf_open(ctx, dom, RLEN);
	c = child_start(prober, NULL);
	CHECK_EQ(get64(c.rd), 1);
	for (unsigned round = 0; round < 30; round++) {
		uint8_t *m = amap(RLEN, (uint8_t)round), *n2 = amap(RLEN, (uint8_t)(round + 100));
		struct iovm_mr *mr = reg(dom, m, RLEN), *mr2;
		uint64_t iova = a19_mr_iova(mr), iova2;

		/* The device has the translation in hand. */
		CHECK_EQ(devq_fill(&d, iova, RLEN, 0x11), IOVM_STATUS_SUCCESS);
		CHECK_EQ(a19_copy(&d, iova, b.iova, RLEN), IOVM_STATUS_SUCCESS);
		CHECK(all_bytes(b.p, RLEN, 0x11));
		probe_reaches(&c, iova, RLEN, m);
		if (round % 3 == 0) {
			/* Its memory replaced: strict whatever the domain (reg.h, mp.h). */
			CHECK(mmap(m, RLEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == m);
			memset(m, 0xee, RLEN);
			CHECK_EQ(devq_fill(&d, iova, RLEN, 0x12), IOVM_STATUS_PAGE_FAULT);
			CHECK(all_bytes(m, RLEN, 0xee));
		}
		/* Deregistered: iovm_mr_dereg() returns once no device can reach its memory. */
		CHECK_OK(iovm_mr_dereg(mr));
		memset(m, 0xee, RLEN);
		CHECK_MSG(devq_fill(&d, iova, RLEN, 0x13) != IOVM_STATUS_SUCCESS || !all_bytes(m, RLEN, 0x13),
			  "round %u: the device reached a deregistered registration in a deferred domain", round);
		CHECK_MSG(all_bytes(m, RLEN, 0xee), "round %u: a device write landed after iovm_mr_dereg()", round);
		/* Another registration: wherever its IOVAs are, the device reaches its memory, not the old. */
		mr2 = reg(dom, n2, RLEN);
		iova2 = a19_mr_iova(mr2);
		reused += iova2 == iova;
		CHECK_EQ(devq_fill(&d, iova2, RLEN, 0x14), IOVM_STATUS_SUCCESS);
		CHECK_MSG(all_bytes(n2, RLEN, 0x14), "round %u: a fill of the new registration went elsewhere", round);
		CHECK_MSG(all_bytes(m, RLEN, 0xee), "round %u: a fill of the new registration reached the old memory",
			  round);
		probe_reaches(&c, iova2, RLEN, n2);
		CHECK_OK(iovm_mr_dereg(mr2));
		if (round % 5 == 4)
			CHECK_OK(iovm_domain_flush(dom));
		munmap(m, RLEN);
		munmap(n2, RLEN);
	}
	printf("# %u of 30 registrations took the IOVAs of the one deregistered just before\n", reused);
	put64(c.wr, 0);
	child_ok(&c);
	CHECK_OK(iovm_domain_flush(dom));
	close_all(ctx, dom, &d, &b);
}

/* ---- what a killed registering process leaves, and whether it all comes back ---- */

struct dead_arg {
	size_t off, len;
};

static void doomed(int rd, int wr, void *arg)
{
	struct dead_arg *a = arg;
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain *dom;
	uint8_t *m = amap(UINT64_C(4) << 20, 8);
	struct iovm_mr *mr;

	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	mr = reg(dom, m + a->off, a->len);
	put64(wr, a19_mr_iova(mr));
	get64(rd); /* killed here */
	_exit(1);
}

/*
 * mp.h: a process killed with registrations leaves their entries and its
 * 2 MiB IOVA units; unmapping the entries gives their pages' IOVAs back,
 * the rest of the units stays taken until the domain goes (then all of
 * it is back: the heap whole below). (Found by this round: the header
 * first said everything came back with the unmap.)
 */
TEST(dead_ones_iovas_come_back)
{
	static const struct dead_arg shapes[] = {
		{ 0, UINT64_C(2) << 20 }, { 100, 1 }, { 4095, 2 }, { 0, 4096 }, { 12345, 70000 }, { 4096, UINT64_C(2) << 20 },
	};
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct sdom_buf b;
	struct devq d;
	uint64_t iovas, heap, left;
	uint64_t units_kept = 0;

	open_all("a19dead", &ctx, &dom, NULL);
	heap = share_info(ctx).heap_free;
	d = devq_open(ctx, dom);
	b = sdom_buf_open(ctx, dom, 4096);
	CHECK_EQ(devq_fill(&d, b.iova, 4096, 1), IOVM_STATUS_SUCCESS);
	iovas = a19_stats(dom).iova_allocated;
	for (unsigned i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		struct dead_arg a = shapes[i];
		struct child c = child_start(doomed, &a);
		uint64_t iova = get64(c.rd), pg, pglen;
		iovm_pa_t pa;

		child_kill(&c);
		WAIT_UNTIL(share_info(ctx).processes == 1);
		pg = iova & ~UINT64_C(4095);
		pglen = ((iova + a.len + 4095) & ~UINT64_C(4095)) - pg;
		CHECK(a19_stats(dom).iova_allocated >= iovas + pglen);
		CHECK_OK(iovm_domain_translate(dom, IOVM_IOVA(pg), &pa, NULL));
		CHECK(devq_fill(&d, pg, pglen < 4096 ? pglen : 4096, 0x42) != IOVM_STATUS_SUCCESS);
		/* Some process unmaps the range: its pages' IOVAs are the domain's again. */
		CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(pg), pglen));
		CHECK_EQ(iovm_domain_translate(dom, IOVM_IOVA(pg), &pa, NULL), -ENOENT);
		left = a19_stats(dom).iova_allocated - iovas;
		{
			uint64_t unit = pg & ~((UINT64_C(2) << 20) - 1);
			uint64_t end = (pg + pglen + (UINT64_C(2) << 20) - 1) & ~((UINT64_C(2) << 20) - 1);

			/* Exactly the rest of its units, what earlier shapes kept included. */
			CHECK_MSG(left == units_kept + (end - unit) - pglen,
				  "shape %u (%zu bytes at page offset %zu): %llu bytes of IOVA taken after the unmap, "
				  "%llu expected", i, a.len, a.off % 4096, (unsigned long long)left,
				  (unsigned long long)(units_kept + (end - unit) - pglen));
			units_kept = left;
		}
	}
	CHECK(a19_stats(dom).oracle_checks > 0);
	sdom_buf_close(ctx, dom, &b);
	devq_close(&d);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK(share_info(ctx).heap_free > heap); /* the domain's block too */
	CHECK_EQ(share_info(ctx).heap_free, share_info(ctx).heap_size);
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
}

/* ---- the IOVAs one process's deregistration frees, taken at once by another ---- */

static void reuser(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain *dom;
	uint8_t *m = amap(RLEN, 6);
	struct sdom_buf b;
	struct devq d;

	(void)arg;
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	d = devq_open(ctx, dom);
	b = sdom_buf_open(ctx, dom, 4096);
	put64(wr, 1);
	while (get64(rd)) {
		struct iovm_mr *mr = reg(dom, m, RLEN);
		uint64_t iova = a19_mr_iova(mr);

		memset(m, 0x77, RLEN);
		put64(wr, iova);
		CHECK_EQ(get64(rd), 3); /* the other's device tried it */
		/* The other's device reaches it only through the IOVAs it has now (0x13), never else. */
		for (uint64_t i = 0; i < RLEN; i++)
			CHECK_MSG(m[i] == 0x77 || m[i] == 0x13, "byte %llu of this registration is %#x", (unsigned long long)i,
				  m[i]);
		CHECK_EQ(devq_fill(&d, iova, RLEN, 0x78), IOVM_STATUS_SUCCESS);
		CHECK(all_bytes(m, RLEN, 0x78));
		CHECK_OK(iovm_mr_dereg(mr));
		put64(wr, 4);
	}
	sdom_buf_close(ctx, dom, &b);
	devq_close(&d);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_close(ctx));
}

static void reuse_rounds(const char *what, const struct iovm_share_domain_params *p)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct sdom_buf b;
	struct devq d;
	struct child c;
	unsigned same = 0;

	open_all(what, &ctx, &dom, p);
	d = devq_open(ctx, dom);
	b = sdom_buf_open(ctx, dom, RLEN);
	c = child_start(reuser, NULL);
	CHECK_EQ(get64(c.rd), 1);
	for (unsigned round = 0; round < 40; round++) {
		uint8_t *m = amap(RLEN, (uint8_t)round);
		struct iovm_mr *mr = reg(dom, m, RLEN);
		uint64_t iova = a19_mr_iova(mr), theirs;

		/* This device has used it: its translation is cached, if anything is. */
		CHECK_EQ(devq_fill(&d, iova, RLEN, 0x11), IOVM_STATUS_SUCCESS);
		CHECK_EQ(a19_copy(&d, iova, b.iova, RLEN), IOVM_STATUS_SUCCESS);
		CHECK_OK(iovm_mr_dereg(mr));
		memset(m, 0xee, RLEN);
		put64(c.wr, 1);
		theirs = get64(c.rd);
		same += theirs >> 21 == iova >> 21; /* the same 2 MiB of IOVA, if not the same address */
		/*
		 * The other process's registration now (at the same IOVA, often):
		 * reached through it where it is exactly there (mp.h), a fault
		 * where nothing is; never this process's old memory.
		 */
		memset(b.p, 0x5a, RLEN);
		{
			uint8_t fill = devq_fill(&d, iova, RLEN, 0x13), cp = a19_copy(&d, iova, b.iova, RLEN);

			if (theirs == iova) {
				CHECK(fill == IOVM_STATUS_SUCCESS && cp == IOVM_STATUS_SUCCESS);
				CHECK(all_bytes(b.p, RLEN, 0x13));
			} else if (theirs + RLEN <= iova || iova + RLEN <= theirs) {
				CHECK(fill != IOVM_STATUS_SUCCESS && cp != IOVM_STATUS_SUCCESS);
				CHECK(all_bytes(b.p, RLEN, 0x5a));
			}
		}
		CHECK_MSG(all_bytes(m, RLEN, 0xee), "round %u: a stale translation reached the deregistered memory", round);
		put64(c.wr, 3);
		CHECK_EQ(get64(c.rd), 4);
		if (p && round % 4 == 3)
			CHECK_OK(iovm_domain_flush(dom));
		munmap(m, RLEN);
	}
	put64(c.wr, 0);
	child_ok(&c);
	printf("# %s: %u of 40 registrations of the other process took the 2 MiB of IOVA just deregistered\n", what, same);
	if (!p)
		CHECK(same > 0);
	close_all(ctx, dom, &d, &b);
}

TEST(reuse_across_processes)
{
	struct iovm_share_domain_params p = { .flags = IOVM_DOMAIN_DEFERRED };

	reuse_rounds("a19reuse", NULL);
	reuse_rounds("a19reusedef", &p);
}

int main(void)
{
	test_init();
	RUN(odd_shapes);
	RUN(dereg_races_device);
	RUN(replaced_both_ways);
	RUN(munmap_races_dereg);
	RUN(fork_of_a_registering_process);
	RUN(window_run_dry);
	RUN(dead_ones_iovas_come_back);
	RUN(reuse_across_processes);
	RUN(deferred_domain);
	return 0;
}
