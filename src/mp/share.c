/* SPDX-License-Identifier: MIT */
/*
 * share.c - a context's share: made by iovm_share(), joined by mp_attach(),
 * left by mp_close(); the mapping of its memfds at whatever address this
 * process's kernel chooses; the shared heap as the context's DMA heap.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <iovm/mp.h>

#include "base/compiler.h"
#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/log.h"
#include "mem/mem.h"
#include "mp/mp.h"
#include "mp/mp_internal.h"
#include "os/hugepage.h"
#include "os/memfd.h"
#include "os/vaspace.h"
#include "phys/phys.h"

#define DEFAULT_HEAP_SIZE (UINT64_C(64) << 20)

int mp_name_check(const char *name)
{
	size_t n;

	if (!name)
		return err_inval("!name");
	n = strnlen(name, IOVM_SHARE_NAMESIZE);
	if (!n || n == IOVM_SHARE_NAMESIZE)
		return err_inval("the name has 1 to IOVM_SHARE_NAMESIZE-1 characters");
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '-'))
			return err_inval("the name has characters outside [A-Za-z0-9._-]");
	}
	return 0;
}

/* The heap's mapping is aligned to its own size (up to 1 GiB), as its PA is: blocks align alike in both. */
static uint64_t heap_align(uint64_t heap_size)
{
	return MAX(MIN(roundup_pow2(heap_size), SZ_1G), SZ_2M);
}

static struct mp_space *space_new(struct iovm_ctx *ctx, const char *name)
{
	struct mp_space *s = fi_calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->ctx = ctx;
	s->ctl_fd = s->heap_fd = s->conn_fd = -1;
	s->fork_gen = mp_fork_gen();
	strcpy(s->name, name);
	pthread_mutex_init(&s->zone_view_lock, NULL);
	pthread_mutex_init(&s->follow_lock, NULL);
	return s;
}

static void space_free(struct mp_space *s)
{
	/* A forked child closed them at the fork (mp_fd_own()): their numbers may be another's now. */
	if (s->fork_gen != mp_fork_gen())
		s->ctl_fd = s->heap_fd = s->conn_fd = -1;
	if (s->ctl_fd >= 0)
		mp_fd_close(s->ctl_fd);
	if (s->heap_fd >= 0)
		mp_fd_close(s->heap_fd);
	if (s->conn_fd >= 0)
		mp_fd_close(s->conn_fd);
	pthread_mutex_destroy(&s->zone_view_lock);
	pthread_mutex_destroy(&s->follow_lock);
	free(s);
}

/* Map the control region and the heap; neither goes to a forked child. */
static int map_share(struct mp_space *s)
{
	uint64_t align = heap_align(s->heap_size), map_len;
	void *ctl;
	int ret;

	ctl = fi_mmap(NULL, s->ctl_size, PROT_READ | PROT_WRITE, MAP_SHARED, s->ctl_fd, 0);
	if (ctl == MAP_FAILED)
		return -errno;
	map_len = align_up(s->heap_size, SZ_2M);
	s->map = os_va_reserve(map_len, align);
	if (!s->map) {
		ret = -ENOMEM;
		goto unmap_ctl;
	}
	s->map_len = map_len;
	/* No reservation: memory comes by parcels as blocks need it (parcels.c). */
	ret = os_va_commit_sparse(s->map, s->heap_size, s->heap_fd, 0);
	if (ret)
		goto release;
	if (madvise(ctl, s->ctl_size, MADV_DONTFORK) || madvise(s->map, map_len, MADV_DONTFORK)) {
		ret = -errno;
		goto release;
	}
	s->c = ctl;
	s->heap = s->map;
	return 0;

release:
	os_va_release(s->map, map_len);
	s->map = NULL;
unmap_ctl:
	munmap(ctl, s->ctl_size);
	return ret;
}

