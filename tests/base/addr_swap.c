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
 * with no case compiles like case 0. Compiled with -Werror, as the
 * library is: a pointer to the wrong address type is only a warning in C.
 */
#include "base/addr.h"
#include "dev/exec.h"
#include "guest/guest_internal.h"
#include "iommu/iommu_internal.h"
#include "os/vfio.h"
#include "reg/reg_internal.h"

int probe(iova_t iova, pa_t pa, gpa_t gpa, hpa_t hpa, uint64_t raw);

static int int_resolver(void *arg, struct iovm_domain *dom, uint64_t at, unsigned access)
{
	(void)arg, (void)dom, (void)at, (void)access;
	return 0;
}

static int typed_resolver(void *arg, struct iovm_domain *dom, iova_t at, unsigned access)
{
	(void)arg, (void)dom, (void)at, (void)access;
	return 0;
}

static void int_unmap(void *arg, uint64_t at, uint64_t len)
{
	(void)arg, (void)at, (void)len;
}

static void typed_unmap(void *arg, iova_t at, uint64_t len)
{
	(void)arg, (void)at, (void)len;
}

int probe(iova_t iova, pa_t pa, gpa_t gpa, hpa_t hpa, uint64_t raw)
{
	struct io_pgtable *pt = NULL;
	struct iova_alloc *a = NULL;
	struct iovm_domain *dom = NULL;
	struct iommu_iotlb *t = NULL;
	struct iommu_space *is = NULL;
	struct iommu_mirror_ops ops = { 0 };
	struct iommu_span span;
	struct iovm_fault f;
	struct pt_walk w;
	struct side side = { 0 };
	struct os_vfio *vfio = NULL;
	struct reg_space *rs = NULL;
	struct iovm_mr mr = { 0 };
	struct guest_bank bank = { 0 };
	uint64_t contig;
	pa_t pages[2] = { pa, pa };
	uint64_t raw_pages[2] = { raw, raw };
	int sum = 0;

	(void)pages, (void)raw_pages, (void)int_resolver, (void)int_unmap;

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
#elif SWAP_CASE == 11
	sum += pt_map(pt, pa, iova, raw, 1, true, NULL);            /* page table: IOVA and PA swapped */
#elif SWAP_CASE == 12
	sum += pt_walk(pt, raw, &w);                                /* a plain integer for the IOVA walked */
#elif SWAP_CASE == 13
	sum += pt_map_pages(pt, iova, raw_pages, 2, 1, NULL);       /* integers for the pages' PAs */
#elif SWAP_CASE == 14
	sum += iova_free(a, pa, raw);                               /* the allocator given a PA back */
#elif SWAP_CASE == 15
	sum += iova_alloc(a, raw, 0, &pa);                          /* an IOVA allocated into a PA */
#elif SWAP_CASE == 16
	sum += iommu_hold_map(dom, pa, iova, raw, 1);               /* a registration's map, swapped */
#elif SWAP_CASE == 17
	sum += iommu_access(t, 0, raw, 1, &span, &f);               /* a device access at a plain integer */
#elif SWAP_CASE == 18
	sum += iommu_stage2_map(dom, pa, pa, NULL, raw, 1);         /* stage 2 mapped at a PA, not a GPA */
#elif SWAP_CASE == 19
	sum += domain_map_pa(dom, &iova, stage1_gpa(pa), NULL, raw, 1); /* a GPA where the table wants a PA */
#elif SWAP_CASE == 20
	shadow_check(dom, iova, raw, iova, 1);                      /* the oracle told an IOVA for the PA */
#elif SWAP_CASE == 21
	sum += iotlb_lookup(t, pa, 0) != NULL;                      /* an IOTLB looked up by PA */
#elif SWAP_CASE == 22
	iommu_set_resolver(is, int_resolver, NULL);                 /* a resolver of plain integers */
#elif SWAP_CASE == 23
	ops.unmap = int_unmap;                                      /* a mirror of plain integers */
#elif SWAP_CASE == 24
	sum += iommu_stage2_iova(pa).addr != 0;                     /* a PA read as a guest address */
#elif SWAP_CASE == 25
	side.iova = span.pa;                                        /* the engine's side at a PA */
#elif SWAP_CASE == 26
	side.pa = iova_add(side.iova, raw);                         /* ... or its PA advanced as an IOVA */
#elif SWAP_CASE == 27
	sum += os_vfio_dma_map(vfio, NULL, pa, raw, true);          /* the kernel's IOMMU told a PA */
#elif SWAP_CASE == 28
	sum += os_vfio_dma_unmap(vfio, raw, raw);                   /* ... or a plain integer */
#elif SWAP_CASE == 29
	sum += odp_resolve(rs, dom, pa, 1);                         /* reg: a device fault at a PA */
#elif SWAP_CASE == 30
	sum += reg_key_iova(rs, 1, raw, raw, 1, dom, &pa, &contig); /* reg: a key's IOVA into a PA */
#elif SWAP_CASE == 31
	mr.iova = mr.pa;                                            /* reg: an MR's window PA as its IOVA */
#elif SWAP_CASE == 32
	bank.gpa = pa;                                              /* guest: a bank's host PA as its GPA */
#elif SWAP_CASE == 33
	bank.pa = iommu_stage2_gpa(iova);                           /* guest: stage 2's GPA as the host PA */
#else
	/* Case 0, and any number without a case: every address of its own type. */
	iova = iova_add(iova, raw);
	sum += (int)iova_val(iova) + (int)pa_val(pa) + (int)gpa_val(gpa) + (int)hpa_val(hpa);
	sum += iova_eq(iova, iova_make(raw)) + (int)pa_diff(pa, pa_make(raw));
	sum += pt_map(pt, iova, pa, raw, 1, true, NULL);
	sum += pt_walk(pt, iova, &w);
	sum += pt_map_pages(pt, iova, pages, 2, 1, NULL);
	sum += iova_free(a, iova, raw);
	sum += iova_alloc(a, raw, 0, &iova);
	sum += iommu_hold_map(dom, iova, pa, raw, 1);
	sum += iommu_access(t, 0, iova, 1, &span, &f);
	sum += iommu_stage2_map(dom, gpa, pa, NULL, raw, 1);
	sum += domain_map_pa(dom, &iova, stage1_out(gpa), NULL, raw, 1);
	shadow_check(dom, iova, raw, pa, 1);
	sum += iotlb_lookup(t, iova, 0) != NULL;
	iommu_set_resolver(is, typed_resolver, NULL);
	ops.unmap = typed_unmap;
	sum += iommu_stage2_iova(gpa).addr != 0;
	side.iova = iova_add(side.iova, raw);
	side.pa = span.pa;
	sum += os_vfio_dma_map(vfio, NULL, iova, raw, true);
	sum += os_vfio_dma_unmap(vfio, iova, raw);
	sum += odp_resolve(rs, dom, iova, 1);
	sum += reg_key_iova(rs, 1, raw, raw, 1, dom, &iova, &contig);
	mr.iova = iova_add(mr.iova, raw);
	bank.gpa = gpa;
	bank.pa = pa;
#endif
	(void)ops, (void)side, (void)rs, (void)mr, (void)bank, (void)contig;
	(void)iova;
	(void)pa;
	(void)gpa;
	(void)hpa;
	(void)raw;
	return sum;
}
