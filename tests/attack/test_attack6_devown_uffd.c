/* SPDX-License-Identifier: MIT */
/*
 * test_attack6_devown_uffd.c - own memory that a userfaultfd watches, on
 * the device process: memory the client also registered (on demand,
 * pinned, or the implicit whole address space), which iovm's memory
 * monitor watches with userfaultfd; and memory under the client's own
 * userfaultfd that nobody serves. Pages never touched must still be
 * faulted in, in the client (mp.h), and a client whose faults nobody
 * serves must not stop the device process from serving the others.
 */
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#include "attack6_devown.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)
#define LEN (16 * A6_PAGE)

static struct iovm_desc fill(uint64_t dst, uint32_t len, uint8_t byte)
{
	return (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = dst, .len = len,
				   .pattern = UINT64_C(0x0101010101010101) * byte };
}

static int all(const uint8_t *p, size_t len, uint8_t b)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != b)
			return 0;
	return 1;
}

/* Untouched own memory under a registration of the client's: reached as any own memory. */
static void untouched_under(struct a6_cl *c, uint8_t *fresh, const char *what)
{
	uint8_t *dst = a6_anon(2 * A6_PAGE, PROT_READ | PROT_WRITE);
	uint64_t ifr = a6_map(c->q, fresh, LEN, RW), idst = a6_map(c->q, dst, 2 * A6_PAGE, RW);
	struct iovm_cqe cq;

	memset(dst, 0xee, 2 * A6_PAGE);
	cq = a6_run(c->q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = ifr + 3 * A6_PAGE, .dst = idst,
					      .len = 2 * A6_PAGE });
	{
		CHECK_MSG(cq.status == IOVM_STATUS_SUCCESS,
			  "a read of untouched own memory under a %s registration: status %u after %u bytes", what,
			  cq.status, cq.bytes_completed);
		CHECK(all(dst, 2 * A6_PAGE, 0));
	}
	cq = a6_run(c->q, fill(ifr + 9 * A6_PAGE + 1, 2 * A6_PAGE, 0x5f));
	{
		CHECK_MSG(cq.status == IOVM_STATUS_SUCCESS,
			  "a write of untouched own memory under a %s registration: status %u after %u bytes", what,
			  cq.status, cq.bytes_completed);
		CHECK(all(fresh + 9 * A6_PAGE + 1, 2 * A6_PAGE, 0x5f));
	}
	/* Touched by the client: reached. */
	memset(fresh, 0x61, LEN);
	CHECK_EQ(a6_st(c->q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = ifr + 12 * A6_PAGE, .dst = idst,
						 .len = 2 * A6_PAGE }),
		 IOVM_STATUS_SUCCESS);
	CHECK(all(dst, 2 * A6_PAGE, 0x61));
	/* Unmapped by the client (the monitor sees it): gone for the device too. */
	CHECK(munmap(fresh + 12 * A6_PAGE, 4 * A6_PAGE) == 0);
	CHECK_EQ(a6_st(c->q, fill(ifr + 12 * A6_PAGE, 8, 1)), IOVM_STATUS_PAGE_FAULT);
	CHECK_OK(iovm_rqueue_unmap(c->q, IOVM_IOVA(ifr), LEN));
	CHECK_OK(iovm_rqueue_unmap(c->q, IOVM_IOVA(idst), 2 * A6_PAGE));
	munmap(dst, 2 * A6_PAGE);
}

TEST(own_memory_the_client_registered)
{
	const uint32_t acc = IOVM_ACCESS_LOCAL_READ | IOVM_ACCESS_LOCAL_WRITE;
	struct iovm_ctx *owner;
	struct child srv;
	struct a6_cl c;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	uint8_t *fresh;
	int ret;

	owner = a6_setup("a6reg", &srv, 2);
	c = a6_client(8);
	CHECK_OK(iovm_domain_create(c.ctx, NULL, &dom));
	/* Pinned: faulted in and locked by the registration. */
	fresh = a6_anon(LEN, PROT_READ | PROT_WRITE);
	ret = iovm_mr_reg(dom, fresh, LEN, acc, &mr);
	if (ret == 0) {
		untouched_under(&c, fresh, "pinned");
		CHECK_OK(iovm_mr_dereg(mr));
	} else {
		printf("# pinned registration refused: %d (RLIMIT_MEMLOCK?)\n", ret);
	}
	munmap(fresh, LEN);
	/* On demand: nothing faulted in; the monitor watches the range. */
	fresh = a6_anon(LEN, PROT_READ | PROT_WRITE);
	ret = iovm_mr_reg(dom, fresh, LEN, acc | IOVM_ACCESS_ON_DEMAND, &mr);
	if (ret == 0) {
		untouched_under(&c, fresh, "on-demand");
		CHECK_OK(iovm_mr_dereg(mr));
	} else {
		printf("# on-demand registration refused: %d\n", ret);
	}
	munmap(fresh, LEN);
	/* The implicit registration: the whole address space, children made on first access. */
	fresh = a6_anon(LEN, PROT_READ | PROT_WRITE);
	ret = iovm_mr_reg(dom, NULL, SIZE_MAX, acc | IOVM_ACCESS_ON_DEMAND, &mr);
	if (ret == 0) {
		/* A device access of the client's own domain, by key, makes the child over fresh. */
		untouched_under(&c, fresh, "implicit");
		CHECK_OK(iovm_mr_dereg(mr));
	} else {
		printf("# implicit registration refused: %d\n", ret);
	}
	munmap(fresh, LEN);
	CHECK_OK(iovm_domain_destroy(dom));
	a6_client_close(&c);
	a6_teardown(owner, &srv);
}

