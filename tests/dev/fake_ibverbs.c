/* SPDX-License-Identifier: MIT */
/*
 * fake_ibverbs.c - a stand-in for rdma-core's libibverbs.so.1, for the
 * tests of iovm's verbs backend on machines without an RDMA device (the
 * real thing runs in the VM test's guest, on rxe). Loaded by iovm through
 * IOVM_VERBS_LIBRARY.
 *
 * It keeps what a device would: its MRs (address, length, access, keys),
 * and checks what the kernel checks at ibv_reg_mr(): a protection domain
 * of its own, remote write only with local write, on-demand only on a
 * device with ODP, implicit only on one with implicit ODP, a range inside
 * user space, and, pinned, every page of the range mapped. Three devices:
 * fake0 without ODP, fake1 with ODP for RC, implicit included, and fake2
 * with ODP for RC but not implicit (as rxe).
 * The tests read its state through the fake_ibv_*() calls.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "dev/fake_ibverbs.h"

/* The project builds with hidden symbols: a library stands in only with its calls exported. */
#pragma GCC visibility push(default)

#define FAKE_DEVS 3
#define FAKE_MRS 4096

struct fake_mr {
	struct ibv_mr mr;
	bool live;
	int access;
	uint64_t seq;
	bool resident;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct ibv_device devs[FAKE_DEVS];
static struct fake_mr mrs[FAKE_MRS];        /* under lock */
static struct fake_ibv_counts counts;       /* under lock */
static struct fake_ibv_advice last_advice;  /* under lock */
static int fail_next_reg;                   /* under lock: an errno for the next ibv_reg_mr() */
static uint32_t next_key = 0x1000;          /* under lock */
static uint64_t seq = 1;                    /* under lock: registrations' order */
static int fail_next_dereg, fail_next_open, fail_next_pd; /* under lock */
static unsigned reg_delay_us;               /* under lock */
static void (*dereg_hook)(const struct fake_ibv_mr *, void *); /* under lock */
static void *dereg_hook_arg;                /* under lock */
#define FAKE_CTXS 64
static struct ibv_context *open_ctxs[FAKE_CTXS]; /* under lock: devices open now */

static bool ctx_open(const struct ibv_context *c)
{
	for (int i = 0; i < FAKE_CTXS; i++)
		if (open_ctxs[i] == c)
			return true;
	return false;
}

static struct fake_ibv_mr mr_out(const struct fake_mr *m)
{
	return (struct fake_ibv_mr){ .addr = m->mr.addr, .len = m->mr.length, .access = m->access,
				     .lkey = m->mr.lkey, .rkey = m->mr.rkey, .pd = m->mr.pd, .seq = m->seq,
				     .resident = m->resident };
}

static bool dev_has_odp(const struct ibv_device *d)
{
	return d == &devs[1] || d == &devs[2];
}

static bool dev_has_implicit(const struct ibv_device *d)
{
	return d == &devs[1];
}

struct ibv_device **ibv_get_device_list(int *num)
{
	struct ibv_device **list = calloc(FAKE_DEVS + 1, sizeof(*list));

