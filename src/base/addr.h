/* SPDX-License-Identifier: MIT */
/*
 * addr.h - short names for iovm's address types inside the library, and the
 * arithmetic on them.
 *
 * pa_t, hpa_t, iova_t and gpa_t are distinct structs: adding an IOVA to a PA
 * or comparing a guest address with a host one does not compile. The helpers
 * below are the only way from one to a plain integer and back.
 */
#ifndef IOVM_BASE_ADDR_H
#define IOVM_BASE_ADDR_H

#include <iovm/base.h>

#include <stdbool.h>
#include <stdint.h>

typedef iovm_pa_t pa_t;
typedef iovm_hpa_t hpa_t;
typedef iovm_iova_t iova_t;
typedef iovm_gpa_t gpa_t;

#define PA_INVALID IOVM_PA(IOVM_ADDR_INVALID)
#define HPA_INVALID IOVM_HPA(IOVM_ADDR_INVALID)

#define DEFINE_ADDR_OPS(type, prefix)                                      \
	static inline type prefix##_make(uint64_t a)                       \
	{                                                                  \
		return (type){ .addr = a };                                \
	}                                                                  \
	static inline uint64_t prefix##_val(type a)                        \
	{                                                                  \
		return a.addr;                                             \
	}                                                                  \
	static inline type prefix##_add(type a, uint64_t off)              \
	{                                                                  \
		return (type){ .addr = a.addr + off };                     \
	}                                                                  \
	static inline uint64_t prefix##_diff(type hi, type lo)             \
	{                                                                  \
		return hi.addr - lo.addr;                                  \
	}                                                                  \
	static inline bool prefix##_eq(type a, type b)                     \
	{                                                                  \
		return a.addr == b.addr;                                   \
	}                                                                  \
	static inline bool prefix##_valid(type a)                          \
	{                                                                  \
		return a.addr != IOVM_ADDR_INVALID;                        \
	}

DEFINE_ADDR_OPS(pa_t, pa)
DEFINE_ADDR_OPS(hpa_t, hpa)
DEFINE_ADDR_OPS(iova_t, iova)
DEFINE_ADDR_OPS(gpa_t, gpa)

#undef DEFINE_ADDR_OPS

#endif /* IOVM_BASE_ADDR_H */
