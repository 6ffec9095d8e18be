/* SPDX-License-Identifier: MIT */
/*
 * bench_rdma.c - `iovm bench rdma`: registration on a real RDMA device
 * (Soft-RoCE in `make vm-bench-rdma`'s guest) beside its peers, measured
 * in one run:
 *  - registration cache hits (get+put) and misses beside UCX's ib memory
 *    domain with its rcache (uct_md_mem_reg, which ucp_mem_map calls) and
 *    libfabric's verbs provider with its MR cache (fi_mr_reg), when built
 *    in; a miss less a bare registration is the cache's bookkeeping;
 *  - a large registration (1 GiB where the memory allows) through iovm
 *    and by ibv_reg_mr() directly, pinned and on demand;
 *  - the first RDMA WRITE into an on-demand page (rxe's ODP fault);
 *  - RDMA WRITE throughput, 4 KiB to 1 MiB, from cached registrations
 *    beside registering each message.
 * Two endpoints: this process on the first device, a child on the second
 * (IOVM_VM_RDMA="DEV_A DEV_B [NETNS_A NETNS_B]", as the RDMA VM test).
 * libibverbs is dlopen()ed, as libiovm does: iovm-bench needs it for this
 * bench alone.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iovm.h>

#include "bench.h"
#include "bench_rdma_parts.h"
#include "os/vma.h"

#ifndef HAVE_VERBS
int bench_rdma(const struct bench_args *args)
{
	bench_unbuilt("rdma: every row", "-", "not built: no rdma-core headers (libibverbs-dev)");
	bench_report(args, "iovm bench rdma", 0);
	return 0;
}
#else
#include <infiniband/verbs.h>
#ifdef HAVE_UCX
#include <uct/api/uct.h>
#endif
#ifdef HAVE_LIBFABRIC
#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_errno.h>
#endif

#define PG 4096u
#define KEEP(x) __asm__ volatile("" : : "r"(x) : "memory")
#define ODP_LEN (16u << 20)
#define TGT_LEN (1u << 20)

/* libibverbs's exported calls this bench makes (posting and polling are inline). */
static struct {
	struct ibv_cq *(*create_cq)(struct ibv_context *, int, void *, struct ibv_comp_channel *, int);
	int (*destroy_cq)(struct ibv_cq *);
	struct ibv_qp *(*create_qp)(struct ibv_pd *, struct ibv_qp_init_attr *);
	int (*destroy_qp)(struct ibv_qp *);
	int (*modify_qp)(struct ibv_qp *, struct ibv_qp_attr *, int);
	int (*query_port)(struct ibv_context *, uint8_t, struct ibv_port_attr *);
	ssize_t (*query_gid_table)(struct ibv_context *, struct ibv_gid_entry *, size_t, uint32_t, size_t);
	struct ibv_mr *(*reg_mr)(struct ibv_pd *, void *, size_t, int);
	int (*dereg_mr)(struct ibv_mr *);
} vx;

static int verbs_load(void)
{
	void *h = dlopen("libibverbs.so.1", RTLD_NOW | RTLD_GLOBAL);

	if (!h)
		return -1;
	*(void **)&vx.create_cq = dlsym(h, "ibv_create_cq");
	*(void **)&vx.destroy_cq = dlsym(h, "ibv_destroy_cq");
	*(void **)&vx.create_qp = dlsym(h, "ibv_create_qp");
	*(void **)&vx.destroy_qp = dlsym(h, "ibv_destroy_qp");
	*(void **)&vx.modify_qp = dlsym(h, "ibv_modify_qp");
	*(void **)&vx.query_port = dlsym(h, "ibv_query_port");
	*(void **)&vx.query_gid_table = dlsym(h, "_ibv_query_gid_table");
	*(void **)&vx.reg_mr = dlsym(h, "ibv_reg_mr");
	*(void **)&vx.dereg_mr = dlsym(h, "ibv_dereg_mr");
	return vx.create_cq && vx.destroy_cq && vx.create_qp && vx.destroy_qp && vx.modify_qp && vx.query_port &&
	       vx.query_gid_table && vx.reg_mr && vx.dereg_mr ? 0 : -1;
}

/* One endpoint: iovm's device on an RDMA device, its domain, a CQ and an RC QP. */
struct ep {
	struct iovm_ctx *ctx;
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_device_verbs v;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	int gid_index;
	union ibv_gid gid;
	enum ibv_mtu mtu;
	int in, out;
};

/* What the endpoints tell each other: the QP, and B's targets. */
struct wire {
	uint32_t qpn, psn;
	union ibv_gid gid;
	uint64_t tgt, odp_iovm, odp_direct;
	uint32_t tgt_rkey, odp_iovm_rkey, odp_direct_rkey, odp;
};

static const struct bench_args *args;

