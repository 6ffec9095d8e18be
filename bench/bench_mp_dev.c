/* SPDX-License-Identifier: MIT */
/*
 * bench_mp_dev.c - the device-process rows of `iovm bench mp`: descriptors
 * per second from 1, 2, 4 and 16 client processes into one device process
 * (iovm_device_serve(), iovm_rqueue_*()), and the speed-up from 1 to 2
 * clients; beside them, the same engine in one process (a queue of
 * iovm_device_open(ctx, "sw") with its worker thread), so that the ratio
 * says what crossing processes costs.
 *
 * Every process is forked from the benchmark, which holds no context: the
 * share's owner (bench_mp.c's), a device process attached to it serving
 * with DEV_WORKERS workers, N clients attached to it, and the in-process
 * peer with a context of its own. Each client keeps its queue of depth
 * DEV_DEPTH full of COPY descriptors of one size between buffers of its
 * own, mapped on the device; a round runs every client over the same
 * window of time (absolute CLOCK_MONOTONIC times, the same in every
 * process) and the rate is the completions reaped inside the window, all
 * clients together, over its length. A warm-up round first, then the
 * rounds alternate with the peer's, and the median is reported.
 */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#include <iovm.h>

#include "bench.h"
#include "bench_mp.h"

#define DEV_DEPTH 64
#define DEV_WORKERS 2
/* Copies cycle through this many slots of a client's buffers. */
#define DEV_SLOTS 16
/* A round's window: long enough for thousands of descriptors from every client. */
#define DEV_ROUND_NS (UINT64_C(200) * 1000000)
#define DEV_ROUND_QUICK_NS (UINT64_C(20) * 1000000)
/* How long a client may go without a completion before it calls the device gone. */
#define DEV_STALL_NS (UINT64_C(10) * 1000000000)

static const unsigned dev_clients[] = { 1, 2, 4, 16 };
#define NR_COUNTS (sizeof(dev_clients) / sizeof(dev_clients[0]))

/* What every process of the section knows, set before the forks. */
static struct {
	const struct mp_cfg *cfg;
	const char *share;
	char device[IOVM_SHARE_NAMESIZE];
	uint32_t len; /* bytes per copy */
	bool own;     /* clients copy between buffers of their own memory, not the shared heap's */
} dv;

/*
 * A round: the window, in CLOCK_MONOTONIC ns; t_end 0 ends the process.
 * Said, not left to the pipe's end: the processes forked later hold
 * copies of the driver's ends of the earlier ones' pipes.
 */
struct dev_round {
	uint64_t t_start, t_end;
};

struct dev_count {
	int err;            /* 0, or what failed (a negative errno) */
	uint64_t in_window; /* completions reaped inside the window */
	uint64_t total;     /* all completions reaped, ever */
	char why[128];
};

/* ---- one stream of copies, through either kind of queue ---- */

struct streamer {
	void *q;
	int (*submit)(void *q, const struct iovm_desc *d);
	int (*reap)(void *q, struct iovm_cqe *cqe, unsigned max);
	uint8_t *src, *dst;          /* this process's pointers */
	uint64_t src_iova, dst_iova; /* the device's */
	uint32_t span;               /* bytes of each buffer */
	uint64_t submitted, completed;
};

static int rq_submit(void *q, const struct iovm_desc *d)
{
	return iovm_rqueue_submit(q, d);
}

static int rq_reap(void *q, struct iovm_cqe *cqe, unsigned max)
{
	return iovm_rqueue_reap(q, cqe, max);
}

static int lq_submit(void *q, const struct iovm_desc *d)
{
	return iovm_queue_submit(q, d);
}

