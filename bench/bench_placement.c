/* SPDX-License-Identifier: MIT */
/*
 * bench_placement.c - `iovm bench placement`: direct-mapped guests created,
 * rebooted and destroyed while short-lived DMA allocations of many sizes
 * come and go, under three policies:
 *  - plain buddy: each guest is one contiguous block, or nothing;
 *  - halving fallback: Xen's allocate_memory_11, up to 8 banks of 2 MiB or more;
 *  - reserved pool: guests placed (with the same halving) in a pool carved
 *    at start-up, sized for the guests that can run at once.
 * A reboot is a shutdown, time passing (the DMA churn goes on, and may take
 * the frames a guest from the buddy gave back), then a start on the same
 * banks. Each policy runs the same random sequence, in a fresh context of
 * the same memory. Reported per policy and over time: the share of guest
 * creations and reboots that succeed, and banks per guest; plotted.
 *
 * The claim the Xen 1:1 discussion makes, measured: without a pool, a guest
 * created or rebooted late finds the machine fragmented.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <iovm.h>

#include "bench.h"

enum policy { POL_BUDDY, POL_HALVING, POL_POOL, NR_POLICIES };

static const char *const policy_name[NR_POLICIES] = { "plain buddy", "halving fallback", "reserved pool" };

/* The machine: 512 MiB; the churn keeps up to half of it in DMA buffers. */
#define MEM_LIMIT_MB 512
#define CHURN_MB 256
/* Guests: at most 4 at once, of 16 or 32 MiB; the pool holds 4 of the largest. */
#define MAX_GUESTS 4
#define GUEST_MB_SMALL 16
#define GUEST_MB_LARGE 32
#define POOL_MB (MAX_GUESTS * GUEST_MB_LARGE)
/* A guest event every this many steps; a reboot's guest stays down this many steps. */
#define EVENT_EVERY 20
#define DOWN_STEPS 60
#define WINDOWS 10
#define MAX_BUFS 8192

struct buf {
	void *p;
	uint64_t size;
	unsigned expires; /* step */
};

struct slot {
	struct iovm_guest *g;
	bool down;
	unsigned down_since;
};

struct window {
	unsigned creates, creates_ok, reboots, reboots_ok;
	uint64_t banks, guests; /* banks of the guests that started */
};

struct run {
	struct window w[WINDOWS];
	double create_us_sum;
	unsigned create_us_n;
	unsigned dma_failures;
};

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * UINT64_C(0x2545f4914f6cdd1d);
}

static unsigned banks_of(struct iovm_guest *g)
{
	struct iovm_guest_info info;

	return iovm_guest_info(g, &info) ? 0 : info.nr_banks;
}

static int guest_create(struct iovm_ctx *ctx, enum policy pol, struct iovm_pool *pool, uint64_t size,
			struct iovm_guest **g)
{
	struct iovm_guest_attr a = { .size = size, .flags = IOVM_GUEST_DIRECT_MAP, .page_size = 4096 };

	switch (pol) {
	case POL_BUDDY:
		/* One block of the whole size: the buddy as it is. */
		a.min_chunk = UINT64_C(1) << (63 - __builtin_clzll(size));
		a.max_banks = 1;
		break;
	case POL_HALVING:
		break; /* the direct-map defaults: 2 MiB chunks, 8 banks */
	case POL_POOL:
		a.placement = IOVM_PLACE_POOL;
		a.pool = pool;
		break;
	case NR_POLICIES:
		return -EINVAL;
	}
	return iovm_guest_create(ctx, &a, g);
}

