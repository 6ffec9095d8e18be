/* SPDX-License-Identifier: MIT */
/*
 * mp_internal.h - what the processes of one share have in common: the
 * control region (a memfd every process maps, at its own address) and the
 * structures in it.
 *
 * Nothing in the control region is a pointer: every reference is an offset
 * or an index, so that each process reads it at whatever address its kernel
 * mapped it.
 *
 * Locking: one robust, process-shared mutex, mp_ctl.lock, guards every field
 * below it that does not say otherwise. Any process may die holding it; the
 * next one to take it repairs what the dead one left (heap.c says how, and
 * why one store commits each change). The fields above it are written once,
 * by the owner, before any other process can attach.
 */
#ifndef IOVM_MP_INTERNAL_H
#define IOVM_MP_INTERNAL_H

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <iovm/mem.h>
#include <iovm/mp.h>

#include "base/addr.h"
#include "base/crash.h"
#include "base/tlscache.h"
#include "mem/mem.h"
#include "phys/phys.h"

/* futex(2) on a word of shared memory (not private: other processes wait on it too). */
static inline long mp_futex(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *timeout)
{
	return syscall(SYS_futex, (uint32_t *)word, op, val, timeout, NULL, 0);
}

#define MP_MAGIC UINT64_C(0x31706d2d6d766f69) /* "iovm-mp1" */
#define MP_VERSION 7

/* Processes attached at once, the owner included. */
#define MP_MAX_PROCS 128
/* Named zones of one share. */
#define MP_MAX_ZONES 256
/* Shared domains of one share. */
#define MP_MAX_DOMAINS 32

/*
 * The heap is cut in grains of 64 bytes, a cache line: the smallest block.
 * Blocks are 2^order grains, aligned to their size (a buddy allocator), so
 * a block never crosses a boundary as large as itself, in VA or in PA.
 */
#define MP_GRAIN_SHIFT 6
#define MP_GRAIN (UINT64_C(1) << MP_GRAIN_SHIFT)
/* Orders 0..MP_MAX_ORDER: blocks up to 2^34 grains, 1 TiB. */
#define MP_MAX_ORDER 34
/* Grain indexes fit in 32 bits, with 0 meaning "none" in the free lists. */
#define MP_MAX_GRAINS ((UINT64_C(1) << 32) - 1)

/*
 * A grain's state byte: at the first grain of a block, MP_BLOCK, the order
 * and whether it is allocated; 0 inside a block. The blocks tile the heap:
 * a walk from grain 0 that jumps by each block's size meets every block
 * start and nothing else. That walk is the truth; the free lists are a
 * cache of it, rebuilt after a crash.
 */
#define MP_BLOCK 0x80u
#define MP_ALLOCATED 0x40u
#define MP_ORDER_MASK 0x3fu

/*
 * The heap's memory is committed by parcels of 2 MiB, as blocks are
 * allocated in them (fallocate() of the memfd, whose mappings reserve
 * nothing), and given back (a hole punched) once free (parcels.c).
 */
#define MP_PARCEL_SHIFT 21
#define MP_PARCEL (UINT64_C(1) << MP_PARCEL_SHIFT)
/* The order of a block of one parcel. */
#define MP_PARCEL_ORDER (MP_PARCEL_SHIFT - MP_GRAIN_SHIFT)
/* A parcel's state byte (mp_ctl.off_parcel). */
enum mp_parcel_state {
	MP_PARCEL_UNCOMMITTED = 0, /* no memory behind it: no block of it is allocated */
	MP_PARCEL_COMMITTED,       /* memory behind it */
	MP_PARCEL_RELEASING,       /* in the block being trimmed: followers unmap it, then the hole */
};
/* Free committed parcels a trim leaves: allocation and free of a few MiB in turn commit nothing. */
#define MP_TRIM_KEEP 2

/* The owner byte of an allocated block: the process slot that holds it, or: */
#define MP_OWNER_KEEP 0xffu /* belongs to the share: survives its allocator (zones, IOVM_DMA_KEEP) */
static_assert(MP_MAX_PROCS < MP_OWNER_KEEP, "slot numbers fit in the owner byte");