static void die(const char *what, int err)
{
	fprintf(stderr, "iovm bench rdma: %s: %s (%s)\n", what, err ? strerror(err < 0 ? -err : err) : "failed",
		iovm_error_detail());
	exit(1);
}

static int xfer(int fd, void *p, size_t n, bool wr)
{
	for (size_t done = 0; done < n;) {
		ssize_t r = wr ? write(fd, (char *)p + done, n - done) : read(fd, (char *)p + done, n - done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += (size_t)r;
	}
	return 0;
}

static void ep_open(struct ep *ep, const char *name, const char *netns)
{
	struct ibv_gid_entry e[32];
	struct ibv_port_attr pa;
	char spec[64];
	ssize_t n;
	int ret;

	if (netns) {
		int fd = open(netns, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || setns(fd, CLONE_NEWNET))
			die(netns, errno);
		close(fd);
	}
	snprintf(spec, sizeof(spec), "verbs:%s", name);
	if ((ret = iovm_open(args->opts ? args->opts : "page_size=4K", &ep->ctx)) ||
	    (ret = iovm_device_open(ep->ctx, spec, &ep->dev)) || (ret = iovm_domain_create(ep->ctx, NULL, &ep->dom)) ||
	    (ret = iovm_device_attach(ep->dev, ep->dom, IOVM_PASID_NONE)) ||
	    (ret = iovm_device_verbs(ep->dev, &ep->v)))
		die(spec, ret);
	memset(&pa, 0, sizeof(pa));
	if (vx.query_port(ep->v.context, 1, &pa) || pa.state != IBV_PORT_ACTIVE)
		die("port 1 is not active", EIO);
	ep->mtu = pa.active_mtu;
	ep->gid_index = -1;
	/* rxe fills its GID table a little after the netdev's address is set. */
	for (int tries = 0; tries < 200 && ep->gid_index < 0; tries++) {
		n = vx.query_gid_table(ep->v.context, e, 32, 0, sizeof(e[0]));
		for (ssize_t i = 0; i < n && ep->gid_index < 0; i++)
			if (e[i].gid_type == IBV_GID_TYPE_ROCE_V2 && e[i].gid.raw[10] == 0xff && e[i].gid.raw[11] == 0xff)
				ep->gid_index = (int)e[i].gid_index, ep->gid = e[i].gid;
		if (ep->gid_index < 0)
			usleep(100000);
	}
	if (ep->gid_index < 0)
		die("no RoCEv2 IPv4 GID", ENODEV);
	ep->cq = vx.create_cq(ep->v.context, 64, NULL, NULL, 0);
	struct ibv_qp_init_attr ia = { .send_cq = ep->cq, .recv_cq = ep->cq, .qp_type = IBV_QPT_RC, .sq_sig_all = 1,
		.cap = { .max_send_wr = 16, .max_recv_wr = 16, .max_send_sge = 1, .max_recv_sge = 1 } };
	ep->qp = ep->cq ? vx.create_qp(ep->v.pd, &ia) : NULL;
	if (!ep->qp)
		die("a CQ and a QP", errno);
}

/* Exchanges the wires, and brings the QP to RTS. */
static void ep_connect(struct ep *ep, struct wire *mine, struct wire *peer)
{
	struct ibv_qp_attr a;

	mine->qpn = ep->qp->qp_num;
	mine->psn = (mine->qpn * 7919u) & 0xffffff;
	mine->gid = ep->gid;
	if (xfer(ep->out, mine, sizeof(*mine), true) || xfer(ep->in, peer, sizeof(*peer), false))
		die("the other endpoint", EPIPE);
	a = (struct ibv_qp_attr){ .qp_state = IBV_QPS_INIT, .port_num = 1,
		.qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ };
	if (vx.modify_qp(ep->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
		die("QP to INIT", errno);
	a = (struct ibv_qp_attr){ .qp_state = IBV_QPS_RTR, .path_mtu = ep->mtu, .dest_qp_num = peer->qpn,
		.rq_psn = peer->psn, .max_dest_rd_atomic = 4, .min_rnr_timer = 12,
		.ah_attr = { .is_global = 1, .port_num = 1,
			.grh = { .dgid = peer->gid, .sgid_index = (uint8_t)ep->gid_index, .hop_limit = 64 } } };
	if (vx.modify_qp(ep->qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
					     IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
		die("QP to RTR", errno);
	a = (struct ibv_qp_attr){ .qp_state = IBV_QPS_RTS, .sq_psn = mine->psn, .timeout = 16, .retry_cnt = 7,
		.rnr_retry = 7, .max_rd_atomic = 4 };
	if (vx.modify_qp(ep->qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
					     IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC))
		die("QP to RTS", errno);
	/* A barrier: the peer's QP can receive. */
	if (xfer(ep->out, "s", 1, true) || xfer(ep->in, &a, 1, false))
		die("the other endpoint", EPIPE);
}

/* One signaled RDMA WRITE, waited for. */
static void rdma_write(struct ep *ep, uint32_t lkey, void *p, size_t len, uint64_t raddr, uint32_t rkey)
{
	struct ibv_sge sge = { .addr = (uintptr_t)p, .length = (uint32_t)len, .lkey = lkey };
	struct ibv_send_wr wr = { .sg_list = &sge, .num_sge = 1, .opcode = IBV_WR_RDMA_WRITE,
		.send_flags = IBV_SEND_SIGNALED, .wr = { .rdma = { .remote_addr = raddr, .rkey = rkey } } }, *bad;
	struct ibv_wc wc;
	int n;

	if (ibv_post_send(ep->qp, &wr, &bad))
		die("ibv_post_send", EIO);
	for (uint64_t t0 = bench_now_ns(); (n = ibv_poll_cq(ep->cq, 1, &wc)) == 0;)
		if (bench_now_ns() - t0 > UINT64_C(30000000000))
			die("no completion in 30 s", ETIMEDOUT);
		else
			sched_yield(); /* Soft-RoCE's work runs on these CPUs */
	if (n < 0 || wc.status != IBV_WC_SUCCESS)
		{
		fprintf(stderr, "iovm bench rdma: RDMA WRITE: %s %d\n", n < 0 ? "ibv_poll_cq failed" : "status",
			n < 0 ? n : (int)wc.status);
		exit(1);
	}
}

static uint32_t lkey_of(struct iovm_mr *mr)
{
	struct iovm_mr_info info = { 0 };

	iovm_mr_query(mr, &info);
	return info.lkey;
}

static uint8_t *map(size_t len, bool touch)
{
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		die("mmap", errno);
	if (touch)
		memset(p, 1, len);
	return p;
}

/* ---- B: the target; serves until A closes its pipe ---- */

static void endpoint_b(struct ep *ep, const char *dev, const char *netns)
{
	const uint32_t rw = IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE | IOVM_ACCESS_REMOTE_READ;
	struct wire mine = { 0 }, peer;
	struct iovm_mr *tmr, *omr = NULL;
	struct ibv_mr *dmr = NULL;
	uint8_t *tgt, c;
	int ret;

	ep_open(ep, dev, netns);
	tgt = map(TGT_LEN, true);
	if ((ret = iovm_mr_reg(ep->dom, tgt, TGT_LEN, rw, &tmr)))
		die("iovm_mr_reg", ret);
	mine.tgt = (uintptr_t)tgt, mine.tgt_rkey = (uint32_t)-1;
	{
		struct iovm_mr_info info = { 0 };

		iovm_mr_query(tmr, &info);
		mine.tgt_rkey = info.rkey;
	}
	if (ep->v.odp) {
		uint8_t *a = map(ODP_LEN, false), *b = map(ODP_LEN, false);
		struct iovm_mr_info info = { 0 };

		if (!iovm_mr_reg(ep->dom, a, ODP_LEN, rw | IOVM_ACCESS_ON_DEMAND, &omr) && !iovm_mr_query(omr, &info))
			mine.odp_iovm = (uintptr_t)a, mine.odp_iovm_rkey = info.rkey;
		dmr = vx.reg_mr(ep->v.pd, b, ODP_LEN,
				IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_ON_DEMAND);
		if (dmr)
			mine.odp_direct = (uintptr_t)b, mine.odp_direct_rkey = dmr->rkey;
		mine.odp = omr && dmr;
	}
	ep_connect(ep, &mine, &peer);
	while (read(ep->in, &c, 1) > 0)
		;
	_exit(0);
}

/* ---- A: the rows ---- */

static unsigned reps(void)
{
	return args->quick ? 3 : 7;
}

static double iovm_hits(struct iovm_rcache *c, uint8_t *buf, size_t len, uint64_t n)
{
	struct iovm_mr *mr;
	uint64_t t0;

	if (iovm_rcache_get(c, buf, len, IOVM_ACCESS_LOCAL_WRITE, &mr))
		die("iovm_rcache_get", EIO);
	iovm_rcache_put(c, mr);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		iovm_rcache_get(c, buf, len, IOVM_ACCESS_LOCAL_WRITE, &mr);
		KEEP(mr);
		iovm_rcache_put(c, mr);
	}
	return (double)(bench_now_ns() - t0) / (double)n;
}

/* A cost less its baseline: NAN where noise made it zero or less. */
static double above_noise(double v)
{
	return v > 0 ? v : NAN;
}

/* Gets (each a miss) and puts of n pages 8 KiB apart, in a cache of their own: ns each. */
static double iovm_misses(struct ep *ep, uint8_t *pages, uint64_t n)
{
	struct iovm_rcache_attr attr = { .max_regions = n + 1, .max_bytes = SIZE_MAX };
	struct iovm_rcache *c;
	struct iovm_mr *mr;
	uint64_t t0;
	int ret;

	if ((ret = iovm_rcache_create(ep->dom, &attr, &c)))
		die("iovm_rcache_create", ret);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		if ((ret = iovm_rcache_get(c, pages + i * 2 * PG, PG, IOVM_ACCESS_LOCAL_WRITE, &mr)))
			die("iovm_rcache_get", ret);
		iovm_rcache_put(c, mr);
	}
	t0 = bench_now_ns() - t0;
	iovm_rcache_destroy(c);
	return (double)t0 / (double)n;
}

/* The same pages by ibv_reg_mr() and no cache: ns each. */
static double bare_misses(struct ep *ep, uint8_t *pages, uint64_t n)
{
	struct ibv_mr **mrs = calloc(n, sizeof(*mrs));
	uint64_t t0;

	if (!mrs)
		die("calloc", ENOMEM);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++)
		if (!(mrs[i] = vx.reg_mr(ep->v.pd, pages + i * 2 * PG, PG, IBV_ACCESS_LOCAL_WRITE)))
			die("ibv_reg_mr", errno);
	t0 = bench_now_ns() - t0;
	for (uint64_t i = 0; i < n; i++)
		vx.dereg_mr(mrs[i]);
	free(mrs);
	return (double)t0 / (double)n;
}

/* bare_misses() for rdma_miss_parts(): @arg is the endpoint. */
static double bare_of(void *arg, uint8_t *pages, uint64_t n)
{
	return bare_misses(arg, pages, n);
}

#ifdef HAVE_UCX
/* UCX's ib memory domain on @dev, with its rcache (UCX_IB_RCACHE=yes: an md without one fails to open). */
static uct_md_h ucx_md(const char *dev)
{
	uct_component_h *comps;
	uct_md_h md = NULL;
	unsigned nc;

	setenv("UCX_IB_RCACHE", "yes", 0);
	if (uct_query_components(&comps, &nc) != UCS_OK)
		return NULL;
	for (unsigned i = 0; i < nc && !md; i++) {
		uct_component_attr_t a = { .field_mask = UCT_COMPONENT_ATTR_FIELD_NAME |
							 UCT_COMPONENT_ATTR_FIELD_MD_RESOURCE_COUNT };
		uct_md_config_t *cfg;

		if (uct_component_query(comps[i], &a) != UCS_OK || strcmp(a.name, "ib") || !a.md_resource_count)
			continue;
		a.md_resources = calloc(a.md_resource_count, sizeof(*a.md_resources));
		a.field_mask = UCT_COMPONENT_ATTR_FIELD_MD_RESOURCES;
		if (a.md_resources && uct_component_query(comps[i], &a) == UCS_OK)
			for (unsigned j = 0; j < a.md_resource_count && !md; j++)
				if (!strcmp(a.md_resources[j].md_name, dev) &&
				    uct_md_config_read(comps[i], NULL, NULL, &cfg) == UCS_OK) {
					if (uct_md_open(comps[i], dev, cfg, &md) != UCS_OK)
						md = NULL;
					uct_config_release(cfg);
				}
		free(a.md_resources);
	}
	/* The component list may go; the md keeps what it needs. */
	uct_release_component_list(comps);
	return md;
}

static double ucx_hits(uct_md_h md, uint8_t *buf, size_t len, uint64_t n)
{
	uct_mem_h memh;
	uint64_t t0;

	if (uct_md_mem_reg(md, buf, len, UCT_MD_MEM_ACCESS_ALL, &memh) != UCS_OK)
		return NAN;
	uct_md_mem_dereg(md, memh);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		uct_md_mem_reg(md, buf, len, UCT_MD_MEM_ACCESS_ALL, &memh);
		KEEP(memh);
		uct_md_mem_dereg(md, memh);
	}
	return (double)(bench_now_ns() - t0) / (double)n;
}

/* Misses: a fresh md (a fresh rcache) each time, as iovm_misses() has a fresh cache. */
static double ucx_misses(const char *dev, uint8_t *pages, uint64_t n)
{
	uct_md_h md = ucx_md(dev);
	uct_mem_h memh;
	uint64_t t0;

	if (!md)
		return NAN;
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		if (uct_md_mem_reg(md, pages + i * 2 * PG, PG, UCT_MD_MEM_ACCESS_ALL, &memh) != UCS_OK) {
			uct_md_close(md);
			return NAN;
		}
		uct_md_mem_dereg(md, memh);
	}
	t0 = bench_now_ns() - t0;
	uct_md_close(md);
	return (double)t0 / (double)n;
}
#endif