static int run_policy(enum policy pol, unsigned steps, const char *extra_opts, struct run *out)
{
	char opts[256];
	struct iovm_ctx *ctx;
	struct iovm_pool *pool = NULL;
	struct buf *bufs = calloc(MAX_BUFS, sizeof(*bufs));
	struct slot slots[MAX_GUESTS] = { 0 };
	uint64_t seed = 0x1f2e3d4c5b6a7988, live = 0;
	unsigned nbufs = 0;
	int ret;

	if (!bufs)
		return -ENOMEM;
	memset(out, 0, sizeof(*out));
	/* 4 KiB pages: the workload is the same whatever hugepages the machine has. */
	snprintf(opts, sizeof(opts), "page_size=4K,host_pa=off,release_delay_ms=0,mem_limit=%uM", MEM_LIMIT_MB);
	if (pol == POL_POOL)
		snprintf(opts + strlen(opts), sizeof(opts) - strlen(opts), ",pool=guests:%uM:4K", POOL_MB);
	if (extra_opts)
		snprintf(opts + strlen(opts), sizeof(opts) - strlen(opts), "%s", extra_opts);
	ret = iovm_open(opts, &ctx);
	if (ret) {
		free(bufs);
		return ret;
	}
	if (pol == POL_POOL && (ret = iovm_pool_lookup(ctx, "guests", &pool)))
		goto out;

	for (unsigned step = 0; step < steps; step++) {
		struct window *w = &out->w[step * WINDOWS / steps];

		if (step % 1000 == 0)
			bench_progress("placement: %s, step %u of %u", policy_name[pol], step, steps);
		/* The churn: buffers whose time is up go; a new one comes while the budget allows. */
		for (unsigned i = 0; i < nbufs;) {
			if (bufs[i].expires <= step) {
				iovm_dma_free(ctx, bufs[i].p);
				live -= bufs[i].size;
				bufs[i] = bufs[--nbufs];
			} else {
				i++;
			}
		}
		for (int k = 0; k < 2 && nbufs < MAX_BUFS; k++) {
			/* Log-uniform from 4 KiB to 4 MiB; a quarter physically contiguous. */
			uint64_t size = UINT64_C(4096) << (rnd(&seed) % 11), r = rnd(&seed);
			uint32_t flags = r % 4 == 0 ? IOVM_DMA_CONTIG : 0;
			void *p;

			size += (r >> 8) % size;
			size &= ~UINT64_C(4095);
			if (live + size > (uint64_t)CHURN_MB << 20)
				break;
			p = iovm_dma_alloc(ctx, size, 4096, flags);
			if (!p) {
				out->dma_failures++;
				continue;
			}
			bufs[nbufs++] = (struct buf){ .p = p, .size = size, .expires = step + 1 + (unsigned)((r >> 20) % 400) };
			live += size;
		}
		if (step % EVENT_EVERY)
			continue;
		/* Guests: reboots complete after their down time; otherwise create, reboot or destroy one. */
		{
			unsigned pick = (unsigned)(rnd(&seed) % MAX_GUESTS), action = (unsigned)(rnd(&seed) % 3);
			uint64_t size = (uint64_t)(rnd(&seed) % 2 ? GUEST_MB_LARGE : GUEST_MB_SMALL) << 20;
			struct slot *s = &slots[pick];

			if (s->g && s->down) {
				if (step - s->down_since < DOWN_STEPS)
					continue;
				w->reboots++;
				if (!iovm_guest_start(s->g)) {
					w->reboots_ok++;
					w->banks += banks_of(s->g);
					w->guests++;
					s->down = false;
				} else {
					/* The toolstack gives up: the guest is gone. */
					iovm_guest_destroy(s->g);
					s->g = NULL;
				}
			} else if (!s->g) {
				uint64_t t0 = bench_now_ns();

				w->creates++;
				if (!guest_create(ctx, pol, pool, size, &s->g)) {
					out->create_us_sum += (double)(bench_now_ns() - t0) / 1e3;
					out->create_us_n++;
					w->creates_ok++;
					w->banks += banks_of(s->g);
					w->guests++;
				} else {
					s->g = NULL;
				}
			} else if (action == 0) {
				iovm_guest_destroy(s->g);
				s->g = NULL;
			} else if (!iovm_guest_shutdown(s->g)) {
				s->down = true;
				s->down_since = step;
			}
		}
	}
	for (unsigned i = 0; i < MAX_GUESTS; i++)
		if (slots[i].g)
			iovm_guest_destroy(slots[i].g);
	for (unsigned i = 0; i < nbufs; i++)
		iovm_dma_free(ctx, bufs[i].p);
out:
	iovm_close(ctx);
	free(bufs);
	return ret;
}