static void unmap_share(struct mp_space *s)
{
	if (s->map)
		os_va_release(s->map, s->map_len);
	if (s->c)
		munmap(s->c, s->ctl_size);
	s->map = NULL;
	s->c = NULL;
}

/*
 * A shared heap is one range of emulated PA, the same in every process of
 * the share: with host_pa=on, where every PA must be the host's, there is
 * none.
 */
static int host_pa_check(const struct iovm_ctx *ctx)
{
	if (!ctx->host_pa_only)
		return 0;
	return err_detail(-EOPNOTSUPP, IOVM_LOG_ERR,
			  "host_pa=on: a shared heap has emulated physical addresses, not the host's");
}

/* Put the heap on the bus and route the context's heap to it. */
static int go_live(struct mp_space *s)
{
	int ret = phys_window_add_shared(s->ctx->phys, s->heap, align_up(s->heap_size, SZ_2M), s->page_size,
					 s->pa);

	if (ret)
		return ret;
	s->on_bus = true;
	s->view = (struct mem_shared){
		.ops = &mp_mem_ops,
		.arg = s,
		.va = s->heap,
		.len = s->heap_size,
		.pa = s->pa,
		.page_size = s->page_size,
		.parcel_size = MP_PARCEL,
	};
	mp_tcache_init(s);
	ret = mem_share_set(s->ctx->mem, &s->view);
	if (ret) {
		mp_tcache_fini(s);
		phys_window_remove(s->ctx->phys, s->pa);
		s->on_bus = false;
		return ret;
	}
	s->ctx->mp = s;
	/* host_pa=auto: the context's other memory may be at host PAs; what the share hands out is not. */
	if (s->ctx->host_pa)
		log_warn("host-PA mode: the shared heap %s has emulated physical addresses, not the host's", s->name);
	return 0;
}

/* The heap's memfd: 2 MiB pages when asked, or when the machine has them free; else 4 KiB. */
static int make_heap(struct mp_space *s, uint64_t size, uint64_t page_size)
{
	uint64_t sizes[2] = { page_size, 0 };
	int ret = -EOPNOTSUPP;

	if (!page_size) {
		sizes[0] = SZ_2M;
		sizes[1] = SZ_4K;
	}
	for (unsigned i = 0; i < 2 && sizes[i]; i++) {
		uint64_t len = align_up(size, MAX(sizes[i], SZ_2M));

		/*
		 * Chosen for the caller: 2 MiB pages only when the pool has room
		 * for the whole heap now (they are taken as it is used, so that
		 * others may take them meanwhile: allocations then fail, ENOMEM).
		 */
		if (!page_size && sizes[i] == SZ_2M) {
			uint64_t avail = 0;

			if (os_hugepage_available(SZ_2M, &avail) || avail < len / SZ_2M)
				continue;
		}
		ret = os_memfd_create_sealed("iovm-share-heap", sizes[i], len, &s->heap_fd);
		if (ret)
			continue;
		mp_fd_own(s->heap_fd);
		/*
		 * Memory comes as the heap is used (parcels.c): the size is
		 * address space. One parcel's worth now, given back at once,
		 * says whether the pool has any: if not, the share fails here.
		 */
		if (fi_fallocate(s->heap_fd, 0, 0, (off_t)MP_PARCEL) ||
		    fi_fallocate(s->heap_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)MP_PARCEL)) {
			ret = -ENOMEM;
			mp_fd_close(s->heap_fd);
			s->heap_fd = -1;
			continue;
		}
		s->heap_size = len;
		s->page_size = sizes[i];
		return 0;
	}
	return ret;
}

