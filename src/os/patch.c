/* SPDX-License-Identifier: MIT */
/*
 * patch.c - a libc function made to jump to a hook (os/patch.h), the way
 * UCX's "bistro" does it, in one atomic store.
 *
 * The first instruction of the function is overwritten by a 5-byte
 * jmp rel32 to a trampoline page of ours (jmp *hook), mapped within reach of
 * rel32. The 5 bytes lie in one aligned 8-byte word, written by one
 * store: a thread entering the function executes the old bytes or the new
 * ones, never a mix. Three entries are known:
 *  - a 5-byte first instruction (glibc's syscall wrappers:
 *    mov $nr,%eax; syscall): the jmp replaces it exactly;
 *  - a 4-byte first instruction (endbr64, sub $imm8,%rsp) followed by
 *    more: the jmp's fifth byte (the top byte of rel32) is chosen equal to
 *    the byte it overwrites, by placing the trampoline where that holds, so
 *    that a thread already past the first instruction finds the second
 *    unchanged.
 *  - a 3-byte first instruction (mov %ecx,%r10d: glibc's mmap()): the
 *    jmp's last two bytes are chosen equal to the bytes they overwrite,
 *    likewise.
 * Anything else is left alone (-EOPNOTSUPP); so is every other CPU.
 * Nothing is ever unpatched: the hook outlives every caller.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "os/patch.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define PAGE 4096ul

long os_raw_syscall6(long nr, long a, long b, long c, long d, long e, long f)
{
#if defined(__x86_64__)
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
#else
	(void)nr, (void)a, (void)b, (void)c, (void)d, (void)e, (void)f;
	return -ENOSYS;
#endif
}

#if defined(__x86_64__)
/* A page of ours, writable, at an address whose rel32 from @from lies in [lo, hi]. */
static uint8_t *trampoline_page(uintptr_t from, int64_t lo, int64_t hi)
{
	int64_t step = (hi - lo) / 64 > (int64_t)PAGE ? (hi - lo) / 64 : (int64_t)PAGE;

	for (int64_t rel = lo; rel + (int64_t)PAGE - 1 <= hi; rel += step) {
		uintptr_t want = ((uintptr_t)((int64_t)from + rel) + PAGE - 1) & ~(PAGE - 1);
		int64_t got_rel;
		uint8_t *p;
		long ret;

		if ((int64_t)want - (int64_t)from > hi || want < 65536)
			continue;
		/*
		 * Straight to the kernel: a window may lie past the end of user
		 * space, where a sanitizer's mmap() interceptor ends the
		 * process rather than fail the call.
		 */
		ret = os_raw_syscall6(SYS_mmap, (long)want, PAGE, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (ret < 0 && ret > -4096)
			continue;
		p = (uint8_t *)ret;
		got_rel = (int64_t)(uintptr_t)p - (int64_t)from;
		if ((uintptr_t)p != want || got_rel < lo || got_rel > hi) {
			os_raw_syscall6(SYS_munmap, ret, PAGE, 0, 0, 0, 0); /* an old kernel took it as a hint */
			continue;
		}
		return p;
	}
	return NULL;
}

/* Make trampoline page @p jump to @hook: 0, or -errno (the page is unmapped then). */
static int trampoline_fill(uint8_t *p, void *hook)
{
	if (mprotect(p, PAGE, PROT_READ | PROT_WRITE)) {
		int err = -errno;

		munmap(p, PAGE);
		return err;
	}
	/* jmp *0(%rip); .quad hook */
	memcpy(p, "\xff\x25\x00\x00\x00\x00", 6);
	memcpy(p + 6, &hook, sizeof(hook));
	if (mprotect(p, PAGE, PROT_READ | PROT_EXEC)) {
		int err = -errno;

		munmap(p, PAGE);
		return err;
	}
	return 0;
}

/*
 * Where a jmp rel32 written at @fn may land: [lo, hi] from @fn + 5, for
 * the entries known (see the head of this file). 0, or -EOPNOTSUPP.
 */
static int entry_window(const uint8_t *fn, int64_t *lo, int64_t *hi)
{
	static const uint8_t endbr64[4] = { 0xf3, 0x0f, 0x1e, 0xfa };

	if (((uintptr_t)fn & 7) > 3)
		return -EOPNOTSUPP; /* the 5 bytes would straddle two words */
	if (fn[0] == 0xb8) {
		/* mov $imm32,%eax: replaced whole. */
		*lo = INT32_MIN + (int64_t)PAGE;
		*hi = INT32_MAX - (int64_t)PAGE;
	} else if (!memcmp(fn, endbr64, 4) || (fn[0] == 0x48 && fn[1] == 0x83 && fn[2] == 0xec)) {
		/* A 4-byte instruction: rel32's top byte is the fifth byte as it is. */
		*lo = (int64_t)(int32_t)((uint32_t)fn[4] << 24);
		*hi = *lo + 0xffffff;
	} else if ((fn[0] == 0x41 || fn[0] == 0x49) && fn[1] == 0x89 && fn[2] == 0xca) {
		/*
		 * mov %ecx,%r10d or mov %rcx,%r10 (glibc's mmap(): the fourth
		 * argument where the kernel takes it), 3 bytes: rel32's top two
		 * bytes are the fourth and fifth as they are, a trampoline in a
		 * window of 64 KiB (os_patch_reserve()).
		 */
		*lo = (int64_t)(int32_t)((uint32_t)fn[4] << 24 | (uint32_t)fn[3] << 16);
		*hi = *lo + 0xffff;
	} else {
		return -EOPNOTSUPP;
	}
	return 0;
}

static const uint8_t *libc_fn(const char *name)
{
	void *h = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
	const uint8_t *fn;

	if (!h)
		return NULL;
	fn = dlsym(h, name);
	dlclose(h);
	return fn;
}

/* Pages os_patch_reserve() took, for os_patch_libc(): set before any thread but the caller's runs. */
static struct {
	const uint8_t *fn;
	uint8_t *page;
} reserved[4];

int os_patch_reserve(const char *name)
{
	const uint8_t *fn = libc_fn(name);
	int64_t lo, hi;
	uint8_t *p;
	int ret;

	if (!fn)
		return -ENOENT;
	if ((ret = entry_window(fn, &lo, &hi)))
		return ret;
	for (unsigned i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		if (reserved[i].fn == fn)
			return 0;
		if (reserved[i].fn)
			continue;
		if (!(p = trampoline_page((uintptr_t)fn + 5, lo, hi)))
			return -ENOMEM;
		reserved[i].page = p;
		reserved[i].fn = fn;
		return 0;
	}
	return -ENOSPC;
}

int os_patch_libc(const char *name, void *hook)
{
	const uint8_t *fn = libc_fn(name);
	uint8_t *tramp = NULL, bytes[8];
	uint64_t *word, old, new;
	unsigned off;
	int64_t lo, hi, rel;
	int ret;

	if (!fn)
		return -ENOENT;
	if ((ret = entry_window(fn, &lo, &hi)))
		return ret;
	off = (unsigned)((uintptr_t)fn & 7);
	for (unsigned i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (reserved[i].fn == fn) {
			tramp = reserved[i].page;
			reserved[i].fn = NULL;
		}
	if (!tramp && !(tramp = trampoline_page((uintptr_t)fn + 5, lo, hi)))
		return -ENOMEM;
	if ((ret = trampoline_fill(tramp, hook)))
		return ret;
	rel = (int64_t)(uintptr_t)tramp - (int64_t)((uintptr_t)fn + 5);
	word = (uint64_t *)((uintptr_t)fn & ~(uintptr_t)7);
	/*
	 * Read and written by hand: a sanitizer would look for its shadow of
	 * libc's text, which it has none of. An aligned 8-byte mov is atomic.
	 */
	__asm__ volatile("movq %1, %0" : "=r"(old) : "m"(*word));
	memcpy(bytes, &old, 8);
	bytes[off] = 0xe9;
	{
		int32_t r32 = (int32_t)rel;

		memcpy(&bytes[off + 1], &r32, 4);
	}
	memcpy(&new, bytes, 8);
	if (mprotect((void *)((uintptr_t)fn & ~(PAGE - 1)), PAGE, PROT_READ | PROT_WRITE | PROT_EXEC)) {
		int err = -errno;

		munmap(tramp, PAGE);
		return err;
	}
	__asm__ volatile("movq %1, %0\n\tmfence" : "=m"(*word) : "r"(new) : "memory");
	/* Back to what a text page is; a failure leaves it writable, still correct. */
	(void)mprotect((void *)((uintptr_t)fn & ~(PAGE - 1)), PAGE, PROT_READ | PROT_EXEC);
	return 0;
}
#else
int os_patch_reserve(const char *name)
{
	(void)name;
	return -EOPNOTSUPP;
}

int os_patch_libc(const char *name, void *hook)
{
	(void)name, (void)hook;
	return -EOPNOTSUPP;
}
#endif