#ifdef HAVE_LIBFABRIC
/*
 * libfabric's verbs provider on @ep's device: a domain whose MRs go through
 * its MR cache. Its FI_EP_MSG domains are those of devices whose netdev has
 * an IP address that librdmacm binds to the device (rdma_ucm in the
 * kernel); given no address, it binds "localhost", which is no RDMA
 * device's: the device's own IPv4 address (its RoCEv2 GID's) is the source
 * address asked for. The domain is the device ("rxe0"), its fabric
 * whatever the provider names it.
 */
static struct fid_domain *fab_domain(const struct ep *ep, const char *dev, struct fid_fabric **fabric)
{
	struct fi_info *hints = fi_allocinfo(), *info = NULL;
	struct fid_domain *dom = NULL;
	char ip[16];
	int ret;

	/* memhooks: iovm's own monitor holds the userfaultfd of the ranges both register. */
	setenv("FI_MR_CACHE_MONITOR", "memhooks", 0);
	if (!hints)
		return NULL;
	snprintf(ip, sizeof(ip), "%u.%u.%u.%u", ep->gid.raw[12], ep->gid.raw[13], ep->gid.raw[14], ep->gid.raw[15]);
	hints->fabric_attr->prov_name = strdup("verbs");
	hints->domain_attr->name = strdup(dev);
	hints->ep_attr->type = FI_EP_MSG;
	hints->caps = FI_MSG | FI_RMA;
	hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY;
	if ((ret = fi_getinfo(FI_VERSION(1, 17), ip, NULL, FI_SOURCE | FI_NUMERICHOST, hints, &info)) || !info)
		bench_note("libfabric: fi_getinfo(verbs, %s, source %s): %s (FI_LOG_LEVEL=info says why; "
			   "IOVM_VM_FI_LOG=info in the VM)", dev, ip, fi_strerror(-ret));
	else if ((ret = fi_fabric(info->fabric_attr, fabric, NULL)) || (ret = fi_domain(*fabric, info, &dom, NULL))) {
		bench_note("libfabric: the verbs fabric or domain on %s: %s", dev, fi_strerror(-ret));
		dom = NULL;
	} else {
		bench_note("libfabric: verbs domain %s, fabric %s, source %s; MR cache monitor %s", info->domain_attr->name,
			   info->fabric_attr->name, ip, getenv("FI_MR_CACHE_MONITOR"));
	}
	if (info)
		fi_freeinfo(info);
	fi_freeinfo(hints);
	return dom;
}

