/* SPDX-License-Identifier: MIT */
/*
 * vm_rdma_mt.c - the RDMA VM test's case iovm-cache-threads (vm_rdma.c
 * runs it in its lockstep): iovm's registration cache under four threads
 * on Soft-RoCE, with memory replaced under it.
 *
 * A's four workers each have a QP of their own to B. Each round a worker
 * fills a source, gets a cached registration of it, RDMA WRITEs 4 KiB
 * with its lkey into its own slot of B's target (B got the target from
 * B's cache: the rkey is a cached one too), READs the slot back into a
 * check buffer (also a cached registration) and compares: every byte the
 * device moved came from, and went to, the memory the addresses name now.
 * The sources alternate between
 *  - the worker's own mmap'ed 16 KiB, which A's fifth thread replaces
 *    between rounds (mmap MAP_FIXED over it, or munmap and mmap anew),
 *    so a get after a replacement must not be the old registration: a
 *    stale MR would send the old pages' bytes, not the fresh pattern;
 *  - 8 KiB windows of one malloc'ed 64 KiB that all four register at
 *    overlapping offsets (hits of regions other threads made).
 * The fifth thread also WRITEs, after each replacement, into B's victim
 * buffer with the rkey B's cache gave before B replaced that buffer (B
 * puts it back first): success (the old pages) or a remote access error,
 * and never a byte in B's new memory. B finally checks every slot holds
 * the last write A made there and the rest of its target is untouched.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vm_common.h"
#include "vm_rdma.h"

#define NT 4                   /* worker threads */
#define ROUNDS 64              /* per worker: a WRITE and a READ each */
#define WR_LEN 4096            /* bytes per WRITE */
#define SLOT_LEN (2 * WR_LEN)  /* a slot: WR_LEN written, WR_LEN that must stay zero */
#define SLOTS 4                /* per worker */
#define TGT_LEN (NT * SLOTS * SLOT_LEN)
#define OWN_LEN (4 * WR_LEN)   /* a worker's mmap'ed source */
#define SHARED_LEN (16 * WR_LEN)
#define SHARED_SEED 90
#define VICTIM_LEN (4 * WR_LEN)

/* What A last wrote into a slot: the seed of a fill() of its own, or an offset of the shared buffer. */
struct slot_last {
	uint32_t own;  /* 1: fill(seed); 0: the shared buffer at off; 2: nothing */
	uint32_t seed, off;
};

struct mt {
	struct ep *ep;
	struct iovm_rcache *cache;
	struct ibv_qp *qp[NT + 1];
	struct ibv_cq *cq[NT + 1];
	uint64_t tgt;     /* B's target, and its rkey from B's cache */
	uint32_t tgt_rkey;
	uint64_t victim;  /* B's victim and the rkey it had before B replaced it */
	uint32_t victim_rkey;
	uint8_t *shared;  /* SHARED_LEN, fill(SHARED_SEED) */
	uint8_t *own[NT]; /* OWN_LEN each, replaced by the remapper under lock[i] */
	pthread_mutex_t lock[NT];
	uint8_t *check[NT];
	uint8_t *vsrc;    /* the remapper's source for the victim */
	struct slot_last last[NT * SLOTS];
	atomic_int done, bad, ops, replaced, stale_mrs;
	int victim_ok, victim_refused;
};

/* A failed expectation on a thread: counted, and said in one printf (stdout's lock keeps it whole). */
__attribute__((format(printf, 2, 3))) static void mt_fail(struct mt *m, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	atomic_fetch_add(&m->bad, 1);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("  FAIL (%s, a thread): %s\n", m->ep->name, msg);
}

/* Posts one signaled work request on QP q and waits for it: the status, or -1. */
static int mt_post(struct mt *m, int q, enum ibv_wr_opcode op, struct iovm_mr *mr, void *p, uint32_t len,
		   uint64_t raddr, uint32_t rkey)
{
	struct ibv_mr k = iovm_keys(mr);
	struct ibv_sge sge = { .addr = (uintptr_t)p, .length = len, .lkey = k.lkey };
	struct ibv_send_wr wr = { .wr_id = 3, .sg_list = &sge, .num_sge = 1, .opcode = op,
		.send_flags = IBV_SEND_SIGNALED, .wr = { .rdma = { .remote_addr = raddr, .rkey = rkey } } };
	struct ibv_send_wr *badwr;
	struct ibv_wc wc;

	if (ibv_post_send(m->qp[q], &wr, &badwr))
		return -1;
	for (double t0 = now(); now() - t0 < CQ_TIMEOUT;) {
		int n = ibv_poll_cq(m->cq[q], 1, &wc);

		if (n < 0)
			return -1;
		if (n)
			return (int)wc.status;
		usleep(100);
	}
	return -1;
}

