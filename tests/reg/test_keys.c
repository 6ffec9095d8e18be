/* SPDX-License-Identifier: MIT */
/*
 * test_keys.c - MR keys: found without a lock, refused once freed, never
 * handed out again while a stale copy could still be around, and a local
 * key never passes for a remote one.
 */
#include <stdlib.h>

#include "reg/reg_internal.h"
#include "harness.h"

TEST(alloc_lookup_free)
{
	struct key_table t;
	struct iovm_mr *a = (struct iovm_mr *)0x1000, *b = (struct iovm_mr *)0x2000;
	uint32_t la, ra, lb, rb;
	bool remote = true;

	keys_init(&t);
	CHECK(keys_lookup(&t, 0, &remote) == NULL);
	CHECK(keys_lookup(&t, 0x12345678, &remote) == NULL);
	CHECK_OK(keys_alloc(&t, a, &la, &ra));
	CHECK(la != 0 && ra == (la | KEY_REMOTE) && la != ra);
	CHECK(keys_lookup(&t, la, &remote) == a && !remote);
	CHECK(keys_lookup(&t, ra, &remote) == a && remote);
	keys_free(&t, la);
	CHECK(keys_lookup(&t, la, &remote) == NULL);
	CHECK(keys_lookup(&t, ra, &remote) == NULL);
	/* The next key is another slot's: the freed one waits its turn at the back. */
	CHECK_OK(keys_alloc(&t, b, &lb, &rb));
	CHECK(lb >> KEY_SLOT_SHIFT != la >> KEY_SLOT_SHIFT);
	CHECK(keys_lookup(&t, la, &remote) == NULL);
	CHECK(keys_lookup(&t, lb, &remote) == b);
	/* Freeing a stale key does nothing. */
	keys_free(&t, la);
	CHECK(keys_lookup(&t, lb, &remote) == b);
	keys_destroy(&t);
}

TEST(a_slot_comes_back_with_a_new_generation)
{
	struct key_table t;
	struct iovm_mr *mr = (struct iovm_mr *)0x1000;
	uint32_t first, l, r, seen_slot0 = 0;
	bool remote;

	keys_init(&t);
	CHECK_OK(keys_alloc(&t, mr, &first, &r));
	keys_free(&t, first);
	/* Cycle through every slot of the first chunk: slot 0 comes back after all others. */
	for (unsigned i = 0; i < 3 * KEY_CHUNK; i++) {
		CHECK_OK(keys_alloc(&t, mr, &l, &r));
		if (l >> KEY_SLOT_SHIFT == first >> KEY_SLOT_SHIFT) {
			seen_slot0++;
			CHECK(l != first);
			CHECK(keys_lookup(&t, first, &remote) == NULL);
		}
		keys_free(&t, l);
	}
	CHECK(seen_slot0 >= 2);
	keys_destroy(&t);
}

int main(void)
{
	test_init();
	RUN(alloc_lookup_free);
	RUN(a_slot_comes_back_with_a_new_generation);
	return 0;
}
