/* SPDX-License-Identifier: MIT */
/*
 * sanitizer.h - what iovm tells the sanitizers that they cannot see for
 * themselves: which build runs under which, and the orderings a device
 * makes through memory that has two addresses in the process.
 *
 * ThreadSanitizer keys its synchronisation by virtual address. The
 * engine reaches iovm's own rings through the bus: each bank's bus
 * mapping (phys/bus.c), a second mapping of the pages the application
 * reads at another address. The release of a completion
 * entry's phase through one mapping and the reaper's acquire of it
 * through the other are, to the hardware, one location (x86 and arm64
 * keep aliases coherent); to TSan they are unrelated, and every byte the
 * engine wrote before the entry looks unordered with the reaper's reads
 * after it. tsan_release() names the application's address of the entry
 * as the place the release happens, so that the reaper's acquire of it
 * pairs with it.
 *
 * Orderings made through another process are unseen too. A shared
 * domain's page-table page goes back to the pool only once every
 * process's agent has answered an invalidation, after its own devices'
 * walks of the page were over; the page can then be taken by any thread
 * of any of them. The agent's release and the taker's acquire, both in
 * one process, stand for the chain through the process that freed it
 * (mp/domain_space.c).
 *
 * The other way round too: a page this process freed to the pool (an
 * install lost to a neighbour's, a reclaim) may be taken, zeroed and
 * installed by another process, and this process's walkers then reach it
 * through that process's store, whose release TSan cannot pair with
 * their acquire: this process's memset of the page looks unordered with
 * their reads. A shared table's free releases its source, and every
 * descent into a table of a shared one acquires it (iommu/pgtable.h).
 */
#ifndef IOVM_BASE_SANITIZER_H
#define IOVM_BASE_SANITIZER_H

#if defined(__SANITIZE_ADDRESS__)
#define IOVM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IOVM_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define IOVM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define IOVM_TSAN 1
#endif
#endif

#ifdef IOVM_TSAN
/* The runtime's dynamic annotations (tsan_interface_ann.cpp). */
void AnnotateHappensBefore(const char *file, int line, const volatile void *addr);
void AnnotateHappensAfter(const char *file, int line, const volatile void *addr);
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
void AnnotateIgnoreWritesBegin(const char *file, int line);
void AnnotateIgnoreWritesEnd(const char *file, int line);

/* A release at @addr, before the store that publishes through another mapping. */
#define tsan_release(addr) AnnotateHappensBefore(__FILE__, __LINE__, (addr))
/* The acquire that pairs with every tsan_release() of @addr before it. */
#define tsan_acquire(addr) AnnotateHappensAfter(__FILE__, __LINE__, (addr))
/* Accesses between begin and end are not recorded: a device's, which the threads order by other means. */
#define tsan_ignore_begin()                                     \
	do {                                                    \
		AnnotateIgnoreReadsBegin(__FILE__, __LINE__);   \
		AnnotateIgnoreWritesBegin(__FILE__, __LINE__);  \
	} while (0)
#define tsan_ignore_end()                                       \
	do {                                                    \
		AnnotateIgnoreWritesEnd(__FILE__, __LINE__);    \
		AnnotateIgnoreReadsEnd(__FILE__, __LINE__);     \
	} while (0)
#else
#define tsan_release(addr) ((void)(addr))
#define tsan_acquire(addr) ((void)(addr))
#define tsan_ignore_begin() ((void)0)
#define tsan_ignore_end() ((void)0)
#endif

#endif /* IOVM_BASE_SANITIZER_H */
