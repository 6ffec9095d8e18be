/* SPDX-License-Identifier: MIT */
/*
 * test_attack6_devown_race.c - a client's own memory on the device while
 * things change under it: the client munmap()s or mremap()s pages while
 * descriptors run on them (once the call returns, the pages that went,
 * seen through another mapping of their memfd, change no more); the
 * client unmaps a range on the device while descriptors run on it; the
 * client forks while the device writes its memory (copy-on-write: the
 * parent sees every write, the child none), and a forked child maps the
 * same addresses on a queue of its own. Then isolation of own memory
 * between clients, by IOVA, PASID, batch, completion record and list
 * entries.
 */
#include <pthread.h>

#include "attack6_devown.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)
#define NPG 64

static struct iovm_desc fill(uint64_t dst, uint32_t len, uint8_t byte)
{
	return (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = dst, .len = len,
				   .pattern = UINT64_C(0x0101010101010101) * byte };
}

/* A thread keeping FILLs of [iova, iova+len) in flight until told to stop, then draining them. */
struct filler {
	struct iovm_rqueue *q;
	uint64_t iova;
	uint32_t len;
	atomic_int stop;
	atomic_ulong done, faulted;
	pthread_t thr;
};

static void *filler_main(void *arg)
{
	struct filler *f = arg;
	unsigned inflight = 0;
	uint8_t b = 1;

	while (!atomic_load(&f->stop) || inflight) {
		struct iovm_cqe cqe[8];
		int n;

		if (!atomic_load(&f->stop) && inflight < 6) {
			uint32_t off = (uint32_t)(b * 4096u) % f->len;
			int ret = iovm_rqueue_submit(f->q, &(struct iovm_desc){
				.op = IOVM_OP_FILL, .dst = f->iova + off, .len = f->len - off,
				.pattern = UINT64_C(0x0101010101010101) * b });

			CHECK(ret == 0 || ret == -EAGAIN);
			if (!ret) {
				inflight++;
				b = (uint8_t)(b % 250 + 1);
			}
		}
		n = iovm_rqueue_reap(f->q, cqe, 8);
		CHECK(n >= 0);
		for (int i = 0; i < n; i++) {
			CHECK(cqe[i].status == IOVM_STATUS_SUCCESS || cqe[i].status == IOVM_STATUS_PAGE_FAULT);
			atomic_fetch_add(cqe[i].status == IOVM_STATUS_SUCCESS ? &f->done : &f->faulted, 1);
		}
		inflight -= (unsigned)n;
		if (!n)
			usleep(5);
	}
	return NULL;
}

static void filler_start(struct filler *f, struct iovm_rqueue *q, uint64_t iova, uint32_t len)
{
	memset(f, 0, sizeof(*f));
	f->q = q;
	f->iova = iova;
	f->len = len;
	CHECK(pthread_create(&f->thr, NULL, filler_main, f) == 0);
	WAIT_UNTIL(atomic_load(&f->done) + atomic_load(&f->faulted) >= 1);
}

static void filler_stop(struct filler *f)
{
	atomic_store(&f->stop, 1);
	CHECK(pthread_join(f->thr, NULL) == 0);
}

/*
 * munmap() or mremap() of own memory (a memfd's pages) while FILLs run on
 * it: once the call returns, the pages that went (still seen through an
 * alias mapping of the memfd) are never written again; mapped back at the
 * same address, they are reached again.
 */
