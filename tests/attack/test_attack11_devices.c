/* SPDX-License-Identifier: MIT */
/*
 * test_attack11_devices.c - devices of other processes and the dead's
 * unmaps in flight (iovm/mp.h): until the flush, a device that cached the
 * translation reaches the held memory or faults, never other memory;
 * once any survivor's flush (or strict unmap, or a map at a fixed IOVA
 * that claims the dead's queue) returns, no device of any process reaches
 * the old IOVAs: every access faults, and memory allocated since (the
 * held memory given back included) is untouched.
 */
#include "attack11.h"

#define NP 8
#define LEN (NP * A11_PAGE)
#define MAX_GRAB (A11_HEAP / 4096)

static void *g_grab[MAX_GRAB];

/* Every 4 KiB block left, zeroed. */
static unsigned grab(struct iovm_ctx *ctx)
{
	unsigned n = 0;

	for (;;) {
		void *q = iovm_dma_alloc(ctx, 4096, 4096, 0);

		if (!q)
			break;
		CHECK(n < MAX_GRAB);
		memset(q, 0, 4096);
		g_grab[n++] = q;
	}
	return n;
}

static void ungrab(struct iovm_ctx *ctx, unsigned n, const char *when)
{
	for (unsigned i = 0; i < n; i++) {
		CHECK_MSG(all_bytes(g_grab[i], 4096, 0), "%s: a device wrote into an allocation at PA %#llx", when,
			  (unsigned long long)a11_pa(ctx, g_grab[i]));
		CHECK_OK(iovm_dma_free(ctx, g_grab[i]));
	}
}

enum how { FLUSH_MINE, FLUSH_DEVICE_PROCESS, MAP_AT_FIXED, STRICT_UNMAP };
static const char *const how_name[] = { "the survivor's flush", "the device process's flush",
					"a map at a fixed IOVA of the dead's", "the survivor's strict unmap" };

/*
 * A maps the survivor's zeroed 8 pages; D's device writes them (caching
 * the translation); the survivor frees them (held); A unmaps (queued, or
 * strict and killed waiting for the stopped D) and is killed. D's device
 * may reach the held pages, or fault; nothing else. Then the trigger, and
 * D's device faults everywhere there, whatever the memory is used for now.
 */
static void dead_unmap_and_devices(bool deferred, enum how how)
{
	struct iovm_share_domain_params p = a11_params(deferred ? IOVM_DOMAIN_DEFERRED : 0, 4096, A11_NEVER);
	struct child a, d;
	struct iovm_domain *dom;
	struct iovm_ctx *ctx;
	uint8_t *buf, *other, st;
	uint64_t iova, other_iova = 0;
	unsigned n;

	printf("# %s, %s\n", deferred ? "deferred" : "strict", how_name[how]);
	ctx = a11_share("a11-dev", &p, &dom);
	buf = iovm_dma_zalloc(ctx, LEN, 4096, 0);
	other = iovm_dma_zalloc(ctx, A11_PAGE, 4096, 0);
	CHECK(buf && other);
	a = a11_agent();
	d = a11_agent();
	iova = a11_cmd(&a, A11_MAP, a11_pa(ctx, buf), LEN, 0);
	CHECK_EQ(a11_cmd(&d, A11_FILL, iova, LEN, 0x11), IOVM_STATUS_SUCCESS);
	CHECK(all_bytes(buf, LEN, 0x11));
	CHECK_OK(iovm_dma_free(ctx, buf));
	CHECK_EQ(a11_held(ctx), LEN);
	if (deferred) {
		CHECK_EQ(a11_cmd(&a, A11_UNMAP, iova, LEN, 0), 0);
		child_kill(&a);
	} else {
		a11_stop(&d);
		a11_send(&a, A11_UNMAP, iova, LEN, 0);
		WAIT_UNTIL(a11_leaves(dom) == 0);
		a11_nap(20);
		CHECK(!a11_said(a.rd));
		child_kill(&a);
		a11_cont(&d);
	}
	a11_reaped(ctx, 2);
	CHECK_EQ(a11_held(ctx), LEN);
	/* Before the trigger: the held memory, or a fault; nothing else. */
	n = grab(ctx);
	CHECK(n > 0);
	st = (uint8_t)a11_cmd(&d, A11_FILL, iova, LEN, 0x22);
	CHECK_MSG(st == IOVM_STATUS_SUCCESS || st == IOVM_STATUS_PAGE_FAULT, "status %u", st);
	printf("#   before the trigger the device %s\n", st == IOVM_STATUS_SUCCESS ? "reached the held memory" : "faulted");
	if (st == IOVM_STATUS_SUCCESS)
		CHECK(all_bytes(iovm_dma_ptr(ctx, IOVM_PA(a11_pa(ctx, buf))), LEN, 0x22));
	ungrab(ctx, n, "before the trigger");

	switch (how) {
	case FLUSH_MINE:
		CHECK_OK(iovm_domain_flush(dom));
		break;
	case FLUSH_DEVICE_PROCESS:
		CHECK_EQ(a11_cmd(&d, A11_FLUSH, 0, 0, 0), 0);
		break;
	case MAP_AT_FIXED: {
		iovm_iova_t at = IOVM_IOVA(iova + 2 * A11_PAGE);
		int ret = iovm_domain_map(dom, &at, IOVM_PA(a11_pa(ctx, other)), A11_PAGE, IOVM_MAP_READ | IOVM_MAP_WRITE);

		if (ret == -EEXIST) {
			CHECK_OK(iovm_domain_flush(dom));
			ret = iovm_domain_map(dom, &at, IOVM_PA(a11_pa(ctx, other)), A11_PAGE, IOVM_MAP_READ | IOVM_MAP_WRITE);
		}
		CHECK_OK(ret);
		other_iova = at.addr;
		break;
	}
	case STRICT_UNMAP: {
		uint64_t i2 = a11_map_pa(dom, a11_pa(ctx, other), A11_PAGE);

		CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(i2), A11_PAGE));
		break;
	}
	}
	CHECK_MSG(a11_held(ctx) == 0, "%s: held %llu after the trigger", how_name[how],
		  (unsigned long long)a11_held(ctx));
	CHECK_EQ(a11_iova(dom), other_iova ? A11_PAGE : 0);

	/* The memory is anybody's now: take it all; the device must reach none of it. */
	n = grab(ctx);
	CHECK(n > 0);
	for (unsigned pg = 0; pg < NP; pg++) {
		uint64_t at = iova + pg * A11_PAGE;

		st = (uint8_t)a11_cmd(&d, A11_FILL, at, A11_PAGE, 0x33);
		if (at == other_iova) {
			CHECK_EQ(st, IOVM_STATUS_SUCCESS);
			CHECK(all_bytes(other, A11_PAGE, 0x33)); /* the new translation, not the old */
		} else {
			CHECK_MSG(st == IOVM_STATUS_PAGE_FAULT,
				  "%s: the device reached IOVA %#llx, unmapped by a dead process, after the trigger: "
				  "status %u", how_name[how], (unsigned long long)at, st);
		}
	}
	ungrab(ctx, n, "after the trigger");
	if (other_iova) {
		CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(other_iova), A11_PAGE));
		CHECK_OK(iovm_domain_flush(dom));
	}
	a11_agent_close(&d);
	CHECK_OK(iovm_dma_free(ctx, other));
	a11_end(ctx, dom);
}

