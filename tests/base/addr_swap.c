/* SPDX-License-Identifier: MIT */
/*
 * addr_swap.c - a compile probe, never linked: with -DSWAP_CASE=0 it makes
 * the calls of the library's internal interfaces with addresses of the
 * right types, and must compile; with -DSWAP_CASE=N (N > 0) it makes one
 * of them with an address of the wrong type (a PA for an IOVA, a plain
 * integer for a typed address, arguments swapped), and must not.
 *
 * Checked when the build is configured (tests/meson.build) and by the
 * test base_addr_swap (check_addr_swap.sh), which compiles every case
 * again with the headers as they are now. Each case is "#elif SWAP_CASE
 * == N" on a line of its own: the checks count them so. A case number
 * with no case compiles like case 0.
 */
#include "base/addr.h"

int probe(iova_t iova, pa_t pa, gpa_t gpa, hpa_t hpa, uint64_t raw);

int probe(iova_t iova, pa_t pa, gpa_t gpa, hpa_t hpa, uint64_t raw)
{
	int sum = 0;

#if !defined(SWAP_CASE)
#error "compile with -DSWAP_CASE=N"
#elif SWAP_CASE == 1
	sum += (int)iova_val(pa);                /* a PA read as an IOVA */
#elif SWAP_CASE == 2
	sum += (int)pa_val(iova);                /* an IOVA read as a PA */
#elif SWAP_CASE == 3
	sum += (int)pa_val(gpa);                 /* a guest address read as a host one */
#elif SWAP_CASE == 4
	sum += (int)pa_val(hpa);                 /* a host PA read as iovm's PA */
#elif SWAP_CASE == 5
	iova = pa_add(pa, 0);                    /* a PA stored as an IOVA */
#elif SWAP_CASE == 6
	iova = raw;                              /* an integer stored as an IOVA */
#elif SWAP_CASE == 7
	sum += iova_eq(iova, pa);                /* an IOVA compared with a PA */
#elif SWAP_CASE == 8
	sum += iova == iova;                     /* addresses compare through their helpers only */
#elif SWAP_CASE == 9
	iova = iova + raw;                       /* ... and add through them */
#elif SWAP_CASE == 10
	sum += (int)pa_diff(pa, iova);           /* the distance between a PA and an IOVA */
#else
	/* Case 0, and any number without a case: every address of its own type. */
	iova = iova_add(iova, raw);
	sum += (int)iova_val(iova) + (int)pa_val(pa) + (int)gpa_val(gpa) + (int)hpa_val(hpa);
	sum += iova_eq(iova, iova_make(raw)) + (int)pa_diff(pa, pa_make(raw));
#endif
	(void)iova;
	(void)pa;
	(void)gpa;
	(void)hpa;
	(void)raw;
	return sum;
}