TEST(munmap_and_mremap_while_running)
{
	const size_t len = NPG * A6_PAGE;
	struct iovm_ctx *owner;
	struct child srv;
	struct a6_cl c;
	uint8_t *a, *alias, *snap = malloc(len), *park = a6_anon(len, PROT_NONE);
	uint64_t ia, seed = 0xa6ace;
	unsigned stale = 0;
	unsigned long faulted = 0;
	int fd;

	CHECK(snap != NULL);
	owner = a6_setup("a6unmap", &srv, 2);
	c = a6_client(16);
	a = a6_memfd(len, &fd);
	alias = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(alias != MAP_FAILED);
	ia = a6_map(c.q, a, len, RW);
	for (int round = 0; round < 24; round++) {
		struct filler f;
		size_t first = (size_t)(test_rand(&seed) % (NPG / 2)), n = 1 + test_rand(&seed) % (NPG / 2);
		int how = round % 3; /* munmap; mremap elsewhere; munmap of the whole range */

		if (how == 2) {
			first = 0;
			n = NPG;
		}
		filler_start(&f, c.q, ia, (uint32_t)len);
		usleep((useconds_t)(test_rand(&seed) % 3000));
		if (how == 1)
			CHECK(mremap(a + first * A6_PAGE, n * A6_PAGE, n * A6_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
				     park + first * A6_PAGE) == park + first * A6_PAGE);
		else
			CHECK(munmap(a + first * A6_PAGE, n * A6_PAGE) == 0);
		memcpy(snap, alias + first * A6_PAGE, n * A6_PAGE);
		usleep(2000);
		filler_stop(&f);
		faulted += atomic_load(&f.faulted);
		if (memcmp(snap, alias + first * A6_PAGE, n * A6_PAGE)) {
			stale++;
			printf("# round %d (%s of pages %zu..%zu): the device wrote them after the call returned\n",
			       round, how == 1 ? "mremap" : "munmap", first, first + n - 1);
		}
		/* Back at the same address (what mremap moved, moved back): reached again. */
		if (how == 1)
			CHECK(mremap(park + first * A6_PAGE, n * A6_PAGE, n * A6_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
				     a + first * A6_PAGE) == a + first * A6_PAGE);
		else
			CHECK(mmap(a + first * A6_PAGE, n * A6_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
				   (off_t)(first * A6_PAGE)) == a + first * A6_PAGE);
		if (how == 1) /* park's range is free again: PROT_NONE there, for the next round */
			CHECK(mmap(park + first * A6_PAGE, n * A6_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
				   -1, 0) == park + first * A6_PAGE);
		CHECK_EQ(a6_st(c.q, fill(ia + first * A6_PAGE, (uint32_t)(n * A6_PAGE), 0xfe)), IOVM_STATUS_SUCCESS);
		CHECK_EQ(alias[first * A6_PAGE], 0xfe);
		CHECK_EQ(alias[(first + n) * A6_PAGE - 1], 0xfe);
	}
	CHECK_MSG(stale == 0, "%u rounds: the device reached pages after the client's munmap/mremap returned", stale);
	printf("# %lu FILLs faulted on pages gone\n", faulted);
	CHECK(faulted > 0);
	a6_client_close(&c);
	munmap(a, len);
	munmap(alias, len);
	munmap(park, len);
	close(fd);
	free(snap);
	a6_teardown(owner, &srv);
}

/* iovm_rqueue_unmap() while FILLs run on the range: once it returns, the memory changes no more. */
TEST(rqueue_unmap_while_running)
{
	const size_t len = 256 * A6_PAGE;
	struct iovm_ctx *owner;
	struct child srv;
	struct a6_cl c;
	uint8_t *a = a6_anon(len, PROT_READ | PROT_WRITE), *snap = malloc(len);
	uint64_t seed = 0xa6b0b;
	unsigned stale = 0;
	unsigned long faulted = 0;

	CHECK(snap != NULL);
	owner = a6_setup("a6runm", &srv, 2);
	c = a6_client(16);
	for (int round = 0; round < 20; round++) {
		uint64_t ia = a6_map(c.q, a, len, RW);
		struct filler f;

		filler_start(&f, c.q, ia, (uint32_t)len);
		usleep((useconds_t)(test_rand(&seed) % 3000));
		CHECK_OK(iovm_rqueue_unmap(c.q, IOVM_IOVA(ia), len));
		memcpy(snap, a, len);
		usleep(2000);
		filler_stop(&f);
		faulted += atomic_load(&f.faulted);
		if (memcmp(snap, a, len)) {
			stale++;
			printf("# round %d: the device wrote the range after iovm_rqueue_unmap() returned\n", round);
		}
		CHECK_EQ(a6_st(c.q, fill(ia, 64, 1)), IOVM_STATUS_PAGE_FAULT);
	}
	CHECK_EQ(stale, 0);
	printf("# %lu FILLs faulted on the range unmapped\n", faulted);
	CHECK(faulted > 0);
	a6_client_close(&c);
	munmap(a, len);
	free(snap);
	a6_teardown(owner, &srv);
}

/* The device writes a client's private memory while it forks: every write is the parent's, none its children's. */
struct forker {
	atomic_int stop;
	atomic_uint forks, bad_children;
	uint8_t *mem;
};

static void *forker_main(void *arg)
{
	struct forker *fk = arg;

	while (!atomic_load(&fk->stop)) {
		uint8_t first = fk->mem[0];
		pid_t pid = fork();
		int st;

		CHECK(pid >= 0);
		if (!pid) {
			/* The child's copy is what the parent had at the fork, whatever the device does after. */
			uint8_t now = fk->mem[0], later = fk->mem[7 * A6_PAGE];

			usleep(300);
			_exit(fk->mem[0] == now && fk->mem[7 * A6_PAGE] == later ? 0 : 3);
		}
		(void)first;
		CHECK(waitpid(pid, &st, 0) == pid);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			atomic_fetch_add(&fk->bad_children, 1);
		atomic_fetch_add(&fk->forks, 1);
	}
	return NULL;
}

