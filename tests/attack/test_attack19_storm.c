/* SPDX-License-Identifier: MIT */
/*
 * test_attack19_storm.c - 2 to 8 processes register, deregister and map
 * into one shared domain at once (iovm/mp.h: a process's own memory in a
 * shared domain), with a model:
 *  - no IOVA page is ever handed to two live registrations or mappings
 *    (a table in memory every process shares, claimed with a CAS);
 *  - each process's device reaches exactly its own registrations' bytes
 *    (odd sizes and offsets, page-straddling, the same memory twice);
 *  - a device that reads another process's registration gets its bytes
 *    through that process (mp.h), or faults once it went, and touches
 *    nothing of its own, although every process registered the same
 *    virtual address too; the owner's memory stays as its model says;
 *  - processes killed -9 at random moments leave entries where every
 *    device faults; survivors keep working; the heap all comes back.
 */
#include "attack19.h"

#define HEAP (UINT64_C(32) << 20)
#define IOVA_SIZE (UINT64_C(256) << 20)
#define PAGES (IOVA_SIZE / 4096)
#define DOM "a19-storm"
#define SLOTS 15
#define LIVE 8
#define BACK (UINT64_C(256) << 10)
#define SAME_LEN (UINT64_C(64) << 10)
#define KIND_HEAP 0x10u

struct range {
	_Atomic uint64_t iova; /* page-aligned; 0: none */
	uint64_t len;          /* page-rounded */
	uint32_t kind;
};

struct shared {
	_Atomic uint32_t gen;
	_Atomic int stop;
	_Atomic uint64_t probes, probe_faults, regs, deregs, heapmaps;
	_Atomic int dead[SLOTS]; /* set before the slot's process is killed */
	struct range ranges[SLOTS][LIVE + 4];
	_Atomic uint32_t owner[PAGES]; /* gen << 8 | kind | slot + 1; 0: free */
};

static struct shared *g_sh;
static const char *g_name;
static uint8_t *g_same; /* the same virtual address in every process, registered by each */

static void claim(unsigned slot, uint64_t iova, uint64_t len, uint32_t kind)
{
	uint32_t v = (atomic_fetch_add(&g_sh->gen, 1) + 1) << 8 | kind | (slot + 1);

	CHECK_MSG(iova >= A19_WIN && iova + len <= A19_WIN + IOVA_SIZE, "IOVA %#llx+%#llx outside the window",
		  (unsigned long long)iova, (unsigned long long)len);
	for (uint64_t a = iova; a < iova + len; a += 4096) {
		uint32_t exp = 0;

		CHECK_MSG(atomic_compare_exchange_strong(&g_sh->owner[(a - A19_WIN) / 4096], &exp, v),
			  "slot %u: IOVA page %#llx (of %#llx+%#llx) handed out while slot %u (kind %#x) holds it", slot,
			  (unsigned long long)a, (unsigned long long)iova, (unsigned long long)len, (exp & 0xf) - 1,
			  exp & KIND_HEAP);
	}
}

static void unclaim(uint64_t iova, uint64_t len)
{
	for (uint64_t a = iova; a < iova + len; a += 4096)
		atomic_store(&g_sh->owner[(a - A19_WIN) / 4096], 0);
}

static struct range *publish(unsigned slot, uint64_t iova, uint64_t len, uint32_t kind)
{
	for (unsigned i = 0; i < LIVE + 4; i++) {
		struct range *r = &g_sh->ranges[slot][i];

		if (!atomic_load(&r->iova)) {
			r->len = len;
			r->kind = kind;
			atomic_store(&r->iova, iova);
			return r;
		}
	}
	test_fail("no range left for slot %u", slot);
	return NULL;
}

struct reg {
	struct iovm_mr *mr;
	uint8_t *base, *addr, *model;
	size_t len;
	uint64_t iova, pg, pglen; /* the IOVA of addr; its pages */
	struct range *pub;
};

static void page_span(uint64_t iova, size_t len, uint64_t *pg, uint64_t *pglen)
{
	*pg = iova & ~UINT64_C(4095);
	*pglen = ((iova + len + 4095) & ~UINT64_C(4095)) - *pg;
}