	if (!list) {
		errno = ENOMEM;
		return NULL;
	}
	for (int i = 0; i < FAKE_DEVS; i++) {
		snprintf(devs[i].name, sizeof(devs[i].name), "fake%d", i);
		devs[i].transport_type = IBV_TRANSPORT_IB;
		list[i] = &devs[i];
	}
	if (num)
		*num = FAKE_DEVS;
	return list;
}

void ibv_free_device_list(struct ibv_device **list)
{
	free(list);
}

const char *ibv_get_device_name(struct ibv_device *device)
{
	return device->name;
}

static int query_device_ex(struct ibv_context *context, const struct ibv_query_device_ex_input *input,
			   struct ibv_device_attr_ex *attr, size_t attr_size)
{
	(void)input;
	memset(attr, 0, attr_size);
	if (dev_has_odp(context->device)) {
		attr->odp_caps.general_caps =
			IBV_ODP_SUPPORT | (dev_has_implicit(context->device) ? IBV_ODP_SUPPORT_IMPLICIT : 0);
		attr->odp_caps.per_transport_caps.rc_odp_caps =
			IBV_ODP_SUPPORT_SEND | IBV_ODP_SUPPORT_RECV | IBV_ODP_SUPPORT_WRITE | IBV_ODP_SUPPORT_READ;
	}
	return 0;
}

static int advise_mr(struct ibv_pd *pd, enum ibv_advise_mr_advice advice, uint32_t flags, struct ibv_sge *sg,
		     uint32_t num_sge)
{
	bool found = false;
	uint64_t total = 0;

	(void)pd;
	for (uint32_t i = 0; i < num_sge; i++)
		total += sg[i].length;
	pthread_mutex_lock(&lock);
	counts.advises++;
	counts.advised_bytes += total;
	for (int i = 0; i < FAKE_MRS; i++)
		if (mrs[i].live && mrs[i].mr.lkey == sg[0].lkey)
			found = (mrs[i].access & IBV_ACCESS_ON_DEMAND) != 0;
	last_advice = (struct fake_ibv_advice){ .addr = sg[0].addr, .len = sg[0].length, .lkey = sg[0].lkey,
						.write = advice == IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE,
						.flush = flags & IBV_ADVISE_MR_FLAG_FLUSH, .nsge = num_sge,
						.total = total };
	pthread_mutex_unlock(&lock);
	return found ? 0 : EINVAL;
}

struct ibv_context *ibv_open_device(struct ibv_device *device)
{
	struct verbs_context *v;
	int err;

	pthread_mutex_lock(&lock);
	err = fail_next_open;
	fail_next_open = 0;
	pthread_mutex_unlock(&lock);
	if (err) {
		errno = err;
		return NULL;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		errno = ENOMEM;
		return NULL;
	}
	v->sz = sizeof(*v);
	v->context.abi_compat = __VERBS_ABI_IS_EXTENDED;
	v->context.device = device;
	v->query_device_ex = query_device_ex;
	v->advise_mr = advise_mr;
	pthread_mutex_lock(&lock);
	counts.contexts++;
	for (int i = 0; i < FAKE_CTXS; i++)
		if (!open_ctxs[i]) {
			open_ctxs[i] = &v->context;
			break;
		}
	pthread_mutex_unlock(&lock);
	return &v->context;
}

int ibv_close_device(struct ibv_context *context)
{
	pthread_mutex_lock(&lock);
	counts.contexts--;
	for (int i = 0; i < FAKE_CTXS; i++)
		if (open_ctxs[i] == context)
			open_ctxs[i] = NULL;
	/* MRs left on it are orphans now: a context allocated later at the same address is not theirs. */
	for (int i = 0; i < FAKE_MRS; i++)
		if (mrs[i].live && mrs[i].mr.context == context) {
			counts.close_busy++;
			mrs[i].mr.context = NULL;
		}
	pthread_mutex_unlock(&lock);
	free(verbs_get_ctx(context));
	return 0;
}

struct ibv_pd *ibv_alloc_pd(struct ibv_context *context)
{
	struct ibv_pd *pd;
	int err;

	pthread_mutex_lock(&lock);
	err = fail_next_pd;
	fail_next_pd = 0;
	pthread_mutex_unlock(&lock);
	if (err) {
		errno = err;
		return NULL;
	}
	pd = calloc(1, sizeof(*pd));
	if (!pd) {
		errno = ENOMEM;
		return NULL;
	}
	pd->context = context;
	pthread_mutex_lock(&lock);
	counts.pds++;
	pthread_mutex_unlock(&lock);
	return pd;
}

int ibv_dealloc_pd(struct ibv_pd *pd)
{
	int busy = 0;

	pthread_mutex_lock(&lock);
	for (int i = 0; i < FAKE_MRS; i++)
		busy |= mrs[i].live && mrs[i].mr.pd == pd;
	if (!busy)
		counts.pds--;
	else
		counts.dealloc_busy++;
	pthread_mutex_unlock(&lock);
	/* As the kernel: a protection domain that still has MRs stays. */
	if (busy)
		return EBUSY;
	free(pd);
	return 0;
}

/* As on Linux 5.13 and later: the kernel copies pinned pages at fork. */
enum ibv_fork_status ibv_is_fork_initialized(void)
{
	return IBV_FORK_UNNEEDED;
}

int ibv_query_device(struct ibv_context *context, struct ibv_device_attr *attr)
{
	(void)context;
	memset(attr, 0, sizeof(*attr));
	return 0;
}

/* Whether every page of [addr, addr+len) is mapped: msync() says ENOMEM for a hole. */
static bool all_mapped(void *addr, size_t len)
{
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)addr & ~(pg - 1);