static void ctl_init(struct mp_space *s, const struct iovm_share_params *p)
{
	struct mp_ctl *c = s->c;

	c->magic = MP_MAGIC;
	c->version = MP_VERSION;
	c->hdr_size = sizeof(*c);
	mp_ctl_layout_set(c, s->heap_size);
	c->heap_pa = pa_val(s->pa);
	c->page_size = s->page_size;
	c->owner_uid = (uint32_t)getuid();
	c->group = (int32_t)p->group;
	c->owner_pid = getpid();
	if (getrandom(&c->share_id, sizeof(c->share_id), GRND_NONBLOCK) != sizeof(c->share_id))
		c->share_id = ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s ^ (uint64_t)time(NULL);
	strcpy(c->name, s->name);
	for (unsigned i = 0; i < MP_MAX_ZONES; i++)
		c->zones[i].grain = MP_NO_GRAIN;
	for (unsigned i = 0; i < MP_MAX_DOMAINS; i++)
		c->domains[i].grain = MP_NO_GRAIN;
}

IOVM_API int iovm_share(struct iovm_ctx *ctx, const char *name, const struct iovm_share_params *params)
{
	err_enter();
	return mp_share(ctx, name, params);
}

int mp_share(struct iovm_ctx *ctx, const char *name, const struct iovm_share_params *params)
{
	struct iovm_share_params p = { .heap_size = DEFAULT_HEAP_SIZE, .group = -1 };
	struct mp_space *s = NULL;
	int ret;

	if (!ctx)
		return err_inval("!ctx");
	ret = mp_name_check(name);
	if (ret)
		return ret;
	ret = host_pa_check(ctx);
	if (ret)
		return ret;
	if (params) {
		p = *params;
		if (!p.heap_size)
			p.heap_size = DEFAULT_HEAP_SIZE;
	}
	if (p.heap_size < SZ_4K || p.heap_size > MP_HEAP_MAX)
		return err_inval("heap_size is 4 KiB to 1 TiB");
	if (p.page_size && p.page_size != SZ_4K && p.page_size != SZ_2M)
		return err_inval("page_size is 0, 4 KiB or 2 MiB");
	if (p.group < -1 || p.group > INT32_MAX)
		return err_inval("group is -1 or a gid");
	if (ctx->mp)
		return err_detail(-EBUSY, IOVM_LOG_DEBUG, "the context is shared or attached already");
	s = space_new(ctx, name);
	if (!s)
		return -ENOMEM;
	s->owner = true;
	s->pa = pa_make(MP_HEAP_PA);
	ret = make_heap(s, p.heap_size, p.page_size);
	if (ret) {
		ret = err_detail(ret, IOVM_LOG_ERR, "no memory for a shared heap of %" PRIu64 " bytes", p.heap_size);
		goto free_space;
	}
	{
		struct mp_layout l;

		s->ctl_size = mp_ctl_layout(s->heap_size, &l);
	}
	ret = os_memfd_create_sealed("iovm-share-ctl", SZ_4K, s->ctl_size, &s->ctl_fd);
	if (ret)
		goto free_space;
	mp_fd_own(s->ctl_fd);
	ret = map_share(s);
	if (ret)
		goto free_space;
	ctl_init(s, &p);
	ret = mp_lock_init(&s->c->lock);
	if (ret)
		goto unmap;
	ret = mp_heap_view(s->c, &s->h);
	if (ret)
		goto unmap;
	s->h.mem = s->heap;
	s->h.fd = s->heap_fd;
	mp_heap_init(&s->h);
	ret = mp_slot_take(s);
	if (ret)
		goto unmap;
	ret = mp_server_start(s);
	if (ret)
		goto unmap;
	ret = go_live(s);
	if (ret)
		goto stop;
	log_info("share %s: %" PRIu64 " MiB of %" PRIu64 " KiB pages at PA %#" PRIx64, name, s->heap_size >> 20,
		 s->page_size >> 10, pa_val(s->pa));
	return 0;

stop:
	mp_server_stop(s);
unmap:
	unmap_share(s);
free_space:
	space_free(s);
	return ret;
}