static void reg_check(struct devq *d, struct sdom_buf *b, struct reg *r, uint64_t *rs)
{
	size_t off, n;
	uint8_t tag;

	/* The device reads exactly the bytes the model says. */
	n = r->len < b->len ? r->len : b->len;
	memset(b->p, 0, n);
	CHECK_EQ(a19_copy(d, r->iova, b->iova, n), IOVM_STATUS_SUCCESS);
	CHECK_MSG(!memcmp(b->p, r->model, n), "the device read other bytes than the registration's (%zu at %p)", n,
		  (void *)r->addr);
	/* And writes them where the registration is, nowhere else. */
	off = (size_t)(test_rand(rs) % r->len);
	n = 1 + (size_t)(test_rand(rs) % (r->len - off));
	tag = (uint8_t)(test_rand(rs) | 1);
	CHECK_EQ(devq_fill(d, r->iova + off, n, tag), IOVM_STATUS_SUCCESS);
	memset(r->model + off, tag, n);
	CHECK_MSG(!memcmp(r->addr, r->model, r->len), "a device fill landed elsewhere than asked");
	if (r->addr > r->base)
		CHECK(r->base[0] == 0xc3); /* the byte before, in the same page, is not the registration's */
}

static bool reg_new(unsigned slot, struct iovm_domain *dom, struct reg *r, uint64_t *rs)
{
	static const size_t sizes[] = { 1, 2, 4095, 4096, 4097, 8191, 12288 + 5, 65536, 100003 };
	size_t len = test_rand(rs) % 3 ? sizes[test_rand(rs) % 9] : 1 + test_rand(rs) % (128 << 10);
	size_t lead = 1 + test_rand(rs) % 8191; /* keep a byte before it */
	int ret;

	r->base = malloc(lead + len + 64);
	r->model = malloc(len);
	CHECK(r->base && r->model);
	memset(r->base, 0xc3, lead);
	r->addr = r->base + lead;
	r->len = len;
	for (size_t i = 0; i < len; i++)
		r->addr[i] = r->model[i] = a19_pat(slot * 1000003u + test_rand(rs) % 1000, i);
	if (test_rand(rs) % 4 == 0) {
		/* Pinned in the background, then waited for (a kill may land while its threads pin). */
		ret = iovm_mr_reg_async(dom, r->addr, len, IOVM_ACCESS_LOCAL_WRITE,
					IOVM_REG_THREADS(1 + test_rand(rs) % 3) | IOVM_REG_CHUNK_SHIFT(16), &r->mr);
		/* Pinning short of memory (reg.h: -ENOMEM, the window -ENOSPC) ends as a refused registration does. */
		if (!ret) {
			ret = iovm_mr_wait(r->mr, r->addr, len, -1);
			if (ret == -ENOMEM || ret == -ENOSPC)
				CHECK_OK(iovm_mr_dereg(r->mr));
			else
				CHECK_OK(ret);
		}
	} else {
		ret = iovm_mr_reg(dom, r->addr, len, IOVM_ACCESS_LOCAL_WRITE, &r->mr);
	}
	if (ret == -ENOSPC || ret == -ENOMEM) {
		free(r->base);
		free(r->model);
		return false;
	}
	CHECK_MSG(ret == 0, "iovm_mr_reg(%zu bytes): %d %s", len, ret, iovm_error_detail());
	r->iova = a19_mr_iova(r->mr);
	CHECK_EQ(r->iova & 4095, (uintptr_t)r->addr & 4095);
	page_span(r->iova, len, &r->pg, &r->pglen);
	claim(slot, r->pg, r->pglen, 0);
	r->pub = publish(slot, r->pg, r->pglen, 0);
	atomic_fetch_add(&g_sh->regs, 1);
	return true;
}

static void reg_drop(struct devq *d, struct sdom_buf *b, struct reg *r)
{
	size_t n = r->len < 4096 ? r->len : 4096;
	uint8_t st;

	atomic_store(&r->pub->iova, 0);
	unclaim(r->pg, r->pglen);
	CHECK_OK(iovm_mr_dereg(r->mr));
	r->mr = NULL;
	/* Gone: the device reads none of it any more (the IOVA may be someone else's by now). */
	memset(b->p, 0, n);
	st = a19_copy(d, r->iova, b->iova, n);
	if (st == IOVM_STATUS_SUCCESS)
		CHECK_MSG(memcmp(b->p, r->addr, n) || n < 16, "a deregistered registration still read");
	free(r->base);
	free(r->model);
	atomic_fetch_add(&g_sh->deregs, 1);
}

/*
 * A device that reads another process's registration: its bytes, through
 * that process, or a fault if it went meanwhile; nothing of this
 * process's touched. (It writes none of it: the owner's model would not
 * know.)
 */