static double fab_hits(struct fid_domain *d, uint8_t *buf, size_t len, uint64_t n)
{
	struct fid_mr *mr;
	uint64_t t0;

	if (fi_mr_reg(d, buf, len, FI_READ | FI_WRITE, 0, 0, 0, &mr, NULL))
		return NAN;
	fi_close(&mr->fid);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		fi_mr_reg(d, buf, len, FI_READ | FI_WRITE, 0, 0, 0, &mr, NULL);
		KEEP(mr);
		fi_close(&mr->fid);
	}
	return (double)(bench_now_ns() - t0) / (double)n;
}

static double fab_misses(struct fid_domain *d, uint8_t *pages, uint64_t n)
{
	struct fid_mr *mr;
	uint64_t t0 = bench_now_ns();

	for (uint64_t i = 0; i < n; i++) {
		if (fi_mr_reg(d, pages + i * 2 * PG, PG, FI_READ | FI_WRITE, 0, 0, 0, &mr, NULL))
			return NAN;
		fi_close(&mr->fid);
	}
	return (double)(bench_now_ns() - t0) / (double)n;
}
#endif

static void rows_cache(struct ep *ep, const char *dev)
{
	const uint64_t nhit = args->quick ? 2000 : 20000, nmiss = args->quick ? 64 : 256;
	const size_t blen = 16 * PG;
	uint8_t *bi = map(blen, true), *bu = map(blen, true), *bf = map(blen, true);
	double hit[16], uhit[16], fhit[16], miss[16], umiss[16], fmiss[16], keep[16], ukeep[16], fkeep[16], tmiss[16];
	const char *upeer = "none (UCX not built in)", *fpeer = "none (libfabric not built in)";
	struct iovm_rcache *c;
	unsigned nr = reps();
	int ret;
#ifdef HAVE_UCX
	uct_md_h umd = args->dpdk ? ucx_md(dev) : NULL;

	upeer = !args->dpdk ? "none (--no-dpdk: no peers)" : "UCX 1.13 ib md rcache";
#endif
#ifdef HAVE_LIBFABRIC
	struct fid_fabric *fab = NULL;
	struct fid_domain *fdom = args->dpdk ? fab_domain(ep, dev, &fab) : NULL;

	fpeer = !args->dpdk ? "none (--no-dpdk: no peers)" : "libfabric 1.17 verbs MR cache";
#endif
	(void)dev;
	bench_progress("rdma: the registration cache, beside UCX and libfabric");
	if ((ret = iovm_rcache_create(ep->dom, NULL, &c)))
		die("iovm_rcache_create", ret);
	for (unsigned r = 0; r < nr; r++) {
		uint8_t *pages = map(nmiss * 2 * PG, true);
		double bare;

		hit[r] = iovm_hits(c, bi, blen, nhit);
		uhit[r] = fhit[r] = umiss[r] = fmiss[r] = NAN;
		/*
		 * The bare registration before the caches' misses and after
		 * them, the lower kept: a cache's bookkeeping (libfabric's some
		 * microseconds) is smaller than the registration's noise here.
		 */
		bare = bare_misses(ep, pages, nmiss);
		miss[r] = iovm_misses(ep, pages, nmiss);
#ifdef HAVE_UCX
		if (umd) {
			uhit[r] = ucx_hits(umd, bu, blen, nhit);
			umiss[r] = ucx_misses(dev, pages, nmiss);
		}
#endif
#ifdef HAVE_LIBFABRIC
		if (fdom) {
			fhit[r] = fab_hits(fdom, bf, blen, nhit);
			fmiss[r] = fab_misses(fdom, pages, nmiss);
		}
#endif
		bare = fmin(bare, bare_misses(ep, pages, nmiss));
		/* iovm as before os_vma_probe(): the maps' text read at each miss (Linux < 6.11's only way then). */
		{
			uint8_t *other = map(nmiss * 2 * PG, true);

			os_vma_text_only(true);
			tmiss[r] = iovm_misses(ep, other, nmiss);
			os_vma_text_only(false);
			munmap(other, nmiss * 2 * PG);
		}
		keep[r] = miss[r] - bare, ukeep[r] = umiss[r] - bare, fkeep[r] = fmiss[r] - bare;
		munmap(pages, nmiss * 2 * PG);
	}
	iovm_rcache_destroy(c);
#ifdef HAVE_UCX
	if (umd)
		uct_md_close(umd);
	else if (args->dpdk)
		bench_note("UCX: no ib memory domain with an rcache on %s (UCX_IB_RCACHE=yes)", dev);
#endif
#ifdef HAVE_LIBFABRIC
	if (fdom)
		fi_close(&fdom->fid);
	if (fab)
		fi_close(&fab->fid);
	if (!fdom && args->dpdk)
		bench_note("libfabric: no verbs domain on %s", dev);
#endif
	bench_result("rcache hit: get+put 64 KiB, vs UCX", "ns", bench_median(hit, nr), upeer, bench_median(uhit, nr),
		     "ratio <= 0.5");
	bench_result("rcache hit: get+put 64 KiB, vs libfabric", "ns", bench_median(hit, nr), fpeer, bench_median(fhit, nr),
		     "ratio <= 0.5");
	bench_result("rcache miss: register 4 KiB, put, vs UCX", "us", bench_median(miss, nr) / 1e3, upeer,
		     bench_median(umiss, nr) / 1e3, "report");
	bench_result("rcache miss: register 4 KiB, put, vs libfabric", "us", bench_median(miss, nr) / 1e3, fpeer,
		     bench_median(fmiss, nr) / 1e3, "report");
	bench_result(os_vma_queries() ? "rcache miss: 4 KiB, PROCMAP_QUERY vs the maps' text"
				      : "rcache miss: 4 KiB, probes vs the maps' text",
		     "us", bench_median(miss, nr) / 1e3, "iovm reading /proc/self/maps at each miss",
		     bench_median(tmiss, nr) / 1e3, "ratio <= 0.5");
	bench_result("rcache miss: bookkeeping only, vs UCX", "us", above_noise(bench_median(keep, nr)) / 1e3, upeer,
		     above_noise(bench_median(ukeep, nr)) / 1e3, "ratio <= 1");
	bench_result("rcache miss: bookkeeping only, vs libfabric", "us", above_noise(bench_median(keep, nr)) / 1e3,
		     fpeer, above_noise(bench_median(fkeep, nr)) / 1e3, "ratio <= 1");
	/* (A peer not measured has no figure to lose.) */
	if (!(bench_median(keep, nr) > 0) || bench_median(ukeep, nr) <= 0 || bench_median(fkeep, nr) <= 0)
		bench_note("rcache miss: a miss less the bare registration below zero is lost in the noise of the "
			   "registration: no figure");
	munmap(bi, blen), munmap(bu, blen), munmap(bf, blen);
}

