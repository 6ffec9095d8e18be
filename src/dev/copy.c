/* SPDX-License-Identifier: MIT */
/*
 * copy.c - the engine's copy of a hot COPY descriptor's bytes.
 *
 * glibc's memcpy() moves a few KiB with rep movsb, which is as fast as
 * anything in a loop of copies alone (the benchmark's memcpy peer) but pays
 * a start each time between the engine's ring reads and writes: 4 KiB took
 * 23.5 ns there against 18.2 ns back to back, where a loop of 64-byte
 * vector loads and stores took 19.1 ns and 16.3 ns (measured outside the
 * tree, 2026-12-06). Whole multiples of 256 bytes up to 16 KiB go through
 * such a loop on a CPU with AVX-512 (and AVX-512VL); the rest, and
 * every other CPU, through memcpy().
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/sanitizer.h"
#include "dev/dev_internal.h"

#if defined(__x86_64__) && !defined(IOVM_ASAN) && !defined(IOVM_TSAN) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define VEC_COPY 1
#define VEC_MAX (16u * 1024)

static bool use_vec;

__attribute__((constructor)) static void copy_init(void)
{
	__builtin_cpu_init();
	use_vec = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
}

__attribute__((target("avx512f"))) static void copy_vec(uint8_t *d, const uint8_t *s, uint32_t len)
{
	for (uint32_t i = 0; i < len; i += 256) {
		__m512i a = _mm512_loadu_si512(s + i), b = _mm512_loadu_si512(s + i + 64);
		__m512i c = _mm512_loadu_si512(s + i + 128), e = _mm512_loadu_si512(s + i + 192);

		_mm512_storeu_si512(d + i, a);
		_mm512_storeu_si512(d + i + 64, b);
		_mm512_storeu_si512(d + i + 128, c);
		_mm512_storeu_si512(d + i + 192, e);
	}
}
#endif

void engine_copy_bytes(void *dst, const void *src, uint32_t len)
{
#ifdef VEC_COPY
	if (use_vec && !(len & 255) && len <= VEC_MAX) {
		copy_vec(dst, src, len);
		return;
	}
#endif
	memcpy(dst, src, len);
}
