/* SPDX-License-Identifier: MIT */
/**
 * DOC: iovm/reg.h - registering the application's own memory for DMA
 *
 * An application's buffer (malloc, mmap, a framework's pool) becomes
 * reachable by devices through a memory registration (MR) in a domain, as
 * with rdma-core's ibv_reg_mr(): the MR maps the buffer at IOVAs of the
 * domain and names it by a local and a remote key.
 *
 * Registered memory follows the process's address space. A memory monitor
 * (userfaultfd) sees the application unmap, move or discard registered
 * memory (munmap, mremap, mmap MAP_FIXED over it, madvise DONTNEED, FREE
 * and REMOVE, a brk shrink, glibc's free() of a large block) and
 * invalidates the pages it hit before the application goes on: devices
 * never reach the memory that replaces them, and once the application's
 * call has returned no iovm_rcache_get() hits what it replaced and no
 * iovm_mr_query() calls it valid (a lookup that finds the monitor with
 * events in hand waits for it: the invalidation of one batch, some
 * microseconds).
 *
 * The calls through libc that take memory away do not wait for the
 * monitor's thread: munmap() (the application's own calls, and glibc's:
 * free() of a block it had mmapped, the trimming of a thread's heap), and,
 * with IOVM_HOOKS=all in the environment (not yet the default: a device
 * process may then give up at a client's gate under a storm of such
 * calls, known-gaps.md), madvise() with MADV_DONTNEED, MADV_FREE,
 * MADV_REMOVE or MADV_DONTNEED_LOCKED (glibc's trimming of a thread's heap
 * too), mremap(), mmap() with MAP_FIXED over registered memory, and brk()
 * (and sbrk(), glibc's trimming of its main heap). On x86-64 these entries of
 * libc are patched, once, when the first context starts its monitor (never
 * undone; libiovm is then never unloaded), to invalidate in the calling
 * thread: the range leaves userfaultfd's watch before the call, devices
 * are held off before it returns, with the same promise as above; a range
 * the call leaves mapped (madvise(), an mremap() that stayed in place) is
 * watched again before it returns. Such a call that fails invalidates
 * what it may have changed (a madvise() refused at a locked page may have
 * discarded pages before it: the pages no longer in core go, and those of
 * MRs that do not lock their pages), and
 * an mremap() that may move memory invalidates it if it moves. What
 * bypasses libc (syscall(SYS_munmap), the dynamic loader's own unmaps, a
 * sanitizer's allocator and its interceptors' own system calls), the
 * calls left unhooked, and a munmap() of only the pages an unhooked
 * mremap() grew (the kernel carries userfaultfd's watch to them, and no
 * event names them), are still seen by userfaultfd, waiting for its
 * thread as before. Memory such an mremap() moved is hooked where it
 * went (a free() of a block realloc() moved): the monitor marks it for
 * the hooks as it reads the move, and a munmap() that comes first waits
 * for the mark (100 ms at most: a monitor kept off the CPU longer leaves
 * that call to userfaultfd, slower, as correct). An entry of libc that is not a known one is not patched
 * (userfaultfd alone for that call then); IOVM_NO_HOOKS=1 in the
 * environment keeps them all so. A context's hooks stop when it closes; after fork() a child's
 * hooks leave its memory alone (registrations are the parent's). Another
 * userfaultfd's registrations are left alone (Linux refuses to unregister
 * them): a range holding one goes the userfaultfd way.
 *
 * Not monitored (iovm_mr_query() says so; the registration cache never
 * keeps such memory, and an implicit registration does not reach it):
 *  - memory the monitor cannot watch: a regular file's mappings, PFN
 *    maps, a range another userfaultfd owns;
 *  - memory whose pages can be replaced without an event, though the
 *    events there are still seen and invalidate it: shared mappings (of a
 *    memfd, of POSIX or System V shared memory, of hugetlbfs, and
 *    MAP_SHARED|MAP_ANONYMOUS), and private mappings of such a file,
 *    whose pages are the file's until written. fallocate(PUNCH_HOLE),
 *    ftruncate(), another process's madvise(MADV_REMOVE) (a child's after
 *    fork) or System V's shmdt() change them unseen. Checked when the
 *    pages are registered (for an on-demand MR, also when memory mapped
 *    into one of its holes since first faults in).
 * Not seen at all: shmat() with SHM_REMAP over registered memory of any
 * kind replaces it without an event (the kernel's shmat tells userfaultfd
 * nothing); the registration, and a cached one, then reach the segment.
 * Unmap such memory first. Changes of content (writes through another
 * mapping, by another process) are not replacements: the registration
 * reaches the same pages. Nor are changes of protection (mprotect(2),
 * pkey_mprotect(2)), which no userfaultfd event reports: a registration
 * keeps the rights it was registered with, as an rdma-core MR keeps its
 * device's. iovm_mr_reg(), and a get of the registration cache that
 * misses, check the memory's protection as it is then; a get that hits a
 * cached region whose rights cover the request hands it out without
 * looking at the memory again (as UCX's cache does), also after the
 * application made it read-only. A device access the memory's protection
 * now forbids faults on iovm's software platform, which reaches the
 * memory through the process's mapping (IOVM_STATUS_PAGE_FAULT, nothing
 * written); a real device (VFIO) reaches the pinned pages with the rights
 * registered.
 *
 * On iovm's software platform a device reaches registered memory through
 * the process's own mapping of it, not through pinned pages: a device write
 * already in flight while the application's munmap, mremap or mmap
 * MAP_FIXED call replaces the memory may land in the new memory (on
 * hardware it would land in the old, pinned pages). From the moment the
 * call returns, no device access through the old registration lands
 * anywhere. (A real device with the VFIO backend reaches kernel-pinned
 * pages and has no such window.)
 *
 * iovm installs SIGSEGV and SIGBUS handlers the first time a device reaches
 * registered memory: an access to memory unmapped under the device becomes
 * a DMA bus fault. Faults that are not iovm's go to the handlers that were
 * installed before.
 *
 * Fork: registrations belong to the process that made them. A child
 * inherits a copy of the memory, not the registrations: it must not use
 * the parent's MRs, devices or context (it may open its own), and what it
 * does to its copy never reaches the parent's registrations.
 */