/* The largest power of two up to 1 GiB that a third of the guest's free memory holds. */
static size_t big_len(void)
{
	struct sysinfo si;
	size_t len = (size_t)1 << 30;

	if (!sysinfo(&si))
		while (len > TGT_LEN && len > (uint64_t)si.freeram * si.mem_unit / 3 * 2)
			len /= 2;
	return len;
}

static void rows_big(struct ep *ep)
{
	const size_t len = big_len();
	double it[8], dt[8];
	unsigned nr = args->quick ? 1 : 3;
	char name[96], sz[32];
	uint8_t *p = map(len, true);

	bench_size(len, sz, sizeof(sz));
	if (len < ((size_t)1 << 30))
		bench_note("%s, not 1 GiB: the largest that fits two thirds of the free memory", sz);
	for (int odp = 0; odp < 2; odp++) {
		const uint32_t acc = IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE | (odp ? IOVM_ACCESS_ON_DEMAND : 0);

		snprintf(name, sizeof(name), "register %s %s", sz, odp ? "on demand" : "pinned");
		if (odp && !ep->v.odp) {
			bench_result(name, "ms", NAN, "none (the device has no ODP: Linux < 6.15 rxe)", NAN, "report");
			continue;
		}
		bench_progress("rdma: %s", name);
		for (unsigned r = 0; r < nr; r++) {
			struct iovm_mr *mr;
			struct ibv_mr *dmr;
			uint64_t t0 = bench_now_ns();

			if (iovm_mr_reg(ep->dom, p, len, acc, &mr))
				die("iovm_mr_reg", EIO);
			it[r] = (double)(bench_now_ns() - t0) / 1e6;
			iovm_mr_dereg(mr);
			t0 = bench_now_ns();
			dmr = vx.reg_mr(ep->v.pd, p, len,
					IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | (odp ? IBV_ACCESS_ON_DEMAND : 0));
			dt[r] = (double)(bench_now_ns() - t0) / 1e6;
			if (!dmr)
				die("ibv_reg_mr", errno);
			vx.dereg_mr(dmr);
		}
		bench_result(name, "ms", bench_median(it, nr), "ibv_reg_mr directly", bench_median(dt, nr),
			     "ratio <= 1.1");
	}
	munmap(p, len);
}

