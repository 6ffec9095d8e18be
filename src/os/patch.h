/* SPDX-License-Identifier: MIT */
/*
 * patch.h - making a function of the C library jump to a hook of ours, at
 * its entry, so that calls from inside the library (glibc's free() calls
 * munmap() by an internal alias, not through the PLT) are caught too.
 */
#ifndef IOVM_OS_PATCH_H
#define IOVM_OS_PATCH_H

/*
 * os_patch_libc() - make libc's function @name jump to @hook, which takes
 * the same arguments and returns to the caller: 0; -ENOENT (no libc, no
 * such function), -EOPNOTSUPP (not x86-64, or an entry whose first
 * instruction this does not know: nothing written), or the errno of the
 * mmap()/mprotect() that failed. Never undone: @hook must live as long as
 * the process (libiovm is linked -z nodelete). Not thread-safe against
 * itself (the caller patches once); safe against threads calling @name.
 */
int os_patch_libc(const char *name, void *hook);

/*
 * os_patch_reserve() - take now the page os_patch_libc(@name) will jump
 * through: an entry whose first instruction is 3 bytes long has a window
 * of 64 KiB for it, which a process's later mappings (a DMA heap) may
 * fill. 0, or -errno as os_patch_libc(). For a constructor: not
 * thread-safe.
 */
int os_patch_reserve(const char *name);

/*
 * os_raw_syscall6() - a system call, straight to the kernel (no libc
 * wrapper, no sanitizer interceptor, errno untouched): the kernel's
 * return, -errno on failure.
 */
long os_raw_syscall6(long nr, long a, long b, long c, long d, long e, long f);

#endif /* IOVM_OS_PATCH_H */
