/* SPDX-License-Identifier: MIT */
/*
 * vm_rdma.c - runs inside the RDMA VM test's guest (vm_rdma.sh): two
 * endpoints, each a process of its own with its own Soft-RoCE device
 * (rxe0 on veth0, rxe1 on veth1), that share no memory and reach each
 * other in RoCEv2 packets over the veth pair; each in a network namespace
 * of its own where the guest's rxe supports that (vm_rdma_setup.sh
 * decides). Before iovm is involved, plain libibverbs proves the stack:
 *
 *   write       A writes B's registered buffer (RDMA WRITE)
 *   read        A reads B's registered buffer (RDMA READ)
 *   send        SEND/RECV, A to B and back
 *   stale-rkey  B deregisters a buffer whose rkey A holds: A's RDMA WRITE
 *               and READ with it complete with IBV_WC_REM_ACCESS_ERR, and
 *               the bytes on both sides stay as they were
 *   odp         RDMA WRITE and READ on on-demand-paging MRs whose pages
 *               are not yet there (rxe from Linux 6.15; skipped before)
 *
 * Each case runs in both processes at once, on a reliable-connected QP
 * pair of its own, made by ep_connect(): the two exchange QPN, PSN, GID
 * (the device's RoCEv2 IPv4 GID) and one buffer's address, rkey and
 * length through pipes; ep_sync() is a barrier, and after each case B
 * sends A its count of failed checks. A (the parent) prints the verdict.
 * iovm's own cases (iovm-reg, -cache, -odp, -malloc, -cache-threads, -fork, -replace-*, -1g)
 * register through libiovm's verbs backend: same helpers, same lockstep.
 *
 * Usage: vm_rdma [DEV_A DEV_B [NETNS_A NETNS_B]]
 *   without arguments, the same words from $IOVM_VM_RDMA, else rxe0 rxe1;
 *   NETNS_* are paths such as /var/run/netns/A that each process
 *   setns()es into before it opens its device. IOVM_VM_RDMA_ODP=1: the
 *   kernel was built with rxe's on-demand paging, which must work.
 * Prints "RESULT: PASS" or "RESULT: FAIL" as the other VM tests do.
 */
#include <dirent.h>
#include <malloc.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <infiniband/verbs.h>

#include <iovm.h>

#include "vm_common.h"
#include "vm_rdma.h"

static int xwrite(int fd, const void *p, size_t n)
{
	for (size_t done = 0; done < n;) {
		ssize_t r = write(fd, (const char *)p + done, n - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += (size_t)r;
	}
	return 0;
}

/* Reads n bytes from the peer; -1 if it is gone or silent for CQ_TIMEOUT * 2. */
static int xread(int fd, void *p, size_t n)
{
	for (size_t done = 0; done < n;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&pfd, 1, (int)(CQ_TIMEOUT * 2000)) == 0) {
			printf("  the peer said nothing for %.0f s\n", CQ_TIMEOUT * 2);
			return -1;
		}
		r = read(fd, (char *)p + done, n - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += (size_t)r;
	}
	return 0;
}

/* Sends mine, receives the peer's: the same size both ways. */
int ep_exchange(struct ep *ep, const void *mine, void *theirs, size_t n)
{
	return xwrite(ep->out, mine, n) || xread(ep->in, theirs, n) ? -1 : 0;
}

/* A barrier: returns when both endpoints got here. */
int ep_sync(struct ep *ep)
{
	char me = 's', them;

	return ep_exchange(ep, &me, &them, 1);
}

static bool gid_is_ipv4(const union ibv_gid *g)
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return !memcmp(g->raw, prefix, sizeof(prefix));
}

static const char *gid_str(const union ibv_gid *g, char *s, size_t len)
{
	if (gid_is_ipv4(g))
		return inet_ntop(AF_INET, g->raw + 12, s, (socklen_t)len);
	return inet_ntop(AF_INET6, g->raw, s, (socklen_t)len);
}

/*
 * The device's RoCEv2 GID of an IPv4 address: rxe fills its GID table from
 * the netdev's addresses, a little after they are set, so wait for it.
 */
static int find_gid(struct ep *ep)
{
	struct ibv_gid_entry e[64];
	char s[64];

	for (double t0 = now(); now() - t0 < 20;) {
		ssize_t n = ibv_query_gid_table(ep->ctx, e, 64, 0);

		for (ssize_t i = 0; i < n; i++) {
			if (e[i].port_num != ep->port || e[i].gid_type != IBV_GID_TYPE_ROCE_V2 ||
			    !gid_is_ipv4(&e[i].gid))
				continue;
			ep->gid_index = (int)e[i].gid_index;
			ep->gid = e[i].gid;
			printf("  %s: %s port %u: RoCEv2 GID %d is %s (netdev %u)\n", ep->name,
			       ibv_get_device_name(ep->ctx->device), ep->port, ep->gid_index,
			       gid_str(&ep->gid, s, sizeof(s)), e[i].ndev_ifindex);
			return 0;
		}
		usleep(100000);
	}
	printf("  %s: no RoCEv2 IPv4 GID on %s\n", ep->name, ibv_get_device_name(ep->ctx->device));
	return -1;
}