static void rows_odp(struct ep *ep, const struct wire *b, struct iovm_rcache *c, uint8_t *src)
{
	const unsigned n = args->quick ? 16 : 64;
	double it, dt, pt;
	struct iovm_mr *mr;
	uint64_t t0;

	if (!b->odp) {
		bench_result("first WRITE into an ODP page, 4 KiB", "us", NAN,
			     "none (the device has no ODP: Linux < 6.15 rxe)", NAN, "report");
		return;
	}
	bench_progress("rdma: first touches of on-demand pages");
	if (iovm_rcache_get(c, src, PG, IOVM_ACCESS_LOCAL_WRITE, &mr))
		die("iovm_rcache_get", EIO);
	/* Each page once, never touched before: rxe faults it in. */
	t0 = bench_now_ns();
	for (unsigned i = 0; i < n; i++)
		rdma_write(ep, lkey_of(mr), src, PG, b->odp_iovm + (uint64_t)i * 16 * PG, b->odp_iovm_rkey);
	it = (double)(bench_now_ns() - t0) / n / 1e3;
	t0 = bench_now_ns();
	for (unsigned i = 0; i < n; i++)
		rdma_write(ep, lkey_of(mr), src, PG, b->odp_direct + (uint64_t)i * 16 * PG, b->odp_direct_rkey);
	dt = (double)(bench_now_ns() - t0) / n / 1e3;
	/* The same pages again: present now. */
	t0 = bench_now_ns();
	for (unsigned i = 0; i < n; i++)
		rdma_write(ep, lkey_of(mr), src, PG, b->odp_iovm + (uint64_t)i * 16 * PG, b->odp_iovm_rkey);
	pt = (double)(bench_now_ns() - t0) / n / 1e3;
	iovm_rcache_put(c, mr);
	bench_result("first WRITE into an ODP page, 4 KiB", "us", it, "ibv_reg_mr ODP directly", dt, "ratio <= 1.1");
	bench_result("WRITE into a present ODP page, 4 KiB", "us", pt, "none (the fault's baseline)", NAN, "report");
}