	return !msync((void *)a, ((uintptr_t)addr + len - a + pg - 1) & ~(pg - 1), MS_ASYNC);
}

/* In parentheses: verbs.h makes ibv_reg_mr a macro. */
struct ibv_mr *(ibv_reg_mr)(struct ibv_pd *pd, void *addr, size_t length, int access)
{
	bool odp = access & IBV_ACCESS_ON_DEMAND;
	struct fake_mr *m = NULL;
	unsigned delay;
	bool resident = false;
	int err = 0;

	pthread_mutex_lock(&lock);
	delay = reg_delay_us;
	pthread_mutex_unlock(&lock);
	if (delay)
		usleep(delay);
	if (!odp && addr && length && length != SIZE_MAX) {
		/* Pinned: iovm faulted the pages in before it asked (mincore: resident). */
		uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)addr & ~(pg - 1);
		size_t n = ((uintptr_t)addr + length - a + pg - 1) / pg;
		unsigned char *vec = malloc(n);

		if (vec && !mincore((void *)a, n * pg, vec)) {
			resident = true;
			for (size_t i = 0; i < n; i++)
				resident &= vec[i] & 1;
		}
		free(vec);
	}
	pthread_mutex_lock(&lock);
	counts.regs++;
	if (pd && !ctx_open(pd->context))
		counts.regs_after_close++;
	if (fail_next_reg) {
		err = fail_next_reg;
		fail_next_reg = 0;
	} else if (!pd || !length) {
		err = EINVAL;
	} else if ((access & IBV_ACCESS_REMOTE_WRITE) && !(access & IBV_ACCESS_LOCAL_WRITE)) {
		err = EINVAL;
	} else if (!ctx_open(pd->context)) {
		err = ENODEV; /* its device is closed (counted above): nothing of it to read */
	} else if (odp && !dev_has_odp(pd->context->device)) {
		err = EOPNOTSUPP;
	} else if (!addr && !(odp && length == SIZE_MAX)) {
		err = EINVAL;
	} else if (!addr && !dev_has_implicit(pd->context->device)) {
		err = EOPNOTSUPP;
	} else if (addr && ((uintptr_t)addr + length < (uintptr_t)addr ||
			    (uintptr_t)addr + length > (UINT64_C(1) << 47) - 4096)) {
		err = EFAULT; /* the kernel's access_ok(): user space ends a page below 2^47 */
	} else if (!odp && !all_mapped(addr, length)) {
		err = EFAULT;
	}
	for (int i = 0; !err && !m && i < FAKE_MRS; i++)
		if (!mrs[i].live)
			m = &mrs[i];
	if (!err && !m)
		err = ENOMEM;
	if (!err) {
		*m = (struct fake_mr){ .live = true, .access = access, .seq = seq++, .resident = resident };
		m->mr = (struct ibv_mr){ .context = pd->context, .pd = pd, .addr = addr, .length = length,
					 .lkey = next_key, .rkey = next_key + 1 };
		next_key += 2;
		counts.live++;
	}
	pthread_mutex_unlock(&lock);
	if (err) {
		errno = err;
		return NULL;
	}
	return &m->mr;
}

int ibv_dereg_mr(struct ibv_mr *mr)
{
	struct fake_mr *m = (struct fake_mr *)mr;
	void (*hook)(const struct fake_ibv_mr *, void *) = NULL;
	void *hook_arg = NULL;
	struct fake_ibv_mr out = { 0 };
	int ret = 0;

	pthread_mutex_lock(&lock);
	if (m >= mrs && m < mrs + FAKE_MRS && m->live && dereg_hook) {
		hook = dereg_hook;
		hook_arg = dereg_hook_arg;
		out = mr_out(m);
	}
	pthread_mutex_unlock(&lock);
	if (hook)
		hook(&out, hook_arg);
	pthread_mutex_lock(&lock);
	counts.deregs++;
	if (m < mrs || m >= mrs + FAKE_MRS || !m->live) {
		counts.bad_deregs++;
		ret = EINVAL;
	} else if (fail_next_dereg) {
		ret = fail_next_dereg;
		fail_next_dereg = 0;
		counts.failed_deregs++;
	} else {
		if (!ctx_open(m->mr.context))
			counts.deregs_after_close++;
		m->live = false;
		counts.live--;
	}
	pthread_mutex_unlock(&lock);
	return ret;
}

