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
	/* Misuse the fake saw (each a bug of the caller's): */
	uint64_t deregs_after_close; /* an MR deregistered after its device was closed */
	uint64_t regs_after_close;   /* ibv_reg_mr() on a protection domain whose device is closed */
	uint64_t dealloc_busy;       /* ibv_dealloc_pd() refused: MRs still in it */
	uint64_t close_busy;         /* ibv_close_device() with a protection domain still allocated */
	uint64_t failed_deregs;      /* deregs failed on purpose (fake_ibv_fail_next_dereg()) */
	uint64_t advised_bytes;      /* the lengths of every ibv_advise_mr() entry together */
};

struct fake_ibv_mr {
	void *addr;
	size_t len;
	int access;        /* IBV_ACCESS_* */
	uint32_t lkey, rkey;
	void *pd;
	uint64_t seq;      /* fake_ibv_seq() when it was registered: later ones are larger */
	bool resident;     /* pinned: every page was resident when it was registered */
};

struct fake_ibv_advice {
	uint64_t addr;
	uint32_t len, lkey, nsge;
	bool write, flush;
	uint64_t total;    /* the lengths of all its entries together */
};

struct fake_ibv_counts fake_ibv_counts(void);
/* The live MR @lkey names: 0, or -ENOENT. */
int fake_ibv_find(uint32_t lkey, struct fake_ibv_mr *mr);
/* The next ibv_reg_mr() fails with @err. */
void fake_ibv_fail_next_reg(int err);
struct fake_ibv_advice fake_ibv_last_advice(void);

/*
 * More of the fake (the attack tests'): a registration sequence, failures
 * on demand, a hook on each dereg, a delay inside ibv_reg_mr() to widen
 * races, live MRs by protection domain, and a remote write through an
 * rkey as a device would make it (here through the process's mapping).
 */
/* A number larger than every registration's seq so far. */
uint64_t fake_ibv_seq(void);
/* The next ibv_dereg_mr() fails with @err, and the MR stays registered. */
void fake_ibv_fail_next_dereg(int err);
/* The next ibv_open_device() / ibv_alloc_pd() fails with @err. */
void fake_ibv_fail_next_open(int err);
void fake_ibv_fail_next_pd(int err);
/* Called (outside the fake's lock) at each ibv_dereg_mr() of a live MR, before it goes; NULL: none. */
void fake_ibv_on_dereg(void (*fn)(const struct fake_ibv_mr *mr, void *arg), void *arg);
/* Each ibv_reg_mr() sleeps @us microseconds (outside the lock) before it registers. */
void fake_ibv_set_reg_delay(unsigned us);
/* The seq of the registration that was given @lkey, live or not; 0 for a key never given. */
uint64_t fake_ibv_key_seq(uint32_t lkey);
/* MRs live in protection domain @pd. */
int64_t fake_ibv_live_in_pd(const void *pd);
/*
 * A remote write of @len bytes of @src at @addr through @rkey, checked as
 * a device checks it: 0; -ENOENT for no live MR of that rkey, -EACCES
 * without remote write, -ERANGE outside the MR.
 */
int fake_ibv_remote_write(uint32_t rkey, uint64_t addr, const void *src, size_t len);

#endif /* IOVM_TESTS_FAKE_IBVERBS_H */