static void rows_throughput(struct ep *ep, const struct wire *b, struct iovm_rcache *c)
{
	static const size_t sizes[] = { 4096, 65536, 1 << 20 };
	unsigned nr = args->quick ? 1 : 3;

	for (unsigned s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		const size_t len = sizes[s];
		const unsigned n = (unsigned)((args->quick ? 256u << 10 : 2u << 20) / len) + 8;
		uint8_t *src = map(len, true);
		double cached[8], per[8];
		char name[64], sz[32];

		bench_size(len, sz, sizeof(sz));
		snprintf(name, sizeof(name), "RDMA WRITE %s, cached MR", sz);
		bench_progress("rdma: %s", name);
		for (unsigned r = 0; r < nr; r++) {
			uint64_t t0 = bench_now_ns();

			for (unsigned i = 0; i < n; i++) {
				struct iovm_mr *mr;

				if (iovm_rcache_get(c, src, len, IOVM_ACCESS_LOCAL_WRITE, &mr))
					die("iovm_rcache_get", EIO);
				rdma_write(ep, lkey_of(mr), src, len, b->tgt, b->tgt_rkey);
				iovm_rcache_put(c, mr);
			}
			cached[r] = (double)n * (double)len / ((double)(bench_now_ns() - t0) / 1e9) / 1e6;
			t0 = bench_now_ns();
			for (unsigned i = 0; i < n; i++) {
				struct ibv_mr *mr = vx.reg_mr(ep->v.pd, src, len, IBV_ACCESS_LOCAL_WRITE);

				if (!mr)
					die("ibv_reg_mr", errno);
				rdma_write(ep, mr->lkey, src, len, b->tgt, b->tgt_rkey);
				vx.dereg_mr(mr);
			}
			per[r] = (double)n * (double)len / ((double)(bench_now_ns() - t0) / 1e9) / 1e6;
		}
		bench_result(name, "MB/s", bench_median(cached, nr), "ibv_reg_mr per message", bench_median(per, nr),
			     "ratio >= 1");
		munmap(src, len);
	}
}