static void probe(unsigned slot, struct devq *d, struct sdom_buf *b, uint64_t *rs)
{
	uint64_t start = test_rand(rs) % PAGES;

	for (uint64_t k = 0; k < 4096; k++) {
		uint64_t i = (start + k) % PAGES, iova = A19_WIN + i * 4096;
		uint32_t v1 = atomic_load(&g_sh->owner[i]), v2;
		uint8_t st1;

		if (!v1 || (v1 & 0xf) == slot + 1 || (v1 & KIND_HEAP))
			continue;
		memset(b->p, 0x5a, 4096);
		st1 = a19_copy(d, iova, b->iova, 4096);
		v2 = atomic_load(&g_sh->owner[i]);
		CHECK(all_bytes(g_same, SAME_LEN, (uint8_t)(0x30 + slot)));
		CHECK(st1 == IOVM_STATUS_SUCCESS || st1 == IOVM_STATUS_PAGE_FAULT);
		/* Gone meanwhile: deregistered (a drop unclaims first), or its process killed. */
		if (v1 != v2 || (st1 != IOVM_STATUS_SUCCESS && atomic_load(&g_sh->dead[(v1 & 0xf) - 1])))
			return;
		/* Live all along: its bytes came. */
		CHECK_MSG(st1 == IOVM_STATUS_SUCCESS && !all_bytes(b->p, 4096, 0x5a),
			  "slot %u's device could not read slot %u's registration at %#llx: status %u", slot,
			  (v1 & 0xf) - 1, (unsigned long long)iova, st1);
		atomic_fetch_add(&g_sh->probe_faults, 1);
		return;
	}
}

static void storm(unsigned slot, uint64_t rounds, int wr)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain *dom;
	struct reg regs[LIVE] = { 0 };
	struct { uint8_t *p; uint64_t iova; struct range *pub; } heap[2] = { 0 };
	struct iovm_mr *same_mr;
	struct range *same_pub;
	uint64_t same_iova;
	uint64_t rs = 0x1234567 + slot * 7919 + (uint64_t)getpid();
	struct sdom_buf b;
	struct devq d;

	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	d = devq_open(ctx, dom);
	b = sdom_buf_open(ctx, dom, BACK);
	/* The same address as every other process's: a device that names another's reaches nothing here. */
	memset(g_same, 0x30 + slot, SAME_LEN);
	CHECK_OK(iovm_mr_reg(dom, g_same, SAME_LEN, IOVM_ACCESS_LOCAL_WRITE, &same_mr));
	same_iova = a19_mr_iova(same_mr);
	claim(slot, same_iova, SAME_LEN, 0);
	same_pub = publish(slot, same_iova, SAME_LEN, 0);
	put64(wr, 1); /* registered */
	for (uint64_t round = 0; rounds ? round < rounds : !atomic_load(&g_sh->stop); round++) {
		unsigned op = (unsigned)(test_rand(&rs) % 8), i = (unsigned)(test_rand(&rs) % LIVE);

		switch (op) {
		case 0:
		case 1:
			if (!regs[i].mr && reg_new(slot, dom, &regs[i], &rs))
				reg_check(&d, &b, &regs[i], &rs);
			break;
		case 2:
			if (regs[i].mr)
				reg_drop(&d, &b, &regs[i]);
			break;
		case 3: {
			unsigned h = i % 2;

			if (!heap[h].p) {
				iovm_iova_t iova = IOVM_IOVA(IOVM_ADDR_INVALID);

				heap[h].p = iovm_dma_alloc(ctx, 16384, 4096, 0);
				if (!heap[h].p)
					break;
				memset(heap[h].p, 0x70 + slot, 16384);
				CHECK_OK(iovm_domain_map_ptr(dom, heap[h].p, 16384, IOVM_MAP_READ | IOVM_MAP_WRITE,
							     &iova));
				heap[h].iova = iova.addr;
				claim(slot, iova.addr, 16384, KIND_HEAP);
				heap[h].pub = publish(slot, iova.addr, 16384, KIND_HEAP);
				CHECK_EQ(a19_copy(&d, iova.addr, b.iova, 16384), IOVM_STATUS_SUCCESS);
				CHECK(all_bytes(b.p, 16384, (uint8_t)(0x70 + slot)));
				atomic_fetch_add(&g_sh->heapmaps, 1);
			} else {
				atomic_store(&heap[h].pub->iova, 0);
				unclaim(heap[h].iova, 16384);
				CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(heap[h].iova), 16384));
				CHECK_OK(iovm_dma_free(ctx, heap[h].p));
				heap[h].p = NULL;
			}
			break;
		}
		case 4:
		case 5:
			probe(slot, &d, &b, &rs);
			atomic_fetch_add(&g_sh->probes, 1);
			break;
		default:
			if (regs[i].mr)
				reg_check(&d, &b, &regs[i], &rs);
			break;
		}
		for (unsigned j = 0; j < LIVE; j++)
			if (regs[j].mr)
				CHECK_MSG(!memcmp(regs[j].addr, regs[j].model, regs[j].len),
					  "slot %u: a registration's memory changed behind its model", slot);
		CHECK(all_bytes(g_same, SAME_LEN, (uint8_t)(0x30 + slot)));
	}
	for (unsigned j = 0; j < LIVE; j++)
		if (regs[j].mr)
			reg_drop(&d, &b, &regs[j]);
	for (unsigned h = 0; h < 2; h++)
		if (heap[h].p) {
			unclaim(heap[h].iova, 16384);
			CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(heap[h].iova), 16384));
			CHECK_OK(iovm_dma_free(ctx, heap[h].p));
		}
	CHECK_EQ(iovm_domain_destroy(dom), -EBUSY); /* same_mr lives */
	atomic_store(&same_pub->iova, 0);
	unclaim(same_iova, SAME_LEN);
	CHECK_OK(iovm_mr_dereg(same_mr));
	sdom_buf_close(ctx, dom, &b);
	devq_close(&d);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_close(ctx));
}