/* ---- for the tests ---- */

struct fake_ibv_counts fake_ibv_counts(void)
{
	struct fake_ibv_counts c;

	pthread_mutex_lock(&lock);
	c = counts;
	pthread_mutex_unlock(&lock);
	return c;
}

int fake_ibv_find(uint32_t lkey, struct fake_ibv_mr *out)
{
	int ret = -ENOENT;

	pthread_mutex_lock(&lock);
	for (int i = 0; i < FAKE_MRS; i++)
		if (mrs[i].live && mrs[i].mr.lkey == lkey) {
			*out = mr_out(&mrs[i]);
			ret = 0;
		}
	pthread_mutex_unlock(&lock);
	return ret;
}

void fake_ibv_fail_next_reg(int err)
{
	pthread_mutex_lock(&lock);
	fail_next_reg = err;
	pthread_mutex_unlock(&lock);
}

struct fake_ibv_advice fake_ibv_last_advice(void)
{
	struct fake_ibv_advice a;

	pthread_mutex_lock(&lock);
	a = last_advice;
	pthread_mutex_unlock(&lock);
	return a;
}

uint64_t fake_ibv_seq(void)
{
	uint64_t s;

	pthread_mutex_lock(&lock);
	s = seq;
	pthread_mutex_unlock(&lock);
	return s;
}

void fake_ibv_fail_next_dereg(int err)
{
	pthread_mutex_lock(&lock);
	fail_next_dereg = err;
	pthread_mutex_unlock(&lock);
}

void fake_ibv_fail_next_open(int err)
{
	pthread_mutex_lock(&lock);
	fail_next_open = err;
	pthread_mutex_unlock(&lock);
}

void fake_ibv_fail_next_pd(int err)
{
	pthread_mutex_lock(&lock);
	fail_next_pd = err;
	pthread_mutex_unlock(&lock);
}

void fake_ibv_on_dereg(void (*fn)(const struct fake_ibv_mr *mr, void *arg), void *arg)
{
	pthread_mutex_lock(&lock);
	dereg_hook = fn;
	dereg_hook_arg = arg;
	pthread_mutex_unlock(&lock);
}

void fake_ibv_set_reg_delay(unsigned us)
{
	pthread_mutex_lock(&lock);
	reg_delay_us = us;
	pthread_mutex_unlock(&lock);
}

uint64_t fake_ibv_key_seq(uint32_t lkey)
{
	uint64_t s = 0;

	/* Keys go 0x1000, 0x1002, ... and seqs 1, 2, ..., one each per registration made. */
	pthread_mutex_lock(&lock);
	if (lkey >= 0x1000 && lkey < next_key && !(lkey & 1))
		s = (lkey - 0x1000) / 2 + 1;
	pthread_mutex_unlock(&lock);
	return s;
}

int64_t fake_ibv_live_in_pd(const void *pd)
{
	int64_t n = 0;

	pthread_mutex_lock(&lock);
	for (int i = 0; i < FAKE_MRS; i++)
		n += mrs[i].live && mrs[i].mr.pd == pd;
	pthread_mutex_unlock(&lock);
	return n;
}

int fake_ibv_remote_write(uint32_t rkey, uint64_t addr, const void *src, size_t len)
{
	int ret = -ENOENT;

	pthread_mutex_lock(&lock);
	for (int i = 0; i < FAKE_MRS; i++) {
		struct fake_mr *m = &mrs[i];
		uint64_t a = (uint64_t)(uintptr_t)m->mr.addr;

		if (!m->live || m->mr.rkey != rkey)
			continue;
		if (!(m->access & IBV_ACCESS_REMOTE_WRITE))
			ret = -EACCES;
		else if (m->mr.length != SIZE_MAX && (addr < a || len > m->mr.length || addr - a > m->mr.length - len))
			ret = -ERANGE;
		else
			ret = 0;
		break;
	}
	/* Under the lock: the MR cannot be deregistered while the write lands. */
	if (!ret)
		memcpy((void *)(uintptr_t)addr, src, len);
	pthread_mutex_unlock(&lock);
	return ret;
}