/* Check what the owner's region says against what this process can verify. */
static int check_region(struct mp_space *s)
{
	uint64_t ctl_file, heap_file;
	int ret;

	ret = os_memfd_sealed_size(s->ctl_fd, &ctl_file);
	if (!ret)
		ret = os_memfd_sealed_size(s->heap_fd, &heap_file);
	if (ret)
		return err_detail(-EPROTO, IOVM_LOG_ERR, "the share's memory is not sealed against shrinking");
	if (s->ctl_size < sizeof(struct mp_ctl) || s->ctl_size > ctl_file || !s->heap_size ||
	    s->heap_size > heap_file || s->heap_size > MP_HEAP_MAX || !is_aligned(s->heap_size, SZ_2M))
		return err_detail(-EPROTO, IOVM_LOG_ERR, "the share's sizes disagree with its files");
	return 0;
}

int mp_attach(struct iovm_ctx *ctx, const char *name)
{
	struct mp_space *s = NULL;
	int ret;

	ret = mp_name_check(name);
	if (!ret)
		ret = host_pa_check(ctx);
	if (ret)
		return ret;
	s = space_new(ctx, name);
	if (!s)
		return -ENOMEM;
	ret = mp_connect(s, name);
	if (ret)
		goto free_space;
	ret = check_region(s);
	if (ret)
		goto free_space;
	ret = map_share(s);
	if (ret)
		goto free_space;
	ret = mp_heap_view(s->c, &s->h);
	if (!ret && (s->c->heap_size != s->heap_size || s->c->heap_pa != MP_HEAP_PA ||
		     (s->c->page_size != SZ_4K && s->c->page_size != SZ_2M)))
		ret = err_detail(-EPROTO, IOVM_LOG_ERR, "the share's control region disagrees with its owner");
	if (ret)
		goto unmap;
	s->h.mem = s->heap;
	s->h.fd = s->heap_fd;
	s->page_size = s->c->page_size;
	s->pa = pa_make(s->c->heap_pa);
	ret = mp_slot_take(s);
	if (ret)
		goto unmap;
	ret = go_live(s);
	if (ret)
		goto leave;
	return 0;

leave:
	mp_slot_leave(s);
unmap:
	unmap_share(s);
free_space:
	space_free(s);
	return ret;
}

void mp_close(struct iovm_ctx *ctx)
{
	struct mp_space *s = ctx->mp;

	if (!s)
		return;
	mem_share_set(ctx->mem, NULL);
	ctx->mp = NULL;
	if (s->fork_gen != mp_fork_gen()) {
		/* A forked child: none of it was copied (MADV_DONTFORK), and the server thread is the parent's. */
		mp_tcache_fini(s);
		mp_server_forget(s);
		os_va_release(s->map, s->map_len);
		space_free(s);
		return;
	}
	if (s->on_bus)
		phys_window_remove(ctx->phys, s->pa);
	/* Not waited for, nor following, once its subscribers are gone. */
	mp_follow_stop(s);
	mp_server_stop(s);
	/* The caches' blocks are this slot's: leaving frees them with the rest. */
	mp_tcache_fini(s);
	mp_slot_leave(s);
	unmap_share(s);
	space_free(s);
}

/* ---- the public calls on a share ---- */

int mp_space_of(struct iovm_ctx *ctx, struct mp_space **out)
{
	if (!ctx)
		return err_inval("!ctx");
	if (!ctx->mp)
		return err_detail(-ENOENT, IOVM_LOG_DEBUG, "the context is neither shared nor attached");
	if (ctx->mp->fork_gen != mp_fork_gen())
		return err_detail(-EPERM, IOVM_LOG_DEBUG, "a forked child may not use its parent's share: attach");
	*out = ctx->mp;
	return 0;
}