TEST(deferred_dead_queue_and_devices)
{
	dead_unmap_and_devices(true, FLUSH_MINE);
	dead_unmap_and_devices(true, FLUSH_DEVICE_PROCESS);
	dead_unmap_and_devices(true, MAP_AT_FIXED);
}

TEST(strict_dead_unmap_and_devices)
{
	dead_unmap_and_devices(false, STRICT_UNMAP);
}

/*
 * A live process's queue: until its flush, another process's device may
 * use what it cached (held memory) or fault; the IOVAs are -EEXIST there;
 * its flush and the device faults. Many processes' queues, one device
 * process that cached all of them: after all the flushes, faults only.
 */
TEST(live_queues_and_a_device_elsewhere)
{
	struct iovm_share_domain_params p = a11_params(IOVM_DOMAIN_DEFERRED, 4096, A11_NEVER);
	struct child q[3], d;
	struct iovm_domain *dom;
	struct iovm_ctx *ctx;
	uint8_t *buf[3];
	uint64_t iova[3];
	unsigned n;

	ctx = a11_share("a11-devlive", &p, &dom);
	d = a11_agent();
	for (int i = 0; i < 3; i++) {
		buf[i] = iovm_dma_zalloc(ctx, LEN, 4096, 0);
		CHECK(buf[i] != NULL);
		q[i] = a11_agent();
		iova[i] = a11_cmd(&q[i], A11_MAP, a11_pa(ctx, buf[i]), LEN, 0);
		CHECK_EQ(a11_cmd(&d, A11_FILL, iova[i], LEN, (uint8_t)(0x40 + i)), IOVM_STATUS_SUCCESS);
		CHECK(all_bytes(buf[i], LEN, (uint8_t)(0x40 + i)));
		CHECK_EQ(a11_cmd(&q[i], A11_UNMAP, iova[i], LEN, 0), 0);
		CHECK_OK(iovm_dma_free(ctx, buf[i]));
	}
	CHECK_EQ(a11_held(ctx), 3 * LEN);
	n = grab(ctx);
	for (int i = 0; i < 3; i++) {
		uint8_t st = (uint8_t)a11_cmd(&d, A11_FILL, iova[i], LEN, 0x50);

		CHECK(st == IOVM_STATUS_SUCCESS || st == IOVM_STATUS_PAGE_FAULT);
		CHECK_EQ((int64_t)a11_cmd(&d, A11_MAP_AT, a11_pa(ctx, g_grab[0]), A11_PAGE, iova[i]), -EEXIST);
	}
	ungrab(ctx, n, "before the flushes");
	/* Two flush their own; the third is killed and the device process's flush takes it. */
	CHECK_EQ(a11_cmd(&q[0], A11_FLUSH, 0, 0, 0), 0);
	CHECK_EQ(a11_cmd(&q[1], A11_FLUSH, 0, 0, 0), 0);
	child_kill(&q[2]);
	a11_reaped(ctx, 4);
	CHECK_EQ(a11_held(ctx), LEN);
	CHECK_EQ(a11_cmd(&d, A11_FLUSH, 0, 0, 0), 0);
	CHECK_EQ(a11_held(ctx), 0);
	n = grab(ctx);
	for (int i = 0; i < 3; i++)
		for (unsigned pg = 0; pg < NP; pg++)
			CHECK_EQ(a11_cmd(&d, A11_FILL, iova[i] + pg * A11_PAGE, A11_PAGE, 0x60), IOVM_STATUS_PAGE_FAULT);
	ungrab(ctx, n, "after the flushes");
	a11_agent_close(&q[0]);
	a11_agent_close(&q[1]);
	a11_agent_close(&d);
	CHECK_EQ(a11_iova(dom), 0);
	a11_end(ctx, dom);
}

int main(void)
{
	test_init();
	a11_watchdog(280);
	RUN(deferred_dead_queue_and_devices);
	RUN(strict_dead_unmap_and_devices);
	RUN(live_queues_and_a_device_elsewhere);
	return 0;
}