struct storm_arg {
	unsigned slot;
	uint64_t rounds;
};

static void storm_child(int rd, int wr, void *arg)
{
	struct storm_arg *a = arg;

	(void)rd;
	storm(a->slot, a->rounds, wr);
	put64(wr, 2);
}

static unsigned nprocs(void)
{
	const char *s = getenv("A19_PROCS");
	unsigned n = s ? (unsigned)atoi(s) : 6;

	return n < 2 ? 2 : n > 8 ? 8 : n;
}

static uint32_t g_flags; /* the shared domain's: 0 or IOVM_DOMAIN_DEFERRED */

static void setup(struct iovm_ctx **ctx, struct iovm_domain **dom, uint64_t *heap_before, const char *what)
{
	struct iovm_share_domain_params p = { .iova_size = IOVA_SIZE, .flags = g_flags, .flush_batch = 8 };

	memset(g_sh, 0, sizeof(*g_sh));
	g_name = share_name(what);
	*ctx = share_ok(g_name, HEAP);
	*heap_before = share_info(*ctx).heap_free;
	CHECK_OK(iovm_share_domain_create(*ctx, DOM, &p, dom));
}

static void storm_model(const char *what)
{
	unsigned n = nprocs();
	struct child c[8];
	struct storm_arg a[8];
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	uint64_t before, iovas;

	setup(&ctx, &dom, &before, what);
	iovas = a19_stats(dom).iova_allocated;
	for (unsigned i = 0; i < n; i++) {
		a[i] = (struct storm_arg){ .slot = i, .rounds = 1500 };
		c[i] = child_start(storm_child, &a[i]);
	}
	for (unsigned i = 0; i < n; i++) {
		CHECK_EQ(get64(c[i].rd), 1);
		CHECK_EQ(get64(c[i].rd), 2);
		child_ok(&c[i]);
	}
	printf("# %u processes: %llu registrations, %llu deregistrations, %llu heap maps, %llu probes, %llu of another's "
	       "registration (all faulted)\n",
	       n, (unsigned long long)g_sh->regs, (unsigned long long)g_sh->deregs, (unsigned long long)g_sh->heapmaps,
	       (unsigned long long)g_sh->probes, (unsigned long long)g_sh->probe_faults);
	CHECK(g_sh->regs > 100 && g_sh->probe_faults > 20);
	for (uint64_t i = 0; i < PAGES; i++)
		CHECK_MSG(!g_sh->owner[i], "page %llu still claimed", (unsigned long long)i);
	if (g_flags)
		CHECK_OK(iovm_domain_flush(dom));
	CHECK_EQ(a19_stats(dom).iova_allocated, iovas);
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_EQ(share_info(ctx).heap_free, before);
	CHECK_OK(iovm_close(ctx));
}