#ifndef IOVM_REG_H
#define IOVM_REG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <iovm/base.h>

#ifdef __cplusplus
extern "C" {
#endif

struct iovm_ctx;
struct iovm_domain;
struct iovm_mr;

/* Access rights of a registration, as rdma-core's. */
#define IOVM_ACCESS_LOCAL_READ (1u << 0)  /* always granted */
#define IOVM_ACCESS_LOCAL_WRITE (1u << 1)
#define IOVM_ACCESS_REMOTE_READ (1u << 2)
#define IOVM_ACCESS_REMOTE_WRITE (1u << 3)
/*
 * On demand, as rdma-core's IBV_ACCESS_ON_DEMAND: registering costs O(1);
 * a device's first access to a page faults, and the fault pins, translates
 * and maps the 64 KiB around it (a page request, answered whether the
 * descriptor blocks on faults or not). Pinned pages count against the
 * context's pin_budget option; beyond it the least recently used are
 * unmapped and unpinned (and fault again when next used): those
 * iovm_mr_advise() pinned, and those of older page requests, before those
 * of the latest (see iovm_mr_advise()).
 */
#define IOVM_ACCESS_ON_DEMAND (1u << 4)

/**
 * iovm_mr_reg() - register [addr, addr+len) of the process's memory in @dom.
 * @dom: a managed, VA or identity domain
 * @access: IOVM_ACCESS_*
 * @mr: set to the registration
 *
 * Pinned: the pages are faulted in (for writing when a write access is
 * asked), locked (mlock(2); locks are counted, so overlapping registrations
 * unlock each page once), and mapped in @dom at once, with 2 MiB leaves
 * where the memory's addresses allow. A locked range refuses
 * madvise(MADV_DONTNEED); MADV_DONTNEED_LOCKED discards it, and invalidates
 * the registration's pages. mremap(MREMAP_DONTUNMAP) of part of it
 * unlocks, by the kernel's convention, the whole mapping it moves from,
 * the pages that stay included (and does not count their lock off
 * RLIMIT_MEMLOCK): the memory monitor locks them again before devices
 * reach the memory again and before a call that waits for it
 * (iovm_mr_query(), iovm_rcache_get()) returns. A madvise(MADV_DONTNEED)
 * made before that (right after mremap() returns: microseconds), or where
 * the monitor could not lock them again (RLIMIT_MEMLOCK, which then counts
 * them twice; a source the application unmapped before the monitor read
 * the move), discards such pages: the monitor then invalidates them, as
 * for MADV_DONTNEED_LOCKED. Never stale, but no longer pinned.
 *
 * Implicit: @addr NULL, @len SIZE_MAX and IOVM_ACCESS_ON_DEMAND register the
 * whole user address space under one key, as rdma-core's implicit ODP. It
 * is reached by key only (keyed descriptors; it has no one IOVA): the
 * first access to each 64 MiB of address space makes an on-demand child
 * registration for it, and the child's pages fault in as any on-demand
 * MR's. Memory that is not monitored (see above: a file's mappings,
 * shared memory) is not reachable through it: a device access there
 * faults. Needs the memory monitor (-EOPNOTSUPP without userfaultfd). On
 * a verbs device, the device's own implicit ODP MR where it has implicit
 * ODP; where it pages on demand without it (rxe), each child is
 * registered on the device, on demand, and has keys of its own:
 * iovm_mr_keys() gives them, and iovm_mr_query() gives 0 for the parent's;
 * a device without ODP refuses it (-EOPNOTSUPP). A verbs device pages by
 * itself, as the kernel's ODP follows the address space: it reaches any
 * memory mapped there, memory the monitor does not watch included (the
 * kernel keeps it current; iovm's faults apply to iovm's own devices).
 *
 * @dom cannot be destroyed while the MR lives (iovm_domain_destroy() says
 * -EBUSY).
 *
 * Monitored (iovm_mr_info.monitored): the memory monitor, started with the
 * context's first registration, watches the MR. One that is not: memory
 * the monitor cannot watch (see above), or the monitor could not start (a
 * warning says so, once per context; a start that failed for a shortage
 * of file descriptors, memory or threads is tried again at each
 * registration). Such an MR keeps reaching whatever memory is at its
 * addresses after the application replaces it.
 *
 * Memory mapped again where a call that returned took memory away (munmap
 * then mmap at the same address) registers whole: the events of that call
 * are dealt with first (the registration may wait for the memory monitor),
 * and never invalidate the new registration. Memory mapped into a hole
 * that another thread's call is still making (its event not yet read by
 * the monitor: a raw munmap, and without IOVM_HOOKS=all an mremap() that
 * shrinks or moves, go through userfaultfd) may be: its pages are then
 * refused, never stale (guarantees.md). The registration cache is not so
 * careful there: a get in that moment may hit the region of the memory
 * that was there, whose pages are the old ones, until the monitor reads
 * the event (known-gaps.md).
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL for bad arguments; -EEXIST in a VA domain where another
 * MR holds part of the range (a VA domain maps each address once: use a
 * managed domain for MRs that overlap); -EFAULT, for a pinned MR, when part
 * of the range is not mapped, or not writable for a write access (an
 * on-demand MR may have holes and read-only pages: a device access there
 * faults, as its page request finds them); -ENOMEM when the pages cannot
 * be locked (RLIMIT_MEMLOCK) or memory is short; -ENOSPC when no IOVA range
 * or key is left; -EOPNOTSUPP in an identity domain (it maps all memory
 * already), for an implicit registration without a memory monitor, or for
 * an implicit one in a shared domain (iovm/mp.h).
 */
IOVM_API int iovm_mr_reg(struct iovm_domain *dom, void *addr, size_t len, uint32_t access,
			 struct iovm_mr **mr);

/* iovm_mr_advise() flags. */
#define IOVM_ADVISE_WRITE (1u << 0) /* fault the pages in for writing */

/**
 * iovm_mr_advise() - prefetch [addr, addr+len) of an on-demand registration:
 * pin and map it now, as rdma-core's ibv_advise_mr(PREFETCH), within the
 * pin budget. For an implicit registration, the children that hold the
 * range are made as well.
 * @flags: IOVM_ADVISE_*
 *
 * A hint: it never makes a device access fault. It takes no pages from
 * the latest page requests of devices (as many 64 KiB pieces as the pin
 * budget holds whole), which a descriptor running may need; to stay
 * within the budget it unpins pages of older requests and of earlier
 * prefetches, least recently used first, and where those are not enough,
 * part of what it has just pinned itself (and still returns 0).
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL for bad arguments (NULL, zero @len, unknown @flags,
 * IOVM_ADVISE_WRITE without write rights) or a pinned registration;
 * -ERANGE when the range is not inside @mr (one past the end of the
 * address space included); -EFAULT when part of it is not mapped (or
 * cannot be watched); -ENOMEM; -EAGAIN when invalidations of the range
 * kept overtaking it (try again).
 */
IOVM_API int iovm_mr_advise(struct iovm_mr *mr, void *addr, size_t len, uint32_t flags);

/**
 * iovm_mr_dereg() - unmap the registration from its domain, unlock its
 * pages, and retire its keys. Returns once no device can reach its memory.
 * An MR of iovm_mr_reg_async() still pinning stops first (its threads
 * finish the chunk each pins, and are joined), also when the call then
 * fails.
 *
 * Thread safety: no other call on @mr may run or follow.
 *
 * Return: 0; -EINVAL; -EBUSY for an MR of a registration cache (put it back),
 * or one mapped on a device queue (iovm_rqueue_map_mr(): unmap it there first).
 */
IOVM_API int iovm_mr_dereg(struct iovm_mr *mr);

/*
 * iovm_mr_reg_async() flags: how many threads pin, and in what chunks.
 * IOVM_REG_THREADS(n): n threads (1 to 255); 0: one per online CPU, at
 * most 8. IOVM_REG_CHUNK_SHIFT(s): chunks of 2^s bytes (16, 64 KiB, to 30,
 * 1 GiB); 0: 32 MiB. Chunks smaller than 2 MiB map no 2 MiB leaves.
 */
#define IOVM_REG_THREADS(n) ((uint32_t)(n) & 0xffu)
#define IOVM_REG_CHUNK_SHIFT(s) (((uint32_t)(s) & 0x3fu) << 8)

/**
 * iovm_mr_reg_async() - register [addr, addr+len) pinned, as iovm_mr_reg(),
 * but return at once and pin in the background: the range is cut into
 * chunks (aligned to their size in the address space) that threads of the
 * registration pin (lock and fault in: where monitored memory registered
 * with write rights has pages already, with mlock2(2) MLOCK_ONFAULT, then
 * a touch of each page that adds zero to a byte of it atomically; else
 * with mlock(2)) in parallel, lowest addresses first, and map in @dom as
 * each is pinned. The threads run in the
 * background, SCHED_BATCH at a nice value 5 above the caller's (where the
 * system allows): where CPUs are short, the application's threads go
 * first, and the call returns without waiting for a CPU.
 * @dom: a managed or VA domain
 * @access: IOVM_ACCESS_* but IOVM_ACCESS_ON_DEMAND (nothing to pin: use
 *          iovm_mr_reg())
 * @flags: IOVM_REG_THREADS() | IOVM_REG_CHUNK_SHIFT(), or 0
 * @mr: set to the registration, "pinning" until iovm_mr_ready() says 0
 *
 * The MR has its keys, IOVA and info at once. A device access to a chunk
 * not yet pinned is a DMA fault (IOVM_STATUS_PAGE_FAULT, not a byte
 * touched), as an access to an invalidated page, also for a descriptor
 * that blocks on faults: iovm_mr_wait() for the part to be reached first.
 * With a device that registers memory by itself (a verbs domain), the
 * device's registration is made, one for the whole range, once every chunk
 * is pinned: no part is usable before (iovm_mr_wait() of any part waits for
 * the whole; iovm_mr_query() gives the device's keys from then on, 0
 * before).
 *
 * What is checked before returning: the arguments, and, from the
 * process's mappings, that the range is mapped and, for a write access,
 * writable (-EFAULT otherwise, as iovm_mr_reg()). What goes wrong while
 * pinning (memory short, RLIMIT_MEMLOCK reached, memory unmapped or
 * replaced under the registration before its chunk was pinned: -EFAULT,
 * and nothing of what replaced it is mapped) stops it: chunks being
 * pinned finish, no other starts, and
 * iovm_mr_wait() and iovm_mr_ready() say the error. Chunks pinned before
 * stay usable until iovm_mr_dereg(). The memory monitor watches the MR
 * from the start: memory the application takes away is invalidated,
 * pinned or not yet.
 *
 * iovm_mr_dereg() cancels the pinning: the threads stop after the chunk
 * each is pinning, and every page is unlocked and unmapped before it
 * returns.
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL for bad arguments (as iovm_mr_reg(), an implicit
 * or on-demand registration, unknown @flags, a thread count or chunk shift
 * out of range); -EFAULT when part of the range is not mapped (or not
 * writable for a write access) when called; -EAGAIN when no thread can be
 * started; otherwise as iovm_mr_reg().
 */
IOVM_API int iovm_mr_reg_async(struct iovm_domain *dom, void *addr, size_t len, uint32_t access, uint32_t flags,
			       struct iovm_mr **mr);

/**
 * iovm_mr_wait() - wait until [addr, addr+len) of @mr is pinned and mapped
 * (usable by devices), for at most @timeout_ms milliseconds.
 * @timeout_ms: < 0: as long as it takes; 0: do not wait, only look
 *
 * An MR of iovm_mr_reg() (pinned or on demand) is usable at once: 0.
 * Usable says nothing of what the application does to the memory
 * afterwards (the memory monitor invalidates what it takes away: see
 * iovm_mr_query()).
 *
 * Thread safety: safe, from any number of threads at once, while @mr is
 * registered (not while iovm_mr_dereg() runs).
 *
 * Return: 0 once the range is usable; -ETIMEDOUT when it is not yet
 * after @timeout_ms; the error that stopped the pinning (-ENOMEM memory
 * short or RLIMIT_MEMLOCK, -EFAULT memory unmapped or not writable, ...)
 * when part of the range will never be; -EINVAL for NULL, zero @len or an
 * implicit MR; -ERANGE when the range is not inside @mr.
 */
IOVM_API int iovm_mr_wait(struct iovm_mr *mr, const void *addr, size_t len, int timeout_ms);

/* How far the pinning of an MR of iovm_mr_reg_async() is. */
struct iovm_mr_pinning {
	uint64_t bytes;        /* the MR's pages, in bytes */
	uint64_t pinned;       /* of them, pinned and mapped by now */
	uint64_t prefix;       /* usable from the MR's first page on, without a gap */
	uint32_t chunks;       /* chunks of the range */
	uint32_t chunks_done;  /* of them, pinned */
	uint32_t threads;      /* the registration's threads */
	int error;             /* 0, or what stopped the pinning */
	bool done;             /* no more will be pinned: all of it, or @error stopped it */
};

/**
 * iovm_mr_ready() - whether @mr is usable whole, and, in @p if not NULL,
 * how far its pinning is. Takes no lock.
 *
 * Thread safety: safe, while @mr is registered.
 *
 * Return: 0 when the whole MR is usable (always, for an MR of
 * iovm_mr_reg()); -EINPROGRESS while pinning; the error that stopped it;
 * -EINVAL for NULL or an implicit MR.
 */
IOVM_API int iovm_mr_ready(const struct iovm_mr *mr, struct iovm_mr_pinning *p);

struct iovm_mr_info {
	void *addr;          /* as registered */
	size_t len;
	iovm_iova_t iova;    /* the IOVA of addr */
	uint32_t lkey, rkey; /* keys: a key of a deregistered MR is refused */
	uint32_t access;
	bool monitored;      /* the memory monitor watches it (see iovm_mr_reg()) */
	bool on_demand;      /* IOVM_ACCESS_ON_DEMAND */
	bool implicit;       /* the whole address space (addr NULL, len SIZE_MAX) */
	bool valid;          /* false once every page has been invalidated */
	uint64_t pages;      /* 4 KiB pages */
	uint64_t valid_pages;/* of them, still mapped */
	uint64_t huge_leaves;/* 2 MiB IOMMU leaves used for it */
	uint64_t children;   /* implicit: 64 MiB children made so far */
};

/**
 * iovm_mr_query() - what @mr is now: pages an application's call that
 * returned before took away are invalid in it (the call may wait for the
 * memory monitor to have invalidated them).
 *
 * Thread safety: safe, while @mr is registered.
 *
 * Return: 0, or -EINVAL.
 */
IOVM_API int iovm_mr_query(const struct iovm_mr *mr, struct iovm_mr_info *info);

/**
 * iovm_mr_iova() - the IOVA of @addr, inside @mr, for @len bytes.
 *
 * Thread safety: safe, lock-free.
 *
 * Return: 0; -EINVAL for NULL or an implicit registration (reached by key
 * only); -ERANGE when [addr, addr+len) is not inside @mr (one past the end
 * of the address space included).
 */
IOVM_API int iovm_mr_iova(const struct iovm_mr *mr, const void *addr, size_t len, iovm_iova_t *iova);

struct iovm_mr_keys {
	uint32_t lkey, rkey; /* the keys a device reaches the range by */
	void *addr;          /* the range they reach: an MR's own, or, implicit, its child's */
	size_t len;
};

/**
 * iovm_mr_keys() - the keys that reach [addr, addr+len) of @mr.
 * @keys: set to the keys, and the whole range they reach
 *
 * A keyed descriptor, or a verbs work request, names the memory by key
 * and virtual address. For an MR of a range, these are its keys, as
 * iovm_mr_query() gives them. For an implicit registration, its one key
 * for the whole address space, where the device has one: iovm's software
 * engine, and a verbs device with implicit ODP. A verbs device that pages
 * on demand without implicit ODP (rxe, for one) has no such key: there
 * the implicit MR is registered on the device child by child, each the
 * 64 MiB of address space, aligned, around @addr, on demand
 * (IBV_ACCESS_ON_DEMAND), made the first time this call (or a device
 * access, or iovm_mr_advise()) reaches it and kept as long as @mr; these
 * are the child's keys, and [keys.addr, keys.addr + keys.len) its range.
 * Split a scatter list at those boundaries.
 *
 * Thread safety: safe, while @mr is registered; lock-free once the
 * child is made.
 *
 * Return: 0; -EINVAL for bad arguments; -ERANGE when [addr, addr+len) is
 * not inside @mr, or, for an implicit MR registered child by child, when
 * it crosses a 64 MiB boundary or runs into the last page below 2^47,
 * which is not user space; -ENOMEM, or the device's error, when the
 * child cannot be registered.
 */
IOVM_API int iovm_mr_keys(struct iovm_mr *mr, const void *addr, size_t len, struct iovm_mr_keys *keys);

/*
 * The registration cache: MRs by address, kept registered after use so that
 * the next request for the same memory finds them, as UCX's and libfabric's
 * caches do, but never stale: the memory monitor invalidates the pages the
 * application takes away (only those: the rest of a region stays usable),
 * and a lookup that races with an invalidation of its range is no hit.
 * Memory that is not monitored (see the head of this file) is registered
 * for the caller but never kept.
 */
struct iovm_rcache;

/*
 * The limits are applied at each miss, which evicts the least recently used
 * regions nobody holds until the cache is within them. Regions held beyond
 * them stay until put back: the put that leaves one idle while the cache
 * is over its limits evicts then, unless a miss holds the cache's lock at
 * that moment (it registers there, which a put does not wait for): then
 * that miss evicts when it is done, or the next put or miss does.
 */
struct iovm_rcache_attr {
	size_t max_regions; /* 0 means 16384 */
	size_t max_bytes;   /* registered bytes kept; 0 means the context's pin_budget */
};

/**
 * iovm_rcache_create() - a registration cache for @dom.
 * @attr: limits; NULL for the defaults
 *
 * @dom cannot be destroyed while the cache lives (iovm_domain_destroy()
 * says -EBUSY). On a shared domain's view (iovm/mp.h) the cache is this
 * process's own, of its registrations into the shared domain.
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL; -ENOMEM.
 */
IOVM_API int iovm_rcache_create(struct iovm_domain *dom, const struct iovm_rcache_attr *attr,
				struct iovm_rcache **cache);

/**
 * iovm_rcache_destroy() - deregister every MR the cache keeps.
 *
 * Thread safety: no other call on @cache may run or follow.
 *
 * Return: 0; -EINVAL; -EBUSY while an MR of it is held (got, not put).
 */
IOVM_API int iovm_rcache_destroy(struct iovm_rcache *cache);

/**
 * iovm_rcache_get() - an MR holding [addr, addr+len) with @access (pinned
 * rights: IOVM_ACCESS_* but ON_DEMAND), from the cache or registered now;
 * held until iovm_rcache_put(). A hit takes no lock and writes no cache
 * line another CPU writes; it is judged by the rights its region was
 * registered with, not by the memory's protection now (see the head of
 * this file). Memory an application's call that returned
 * before took away is never a hit: a get that finds the memory monitor
 * with events in hand waits until it has invalidated them. A miss whose
 * registration finds no room (-ENOSPC: no IOVAs left, as in a small
 * shared domain's window; -ENOMEM) evicts every idle region, whatever the
 * limits, and tries once more.
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL for @access with IOVM_ACCESS_ON_DEMAND or a bit of no
 * IOVM_ACCESS_* right; as iovm_mr_reg() otherwise (-ENOSPC or -ENOMEM
 * where even that found no room: every region held).
 */
IOVM_API int iovm_rcache_get(struct iovm_rcache *cache, void *addr, size_t len, uint32_t access,
			     struct iovm_mr **mr);

/**
 * iovm_rcache_put() - give back what iovm_rcache_get() gave, once per get:
 * on any thread, also after the region's memory was taken away or the
 * region evicted (the hold is real until put). An MR of memory that is
 * not monitored is deregistered here.
 *
 * Puts are counted against the gets of the MR not yet put, all threads
 * together (an MR is not a handle of one get): a put with none left is
 * refused, and changes nothing. So is a second put of one get, unless
 * another get of the same MR is outstanding: then it gives back that
 * one's hold, as no count can tell the two apart.
 *
 * Thread safety: safe. A put on the thread of its get takes no lock
 * (unless it gives back that thread's last hold of the region while the
 * cache holds more than its limits: then it evicts, if the cache's lock is
 * free at that moment, and never waits for it); one on
 * another thread, and the next put on the thread of that get after it,
 * take the cache's lock.
 *
 * Return: 0; -EINVAL for NULL, an MR this cache did not give (the
 * caller's own, another cache's), or one with no get left to put.
 */
IOVM_API int iovm_rcache_put(struct iovm_rcache *cache, struct iovm_mr *mr);

struct iovm_rcache_stats {
	uint64_t hits, misses;
	uint64_t raced;          /* lookups an invalidation of their range overtook: not hits */
	uint64_t uncached;       /* registrations of memory the monitor cannot watch */
	uint64_t evictions;      /* regions deregistered for the limits */
	uint64_t invalidations_unmap, invalidations_remove, invalidations_remap, invalidations_overflow;
	uint64_t regions, bytes; /* kept now */
};

/**
 * iovm_rcache_stats() - counters of @cache.
 *
 * Thread safety: safe.
 *
 * Return: 0, or -EINVAL.
 */
IOVM_API int iovm_rcache_stats(struct iovm_rcache *cache, struct iovm_rcache_stats *st);

struct iovm_reg_stats {
	uint64_t mrs;                 /* registered now */
	uint64_t registered, deregistered;
	uint64_t locked_bytes;        /* locked for pinned registrations */
	uint64_t monitor_events;      /* read from userfaultfd, or queued by libc's hooked calls */
	uint64_t events_unmap, events_remove, events_remap, events_fork;
	uint64_t invalidated_pages;   /* pages of MRs the monitor invalidated */
	uint64_t odp_faults;          /* page requests for on-demand MRs answered */
	uint64_t odp_fault_retries;   /* faults started over: an invalidation came in between */
	uint64_t odp_pinned_bytes;    /* pinned for on-demand MRs now */
	uint64_t odp_evicted_bytes;   /* unpinned to stay within the pin budget */
	uint64_t odp_prefetched_bytes;/* pinned by iovm_mr_advise() */
	uint64_t pin_budget;          /* the pin_budget option */
	uint64_t ring_overflows;      /* events lost: everything was invalidated instead */
	uint64_t generation;          /* bumped by each overflow */
	bool monitor;                 /* a userfaultfd monitor runs */
};

/**
 * iovm_reg_stats() - registration and monitor counters of @ctx.
 *
 * Thread safety: safe.
 *
 * Return: 0, or -EINVAL.
 */
IOVM_API int iovm_reg_stats(struct iovm_ctx *ctx, struct iovm_reg_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* IOVM_REG_H */
