/* SPDX-License-Identifier: MIT */
/*
 * vm_edu.h - QEMU's edu device, for the guest tests that drive it (with an
 * IOMMU and without): BAR0 registers (4- or 8-byte accesses only) 0x80
 * source, 0x88 destination, 0x90 count, 0x98 command (bit 0 start, bit 1
 * device to RAM, bit 2 interrupt when done), 0x24 interrupt status, 0x64
 * acknowledge; its 4 KiB buffer at device address 0x40000. A transfer
 * ending exactly at the buffer's end aborts QEMU 7.2: at most 2 KiB at a
 * time here.
 */
#ifndef IOVM_VM_EDU_H
#define IOVM_VM_EDU_H

#include <unistd.h>

#include "vm_common.h"

#define EDU_VENDOR 0x1234
#define EDU_DEVICE 0x11e8
#define EDU_BUF 0x40000u
#define CHUNK 2048u

/* One transfer; false on a timeout (the device's timer makes each take ~100 ms). */
static inline bool edu_dma(uint64_t src, uint64_t dst, uint32_t len, bool to_ram, bool irq)
{
	double t0 = now();

	wr64(0x80, src);
	wr64(0x88, dst);
	wr64(0x90, len);
	wr64(0x98, 1u | (to_ram ? 2u : 0) | (irq ? 4u : 0));
	while (rd64(0x98) & 1) {
		if (now() - t0 > 10)
			return false;
		usleep(1000);
	}
	return true;
}

/* RAM at device address @src to RAM at @dst, through the device's buffer. */
static inline bool edu_copy(uint64_t src, uint64_t dst, uint32_t len)
{
	for (uint32_t off = 0; off < len; off += CHUNK) {
		uint32_t n = len - off < CHUNK ? len - off : CHUNK;

		if (!edu_dma(src + off, EDU_BUF, n, false, false) || !edu_dma(EDU_BUF, dst + off, n, true, false))
			return false;
	}
	return true;
}

#endif
