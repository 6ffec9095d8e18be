/* SPDX-License-Identifier: MIT */
/*
 * test_addr_types.c - the address types of base/addr.h: four distinct
 * types, each the size and layout of a plain integer, and helpers that
 * keep an address its own type through arithmetic. That a swapped
 * argument does not compile is checked when the build is configured
 * (tests/base/addr_swap.c, tests/base/meson.build): a program cannot test
 * what does not build.
 */
#include <assert.h>
#include <stddef.h>

#include "base/addr.h"
#include "harness.h"

/* The type a expression has, as a small number: _Generic never converts. */
#define KIND(x) _Generic((x), pa_t: 1, hpa_t: 2, iova_t: 3, gpa_t: 4, uint64_t: 5, default: 0)

/* Distinct types: each picks its own branch of a _Generic selection. */
static_assert(KIND((pa_t){ 0 }) == 1, "pa_t is its own type");
static_assert(KIND((hpa_t){ 0 }) == 2, "hpa_t is its own type");
static_assert(KIND((iova_t){ 0 }) == 3, "iova_t is its own type");
static_assert(KIND((gpa_t){ 0 }) == 4, "gpa_t is its own type");

/* The helpers keep the type: arithmetic on an IOVA gives an IOVA. */
static_assert(KIND(iova_add((iova_t){ 0 }, 1)) == 3, "iova_add() gives an iova_t");
static_assert(KIND(pa_add((pa_t){ 0 }, 1)) == 1, "pa_add() gives a pa_t");
static_assert(KIND(gpa_add((gpa_t){ 0 }, 1)) == 4, "gpa_add() gives a gpa_t");
static_assert(KIND(hpa_add((hpa_t){ 0 }, 1)) == 2, "hpa_add() gives an hpa_t");
static_assert(KIND(iova_make(0)) == 3 && KIND(pa_make(0)) == 1 && KIND(gpa_make(0)) == 4 &&
		      KIND(hpa_make(0)) == 2,
	      "each _make() gives its own type");
/* Out of a type only through _val() and _diff(): a plain integer. */
static_assert(KIND(iova_val((iova_t){ 0 })) == 5 && KIND(pa_diff((pa_t){ 0 }, (pa_t){ 0 })) == 5,
	      "_val() and _diff() give integers");

/* Free of cost: the layout of a plain integer, so arrays and ABI are the same. */
static_assert(sizeof(pa_t) == sizeof(uint64_t) && _Alignof(pa_t) == _Alignof(uint64_t), "pa_t is 8 bytes");
static_assert(sizeof(iova_t) == sizeof(uint64_t) && _Alignof(iova_t) == _Alignof(uint64_t), "iova_t is 8 bytes");
static_assert(sizeof(gpa_t) == sizeof(uint64_t) && sizeof(hpa_t) == sizeof(uint64_t), "gpa_t, hpa_t are 8 bytes");
static_assert(offsetof(pa_t, addr) == 0 && offsetof(iova_t, addr) == 0, "the address is the whole struct");

TEST(helpers)
{
	iova_t a = iova_make(0x1000), b = iova_add(a, 0x2345);
	pa_t p = pa_make(UINT64_MAX - 1);

	CHECK_EQ(iova_val(b), 0x3345);
	CHECK_EQ(iova_diff(b, a), 0x2345);
	CHECK(iova_eq(iova_add(a, 0), a));
	CHECK(!iova_eq(a, b));
	CHECK(iova_valid(a));
	CHECK(!pa_valid(PA_INVALID) && !hpa_valid(HPA_INVALID));
	/* Arithmetic wraps as on the integer: nothing in the type checks ranges. */
	CHECK_EQ(pa_val(pa_add(p, 2)), 0);
	CHECK_EQ(gpa_val(gpa_add(gpa_make(7), 1)), 8);
	CHECK_EQ(KIND(a), 3);
	CHECK_EQ(KIND(p), 1);
}

/* An array of addresses is an array of integers in memory: pt_map_pages() takes the public API's. */
TEST(arrays)
{
	pa_t pages[3] = { pa_make(0x1000), pa_make(0x3000), pa_make(0x2000) };
	uint64_t raw[3];

	CHECK_EQ(sizeof(pages), sizeof(raw));
	memcpy(raw, pages, sizeof(raw));
	CHECK_EQ(raw[1], 0x3000);
	CHECK_EQ(pa_val(pages[2]), 0x2000);
}

int main(void)
{
	RUN(helpers);
	RUN(arrays);
	return 0;
}