int bench_rdma(const struct bench_args *a)
{
	const char *dev[2] = { "rxe0", "rxe1" }, *ns[2] = { NULL, NULL };
	char *env = getenv("IOVM_VM_RDMA"), *words[4], *save = NULL;
	struct wire mine = { 0 }, b;
	struct ep ep = { 0 }, epb = { 0 };
	int ab[2], ba[2], n = 0, ret;
	struct iovm_rcache *c;
	uint8_t *src;
	pid_t pid;

	args = a;
	if (verbs_load()) {
		bench_unbuilt("rdma: every row", "-", "not run: no libibverbs.so.1 with the calls it needs");
		bench_report(args, "iovm bench rdma", 0);
		return 0;
	}
	for (char *w = env ? strtok_r(env, " ", &save) : NULL; w && n < 4; w = strtok_r(NULL, " ", &save))
		words[n++] = w;
	if (n >= 2)
		dev[0] = words[0], dev[1] = words[1];
	if (n >= 4)
		ns[0] = words[2], ns[1] = words[3];
	for (int i = 0; i < 2; i++) {
		char path[128];

		snprintf(path, sizeof(path), "/sys/class/infiniband/%s", dev[i]);
		if (access(path, F_OK)) {
			bench_note("no RDMA device %s here: `make vm-bench-rdma` runs this on Soft-RoCE", dev[i]);
			bench_unbuilt("rdma: every row", "-", "not run: no RDMA device");
			bench_report(args, "iovm bench rdma", 0);
			return 0;
		}
	}
	if (pipe(ab) || pipe(ba))
		die("pipe", errno);
	signal(SIGPIPE, SIG_IGN);
	/* B forks before anything of libibverbs or iovm exists here. */
	pid = fork();
	if (pid < 0)
		die("fork", errno);
	if (pid == 0) {
		epb.in = ab[0], epb.out = ba[1];
		close(ab[1]), close(ba[0]);
		endpoint_b(&epb, dev[1], ns[1]);
	}
	close(ab[0]), close(ba[1]);
	ep.in = ba[0], ep.out = ab[1];
	ep_open(&ep, dev[0], ns[0]);
	ep_connect(&ep, &mine, &b);
	bench_note("%s and %s, RC over RoCEv2; reps: median of %u (1 GiB rows: %u)", dev[0], dev[1], reps(),
		   args->quick ? 1 : 3);

	rows_cache(&ep, dev[0]);
	rdma_miss_parts(ep.ctx, ep.dom, reps(), args->quick ? 64 : 256, bare_of, &ep);
	/* IOVM_BENCH_RDMA=cache (vm_rdma.sh's IOVM_VM_BENCH_ROWS): the cache's rows alone, for studying them. */
	if (getenv("IOVM_BENCH_RDMA") && !strcmp(getenv("IOVM_BENCH_RDMA"), "cache"))
		goto out;
	rows_big(&ep);
	if ((ret = iovm_rcache_create(ep.dom, NULL, &c)))
		die("iovm_rcache_create", ret);
	src = map(PG, true);
	rows_odp(&ep, &b, c, src);
	rows_throughput(&ep, &b, c);
	iovm_rcache_destroy(c);
	munmap(src, PG);
out:
	close(ep.out);
	waitpid(pid, NULL, 0);
	bench_report(args, "iovm bench rdma", reps());
	return 0;
}
#endif