/*
 * The lender byte of an allocated block. A block a client maps for a
 * device in another process is lent to the device's process: its owner
 * byte becomes the device's slot, its lender byte the owner it had, so
 * that nobody frees it while a device may reach it (a free is -EBUSY),
 * the client's death does not free it (the device unmaps first), and the
 * device's death gives it back. Lending and giving back are two stores;
 * a lender equal to the owner is a half-done one, undone by the repair.
 */
#define MP_LENDER_NONE 0xfeu /* not lent */
#define MP_LENDER_GONE 0xfdu /* lent by a process that died since: freed when given back */
/*
 * Two more values a block's owner process sets without the lock, each by
 * a compare-and-swap from NONE, so that of two processes freeing one
 * block at once (a bug of theirs) one wins and the other is told:
 */
#define MP_LENDER_CACHED 0xfcu  /* freed into its owner's thread cache (tcache.c): allocated in the heap */
#define MP_LENDER_FREEING 0xfbu /* being freed under the lock; meaningless once the block is free */
/*
 * And one the free sets under the lock: a block freed (by its process, or
 * by the reap of a process that died) while a shared domain maps a page
 * of it is not freed but handed to the share (owner MP_OWNER_KEEP), so
 * that no device writes into memory given to someone else; the last unmap
 * of its pages, or the end of the last domain that maps them, frees it
 * (domain.c). Set before the owner; a repair finishes a half-done one.
 */
#define MP_LENDER_DOMAINS 0xfau
static_assert(MP_MAX_PROCS < MP_LENDER_DOMAINS, "slot numbers fit in the lender byte");
/* A free block taken by a trim (parcels.c), owner MP_OWNER_KEEP: freed when its holes are punched. */
#define MP_LENDER_TRIM 0xf9u

static inline uint8_t lender_get(const uint8_t *l)
{
	return __atomic_load_n(l, __ATOMIC_ACQUIRE);
}

static inline void lender_set(uint8_t *l, uint8_t v)
{
	__atomic_store_n(l, v, __ATOMIC_RELEASE);
}