TEST(fork_while_the_device_writes)
{
	const size_t len = 16 * A6_PAGE;
	struct iovm_ctx *owner;
	struct child srv, kid;
	struct a6_cl c;
	struct forker fk = { 0 };
	pthread_t thr;
	uint8_t *m = a6_anon(len, PROT_READ | PROT_WRITE);
	uint64_t im;
	int up[2];
	unsigned lost = 0;

	owner = a6_setup("a6fork", &srv, 2);
	c = a6_client(8);
	memset(m, 0x11, len);
	im = a6_map(c.q, m, len, RW);
	/* A child forked after the map: the device's writes are the parent's. */
	CHECK(pipe(up) == 0);
	fflush(NULL);
	kid.pid = fork();
	CHECK(kid.pid >= 0);
	if (!kid.pid) {
		char x;

		close(up[1]);
		if (read(up[0], &x, 1) != 1)
			_exit(2);
		for (size_t i = 0; i < len; i++)
			if (m[i] != 0x11)
				_exit(3);
		_exit(0);
	}
	close(up[0]);
	CHECK_EQ(a6_st(c.q, fill(im, (uint32_t)len, 0x22)), IOVM_STATUS_SUCCESS);
	for (size_t i = 0; i < len; i += 511)
		CHECK_MSG(m[i] == 0x22, "byte %zu: %#x: the device's write after a fork missed the parent", i, m[i]);
	CHECK(write(up[1], "x", 1) == 1);
	close(up[1]);
	{
		int st;

		CHECK(waitpid(kid.pid, &st, 0) == kid.pid);
		CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the forked child saw the device's write: %#x", st);
	}
	/* Forks racing with the device's writes. */
	fk.mem = m;
	CHECK(pthread_create(&thr, NULL, forker_main, &fk) == 0);
	for (unsigned k = 0; k < 300 || (atomic_load(&fk.forks) < 100 && k < 20000); k++) {
		uint8_t b = (uint8_t)(k % 200 + 30);

		CHECK_EQ(a6_st(c.q, fill(im + (k % 8) * A6_PAGE, 8 * A6_PAGE, b)), IOVM_STATUS_SUCCESS);
		if (m[(k % 8) * A6_PAGE] != b || m[(k % 8) * A6_PAGE + 8 * A6_PAGE - 1] != b)
			lost++;
	}
	atomic_store(&fk.stop, 1);
	CHECK(pthread_join(thr, NULL) == 0);
	printf("# %u forks raced the device's writes\n", atomic_load(&fk.forks));
	CHECK_MSG(lost == 0, "%u writes of the device went to a forked child instead of the parent", lost);
	CHECK_EQ(atomic_load(&fk.bad_children), 0);
	CHECK(atomic_load(&fk.forks) > 0);
	a6_client_close(&c);
	munmap(m, len);
	a6_teardown(owner, &srv);
	(void)kid;
}

/* Two queues of one client on the same own memory: closing one while the other runs leaves the other whole. */
TEST(two_queues_one_closes)
{
	const size_t len = 64 * A6_PAGE;
	struct iovm_ctx *owner;
	struct child srv;
	struct a6_cl c;
	struct iovm_rqueue *q2;
	uint8_t *m = a6_anon(len, PROT_READ | PROT_WRITE);
	uint64_t i1, i2;
	struct filler f;
	unsigned mem, sock;

	owner = a6_setup("a6twoq", &srv, 2);
	c = a6_client(16);
	CHECK_OK(iovm_rqueue_open(c.ctx, a6_dev, 16, &q2));
	i1 = a6_map(c.q, m, len, RW);
	i2 = a6_map(q2, m, len, RW);
	filler_start(&f, q2, i2, (uint32_t)len);
	for (int i = 0; i < 20; i++)
		CHECK_EQ(a6_st(c.q, fill(i1 + (uint64_t)i * A6_PAGE, A6_PAGE, 0x9a)), IOVM_STATUS_SUCCESS);
	CHECK_OK(iovm_rqueue_close(c.q));
	{
		unsigned long before = atomic_load(&f.done);

		WAIT_UNTIL(atomic_load(&f.done) >= before + 20);
	}
	filler_stop(&f);
	CHECK_EQ(atomic_load(&f.faulted), 0);
	CHECK_EQ(a6_st(q2, fill(i2, len, 0x9b)), IOVM_STATUS_SUCCESS);
	CHECK_EQ(m[len - 1], 0x9b);
	WAIT_UNTIL((a6_fds(srv.pid, &mem, &sock), mem <= 1));
	CHECK_OK(iovm_rqueue_close(q2));
	WAIT_UNTIL((a6_fds(srv.pid, &mem, &sock), mem == 0));
	CHECK_OK(iovm_close(c.ctx));
	munmap(m, len);
	a6_teardown(owner, &srv);
}

int main(void)
{
	test_init();
	RUN(munmap_and_mremap_while_running);
	RUN(rqueue_unmap_while_running);
	RUN(fork_while_the_device_writes);
	RUN(two_queues_one_closes);
	return 0;
}