static int lq_reap(void *q, struct iovm_cqe *cqe, unsigned max)
{
	return iovm_queue_reap(q, cqe, max);
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = { .tv_sec = (time_t)(t / 1000000000u), .tv_nsec = (long)(t % 1000000000u) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/*
 * One round: from @rd's start, keep the queue full until its end, then
 * drain what is in flight. Completions are counted while the window is
 * open; each must have succeeded, and the destination must then hold the
 * source's bytes. Nothing to submit and nothing to reap: the CPU goes to
 * whoever runs the descriptors (the device's workers share it).
 */
static void stream_round(struct streamer *s, const struct dev_round *rd, struct dev_count *out)
{
	struct iovm_cqe cqe[DEV_DEPTH];
	uint64_t last_progress = 0;
	bool open = true;
	uint32_t slots;

	out->in_window = 0;
	sleep_until(rd->t_start);
	for (;;) {
		uint64_t now = bench_now_ns();
		bool moved = false;
		int n;

		if (open && now >= rd->t_end)
			open = false;
		if (!open && s->submitted == s->completed)
			break;
		while (open) {
			uint64_t slot = (s->submitted % DEV_SLOTS) * dv.len;
			struct iovm_desc d = { .op = IOVM_OP_COPY, .src = s->src_iova + slot, .dst = s->dst_iova + slot,
					       .len = dv.len, .tag = s->submitted };
			int ret = s->submit(s->q, &d);

			if (ret == -EAGAIN)
				break;
			if (ret) {
				out->err = ret;
				snprintf(out->why, sizeof(out->why), "submit");
				return;
			}
			s->submitted++;
			moved = true;
		}
		n = s->reap(s->q, cqe, DEV_DEPTH);
		if (n < 0) {
			out->err = n;
			snprintf(out->why, sizeof(out->why), "reap");
			return;
		}
		for (int i = 0; i < n; i++)
			if (cqe[i].status != IOVM_STATUS_SUCCESS) {
				out->err = -EIO;
				snprintf(out->why, sizeof(out->why), "a copy ended with status %u", cqe[i].status);
				return;
			}
		s->completed += (uint64_t)n;
		if (open)
			out->in_window += (uint64_t)n;
		if (n || moved) {
			last_progress = now;
			continue;
		}
		if (!last_progress)
			last_progress = now;
		if (now - last_progress > DEV_STALL_NS) {
			out->err = -ETIMEDOUT;
			snprintf(out->why, sizeof(out->why), "no completion for 10 s");
			return;
		}
		sched_yield();
	}
	out->total = s->completed;
	/*
	 * The slots copied so far: on a loaded machine a process may wake
	 * after its window closed and copy nothing in its first round.
	 */
	slots = s->completed < DEV_SLOTS ? (uint32_t)s->completed : DEV_SLOTS;
	if (memcmp(s->src, s->dst, (size_t)slots * dv.len)) {
		uint32_t first = 0, bad = 0, zero = 0;

		/* Which slots, and what they hold instead: enough to tell a lost copy from a misplaced one. */
		for (uint32_t k = 0; k < slots; k++) {
			const uint8_t *d = s->dst + (size_t)k * dv.len;
			bool z = true;

			if (!memcmp(s->src + (size_t)k * dv.len, d, dv.len))
				continue;
			if (!bad++)
				first = k;
			for (uint32_t b = 0; b < dv.len && z; b++)
				z = !d[b];
			zero += z;
		}
		out->err = -EIO;
		snprintf(out->why, sizeof(out->why),
			 "a destination does not hold its source's bytes: %u of %u slots (%u all zero), first %u, "
			 "after %llu copies", bad, slots, zero, first, (unsigned long long)s->completed);
	}
}

/* Buffers of DEV_SLOTS copies each (whole pages), the source patterned; false with out->err set. */
static bool stream_buffers(struct iovm_ctx *ctx, struct streamer *s, struct dev_count *out)
{
	s->span = (DEV_SLOTS * dv.len + 4095) & ~4095u; /* the device maps whole pages */
	if (dv.own) {
		/* The process's own memory, as malloc() would give it: the device reaches it through its memory file. */
		s->src = mmap(NULL, s->span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		s->dst = mmap(NULL, s->span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (s->src == MAP_FAILED || s->dst == MAP_FAILED)
			s->src = s->dst = NULL;
	} else {
		s->src = iovm_dma_alloc(ctx, s->span, 4096, 0);
		s->dst = iovm_dma_zalloc(ctx, s->span, 4096, 0);
	}
	if (!s->src || !s->dst) {
		out->err = -ENOMEM;
		snprintf(out->why, sizeof(out->why), "iovm_dma_alloc");
		return false;
	}
	for (uint32_t i = 0; i < s->span; i++)
		s->src[i] = (uint8_t)(i * 7 + 1);
	return true;
}

/* Tell the driver how setup went, then run the rounds it sends until it closes the pipe. */
static void stream_serve(int rd, int wr, struct streamer *s, struct dev_count *setup)
{
	struct dev_round round;

	if (mp_put(wr, setup, sizeof(*setup)) || setup->err)
		return;
	while (!mp_get(rd, &round, sizeof(round)) && round.t_end) {
		struct dev_count c = { 0 };

		stream_round(s, &round, &c);
		if (mp_put(wr, &c, sizeof(c)) || c.err)
			return;
	}
}

/* ---- the processes ---- */

static void fail_at(struct dev_count *c, int err, const char *call)
{
	c->err = err;
	/* The detail names the call, or says no more than its name. */
	snprintf(c->why, sizeof(c->why), "%s", *iovm_error_detail() ? iovm_error_detail() : call);
}

/* A client of the device process: a queue on it, its two buffers mapped. */
static void client_main(int rd, int wr, void *arg)
{
	struct streamer s = { .submit = rq_submit, .reap = rq_reap };
	struct dev_count setup = { 0 };
	struct iovm_rqueue *q = NULL;
	struct iovm_ctx *ctx = NULL;
	iovm_iova_t is, id;
	int ret;

	(void)arg;
	if ((ret = iovm_attach(dv.share, dv.cfg->opts, &ctx))) {
		fail_at(&setup, ret, "iovm_attach");
	} else if ((ret = iovm_rqueue_open(ctx, dv.device, DEV_DEPTH, &q))) {
		fail_at(&setup, ret, "iovm_rqueue_open");
	} else if (stream_buffers(ctx, &s, &setup)) {
		if ((ret = iovm_rqueue_map(q, s.src, s.span, IOVM_MAP_READ, &is)) ||
		    (ret = iovm_rqueue_map(q, s.dst, s.span, IOVM_MAP_READ | IOVM_MAP_WRITE, &id)))
			fail_at(&setup, ret, "iovm_rqueue_map");
		s.q = q;
		s.src_iova = is.addr;
		s.dst_iova = id.addr;
	}
	stream_serve(rd, wr, &s, &setup);
	/* Closing the queue unmaps and gives back what it lent; closing the context frees the buffers. */
	if (q)
		iovm_rqueue_close(q);
	if (ctx)
		iovm_close(ctx);
}

/* The same engine in one process: a context of its own, a queue with its worker thread. */
static void local_main(int rd, int wr, void *arg)
{
	struct iovm_domain_attr da = { .type = IOVM_DOMAIN_MANAGED };
	struct iovm_queue_attr qa = { .depth = DEV_DEPTH };
	struct streamer s = { .submit = lq_submit, .reap = lq_reap };
	struct dev_count setup = { 0 };
	struct iovm_domain *dom = NULL;
	struct iovm_device *dev = NULL;
	struct iovm_queue *q = NULL;
	struct iovm_ctx *ctx = NULL;
	iovm_iova_t is, id;
	int ret;

	(void)arg;
	if ((ret = iovm_open(dv.cfg->opts, &ctx)))
		fail_at(&setup, ret, "iovm_open");
	else if ((ret = iovm_domain_create(ctx, &da, &dom)))
		fail_at(&setup, ret, "iovm_domain_create");
	else if ((ret = iovm_device_open(ctx, "sw", &dev)))
		fail_at(&setup, ret, "iovm_device_open");
	else if ((ret = iovm_device_attach(dev, dom, IOVM_PASID_NONE)))
		fail_at(&setup, ret, "iovm_device_attach");
	else if ((ret = iovm_queue_create(dev, &qa, &q)))
		fail_at(&setup, ret, "iovm_queue_create");
	else if (stream_buffers(ctx, &s, &setup)) {
		if ((ret = iovm_domain_map_ptr(dom, s.src, s.span, IOVM_MAP_READ, &is)) ||
		    (ret = iovm_domain_map_ptr(dom, s.dst, s.span, IOVM_MAP_READ | IOVM_MAP_WRITE, &id)))
			fail_at(&setup, ret, "iovm_domain_map_ptr");
		s.q = q;
		s.src_iova = is.addr;
		s.dst_iova = id.addr;
	}
	stream_serve(rd, wr, &s, &setup);
	/* The process ends here: closing the context takes the rest. */
	if (q)
		iovm_queue_destroy(q);
	if (ctx)
		iovm_close(ctx);
}

/* The device process: serves until the driver closes the pipe, then sends its descriptor count. */
static void device_main(int rd, int wr, void *arg)
{
	struct iovm_device_server_info info = { 0 };
	struct iovm_device_server *srv = NULL;
	struct dev_count setup = { 0 };
	struct iovm_ctx *ctx = NULL;
	char c;
	int ret;

	(void)arg;
	if ((ret = iovm_attach(dv.share, dv.cfg->opts, &ctx)))
		fail_at(&setup, ret, "iovm_attach");
	else if ((ret = iovm_device_serve(ctx, dv.device, DEV_WORKERS, &srv)))
		fail_at(&setup, ret, "iovm_device_serve");
	if (!mp_put(wr, &setup, sizeof(setup)) && !setup.err) {
		mp_get(rd, &c, 1); /* until the driver is done */
		iovm_device_server_info(srv, &info);
		mp_put(wr, &info.descriptors, sizeof(info.descriptors));
	}
	if (srv)
		iovm_device_server_stop(srv);
	if (ctx)
		iovm_close(ctx);
}

/* ---- the driver ---- */

/* End a stream process and wait for it. */
static void stop_stream(struct mp_child *c)
{
	struct dev_round end = { 0 };

	mp_put(c->wr, &end, sizeof(end));
	mp_child_wait(c);
}

/* Start a process of the section; false (with a note) when it did not come up. */
static bool start(struct mp_child *c, void (*fn)(int, int, void *), const char *what)
{
	struct dev_count setup = { .err = -EPIPE };
	int ret = mp_child_start(c, fn, NULL);

	if (ret) {
		bench_note("device process: fork of %s: %s", what, strerror(-ret));
		return false;
	}
	if (mp_get(c->rd, &setup, sizeof(setup)) || setup.err) {
		bench_note("device process: %s: %s: %s", what, iovm_strerror(setup.err), setup.why);
		mp_child_wait(c);
		return false;
	}
	return true;
}

/*
 * One round of @n processes over the same window: their completions inside
 * it, in descriptors per second (millions); NAN when one failed. Each
 * process's cumulative count of completions goes to @totals[i].
 */
static double round_rate(struct mp_child *procs, unsigned n, uint64_t *totals)
{
	uint64_t len = dv.cfg->quick ? DEV_ROUND_QUICK_NS : DEV_ROUND_NS;
	/* Time enough for every process to get its message and sleep until the start. */
	struct dev_round rd = { .t_start = bench_now_ns() + 2000000 + n * 250000u };
	uint64_t sum = 0;
	bool ok = true;

	rd.t_end = rd.t_start + len;
	for (unsigned i = 0; i < n; i++)
		if (mp_put(procs[i].wr, &rd, sizeof(rd)))
			ok = false;
	for (unsigned i = 0; i < n; i++) {
		struct dev_count c = { .err = -EPIPE };

		if (mp_get(procs[i].rd, &c, sizeof(c)) || c.err) {
			if (ok)
				bench_note("device process: a stream of %u B copies: %s: %s", dv.len,
					   iovm_strerror(c.err), c.why);
			ok = false;
			continue;
		}
		sum += c.in_window;
		totals[i] = c.total;
	}
	return ok ? (double)sum / ((double)len / 1e9) / 1e6 : NAN;
}

/*
 * A warm-up round, then the repetitions, each of the @n clients' rounds
 * followed by one of the peer's: the medians, NAN where a round failed.
 * Adds the clients' completions to *@completions.
 */
static double rounds_of(struct mp_child *clients, unsigned n, struct mp_child *peer, double *peer_rate,
			uint64_t *completions, bool peer_on_device)
{
	uint64_t totals[16] = { 0 }, peer_total = 0;
	unsigned reps = dv.cfg->reps, nv = 0, np = 0;
	double v[32], p[32];

	for (unsigned r = 0; r <= reps; r++) {
		double x = round_rate(clients, n, totals);

		if (r && !isnan(x))
			v[nv++] = x;
		x = peer ? round_rate(peer, 1, &peer_total) : NAN;
		if (r && !isnan(x))
			p[np++] = x;
	}
	for (unsigned i = 0; i < n; i++)
		*completions += totals[i];
	/* A peer that is a client of the device process too: the device counts its descriptors. */
	if (peer_on_device)
		*completions += peer_total;
	*peer_rate = np == reps ? bench_median(p, np) : NAN;
	return nv == reps ? bench_median(v, nv) : NAN;
}

/* The rows of one copy size: 1, 2, 4, 16 clients, the speed-up, the peer beside each. */
static void rows_of(uint32_t len, uint64_t *completions)
{
	struct mp_child clients[16], peer;
	double rate[NR_COUNTS], peer_rate;
	bool peer_up;
	char name[64], size[16];

	dv.len = len;
	bench_size(len, size, sizeof(size));
	if (len < 1024)
		snprintf(size, sizeof(size), "%u B", len);
	bench_progress("device process: %s copies from 1-16 clients", size);
	peer_up = start(&peer, local_main, "the in-process engine");
	for (unsigned k = 0; k < NR_COUNTS; k++) {
		unsigned n = dev_clients[k], up = 0;

		rate[k] = NAN;
		peer_rate = NAN;
		while (up < n && start(&clients[up], client_main, "a client"))
			up++;
		if (up == n)
			rate[k] = rounds_of(clients, n, peer_up ? &peer : NULL, &peer_rate, completions, false);
		for (unsigned i = 0; i < up; i++)
			stop_stream(&clients[i]);
		snprintf(name, sizeof(name), "device: copy %s, %u client%s", size, n, n > 1 ? "s" : "");
		bench_result(name, "Mdesc/s", rate[k], "same engine, one process, 1 queue", peer_rate, "report");
	}
	if (peer_up)
		stop_stream(&peer);
	snprintf(name, sizeof(name), "device: copy %s, speed-up 1 to 2 clients", size);
	bench_result(name, "x", rate[1] / rate[0], "none", NAN, "report");
}

/*
 * One client copying between buffers of its own memory (not the heap's):
 * the device process moves them through the client's memory file, a
 * system call per 4 KiB page and side; beside it, the same client on
 * heap memory, which the device process has mapped.
 */
static void own_rows(uint32_t len, uint64_t *completions)
{
	struct mp_child own, heap;
	double rate = NAN, heap_rate = NAN;
	bool own_up, heap_up;
	char name[64], size[16];

	dv.len = len;
	bench_size(len, size, sizeof(size));
	if (len < 1024)
		snprintf(size, sizeof(size), "%u B", len);
	bench_progress("device process: %s copies of a client's own memory", size);
	heap_up = start(&heap, client_main, "a client on heap memory");
	dv.own = true;
	own_up = start(&own, client_main, "a client on its own memory");
	dv.own = false;
	if (own_up)
		rate = rounds_of(&own, 1, heap_up ? &heap : NULL, &heap_rate, completions, true);
	if (own_up)
		stop_stream(&own);
	if (heap_up)
		stop_stream(&heap);
	snprintf(name, sizeof(name), "device: copy %s of own memory, 1 client", size);
	bench_result(name, "Mdesc/s", rate, "the same client, heap memory", heap_rate, "report");
}

void mp_dev_bench(const struct mp_cfg *cfg, const char *share)
{
	uint64_t completions = 0, served = 0;
	struct mp_child device;

	dv.cfg = cfg;
	dv.share = share;
	snprintf(dv.device, sizeof(dv.device), "iovm-bench-dev-%d", (int)getpid());
	if (!start(&device, device_main, "the device process")) {
		bench_result("device: descriptors/s, 1-16 clients", "Mdesc/s", NAN, "none", NAN, "iovm succeeds");
		return;
	}
	rows_of(64, &completions);
	rows_of(4096, &completions);
	own_rows(64, &completions);
	own_rows(4096, &completions);
	/* The device process's count, when the driver is done: every completion a client reaped, and no other. */
	if (mp_put(device.wr, "", 1) || mp_get(device.rd, &served, sizeof(served)))
		bench_note("device process: it died before the end");
	else if (served != completions)
		bench_note("device process: it counts %llu descriptors, its clients reaped %llu",
			   (unsigned long long)served, (unsigned long long)completions);
	mp_child_wait(&device);
	bench_note("device: %u worker threads; each client a process with one queue of depth %u kept full, "
		   "%u rounds of %u ms, aggregate rate",
		   DEV_WORKERS, DEV_DEPTH, cfg->reps, (unsigned)((cfg->quick ? DEV_ROUND_QUICK_NS : DEV_ROUND_NS) / 1000000));
	bench_note("device: peer: the same engine in one process, a queue of depth %u with its worker thread, "
		   "the same copies", DEV_DEPTH);
}
