/* SPDX-License-Identifier: MIT */
/*
 * attack24_storm_threads.c - the storm's threads over plain MRs
 * (test_attack24_monitor): workers that register memory and take it away
 * by every call (worker_iter(): after the call returned, the query and
 * the device must see it gone), readers that read and query every
 * worker's registration at once, and churners of unregistered memory and
 * of a large on-demand MR.
 */
#include "attack/attack24.h"

A24_HARNESS(storm_threads);


/*
 * munlock(), then madvise(@advice), which a locked page refuses (EINVAL).
 * The monitor locks every pinned MR's pages again after an event that
 * may have unlocked them (reg.h: a DONTUNMAP move's source, which the
 * churners' noise makes all the time), so a relock can come between the
 * two calls, try after try on a slow (sanitized) build. False when it
 * did 100 times running: the pages stay, as reg.h says they may.
 */
static bool unlock_advise(uint8_t *ra, size_t rl, int advice, const char *name)
{
	for (unsigned tries = 0; tries < 100; tries++) {
		CHECK_OK(munlock(ra, rl));
		if (!madvise(ra, rl, advice))
			return true;
		CHECK_MSG(errno == EINVAL, "%s after munlock: %s", name, strerror(errno));
		atomic_fetch_add(&c_relocked, 1);
		sched_yield();
	}
	return false;
}
static void worker_iter(struct a17q *a, struct slot *s, uint64_t *rng)
{
	bool huge = C.huge_every && test_rand(rng) % C.huge_every == 0;
	bool shared = !huge && C.shared_every && test_rand(rng) % C.shared_every == 0;
	unsigned np = huge ? MAXP : 1 + (unsigned)(test_rand(rng) % C.max_pages);
	unsigned mp = np + 2, op, pa, pb, taken = 0, checked = 0;
	uint8_t *map = huge ? map_huge_aligned(mp) : map_anon((size_t)mp * PG, shared);
	uint8_t *moved = NULL;
	size_t moved_len = 0;
	bool kept = false; /* a madvise() the monitor's relocks refused each time */
	unsigned off = test_rand(rng) % 3 ? (unsigned)(test_rand(rng) % PG) : 0, tail;
	uint32_t tag = next_tag();
	struct iovm_mr_info info;
	struct iovm_mr *mr;
	uint8_t own[MAXP + 2];
	int ret;

	memset(own, 1, sizeof(own));
	if (np == 1)
		tail = (unsigned)(test_rand(rng) % (PG - off));
	else
		tail = test_rand(rng) % 3 ? (unsigned)(test_rand(rng) % PG) : 0;
	for (unsigned i = 0; i < mp; i++)
		pat(map + (size_t)i * PG, tag, i);
	s->map = map;
	s->map_pages = mp;
	s->first = 1;
	s->npages = np;
	s->off = off;
	s->len = (size_t)np * PG - off - tail;
	s->tag = tag;
	ret = iovm_mr_reg(R.dom, map + PG + off, s->len, ACC, &mr);
	if (ret == -ENOMEM || ret == -EFAULT) {
		/*
		 * Memory short, or (reg.h) memory mapped into a hole another
		 * thread's raw munmap is still making: refused, never stale.
		 */
		atomic_fetch_add(ret == -EFAULT ? &c_reg_efault : &c_reg_enomem, 1);
		munmap(map, (size_t)mp * PG);
		return;
	}
	CHECK_MSG(ret == 0, "iovm_mr_reg(%u pages, off %u, len %zu, shared %d): %d", np, off, s->len, shared, ret);
	s->mr = mr;
	CHECK_OK(iovm_mr_query(mr, &info));
	CHECK_EQ(info.pages, np);
	s->iova0 = mr_iova(mr, map + PG + off) - off;
	CHECK((s->iova0 & (PG - 1)) == 0);
	if (info.valid_pages != np) {
		/*
		 * reg.h: memory mapped into a hole another thread's call is
		 * still making may have its pages refused (never stale). With
		 * 16 threads making holes, which this was cannot be told here
		 * (remap_after_return_registers_whole asks it exactly).
		 * Refused pages: the device must not reach them.
		 */
		unsigned faulted = 0;

		atomic_fetch_add(&c_fresh_refused, 1);
		for (unsigned i = 0; i < np; i++) {
			unsigned o, n;

			faulted += read_page(a, s, i, &o, &n) == IOVM_STATUS_PAGE_FAULT;
		}
		CHECK_MSG(faulted >= np - info.valid_pages,
			  "fresh MR with %llu of %u pages refused: the device reached %u of them",
			  (unsigned long long)(np - info.valid_pages), np, np - faulted);
		CHECK_OK(iovm_mr_dereg(mr));
		s->mr = NULL;
		munmap(map, (size_t)mp * PG);
		return;
	}
	for (unsigned i = 0; i < np; i++)
		atomic_store_explicit(&s->st[i], 0, memory_order_relaxed);
	atomic_store_explicit(&s->live, 1, memory_order_release);

	/* The whole MR through the device, in pieces: its own words. */
	for (unsigned i = 0; i < np; i += (huge ? 37 : 1)) {
		unsigned o, n;
		uint8_t stt = read_page(a, s, i, &o, &n);

		if (stt == IOVM_STATUS_PAGE_FAULT) {
			/*
			 * Refused after all (reg.h: memory mapped into a hole
			 * another thread's call was still making, its event
			 * read after the registration): never stale. Counted;
			 * the hole-maker is asked exactly by
			 * remap_after_return_registers_whole.
			 */
			CHECK(a17_all(a->buf, 0x5a, n));
			atomic_fetch_add(&c_fresh_refused, 1);
			atomic_store_explicit(&s->live, 0, memory_order_release);
			while (atomic_load(&s->readers))
				sched_yield();
			CHECK_OK(iovm_mr_dereg(mr));
			s->mr = NULL;
			munmap(map, (size_t)mp * PG);
			return;
		}
		CHECK_MSG(stt == IOVM_STATUS_SUCCESS, "fresh MR page %u/%u: status %u", i, np, stt);
		CHECK_MSG(pat_eq(a->buf, tag, 1 + i, o, n),
			  "fresh MR page %u/%u (off %u, part %u+%u, shared %d, huge %d): not its words (%#llx, memory %#llx)",
			  i, np, off, o, n, shared, huge, (unsigned long long)*(uint64_t *)a->buf,
			  (unsigned long long)*(uint64_t *)(map + (size_t)(1 + i) * PG + o));
	}

	/* What to take away: pages [pa, pb) of the mapping, guards included sometimes. */
	op = (unsigned)(test_rand(rng) % NOPS);
	if (op == OP_REMOVE && !shared)
		op = OP_UNLOCK_DN;
	if (op == OP_UNLOCK_FREE && shared)
		op = OP_REMOVE;
	if (op == OP_SHRINK) {
		pb = mp;
		pa = mp - 1 - (unsigned)(test_rand(rng) % (mp - 1)); /* keep the first guard */
		if (pa == 0)
			pa = 1;
	} else if (huge && test_rand(rng) % 2) {
		pa = 1; /* exactly the 2 MiB, or its aligned half */
		pb = test_rand(rng) % 2 ? mp - 1 : 1 + MAXP / 2;
	} else {
		pa = (unsigned)(test_rand(rng) % mp);
		pb = pa + 1 + (unsigned)(test_rand(rng) % (mp - pa));
		if (huge && pb - pa > 64 && test_rand(rng) % 2)
			pb = pa + 1 + (unsigned)(test_rand(rng) % 64);
	}
	if (op == OP_MOVE) { /* one mapping (the locked span) only: mremap moves no more */
		if (pa < 1)
			pa = 1;
		if (pb > np + 1)
			pb = np + 1;
		if (pb <= pa)
			pb = pa + 1;
		if (pa > np) {
			pa = np;
			pb = np + 1;
		}
	}
	for (unsigned p = pa; p < pb; p++)
		if (p >= 1 && p <= np) {
			atomic_store_explicit(&s->st[p - 1], 1, memory_order_release);
			taken++;
		}
	atomic_fetch_add(&c_ops[op], 1);
	{
		uint8_t *ra = map + (size_t)pa * PG;
		size_t rl = (size_t)(pb - pa) * PG;
		uint8_t *q;

		switch (op) {
		case OP_MUNMAP:
			CHECK_OK(munmap(ra, rl));
			break;
		case OP_FIXED:
			q = mmap(ra, rl, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			CHECK(q == ra);
			memset(q, 0xa5, rl);
			break;
		case OP_MOVE:
			moved = mmap(NULL, rl, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			CHECK(moved != MAP_FAILED);
			moved_len = rl;
			q = mremap(ra, rl, rl, MREMAP_MAYMOVE | MREMAP_FIXED, moved);
			CHECK_MSG(q == moved, "mremap move: %s", strerror(errno));
			break;
		case OP_SHRINK:
			q = mremap(map, (size_t)mp * PG, (size_t)pa * PG, 0);
			CHECK_MSG(q == map, "mremap shrink: %s", strerror(errno));
			break;
		case OP_DN_LOCKED:
			CHECK_MSG(madvise(ra, rl, MADV_DONTNEED_LOCKED) == 0, "DONTNEED_LOCKED: %s", strerror(errno));
			break;
		case OP_UNLOCK_DN:
			kept = !unlock_advise(ra, rl, MADV_DONTNEED, "DONTNEED");
			break;
		case OP_UNLOCK_FREE:
			kept = !unlock_advise(ra, rl, MADV_FREE, "FREE");
			break;
		case OP_REMOVE:
			kept = !unlock_advise(ra, rl, MADV_REMOVE, "REMOVE");
			break;
		}
	}
	if (kept) {
		/*
		 * Locked again every time: a madvise() refused at a locked
		 * mapping may have discarded the ones before it. The pages stay
		 * in flight (either outcome, for the readers); nothing to check.
		 */
		atomic_fetch_add(&c_relock_kept, 1);
		goto retire;
	}
	for (unsigned p = pa; p < pb; p++) {
		if (p >= 1 && p <= np)
			atomic_store_explicit(&s->st[p - 1], 2, memory_order_release);
		if (op == OP_MUNMAP || op == OP_MOVE || op == OP_SHRINK)
			own[p] = 0; /* the address is free: another thread may map there now */
	}
	atomic_fetch_add(&c_iters, 1);

	/* The call returned: the query counts the pages invalid. */
	CHECK_OK(iovm_mr_query(mr, &info));
	CHECK_MSG(info.valid_pages + taken <= np && (taken < np || !info.valid),
		  "%s of pages [%u,%u) (MR %u pages, %u taken, shared %d, huge %d, off %u) returned, yet "
		  "iovm_mr_query() says %llu pages valid (valid %d): stale",
		  opname[op], pa, pb, np, taken, shared, huge, off, (unsigned long long)info.valid_pages,
		  info.valid);
	/* New memory where the old went (0xa5), then the device at every taken page: a fault, nothing touched. */
	refill(map + (size_t)pa * PG, pb - pa, own + pa);
	for (unsigned p = pa; p < pb; p++) {
		unsigned i = p - 1, o, n;
		uint8_t stt;

		if (p < 1 || p > np)
			continue;
		if (huge && taken > 32 && test_rand(rng) % (taken / 16))
			continue;
		stt = read_page(a, s, i, &o, &n);
		CHECK_MSG(stt == IOVM_STATUS_PAGE_FAULT && a17_all(a->buf, 0x5a, n),
			  "%s of pages [%u,%u) returned (MR %u pages, off %u, shared %d, huge %d); a device read "
			  "of taken page %u: status %u, %s: stale registration",
			  opname[op], pa, pb, np, off, shared, huge, i, stt,
			  a17_any(a->buf, 0xa5, n) ? "brought the new memory's bytes" :
			  pat_eq(a->buf, tag, p, o, n) ? "brought the old words" : "wrote the buffer");
		atomic_fetch_add(&c_taken_pages, 1);
		atomic_fetch_add(&c_taken_faults, 1);
		checked++;
		if (checked % 4 == 1) {
			memset(a->buf, 0x3c, n);
			stt = a17_copy(a, a->buf_iova, s->iova0 + (uint64_t)i * PG + o, n);
			/* (where another thread mapped into the hole, its memory is its own: status only) */
			CHECK_MSG(stt == IOVM_STATUS_PAGE_FAULT && (!own[p] || a17_all(map + (size_t)p * PG + o, 0xa5, n)),
				  "%s returned; a device write to taken page %u: status %u, new memory %s", opname[op],
				  i, stt, !own[p] || a17_all(map + (size_t)p * PG + o, 0xa5, n) ? "untouched" : "written");
			atomic_fetch_add(&c_writes_faulted, 1);
		}
	}
	/* Pages nobody took: their own words, or (over-invalidated, never stale) a fault. */
	for (unsigned k = 0; k < (huge ? 16u : np); k++) {
		unsigned i = huge ? (unsigned)(test_rand(rng) % np) : k, o, n;
		uint8_t stt;

		if (i + 1 >= pa && i + 1 < pb)
			continue;
		stt = read_page(a, s, i, &o, &n);
		if (stt == IOVM_STATUS_PAGE_FAULT) {
			CHECK(a17_all(a->buf, 0x5a, n));
			atomic_fetch_add(&c_overinval, 1);
			continue;
		}
		CHECK_MSG(stt == IOVM_STATUS_SUCCESS && pat_eq(a->buf, tag, i + 1, o, n),
			  "after %s of [%u,%u): untouched page %u read: status %u, %s", opname[op], pa, pb, i, stt,
			  stt == IOVM_STATUS_SUCCESS ? "not its words" : "");
		atomic_fetch_add(&c_present_ok, 1);
	}

retire:
	/* Retire: no reader left on it, then deregister and unmap all. */
	atomic_store_explicit(&s->live, 0, memory_order_release);
	while (atomic_load(&s->readers))
		sched_yield();
	CHECK_OK(iovm_mr_dereg(mr));
	s->mr = NULL;
	unmap_own(map, mp, own);
	if (moved)
		munmap(moved, moved_len);
}

void *worker(void *arg)
{
	struct targ *t = arg;
	struct a17q a;
	uint64_t rng = t->seed;

	thread_begin(&a);
	for (unsigned it = 0; it < C.iters && !atomic_load(&stop); it++)
		worker_iter(&a, &slots[t->id], &rng);
	a17q_close(&R, &a);
	return NULL;
}

/* Readers: every thread's view, at once after the call returned. */
void *reader(void *arg)
{
	struct targ *t = arg;
	struct a17q a;
	uint64_t rng = t->seed;

	thread_begin(&a);
	while (!atomic_load(&stop)) {
		struct slot *s = &slots[test_rand(&rng) % nslots];
		unsigned i, o, n;
		uint8_t st0, st1, stt;

		atomic_fetch_add(&s->readers, 1);
		if (!atomic_load_explicit(&s->live, memory_order_acquire)) {
			atomic_fetch_sub(&s->readers, 1);
			sched_yield();
			continue;
		}
		if (test_rand(&rng) % 4 == 0) {
			struct iovm_mr_info info;
			unsigned gone = 0;

			for (unsigned k = 0; k < s->npages; k++)
				gone += atomic_load_explicit(&s->st[k], memory_order_acquire) == 2;
			CHECK_OK(iovm_mr_query(s->mr, &info));
			CHECK_MSG(info.valid_pages + gone <= s->npages,
				  "reader: %u of %u pages gone (their call returned), yet iovm_mr_query() says %llu "
				  "valid: stale",
				  gone, s->npages, (unsigned long long)info.valid_pages);
			atomic_fetch_add(&c_queries, 1);
			if (gone)
				atomic_fetch_add(&c_query_gone, 1);
		}
		i = (unsigned)(test_rand(&rng) % s->npages);
		st0 = atomic_load_explicit(&s->st[i], memory_order_acquire);
		stt = read_page(&a, s, i, &o, &n);
		st1 = atomic_load_explicit(&s->st[i], memory_order_acquire);
		atomic_fetch_add(&c_reader_reads, 1);
		if (st0 == 2) {
			CHECK_MSG(stt == IOVM_STATUS_PAGE_FAULT && a17_all(a.buf, 0x5a, n),
				  "reader: page %u of a %u-page MR gone (its call returned before the read), yet a "
				  "device read: status %u%s: stale",
				  i, s->npages, stt, a17_any(a.buf, 0xa5, n) ? ", new memory's bytes" : "");
			atomic_fetch_add(&c_reader_gone, 1);
		} else if (st1 == 0) {
			if (stt == IOVM_STATUS_SUCCESS)
				CHECK_MSG(pat_eq(a.buf, s->tag, i + 1, o, n),
					  "reader: page %u of a %u-page MR nobody took: read brought other bytes "
					  "(word %#llx)",
					  i, s->npages, (unsigned long long)*(uint64_t *)a.buf);
			else
				CHECK(stt == IOVM_STATUS_PAGE_FAULT);
			atomic_fetch_add(&c_reader_present, 1);
		} else {
			atomic_fetch_add(&c_reader_inflight, 1);
		}
		atomic_fetch_sub(&s->readers, 1);
	}
	a17q_close(&R, &a);
	return NULL;
}

/* Unregistered memory churned, and (odp_noise) pages of a large on-demand MR discarded and replaced. */
void *churner(void *arg)
{
	struct targ *t = arg;
	uint64_t rng = t->seed;

	be_nice();
	pthread_barrier_wait(&go);
	while (!atomic_load(&stop)) {
		unsigned n = 1 + (unsigned)(test_rand(&rng) % 32), k = (unsigned)(test_rand(&rng) % n);
		uint8_t *p = map_anon((size_t)n * PG, false), *q;
		void *m;

		memset(p, 1, (size_t)n * PG);
		switch (test_rand(&rng) % 6) {
		case 0:
			madvise(p + (size_t)k * PG, PG, MADV_DONTNEED);
			break;
		case 1:
			q = mremap(p, (size_t)n * PG, (size_t)(n + 8) * PG, MREMAP_MAYMOVE);
			if (q != MAP_FAILED) {
				p = q;
				n += 8;
			}
			break;
		case 2:
			mmap(p + (size_t)k * PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
			     -1, 0);
			break;
		case 3:
			madvise(p, (size_t)n * PG, MADV_FREE);
			break;
		case 4:
			m = malloc(256u << 10 | (unsigned)(test_rand(&rng) % 4096));
			if (m) {
				memset(m, 2, 4096);
				free(m);
			}
			break;
		default:
			syscall(SYS_munmap, p + (size_t)k * PG, (size_t)PG);
			if (k)
				munmap(p, (size_t)k * PG);
			if (k + 1 < n)
				munmap(p + (size_t)(k + 1) * PG, (size_t)(n - k - 1) * PG);
			n = 0;
			break;
		}
		if (n)
			munmap(p, (size_t)n * PG);
		atomic_fetch_add(&c_churn, 1);
		if (noise) {
			size_t np = noise_len / PG, i = test_rand(&rng) % np, c = 1 + test_rand(&rng) % 8;
			uint8_t *a;

			if (i + c > np)
				c = np - i;
			a = noise + i * PG;
			switch (test_rand(&rng) % 4) {
			case 0:
				madvise(a, c * PG, MADV_DONTNEED);
				break;
			case 1:
				mmap(a, c * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
				break;
			case 2: /* (never a munmap: another thread could map into the hole) */
				mremap(a, c * PG, c * PG, MREMAP_MAYMOVE | MREMAP_FIXED | 4 /* DONTUNMAP */,
				       noise + (test_rand(&rng) % (np - c + 1)) * PG);
				break;
			default:
				madvise(a, c * PG, MADV_FREE);
				break;
			}
			atomic_fetch_add(&c_odp_noise, 1);
		}
	}
	return NULL;
}