static double pct(unsigned ok, unsigned n)
{
	return n ? 100.0 * ok / n : NAN;
}

/* Over the whole run. */
static void totals(const struct run *r, unsigned *c, unsigned *cok, unsigned *b, unsigned *bok, double *banks)
{
	uint64_t nb = 0, ng = 0;

	*c = *cok = *b = *bok = 0;
	for (unsigned i = 0; i < WINDOWS; i++) {
		*c += r->w[i].creates;
		*cok += r->w[i].creates_ok;
		*b += r->w[i].reboots;
		*bok += r->w[i].reboots_ok;
		nb += r->w[i].banks;
		ng += r->w[i].guests;
	}
	*banks = ng ? (double)nb / (double)ng : NAN;
}

/* The share per tenth of the run, and banks per guest, for the chart: written before it, removed after. */
static char plot_data[] = "/tmp/iovm-placement-XXXXXX";

static int write_plot_data(const struct run *runs, unsigned steps)
{
	int fd = mkstemp(plot_data), ret = 0;
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

	if (!f) {
		ret = -errno;
		if (fd >= 0) {
			close(fd);
			unlink(plot_data);
		}
		return ret;
	}
	for (unsigned i = 0; i < WINDOWS; i++) {
		fprintf(f, "%u", (i + 1) * steps / WINDOWS);
		for (unsigned p = 0; p < NR_POLICIES; p++) {
			const struct window *w = &runs[p].w[i];

			fprintf(f, " %g", pct(w->creates_ok + w->reboots_ok, w->creates + w->reboots));
		}
		for (unsigned p = 0; p < NR_POLICIES; p++) {
			const struct window *w = &runs[p].w[i];

			fprintf(f, " %g", w->guests ? (double)w->banks / (double)w->guests : NAN);
		}
		fprintf(f, "\n");
	}
	if (fflush(f) || ferror(f))
		ret = errno ? -errno : -EIO;
	fclose(f);
	if (ret)
		unlink(plot_data);
	return ret;
}

#define PANELS_HEIGHT 700 /* pixels */

/* This benchmark's own panels, under the common ones: the run, tenth by tenth. */
static void draw_panels(FILE *gp, double top, double bottom, void *arg)
{
	double px = (top - bottom) / PANELS_HEIGHT; /* a pixel, in screen coordinates */

	(void)arg;
	fprintf(gp,
		"set lmargin at screen 0.25\nset rmargin at screen 0.68\n"
		"set key at screen 0.70, screen %g left top vertical font 'sans,9'\n"
		"set grid\n"
		"set xlabel 'workload step'\n"
		"set title 'By tenth of the run: direct-mapped guests among short-lived DMA allocations'\n"
		"set tmargin at screen %g\nset bmargin at screen %g\n"
		"set ylabel 'creations and reboots that succeed (%%)'\n"
		"set yrange [0:105]\n"
		"plot '%s' using 1:2 with linespoints title '%s', '' using 1:3 with linespoints title '%s', "
		"'' using 1:4 with linespoints title '%s'\n"
		"unset title\nunset key\n"
		"set tmargin at screen %g\nset bmargin at screen %g\n"
		"set ylabel 'banks per guest started'\n"
		"set yrange [0:*]\n"
		"plot '%s' using 1:5 with linespoints title '%s', '' using 1:6 with linespoints title '%s', "
		"'' using 1:7 with linespoints title '%s'\n",
		top - 40 * px, top - 40 * px, top - 330 * px, plot_data, policy_name[0], policy_name[1],
		policy_name[2], top - 380 * px, bottom + 50 * px, plot_data, policy_name[0], policy_name[1],
		policy_name[2]);
}