static int ep_open(struct ep *ep, const char *dev)
{
	struct ibv_device **list;
	struct ibv_port_attr pa;
	int n;

	list = ibv_get_device_list(&n);
	if (!list) {
		printf("  %s: ibv_get_device_list: %s\n", ep->name, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n && !ep->ctx; i++)
		if (!strcmp(ibv_get_device_name(list[i]), dev))
			ep->ctx = ibv_open_device(list[i]);
	ibv_free_device_list(list);
	if (!ep->ctx) {
		printf("  %s: cannot open %s (%d devices)\n", ep->name, dev, n);
		return -1;
	}
	ep->port = 1;
	if (ibv_query_port(ep->ctx, ep->port, &pa) || pa.state != IBV_PORT_ACTIVE) {
		printf("  %s: %s port 1 is not active\n", ep->name, dev);
		return -1;
	}
	ep->mtu = pa.active_mtu;
	ep->pd = ibv_alloc_pd(ep->ctx);
	ep->cq = ep->pd ? ibv_create_cq(ep->ctx, 64, NULL, NULL, 0) : NULL;
	if (!ep->cq) {
		printf("  %s: cannot allocate a PD and a CQ on %s\n", ep->name, dev);
		return -1;
	}
	return find_gid(ep);
}

static int modify(struct ep *ep, struct ibv_qp_attr *a, int mask, const char *what)
{
	int r = ibv_modify_qp(ep->qp, a, mask);

	if (r)
		printf("  %s: QP %#x to %s: %s\n", ep->name, ep->qp->qp_num, what, strerror(r));
	return r ? -1 : 0;
}

/*
 * A new RC QP connected to the peer's, which calls this at the same time;
 * both are ready to send when it returns. addr, rkey and len describe a
 * buffer the peer may target (0 for none); the peer's lands in ep->peer.
 * Receives are posted after it, then an ep_sync() before the peer sends.
 */
int ep_connect(struct ep *ep, uint64_t addr, uint32_t rkey, uint32_t len)
{
	struct ibv_qp_init_attr ia = {
		.send_cq = ep->cq,
		.recv_cq = ep->cq,
		.cap = { .max_send_wr = 16, .max_recv_wr = 16, .max_send_sge = 1, .max_recv_sge = 1 },
		.qp_type = IBV_QPT_RC,
		.sq_sig_all = 1,
	};
	struct ibv_qp_attr a;
	struct ep_info me = { .gid = ep->gid, .addr = addr, .rkey = rkey, .len = len };
	int ok;

	ep->qp = ibv_create_qp(ep->pd, &ia);
	ok = ep->qp != NULL;
	if (!ok)
		printf("  %s: ibv_create_qp: %s\n", ep->name, strerror(errno));
	else {
		me.qpn = ep->qp->qp_num;
		me.psn = (uint32_t)(me.qpn * 7919u) & 0xffffff;
	}
	if (ep_exchange(ep, &me, &ep->peer, sizeof(me)) || !ok || !ep->peer.qpn)
		return -1;

	a = (struct ibv_qp_attr){ .qp_state = IBV_QPS_INIT, .port_num = ep->port,
		.qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ };
	if (modify(ep, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS, "INIT"))
		return -1;
	a = (struct ibv_qp_attr){
		.qp_state = IBV_QPS_RTR,
		.path_mtu = ep->mtu,
		.dest_qp_num = ep->peer.qpn,
		.rq_psn = ep->peer.psn,
		.max_dest_rd_atomic = 4,
		.min_rnr_timer = 12,
		.ah_attr = { .is_global = 1, .port_num = ep->port,
			.grh = { .dgid = ep->peer.gid, .sgid_index = (uint8_t)ep->gid_index, .hop_limit = 64 } },
	};
	if (modify(ep, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
				   IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER, "RTR"))
		return -1;
	a = (struct ibv_qp_attr){ .qp_state = IBV_QPS_RTS, .sq_psn = me.psn, .timeout = 16, .retry_cnt = 7,
		.rnr_retry = 7, .max_rd_atomic = 4 };
	if (modify(ep, &a, IBV_QP_STATE | IBV_QP_SQ_PSN | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
				   IBV_QP_MAX_QP_RD_ATOMIC, "RTS"))
		return -1;
	/* Nobody sends before the peer's QP can receive: a QP short of RTR drops what comes in. */
	return ep_sync(ep);
}

/* A completion that came before the one waited for (ep_wait_for()). */
static struct ibv_wc early;
static bool has_early;

/* Destroys the case's QP, and drops what its CQ still holds. */
static void ep_disconnect(struct ep *ep)
{
	struct ibv_wc wc;

	if (ep->qp)
		ibv_destroy_qp(ep->qp);
	ep->qp = NULL;
	while (ibv_poll_cq(ep->cq, 1, &wc) > 0)
		;
	has_early = false;
}

/* The next completion; its status, or -1 when none came in CQ_TIMEOUT. */
static int ep_wait(struct ep *ep, struct ibv_wc *wc)
{
	for (double t0 = now(); now() - t0 < CQ_TIMEOUT;) {
		int n = ibv_poll_cq(ep->cq, 1, wc);

		if (n < 0)
			break;
		if (n)
			return (int)wc->status;
		usleep(200);
	}
	printf("  %s: no completion in %.0f s\n", ep->name, CQ_TIMEOUT);
	return -1;
}

/*
 * The completion of work request wr_id (1: a send queue's, 2: a receive's):
 * the send and the receive queue share the CQ, and a peer's SEND can
 * complete the receive before the ACK of this side's own SEND completes
 * that; one such early completion is kept for the wait that wants it.
 */
static int ep_wait_for(struct ep *ep, uint64_t wr_id, struct ibv_wc *wc)
{
	if (has_early && early.wr_id == wr_id) {
		*wc = early;
		has_early = false;
		return (int)wc->status;
	}
	for (;;) {
		int st = ep_wait(ep, wc);

		if (st < 0 || wc->wr_id == wr_id)
			return st;
		if (has_early) {
			printf("  %s: a second completion (wr_id %llu) before wr_id %llu's\n", ep->name,
			       (unsigned long long)wc->wr_id, (unsigned long long)wr_id);
			return -1;
		}
		early = *wc;
		has_early = true;
	}
}

/* Posts one work request on the case's QP and waits for its completion: the status, or -1. */
static int ep_post_wait(struct ep *ep, enum ibv_wr_opcode op, struct ibv_mr *mr, void *p, size_t len,
			uint64_t raddr, uint32_t rkey)
{
	struct ibv_sge sge = { .addr = (uintptr_t)p, .length = (uint32_t)len, .lkey = mr->lkey };
	struct ibv_send_wr wr = { .wr_id = 1, .sg_list = &sge, .num_sge = 1, .opcode = op,
		.send_flags = IBV_SEND_SIGNALED, .wr = { .rdma = { .remote_addr = raddr, .rkey = rkey } } };
	struct ibv_send_wr *bad;
	struct ibv_wc wc;
	int r = ibv_post_send(ep->qp, &wr, &bad);

	if (r) {
		printf("  %s: ibv_post_send: %s\n", ep->name, strerror(r));
		return -1;
	}
	return ep_wait_for(ep, 1, &wc);
}

static int ep_post_recv(struct ep *ep, struct ibv_mr *mr, void *p, size_t len)
{
	struct ibv_sge sge = { .addr = (uintptr_t)p, .length = (uint32_t)len, .lkey = mr->lkey };
	struct ibv_recv_wr wr = { .wr_id = 2, .sg_list = &sge, .num_sge = 1 }, *bad;

	return ibv_post_recv(ep->qp, &wr, &bad) ? -1 : 0;
}

/* A malloc'ed buffer filled with v, registered with access; NULL (a failed check) if not. */
static struct ibv_mr *ep_buffer(struct ep *ep, uint8_t **p, size_t len, uint8_t v, int access)
{
	struct ibv_mr *mr = NULL;

	*p = malloc(len);
	if (*p) {
		memset(*p, v, len);
		mr = ibv_reg_mr(ep->pd, *p, len, access);
	}
	CHECK(mr, "%s: ibv_reg_mr of %zu malloc'ed bytes%s%s", ep->name, len, mr ? "" : ": ",
	      mr ? "" : strerror(errno));
	return mr;
}

static void ep_free(struct ibv_mr *mr, uint8_t *p)
{
	if (mr)
		ibv_dereg_mr(mr);
	free(p);
}

/* "" when the n bytes at p are want's, else where they first differ. */
static const char *differ(const uint8_t *p, const uint8_t *want, size_t n)
{
	static char note[64];

	for (size_t i = 0; i < n; i++)
		if (p[i] != want[i]) {
			snprintf(note, sizeof(note), " (not from byte %zu on)", i);
			return note;
		}
	return "";
}

const char *status_str(int st)
{
	return st < 0 ? "no completion" : ibv_wc_status_str((enum ibv_wc_status)st);
}

/* RDMA WRITE: A's pattern into B's zeroed buffer. */
static int case_write(struct ep *ep)
{
	uint8_t *buf, want[BUF_LEN];
	struct ibv_mr *mr;
	int st, rc = -1;

	fill(want, BUF_LEN, 1);
	mr = ep_buffer(ep, &buf, BUF_LEN, 0, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	if (!mr || ep_connect(ep, (uintptr_t)buf, mr->rkey, BUF_LEN))
		goto out;
	if (ep->side == SIDE_A) {
		memcpy(buf, want, BUF_LEN);
		st = ep_post_wait(ep, IBV_WR_RDMA_WRITE, mr, buf, BUF_LEN, ep->peer.addr, ep->peer.rkey);
		CHECK(st == IBV_WC_SUCCESS, "%s: RDMA WRITE of %d bytes to B's rkey %#x: %s", ep->name, BUF_LEN,
		      ep->peer.rkey, status_str(st));
	}
	if (ep_sync(ep))
		goto out;
	if (ep->side == SIDE_B)
		CHECK(!memcmp(buf, want, BUF_LEN), "%s: the buffer holds what A wrote%s", ep->name,
		      differ(buf, want, BUF_LEN));
	rc = 0;
out:
	ep_disconnect(ep);
	ep_free(mr, buf);
	return rc;
}

/* RDMA READ: B's pattern into A's zeroed buffer. */
static int case_read(struct ep *ep)
{
	uint8_t *buf, want[BUF_LEN];
	struct ibv_mr *mr;
	int st, rc = -1;

	fill(want, BUF_LEN, 2);
	mr = ep_buffer(ep, &buf, BUF_LEN, 0, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ);
	if (mr && ep->side == SIDE_B)
		memcpy(buf, want, BUF_LEN);
	if (!mr || ep_connect(ep, (uintptr_t)buf, mr->rkey, BUF_LEN))
		goto out;
	if (ep->side == SIDE_A) {
		st = ep_post_wait(ep, IBV_WR_RDMA_READ, mr, buf, BUF_LEN, ep->peer.addr, ep->peer.rkey);
		CHECK(st == IBV_WC_SUCCESS && !memcmp(buf, want, BUF_LEN),
		      "%s: RDMA READ of %d bytes from B's rkey %#x: %s, %s%s", ep->name, BUF_LEN, ep->peer.rkey,
		      status_str(st), memcmp(buf, want, BUF_LEN) ? "other bytes" : "B's bytes",
		      differ(buf, want, BUF_LEN));
	}
	if (ep_sync(ep))
		goto out;
	rc = 0;
out:
	ep_disconnect(ep);
	ep_free(mr, buf);
	return rc;
}

/* SEND/RECV: A's message to B, and B's answer (each byte plus one) back. */
static int case_send(struct ep *ep)
{
	enum { MSG = 3000 };
	uint8_t *buf, want[MSG];
	struct ibv_mr *mr;
	struct ibv_wc wc;
	int st, rc = -1;

	fill(want, MSG, 3);
	/* The first half sends, the second receives. */
	mr = ep_buffer(ep, &buf, 2 * MSG, 0, IBV_ACCESS_LOCAL_WRITE);
	if (!mr || ep_connect(ep, 0, 0, 0))
		goto out;
	CHECK(!ep_post_recv(ep, mr, buf + MSG, MSG), "%s: a receive of %d bytes posted", ep->name, MSG);
	if (ep_sync(ep))
		goto out;
	for (int round = 0; round < 2; round++) {
		bool same = true;

		if ((round == 0) == (ep->side == SIDE_A)) {
			for (int i = 0; i < MSG; i++)
				buf[i] = (uint8_t)(want[i] + round);
			st = ep_post_wait(ep, IBV_WR_SEND, mr, buf, MSG, 0, 0);
			CHECK(st == IBV_WC_SUCCESS, "%s: SEND of %d bytes: %s", ep->name, MSG, status_str(st));
			continue;
		}
		st = ep_wait_for(ep, 2, &wc);
		for (int i = 0; i < MSG; i++)
			same &= buf[MSG + i] == (uint8_t)(want[i] + round);
		CHECK(st == IBV_WC_SUCCESS && wc.opcode == IBV_WC_RECV && wc.byte_len == MSG && same,
		      "%s: RECV of %u bytes: %s, %s (opcode %d, wr_id %llu)", ep->name,
		      st == IBV_WC_SUCCESS ? wc.byte_len : 0, status_str(st), same ? "as sent" : "other bytes",
		      st >= 0 ? (int)wc.opcode : -1, st >= 0 ? (unsigned long long)wc.wr_id : 0ull);
	}
	if (ep_sync(ep))
		goto out;
	rc = 0;
out:
	ep_disconnect(ep);
	ep_free(mr, buf);
	return rc;
}

/*
 * A stale rkey: B registers a buffer, tells A its rkey, deregisters it.
 * A's RDMA WRITE and READ with that rkey, each on a QP pair of its own (an
 * access error ends a QP), must complete with IBV_WC_REM_ACCESS_ERR; B's
 * buffer (still allocated) and A's READ target keep their bytes.
 */
static int case_stale_rkey(struct ep *ep)
{
	uint8_t *buf, *src = NULL, fillv = ep->side == SIDE_A ? 0xa5 : 0x5a;
	struct ibv_mr *mr, *smr = NULL;
	struct ep_info stale;
	int st, rc = -1;

	mr = ep_buffer(ep, &buf, BUF_LEN, fillv,
		       IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
	if (ep->side == SIDE_A) {
		smr = ep_buffer(ep, &src, BUF_LEN, 0, IBV_ACCESS_LOCAL_WRITE);
		if (smr)
			fill(src, BUF_LEN, 4);
	}
	if (!mr || (ep->side == SIDE_A && !smr) || ep_connect(ep, (uintptr_t)buf, mr->rkey, BUF_LEN))
		goto out;
	stale = ep->peer;
	if (ep->side == SIDE_B) {
		uint32_t rkey = mr->rkey;

		CHECK(!ibv_dereg_mr(mr), "%s: ibv_dereg_mr of the buffer whose rkey %#x A holds", ep->name, rkey);
		mr = NULL;
	}
	if (ep_sync(ep))
		goto out;
	for (int read = 0; read < 2; read++) {
		if (read) {
			ep_disconnect(ep);
			if (ep_connect(ep, 0, 0, 0))
				goto out;
		}
		if (ep->side == SIDE_A) {
			st = read ? ep_post_wait(ep, IBV_WR_RDMA_READ, mr, buf, BUF_LEN, stale.addr, stale.rkey)
				  : ep_post_wait(ep, IBV_WR_RDMA_WRITE, smr, src, BUF_LEN, stale.addr, stale.rkey);
			CHECK(st == IBV_WC_REM_ACCESS_ERR, "%s: RDMA %s with B's stale rkey %#x: %s", ep->name,
			      read ? "READ" : "WRITE", stale.rkey, status_str(st));
		}
		if (ep_sync(ep))
			goto out;
	}
	CHECK(all(buf, BUF_LEN, fillv), "%s: the %s buffer kept its bytes (%#x)", ep->name,
	      ep->side == SIDE_A ? "READ's target" : "deregistered", fillv);
	rc = 0;
out:
	ep_disconnect(ep);
	ep_free(smr, src);
	ep_free(mr, buf);
	return rc;
}

/* Whether this device does RC RDMA WRITE and READ on on-demand-paging MRs. */
static bool ep_odp(struct ep *ep)
{
	struct ibv_device_attr_ex da;
	uint32_t need = IBV_ODP_SUPPORT_WRITE | IBV_ODP_SUPPORT_READ;

	return !ibv_query_device_ex(ep->ctx, NULL, &da) && (da.odp_caps.general_caps & IBV_ODP_SUPPORT) &&
	       (da.odp_caps.per_transport_caps.rc_odp_caps & need) == need;
}

/* Fresh anonymous memory, not yet touched: no page is present until the device faults it in. */
static struct ibv_mr *ep_odp_buffer(struct ep *ep, uint8_t **p, size_t len)
{
	struct ibv_mr *mr = NULL;

	*p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (*p != MAP_FAILED)
		mr = ibv_reg_mr(ep->pd, *p, len,
				IBV_ACCESS_ON_DEMAND | IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
					IBV_ACCESS_REMOTE_READ);
	else
		*p = NULL;
	CHECK(mr, "%s: ibv_reg_mr(IBV_ACCESS_ON_DEMAND) of %zu untouched bytes%s%s", ep->name, len,
	      mr ? "" : ": ", mr ? "" : strerror(errno));
	return mr;
}

/*
 * On-demand paging (rxe has it from Linux 6.15): A's RDMA WRITE into B's
 * ODP buffer, whose pages are not there yet, then A's RDMA READ of it into
 * an ODP buffer of A's own; 1 KiB packets (the veth's MTU), so most land
 * inside a page (Linux 7.3.4's rxe put each at its page's start:
 * rxe-odp-copy.patch). Skipped where a device lacks ODP, unless the
 * guest's kernel was built for it (IOVM_VM_RDMA_ODP=1): a failure then.
 */
static int case_odp(struct ep *ep)
{
	uint8_t *odp = NULL, *src = NULL, want[BUF_LEN];
	struct ibv_mr *mr = NULL, *smr = NULL;
	const char *expect = getenv("IOVM_VM_RDMA_ODP");
	int mine = ep_odp(ep), theirs, st, rc = -1;

	if (ep_exchange(ep, &mine, &theirs, sizeof(mine)))
		return -1;
	if (!mine || !theirs) {
		if (ep->side == SIDE_A)
			CHECK(!(expect && !strcmp(expect, "1")), "%s: no ODP on %s: skipped%s", ep->name,
			      !mine ? "A's device" : "B's device",
			      expect && !strcmp(expect, "1") ? ", but this kernel was built for it" : "");
		return 0;
	}
	fill(want, BUF_LEN, 5);
	mr = ep_odp_buffer(ep, &odp, BUF_LEN);
	if (ep->side == SIDE_A)
		smr = ep_buffer(ep, &src, BUF_LEN, 0, IBV_ACCESS_LOCAL_WRITE);
	if (!mr || (ep->side == SIDE_A && !smr) || ep_connect(ep, (uintptr_t)odp, mr->rkey, BUF_LEN))
		goto out;
	if (ep->side == SIDE_A) {
		memcpy(src, want, BUF_LEN);
		st = ep_post_wait(ep, IBV_WR_RDMA_WRITE, smr, src, BUF_LEN, ep->peer.addr, ep->peer.rkey);
		CHECK(st == IBV_WC_SUCCESS, "%s: RDMA WRITE into B's ODP buffer (pages absent): %s", ep->name,
		      status_str(st));
	}
	if (ep_sync(ep))
		goto out;
	if (ep->side == SIDE_B)
		CHECK(!memcmp(odp, want, BUF_LEN), "%s: the ODP buffer holds what A wrote%s", ep->name,
		      differ(odp, want, BUF_LEN));
	if (ep->side == SIDE_A) {
		st = ep_post_wait(ep, IBV_WR_RDMA_READ, mr, odp, BUF_LEN, ep->peer.addr, ep->peer.rkey);
		CHECK(st == IBV_WC_SUCCESS && !memcmp(odp, want, BUF_LEN),
		      "%s: RDMA READ of it into A's own ODP buffer (pages absent): %s, %s%s", ep->name,
		      status_str(st), memcmp(odp, want, BUF_LEN) ? "other bytes" : "the bytes written",
		      differ(odp, want, BUF_LEN));
	}
	if (ep_sync(ep))
		goto out;
	rc = 0;
out:
	ep_disconnect(ep);
	if (mr)
		ibv_dereg_mr(mr);
	if (odp)
		munmap(odp, BUF_LEN);
	ep_free(smr, src);
	return rc;
}

/* ---- iovm's cases: memory registered through libiovm's verbs backend ---- */

int iovm_ep_open(struct ep *ep, struct iovm_ep *ie)
{
	struct iovm_device_verbs v = { 0 };
	struct ibv_cq *cq;
	char spec[80];

	snprintf(spec, sizeof(spec), "verbs:%s", ep->devname);
	CHECK(!iovm_open("page_size=4K", &ie->ctx), "%s: iovm_open", ep->name);
	if (!ie->ctx)
		return -1;
	CHECK(!iovm_device_open(ie->ctx, spec, &ie->dev), "%s: iovm_device_open(%s): %s", ep->name, spec,
	      iovm_error_detail());
	if (!ie->dev)
		return -1;
	CHECK(!iovm_domain_create(ie->ctx, NULL, &ie->dom), "%s: iovm_domain_create", ep->name);
	CHECK(ie->dom && !iovm_device_attach(ie->dev, ie->dom, IOVM_PASID_NONE), "%s: iovm_device_attach: %s",
	      ep->name, iovm_error_detail());
	CHECK(!iovm_device_verbs(ie->dev, &v) && v.pd && v.context, "%s: iovm_device_verbs", ep->name);
	cq = v.context ? ibv_create_cq(v.context, 64, NULL, NULL, 0) : NULL;
	CHECK(cq, "%s: a CQ on iovm's context", ep->name);
	if (!cq)
		return -1;
	ie->own_ctx = ep->ctx, ie->own_pd = ep->pd, ie->own_cq = ep->cq;
	ep->ctx = v.context, ep->pd = v.pd, ep->cq = cq;
	return 0;
}

void iovm_ep_close(struct ep *ep, struct iovm_ep *ie)
{
	if (ie->own_cq) {
		ibv_destroy_cq(ep->cq);
		ep->ctx = ie->own_ctx, ep->pd = ie->own_pd, ep->cq = ie->own_cq;
	}
	if (ie->dev) {
		iovm_device_detach(ie->dev, IOVM_PASID_NONE);
		iovm_device_close(ie->dev);
	}
	if (ie->dom)
		iovm_domain_destroy(ie->dom);
	if (ie->ctx)
		iovm_close(ie->ctx);
	*ie = (struct iovm_ep){ 0 };
}

/* An MR's device keys as a struct ibv_mr for ep_post_wait() (which reads lkey only). */
struct ibv_mr iovm_keys(struct iovm_mr *mr)
{
	struct iovm_mr_info info = { 0 };

	iovm_mr_query(mr, &info);
	return (struct ibv_mr){ .lkey = info.lkey, .rkey = info.rkey, .addr = info.addr, .length = info.len };
}

/*
 * iovm_mr_reg() of malloc'ed memory on both sides: A's RDMA WRITE lands
 * in B's buffer and A's READ brings it back; once B's iovm_mr_dereg()
 * returned, A's WRITE with the old rkey is a remote access error and
 * touches nothing.
 */
static int case_iovm_reg(struct ep *ep)
{
	const uint32_t rw = IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE | IOVM_ACCESS_REMOTE_READ;
	uint8_t *buf = malloc(BUF_LEN), *want = malloc(BUF_LEN);
	struct iovm_mr *mr = NULL;
	struct iovm_ep ie = { 0 };
	struct ibv_mr k;
	int st, rc = -1;

	if (!buf || !want || iovm_ep_open(ep, &ie))
		goto out;
	memset(buf, 0, BUF_LEN);
	fill(want, BUF_LEN, 11);
	if (ep->side == SIDE_A)
		memcpy(buf, want, BUF_LEN);
	CHECK(!iovm_mr_reg(ie.dom, buf, BUF_LEN, rw, &mr), "%s: iovm_mr_reg of %d malloc'ed bytes: %s", ep->name,
	      BUF_LEN, iovm_error_detail());
	if (!mr)
		goto out;
	k = iovm_keys(mr);
	if (ep_connect(ep, (uintptr_t)buf, k.rkey, BUF_LEN))
		goto out;
	if (ep->side == SIDE_A) {
		st = ep_post_wait(ep, IBV_WR_RDMA_WRITE, &k, buf, BUF_LEN, ep->peer.addr, ep->peer.rkey);
		CHECK(st == IBV_WC_SUCCESS, "%s: RDMA WRITE from iovm's MR into B's: %s", ep->name, status_str(st));
		memset(buf, 0, BUF_LEN);
		st = ep_post_wait(ep, IBV_WR_RDMA_READ, &k, buf, BUF_LEN, ep->peer.addr, ep->peer.rkey);
		CHECK(st == IBV_WC_SUCCESS && !memcmp(buf, want, BUF_LEN), "%s: RDMA READ of it back: %s%s", ep->name,
		      status_str(st), differ(buf, want, BUF_LEN));
	}
	if (ep_sync(ep))
		goto out;
	if (ep->side == SIDE_B) {
		CHECK(!memcmp(buf, want, BUF_LEN), "%s: iovm's MR holds what A wrote%s", ep->name,
		      differ(buf, want, BUF_LEN));
		CHECK(!iovm_mr_dereg(mr), "%s: iovm_mr_dereg", ep->name);
		mr = NULL;
	}
	if (ep_sync(ep))
		goto out;
	if (ep->side == SIDE_A) {
		fill(buf, BUF_LEN, 12);
		st = ep_post_wait(ep, IBV_WR_RDMA_WRITE, &k, buf, BUF_LEN, ep->peer.addr, ep->peer.rkey);
		CHECK(st == IBV_WC_REM_ACCESS_ERR, "%s: RDMA WRITE with the rkey of B's deregistered MR: %s", ep->name,
		      status_str(st));
	}
	if (ep_sync(ep))
		goto out;
	if (ep->side == SIDE_B)
		CHECK(!memcmp(buf, want, BUF_LEN), "%s: the deregistered buffer kept its bytes%s", ep->name,
		      differ(buf, want, BUF_LEN));
	rc = 0;
out:
	ep_disconnect(ep);
	if (mr)
		iovm_mr_dereg(mr);
	iovm_ep_close(ep, &ie);
	free(buf);
	free(want);
	return rc;
}

/* B's buffer holds fill(seed)'s bytes. */
static void check_pattern(struct ep *ep, const uint8_t *buf, uint32_t seed, const char *what)
{
	uint8_t *want = malloc(BUF_LEN);

	if (!want)
		return;
	fill(want, BUF_LEN, seed);
	CHECK(!memcmp(buf, want, BUF_LEN), "%s: %s%s", ep->name, what, differ(buf, want, BUF_LEN));
	free(want);
}

/*
 * The registration cache in front of the device, and memory replaced
 * under it: B gets an MR of an mmap'ed buffer from iovm's cache, A writes
 * into it; a second get is a hit (same MR); B mmap()s new memory over the
 * buffer (MAP_FIXED) and gets again: a fresh MR with a new rkey. A's WRITE
 * with the new rkey lands in the new memory; one with the old rkey never
 * does (the old pinned pages take it, or the device refuses it).
 */
static int case_iovm_cache(struct ep *ep)
{
	const uint32_t rw = IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE;
	uint8_t *buf = NULL, *src = malloc(BUF_LEN);
	struct iovm_rcache *cache = NULL;
	struct iovm_mr *mr = NULL, *mr2 = NULL, *smr = NULL;
	struct iovm_ep ie = { 0 };
	struct ibv_mr k = { 0 }, sk = { 0 };
	struct ep_info old;
	int st, rc = -1;

	if (!src || iovm_ep_open(ep, &ie))
		goto out;
	buf = mmap(NULL, BUF_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(buf != MAP_FAILED, "%s: mmap", ep->name);
	if (buf == MAP_FAILED) {
		buf = NULL;
		goto out;
	}
	memset(buf, 0, BUF_LEN);
	CHECK(!iovm_rcache_create(ie.dom, NULL, &cache), "%s: iovm_rcache_create", ep->name);
	if (!cache)
		goto out;
	if (ep->side == SIDE_A) {
		CHECK(!iovm_mr_reg(ie.dom, src, BUF_LEN, IOVM_ACCESS_LOCAL_WRITE, &smr), "%s: iovm_mr_reg", ep->name);
		if (!smr)
			goto out;
		sk = iovm_keys(smr);
	} else {
		CHECK(!iovm_rcache_get(cache, buf, BUF_LEN, rw, &mr), "%s: iovm_rcache_get: %s", ep->name,
		      iovm_error_detail());
		if (!mr)
			goto out;
		k = iovm_keys(mr);
		CHECK(!iovm_rcache_put(cache, mr), "%s: put", ep->name);
		CHECK(!iovm_rcache_get(cache, buf, BUF_LEN, rw, &mr2) && mr2 == mr, "%s: a second get is a hit",
		      ep->name);
		if (mr2)
			iovm_rcache_put(cache, mr2);
		mr2 = NULL;
	}
	/* A writes fill(21) through the cached MR. */
	if (ep_connect(ep, (uintptr_t)buf, k.rkey, BUF_LEN))
		goto out;
	old = ep->peer;
	if (ep->side == SIDE_A) {
		fill(src, BUF_LEN, 21);
		st = ep_post_wait(ep, IBV_WR_RDMA_WRITE, &sk, src, BUF_LEN, old.addr, old.rkey);
		CHECK(st == IBV_WC_SUCCESS, "%s: RDMA WRITE into B's cached MR: %s", ep->name, status_str(st));
	}
	if (ep_sync(ep))
		goto out;
	if (ep->side == SIDE_B) {
		uint32_t was = k.rkey;

		check_pattern(ep, buf, 21, "the cached MR holds A's bytes");
		/* New memory over the buffer: the cache hands out a fresh MR. */
		CHECK(mmap(buf, BUF_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == buf,
		      "%s: mmap MAP_FIXED over the buffer", ep->name);
		CHECK(!iovm_rcache_get(cache, buf, BUF_LEN, rw, &mr2), "%s: get after the replacement: %s", ep->name,
		      iovm_error_detail());
		if (!mr2)
			goto out;
		k = iovm_keys(mr2);
		CHECK(k.rkey != was, "%s: the memory replaced, the cache gave a fresh MR (rkey %#x, was %#x)", ep->name,
		      k.rkey, was);
	}
	ep_disconnect(ep);
	if (ep_connect(ep, (uintptr_t)buf, k.rkey, BUF_LEN))
		goto out;
	/* A writes fill(22) with the new rkey; then fill(23) with the old one, which must not land. */
	if (ep->side == SIDE_A) {
		fill(src, BUF_LEN, 22);
		st = ep_post_wait(ep, IBV_WR_RDMA_WRITE, &sk, src, BUF_LEN, ep->peer.addr, ep->peer.rkey);
		CHECK(st == IBV_WC_SUCCESS, "%s: RDMA WRITE with the fresh rkey: %s", ep->name, status_str(st));
		fill(src, BUF_LEN, 23);
		st = ep_post_wait(ep, IBV_WR_RDMA_WRITE, &sk, src, BUF_LEN, old.addr, old.rkey);
		CHECK(st == IBV_WC_SUCCESS || st == IBV_WC_REM_ACCESS_ERR, "%s: RDMA WRITE with the old rkey: %s",
		      ep->name, status_str(st));
		printf("  %s: RDMA WRITE with the old rkey after the replacement: %s\n", ep->name, status_str(st));
	}
	if (ep_sync(ep))
		goto out;
	if (ep->side == SIDE_B)
		check_pattern(ep, buf, 22, "the new memory holds the fresh rkey's bytes, not the old rkey's");
	rc = 0;
out:
	ep_disconnect(ep);
	if (mr2)
		iovm_rcache_put(cache, mr2);
	if (cache)
		iovm_rcache_destroy(cache);
	if (smr)
		iovm_mr_dereg(smr);
	iovm_ep_close(ep, &ie);
	if (buf)
		munmap(buf, BUF_LEN);
	free(src);
	return rc;
}

/*
 * On demand through iovm: where the device has ODP (rxe from Linux 6.15),
 * B's iovm_mr_reg(IOVM_ACCESS_ON_DEMAND) of memory never touched is an
 * ODP MR, and A's RDMA WRITE lands in it; where it has not, iovm refuses
 * the registration with -EOPNOTSUPP rather than pinning it.
 */
static int case_iovm_odp(struct ep *ep)
{
	const uint32_t odp = IOVM_ACCESS_ON_DEMAND | IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE;
	uint8_t *buf = NULL, *src = malloc(BUF_LEN);
	struct iovm_mr *mr = NULL, *smr = NULL;
	struct iovm_device_verbs v = { 0 };
	struct iovm_ep ie = { 0 };
	struct ibv_mr k = { 0 }, sk = { 0 };
	int st, ret, rc = -1;

	if (!src || iovm_ep_open(ep, &ie))
		goto out;
	iovm_device_verbs(ie.dev, &v);
	buf = mmap(NULL, BUF_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		buf = NULL;
		goto out;
	}
	ret = iovm_mr_reg(ie.dom, buf, BUF_LEN, odp, &mr);
	if (!v.odp) {
		CHECK(ret == -EOPNOTSUPP, "%s: no ODP on %s: iovm_mr_reg on demand refused (%d: %s)", ep->name,
		      ep->devname, ret, iovm_error_detail());
		rc = 0;
		goto out;
	}
	CHECK(!ret, "%s: iovm_mr_reg on demand of untouched memory: %s", ep->name, iovm_error_detail());
	if (ret)
		goto out;
	k = iovm_keys(mr);
	if (ep->side == SIDE_A) {
		CHECK(!iovm_mr_reg(ie.dom, src, BUF_LEN, IOVM_ACCESS_LOCAL_WRITE, &smr), "%s: iovm_mr_reg", ep->name);
		if (!smr)
			goto out;
		sk = iovm_keys(smr);
		fill(src, BUF_LEN, 31);
	}
	if (ep_connect(ep, (uintptr_t)buf, k.rkey, BUF_LEN))
		goto out;
	if (ep->side == SIDE_A) {
		st = ep_post_wait(ep, IBV_WR_RDMA_WRITE, &sk, src, BUF_LEN, ep->peer.addr, ep->peer.rkey);
		CHECK(st == IBV_WC_SUCCESS, "%s: RDMA WRITE into B's on-demand iovm MR (pages absent): %s", ep->name,
		      status_str(st));
	}
	if (ep_sync(ep))
		goto out;
	if (ep->side == SIDE_B)
		check_pattern(ep, buf, 31, "the on-demand MR holds what A wrote");
	rc = 0;
out:
	ep_disconnect(ep);
	if (mr)
		iovm_mr_dereg(mr);
	if (smr)
		iovm_mr_dereg(smr);
	iovm_ep_close(ep, &ie);
	if (buf)
		munmap(buf, BUF_LEN);
	free(src);
	return rc;
}

/*
 * An implicit registration of the whole address space on both sides: on a
 * device with implicit ODP, its one key; with ODP alone (rxe), iovm
 * registers the 64 MiB child around each buffer on the device when
 * iovm_mr_keys() first asks, and the child's keys reach untouched memory.
 * Without ODP it is refused.
 */
#define CHILD_LEN (UINT64_C(64) << 20)
static uint8_t *child_aligned(void **resv)
{
	uint8_t *r = mmap(NULL, 2 * CHILD_LEN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0), *p;

	if (r == MAP_FAILED)
		return NULL;
	*resv = r;
	p = (uint8_t *)(((uintptr_t)r + CHILD_LEN - 1) & ~(uintptr_t)(CHILD_LEN - 1));
	/* Inside one child, whatever BUF_LEN is: a work request's buffer names one child's keys. */
	return mmap(p + 4096, BUF_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
			       MAP_FAILED
		       ? NULL
		       : p + 4096;
}

static int case_iovm_implicit(struct ep *ep)
{
	const uint32_t acc = IOVM_ACCESS_ON_DEMAND | IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE;
	struct iovm_device_verbs v = { 0 };
	struct iovm_ep ie = { 0 };
	struct iovm_mr *mr = NULL;
	struct iovm_mr_info info = { 0 };
	struct iovm_mr_keys k = { 0 };
	void *resv = NULL;
	uint8_t *buf = NULL;
	int st, ret, rc = -1;

	if (iovm_ep_open(ep, &ie))
		goto out;
	iovm_device_verbs(ie.dev, &v);
	ret = iovm_mr_reg(ie.dom, NULL, SIZE_MAX, acc, &mr);
	if (!v.odp) {
		CHECK(ret == -EOPNOTSUPP, "%s: no ODP on %s: an implicit registration refused (%d: %s)", ep->name,
		      ep->devname, ret, iovm_error_detail());
		mr = NULL;
		rc = 0;
		goto out;
	}
	CHECK(!ret, "%s: implicit registration on %s (%s implicit ODP): %s", ep->name, ep->devname,
	      v.odp_implicit ? "with" : "without", iovm_error_detail());
	if (ret)
		goto out;
	buf = child_aligned(&resv);
	CHECK(buf, "%s: a buffer inside one 64 MiB child", ep->name);
	if (!buf)
		goto out;
	CHECK(!iovm_mr_keys(mr, buf, BUF_LEN, &k), "%s: iovm_mr_keys: %s", ep->name, iovm_error_detail());
	CHECK(!iovm_mr_query(mr, &info), "%s: iovm_mr_query", ep->name);
	if (v.odp_implicit)
		CHECK(k.lkey == info.lkey && k.lkey, "%s: implicit ODP: the parent's one key", ep->name);
	else
		CHECK(info.lkey == 0 && info.children == 1 && k.lkey && (uintptr_t)k.addr % CHILD_LEN == 0 &&
			      k.len == CHILD_LEN,
		      "%s: without implicit ODP: the child's keys (parent key %#x, %llu children, [%p, +%zu))",
		      ep->name, info.lkey, (unsigned long long)info.children, k.addr, k.len);
	if (ep->side == SIDE_A)
		fill(buf, BUF_LEN, 47);
	/* B's buffer untouched: A writes from its own implicit MR's child into B's through B's child rkey. */
	if (ep_connect(ep, (uintptr_t)buf, k.rkey, BUF_LEN))
		goto out;
	if (ep->side == SIDE_A) {
		struct ibv_mr sk = { .lkey = k.lkey, .rkey = k.rkey };

		st = ep_post_wait(ep, IBV_WR_RDMA_WRITE, &sk, buf, BUF_LEN, ep->peer.addr, ep->peer.rkey);
		CHECK(st == IBV_WC_SUCCESS, "%s: RDMA WRITE between implicit registrations: %s", ep->name,
		      status_str(st));
	}
	if (ep_sync(ep))
		goto out;
	if (ep->side == SIDE_B)
		check_pattern(ep, buf, 47, "B's implicit MR's child holds what A wrote");
	rc = 0;
out:
	ep_disconnect(ep);
	if (mr)
		CHECK(!iovm_mr_dereg(mr), "%s: iovm_mr_dereg of the implicit MR: %s", ep->name, iovm_error_detail());
	iovm_ep_close(ep, &ie);
	if (resv)
		munmap(resv, 2 * CHILD_LEN);
	return rc;
}

/*
 * glibc's free() and malloc() at the same address under the cache: B gets
 * an MR of a large malloc() (glibc maps it alone), A writes into it; B
 * free()s it and malloc()s again (glibc's mmap gives the same address, as
 * UCX's cache is known to serve stale); the cache's next get is a fresh
 * MR, and A's WRITE with its rkey lands in the new buffer.
 */
#define MALLOC_LEN (256 * 1024)
static int case_iovm_malloc(struct ep *ep)
{
	const uint32_t rw = IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE;
	uint8_t *buf = NULL, *src = malloc(BUF_LEN);
	struct iovm_rcache *cache = NULL;
	struct iovm_mr *mr = NULL, *smr = NULL;
	struct iovm_ep ie = { 0 };
	struct ibv_mr k = { 0 }, sk = { 0 };
	int st, rc = -1;

	if (!src || iovm_ep_open(ep, &ie))
		goto out;
	/* A fixed threshold: glibc would otherwise serve the second malloc() from its heap. */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	CHECK(!iovm_rcache_create(ie.dom, NULL, &cache), "%s: iovm_rcache_create", ep->name);
	if (!cache)
		goto out;
	if (ep->side == SIDE_A) {
		CHECK(!iovm_mr_reg(ie.dom, src, BUF_LEN, IOVM_ACCESS_LOCAL_WRITE, &smr), "%s: iovm_mr_reg", ep->name);
		if (!smr)
			goto out;
		sk = iovm_keys(smr);
	}
	for (int round = 0; round < 2; round++) {
		uint32_t was = k.rkey;
		uint8_t *old = buf;

		if (ep->side == SIDE_B) {
			buf = malloc(MALLOC_LEN);
			CHECK(buf, "%s: malloc", ep->name);
			if (!buf)
				goto out;
			memset(buf, 0, MALLOC_LEN);
			if (round)
				printf("  %s: malloc() after free() gave %s address\n", ep->name,
				       buf == old ? "the same" : "another");
			CHECK(!iovm_rcache_get(cache, buf, BUF_LEN, rw, &mr), "%s: iovm_rcache_get: %s", ep->name,
			      iovm_error_detail());
			if (!mr)
				goto out;
			k = iovm_keys(mr);
			if (round)
				CHECK(k.rkey != was, "%s: after free()+malloc(), a fresh MR (rkey %#x, was %#x)", ep->name,
				      k.rkey, was);
		}
		if (ep_connect(ep, (uintptr_t)buf, k.rkey, BUF_LEN))
			goto out;
		if (ep->side == SIDE_A) {
			fill(src, BUF_LEN, 41 + round);
			st = ep_post_wait(ep, IBV_WR_RDMA_WRITE, &sk, src, BUF_LEN, ep->peer.addr, ep->peer.rkey);
			CHECK(st == IBV_WC_SUCCESS, "%s: RDMA WRITE into B's malloc()ed buffer, round %d: %s", ep->name,
			      round, status_str(st));
		}
		if (ep_sync(ep))
			goto out;
		ep_disconnect(ep);
		if (ep->side == SIDE_B) {
			check_pattern(ep, buf, 41 + round, "the buffer holds what A wrote");
			iovm_rcache_put(cache, mr);
			mr = NULL;
			if (!round)
				free(buf); /* glibc munmap()s it: the memory monitor sees it go */
		}
	}
	rc = 0;
out:
	ep_disconnect(ep);
	if (mr)
		iovm_rcache_put(cache, mr);
	if (cache)
		iovm_rcache_destroy(cache);
	if (smr)
		iovm_mr_dereg(smr);
	iovm_ep_close(ep, &ie);
	if (ep->side == SIDE_B)
		free(buf);
	free(src);
	return rc;
}

/*
 * Fork, by rdma-core's and the kernel's rules (Linux 5.13 and later copy
 * pinned pages for the child, so ibv_fork_init() is not needed): B
 * registers a buffer through iovm and forks; the child writes its own
 * copy of the buffer; A's RDMA WRITE lands in the parent's buffer, and
 * never in the child's copy, nor does the child's write reach the parent.
 */
static int case_iovm_fork(struct ep *ep)
{
	const uint32_t rw = IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE;
	uint8_t *buf = NULL, *src = malloc(BUF_LEN);
	struct iovm_mr *mr = NULL, *smr = NULL;
	struct iovm_device_verbs v = { 0 };
	struct iovm_ep ie = { 0 };
	struct ibv_mr k = { 0 }, sk = { 0 };
	int go[2] = { -1, -1 }, st, rc = -1;
	pid_t child = -1;

	if (!src || iovm_ep_open(ep, &ie))
		goto out;
	iovm_device_verbs(ie.dev, &v);
	CHECK(v.fork_safe, "%s: iovm_device_verbs: fork leaves MRs intact on this kernel", ep->name);
	buf = mmap(NULL, BUF_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		buf = NULL;
		goto out;
	}
	memset(buf, 0, BUF_LEN);
	if (ep->side == SIDE_A) {
		CHECK(!iovm_mr_reg(ie.dom, src, BUF_LEN, IOVM_ACCESS_LOCAL_WRITE, &smr), "%s: iovm_mr_reg", ep->name);
		if (!smr)
			goto out;
		sk = iovm_keys(smr);
	} else {
		CHECK(!iovm_mr_reg(ie.dom, buf, BUF_LEN, rw, &mr), "%s: iovm_mr_reg: %s", ep->name, iovm_error_detail());
		if (!mr)
			goto out;
		k = iovm_keys(mr);
		if (pipe(go))
			goto out;
		child = fork();
		if (child == 0) {
			char c;

			/* The child's copy: written here, checked after A's WRITE. No verbs, no iovm call. */
			memset(buf, 0x77, BUF_LEN);
			close(go[1]);
			if (read(go[0], &c, 1) != 1)
				_exit(2);
			_exit(all(buf, BUF_LEN, 0x77) ? 0 : 1);
		}
		CHECK(child > 0, "%s: fork", ep->name);
		close(go[0]);
		go[0] = -1;
	}
	if (ep_connect(ep, (uintptr_t)buf, k.rkey, BUF_LEN))
		goto out;
	if (ep->side == SIDE_A) {
		fill(src, BUF_LEN, 51);
		st = ep_post_wait(ep, IBV_WR_RDMA_WRITE, &sk, src, BUF_LEN, ep->peer.addr, ep->peer.rkey);
		CHECK(st == IBV_WC_SUCCESS, "%s: RDMA WRITE into B's MR after B forked: %s", ep->name, status_str(st));
	}
	if (ep_sync(ep))
		goto out;
	if (ep->side == SIDE_B && child > 0) {
		int ws = 0;

		check_pattern(ep, buf, 51, "the parent's buffer holds A's bytes, not the child's");
		CHECK(write(go[1], "x", 1) == 1, "%s: tell the child", ep->name);
		CHECK(waitpid(child, &ws, 0) == child && WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
		      "%s: the child's copy kept its own bytes, none of A's (status %#x)", ep->name, ws);
		child = -1;
	}
	rc = 0;
out:
	ep_disconnect(ep);
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	if (go[0] >= 0)
		close(go[0]);
	if (go[1] >= 0)
		close(go[1]);
	if (mr)
		iovm_mr_dereg(mr);
	if (smr)
		iovm_mr_dereg(smr);
	iovm_ep_close(ep, &ie);
	if (buf)
		munmap(buf, BUF_LEN);
	free(src);
	return rc;
}

/*
 * The remote side keeps writing while the local side replaces the memory:
 * A posts RDMA WRITEs to B's MR back to back while B mmap()s new memory
 * over the registered range (MAP_FIXED), then once more after. A pinned
 * MR (the device's pages were pinned at registration) never lets a write
 * land in the new memory: it stays zero. An on-demand one, where the
 * device pages, follows the address space as the kernel promises: the
 * write after the replacement lands in the new memory.
 */
#define REPLACE_WRITES 200
static int replace_under_writes(struct ep *ep, bool odp)
{
	const uint32_t rw = IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE | (odp ? IOVM_ACCESS_ON_DEMAND : 0);
	uint8_t *buf = NULL, *src = malloc(BUF_LEN);
	struct iovm_mr *mr = NULL, *smr = NULL;
	struct iovm_device_verbs v = { 0 };
	struct iovm_ep ie = { 0 };
	struct ibv_mr k = { 0 }, sk = { 0 };
	int st, rc = -1, ok = 0, refused = 0;

	if (!src || iovm_ep_open(ep, &ie))
		goto out;
	iovm_device_verbs(ie.dev, &v);
	buf = mmap(NULL, BUF_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		buf = NULL;
		goto out;
	}
	memset(buf, 0, BUF_LEN);
	if (ep->side == SIDE_A) {
		CHECK(!iovm_mr_reg(ie.dom, src, BUF_LEN, IOVM_ACCESS_LOCAL_WRITE, &smr), "%s: iovm_mr_reg", ep->name);
		if (!smr)
			goto out;
		sk = iovm_keys(smr);
		fill(src, BUF_LEN, 61);
	} else if (!odp || v.odp) {
		CHECK(!iovm_mr_reg(ie.dom, buf, BUF_LEN, rw, &mr), "%s: iovm_mr_reg%s: %s", ep->name,
		      odp ? " on demand" : "", iovm_error_detail());
		if (!mr)
			goto out;
		k = iovm_keys(mr);
	}
	if (ep_connect(ep, (uintptr_t)buf, k.rkey, BUF_LEN))
		goto out;
	if (ep->side == SIDE_A && ep->peer.rkey) {
		/* Back to back while B replaces its memory, then one more once it has. */
		for (int i = 0; i < REPLACE_WRITES; i++) {
			st = ep_post_wait(ep, IBV_WR_RDMA_WRITE, &sk, src, BUF_LEN, ep->peer.addr, ep->peer.rkey);
			if (st != IBV_WC_SUCCESS) {
				refused += st == IBV_WC_REM_ACCESS_ERR;
				break; /* the QP is in error now */
			}
			ok++;
		}
	} else if (ep->side == SIDE_B && mr) {
		usleep(20000);
		CHECK(mmap(buf, BUF_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == buf,
		      "%s: mmap MAP_FIXED over the registered buffer", ep->name);
	}
	if (ep_sync(ep))
		goto out;
	/* One more WRITE, surely after the replacement, on a fresh QP. */
	ep_disconnect(ep);
	if (ep_connect(ep, (uintptr_t)buf, k.rkey, BUF_LEN))
		goto out;
	if (ep->side == SIDE_A && ep->peer.rkey) {
		st = ep_post_wait(ep, IBV_WR_RDMA_WRITE, &sk, src, BUF_LEN, ep->peer.addr, ep->peer.rkey);
		printf("  %s: %d WRITEs went while B replaced its %s MR's memory%s; the one after: %s\n", ep->name, ok,
		       odp ? "on-demand" : "pinned", refused ? " (then refused)" : "", status_str(st));
		CHECK(st == IBV_WC_SUCCESS || (!odp && st == IBV_WC_REM_ACCESS_ERR),
		      "%s: the WRITE after the replacement: %s", ep->name, status_str(st));
	}
	if (ep_sync(ep))
		goto out;
	if (ep->side == SIDE_B && mr) {
		if (odp)
			check_pattern(ep, buf, 61, "the on-demand MR followed the address space: the new memory has A's bytes");
		else
			CHECK(all(buf, BUF_LEN, 0), "%s: no WRITE through the pinned MR landed in the new memory%s", ep->name,
			      all(buf, BUF_LEN, 0) ? "" : " (it holds some of A's bytes)");
	} else if (ep->side == SIDE_B) {
		printf("  %s: no ODP on %s: the on-demand half skipped\n", ep->name, ep->devname);
	}
	rc = 0;
out:
	ep_disconnect(ep);
	if (mr)
		iovm_mr_dereg(mr);
	if (smr)
		iovm_mr_dereg(smr);
	iovm_ep_close(ep, &ie);
	if (buf)
		munmap(buf, BUF_LEN);
	free(src);
	return rc;
}

static int case_iovm_replace_pinned(struct ep *ep)
{
	return replace_under_writes(ep, false);
}

static int case_iovm_replace_odp(struct ep *ep)
{
	return replace_under_writes(ep, true);
}

/*
 * A gigabyte through iovm, pinned and (where the device pages) on demand:
 * B registers 1 GiB of its memory, A writes 8 KiB at its start, middle
 * and last bytes by the rkey, and B finds each there. Run where the guest
 * has the memory for it (make vm-test-rdma-odp boots one with 3 GiB).
 */
#define BIG_LEN (UINT64_C(1) << 30)
static int case_iovm_1g(struct ep *ep)
{
	static const uint64_t offs[] = { 0, BIG_LEN / 2 + 4096 * 7, BIG_LEN - BUF_LEN };
	uint8_t *big = NULL, *src = malloc(BUF_LEN);
	struct iovm_mr *smr = NULL;
	struct iovm_device_verbs v = { 0 };
	struct iovm_ep ie = { 0 };
	struct ibv_mr sk = { 0 };
	struct sysinfo si;
	int rc = -1;

	if (sysinfo(&si) || (uint64_t)si.totalram * si.mem_unit < 5 * BIG_LEN / 2) {
		if (ep->side == SIDE_A)
			printf("  %s: the guest has less than 2.5 GiB: the gigabyte case skipped\n", ep->name);
		return 0;
	}
	if (!src || iovm_ep_open(ep, &ie))
		goto out;
	iovm_device_verbs(ie.dev, &v);
	if (ep->side == SIDE_A) {
		CHECK(!iovm_mr_reg(ie.dom, src, BUF_LEN, IOVM_ACCESS_LOCAL_WRITE, &smr), "%s: iovm_mr_reg", ep->name);
		if (!smr)
			goto out;
		sk = iovm_keys(smr);
	} else {
		big = mmap(NULL, BIG_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		CHECK(big != MAP_FAILED, "%s: mmap of 1 GiB", ep->name);
		if (big == MAP_FAILED) {
			big = NULL;
			goto out;
		}
	}
	for (int odp = 0; odp < 2; odp++) {
		struct iovm_mr *mr = NULL;
		struct ibv_mr k = { 0 };

		if (odp && !v.odp)
			break;
		if (ep->side == SIDE_B) {
			double t0 = now();
			uint32_t acc = IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE | (odp ? IOVM_ACCESS_ON_DEMAND : 0);

			CHECK(!iovm_mr_reg(ie.dom, big, BIG_LEN, acc, &mr), "%s: iovm_mr_reg of 1 GiB %s: %s", ep->name,
			      odp ? "on demand" : "pinned", iovm_error_detail());
			printf("  %s: 1 GiB registered %s through iovm in %.2f s\n", ep->name, odp ? "on demand" : "pinned",
			       now() - t0);
			if (mr)
				k = iovm_keys(mr);
		}
		if (ep_connect(ep, (uintptr_t)big, k.rkey, 0))
			goto out;
		if (ep->side == SIDE_A && ep->peer.rkey)
			for (unsigned i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
				int st;

				fill(src, BUF_LEN, 71 + i + 10 * odp);
				st = ep_post_wait(ep, IBV_WR_RDMA_WRITE, &sk, src, BUF_LEN, ep->peer.addr + offs[i],
						  ep->peer.rkey);
				CHECK(st == IBV_WC_SUCCESS, "%s: RDMA WRITE at +%#llx of B's 1 GiB %s MR: %s", ep->name,
				      (unsigned long long)offs[i], odp ? "on-demand" : "pinned", status_str(st));
			}
		if (ep_sync(ep))
			goto out;
		ep_disconnect(ep);
		if (ep->side == SIDE_B && mr) {
			for (unsigned i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
				check_pattern(ep, big + offs[i], 71 + i + 10 * odp, "the gigabyte holds A's bytes there");
			CHECK(!iovm_mr_dereg(mr), "%s: iovm_mr_dereg of 1 GiB", ep->name);
		}
	}
	rc = 0;
out:
	ep_disconnect(ep);
	if (smr)
		iovm_mr_dereg(smr);
	iovm_ep_close(ep, &ie);
	if (big)
		munmap(big, BIG_LEN);
	free(src);
	return rc;
}

static int case_iovm_cache_threads_(struct ep *ep)
{
	return case_iovm_cache_threads(ep, &checks, &failures);
}

/*
 * The cases, in order. Both endpoints run each one at the same time and
 * make the same ep_connect() and ep_sync() calls; a case counts failed
 * CHECKs in failures, and returns -1 only when the two lost step (a
 * connection or a barrier failed): the run stops there.
 */
static const struct {
	const char *name;
	int (*run)(struct ep *ep);
} cases[] = {
	{ "write", case_write },
	{ "read", case_read },
	{ "send", case_send },
	{ "stale-rkey", case_stale_rkey },
	{ "odp", case_odp },
	/* iovm's: memory registered through the library's verbs backend. */
	{ "iovm-reg", case_iovm_reg },
	{ "iovm-cache", case_iovm_cache },
	{ "iovm-odp", case_iovm_odp },
	{ "iovm-implicit", case_iovm_implicit },
	{ "iovm-malloc", case_iovm_malloc },
	{ "iovm-cache-threads", case_iovm_cache_threads_ }, /* vm_rdma_mt.c */
	{ "iovm-fork", case_iovm_fork },
	{ "iovm-replace-pinned", case_iovm_replace_pinned },
	{ "iovm-replace-odp", case_iovm_replace_odp },
	{ "iovm-1g", case_iovm_1g },
};

/* B's checks and failed checks, as B reported them to A. */
static int peer_checks, peer_failures;

/* A counter of the device's port 1 (rxe's hw_counters), or -1. */
static long hw_counter(const char *dev, const char *name)
{
	char path[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/infiniband/%s/ports/1/hw_counters/%s", dev, name);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* One endpoint's life: its namespace, its device, every case. */
static void endpoint(struct ep *ep, const char *dev, const char *netns)
{
	int fd, bad, theirs;

	if (netns) {
		fd = open(netns, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET)) {
			printf("  %s: cannot enter the network namespace %s: %s\n", ep->name, netns, strerror(errno));
			failures++;
		}
		if (fd >= 0)
			close(fd);
	}
	ep->devname = dev;
	if (!failures && ep_open(ep, dev))
		failures++;
	/* Both ready, or neither runs a case. */
	bad = failures;
	if (ep_exchange(ep, &bad, &theirs, sizeof(bad))) {
		peer_failures++;
		return;
	}
	peer_failures += theirs;
	if (bad || theirs)
		return;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int before = failures, rc;

		if (ep->side == SIDE_A)
			printf("case %s\n", cases[i].name);
		rc = cases[i].run(ep);
		bad = failures - before + (rc < 0);
		if (rc < 0 || ep_exchange(ep, &bad, &theirs, sizeof(bad))) {
			printf("  %s: lost step with the other endpoint in case %s\n", ep->name, cases[i].name);
			failures++;
			return;
		}
		peer_failures += theirs;
		if (ep->side == SIDE_A)
			printf("case %s: %s\n", cases[i].name, bad + theirs ? "FAIL" : "ok");
	}
	if (ep_exchange(ep, &checks, &peer_checks, sizeof(checks)))
		peer_failures++;
}

int main(int argc, char **argv)
{
	const char *dev[2] = { "rxe0", "rxe1" }, *ns[2] = { NULL, NULL };
	char *env = getenv("IOVM_VM_RDMA"), *words[4];
	int ab[2], ba[2], status, n = 0;
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN); /* a peer gone is an error from write(), not the end */
	/* The arguments, or the same words in IOVM_VM_RDMA (vm_rdma_setup.sh sets it). */
	if (argc > 1)
		for (int i = 1; i < argc && n < 4; i++)
			words[n++] = argv[i];
	else if (env)
		for (char *w = strtok(env, " "); w && n < 4; w = strtok(NULL, " "))
			words[n++] = w;
	if (n >= 2)
		dev[0] = words[0], dev[1] = words[1];
	if (n >= 4)
		ns[0] = words[2], ns[1] = words[3];
	printf("RDMA between %s%s%s and %s%s%s, in two processes\n", dev[0], ns[0] ? " in " : "",
	       ns[0] ? ns[0] : "", dev[1], ns[1] ? " in " : "", ns[1] ? ns[1] : "");
	if (pipe(ab) || pipe(ba)) {
		printf("pipe: %s\nRESULT: FAIL\n", strerror(errno));
		return 1;
	}
	/* Nothing of libibverbs exists before the fork: each process has its own. */
	pid = fork();
	if (pid < 0) {
		printf("fork: %s\nRESULT: FAIL\n", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		struct ep b = { .side = SIDE_B, .name = "B", .in = ab[0], .out = ba[1] };

		close(ab[1]);
		close(ba[0]);
		endpoint(&b, dev[1], ns[1]);
		_exit(failures ? 1 : 0);
	}
	struct ep a = { .side = SIDE_A, .name = "A", .in = ba[0], .out = ab[1] };

	close(ab[0]);
	close(ba[1]);
	endpoint(&a, dev[0], ns[0]);
	close(a.out);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
		printf("  B: %d failed checks, exit status %#x\n", peer_failures, status);
		if (!peer_failures)
			peer_failures++;
	}
	/* The packets went through both devices, in both directions; what rxe counted. */
	for (int i = 0; i < 2; i++) {
		long sent = hw_counter(dev[i], "sent_pkts"), rcvd = hw_counter(dev[i], "rcvd_pkts");
		char path[256];
		struct dirent *d;
		DIR *dir;

		CHECK(sent > 0 && rcvd > 0, "%s: %s sent %ld packets and received %ld", i ? "B" : "A", dev[i], sent,
		      rcvd);
		snprintf(path, sizeof(path), "/sys/class/infiniband/%s/ports/1/hw_counters", dev[i]);
		dir = opendir(path);
		printf("  %s counters:", dev[i]);
		while (dir && (d = readdir(dir)))
			if (d->d_name[0] != '.' && strcmp(d->d_name, "lifespan") && hw_counter(dev[i], d->d_name) > 0)
				printf(" %s=%ld", d->d_name, hw_counter(dev[i], d->d_name));
		printf("\n");
		if (dir)
			closedir(dir);
	}
	printf("B: %d checks, %d failed\n", peer_checks, peer_failures);
	checks += peer_checks;
	failures += peer_failures;
	return vm_result();
}
