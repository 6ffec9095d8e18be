/* SPDX-License-Identifier: MIT */
/*
 * mp_tags.h - blocks that say whose they are: a block is filled with a
 * pattern derived from a tag (its allocator and a sequence number), and
 * checked whole before it is freed. Two live blocks that overlapped would
 * overwrite each other's pattern.
 */
#ifndef IOVM_TESTS_MP_TAGS_H
#define IOVM_TESTS_MP_TAGS_H

#include <stdint.h>
#include <string.h>

#include "harness.h"

struct tag_head {
	uint64_t magic;
	uint64_t tag;
	uint64_t size;
};

#define TAG_MAGIC UINT64_C(0x7461676765646d70)

static inline uint8_t tag_byte(uint64_t tag, uint64_t i)
{
	return (uint8_t)((tag * 0x9e3779b97f4a7c15ull + i) >> 56 ^ i);
}

static inline void tag_fill(void *p, uint64_t size, uint64_t tag)
{
	struct tag_head h = { TAG_MAGIC, tag, size };
	uint8_t *b = p;

	if (size < sizeof(h)) {
		memset(p, (int)(tag & 0xff), size);
		return;
	}
	memcpy(b, &h, sizeof(h));
	for (uint64_t i = sizeof(h); i < size; i++)
		b[i] = tag_byte(tag, i);
}

/* Whether the block still holds what tag_fill() wrote; its tag in *@tag (when it has a head). */
static inline bool tag_intact(const void *p, uint64_t size, uint64_t tag)
{
	const uint8_t *b = p;
	struct tag_head h;

	if (size < sizeof(h)) {
		for (uint64_t i = 0; i < size; i++)
			if (b[i] != (uint8_t)(tag & 0xff))
				return false;
		return true;
	}
	memcpy(&h, b, sizeof(h));
	if (h.magic != TAG_MAGIC || h.tag != tag || h.size != size)
		return false;
	for (uint64_t i = sizeof(h); i < size; i++)
		if (b[i] != tag_byte(tag, i))
			return false;
	return true;
}

#endif /* IOVM_TESTS_MP_TAGS_H */