static int uffd_on(void *p, size_t len)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .range = { .start = (uintptr_t)p, .len = len },
				       .mode = UFFDIO_REGISTER_MODE_MISSING };
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0) /* unprivileged: only faults of user mode */
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0)
		return -1;
	if (ioctl(fd, UFFDIO_API, &api) || ioctl(fd, UFFDIO_REGISTER, &reg)) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * A client's own userfaultfd over its memory, with nobody serving it: the
 * device process (one worker) must not wait on it for ever, and serves
 * another client meanwhile; the client's death ends whatever waits.
 */
static void stuck_client(int rd, int wr, void *arg)
{
	struct a6_cl c = a6_client(8);
	uint8_t *m = a6_anon(LEN, PROT_READ | PROT_WRITE);
	uint64_t im = a6_map(c.q, m, LEN, RW);
	int fd = uffd_on(m, LEN);
	struct iovm_cqe cq;

	(void)arg;
	put64(wr, fd >= 0);
	if (fd < 0)
		return;
	CHECK_OK(iovm_rqueue_submit(c.q, &(struct iovm_desc){ .op = IOVM_OP_FILL, .dst = im, .len = LEN, .tag = 1 }));
	put64(wr, 2);
	get64(rd); /* the other client was served; now see how this one ended, if it did */
	{
		int n = iovm_rqueue_reap(c.q, &cq, 1);

		put64(wr, n == 1 ? cq.status : 0);
	}
	get64(rd);
	close(fd);
}

TEST(an_unserved_userfaultfd_stops_nobody_else)
{
	struct iovm_ctx *owner;
	struct child srv, k;
	struct a6_cl other;
	uint8_t *o = a6_anon(A6_PAGE, PROT_READ | PROT_WRITE);
	uint64_t io, st;

	owner = a6_setup("a6uffd", &srv, 1); /* one worker: a wait on the client's fault would stop all */
	k = child_start(stuck_client, NULL);
	if (!get64(k.rd)) {
		child_ok(&k);
		a6_teardown(owner, &srv);
		munmap(o, A6_PAGE);
		SKIP_CASE("no userfaultfd for this process");
	}
	CHECK_EQ(get64(k.rd), 2);
	other = a6_client(8);
	io = a6_map(other.q, o, A6_PAGE, RW);
	for (int i = 0; i < 20; i++) {
		CHECK_EQ(a6_st(other.q, fill(io, A6_PAGE, (uint8_t)(i + 1))), IOVM_STATUS_SUCCESS);
		CHECK_EQ(o[A6_PAGE - 1], i + 1);
	}
	put64(k.wr, 1);
	st = get64(k.rd);
	printf("# a FILL of memory under an unserved userfaultfd: %s (status %" PRIu64 ")\n",
	       st ? "completed" : "not completed yet", st);
	CHECK(st == 0 || st == IOVM_STATUS_SUCCESS || st == IOVM_STATUS_PAGE_FAULT);
	if (st) {
		put64(k.wr, 1);
		child_ok(&k);
	} else {
		child_kill(&k);
	}
	/* Whatever waited, the device process serves on, and lets the client go. */
	CHECK_EQ(a6_st(other.q, fill(io, A6_PAGE, 0x42)), IOVM_STATUS_SUCCESS);
	WAIT_UNTIL(a6_server_info(&srv).clients == 1);
	a6_client_close(&other);
	munmap(o, A6_PAGE);
	a6_teardown(owner, &srv);
}

int main(void)
{
	test_init();
	RUN(own_memory_the_client_registered);
	RUN(an_unserved_userfaultfd_stops_nobody_else);
	return 0;
}
