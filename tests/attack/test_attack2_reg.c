/* SPDX-License-Identifier: MIT */
/*
 * test_attack2_reg.c - attacks on iovm/reg.h's registrations, written from
 * the header and the README alone: every Return: line of iovm_mr_reg(),
 * iovm_mr_advise(), iovm_mr_dereg(), iovm_mr_query() and iovm_mr_iova()
 * made to happen with nothing else changed; keys of deregistered MRs never
 * reaching new ones; local against remote rights; locked_bytes with
 * overlapping, oddly aligned registrations; iovm_domain_destroy() refused
 * while registrations or caches live.
 */
#include "attack2.h"

#include <sys/resource.h>

static struct rig R;

/* What a failing call must not change. */
struct snap {
	uint64_t mrs, registered, deregistered, locked;
};

static struct snap snap_take(void)
{
	struct iovm_reg_stats st = reg_stats(R.ctx);

	return (struct snap){ st.mrs, st.registered, st.deregistered, st.locked_bytes };
}

static void snap_same(struct snap a, const char *what)
{
	struct snap b = snap_take();

	EXPECT_MSG(!memcmp(&a, &b, sizeof(a)), "%s changed the reg counters: mrs %llu->%llu "
		   "registered %llu->%llu deregistered %llu->%llu locked %llu->%llu", what,
		   (unsigned long long)a.mrs, (unsigned long long)b.mrs,
		   (unsigned long long)a.registered, (unsigned long long)b.registered,
		   (unsigned long long)a.deregistered, (unsigned long long)b.deregistered,
		   (unsigned long long)a.locked, (unsigned long long)b.locked);
}

/*
 * reg.h, iovm_mr_reg(): "Return: 0; -EINVAL for bad arguments; -EFAULT when
 * part of the range is not mapped, or not writable for a write access; ...
 * -EOPNOTSUPP in an identity domain". Each failure leaves the counters as
 * they were and no MR.
 */