TEST(storm_model)
{
	storm_model("a19storm");
}

/* The same in a deferred shared domain (small flush batches): heap unmaps queue, registrations stay strict. */
TEST(storm_deferred)
{
	g_flags = IOVM_DOMAIN_DEFERRED;
	storm_model("a19stormdef");
	g_flags = 0;
}

/* Processes killed -9 at random moments of the storm; replacements come in; the survivors go on. */
TEST(storm_kills)
{
	unsigned n = nprocs(), next = 0, kills = 0, killed_live = 0, dead[SLOTS], ndead = 0;
	struct child c[SLOTS];
	struct storm_arg a[SLOTS];
	bool alive[SLOTS] = { 0 };
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	uint64_t before, rs = (uint64_t)time(NULL) | 1;
	struct sdom_buf b;
	struct devq d;

	setup(&ctx, &dom, &before, "a19kill");
	d = devq_open(ctx, dom);
	b = sdom_buf_open(ctx, dom, BACK);
	for (; next < n; next++) {
		a[next] = (struct storm_arg){ .slot = next, .rounds = 0 };
		c[next] = child_start(storm_child, &a[next]);
		CHECK_EQ(get64(c[next].rd), 1);
		alive[next] = true;
	}
	while (next < SLOTS) {
		unsigned v;

		usleep(20000 + (useconds_t)(test_rand(&rs) % 150000));
		do
			v = (unsigned)(test_rand(&rs) % next);
		while (!alive[v]);
		for (unsigned i = 0; i < LIVE + 4; i++)
			killed_live += atomic_load(&g_sh->ranges[v][i].iova) != 0;
		atomic_store(&g_sh->dead[v], 1);
		child_kill(&c[v]);
		alive[v] = false;
		dead[ndead++] = v;
		kills++;
		a[next] = (struct storm_arg){ .slot = next, .rounds = 0 };
		c[next] = child_start(storm_child, &a[next]);
		CHECK_EQ(get64(c[next].rd), 1);
		alive[next++] = true;
	}
	usleep(100000);
	atomic_store(&g_sh->stop, 1);
	for (unsigned i = 0; i < SLOTS; i++)
		if (alive[i]) {
			CHECK_EQ(get64(c[i].rd), 2);
			child_ok(&c[i]);
		}
	WAIT_UNTIL(share_info(ctx).processes == 1);
	printf("# %u kills (%u live ranges at the kills), %llu registrations, %llu probes of another's (read through it)\n", kills,
	       killed_live, (unsigned long long)g_sh->regs, (unsigned long long)g_sh->probe_faults);
	CHECK(kills > 0 && killed_live > 0 && g_sh->probe_faults > 0);
	/* What the dead left: their registrations' entries, where this device faults; then unmapped. */
	for (unsigned k = 0; k < ndead; k++)
		for (unsigned i = 0; i < LIVE + 4; i++) {
			struct range *r = &g_sh->ranges[dead[k]][i];
			uint64_t iova = atomic_load(&r->iova);
			iovm_pa_t pa;

			if (!iova)
				continue;
			if (!(r->kind & KIND_HEAP)) {
				CHECK_OK(iovm_domain_translate(dom, IOVM_IOVA(iova), &pa, NULL));
				CHECK(pa.addr >= A19_REG_PA_LO && pa.addr < A19_REG_PA_HI);
				memset(b.p, 0x5a, 4096);
				CHECK(a19_copy(&d, iova, b.iova, 4096) != IOVM_STATUS_SUCCESS);
				CHECK(devq_fill(&d, iova, 4096, 0x42) != IOVM_STATUS_SUCCESS);
				CHECK(all_bytes(b.p, 4096, 0x5a));
			}
			CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(iova), r->len));
			CHECK_EQ(iovm_domain_translate(dom, IOVM_IOVA(iova), &pa, NULL), -ENOENT);
		}
	CHECK_OK(iovm_share_check(ctx));
	sdom_buf_close(ctx, dom, &b);
	devq_close(&d);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_share_reap(ctx) >= 0 ? 0 : -1);
	CHECK_EQ(share_info(ctx).heap_free, before);
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
}

int main(void)
{
	test_init();
	g_sh = mmap(NULL, sizeof(*g_sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(g_sh != MAP_FAILED);
	g_same = mmap(NULL, SAME_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(g_same != MAP_FAILED);
	RUN(storm_model);
	RUN(storm_deferred);
	RUN(storm_kills);
	return 0;
}
