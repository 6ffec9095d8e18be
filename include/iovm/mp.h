/* SPDX-License-Identifier: MIT */
/*
 * iovm/mp.h - many processes, one DMA layer: a context shares its DMA heap
 * and zones under a name, and other processes attach to it.
 *
 * What is shared, and how:
 *  - the heap is one memfd (hugetlb 2 MiB pages when the machine has them,
 *    4 KiB shmem otherwise) whose size, fixed when it is shared, is address
 *    space, not memory: memory comes by parcels of 2 MiB as allocations
 *    need it (hugepages are taken then: an allocation the pool cannot serve
 *    fails with ENOMEM), and a free that leaves more than two committed
 *    parcels free gives back the free block that holds them (the kernel
 *    gets the pages back; they come back zeroed). Every process
 *    maps it wherever its kernel puts it (ASLR on, no fixed address), and
 *    puts it on its bus at the same physical address: PAs (so IOVAs of
 *    identity domains) agree in every process, pointers do not. Exchange
 *    PAs, or offsets, between processes; iovm_dma_ptr() turns a PA back
 *    into this process's pointer. Translation stays O(1) and lock-free.
 *  - once a context is shared or attached, iovm_dma_alloc() and its
 *    siblings, and the iovm_zone_*() calls, serve the shared heap: any
 *    process allocates, any frees (also what another allocated), every
 *    process finds a zone by name with the same PA and contents. Common
 *    buffers (iovm_cbuf_*()) and registrations stay the process's own.
 *  - memory events (iovm/mem.h) of the shared heap: a process whose context
 *    has subscribers (a domain that follows the heap) hears of each parcel
 *    as it gets memory and before it loses it, whichever process caused it,
 *    from a thread of its own. An allocation that commits a parcel returns
 *    once every such process has heard (its following domains map the
 *    memory before anyone has its address); a free that gives one back,
 *    once every such process has unmapped it. A stopped follower holds both
 *    up until it runs or dies (a dead one is waited for no more).
 *  - attachment goes over a UNIX socket in the abstract namespace (no file
 *    to leave behind), which passes the memfds with SCM_RIGHTS. The owner
 *    checks the peer's credentials from the kernel (SO_PEERCRED): only the
 *    owner's user, or members of a group the owner names, may attach.
 *
 * When a process dies (at any instruction, kill -9 included):
 *  - the share's lock is robust: the next process to take it repairs the
 *    heap, whatever store the dead one was at;
 *  - the memory the dead process allocated is freed (the policy), except
 *    zones and allocations made with IOVM_DMA_KEEP, which belong to the
 *    share until someone frees them. The owner frees it at once (it waits
 *    on each attached process's pidfd); while no owner lives,
 *    iovm_share_reap() does, and so does an allocation that would
 *    otherwise fail with ENOMEM;
 *  - nothing is left outside the processes: the memfds go with the last
 *    process that maps them, the socket with the owner.
 * When the owner dies or closes, the others keep the memory they map, keep
 * allocating and freeing, and close cleanly; nobody new can attach.
 *
 * Fork: a child inherits nothing of a shared or attached context (its
 * mappings are not copied: MADV_DONTFORK). A child that wants the share
 * calls iovm_attach() itself; any call on its parent's context fails with
 * EPERM, or touches memory the child does not have.
 */
#ifndef IOVM_MP_H
#define IOVM_MP_H

#include <iovm/base.h>
#include <iovm/dev.h>
#include <iovm/iommu.h>