TEST(reg_returns)
{
	uint8_t *p = anon(4 * PG);
	struct iovm_mr *mr = (struct iovm_mr *)0x1;
	struct iovm_domain *id;
	struct iovm_domain_attr ia = { .type = IOVM_DOMAIN_IDENTITY };
	struct snap s;

	memset(p, 1, 4 * PG);
	/* Start the monitor first, so that its start is not counted as a change. */
	CHECK_OK(iovm_mr_reg(R.dom, p, PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
	CHECK_OK(iovm_mr_dereg(mr));
	s = snap_take();

	CHECK_RET(iovm_mr_reg(NULL, p, PG, 0, &mr), -EINVAL);
	CHECK_RET(iovm_mr_reg(R.dom, p, PG, 0, NULL), -EINVAL);
	CHECK_RET(iovm_mr_reg(R.dom, p, 0, 0, &mr), -EINVAL);
	CHECK_RET(iovm_mr_reg(R.dom, p, PG, 1u << 9, &mr), -EINVAL);
	CHECK_RET(iovm_mr_reg(R.dom, p, PG, 0xffffffffu, &mr), -EINVAL);
	/* A range that wraps past the end of the address space. */
	{
		int r = iovm_mr_reg(R.dom, (void *)(uintptr_t)(UINTPTR_MAX - PG + 1), 2 * PG, 0, &mr);

		EXPECT_MSG(r == -EINVAL || r == -EFAULT, "wrapping range: %d", r);
	}
	/* Part unmapped: the last page. */
	CHECK_OK(munmap(p + 3 * PG, PG));
	CHECK_RET(iovm_mr_reg(R.dom, p, 4 * PG, 0, &mr), -EFAULT);
	CHECK_RET(iovm_mr_reg(R.dom, p + 2 * PG + 1, PG, IOVM_ACCESS_LOCAL_WRITE, &mr), -EFAULT);
	/* Read-only for a write access, readable for a read one. */
	CHECK_OK(mprotect(p + PG, PG, PROT_READ));
	CHECK_RET(iovm_mr_reg(R.dom, p, 2 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr), -EFAULT);
	CHECK_RET(iovm_mr_reg(R.dom, p, 2 * PG, IOVM_ACCESS_REMOTE_WRITE | IOVM_ACCESS_LOCAL_WRITE, &mr),
		  -EFAULT);
	/* PROT_NONE for a read access. */
	CHECK_OK(mprotect(p + 2 * PG, PG, PROT_NONE));
	CHECK_RET(iovm_mr_reg(R.dom, p + 2 * PG, PG, 0, &mr), -EFAULT);
	snap_same(s, "failed iovm_mr_reg");

	/* Identity domain: -EOPNOTSUPP, pinned and on demand. */
	CHECK_OK(iovm_domain_create(R.ctx, &ia, &id));
	CHECK_RET(iovm_mr_reg(id, p, PG, 0, &mr), -EOPNOTSUPP);
	CHECK_RET(iovm_mr_reg(id, p, PG, IOVM_ACCESS_ON_DEMAND, &mr), -EOPNOTSUPP);
	CHECK_RET(iovm_mr_reg(id, NULL, SIZE_MAX, IOVM_ACCESS_ON_DEMAND, &mr), -EOPNOTSUPP);
	snap_same(s, "iovm_mr_reg in an identity domain");
	CHECK_OK(iovm_domain_destroy(id));

	/* A readable page registers for reading. */
	CHECK_OK(iovm_mr_reg(R.dom, p + PG, PG, 0, &mr));
	EXPECT(mr_info(mr).valid);
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(munmap(p, 3 * PG));
}

/*
 * iovm_mr_advise(): "Return: 0; -EINVAL for bad arguments (NULL, zero
 * @len, unknown @flags, IOVM_ADVISE_WRITE without write rights) or a
 * pinned registration; -ERANGE when the range is not inside @mr (one past
 * the end of the address space included); -EFAULT when part of it is not
 * mapped".
 */
TEST(advise_returns)
{
	uint8_t *p = anon(64 * PG);
	struct iovm_mr *odp, *odp_ro, *pinned;
	struct iovm_reg_stats a, b;

	memset(p, 2, 64 * PG);
	CHECK_OK(iovm_mr_reg(R.dom, p, 32 * PG, IOVM_ACCESS_ON_DEMAND | IOVM_ACCESS_LOCAL_WRITE, &odp));
	CHECK_OK(iovm_mr_reg(R.dom, p + 32 * PG, 16 * PG, IOVM_ACCESS_ON_DEMAND, &odp_ro));
	CHECK_OK(iovm_mr_reg(R.dom, p + 48 * PG, 16 * PG, IOVM_ACCESS_LOCAL_WRITE, &pinned));
	EXPECT(mr_info(odp).on_demand);
	EXPECT(!mr_info(pinned).on_demand);
	a = reg_stats(R.ctx);
	CHECK_RET(iovm_mr_advise(NULL, p, PG, 0), -EINVAL);
	CHECK_RET(iovm_mr_advise(odp, p, 0, 0), -EINVAL);
	CHECK_RET(iovm_mr_advise(odp, p, PG, 1u << 5), -EINVAL);
	CHECK_RET(iovm_mr_advise(odp_ro, p + 32 * PG, PG, IOVM_ADVISE_WRITE), -EINVAL);
	CHECK_RET(iovm_mr_advise(pinned, p + 48 * PG, PG, 0), -EINVAL);
	CHECK_RET(iovm_mr_advise(odp, p + 31 * PG, 2 * PG, 0), -ERANGE);
	CHECK_RET(iovm_mr_advise(odp, p - PG, 2 * PG, 0), -ERANGE);
	CHECK_RET(iovm_mr_advise(odp, p + 32 * PG, 1, 0), -ERANGE);
	CHECK_RET(iovm_mr_advise(odp, p, SIZE_MAX, 0), -ERANGE);
	CHECK_RET(iovm_mr_advise(odp, p + PG, SIZE_MAX - (size_t)(uintptr_t)(p + PG) + 1, 0), -ERANGE);
	b = reg_stats(R.ctx);
	EXPECT_EQ(b.odp_prefetched_bytes, a.odp_prefetched_bytes);
	EXPECT_EQ(b.odp_pinned_bytes, a.odp_pinned_bytes);

	/* Part of it unmapped: -EFAULT. */
	CHECK_OK(munmap(p + 20 * PG, PG));
	CHECK_RET(iovm_mr_advise(odp, p + 16 * PG, 8 * PG, 0), -EFAULT);
	/* The rest prefetches, for writing, and a device then writes it. */
	CHECK_OK(iovm_mr_advise(odp, p + 1, 3 * PG, IOVM_ADVISE_WRITE));
	b = reg_stats(R.ctx);
	EXPECT(b.odp_prefetched_bytes >= a.odp_prefetched_bytes + 3 * PG);
	EXPECT(mr_info(odp).valid_pages >= 4);
	{
		struct iovm_mr_info in = mr_info(pinned);
		struct iovm_completion c = kcopy(&R, p + 5, mr_info(odp).lkey, p + 48 * PG, in.lkey, 100);

		EXPECT_EQ(c.status, IOVM_STATUS_SUCCESS);
	}
	CHECK_OK(iovm_mr_dereg(odp));
	CHECK_OK(iovm_mr_dereg(odp_ro));
	CHECK_OK(iovm_mr_dereg(pinned));
	munmap(p, 64 * PG);
}

/*
 * iovm_mr_iova(): "-EINVAL for NULL or an implicit registration (reached by
 * key only); -ERANGE when [addr, addr+len) is not inside @mr (one past the
 * end of the address space included)". iovm_mr_query(): "0, or -EINVAL".
 * iovm_mr_dereg(): "0; -EINVAL". Odd offsets translate to the IOVA of that
 * very byte.
 */
TEST(iova_query_returns)
{
	uint8_t *p = anon(8 * PG);
	struct iovm_mr *mr, *imp;
	struct iovm_mr_info in;
	iovm_iova_t io, io2;
	struct snap s;

	CHECK_OK(iovm_mr_reg(R.dom, p + 123, 5 * PG + 7, IOVM_ACCESS_LOCAL_WRITE, &mr));
	in = mr_info(mr);
	EXPECT(in.addr == p + 123);
	EXPECT_EQ(in.len, 5 * PG + 7);
	EXPECT_EQ(in.pages, 6);
	EXPECT_EQ(in.valid_pages, 6);
	EXPECT(in.valid && in.monitored && !in.implicit && !in.on_demand);
	CHECK_OK(iovm_mr_iova(mr, p + 123, 1, &io));
	EXPECT_EQ(io.addr, in.iova.addr);
	CHECK_OK(iovm_mr_iova(mr, p + 123 + 5 * PG + 6, 1, &io2));
	EXPECT_EQ(io2.addr, in.iova.addr + 5 * PG + 6);
	CHECK_OK(iovm_mr_iova(mr, p + 123, 5 * PG + 7, &io2));
	CHECK_RET(iovm_mr_iova(NULL, p + 123, 1, &io), -EINVAL);
	CHECK_RET(iovm_mr_iova(mr, p + 122, 1, &io), -ERANGE);
	CHECK_RET(iovm_mr_iova(mr, p + 123, 5 * PG + 8, &io), -ERANGE);
	CHECK_RET(iovm_mr_iova(mr, p + 123 + 5 * PG + 7, 1, &io), -ERANGE);
	CHECK_RET(iovm_mr_iova(mr, p + 200, SIZE_MAX, &io), -ERANGE);
	CHECK_RET(iovm_mr_iova(mr, p + 200, SIZE_MAX - (size_t)(uintptr_t)(p + 200) + 1, &io), -ERANGE);
	CHECK_RET(iovm_mr_query(NULL, &in), -EINVAL);
	CHECK_RET(iovm_mr_query(mr, NULL), -EINVAL);
	CHECK_RET(iovm_mr_dereg(NULL), -EINVAL);

	s = snap_take();
	if (!monitor_runs(R.ctx))
		SKIP_CASE("no memory monitor (userfaultfd): no implicit registration");
	CHECK_OK(iovm_mr_reg(R.dom, NULL, SIZE_MAX, IOVM_ACCESS_ON_DEMAND | IOVM_ACCESS_LOCAL_WRITE, &imp));
	in = mr_info(imp);
	EXPECT(in.implicit && in.on_demand);
	CHECK_RET(iovm_mr_iova(imp, p, 1, &io), -EINVAL);
	/* Implicit needs ON_DEMAND. */
	{
		struct iovm_mr *x = NULL;
		int r = iovm_mr_reg(R.dom, NULL, SIZE_MAX, IOVM_ACCESS_LOCAL_WRITE, &x);

		EXPECT_MSG(r == -EINVAL || r == -EFAULT, "implicit without ON_DEMAND: %d", r);
		if (!r)
			iovm_mr_dereg(x);
	}
	/*
	 * Advise of an implicit MR makes its children: "prefetch [addr,
	 * addr+len)", "-EFAULT when part of it is not mapped". [p, p+PG) is
	 * mapped; what lies around it (the 64 KiB a fault would map) is not
	 * the caller's range.
	 */
	CHECK_RET(iovm_mr_advise(imp, p, PG, IOVM_ADVISE_WRITE), 0);
	CHECK_RET(iovm_mr_advise(imp, p + 7 * PG, PG, 0), 0);
	EXPECT(mr_info(imp).children >= 1);
	CHECK_OK(iovm_mr_dereg(imp));
	CHECK_OK(iovm_mr_dereg(mr));
	{
		struct iovm_reg_stats st = reg_stats(R.ctx);

		EXPECT_EQ(st.mrs, s.mrs - 1);
	}
	munmap(p, 8 * PG);
}

/*
 * iovm_mr_info: "keys: a key of a deregistered MR is refused". Register and
 * deregister the same buffer again and again: no key of a dead MR may reach
 * the live one (a reused key would), nor any other live MR.
 */
TEST(stale_keys_never_reach_new_mrs)
{
	enum { ROUNDS = 300, KEEP = 16 };
	uint8_t *buf = anon(2 * PG), *src = anon(PG);
	uint32_t dead[KEEP * 2] = { 0 };
	unsigned ndead = 0;
	struct iovm_mr *smr, *mr;
	uint32_t skey;

	memset(src, 0x5c, PG);
	CHECK_OK(iovm_mr_reg(R.dom, src, PG, 0, &smr));
	skey = mr_info(smr).lkey;
	for (unsigned i = 0; i < ROUNDS; i++) {
		struct iovm_mr_info in;
		uint32_t acc = IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE | IOVM_ACCESS_REMOTE_READ |
			       (i % 3 == 0 ? IOVM_ACCESS_ON_DEMAND : 0);

		CHECK_OK(iovm_mr_reg(R.dom, buf + (i % 2) * 64, PG + 64, acc, &mr));
		in = mr_info(mr);
		memset(buf, 0, 2 * PG);
		for (unsigned k = 0; k < ndead && k < KEEP * 2; k++) {
			struct iovm_completion c;

			EXPECT_MSG(dead[k] != in.lkey && dead[k] != in.rkey,
				   "round %u: key %#x of a dead MR handed out again", i, dead[k]);
			c = kcopy(&R, buf + (i % 2) * 64, dead[k], src, skey, 64);
			EXPECT_MSG(c.status == IOVM_STATUS_KEY, "round %u: dead key %#x: status %u", i,
				   dead[k], c.status);
		}
		EXPECT(all_bytes(buf, 2 * PG, 0));
		{
			struct iovm_completion c = kcopy(&R, buf + (i % 2) * 64, in.rkey, src, skey, 64);

			EXPECT_EQ(c.status, IOVM_STATUS_SUCCESS);
		}
		CHECK_OK(iovm_mr_dereg(mr));
		dead[ndead % (KEEP * 2)] = in.lkey;
		ndead++;
		dead[ndead % (KEEP * 2)] = in.rkey;
		ndead++;
	}
	CHECK_OK(iovm_mr_dereg(smr));
	munmap(buf, 2 * PG);
	munmap(src, PG);
}

/*
 * dev.h: "A local key grants the MR's local rights, a remote key its remote
 * ones", and a key "without the right ... completes the descriptor with
 * IOVM_STATUS_KEY, bytes_completed 0, nothing written". LOCAL_READ is always
 * granted; REMOTE_READ is not.
 */
TEST(local_and_remote_rights)
{
	uint8_t *a = anon(PG), *b = anon(PG), *c = anon(PG);
	struct iovm_mr *mra, *mrb, *mrc;
	struct iovm_mr_info ia, ib, ic;
	struct iovm_completion k;

	memset(a, 0x11, PG);
	memset(b, 0x22, PG);
	memset(c, 0x33, PG);
	/* a: local write only. b: read only (local). c: remote read and write. */
	CHECK_OK(iovm_mr_reg(R.dom, a, PG, IOVM_ACCESS_LOCAL_WRITE, &mra));
	CHECK_OK(iovm_mr_reg(R.dom, b, PG, IOVM_ACCESS_LOCAL_READ, &mrb));
	CHECK_OK(iovm_mr_reg(R.dom, c, PG, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE |
					       IOVM_ACCESS_REMOTE_READ, &mrc));
	ia = mr_info(mra);
	ib = mr_info(mrb);
	ic = mr_info(mrc);
	EXPECT(ib.access & IOVM_ACCESS_LOCAL_READ);

	/* Remote key of an MR without remote rights: neither read nor write. */
	k = kcopy(&R, c, ic.lkey, a, ia.rkey, 64);
	EXPECT_EQ(k.status, IOVM_STATUS_KEY);
	k = kcopy(&R, a, ia.rkey, b, ib.lkey, 64);
	EXPECT_EQ(k.status, IOVM_STATUS_KEY);
	EXPECT_EQ(k.bytes_completed, 0);
	EXPECT(all_bytes(a, PG, 0x11));
	/* Local key without LOCAL_WRITE: no write; read yes. */
	k = kcopy(&R, b, ib.lkey, a, ia.lkey, 64);
	EXPECT_EQ(k.status, IOVM_STATUS_KEY);
	EXPECT(all_bytes(b, PG, 0x22));
	k = kcopy(&R, a, ia.lkey, b, ib.lkey, 64);
	EXPECT_EQ(k.status, IOVM_STATUS_SUCCESS);
	EXPECT(all_bytes(a, 64, 0x22) && all_bytes(a + 64, PG - 64, 0x11));
	/* Remote rights: rkey reads and writes c. */
	k = kcopy(&R, c, ic.rkey, b, ib.lkey, 32);
	EXPECT_EQ(k.status, IOVM_STATUS_SUCCESS);
	k = kcopy(&R, a + 1000, ia.lkey, c, ic.rkey, 32);
	EXPECT_EQ(k.status, IOVM_STATUS_SUCCESS);
	EXPECT(all_bytes(a + 1000, 32, 0x22));
	/* A range past the MR's end, by one byte: refused, nothing written. */
	k = kcopy(&R, c + PG - 31, ic.lkey, b, ib.lkey, 32);
	EXPECT_EQ(k.status, IOVM_STATUS_KEY);
	EXPECT(all_bytes(c + 32, PG - 32, 0x33));
	/* The rkey of one MR does not reach another's memory. */
	k = kcopy(&R, a, ic.rkey, b, ib.lkey, 16);
	EXPECT_EQ(k.status, IOVM_STATUS_KEY);
	CHECK_OK(iovm_mr_dereg(mra));
	CHECK_OK(iovm_mr_dereg(mrb));
	CHECK_OK(iovm_mr_dereg(mrc));
	munmap(a, PG);
	munmap(b, PG);
	munmap(c, PG);
}

/*
 * iovm_mr_reg(): "locks are counted, so overlapping registrations unlock
 * each page once"; iovm_reg_stats.locked_bytes: "locked for pinned
 * registrations" (issue 16: overlaps must not count twice). Oddly aligned
 * overlapping MRs: locked_bytes and the kernel's VmLck agree at each step.
 */
TEST(locked_bytes_overlaps)
{
	uint8_t *p = anon(16 * PG);
	struct iovm_mr *m1, *m2, *m3, *odp;
	uint64_t l0 = reg_stats(R.ctx).locked_bytes;
	long long v0 = vm_locked();

	memset(p, 3, 16 * PG);
	/* pages 0..3 */
	CHECK_OK(iovm_mr_reg(R.dom, p + 100, 3 * PG + 5, IOVM_ACCESS_LOCAL_WRITE, &m1));
	EXPECT_EQ(reg_stats(R.ctx).locked_bytes - l0, 4 * PG);
	/* pages 2..5: union 0..5 */
	CHECK_OK(iovm_mr_reg(R.dom, p + 2 * PG + 1, 4 * PG - 1, 0, &m2));
	EXPECT_EQ(reg_stats(R.ctx).locked_bytes - l0, 6 * PG);
	/* page 3 only, one byte: nothing new */
	CHECK_OK(iovm_mr_reg(R.dom, p + 3 * PG + 4095, 1, 0, &m3));
	EXPECT_EQ(reg_stats(R.ctx).locked_bytes - l0, 6 * PG);
	/* on demand never counts here */
	CHECK_OK(iovm_mr_reg(R.dom, p + 8 * PG, 8 * PG, IOVM_ACCESS_ON_DEMAND, &odp));
	CHECK_OK(iovm_mr_advise(odp, p + 8 * PG, 8 * PG, 0));
	EXPECT_EQ(reg_stats(R.ctx).locked_bytes - l0, 6 * PG);
	if (v0 >= 0)
		EXPECT_EQ(vm_locked() - v0, 6 * PG);
	CHECK_OK(iovm_mr_dereg(m1)); /* pages 0,1 unlock */
	EXPECT_EQ(reg_stats(R.ctx).locked_bytes - l0, 4 * PG);
	if (v0 >= 0)
		EXPECT_EQ(vm_locked() - v0, 4 * PG);
	CHECK_OK(iovm_mr_dereg(m2)); /* only page 3 stays */
	EXPECT_EQ(reg_stats(R.ctx).locked_bytes - l0, PG);
	if (v0 >= 0)
		EXPECT_EQ(vm_locked() - v0, PG);
	/* munmap of the locked page: the lock is gone with it, and the counter too */
	CHECK_OK(munmap(p + 3 * PG, PG));
	EXPECT(!mr_info(m3).valid);
	CHECK_OK(iovm_mr_dereg(m3));
	EXPECT_EQ(reg_stats(R.ctx).locked_bytes, l0);
	if (v0 >= 0)
		EXPECT_EQ(vm_locked(), v0);
	CHECK_OK(iovm_mr_dereg(odp));
	munmap(p, 16 * PG);
}

/*
 * iovm_domain_destroy(): "-EBUSY ... while registrations (iovm_mr_reg())
 * or registration caches (iovm_rcache_create()) use it". The refusal
 * changes nothing: the MR still works through its key afterwards.
 */
TEST(domain_destroy_busy)
{
	struct iovm_domain *dom;
	struct iovm_device *dev;
	struct iovm_rcache *rc;
	struct iovm_mr *mr, *got, *odp;
	uint8_t *p = anon(4 * PG);

	CHECK_OK(iovm_domain_create(R.ctx, NULL, &dom));
	CHECK_OK(iovm_mr_reg(dom, p, PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
	CHECK_RET(iovm_domain_destroy(dom), -EBUSY);
	EXPECT(strstr(iovm_error_detail(), "iovm_domain_destroy") != NULL);
	EXPECT(mr_info(mr).valid);
	CHECK_OK(iovm_rcache_create(dom, NULL, &rc));
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_RET(iovm_domain_destroy(dom), -EBUSY);
	CHECK_OK(iovm_rcache_get(rc, p + PG, PG, IOVM_ACCESS_LOCAL_WRITE, &got));
	CHECK_RET(iovm_domain_destroy(dom), -EBUSY);
	CHECK_OK(iovm_rcache_put(rc, got));
	CHECK_RET(iovm_domain_destroy(dom), -EBUSY);
	CHECK_OK(iovm_rcache_destroy(rc));
	/* On demand and implicit count too. */
	CHECK_OK(iovm_mr_reg(dom, p, 4 * PG, IOVM_ACCESS_ON_DEMAND, &odp));
	CHECK_RET(iovm_domain_destroy(dom), -EBUSY);
	CHECK_OK(iovm_mr_dereg(odp));
	if (monitor_runs(R.ctx)) {
		CHECK_OK(iovm_mr_reg(dom, NULL, SIZE_MAX, IOVM_ACCESS_ON_DEMAND, &odp));
		CHECK_RET(iovm_domain_destroy(dom), -EBUSY);
		CHECK_OK(iovm_mr_dereg(odp));
	}
	/* A device attached, with no registration: -EBUSY too, then all clear. */
	CHECK_OK(iovm_device_open(R.ctx, "sw", &dev));
	CHECK_OK(iovm_device_attach(dev, dom, 5));
	CHECK_RET(iovm_domain_destroy(dom), -EBUSY);
	CHECK_OK(iovm_device_detach(dev, 5));
	CHECK_RET(iovm_device_detach(dev, 5), -ENOENT);
	CHECK_OK(iovm_device_close(dev));
	CHECK_OK(iovm_domain_destroy(dom));
	/* The memory goes away after the domain: no use of the freed domain. */
	CHECK_OK(munmap(p, 4 * PG));
	CHECK_OK(iovm_domain_create(R.ctx, NULL, &dom));
	CHECK_OK(iovm_domain_destroy(dom));
}

/*
 * iovm_mr_dereg(): "-EBUSY for an MR of a registration cache (put it
 * back)", and the hold stays real: the put afterwards succeeds once.
 */
TEST(dereg_of_cached_mr)
{
	struct iovm_rcache *rc;
	struct iovm_mr *got;
	uint8_t *p = anon(2 * PG);

	CHECK_OK(iovm_rcache_create(R.dom, NULL, &rc));
	CHECK_OK(iovm_rcache_get(rc, p, 2 * PG, 0, &got));
	CHECK_RET(iovm_mr_dereg(got), -EBUSY);
	EXPECT(mr_info(got).valid);
	CHECK_OK(iovm_rcache_put(rc, got));
	CHECK_RET(iovm_rcache_put(rc, got), -EINVAL);
	CHECK_OK(iovm_rcache_destroy(rc));
	munmap(p, 2 * PG);
}

int main(void)
{
	test_init();
	rig2_open(&R);
	RUN(reg_returns);
	RUN(advise_returns);
	RUN(iova_query_returns);
	RUN(stale_keys_never_reach_new_mrs);
	RUN(local_and_remote_rights);
	RUN(locked_bytes_overlaps);
	RUN(domain_destroy_busy);
	RUN(dereg_of_cached_mr);
	rig_close(&R);
	return attack_status();
}