int bench_placement(const struct bench_args *args)
{
	unsigned steps = args->quick ? 2000 : 20000;
	struct run runs[NR_POLICIES];
	unsigned c[NR_POLICIES], cok[NR_POLICIES], b[NR_POLICIES], bok[NR_POLICIES];
	double banks[NR_POLICIES];
	char extra[160] = "";

	if (args->opts)
		snprintf(extra, sizeof(extra), ",%s", args->opts);
	for (unsigned p = 0; p < NR_POLICIES; p++) {
		int ret = run_policy((enum policy)p, steps, extra, &runs[p]);

		if (ret) {
			fprintf(stderr, "placement: %s: %s: %s\n", policy_name[p], iovm_strerror(ret),
				iovm_error_detail());
			return 1;
		}
		totals(&runs[p], &c[p], &cok[p], &b[p], &bok[p], &banks[p]);
	}
	bench_progress("%s", "");

	printf("Share of guest creations and reboots that succeed, by tenth of the run (%u steps):\n\n", steps);
	printf("%8s", "step");
	for (unsigned p = 0; p < NR_POLICIES; p++)
		printf("  %18s", policy_name[p]);
	printf("   banks/guest: %s, %s, %s\n", "buddy", "halving", "pool");
	for (unsigned i = 0; i < WINDOWS; i++) {
		printf("%8u", (i + 1) * steps / WINDOWS);
		for (unsigned p = 0; p < NR_POLICIES; p++) {
			const struct window *w = &runs[p].w[i];

			printf("  %6.1f%% (%3u/%3u)", pct(w->creates_ok + w->reboots_ok, w->creates + w->reboots),
			       w->creates_ok + w->reboots_ok, w->creates + w->reboots);
		}
		for (unsigned p = 0; p < NR_POLICIES; p++) {
			const struct window *w = &runs[p].w[i];

			printf("  %4.1f", w->guests ? (double)w->banks / (double)w->guests : NAN);
		}
		printf("\n");
	}
	printf("\n");

	bench_result("guest creations that succeed, reserved pool", "%", pct(cok[POL_POOL], c[POL_POOL]),
		     "plain buddy", pct(cok[POL_BUDDY], c[POL_BUDDY]), ">= 100%");
	bench_result("guest reboots that succeed, reserved pool", "%", pct(bok[POL_POOL], b[POL_POOL]), "plain buddy",
		     pct(bok[POL_BUDDY], b[POL_BUDDY]), ">= 100%");
	bench_result("guest creations that succeed, halving", "%", pct(cok[POL_HALVING], c[POL_HALVING]),
		     "plain buddy", pct(cok[POL_BUDDY], c[POL_BUDDY]), NULL);
	bench_result("guest reboots that succeed, halving", "%", pct(bok[POL_HALVING], b[POL_HALVING]), "plain buddy",
		     pct(bok[POL_BUDDY], b[POL_BUDDY]), NULL);
	bench_result("banks per guest, reserved pool", "banks", banks[POL_POOL], "halving fallback",
		     banks[POL_HALVING], NULL);
	bench_result("guest creation, reserved pool", "us", runs[POL_POOL].create_us_n
			     ? runs[POL_POOL].create_us_sum / runs[POL_POOL].create_us_n : NAN,
		     "plain buddy", runs[POL_BUDDY].create_us_n
			     ? runs[POL_BUDDY].create_us_sum / runs[POL_BUDDY].create_us_n : NAN, NULL);
	for (unsigned p = 0; p < NR_POLICIES; p++)
		bench_note("%s: %u of %u creations, %u of %u reboots; %u DMA allocations refused", policy_name[p],
			   cok[p], c[p], bok[p], b[p], runs[p].dma_failures);
	bench_note("memory %u MiB (4 KiB pages); DMA churn up to %u MiB, buffers of 4 KiB to 8 MiB living 1-400 steps; "
		   "guests of %u or %u MiB, at most %u; pool %u MiB", MEM_LIMIT_MB, CHURN_MB, GUEST_MB_SMALL,
		   GUEST_MB_LARGE, MAX_GUESTS, POOL_MB);
	if (args->plot) {
		static const struct bench_panels panels = { .height = PANELS_HEIGHT, .draw = draw_panels };
		int ret = write_plot_data(runs, steps);

		if (ret) {
			struct bench_args a = *args;

			bench_output_fail("--plot: its data", ret);
			a.plot = NULL;
			bench_report(&a, "iovm bench placement", 1);
			return 0;
		}
		bench_plot_panels(&panels);
	}
	bench_report(args, "iovm bench placement", 1);
	if (args->plot)
		unlink(plot_data);
	return 0;
}