/* A cached registration of [p, p+len), checked whole and valid; NULL (a failure counted) if not. */
static struct iovm_mr *mt_get(struct mt *m, void *p, size_t len, uint32_t access)
{
	struct iovm_mr_info info = { 0 };
	struct iovm_mr *mr = NULL;
	int ret = iovm_rcache_get(m->cache, p, len, access, &mr);

	if (ret) {
		mt_fail(m, "iovm_rcache_get: %s (%d)", iovm_error_detail(), ret);
		return NULL;
	}
	/* Not an MR whose memory an earlier call took away: every page of it valid, and it covers p. */
	if (iovm_mr_query(mr, &info) || !info.valid || info.valid_pages != info.pages ||
	    (uint8_t *)info.addr > (uint8_t *)p || (uint8_t *)info.addr + info.len < (uint8_t *)p + len) {
		atomic_fetch_add(&m->stale_mrs, 1);
		mt_fail(m, "the cache gave an MR not whole and valid (%llu of %llu pages valid)",
			(unsigned long long)info.valid_pages, (unsigned long long)info.pages);
	}
	return mr;
}

struct worker {
	struct mt *m;
	int i;
};

static void *worker(void *arg)
{
	struct worker *w = arg;
	struct mt *m = w->m;
	const int i = w->i;

	for (int r = 0; r < ROUNDS && !atomic_load(&m->bad); r++) {
		const int slot = i * SLOTS + r % SLOTS;
		const uint64_t raddr = m->tgt + (uint64_t)slot * SLOT_LEN;
		const bool own = r % 2 == 0;
		const uint32_t seed = 1000u * (uint32_t)(i + 1) + (uint32_t)r;
		struct iovm_mr *mr, *cmr;
		uint8_t *src;
		uint32_t off;
		int st;

		/*
		 * Before worker 0's last round: the remapper has replaced some
		 * registered memory and the cache counted the invalidation (its
		 * invalidator runs in the background), however late the
		 * scheduler ran it; at most CQ_TIMEOUT, then the check says so.
		 */
		if (i == 0 && r == ROUNDS - 1) {
			struct iovm_rcache_stats cs = { 0 };

			for (double t0 = now(); now() - t0 < CQ_TIMEOUT; usleep(1000)) {
				iovm_rcache_stats(m->cache, &cs);
				if (atomic_load(&m->replaced) > 0 && cs.invalidations_unmap + cs.invalidations_remap > 0)
					break;
			}
		}
		if (own) {
			pthread_mutex_lock(&m->lock[i]);
			off = (uint32_t)(r / 2 % 4) * WR_LEN;
			src = m->own[i] + off;
			fill(src, WR_LEN, seed);
			mr = mt_get(m, m->own[i], OWN_LEN, IOVM_ACCESS_LOCAL_WRITE);
		} else {
			off = (uint32_t)((i + r) % 8) * WR_LEN;
			src = m->shared + off;
			mr = mt_get(m, src, 2 * WR_LEN, IOVM_ACCESS_LOCAL_WRITE);
		}
		cmr = mt_get(m, m->check[i], WR_LEN, IOVM_ACCESS_LOCAL_WRITE);
		if (mr && cmr) {
			st = mt_post(m, i, IBV_WR_RDMA_WRITE, mr, src, WR_LEN, raddr, m->tgt_rkey);
			if (st != IBV_WC_SUCCESS)
				mt_fail(m, "RDMA WRITE into B's target from a cached MR: %s (round %d)", status_str(st), r);
			memset(m->check[i], 0, WR_LEN);
			st = st ? st : mt_post(m, i, IBV_WR_RDMA_READ, cmr, m->check[i], WR_LEN, raddr, m->tgt_rkey);
			if (st != IBV_WC_SUCCESS)
				mt_fail(m, "RDMA READ of it back into a cached MR: %s (round %d)", status_str(st), r);
			else if (memcmp(m->check[i], src, WR_LEN))
				mt_fail(m, "B's slot does not hold the bytes the source holds now (%s, round %d): "
					   "a stale registration moved them",
					own ? "own mmap'ed" : "shared malloc'ed", r);
			m->last[slot] = (struct slot_last){ .own = own, .seed = seed, .off = off };
			atomic_fetch_add(&m->ops, 2);
		}
		if (mr && iovm_rcache_put(m->cache, mr))
			mt_fail(m, "iovm_rcache_put (round %d)", r);
		if (cmr && iovm_rcache_put(m->cache, cmr))
			mt_fail(m, "iovm_rcache_put of the check buffer (round %d)", r);
		if (own)
			pthread_mutex_unlock(&m->lock[i]);
	}
	return NULL;
}