#ifdef __cplusplus
extern "C" {
#endif

struct iovm_ctx;

/* Names of shares: 1 to IOVM_SHARE_NAMESIZE-1 characters of [A-Za-z0-9._-]. */
#define IOVM_SHARE_NAMESIZE 64

struct iovm_share_params {
	uint64_t heap_size; /* bytes of the shared heap (address space: memory comes as used), to 2 MiB; 0: 64 MiB */
	uint64_t page_size; /* 4 KiB or 2 MiB; 0: 2 MiB when the machine has them free, else 4 KiB */
	int64_t group;      /* a group whose members may attach, besides the owner's user; -1: none */
};

/**
 * iovm_share() - share @ctx's DMA heap under @name.
 * @ctx: an open context, neither shared nor attached
 * @name: the share's name, unique on the machine (per network namespace)
 * @params: NULL for the defaults
 *
 * Creates the shared heap, puts it on @ctx's bus and serves attachments
 * from a thread of @ctx's. From now on @ctx's DMA allocations and zones come
 * from the shared heap; what it allocated before stays valid, in its own.
 * The share ends with iovm_close(@ctx) for new attachments; its memory,
 * when the last attached process closes.
 *
 * Thread safety: no other call on @ctx may run meanwhile.
 *
 * Return: 0; -EINVAL for bad arguments (a heap below 4 KiB or above 1 TiB,
 * a page size not 4 KiB or 2 MiB, a group below -1); -EBUSY when @ctx is
 * already shared or attached; -EEXIST when another share has @name;
 * -EOPNOTSUPP for 2 MiB pages the machine lacks, or for a context opened
 * with host_pa=on (a shared heap's PAs are emulated, the same in every
 * process: see iovm_open()); -ENOMEM (also when not even one parcel of 2
 * MiB of memory can be had now).
 */
IOVM_API int iovm_share(struct iovm_ctx *ctx, const char *name, const struct iovm_share_params *params);

/**
 * iovm_attach() - open a context on the share named @name.
 * @name: as given to iovm_share()
 * @opts: iovm_open()'s options for the new context (NULL: IOVM_OPTS)
 * @ctx: set to the new context
 *
 * The context is this process's own (its domains, devices and
 * registrations are), its DMA heap and zones are the share's.
 * iovm_close() detaches: what this process allocated is freed, as if it
 * had died, except IOVM_DMA_KEEP memory and zones.
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL for bad arguments; -ENOENT when no process shares
 * @name; -EACCES when its owner does not let this process's user attach;
 * -EUSERS when MP_MAX_PROCS (128) processes are attached; -EPROTO when
 * the owner runs another version of iovm; -EOPNOTSUPP for host_pa=on in
 * @opts (as iovm_share()); errors of iovm_open().
 */
IOVM_API int iovm_attach(const char *name, const char *opts, struct iovm_ctx **ctx);

struct iovm_share_info {
	char name[IOVM_SHARE_NAMESIZE];
	bool owner;             /* this context made the share */
	int owner_pid;          /* the process that made it, alive or not */
	iovm_pa_t heap_pa;      /* PA of the heap's first byte, in every process */
	void *heap_va;          /* where this process maps it */
	uint64_t heap_size;
	uint64_t heap_free;     /* bytes no process holds: free in the heap, or in a thread's cache */
	uint64_t cached;        /* of heap_free, bytes in threads' caches of small blocks: free to their process only */
	uint64_t page_size;
	uint64_t blocks;        /* allocations live (not counting cached blocks) */
	unsigned processes;     /* attached now, the owner included while it lives */
	unsigned zones;
	uint64_t attaches;      /* since the share was made */
	uint64_t recoveries;    /* times a process took the lock from a dead holder */
	uint64_t reaped;        /* dead processes whose memory was freed */
	uint64_t reaped_blocks; /* allocations freed with them */
	uint64_t domain_held;   /* bytes freed while a shared domain mapped them: not free until unmapped */
};

/**
 * iovm_share_info() - what the share of @ctx holds.
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL for a NULL argument; -ENOENT when @ctx is neither
 * shared nor attached; -ENOTRECOVERABLE as iovm_share_check().
 */
IOVM_API int iovm_share_info(struct iovm_ctx *ctx, struct iovm_share_info *info);

/**
 * iovm_share_reap() - free now the memory of processes of the share that
 * died, as the owner does by itself while it lives.
 *
 * A process still exiting (not yet a zombie) counts as alive.
 *
 * Thread safety: safe.
 *
 * Return: the number of dead processes reaped; -EINVAL, -ENOENT as
 * iovm_share_info().
 */
IOVM_API int iovm_share_reap(struct iovm_ctx *ctx);

/**
 * iovm_share_check() - check the shared heap's structure: its blocks tile
 * it, every free block is listed once, counts agree, and no zone or live
 * process holds memory it should not. For tests and for an operator who
 * suspects corruption (rte_malloc_validate()).
 *
 * Thread safety: safe; it takes the share's lock.
 *
 * Return: 0; -EUCLEAN with a detail naming the first fault;
 * -ENOTRECOVERABLE when a process died holding the lock and the repair
 * failed; -EINVAL, -ENOENT as iovm_share_info().
 */
IOVM_API int iovm_share_check(struct iovm_ctx *ctx);

/*
 * Shared domains: a managed domain that every process of the share can
 * open by name, each getting a struct iovm_domain of its own that works
 * as any domain does (iovm_domain_map(), _map_ptr(), _map_pages(),
 * _unmap(), _translate(), devices attached at PASIDs) on one IO address
 * space: what one process maps, every process's devices reach at the same
 * IOVA, and what one unmaps, no device of any process reaches once the
 * unmap returns (in a deferred one, once that process's flush returns).
 *
 * How: the IO page table, its counters and the IOVA allocator are in one
 * block of the shared heap; every entry names the next table by its PA,
 * which each process turns into its own pointer (lookups stay lock-free).
 * A strict unmap clears the entries, lets go of this process's devices,
 * then posts the range to every other process that has the domain open: a
 * thread of each (one per view) drops what its devices cached of the
 * range and waits for their accesses in flight, then answers, and only
 * then does the unmap return (a process that died counts as answered: its
 * devices are gone). One unmap is posted at a time.
 *
 * What may be mapped: memory of the shared heap only, which is at the same
 * PA in every process (a process's own memory is not; -EINVAL), and not a
 * shared domain's own block. Free heap memory may be mapped too, as in a
 * private domain (what is allocated there later is reachable through the
 * mapping), but a domain's own block is never made of memory a domain
 * maps. A queue's rings are its process's own memory:
 * attach a domain of the process's own at IOVM_PASID_NONE for them, and
 * the shared domain at another PASID, which descriptors name. Page tables
 * come from the domain's pool (iovm_share_domain_params.tables) and stay
 * once made, as a private domain's do; a map that needs one more than the
 * pool holds fails with -ENOMEM. IOVAs (iovm_domain_map()'s, or chosen
 * first-fit from the bottom of the window) are the domain's, not a
 * process's: any process may unmap any range, and a range a strict unmap
 * freed is free to any process at once. VFIO devices cannot use a shared
 * domain (-EOPNOTSUPP).
 *
 * A process's own memory (malloc(), mmap(), what it has: not only the
 * heap) goes into a shared domain by iovm_mr_reg() and
 * iovm_mr_reg_async() on its view, pinned or on demand (the implicit
 * registration of the whole address space: -EOPNOTSUPP). The
 * registration takes its IOVAs from the domain's, and its pages sit at
 * PAs its IOVAs name, which mean that memory and nothing else in every
 * process for as long as the IOVAs are taken: every process sees the
 * entries (iovm_domain_translate()), and every process's devices reach
 * the memory: the registering process's directly, another's through the
 * registering process, whose own engine (a thread the first registration
 * starts) moves the bytes between the registration and a cell of the
 * domain's block, through its own translation, so that they reach what
 * its devices would and nothing else. Such an access is slow (two futex
 * round trips per 4 KiB at most; an on-demand page not there yet is
 * that process's page request, answered by its own monitor and pin
 * budget), waits while the registering process
 * lives and keeps the domain open (a stopped process stalls it), and
 * faults (IOVM_STATUS_PAGE_FAULT, IOVM_FAULT_BUS, or the fault that
 * process's engine met) once that process unmapped, deregistered, closed
 * the domain or died. A completion record there is written by the
 * registering process too, its status last (where the registration is
 * not writable, or is gone, it faults: counted, not written). The
 * registration follows the
 * registering process's address space as in a domain of its own: an
 * munmap(), MAP_FIXED or madvise() of its memory takes the pages out of
 * the shared table, strictly, before any device reaches them again
 * (reg.h); the table's entries go when the registering process's monitor
 * has seen the call, so iovm_domain_translate() in another process may
 * still show them for a moment after it returned, while every device
 * already faults there. A registration takes its IOVAs in whole 2 MiB units (its
 * IOVA keeps the memory's offset within 2 MiB, as the PA it names must):
 * 64 KiB across a 2 MiB boundary takes 4 MiB of the window, all of it
 * back at iovm_mr_dereg(). A registration cache (iovm_rcache_create())
 * on the view is the process's own and registers this way: since each of
 * its regions takes whole units, a small window fills before the cache's
 * limits, and a miss that finds the window full evicts the cache's idle
 * regions and tries once more (-ENOSPC when all are held). A process killed with registrations in a
 * shared domain leaves their entries, at which every device faults (the
 * memory went with the process), and their IOVA units: any process may
 * unmap the entries, which gives their pages' IOVAs back, but the rest
 * of the units stays taken until the domain goes. Unmapping a registration's range by
 * iovm_domain_unmap() while it lives is a misuse, as in a domain of a
 * process's own. With oracle=on in the process that makes it
 * (and its shadow no more than an eighth of the heap: 4 bytes per 4 KiB
 * page of the IOVA window), the domain's block holds the oracle's
 * shadow, which every process records its maps and unmaps into and
 * checks its devices' accesses against (iovm_domain_stats()'s oracle
 * counts are the view's own); made without it, no access is checked.
 * iovm_domain_stats() gives the shared table's and the shared IOVA
 * allocator's counts, and this view's invalidations and flushes.
 *
 * Deferred (params.flags IOVM_DOMAIN_DEFERRED): an unmap returns without
 * waiting for anyone; its range waits in a flush queue of the unmapping
 * process (a ring per thread, as a private deferred domain's), and until
 * the flush, devices of any process may still reach it through what they
 * cached, but neither its IOVAs nor its memory go to anyone else (the
 * IOVAs stay taken; memory freed meanwhile is held, as below). A flush
 * (the batch full, the timeout, iovm_domain_flush() in that process)
 * drops what this process's devices cached, posts one invalidation of
 * everything to every other process that has the domain open and waits
 * for their answers, then gives the IOVAs and the memory back: one round
 * trip per batch, not per unmap. A process killed with unmaps queued
 * leaves their IOVAs taken and their memory held (other processes'
 * devices may still cache them) until the next flush or strict unmap in
 * any process, as below; iovm_domain_flush() posts that invalidation
 * even with nothing of its own queued, and reaps first a process that
 * died with entries in the journal and was not reaped yet. Every unmap in flight is recorded
 * in the domain's journal, which holds eight flush batches (at least
 * 1024, at most 16384 pieces): an unmap that finds no room there is
 * flushed at once, as if its batch were full. A map at a fixed IOVA that another process's queue holds is -EEXIST
 * until that process flushes.
 *
 * Lifetime: iovm_domain_destroy() closes this process's view (-EBUSY
 * while a device is attached); the domain, its tables and its name go with
 * the last view, closed or dead. A process that dies holding the view
 * loses it (the reap); one that dies mid-map leaves what it mapped, and
 * the IOVAs it had taken for the rest, a page-table page it had taken and
 * not hung yet (for a map, or for the split of a huge leaf that an unmap
 * of part of it begins with) and one it had detached and not freed (an
 * emptied table a huge leaf replaced) go back with the next strict unmap
 * or flush in any process (a process mapping from more than 8 threads at
 * once may leave the IOVAs of the ninth map taken until the domain goes).
 * One killed
 * with an unmap in flight (strict, after it cleared the entries and
 * before the other processes answered; deferred, queued for a flush; or
 * inside the release that follows either) leaves the memory
 * those entries named held and their IOVAs taken (other processes'
 * devices may still hold the translation) until the next strict unmap or
 * flush in any process: that one invalidates everything in every
 * process, then frees them, resuming a release where it stopped (a
 * process that died with entries there and was not reaped yet is reaped
 * first). A release killed mid-step is resumed at that step, and takes
 * it once. An unmap records each piece, and each page-table page it
 * detaches, before it clears the entries: one killed in between leaves
 * them mapped and recorded, and that next strict unmap or flush clears
 * them before it invalidates, so that nothing stays until the domain
 * goes. An unmap of more than 256 leaves goes in
 * parts, each cleared, recorded and invalidated before the next: killed
 * meanwhile, it leaves what it had not cleared mapped. The page-table
 * pages an unmap detached are in the journal too, and freed the same
 * way. iovm_domain_stats() counts a shared domain's leaves from its
 * table, so that a process killed between an entry and its count leaves
 * them exact.
 *
 * Memory mapped is kept while mapped. A block of the heap freed while a
 * shared domain maps a page of it (by any process, iovm_dma_free() as
 * well as the reap of a process killed with its mappings in place) is not
 * free: the share keeps it (iovm_share_info().domain_held), gives it to
 * no allocation, and frees it when the last mapping of its pages goes, by
 * an unmap in any process or with the last view of the domain. A device
 * that keeps writing through such a mapping writes into that memory only.
 * A second free of it is -EINVAL, as of any memory freed.
 *
 * Fork: a forked child has no view of its parent's shared domains; the
 * struct iovm_domain it inherited is its parent's: a map on it fails with
 * EPERM, and other calls touch memory the child does not have. The child
 * attaches, then opens the domain by name.
 */
struct iovm_share_domain_params {
	uint64_t iova_size; /* bytes of IOVA space; the window is [4 GiB, 4 GiB + iova_size); 0: 4 x the heap, >= 1 GiB */
	uint32_t tables;    /* 4 KiB page-table pages it may use; 0: 64 + 4 per 2 MiB of heap */
	uint32_t flags;     /* IOVM_DOMAIN_DEFERRED or 0 (strict) */
	uint32_t flush_batch;      /* deferred: unmapped ranges per flush, per process; 0: 256 */
	uint32_t flush_timeout_us; /* deferred: longest wait for a flush; 0: 10000 */
};

/**
 * iovm_share_domain_create() - make a shared domain named @name in @ctx's
 * share, and open it.
 * @ctx: a context shared or attached
 * @name: 1 to IOVM_ZONE_NAMESIZE-1 characters; unique among the share's domains
 * @params: NULL for the defaults
 * @dom: set to this process's view
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL for bad arguments; -ENOENT when @ctx is neither
 * shared nor attached; -EEXIST when the share has a domain @name;
 * -ENOSPC when it has MP_MAX_DOMAINS (32); -ENOMEM when the heap has no
 * room; -EPERM in a forked child of the context's process.
 */
IOVM_API int iovm_share_domain_create(struct iovm_ctx *ctx, const char *name,
				      const struct iovm_share_domain_params *params, struct iovm_domain **dom);

/**
 * iovm_share_domain_open() - open the shared domain @name of @ctx's share.
 * @dom: set to this process's view; iovm_domain_destroy() closes it
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL; -ENOENT when the share has no domain @name (or @ctx
 * no share); -EBUSY when this process has it open already (one view per
 * process: use that one); -EPERM as iovm_share_domain_create().
 */
IOVM_API int iovm_share_domain_open(struct iovm_ctx *ctx, const char *name, struct iovm_domain **dom);

/*
 * A device in another process: a context of the share serves the software
 * DMA engine to client processes of the same share, each in an address
 * space of its own on the device (a domain attached at a PASID of its
 * own), through a queue whose rings are in the shared heap.
 *
 * How the device reaches a client's memory: only through the client's
 * domain, which holds only what the client mapped with iovm_rqueue_map()
 * and iovm_rqueue_map_mr(). Every descriptor runs in the client's PASID,
 * whatever the descriptor says, a batch's children too. Two kinds of
 * memory can be mapped:
 *
 * - Whole pages of the shared heap every byte of which the client holds
 *   (its own allocations, or the share's: zones, IOVM_DMA_KEEP). While
 *   mapped, the blocks are lent to the device process: nobody can free
 *   them (iovm_dma_free(), iovm_dma_realloc() and iovm_zone_free() say
 *   -EBUSY) and the client's death does not; the device process unmaps and
 *   gives them back (freed, when their owner died).
 * - The client's own memory, anywhere else in its address space (malloc(),
 *   stacks, files it mapped). The device process reaches it through the
 *   client's /proc/self/mem, which the client opens on itself (the kernel
 *   checks that open) and passes when it opens the queue: every access
 *   then goes through the client's page tables as they are at that moment.
 *   A page the client has not touched yet is faulted in, in the client,
 *   and charged to it. A page it unmapped gives a fault (IOVM_STATUS_PAGE_FAULT,
 *   IOVM_FAULT_BUS, at the IOVA of the first byte not moved). Chosen over
 *   process_vm_readv(), which asks ptrace's leave at every call and is
 *   refused where Yama's ptrace_scope is 1, and over memory the client
 *   would have to share (a memfd), which would dictate how it allocates.
 *   The rights are checked when the range is mapped, as a registration
 *   checks them; a later mprotect() does not take them away on the device
 *   (the memory file writes as a debugger does, whatever the page's
 *   protection): unmap it on the device first. Nothing is pinned and nothing of the pages is cached on
 *   the device: each access walks the client's page tables under its mmap
 *   lock, so once the client's munmap() (or mremap(), or
 *   madvise(MADV_DONTNEED)) returns, no device access reaches the pages
 *   that went; that is the invalidation, made by the kernel. As with an
 *   on-demand registration, memory the client maps later at such an
 *   address is reached there, until the range is unmapped on the device.
 */
struct iovm_device_server;
struct iovm_rqueue;
struct iovm_mr;

/**
 * iovm_device_serve() - serve @ctx's software DMA engine, under @name, to
 * client processes of @ctx's share.
 * @ctx: a context shared or attached
 * @name: as a share's name; unique on the machine
 * @workers: threads that run the clients' descriptors, 1 to 64 (0: 1)
 * @out: the server
 *
 * Clients are allowed as attachments to the share are (the share owner's
 * user, or its group).
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL; -ENOENT when @ctx is neither shared nor attached;
 * -EEXIST when a device server has @name; -ENOMEM.
 */
IOVM_API int iovm_device_serve(struct iovm_ctx *ctx, const char *name, unsigned workers,
			       struct iovm_device_server **out);

struct iovm_device_server_info {
	unsigned clients;       /* served now: one that went counts until all it held has gone back */
	uint64_t opened;        /* queues ever opened */
	uint64_t descriptors;   /* run, all clients */
	uint64_t torn_down;     /* clients gone without closing (dead) */
	uint64_t refused;       /* requests refused (a map of memory not the client's, say) */
};

/**
 * iovm_device_server_info() - counters of @srv.
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL.
 */
IOVM_API int iovm_device_server_info(struct iovm_device_server *srv, struct iovm_device_server_info *info);

/**
 * iovm_device_server_stop() - stop serving: every client's queue stops,
 * its mappings go (what was lent goes back) and its connection closes
 * (its calls then fail with -EPIPE).
 *
 * Thread safety: no other call on @srv may run or follow. Before the
 * context's iovm_close().
 *
 * Return: 0; -EINVAL.
 */
IOVM_API int iovm_device_server_stop(struct iovm_device_server *srv);

/**
 * iovm_rqueue_open() - a queue on the device process @name.
 * @ctx: a context attached to (or owning) the share the device process serves
 * @name: the device process's name
 * @depth: descriptors in flight, a power of two, 2 to 4096 (0: 256)
 * @out: the queue
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL; -ENOENT when no device process has @name or @ctx
 * has no share; -EXDEV when it serves another share; -EACCES when it does
 * not let this user in; -ENOMEM.
 */
IOVM_API int iovm_rqueue_open(struct iovm_ctx *ctx, const char *name, unsigned depth, struct iovm_rqueue **out);

/**
 * iovm_rqueue_pasid() - the queue's PASID on the device (its domain there).
 *
 * Thread safety: safe.
 *
 * Return: the PASID; 0 for a NULL @q.
 */
IOVM_API uint32_t iovm_rqueue_pasid(const struct iovm_rqueue *q);

/**
 * iovm_rqueue_map() - map [ptr, ptr+len) in the queue's domain on the
 * device: memory of the shared heap, or this process's own memory.
 * @ptr, @len: page aligned. In the shared heap: every byte of those pages
 *             this process's allocations, or the share's (zones,
 *             IOVM_DMA_KEEP). Outside it (none of it in the heap): every
 *             byte mapped in this process, readable, and writable for
 *             IOVM_MAP_WRITE.
 * @perm: IOVM_MAP_READ and/or IOVM_MAP_WRITE
 * @iova: where the device sees it
 *
 * Thread safety: safe; one request at a time goes to the device process.
 *
 * Return: 0; -EINVAL for bad arguments, or a range partly in the heap;
 * -EACCES when a byte of the heap's pages is not this process's to map
 * (another's allocation, free memory); -EFAULT when own memory is not all
 * mapped with the rights asked; -EOPNOTSUPP when the device process cannot
 * reach this process's own memory (no /proc); -EPIPE when the device
 * process is gone; -ENOSPC (4096 ranges of own memory at once), -ENOMEM.
 */
IOVM_API int iovm_rqueue_map(struct iovm_rqueue *q, const void *ptr, size_t len, uint32_t perm,
			     iovm_iova_t *iova);

/**
 * iovm_rqueue_unmap() - unmap what iovm_rqueue_map() mapped at @iova. On
 * return no descriptor reaches it any more, and its blocks can be freed.
 *
 * Thread safety: as iovm_rqueue_map().
 *
 * Return: 0; -EINVAL when nothing was mapped there with that length;
 * -EPIPE.
 */
IOVM_API int iovm_rqueue_unmap(struct iovm_rqueue *q, iovm_iova_t iova, size_t len);

/**
 * iovm_rqueue_map_mr() - map the pages of registration @mr (this
 * process's own memory, outside the shared heap) in the queue's domain on
 * the device, as a device of this process would reach it: page by page,
 * through page requests this process answers with the registration.
 * @mr: an MR of this process's (iovm_mr_reg()), on demand or pinned; not
 *      implicit, not a registration cache's
 * @perm: IOVM_MAP_READ and/or IOVM_MAP_WRITE, rights @mr grants
 *        (IOVM_MAP_WRITE: a write access)
 * @iova: set to the device's IOVA of the MR's address as registered
 *        (iovm_mr_info.addr); the MR's pages follow it contiguously
 *
 * The device maps nothing of it at first. Its first access to each 64 KiB
 * piece of the MR (cut at multiples of 64 KiB from the MR's first page, as
 * an on-demand MR pins them, and at its end) is a page request to this
 * process, answered in iovm_rqueue_reap() whatever the descriptor asks,
 * as an on-demand MR's own device faults are: an on-demand MR pins the
 * piece, within the context's pin budget, with the memory monitor
 * watching it (iovm_reg_stats.odp_faults counts it); a pinned MR answers
 * whether its pages are still valid. Then, before the answer, the device
 * maps what is still pinned of the piece, writable only where the MR
 * grants writes and the memory is writable now (a read-only page faults
 * a device write, as the memory file the device reaches it through would
 * not). When the registration lets pages go (the pin budget evicts them,
 * the memory monitor invalidates them: munmap(), mremap(),
 * MADV_DONTNEED), this process first has the device unmap the pieces they
 * touch, and waits for its answer: once the pages are unpinned here, no
 * device access reaches them through @mr's mapping; the next asks again.
 * A page that is not there (a hole, or unmapped) is answered with a
 * fault: the descriptor completes IOVM_STATUS_PAGE_FAULT after the bytes
 * before it. So is a descriptor that needs more pieces at once than the
 * pin budget holds (a copy between two pieces under a 64 KiB budget): its
 * sides' requests would evict each other for ever. The budget is the
 * context's: descriptors that run at the same time over its on-demand MRs
 * (on other queues, on devices of this process) need their pieces
 * together, and may fault alike where those do not fit.
 * iovm_mr_advise() never makes one fault: it leaves the pieces of the
 * latest page requests pinned (iovm/reg.h).
 *
 * Reached, as iovm_rqueue_map()'s own memory, through this process's
 * memory file, but kept off it as a device of this process is: the memory
 * monitor closes a gate the device reads before it lets a munmap() (or
 * mremap(), madvise()) of registered memory return, and waits for the
 * device's accesses in flight; the device waits while it is closed (for
 * as long as the gate keeps opening now and then, up to 60 s; 5 s of it
 * closed throughout, and the descriptor faults), and by the time it
 * opens, the pages that went are unmapped on the device. A device that
 * waits is let in before the gate closes again (the monitor holds the
 * next munmap() back for it, at most 50 ms from the gate's opening, 500
 * ms in all), so that an application that keeps unmapping does not keep
 * it out. A page the device asked for and the
 * application discards again before the device gets to it is asked for
 * again, as often as that happens (within 64 requests between two
 * stretches of the descriptor that moved bytes). So from the moment such a
 * call returns, no device access through @mr lands anywhere: neither in
 * the old pages nor in memory mapped anew at their addresses.
 *
 * @mr cannot be deregistered while mapped (iovm_mr_dereg() says -EBUSY):
 * iovm_rqueue_unmap_mr() it first. Each queue maps an MR once.
 *
 * Thread safety: safe, as iovm_rqueue_map(). The queue must be reaped
 * while descriptors reach the MR: the page requests are answered there.
 *
 * Return: 0; -EINVAL for bad arguments, an implicit MR, a registration
 * cache's, or an MR of the shared heap's memory; -EACCES when @mr does not
 * grant @perm; -EEXIST when @mr is mapped on this queue already;
 * -EOPNOTSUPP when the device process cannot reach this process's own
 * memory (no /proc); -EPIPE when the device process is gone; -ENOSPC
 * (4096 ranges of own memory at once, this and iovm_rqueue_map()'s),
 * -ENOMEM.
 */
IOVM_API int iovm_rqueue_map_mr(struct iovm_rqueue *q, struct iovm_mr *mr, uint32_t perm, iovm_iova_t *iova);

/**
 * iovm_rqueue_unmap_mr() - unmap @mr from the queue's domain on the
 * device. On return no descriptor reaches its pages through the queue, and
 * @mr may be deregistered.
 *
 * Thread safety: as iovm_rqueue_map().
 *
 * Return: 0 (also when the device process is gone); -EINVAL when @mr is
 * not mapped on @q.
 */
IOVM_API int iovm_rqueue_unmap_mr(struct iovm_rqueue *q, struct iovm_mr *mr);

/**
 * iovm_rqueue_submit() - put a descriptor in the queue (its pasid field is
 * the queue's, whatever it says).
 *
 * Thread safety: one submitter at a time per queue.
 *
 * Return: 0; -EINVAL; -EAGAIN when depth descriptors are submitted and not
 * reaped; -EPIPE when the device process is gone and the queue has found
 * it so (a reap, a full ring or any request to it looks; a submit before
 * that returns 0, and its descriptor never completes).
 */
IOVM_API int iovm_rqueue_submit(struct iovm_rqueue *q, const struct iovm_desc *d);

/**
 * iovm_rqueue_reap() - take up to @max completions, and answer a page
 * request of the device process if one waits (iovm_rqueue_set_fault_handler()).
 *
 * Thread safety: one reaper at a time per queue.
 *
 * Return: completions taken (0: none yet); -EINVAL; -EPIPE when the device
 * process is gone and nothing is left to reap.
 */
IOVM_API int iovm_rqueue_reap(struct iovm_rqueue *q, struct iovm_cqe *cqe, unsigned max);

/**
 * typedef iovm_rqueue_fault_fn - a page request of the device process: a
 * descriptor with IOVM_DESC_BLOCK_ON_FAULT reached @addr of this process's
 * own memory (mapped with iovm_rqueue_map()) for @access (IOVM_MAP_READ or
 * IOVM_MAP_WRITE) and found nothing mapped there. Return 0 when the page
 * is mapped now (the device tries again, with the rights it was mapped
 * with), or a negative errno (the descriptor completes with the fault,
 * IOVM_STATUS_PAGE_FAULT, IOVM_FAULT_BUS, after the bytes before it).
 */
typedef int (*iovm_rqueue_fault_fn)(void *arg, void *addr, uint32_t access);

/**
 * iovm_rqueue_set_fault_handler() - answer the device process's page
 * requests with @fn(@arg, ...) (NULL: answer none). Requests are answered
 * inside iovm_rqueue_reap(), in the reaping thread: a queue whose
 * descriptors block on faults is reaped while they run. The device waits
 * up to 5 s for an answer (the clients its worker thread serves wait with
 * it, as a device's queue stalls on a page request), then completes the
 * descriptor with the fault; a queue closed meanwhile ends the wait. A
 * descriptor without IOVM_DESC_BLOCK_ON_FAULT completes with the fault at
 * once, the bytes before it done.
 *
 * Thread safety: as iovm_rqueue_reap(); set it before such descriptors
 * are submitted.
 *
 * Return: 0; -EINVAL.
 */
IOVM_API int iovm_rqueue_set_fault_handler(struct iovm_rqueue *q, iovm_rqueue_fault_fn fn, void *arg);

/**
 * iovm_rqueue_close() - close the queue: the device process stops it and
 * unmaps everything it mapped.
 *
 * Thread safety: no other call on @q may run or follow. Before the
 * context's iovm_close().
 *
 * Return: 0; -EINVAL.
 */
IOVM_API int iovm_rqueue_close(struct iovm_rqueue *q);

#ifdef __cplusplus
}
#endif

#endif /* IOVM_MP_H */
