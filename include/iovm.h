/* SPDX-License-Identifier: MIT */
/*
 * iovm.h - the whole public interface of iovm.
 *
 * iovm is a DMA memory layer for user-space drivers, device emulators and
 * RDMA-style middleware: hugepage-backed DMA memory with O(1) translation,
 * IOMMU address spaces and memory registration, with a software IOMMU and
 * DMA engine to run and test everything without hardware.
 */
#ifndef IOVM_H
#define IOVM_H

#include <iovm/base.h>
#include <iovm/version.h>
#include <iovm/ctx.h>
#include <iovm/os.h>
#include <iovm/phys.h>
#include <iovm/mem.h>
#include <iovm/memmap.h>
#include <iovm/iommu.h>
#include <iovm/reg.h>
#include <iovm/dev.h>
#include <iovm/guest.h>
#include <iovm/mp.h>

#endif /* IOVM_H */
