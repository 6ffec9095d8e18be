/* SPDX-License-Identifier: MIT */
/*
 * fake_ibverbs.h - what the tests read of the stand-in libibverbs
 * (fake_ibverbs.c).
 */
#ifndef IOVM_TESTS_FAKE_IBVERBS_H
#define IOVM_TESTS_FAKE_IBVERBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fake_ibv_counts {
	uint64_t regs, deregs, bad_deregs, advises;
	int64_t live;      /* MRs registered now */
	int64_t contexts;  /* devices open */
	int64_t pds;       /* protection domains */
};

struct fake_ibv_mr {
	void *addr;
	size_t len;
	int access;        /* IBV_ACCESS_* */
	uint32_t lkey, rkey;
	void *pd;
};

struct fake_ibv_advice {
	uint64_t addr;
	uint32_t len, lkey, nsge;
	bool write, flush;
};

struct fake_ibv_counts fake_ibv_counts(void);
/* The live MR @lkey names: 0, or -ENOENT. */
int fake_ibv_find(uint32_t lkey, struct fake_ibv_mr *mr);
/* The next ibv_reg_mr() fails with @err. */
void fake_ibv_fail_next_reg(int err);
struct fake_ibv_advice fake_ibv_last_advice(void);

#endif /* IOVM_TESTS_FAKE_IBVERBS_H */