/* A's fifth thread: replaces the workers' own memory between their rounds, and writes to B's victim. */
static void *remapper(void *arg)
{
	struct mt *m = arg;
	bool victim_dead = false;

	for (int n = 0; !atomic_load(&m->done); n++) {
		const int k = n % NT;
		struct iovm_mr *vmr;
		uint8_t *p;

		pthread_mutex_lock(&m->lock[k]);
		if (n % 2) {
			/* Over it: the same address, new pages, in one call. */
			p = mmap(m->own[k], OWN_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		} else {
			/* Gone, then new memory where the kernel puts it (often the same address). */
			munmap(m->own[k], OWN_LEN);
			p = mmap(m->own[k], OWN_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		}
		if (p == MAP_FAILED)
			mt_fail(m, "mmap of a worker's new memory: %s (%d)", strerror(errno), n);
		else
			m->own[k] = p;
		atomic_fetch_add(&m->replaced, 1);
		pthread_mutex_unlock(&m->lock[k]);
		if (p == MAP_FAILED)
			break;
		if (!victim_dead && (vmr = mt_get(m, m->vsrc, WR_LEN, IOVM_ACCESS_LOCAL_WRITE))) {
			int st = mt_post(m, NT, IBV_WR_RDMA_WRITE, vmr, m->vsrc, WR_LEN, m->victim, m->victim_rkey);

			if (st == IBV_WC_SUCCESS)
				m->victim_ok++;
			else if (st == IBV_WC_REM_ACCESS_ERR)
				m->victim_refused++, victim_dead = true; /* the QP is in error now */
			else
				mt_fail(m, "RDMA WRITE with the victim's old rkey: %s (%d)", status_str(st), n), victim_dead = true;
			iovm_rcache_put(m->cache, vmr);
		}
		usleep(500);
	}
	return NULL;
}

/* The bytes B's slot must hold after A's last write there. */
static void slot_want(const struct slot_last *l, const uint8_t *shared, uint8_t *want)
{
	if (l->own == 1)
		fill(want, WR_LEN, l->seed);
	else if (l->own == 0)
		memcpy(want, shared + l->off, WR_LEN);
	else
		memset(want, 0, WR_LEN);
}

static int run(struct ep *ep, struct mt *m)
{
	const uint32_t rw = IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE | IOVM_ACCESS_REMOTE_READ;
	struct { uint64_t addr; uint32_t rkey, pad; } mine = { 0 }, theirs;
	struct iovm_mr *tmr = NULL, *vmr = NULL;
	struct iovm_rcache_stats cs = { 0 };
	uint8_t *tgt = NULL, *victim = NULL;
	struct ibv_cq *own_cq = ep->cq;
	pthread_t th[NT + 1];
	struct worker w[NT];
	int started = 0, rc = -1;
	double t0;

	m->ep = ep;
	for (int i = 0; i < NT; i++)
		pthread_mutex_init(&m->lock[i], NULL);
	for (int q = 0; q <= NT; q++) {
		m->cq[q] = ibv_create_cq(ep->ctx, 16, NULL, NULL, 0);
		CHECK(m->cq[q], "%s: CQ %d of %d", ep->name, q, NT + 1);
		if (!m->cq[q])
			goto out;
	}
	m->shared = malloc(SHARED_LEN);
	CHECK(m->shared, "%s: malloc", ep->name);
	if (!m->shared)
		goto out;
	fill(m->shared, SHARED_LEN, SHARED_SEED);
	if (ep->side == SIDE_B) {
		tgt = mmap(NULL, TGT_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		victim = mmap(NULL, VICTIM_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		CHECK(tgt != MAP_FAILED && victim != MAP_FAILED, "%s: mmap the target and the victim", ep->name);
		if (tgt == MAP_FAILED || victim == MAP_FAILED)
			goto out;
		memset(tgt, 0, TGT_LEN);
		memset(victim, 0, VICTIM_LEN);
		CHECK(!iovm_rcache_get(m->cache, tgt, TGT_LEN, rw, &tmr), "%s: iovm_rcache_get of the target: %s",
		      ep->name, iovm_error_detail());
		CHECK(!iovm_rcache_get(m->cache, victim, VICTIM_LEN, rw, &vmr), "%s: iovm_rcache_get of the victim: %s",
		      ep->name, iovm_error_detail());
		if (!tmr || !vmr)
			goto out;
		mine.addr = (uintptr_t)victim;
		mine.rkey = iovm_keys(vmr).rkey;
		/* Cached, not held: the replacement below takes it away. */
		iovm_rcache_put(m->cache, vmr);
		vmr = NULL;
	} else {
		for (int i = 0; i < NT; i++) {
			m->own[i] = mmap(NULL, OWN_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			m->check[i] = malloc(WR_LEN);
			if (m->own[i] == MAP_FAILED)
				m->own[i] = NULL;
			CHECK(m->own[i] && m->check[i], "%s: worker %d's buffers", ep->name, i);
			if (!m->own[i] || !m->check[i])
				goto out;
		}
		m->vsrc = malloc(WR_LEN);
		if (!m->vsrc)
			goto out;
		fill(m->vsrc, WR_LEN, 99);
		for (int s = 0; s < NT * SLOTS; s++)
			m->last[s].own = 2;
	}
	/* NT + 1 QPs, each on a CQ of its own: one per worker, one for the victim. */
	for (int q = 0; q <= NT; q++) {
		ep->cq = m->cq[q];
		if (ep_connect(ep, (uintptr_t)tgt, tmr ? iovm_keys(tmr).rkey : 0, TGT_LEN))
			goto out;
		m->qp[q] = ep->qp;
		ep->qp = NULL;
	}
	m->tgt = ep->peer.addr, m->tgt_rkey = ep->peer.rkey;
	if (ep_exchange(ep, &mine, &theirs, sizeof(mine)))
		goto out;
	m->victim = theirs.addr, m->victim_rkey = theirs.rkey;

	t0 = now();
	if (ep->side == SIDE_A) {
		for (int i = 0; i < NT; i++) {
			w[i] = (struct worker){ .m = m, .i = i };
			if (pthread_create(&th[i], NULL, worker, &w[i]))
				break;
			started++;
		}
		if (started == NT && !pthread_create(&th[NT], NULL, remapper, m))
			started++;
		CHECK(started == NT + 1, "%s: %d workers and the remapper started", ep->name, NT);
		for (int i = 0; i < NT && i < started; i++)
			pthread_join(th[i], NULL);
		atomic_store(&m->done, 1);
		if (started == NT + 1)
			pthread_join(th[NT], NULL);
		iovm_rcache_stats(m->cache, &cs);
		printf("  %s: %d threads: %d RDMA ops from cached MRs in %.2f s while %d buffers were replaced; "
		       "%llu hits, %llu misses, %llu invalidations; victim: %d WRITEs landed, %d refused\n",
		       ep->name, NT, atomic_load(&m->ops), now() - t0, atomic_load(&m->replaced),
		       (unsigned long long)cs.hits, (unsigned long long)cs.misses,
		       (unsigned long long)(cs.invalidations_unmap + cs.invalidations_remap + cs.invalidations_remove),
		       m->victim_ok, m->victim_refused);
		CHECK(!atomic_load(&m->bad), "%s: every completion a success (or the victim's remote access error), "
		      "every byte where it should be (%d failed)", ep->name, atomic_load(&m->bad));
		CHECK(!atomic_load(&m->stale_mrs), "%s: no get handed out an MR whose memory was replaced", ep->name);
		CHECK(atomic_load(&m->ops) == 2 * NT * ROUNDS && atomic_load(&m->replaced) > 0 &&
		      cs.invalidations_unmap + cs.invalidations_remap > 0 && cs.hits > 0,
		      "%s: all %d ops ran, with replacements, invalidations and hits", ep->name, 2 * NT * ROUNDS);
	} else {
		/* While A's threads run: replace the victim; the cache's next get is a fresh, whole MR. */
		usleep(100000);
		CHECK(mmap(victim, VICTIM_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
			      victim, "%s: mmap MAP_FIXED over the victim", ep->name);
		CHECK(!iovm_rcache_get(m->cache, victim, VICTIM_LEN, rw, &vmr), "%s: get of the new victim", ep->name);
		if (vmr) {
			struct iovm_mr_info info = { 0 };

			iovm_mr_query(vmr, &info);
			CHECK(info.valid && info.valid_pages == info.pages, "%s: a whole, valid MR of the new memory",
			      ep->name);
			iovm_rcache_put(m->cache, vmr);
			vmr = NULL;
		}
	}
	if (ep_sync(ep))
		goto out;
	/* One more WRITE with the victim's old rkey, surely after B replaced it. */
	if (ep->side == SIDE_A && !m->victim_refused) {
		struct iovm_mr *smr = NULL;
		int st;

		CHECK(!iovm_rcache_get(m->cache, m->vsrc, WR_LEN, IOVM_ACCESS_LOCAL_WRITE, &smr), "%s: get", ep->name);
		if (smr) {
			st = mt_post(m, NT, IBV_WR_RDMA_WRITE, smr, m->vsrc, WR_LEN, m->victim, m->victim_rkey);
			CHECK(st == IBV_WC_SUCCESS || st == IBV_WC_REM_ACCESS_ERR,
			      "%s: a WRITE with the victim's old rkey after B replaced it: %s", ep->name, status_str(st));
			iovm_rcache_put(m->cache, smr);
		}
	}
	/* What A last wrote where, for B to check. */
	{
		static struct slot_last got[NT * SLOTS];

		if (ep_exchange(ep, m->last, got, sizeof(got)))
			goto out;
		if (ep->side == SIDE_B) {
			uint8_t *want = malloc(WR_LEN);
			int wrong = 0, written = 0;

			for (int s = 0; want && s < NT * SLOTS; s++) {
				slot_want(&got[s], m->shared, want);
				written += got[s].own != 2;
				wrong += memcmp(tgt + (size_t)s * SLOT_LEN, want, WR_LEN) != 0 ||
					 !all(tgt + (size_t)s * SLOT_LEN + WR_LEN, SLOT_LEN - WR_LEN, 0);
			}
			CHECK(want && !wrong && written == NT * SLOTS,
			      "%s: each of the %d slots holds A's last write there, and nothing past it (%d wrong)",
			      ep->name, NT * SLOTS, wrong);
			CHECK(all(victim, VICTIM_LEN, 0), "%s: no WRITE with the old rkey landed in the victim's new memory",
			      ep->name);
			free(want);
		}
	}
	rc = 0;
out:
	for (int q = 0; q <= NT; q++) {
		if (m->qp[q])
			ibv_destroy_qp(m->qp[q]);
		if (m->cq[q])
			ibv_destroy_cq(m->cq[q]);
	}
	ep->cq = own_cq;
	if (tmr)
		iovm_rcache_put(m->cache, tmr);
	if (vmr)
		iovm_rcache_put(m->cache, vmr);
	if (tgt && tgt != MAP_FAILED)
		munmap(tgt, TGT_LEN);
	if (victim && victim != MAP_FAILED)
		munmap(victim, VICTIM_LEN);
	for (int i = 0; i < NT; i++) {
		if (m->own[i])
			munmap(m->own[i], OWN_LEN);
		free(m->check[i]);
		pthread_mutex_destroy(&m->lock[i]);
	}
	free(m->vsrc);
	free(m->shared);
	return rc;
}

int case_iovm_cache_threads(struct ep *ep, int *nchecks, int *nfailures)
{
	int c0 = checks, f0 = failures, rc = -1;
	static struct mt m;
	struct iovm_ep ie = { 0 };

	memset(&m, 0, sizeof(m));
	if (iovm_ep_open(ep, &ie))
		goto out;
	CHECK(!iovm_rcache_create(ie.dom, NULL, &m.cache), "%s: iovm_rcache_create", ep->name);
	if (m.cache)
		rc = run(ep, &m);
out:
	if (m.cache)
		CHECK(!iovm_rcache_destroy(m.cache), "%s: iovm_rcache_destroy: every get was put", ep->name);
	iovm_ep_close(ep, &ie);
	*nchecks += checks - c0;
	*nfailures += failures - f0;
	return rc;
}