static inline bool lender_cas(uint8_t *l, uint8_t from, uint8_t to)
{
	return __atomic_compare_exchange_n(l, &from, to, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

enum mp_slot_state {
	MP_SLOT_FREE = 0,
	MP_SLOT_LIVE,  /* a process is attached through it */
	MP_SLOT_DEAD,  /* its process died; its blocks are being freed */
};

/* One attached process. */
struct mp_slot {
	uint32_t state;       /* enum mp_slot_state */
	int32_t pid;
	uint64_t start_time;  /* /proc/PID/stat field 22: tells a reused pid apart */
	uint32_t uid;
	uint32_t unused;
};

#define MP_NO_GRAIN UINT64_MAX

struct mp_zone_rec {
	uint8_t used;         /* the zone exists: set last at creation, cleared first at freeing */
	char name[IOVM_ZONE_NAMESIZE];
	uint64_t grain;       /* first grain of its block, or MP_NO_GRAIN */
	uint64_t len;         /* bytes asked */
	uint64_t align;
	uint32_t flags;
};

/*
 * A shared domain (domain.c): a name, one block of the heap held by the
 * share (its control block, IOVA bitmap and page-table pool), and which
 * processes have it open. A record with no process holds no block: its
 * maker sets its own bit last, whoever clears the last bit frees the
 * block, and the repair and the reap free the block of a record left with
 * none (mp_domains_tidy()).
 */
struct mp_domain_rec {
	uint64_t views[MP_MAX_PROCS / 64]; /* a bit per slot that has it open */
	uint64_t grain;       /* first grain of its block, or MP_NO_GRAIN */
	char name[IOVM_ZONE_NAMESIZE];
};

struct mp_ctl {
	/* Written by the owner before the share is published; read-only afterwards. */
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;      /* sizeof(struct mp_ctl): both sides built alike */
	uint64_t ctl_size;      /* bytes of this region */
	uint64_t heap_size;     /* bytes of the heap memfd */
	uint64_t heap_pa;       /* PA of the heap's first byte, the same in every process */
	uint64_t page_size;     /* of the heap's pages */
	uint64_t ngrains;       /* heap_size / MP_GRAIN */
	uint64_t off_state;     /* uint8_t[ngrains] */
	uint64_t off_owner;     /* uint8_t[ngrains] */
	uint64_t off_lender;    /* uint8_t[ngrains] */
	uint64_t off_next;      /* uint32_t[ngrains]: free list links, grain + 1; 0: none */
	uint64_t off_prev;      /* uint32_t[ngrains] */
	uint64_t off_maps;      /* uint32_t[mp_heap_pages()]: shared domains' mappings of each heap page (domain.c) */
	uint64_t off_parcel;      /* uint8_t[nparcels]: enum mp_parcel_state of each parcel */
	uint64_t nparcels;         /* heap_size / MP_PARCEL, rounded up */
	uint32_t owner_uid;
	int32_t group;          /* may attach besides owner_uid; -1: none */
	int32_t owner_pid;
	uint32_t unused;
	uint64_t share_id;      /* random: tells this share from another of the same name */
	char name[IOVM_SHARE_NAMESIZE];

	pthread_mutex_t lock;   /* robust, process-shared */

	uint64_t free_head[MP_MAX_ORDER + 1]; /* grain + 1 of the first free block of each order; 0: none */
	uint64_t free_grains;
	uint64_t nr_blocks;     /* allocated blocks */
	/* A zone being made or freed (index + 1): its record says whether its block should stay. */
	uint32_t zone_pending;
	uint32_t nr_zones;
	uint64_t recoveries;    /* times a process took the lock from a dead holder */
	uint64_t reaped;        /* dead processes whose memory was freed */
	uint64_t reaped_blocks;
	uint64_t domains_held;  /* a block may be MP_LENDER_DOMAINS: set first, cleared by a sweep that finds none */
	_Atomic uint64_t attaches; /* every attachment ever; read without the lock */
	/*
	 * Sections (parcels.c). Under the lock but heap_seq (written under
	 * it, read without: a futex), and the followers' words, each its
	 * process's: heap_ack (a futex: the last heap_seq it applied) and
	 * heap_follows (it has memory-event subscribers, and answers).
	 */
	_Atomic uint32_t heap_seq;     /* bumped at each change of a parcel's state */
	uint32_t trimmer;              /* slot + 1 of the process trimming trim_grain; 0: none */
	uint64_t trim_grain;           /* the block being trimmed, or MP_NO_GRAIN */
	uint64_t committed_parcels, commits, releases;
	_Atomic uint32_t heap_ack[MP_MAX_PROCS];
	_Atomic uint8_t heap_follows[MP_MAX_PROCS];
	struct mp_slot slots[MP_MAX_PROCS];
	struct mp_zone_rec zones[MP_MAX_ZONES];
	struct mp_domain_rec domains[MP_MAX_DOMAINS];
};

/* A process's view of the control region: pointers into its own mapping. */
struct mp_heap {
	struct mp_ctl *c;
	uint8_t *state;
	uint8_t *parcel;  /* mp_ctl.off_parcel */
	int fd;         /* the heap's memfd, to commit and punch; -1: none (the crash tests' region) */
	uint8_t *owner;
	uint8_t *lender;
	uint32_t *next;
	uint32_t *prev;
	/*
	 * For each 4 KiB page of the heap, how many IOVA pages of shared
	 * domains map it, all domains together: the sum of each domain's
	 * counts (domain.c), which the repair rebuilds. Written under the
	 * lock, read without it (atomically): a free looks here first.
	 */
	uint32_t *maps;
	uint8_t *mem;   /* this process's mapping of the heap (shared domains' records point into it); NULL: none */
};

/*
 * The PA of every share's heap, the same in every process: in the emulated
 * range of both modes (from PHYS_EMU_LOW, or PHYS_EMU_HIGH in host-PA
 * mode), far above where a process's own banks go (they fill it from the
 * bottom), so that no process has memory of its own there.
 */
#define MP_HEAP_PA ((UINT64_C(1) << 47) + (UINT64_C(1) << 46))
/* The largest heap: 1 TiB, far below the top of the PA space. */
#define MP_HEAP_MAX (UINT64_C(1) << 40)
static_assert(MP_HEAP_PA + MP_HEAP_MAX <= PHYS_WINDOWS_BASE, "a share's heap below the windows' PAs");

struct iovm_ctx;
struct mp_server;

/* This process's side of a share: what its context holds (ctx->mp). */
struct mp_space {
	struct iovm_ctx *ctx;
	bool owner;              /* made the share (iovm_share()) */
	unsigned fork_gen;       /* mp_fork_gen() when made: a forked child is not this process */
	char name[IOVM_SHARE_NAMESIZE];
	int ctl_fd, heap_fd;
	struct mp_ctl *c;        /* the control region, mapped MAP_SHARED */
	struct mp_heap h;
	uint8_t *heap;           /* the heap, mapped MAP_SHARED, aligned to heap_align */
	void *map;               /* the reservation the heap is mapped into */
	uint64_t map_len;
	uint64_t ctl_size, heap_size, page_size;
	pa_t pa;
	uint8_t slot;            /* this process's slot in mp_ctl.slots */
	bool on_bus;             /* the heap is a shared window of ctx->phys */
	int conn_fd;             /* attached: the connection to the owner; -1 */
	struct mp_server *srv;   /* owner: the server of attachments */
	struct mem_shared view;  /* what the context's mem routes to */
	/* The follower (parcels.c): applies parcel changes to this process's memory-event subscribers. */
	pthread_t follower;
	bool follower_running;
	_Atomic bool follower_stop;
	pthread_mutex_t follow_lock; /* serializes this process's applying and its answers */
	uint32_t followed_seq;   /* under follow_lock: the heap_seq this process's subscribers have */
	_Atomic uint32_t waited_seq; /* the last heap_seq every follower was waited for at */
	/* The thread caches of small blocks (tcache.c); registered while live. */
	struct tls_owner tc_owner;
	bool tc_registered;
	/* The zones as this process sees them, by record index: what iovm_zone_*() return. */
	pthread_mutex_t zone_view_lock;
	struct iovm_zone zones[MP_MAX_ZONES]; /* under zone_view_lock, and the share's lock to fill */
};

/*
 * Crash points, between the stores of every change to the region
 * (base/crash.h): a child process armed with mp_crash_countdown dies at
 * the n-th point it passes, holding the lock (tests/mp/test_mp_crash.c).
 */
#define MP_CRASH_EXIT CRASH_EXIT
#define mp_crash_countdown crash_countdown
#define mp_crash_point() crash_point()

/* ---- heap.c: the buddy allocator of the shared heap ---- */

/* Where the per-grain arrays of a control region go. */
struct mp_layout {
	uint64_t off_state, off_owner, off_lender, off_next, off_prev, off_maps, off_parcel;
	uint64_t size; /* of the region */
};

/* The heap's 4 KiB pages: what mp_heap.maps counts. */
static inline uint64_t mp_heap_pages(uint64_t heap_size)
{
	return (heap_size + 4095) / 4096;
}

/* mp_ctl_layout() - the layout of the control region for a heap of @heap_size bytes; its size. */
uint64_t mp_ctl_layout(uint64_t heap_size, struct mp_layout *l);
/* mp_ctl_layout_set() - write @heap_size's layout into @c. */
void mp_ctl_layout_set(struct mp_ctl *c, uint64_t heap_size);
/* mp_heap_view() - @h for the region at @c, after checking its offsets against its size. */
int mp_heap_view(struct mp_ctl *c, struct mp_heap *h);
/* mp_order_for() - the order of the block that holds @size bytes aligned to @align. */
unsigned mp_order_for(uint64_t size, uint64_t align);
/* mp_heap_init() - tile a fresh heap with free blocks. Before anyone can attach. */
void mp_heap_init(struct mp_heap *h);

/* The functions below need mp_ctl.lock (mp_lock()). */

/*
 * mp_heap_alloc() - a block of at least @size bytes aligned to @align (a
 * power of two), held by @owner (a slot or MP_OWNER_KEEP); its first grain
 * in @grain, and in *@record (when given) before the store that commits
 * it: a record in the region then names the block whenever it exists.
 * -ENOMEM.
 */
int mp_heap_alloc(struct mp_heap *h, uint64_t size, uint64_t align, uint8_t owner, uint64_t *record,
		  uint64_t *grain);
/*
 * mp_heap_free() - free the block starting at @grain; -EINVAL when no
 * allocated block starts there (or it was freed already), -EBUSY when it
 * is lent to a device. One a shared domain maps is handed to the share
 * instead (MP_LENDER_DOMAINS), freed by mp_heap_free_held() once unmapped.
 */
int mp_heap_free(struct mp_heap *h, uint64_t grain);
/* mp_heap_unalloc() - free the block at @grain that nobody used, as if never allocated (mapped or not). */
int mp_heap_unalloc(struct mp_heap *h, uint64_t grain);
/* mp_heap_free_held() - free the MP_LENDER_DOMAINS block at @grain, which no domain maps now; -EINVAL. */
int mp_heap_free_held(struct mp_heap *h, uint64_t grain);
/* mp_heap_block_any() - the block, free or allocated, holding grain @g: its first grain, order, whether allocated. */
int mp_heap_block_any(const struct mp_heap *h, uint64_t g, uint64_t *first, unsigned *order, bool *allocated);
/* mp_heap_lend() - lend the allocated block at @grain to slot @to; -EINVAL, -EBUSY when lent already. */
int mp_heap_lend(struct mp_heap *h, uint64_t grain, uint8_t to);
/* mp_heap_give_back() - end a loan: the block to its lender, or freed when its lender died. */
int mp_heap_give_back(struct mp_heap *h, uint64_t grain);
/* mp_heap_block_of() - the allocated block holding grain @g (its first grain and order); -ENOENT. */
int mp_heap_block_of(const struct mp_heap *h, uint64_t g, uint64_t *first, unsigned *order);
/* mp_heap_block() - the order of the allocated block at @grain and its owner; -EINVAL. */
int mp_heap_block(const struct mp_heap *h, uint64_t grain, unsigned *order, uint8_t *owner);
/*
 * mp_heap_free_owned() - what slot @owner held goes: its blocks are freed,
 * those lent to it given back, and those it lent marked so that their
 * return frees them. Returns the blocks freed.
 */
uint64_t mp_heap_free_owned(struct mp_heap *h, uint8_t owner);
/*
 * mp_heap_repair() - after a holder of the lock died: clear what the walk
 * does not reach, rebuild the free lists and counts. -EUCLEAN when the
 * blocks do not tile the heap (which no single lost store can cause).
 */
int mp_heap_repair(struct mp_heap *h);
/*
 * mp_heap_check() - whether the structure is whole: blocks tile the heap,
 * every free block is on the list of its order once, buddies of equal
 * order are not both free, counts agree. -EUCLEAN with a detail.
 */
int mp_heap_check(const struct mp_heap *h);

/* ---- lock.c: the robust lock ---- */

int mp_lock_init(pthread_mutex_t *l);
/*
 * mp_lock() - take mp_ctl.lock; when its holder died, repair the region
 * (heap, pending zone) first. -ENOTRECOVERABLE when a repair failed before.
 */
int mp_lock(struct mp_heap *h);
void mp_unlock(struct mp_heap *h);
/*
 * mp_lock_plain() - take another robust, process-shared lock that guards
 * nothing a dead holder can leave half done (its EOWNERDEAD is consistent
 * at once); 0, or a negative errno.
 */
int mp_lock_plain(pthread_mutex_t *l);
/* mp_repair() - what mp_lock() does after a holder died; needs the lock. */
int mp_repair(struct mp_heap *h);

/* ---- procs.c: the processes of a share ---- */

/* A counter a pthread_atfork() child handler bumps: compare to tell a forked child. */
unsigned mp_fork_gen(void);
/*
 * mp_fd_own() - a descriptor of the mp layer: a forked child closes it
 * (at fork, before anything else runs). mp_fd_close() closes one; in a
 * forked child, which no longer has them, they must not be closed again.
 */
void mp_fd_own(int fd);
void mp_fd_close(int fd);
/*
 * fdpass.c. mp_send_fds(): @buf with @nr_fds (at most 2) descriptors
 * beside it, as sendmsg() (MSG_NOSIGNAL). mp_recv_fd(): a message into
 * @buf, and the descriptor that came with it in *@fd (-1: none; owned,
 * close-on-exec), as recvmsg() with @flags; a message cut off (more than
 * one descriptor, or longer than @len) is -1 with errno EPROTO, and what
 * came is closed.
 */
ssize_t mp_send_fds(int sock, const void *buf, size_t len, const int *fds, unsigned nr_fds);
ssize_t mp_recv_fd(int sock, void *buf, size_t len, int flags, int *fd);
/* mp_proc_start() - the start time of @pid (in clock ticks since boot), and whether it is a zombie. */
int mp_proc_start(pid_t pid, uint64_t *start, bool *zombie);
/* mp_slot_take() - a slot for this process; -EUSERS when none is free after a reap. Takes the lock. */
int mp_slot_take(struct mp_space *s);
/* mp_slot_leave() - free what this process holds but IOVM_DMA_KEEP memory, and its slot. Takes the lock. */
void mp_slot_leave(struct mp_space *s);
/* mp_reap_pid() - free the slots of the dead process @pid started at @start. Takes the lock. */
int mp_reap_pid(struct mp_heap *h, pid_t pid, uint64_t start);
/* mp_slot_gone() - whether slot @sl's process is dead (or its reap was cut short): reap it. */
bool mp_slot_gone(const struct mp_slot *sl);
/*
 * mp_slot_exited() - the same, cheaply, for a hot path: one kill(pid, 0),
 * no /proc. A zombie, or a pid taken by another process since, reads as
 * alive: the owner's reap, or mp_slot_gone(), finds those.
 */
bool mp_slot_exited(const struct mp_slot *sl);
/* mp_reap_slot() - free what slot @i holds, then the slot (DEAD while it runs). Needs the lock. */
void mp_reap_slot(struct mp_heap *h, unsigned i);
/* mp_reap_dead() - free the slots of every process that died. Takes the lock. */
int mp_reap_dead(struct mp_heap *h);

/* ---- server.c: the owner's server of attachments ---- */

/* The abstract socket address of share @name: "\0iovm-share/NAME"; its length in @len. */
int mp_sock_addr(const char *name, void *sun, unsigned *len);
/* The same for another kind of socket: @fmt has one %s, the name. */
int mp_sock_addr_fmt(const char *fmt, const char *name, void *sun, unsigned *len);
struct ucred;
/* Whether the peer on @fd may join the share: the owner's user, or a member of its group; -EACCES. */
int mp_peer_allowed(const struct mp_ctl *c, int fd, struct ucred *cred);
/* What the owner sends first, with the control and heap memfds when status is 0. */
struct mp_hello {
	int32_t status;     /* 0 or a negative errno: why not */
	uint32_t version;   /* MP_VERSION */
	uint32_t hdr_size;  /* sizeof(struct mp_ctl) */
	uint32_t unused;
	uint64_t ctl_size;
	uint64_t heap_size;
};
int mp_server_start(struct mp_space *s);
void mp_server_stop(struct mp_space *s);
/* mp_server_forget() - in a forked child: the parent's server's memory, without its thread or descriptors. */
void mp_server_forget(struct mp_space *s);

/* ---- dma.c, zone.c: the shared heap behind the context's iovm_dma_*() and iovm_zone_*() ---- */

extern const struct mem_shared_ops mp_mem_ops;
/* -EOPNOTSUPP for page-size or node flags the shared heap cannot honour. */
int mp_placement_check(const struct mp_space *s, uint32_t flags);
int mp_zone_reserve(void *arg, const char *name, size_t size, size_t align, uint32_t flags,
		    const struct iovm_zone **zone);
int mp_zone_lookup(void *arg, const char *name, const struct iovm_zone **zone);
int mp_zone_free(void *arg, const struct iovm_zone *zone);
int mp_zone_walk(void *arg, int (*fn)(void *fn_arg, const struct iovm_zone *z), void *fn_arg);

/* ---- tcache.c: per-thread caches of small blocks ---- */

/* Blocks up to 4 KiB (order 6) are cached. */
#define MP_TCACHE_ORDERS 7
void mp_tcache_init(struct mp_space *s);
void mp_tcache_fini(struct mp_space *s);
/* A block of @order from the calling thread's cache, refilled under the lock when empty; NULL: none. */
void *mp_tcache_alloc(struct mp_space *s, unsigned order);
/* mp_tcache_drain() - give the calling thread's cached blocks back; whether any were. */
bool mp_tcache_drain(struct mp_space *s);
/* Free @grain into the calling thread's cache; 1 when it was not this process's to cache (lock path). */
int mp_tcache_free(struct mp_space *s, uint64_t grain);

/* ---- parcels.c: memory committed as the heap is used, followed by every process ---- */

/*
 * mp_parcel_commit() - memory behind every parcel of the block at @grain of
 * @order; -ENOMEM when the kernel has none (hugepages). Needs the lock.
 */
int mp_parcel_commit(struct mp_heap *h, uint64_t grain, unsigned order);
/* mp_follow_seq() - heap_seq now: read under the lock after a change, for mp_follow_wait(). */
uint32_t mp_follow_seq(const struct mp_space *s);
/*
 * mp_follow_wait() - after a change this process made or saw (heap_seq
 * @seq): its own subscribers brought up to date, then every other live
 * follower waited for until it answered @seq. Without the lock, outside
 * memory-event callbacks.
 */
void mp_follow_wait(struct mp_space *s, uint32_t seq);
/* mp_parcel_trim() - past MP_TRIM_KEEP free committed parcels, give a free block's back. Takes the lock. */
void mp_parcel_trim(struct mp_space *s);
/* mp_parcel_trim_due() - whether a trim could find anything now (O(1)); a free asks it under the lock. */
bool mp_parcel_trim_due(const struct mp_heap *h);
/*
 * mp_parcel_trim_all() - iovm_dma_trim() on the shared heap: this thread's
 * cached blocks back, then trims until no free committed parcel is left
 * (@all) or MP_TRIM_KEEP are; the bytes given back.
 */
uint64_t mp_parcel_trim_all(struct mp_space *s, bool all);
/* mp_follow_start() - this process answers parcel changes (a thread); mp_follow_stop() ends that. */
int mp_follow_start(struct mp_space *s);
void mp_follow_stop(struct mp_space *s);
/* mp_parcel_forget_slot() - slot @i died or left: no follower there; its trim, if any, ended. Needs the lock. */
void mp_parcel_forget_slot(struct mp_heap *h, unsigned i);
/* mp_parcel_repair() - after a holder of the lock died: allocated blocks committed, a dead trim ended. */
void mp_parcel_repair(struct mp_heap *h);
/* mp_heap_take() - the free block at @grain of @order, allocated to @owner lent to @lender. Needs the lock. */
int mp_heap_take(struct mp_heap *h, uint64_t grain, unsigned order, uint8_t owner, uint8_t lender);

/* ---- domain.c: shared domains ---- */

/* mp_domains_tidy() - free the block of every domain record no process has open. Needs the lock. */
void mp_domains_tidy(struct mp_heap *h);
/* mp_domains_forget_slot() - slot @i has no view open any more (it died). Needs the lock. */
void mp_domains_forget_slot(struct mp_heap *h, unsigned i);
/*
 * mp_domains_map() - whether a shared domain maps a page of the block at
 * @grain. Without the lock, a hint: true for a map that completed before.
 */
bool mp_domains_map(const struct mp_heap *h, uint64_t grain, unsigned order);
/* mp_domains_repair() - after a holder of the lock died: the counts rebuilt, then mp_domains_tidy(). */
void mp_domains_repair(struct mp_heap *h);

/* ---- share.c ---- */

/* mp_space_of() - @ctx's share: -EINVAL, -ENOENT (neither shared nor attached), -EPERM (a forked child). */
int mp_space_of(struct iovm_ctx *ctx, struct mp_space **out);

/* ---- attach.c ---- */
int mp_connect(struct mp_space *s, const char *name);

#endif /* IOVM_MP_INTERNAL_H */
