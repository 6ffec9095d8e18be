/* SPDX-License-Identifier: MIT */
/*
 * mp_region.h - a share's control region and heap in shared anonymous
 * memory, for the tests that drive the library's structures (mp_internal.h)
 * directly: no sockets or memfds around them, and children made with
 * fork() see the same region.
 */
#ifndef IOVM_TESTS_MP_REGION_H
#define IOVM_TESTS_MP_REGION_H

#include <sys/mman.h>

#include "mp/mp_internal.h"
#include "mp_util.h"

#define HEAP_SIZE (UINT64_C(1) << 20)

struct region {
	struct mp_space s;
	uint64_t ctl_size;
};

static inline void region_init(struct region *r)
{
	struct mp_layout l;
	struct mp_ctl *ctl;

	if (r->s.c) {
		munmap(r->s.c, r->ctl_size);
		munmap(r->s.heap, HEAP_SIZE);
	}
	memset(r, 0, sizeof(*r));
	r->ctl_size = mp_ctl_layout(HEAP_SIZE, &l);
	ctl = mmap(NULL, r->ctl_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(ctl != MAP_FAILED);
	r->s.heap = mmap(NULL, HEAP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(r->s.heap != MAP_FAILED);
	ctl->magic = MP_MAGIC;
	ctl->version = MP_VERSION;
	ctl->hdr_size = sizeof(*ctl);
	mp_ctl_layout_set(ctl, HEAP_SIZE);
	ctl->page_size = 4096;
	strcpy(ctl->name, "region");
	for (unsigned i = 0; i < MP_MAX_ZONES; i++)
		ctl->zones[i].grain = MP_NO_GRAIN;
	CHECK_OK(mp_lock_init(&ctl->lock));
	r->s.c = ctl;
	CHECK_OK(mp_heap_view(ctl, &r->s.h));
	mp_heap_init(&r->s.h);
	r->s.heap_size = HEAP_SIZE;
	r->s.page_size = 4096;
	r->s.pa = pa_make(MP_HEAP_PA);
	r->s.fork_gen = mp_fork_gen();
	pthread_mutex_init(&r->s.zone_view_lock, NULL);
}

#endif