IOVM_API int iovm_share_info(struct iovm_ctx *ctx, struct iovm_share_info *info)
{
	struct mp_space *s = NULL;
	struct mp_ctl *c;
	int ret;

	err_enter();
	if (!info)
		return err_inval("!info");
	ret = mp_space_of(ctx, &s);
	if (ret)
		return ret;
	c = s->c;
	ret = mp_lock(&s->h);
	if (ret)
		return ret;
	memset(info, 0, sizeof(*info));
	strcpy(info->name, s->name);
	info->owner = s->owner;
	info->owner_pid = c->owner_pid;
	info->heap_pa = IOVM_PA(pa_val(s->pa));
	info->heap_va = s->heap;
	info->heap_size = s->heap_size;
	info->heap_free = c->free_grains << MP_GRAIN_SHIFT;
	info->page_size = s->page_size;
	info->blocks = c->nr_blocks;
	/*
	 * Blocks in threads' caches are free to their processes, not live
	 * allocations; blocks kept for shared domains are neither; a block
	 * being trimmed is free memory on its way to the kernel.
	 */
	for (uint64_t g = 0; g < c->ngrains; g += UINT64_C(1) << (s->h.state[g] & MP_ORDER_MASK)) {
		uint8_t l = lender_get(&s->h.lender[g]);

		if (!(s->h.state[g] & MP_ALLOCATED) ||
		    (l != MP_LENDER_CACHED && l != MP_LENDER_DOMAINS && l != MP_LENDER_TRIM))
			continue;
		info->blocks--;
		if (l == MP_LENDER_TRIM)
			info->heap_free += MP_GRAIN << (s->h.state[g] & MP_ORDER_MASK);
		else if (l == MP_LENDER_CACHED)
			info->cached += MP_GRAIN << (s->h.state[g] & MP_ORDER_MASK);
		else
			info->domain_held += MP_GRAIN << (s->h.state[g] & MP_ORDER_MASK);
	}
	info->heap_free += info->cached;
	for (unsigned i = 0; i < MP_MAX_PROCS; i++)
		info->processes += c->slots[i].state == MP_SLOT_LIVE;
	info->zones = c->nr_zones;
	info->attaches = atomic_load_explicit(&c->attaches, memory_order_relaxed);
	info->recoveries = c->recoveries;
	info->reaped = c->reaped;
	info->reaped_blocks = c->reaped_blocks;
	mp_unlock(&s->h);
	return 0;
}

IOVM_API int iovm_share_reap(struct iovm_ctx *ctx)
{
	struct mp_space *s = NULL;
	int ret;

	err_enter();
	ret = mp_space_of(ctx, &s);
	if (ret)
		return ret;
	return mp_reap_dead(&s->h);
}

IOVM_API int iovm_share_check(struct iovm_ctx *ctx)
{
	struct mp_space *s = NULL;
	struct mp_ctl *c;
	int ret;

	err_enter();
	ret = mp_space_of(ctx, &s);
	if (ret)
		return ret;
	c = s->c;
	ret = mp_lock(&s->h);
	if (ret)
		return ret;
	ret = mp_heap_check(&s->h);
	for (unsigned i = 0; !ret && i < MP_MAX_ZONES; i++) {
		struct mp_zone_rec *z = &c->zones[i];
		unsigned order;
		uint8_t owner;

		if (z->used && (mp_heap_block(&s->h, z->grain, &order, &owner) || owner != MP_OWNER_KEEP ||
				z->len > (MP_GRAIN << order)))
			ret = err_detail(-EUCLEAN, IOVM_LOG_ERR, "zone '%.32s' has no block of its own", z->name);
	}
	/* Every allocated block is held by a live slot, or by the share. */
	for (uint64_t g = 0; !ret && g < c->ngrains; g += UINT64_C(1) << (s->h.state[g] & MP_ORDER_MASK)) {
		uint8_t o = s->h.owner[g];

		if ((s->h.state[g] & MP_ALLOCATED) && o != MP_OWNER_KEEP &&
		    (o >= MP_MAX_PROCS || c->slots[o].state != MP_SLOT_LIVE))
			ret = err_detail(-EUCLEAN, IOVM_LOG_ERR,
					 "the block at grain %" PRIu64 " belongs to slot %u, which no process holds", g,
					 (unsigned)o);
	}
	mp_unlock(&s->h);
	return ret;
}
