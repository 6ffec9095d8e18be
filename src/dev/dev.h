/* SPDX-License-Identifier: MIT */
/*
 * dev.h - devices, as the context sees them: a list to close at iovm_close().
 */
#ifndef IOVM_DEV_DEV_H
#define IOVM_DEV_DEV_H

#include <stdint.h>

struct iovm_ctx;
struct dev_space;
struct iovm_queue;

int dev_create(struct iovm_ctx *ctx, struct dev_space **out);
/* Closes the devices left open. */
void dev_destroy(struct dev_space *ds);

/*
 * Page requests on another process's memory (a remote window): a
 * descriptor that asks to block on faults and finds nothing mapped at the
 * other process's address @rva asks @fn, outside its device-side section,
 * whether the page is mapped now (0: try again; else the descriptor
 * completes with the fault). Set once, before the queue runs anything.
 */
typedef int (*dev_page_request_fn)(void *arg, uint64_t rva, unsigned access);
void dev_queue_set_page_request(struct iovm_queue *q, dev_page_request_fn fn, void *arg);

/*
 * For the tests: called by the engine once it translated a completion
 * record in another process's gated memory (a mirrored MR), before it
 * counts itself in there, so that a test can let that process's munmap()
 * go by meanwhile. NULL in normal use.
 */
typedef void (*dev_test_hook)(void);
extern _Atomic(dev_test_hook) dev_test_remote_record;

#endif /* IOVM_DEV_DEV_H */
