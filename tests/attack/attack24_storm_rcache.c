/* SPDX-License-Identifier: MIT */
/*
 * attack24_storm_rcache.c - the storm's registration cache users
 * (test_attack24_monitor): a get of memory just mapped, the memory taken
 * away with the region held or put back, mapped anew at the same address:
 * a get must reach the new words whole.
 */
#include "attack/attack24.h"

A24_HARNESS(storm_rcache);

/*
 * Registration cache users: get, read, take the memory away while holding
 * the region or not, map it anew at the same address with new words, get
 * again: the region handed out reaches the new words whole.
 */
void *rcacher(void *arg)
{
	struct targ *t = arg;
	struct a17q a;
	uint64_t rng = t->seed;

	thread_begin(&a);
	while (!atomic_load(&stop)) {
		unsigned np = 1 + (unsigned)(test_rand(&rng) % 12), mp = np + 2;
		uint8_t *map = map_anon((size_t)mp * PG, false), *addr;
		unsigned off = (unsigned)(test_rand(&rng) % PG), len, op = (unsigned)(test_rand(&rng) % rc_nops);
		unsigned pa, pb;
		uint32_t tag = next_tag(), tag2 = next_tag();
		struct iovm_mr *mr, *mr2;
		struct iovm_mr_info info;
		bool hold = test_rand(&rng) % 2;
		uint8_t own[16];
		unsigned e_get, e_call;
		struct iovm_mr_info at_get;
		struct iovm_rcache_stats rs0, rs1;
		int ret;

		memset(own, 1, sizeof(own));
		len = np * PG - off - (np == 1 ? (unsigned)(test_rand(&rng) % (PG - off)) : 0);
		if (!len)
			len = 1;
		addr = map + PG + off;
		for (unsigned i = 0; i < mp; i++)
			pat(map + (size_t)i * PG, tag, i);
		e_get = atomic_load(&fork_epoch);
		CHECK_OK(iovm_rcache_stats(RC, &rs0));
		ret = iovm_rcache_get(RC, addr, len, ACC, &mr);
		CHECK_OK(iovm_rcache_stats(RC, &rs1));
		if (ret == -ENOMEM || ret == -EFAULT) {
			atomic_fetch_add(ret == -EFAULT ? &c_reg_efault : &c_reg_enomem, 1);
			munmap(map, (size_t)mp * PG);
			continue;
		}
		CHECK_MSG(ret == 0, "rcache get: %d", ret);
		atomic_fetch_add(&c_rc_gets, 1);
		memset(a.buf, 0x5a, len < BUFLEN ? len : BUFLEN);
		{
			uint8_t stt = a17_copy(&a, mr_iova(mr, addr), a.buf_iova, len);

			if (stt == IOVM_STATUS_PAGE_FAULT) {
				CHECK_OK(iovm_mr_query(mr, &info));
				if ((uint8_t *)info.addr < map || (uint8_t *)info.addr + info.len > map + (size_t)mp * PG)
					atomic_fetch_add(&c_rc_old_region, 1); /* beyond the memory just mapped: an old region */
			}
			if (stt == IOVM_STATUS_PAGE_FAULT && !known_on()) {
				/*
				 * An old region, or pages refused (reg.h: a hole
				 * another call is still making): the storm cannot
				 * tell. Counted; IOVM_ATTACK24_KNOWN=1 fails on it.
				 */
				atomic_fetch_add(&c_rc_get_faulted, 1);
				CHECK_OK(iovm_rcache_put(RC, mr));
				munmap(map, (size_t)mp * PG);
				continue;
			}
			if (stt != IOVM_STATUS_SUCCESS) {
				CHECK_OK(iovm_mr_query(mr, &info));
				test_fail("rcache: a get of memory just mapped ([%p, +%u pages), asked from page 1 + %u bytes) "
					  "handed out a region (%p + %zu, %llu of %llu pages valid) the device faults on "
					  "(status %u): %s",
					  (void *)map, mp, off, info.addr, info.len, (unsigned long long)info.valid_pages,
					  (unsigned long long)info.pages, stt,
					  (uint8_t *)info.addr < map || (uint8_t *)info.addr + info.len > map + (size_t)mp * PG ?
					  "an old region (it reaches beyond the memory just mapped): its memory is gone" :
					  "an old region, or refused pages (reg.h: a hole another call is making)");
			}
			CHECK(1);
		}
		CHECK_OK(iovm_mr_query(mr, &at_get));
		CHECK_MSG(memcmp(a.buf, addr, len) == 0, "rcache: a fresh get read other bytes than the memory");
		if (!hold) {
			CHECK_OK(iovm_rcache_put(RC, mr));
			mr = NULL;
		}
		/* Take [pa, pb) away: part of it, all of it, or across its edge. */
		pa = (unsigned)(test_rand(&rng) % mp);
		pb = pa + 1 + (unsigned)(test_rand(&rng) % (mp - pa));
		if (pb <= 1 || pa > np) { /* only a guard: take the first MR page too */
			pa = 1;
			pb = 2;
		}
		e_call = atomic_load(&fork_epoch);
		switch (op) {
		case 0:
			CHECK_OK(munmap(map + (size_t)pa * PG, (size_t)(pb - pa) * PG));
			break;
		case 1:
			CHECK(mmap(map + (size_t)pa * PG, (size_t)(pb - pa) * PG, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == map + (size_t)pa * PG);
			break;
		case 2:
			CHECK_MSG(madvise(map + (size_t)pa * PG, (size_t)(pb - pa) * PG, MADV_DONTNEED_LOCKED) == 0,
				  "DONTNEED_LOCKED: %s", strerror(errno));
			break;
		default:
			if (!pa)
				pa = 1;
			pb = mp;
			CHECK(mremap(map, (size_t)mp * PG, (size_t)pa * PG, 0) == map);
			break;
		}
		if (op == 0 || op == 3)
			for (unsigned p = pa; p < pb; p++)
				own[p] = 0;
		if (mr) {
			unsigned taken = 0;

			for (unsigned p = pa; p < pb; p++)
				taken += p >= 1 && p <= np;
			CHECK_OK(iovm_mr_query(mr, &info));
			if (info.valid_pages + taken > info.pages) {
				unsigned e_now = atomic_load(&fork_epoch);
				struct iovm_mr_info later;
				uint8_t stt;

				memset(a.buf, 0x5a, PG);
				stt = a17_copy(&a, mr_iova(mr, addr) - off + (uint64_t)(pb - 2) * PG, a.buf_iova, PG);
				fprintf(stderr,
					"# our mapping [%p, +%u pages), MR asked [%p, +%u); the region held: [%p, +%zu) "
					"(%llu of %llu valid at the get, monitored %d; the cache's hits +%llu misses +%llu "
					"raced +%llu over the get), now [%p, +%zu)\n",
					(void *)map, mp, (void *)addr, len, at_get.addr, at_get.len,
					(unsigned long long)at_get.valid_pages, (unsigned long long)at_get.pages, at_get.monitored,
					(unsigned long long)(rs1.hits - rs0.hits), (unsigned long long)(rs1.misses - rs0.misses),
					(unsigned long long)(rs1.raced - rs0.raced), info.addr,
					info.len);
				print_counters(stderr);
				for (unsigned y = 0; y < 1000; y++)
					sched_yield();
				CHECK_OK(iovm_mr_query(mr, &later));
				test_fail("rcache: held region, %u of its %llu pages taken away (%s of [%u,%u) of %u, "
					  "call returned), yet %llu valid: stale. Fork epoch at get %u, at the call %u, "
					  "now %u (odd: a fork in progress); 1000 yields later %llu valid; a device "
					  "read of taken page %u right after that query: status %u (1 success, 2 fault)",
					  taken, (unsigned long long)info.pages,
					  op == 0 ? "munmap" : op == 1 ? "mmap_fixed" : op == 2 ? "dontneed_locked" :
					  "mremap_shrink", pa, pb, mp, (unsigned long long)info.valid_pages, e_get, e_call, e_now,
					  (unsigned long long)later.valid_pages, pb - 2, stt);
				/* (unreached: test_fail exits; the region, for the report, is printed below) */
			}
			CHECK(1);
			atomic_fetch_add(&c_rc_held_taken, 1);
		}
		/* Anew at the same address, new words: a get must reach them whole. */
		unmap_own(map, mp, own);
		{
			uint8_t *q = mmap(map, (size_t)mp * PG, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

			if (q != map) { /* another thread took the address: nothing to compare */
				if (q != MAP_FAILED)
					munmap(q, (size_t)mp * PG);
				if (mr)
					CHECK_OK(iovm_rcache_put(RC, mr));
				atomic_fetch_add(&c_rc_lost_addr, 1);
				continue;
			}
			memset(own, 1, sizeof(own));
		}
		for (unsigned i = 0; i < mp; i++)
			pat(map + (size_t)i * PG, tag2, i);
		/* Sometimes a range that runs into a hole first: refused, never a stale hit. */
		if (test_rand(&rng) % 4 == 0) {
			/* (not unmapped: another thread could map there at once) */
			CHECK_OK(mprotect(map + (size_t)(mp - 1) * PG, PG, PROT_NONE));
			ret = iovm_rcache_get(RC, addr, (size_t)np * PG - off + PG, ACC, &mr2);
			CHECK_MSG(ret == -EFAULT, "rcache get over a page made PROT_NONE: %d (a stale region?)", ret);
			CHECK_OK(mprotect(map + (size_t)(mp - 1) * PG, PG, PROT_READ | PROT_WRITE));
			atomic_fetch_add(&c_rc_efault, 1);
		}
		ret = iovm_rcache_get(RC, addr, len, ACC, &mr2);
		CHECK_MSG(ret == 0, "rcache get anew: %d", ret);
		CHECK_OK(iovm_mr_query(mr2, &info));
		if ((uint8_t *)info.addr < map || (uint8_t *)info.addr + info.len > map + (size_t)mp * PG)
			atomic_fetch_add(&c_rc_wider, 1); /* beyond our mapping: pages outside ours may be gone */
		else if (info.valid_pages != info.pages && !known_on())
			atomic_fetch_add(&c_rc_get_faulted, 1); /* (the same: old region or refused pages) */
		else
			CHECK_MSG(info.valid && info.valid_pages == info.pages,
			  "rcache: a get of memory mapped anew handed out a region with %llu of %llu pages valid: "
			  "the old memory's region",
			  (unsigned long long)info.valid_pages, (unsigned long long)info.pages);
		memset(a.buf, 0x5a, len);
		{
			uint8_t stt = a17_copy(&a, mr_iova(mr2, addr), a.buf_iova, len);

			if (stt == IOVM_STATUS_PAGE_FAULT && !known_on())
				atomic_fetch_add(&c_rc_get_faulted, 1); /* (old region or refused: see above) */
			else
			CHECK_MSG(stt == IOVM_STATUS_SUCCESS && memcmp(a.buf, addr, len) == 0,
				  "rcache: a get after the memory was replaced (op %u, [%u,%u) of %u, hold %d) reads "
				  "status %u, %s: stale region",
				  op, pa, pb, np, hold, stt,
				  stt == IOVM_STATUS_SUCCESS ? "other bytes than the new memory's" : "a fault");
		}
		atomic_fetch_add(&c_rc_fresh, 1);
		CHECK_OK(iovm_rcache_put(RC, mr2));
		if (mr)
			CHECK_OK(iovm_rcache_put(RC, mr));
		unmap_own(map, mp, own);
	}
	a17q_close(&R, &a);
	return NULL;
}
