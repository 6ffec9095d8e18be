/* SPDX-License-Identifier: MIT */
/*
 * crc32c_ref.h - CRC-32C bit by bit, the slow way: the reference the engine's
 * table and instruction paths are checked against.
 */
#ifndef IOVM_TESTS_CRC32C_REF_H
#define IOVM_TESTS_CRC32C_REF_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t crc32c_ref(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
	}
	return ~crc;
}

#endif /* IOVM_TESTS_CRC32C_REF_H */
