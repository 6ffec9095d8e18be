/* SPDX-License-Identifier: MIT */
/*
 * test_attack17_async.c - iovm_mr_reg_async() (iovm/reg.h): prefaulted
 * private anonymous memory is now locked with MLOCK_ONFAULT and touched
 * page by page by the registration's threads. Attacked: the application
 * writing the memory while it is pinned (contents kept), munmap, mprotect
 * and replacement of part of it mid-pinning (no crash; an error or done;
 * the device never reaches the new memory), dereg mid-pinning (every page
 * unlocked), RLIMIT_MEMLOCK too small (the error told, the chunks pinned
 * before usable), iovm_mr_wait() at chunk boundaries (what it calls
 * usable is, to the device), and a device access to a chunk not yet
 * pinned (a fault, never stale data, nothing written).
 */
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "attack/attack17.h"

#define K64 65536ul
#define MB (1ul << 20)

static uint8_t *map_aligned(size_t len, size_t align)
{
	uint8_t *raw = app_map(len + align), *p;

	p = (uint8_t *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
	if (p > raw)
		app_unmap(raw, (size_t)(p - raw));
	if (raw + len + align > p + len)
		app_unmap(p + len, (size_t)(raw + len + align - (p + len)));
	return p;
}

static int wait_done(struct iovm_mr *mr)
{
	struct iovm_mr_pinning pin;
	int ret;

	for (unsigned i = 0; i < 60000; i++) {
		ret = iovm_mr_ready(mr, &pin);
		if (ret != -EINPROGRESS) {
			CHECK(pin.done);
			return ret;
		}
		usleep(1000);
	}
	CHECK_MSG(0, "pinning never done");
	return -1;
}

/* The application writes every page while the threads touch them: nothing it wrote is lost. */
struct writer {
	uint8_t *p;
	size_t len;
	atomic_bool stop;
	unsigned passes;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	while (!atomic_load(&w->stop) || w->passes < 2) {
		w->passes++;
		for (size_t off = 0; off < w->len; off += PG) {
			volatile uint64_t *x = (volatile uint64_t *)(w->p + off);

			for (unsigned k = 0; k < PG / 8; k += 61)
				x[k] = ((uint64_t)w->passes << 32) | (uint32_t)(off + k);
		}
	}
	return NULL;
}

TEST(writes_kept_while_pinning)
{
	struct rig r;
	struct a17q a;
	size_t len = 16 * MB;
	uint8_t *p = map_aligned(len, 2 * MB);
	struct iovm_mr *mr;
	struct writer w = { .p = p, .len = len };
	pthread_t th;
	uint64_t iova;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	a17q_open(&r, &a, PG, IOVM_QUEUE_POLLED);
	memset(p, 0x42, len); /* prefaulted: the MLOCK_ONFAULT and touch path */
	CHECK_OK(-pthread_create(&th, NULL, writer_main, &w));
	CHECK_OK(iovm_mr_reg_async(r.dom, p, len, IOVM_ACCESS_LOCAL_WRITE,
				   IOVM_REG_THREADS(4) | IOVM_REG_CHUNK_SHIFT(16), &mr));
	CHECK_EQ(iovm_mr_wait(mr, p, len, -1), 0);
	atomic_store(&w.stop, true);
	pthread_join(th, NULL);
	for (size_t off = 0; off < len; off += PG) {
		uint64_t *x = (uint64_t *)(p + off);

		for (unsigned k = 0; k < PG / 8; k++) {
			uint64_t want = k % 61 ? 0x4242424242424242ull : (((uint64_t)w.passes << 32) | (uint32_t)(off + k));

			if (x[k] != want)
				CHECK_MSG(0, "offset %zu: %#llx, the application wrote %#llx", off + k * 8,
					  (unsigned long long)x[k], (unsigned long long)want);
		}
	}
	iova = mr_iova(mr, p);
	for (size_t off = 0; off < len; off += len / 8) {
		CHECK_EQ(a17_copy(&a, iova + off, a.buf_iova, PG), IOVM_STATUS_SUCCESS);
		CHECK(!memcmp(a.buf, p + off, PG));
	}
	CHECK_OK(iovm_mr_dereg(mr));
	a17q_close(&r, &a);
	rig_close(&r);
	app_unmap(p, len);
}

/*
 * Part of the range taken away mid-pinning (munmap, mmap MAP_FIXED,
 * mprotect PROT_READ or PROT_NONE): no crash; the pinning stops with an
 * error or completes; the device never reaches what replaced it.
 */
static void take_away_mid(int how)
{
	static const char *names[] = { "munmap", "mmap MAP_FIXED", "mprotect PROT_READ", "mprotect PROT_NONE",
				       "munmap, nothing mapped", "mremap onto it" };
	struct rig r;
	struct a17q a;
	size_t len = 32 * MB, mid = 8 * MB, hole = 4 * MB;
	uint8_t *p = map_aligned(len, 2 * MB), *q = MAP_FAILED;
	struct iovm_mr *mr;
	uint64_t iova;
	int ret;
	uint8_t st;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	a17q_open(&r, &a, PG, IOVM_QUEUE_POLLED);
	memset(p, 0x42, len);
	CHECK_OK(iovm_mr_reg_async(r.dom, p, len, IOVM_ACCESS_LOCAL_WRITE,
				   IOVM_REG_THREADS(2) | IOVM_REG_CHUNK_SHIFT(16), &mr));
	iova = mr_iova(mr, p);
	switch (how) {
	case 0:
		CHECK_OK(munmap(p + mid, hole));
		q = mmap(p + mid, hole, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1,
			 0);
		if (q != p + mid) {
			if (q != MAP_FAILED)
				munmap(q, hole);
			q = MAP_FAILED;
		}
		break;
	case 1:
		q = mmap(p + mid, hole, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		CHECK(q == p + mid);
		break;
	case 2:
		CHECK_OK(mprotect(p + mid, hole, PROT_READ));
		break;
	case 3:
		CHECK_OK(mprotect(p + mid, hole, PROT_NONE));
		break;
	case 4:
		CHECK_OK(munmap(p + mid, hole));
		break;
	case 5: {
		uint8_t *n = app_map(hole);

		q = mremap(n, hole, hole, MREMAP_MAYMOVE | MREMAP_FIXED, p + mid);
		CHECK(q == p + mid);
		break;
	}
	}
	if (q != MAP_FAILED)
		memset(q, 0xa5, hole);
	ret = wait_done(mr);
	printf("# %s mid-pinning: pinning ended %d\n", names[how], ret);
	CHECK_MSG(ret == 0 || ret == -EFAULT || ret == -ENOMEM, "%s: pinning ended %d", names[how], ret);
	if (how <= 1 || how >= 4) {
		memset(a.buf, 0x5a, PG);
		st = a17_copy(&a, iova + mid + PG, a.buf_iova, PG);
		CHECK_MSG(st == IOVM_STATUS_PAGE_FAULT, "%s: device read of the replaced part: status %u", names[how],
			  st);
		CHECK_MSG(!a17_any(a.buf, 0xa5, PG), "%s: device read the new memory", names[how]);
		st = a17_copy(&a, a.buf_iova, iova + mid + 2 * PG, PG);
		CHECK_MSG(st == IOVM_STATUS_PAGE_FAULT, "%s: device write to the replaced part: status %u", names[how],
			  st);
		if (q != MAP_FAILED)
			CHECK_MSG(a17_all(q, 0xa5, hole), "%s: the device wrote in the new memory", names[how]);
	}
	/* What wait calls usable, the device reaches, with the application's bytes. */
	if (iovm_mr_wait(mr, p, PG, 0) == 0) {
		CHECK_EQ(a17_copy(&a, iova, a.buf_iova, PG), IOVM_STATUS_SUCCESS);
		CHECK(a17_all(a.buf, 0x42, PG));
	}
	if (ret == 0 && (how == 2 || how == 3)) {
		CHECK_OK(mprotect(p + mid, hole, PROT_READ | PROT_WRITE));
		CHECK(a17_all(p + mid, 0x42, hole));
	}
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_EQ(rstats(&r).locked_bytes, 0);
	a17q_close(&r, &a);
	rig_close(&r);
	if (how == 2 || how == 3)
		mprotect(p + mid, hole, PROT_READ | PROT_WRITE);
	app_unmap(p, len);
}

TEST(munmap_mid_pinning)
{
	take_away_mid(0);
}

TEST(map_fixed_mid_pinning)
{
	take_away_mid(1);
}

TEST(munmap_hole_mid_pinning)
{
	take_away_mid(4);
}

TEST(mremap_mid_pinning)
{
	take_away_mid(5);
}

TEST(mprotect_ro_mid_pinning)
{
	take_away_mid(2);
}

TEST(mprotect_none_mid_pinning)
{
	take_away_mid(3);
}

/* Dereg at once, or after a few chunks: every page unlocked, nothing left registered. */
TEST(dereg_mid_pinning)
{
	struct rig r;
	size_t len = 16 * MB;
	uint8_t *p = map_aligned(len, 2 * MB);
	struct iovm_reg_stats st0;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	memset(p, 0x42, len);
	st0 = rstats(&r);
	for (unsigned i = 0; i < a17_rounds(30); i++) {
		struct iovm_mr *mr;

		CHECK_OK(iovm_mr_reg_async(r.dom, p, len, i & 1 ? IOVM_ACCESS_LOCAL_WRITE : 0,
					   IOVM_REG_THREADS(1 + i % 4) | IOVM_REG_CHUNK_SHIFT(16 + i % 6), &mr));
		if (i % 3 == 1)
			iovm_mr_wait(mr, p, K64 * (1 + i), -1);
		else if (i % 3 == 2)
			usleep(200);
		CHECK_OK(iovm_mr_dereg(mr));
		CHECK_EQ(rstats(&r).locked_bytes, st0.locked_bytes);
		CHECK_EQ(rstats(&r).mrs, st0.mrs);
	}
	CHECK_MSG(!page_locked(p) && !page_locked(p + len - PG), "pages still locked after dereg");
	CHECK(a17_all(p, 0x42, len));
	rig_close(&r);
	app_unmap(p, len);
}

/*
 * The last 64 KiB of a 32 MiB registration unmapped right after
 * iovm_mr_reg_async() returned, before one thread pinning 64 KiB chunks
 * from the lowest address can have reached it (a device access there
 * faults, checked first): "what goes wrong while pinning (... memory
 * unmapped under the registration) stops it ... iovm_mr_wait() and
 * iovm_mr_ready() say the error" (-EFAULT).
 */
TEST(unmapped_tail_is_an_error)
{
	struct rig r;
	struct a17q a;
	size_t len = 32 * MB;
	unsigned zero = 0, rounds = a17_rounds(2);
	int last = 0;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	a17q_open(&r, &a, PG, IOVM_QUEUE_POLLED);
	for (unsigned round = 0; round < rounds; round++) {
		uint8_t *p = map_aligned(len, 2 * MB);
		struct iovm_mr *mr;
		uint64_t iova;
		int ret, w;

		memset(p, 0x42, len);
		CHECK_OK(iovm_mr_reg_async(r.dom, p, len, IOVM_ACCESS_LOCAL_WRITE,
					   IOVM_REG_THREADS(1) | IOVM_REG_CHUNK_SHIFT(16), &mr));
		iova = mr_iova(mr, p);
		if (iovm_mr_wait(mr, p + len - K64, K64, 0) == 0) {
			CHECK_OK(iovm_mr_dereg(mr));
			app_unmap(p, len);
			continue; /* pinned already: nothing to learn */
		}
		CHECK_OK(munmap(p + len - K64, K64));
		ret = wait_done(mr);
		w = iovm_mr_wait(mr, p + len - K64, K64, 0);
		CHECK_EQ(a17_copy(&a, iova + len - PG, a.buf_iova, PG), IOVM_STATUS_PAGE_FAULT);
		if (ret == 0 || w == 0) {
			zero++;
			last = w;
		}
		CHECK_OK(iovm_mr_dereg(mr));
		app_unmap(p, len - K64);
	}
	printf("# unmapped_tail_is_an_error: %u of %u rounds said 0 (wait of the tail: %d)\n", zero, rounds, last);
	CHECK_MSG(zero == 0,
		  "%u of %u rounds: a chunk unmapped before it was pinned, and the pinning ended 0, iovm_mr_wait() of "
		  "it %d",
		  zero, rounds, last);
	a17q_close(&r, &a);
	rig_close(&r);
}

/* Threads waiting as long as it takes, each on a later chunk, when RLIMIT_MEMLOCK stops the pinning. */
struct waiter {
	struct iovm_mr *mr;
	uint8_t *at;
	int ret;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;

	w->ret = iovm_mr_wait(w->mr, w->at, K64, -1);
	return NULL;
}

/* Drop CAP_IPC_LOCK from the effective set, so that RLIMIT_MEMLOCK applies to root. */
static bool drop_ipc_lock(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return false;
	d[0].effective &= ~(1u << CAP_IPC_LOCK);
	return syscall(SYS_capset, &h, d) == 0;
}

TEST(memlock_too_small)
{
	struct rig r;
	struct a17q a;
	size_t len = 32 * MB, chunk = MB;
	uint8_t *p = map_aligned(len, 2 * MB);
	struct iovm_mr *mr;
	struct iovm_mr_pinning pin;
	struct rlimit old, lim;
	uint64_t iova;
	int ret;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	a17q_open(&r, &a, PG, IOVM_QUEUE_POLLED);
	memset(p, 0x42, len);
	if (geteuid() == 0 && !drop_ipc_lock())
		SKIP_CASE("cannot drop CAP_IPC_LOCK");
	CHECK_OK(getrlimit(RLIMIT_MEMLOCK, &old));
	lim = old;
	lim.rlim_cur = 8 * MB + rstats(&r).locked_bytes;
	if (lim.rlim_cur > old.rlim_max)
		lim.rlim_cur = old.rlim_max;
	CHECK_OK(setrlimit(RLIMIT_MEMLOCK, &lim));
	CHECK_OK(iovm_mr_reg_async(r.dom, p, len, IOVM_ACCESS_LOCAL_WRITE,
				   IOVM_REG_THREADS(2) | IOVM_REG_CHUNK_SHIFT(20), &mr));
	{
		struct waiter w[4];
		pthread_t wt[4];

		for (unsigned i = 0; i < 4; i++) {
			w[i].mr = mr;
			w[i].at = p + len - (i + 1) * 3 * MB;
			CHECK_OK(-pthread_create(&wt[i], NULL, waiter_main, &w[i]));
		}
		for (unsigned i = 0; i < 4; i++) {
			pthread_join(wt[i], NULL);
			CHECK_MSG(w[i].ret == -ENOMEM, "a waiter on a chunk never pinned: %d", w[i].ret);
		}
	}
	ret = wait_done(mr);
	CHECK_MSG(ret == -ENOMEM, "RLIMIT_MEMLOCK reached: pinning ended %d", ret);
	CHECK_EQ(iovm_mr_wait(mr, p, len, 1000), -ENOMEM);
	ret = iovm_mr_ready(mr, &pin);
	CHECK_EQ(ret, -ENOMEM);
	CHECK(pin.done && pin.error == -ENOMEM);
	CHECK(pin.chunks_done < pin.chunks);
	CHECK(pin.prefix <= pin.pinned && pin.pinned < pin.bytes);
	printf("# memlock: %u of %u chunks, prefix %llu\n", pin.chunks_done, pin.chunks,
	       (unsigned long long)pin.prefix);
	iova = mr_iova(mr, p);
	/* Every chunk: usable by wait, and reachable; or an error, and a fault with nothing written. */
	for (size_t off = 0; off < len; off += chunk) {
		int w = iovm_mr_wait(mr, p + off, chunk, 0);
		uint8_t st;

		memset(a.buf, 0x5a, PG);
		st = a17_copy(&a, a.buf_iova, iova + off + chunk - PG, PG);
		if (w == 0) {
			CHECK_MSG(st == IOVM_STATUS_SUCCESS, "chunk at %zu usable, device: %u", off, st);
			CHECK(a17_all(p + off + chunk - PG, 0x5a, PG));
		} else {
			CHECK_MSG(w == -ENOMEM, "chunk at %zu: wait %d", off, w);
			CHECK_MSG(st == IOVM_STATUS_PAGE_FAULT, "chunk at %zu not pinned, device: %u", off, st);
			CHECK_MSG(a17_all(p + off + chunk - PG, 0x42, PG), "chunk at %zu not pinned, written", off);
		}
		if (off + chunk <= pin.prefix)
			CHECK_MSG(w == 0, "chunk at %zu inside the prefix, wait %d", off, w);
	}
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(setrlimit(RLIMIT_MEMLOCK, &old));
	a17q_close(&r, &a);
	rig_close(&r);
	app_unmap(p, len);
}

/*
 * One thread, 64 KiB chunks: poll iovm_mr_wait() at chunk boundaries
 * (the last byte of one, two bytes across two, a chunk whole); whatever
 * it calls usable the device reaches at once; a device write to a chunk
 * not yet pinned faults and writes nothing.
 */
TEST(wait_boundaries)
{
	struct rig r;
	struct a17q a;
	size_t len = 64 * MB;
	uint8_t *p = map_aligned(len, 2 * MB);
	struct iovm_mr *mr;
	uint64_t iova;
	unsigned seen = 0, faults = 0;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	a17q_open(&r, &a, 2 * PG, IOVM_QUEUE_POLLED);
	memset(p, 0x42, len);
	CHECK_OK(iovm_mr_reg_async(r.dom, p, len, IOVM_ACCESS_LOCAL_WRITE,
				   IOVM_REG_THREADS(1) | IOVM_REG_CHUNK_SHIFT(16), &mr));
	iova = mr_iova(mr, p);
	CHECK_EQ(iovm_mr_wait(mr, p, 0, 0), -EINVAL);
	CHECK_EQ(iovm_mr_wait(mr, p + len - 1, 2, 0), -ERANGE);
	CHECK_EQ(iovm_mr_wait(mr, p - 1, 2, 0), -ERANGE);
	for (uint64_t x = 7, n = 0; iovm_mr_ready(mr, NULL) == -EINPROGRESS && n < 200000; n++) {
		size_t off = K64 * (1 + test_rand(&x) % (len / K64 - 1));
		int w1 = iovm_mr_wait(mr, p + off - 1, 2, 0); /* across the boundary */
		int w0 = iovm_mr_wait(mr, p + off - 1, 1, 0); /* the last byte of the chunk before */
		uint8_t st;

		CHECK_MSG(w1 == 0 || w1 == -ETIMEDOUT, "wait: %d", w1);
		CHECK_MSG(w0 == 0 || w0 == -ETIMEDOUT, "wait: %d", w0);
		if (w1 == 0) {
			CHECK_MSG(w0 == 0, "across %zu usable, its first byte not", off);
			seen++;
			st = a17_copy(&a, iova + off - PG, a.buf_iova, 2 * PG);
			CHECK_MSG(st == IOVM_STATUS_SUCCESS, "wait said usable across %zu: device %u", off, st);
			CHECK(a17_all(a.buf, 0x42, 2 * PG));
		} else {
			memset(a.buf, 0x5a, PG);
			/* Far ahead: not pinned yet, most likely; a fault must write nothing. */
			st = a17_copy(&a, a.buf_iova, iova + len - PG, PG);
			if (st == IOVM_STATUS_PAGE_FAULT) {
				faults++;
				CHECK_MSG(a17_all(p + len - PG, 0x42, PG), "a fault on a chunk not pinned wrote");
			} else {
				CHECK_EQ(st, IOVM_STATUS_SUCCESS);
				CHECK_EQ(iovm_mr_wait(mr, p + len - PG, PG, 0), 0);
				memset(p + len - PG, 0x42, PG);
			}
		}
	}
	CHECK_EQ(iovm_mr_wait(mr, p + len - K64, K64, -1), 0);
	CHECK_EQ(iovm_mr_ready(mr, NULL), 0);
	CHECK_EQ(iovm_mr_wait(mr, p, len, 0), 0);
	printf("# wait_boundaries: %u usable when asked, %u faults ahead\n", seen, faults);
	CHECK_OK(iovm_mr_dereg(mr));
	a17q_close(&r, &a);
	rig_close(&r);
	app_unmap(p, len);
}

/*
 * The smallest form of munmap_mid_pinning's failure: a hole punched and
 * mapped anew at once while one thread pins 64 KiB chunks, rounds with
 * the hole at different moments. After munmap() returned, the device
 * must not reach the new memory at the old IOVA.
 */
TEST(replace_mid_pinning_loop)
{
	struct rig r;
	struct a17q a;
	size_t len = 8 * MB, hole = 256 * 1024;
	unsigned bad = 0, rounds = a17_rounds(20), zero = 0;
	char first[200] = "";


	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	a17q_open(&r, &a, PG, IOVM_QUEUE_POLLED);
	for (unsigned i = 0; i < rounds; i++) {
		uint8_t *p = map_aligned(len, 2 * MB), *q;
		size_t mid = MB + (i % 8) * MB / 2;
		struct iovm_mr *mr;
		uint64_t iova;
		int ret;
		uint8_t st;

		memset(p, 0x42, len);
		CHECK_OK(iovm_mr_reg_async(r.dom, p, len, IOVM_ACCESS_LOCAL_WRITE,
					   IOVM_REG_THREADS(1 + i % 2) | IOVM_REG_CHUNK_SHIFT(16), &mr));
		iova = mr_iova(mr, p);
		if (i % 3)
			usleep(100 * (i % 5));
		CHECK_OK(munmap(p + mid, hole));
		q = mmap(p + mid, hole, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		CHECK(q == p + mid);
		memset(q, 0xa5, hole);
		ret = wait_done(mr);
		zero += ret == 0;
		memset(a.buf, 0x5a, PG);
		st = a17_copy(&a, iova + mid + hole - PG, a.buf_iova, PG);
		if (st != IOVM_STATUS_PAGE_FAULT || a17_any(a.buf, 0xa5, PG)) {
			if (!bad++)
				snprintf(first, sizeof(first),
					 "round %u: munmap+mmap at +%zu returned, pinning ended %d, device read of the old "
					 "IOVA: status %u, %s",
					 i, mid, ret, st, a17_any(a.buf, 0xa5, PG) ? "the new memory's bytes" : "no new bytes");
		}
		CHECK_OK(iovm_mr_dereg(mr));
		app_unmap(p, len);
	}
	printf("# replace_mid_pinning_loop: %u of %u rounds reached the new memory; pinning ended 0 in %u\n", bad,
	       rounds, zero);
	CHECK_MSG(bad == 0, "%u of %u rounds: %s", bad, rounds, first);
	a17q_close(&r, &a);
	rig_close(&r);
}

/*
 * fork() while the threads pin: the child writes its copy whole and
 * exits; the parent's registration still reaches the parent's memory,
 * with the parent's bytes, and a device write lands there.
 */
TEST(fork_mid_pinning)
{
	struct rig r;
	struct a17q a;
	size_t len = 16 * MB;
	uint8_t *p = map_aligned(len, 2 * MB);
	struct iovm_mr *mr;
	uint64_t iova;

	if (TEST_TSAN)
		SKIP_CASE("fork() while the monitor watches cannot run under TSan (known-gaps.md)");
	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	a17q_open(&r, &a, PG, IOVM_QUEUE_POLLED);
	for (unsigned round = 0; round < a17_rounds(3); round++) {
		pid_t pid;
		int status;

		memset(p, 0x42, len);
		CHECK_OK(iovm_mr_reg_async(r.dom, p, len, IOVM_ACCESS_LOCAL_WRITE,
					   IOVM_REG_THREADS(2) | IOVM_REG_CHUNK_SHIFT(16 + round % 3), &mr));
		iova = mr_iova(mr, p);
		if (round & 1)
			usleep(300);
		pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			memset(p, 0x77, len);
			munmap(p + MB, MB);
			_exit(0);
		}
		CHECK_EQ(waitpid(pid, &status, 0), pid);
		CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
		CHECK_EQ(iovm_mr_wait(mr, p, len, -1), 0);
		CHECK_MSG(a17_all(p, 0x42, len), "round %u: the parent's memory changed", round);
		for (size_t off = 0; off < len; off += MB / 2) {
			CHECK_EQ(a17_copy(&a, iova + off, a.buf_iova, PG), IOVM_STATUS_SUCCESS);
			CHECK_MSG(a17_all(a.buf, 0x42, PG), "round %u: device read at %zu brought %#x", round, off,
				  a.buf[0]);
			memset(a.buf, 0x33, PG);
			CHECK_EQ(a17_copy(&a, a.buf_iova, iova + off, PG), IOVM_STATUS_SUCCESS);
			CHECK_MSG(a17_all(p + off, 0x33, PG), "round %u: device write at %zu not in the parent's memory",
				  round, off);
		}
		CHECK_EQ(mr_info(mr).valid_pages, len / PG);
		CHECK_OK(iovm_mr_dereg(mr));
	}
	a17q_close(&r, &a);
	rig_close(&r);
	app_unmap(p, len);
}

/*
 * A descriptor that blocks on faults, to a chunk not pinned yet: a DMA
 * fault at once (iovm/reg.h), nothing written; keyed the same.
 */
TEST(block_on_fault_not_pinned)
{
	struct rig r;
	struct a17q a;
	size_t len = 64 * MB;
	uint8_t *p = map_aligned(len, 2 * MB);
	struct iovm_mr *mr;
	struct iovm_mr_info info;
	uint64_t iova;
	unsigned faults = 0;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	a17q_open(&r, &a, PG, IOVM_QUEUE_POLLED);
	for (unsigned round = 0; round < a17_rounds(4); round++) {
		uint8_t st;

		memset(p, 0x42, len);
		CHECK_OK(iovm_mr_reg_async(r.dom, p, len, IOVM_ACCESS_LOCAL_WRITE,
					   IOVM_REG_THREADS(1) | IOVM_REG_CHUNK_SHIFT(16), &mr));
		iova = mr_iova(mr, p);
		info = mr_info(mr);
		memset(a.buf, 0x5a, PG);
		st = a17_run(&a, (struct iovm_desc){ .op = IOVM_OP_COPY,
						     .flags = IOVM_DESC_BLOCK_ON_FAULT,
						     .src = a.buf_iova,
						     .dst = iova + len - PG,
						     .len = PG });
		if (st == IOVM_STATUS_PAGE_FAULT) {
			faults++;
			CHECK_MSG(a17_all(p + len - PG, 0x42, PG), "round %u: a faulted write wrote", round);
		} else {
			CHECK_EQ(st, IOVM_STATUS_SUCCESS);
			CHECK_EQ(iovm_mr_wait(mr, p + len - PG, PG, 0), 0);
		}
		st = a17_run(&a, (struct iovm_desc){ .op = IOVM_OP_COPY,
						     .flags = IOVM_DESC_KEYED | IOVM_DESC_BLOCK_ON_FAULT,
						     .src = (uintptr_t)(p + len - 2 * PG),
						     .src_key = info.lkey,
						     .dst = a.buf_iova,
						     .len = PG });
		CHECK_MSG(st == IOVM_STATUS_PAGE_FAULT || st == IOVM_STATUS_SUCCESS, "keyed: status %u", st);
		if (st == IOVM_STATUS_SUCCESS)
			CHECK(a17_all(a.buf, 0x42, PG));
		CHECK_OK(iovm_mr_dereg(mr));
	}
	printf("# block_on_fault_not_pinned: %u faults\n", faults);
	a17q_close(&r, &a);
	rig_close(&r);
	app_unmap(p, len);
}

int main(void)
{
	test_init();
	alarm(120);
	RUN_SELECTED(writes_kept_while_pinning);
	RUN_SELECTED(munmap_mid_pinning);
	RUN_SELECTED(map_fixed_mid_pinning);
	RUN_SELECTED(munmap_hole_mid_pinning);
	RUN_SELECTED(mremap_mid_pinning);
	RUN_SELECTED(mprotect_ro_mid_pinning);
	RUN_SELECTED(mprotect_none_mid_pinning);
	RUN_SELECTED(dereg_mid_pinning);
	RUN_SELECTED(wait_boundaries);
	RUN_SELECTED(replace_mid_pinning_loop);
	RUN_SELECTED(fork_mid_pinning);
	RUN_SELECTED(block_on_fault_not_pinned);
	RUN_SELECTED(unmapped_tail_is_an_error);
	RUN_SELECTED(memlock_too_small);
	return 0;
}
