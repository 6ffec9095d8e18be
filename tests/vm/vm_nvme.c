/* SPDX-License-Identifier: MIT */
/*
 * vm_nvme.c - runs inside the VM test's guest: QEMU's NVMe controller behind
 * an emulated Intel IOMMU, driven through iovm's VFIO backend as SPDK's
 * driver would drive it. The queues are iovm zones (the common-buffer
 * path), the data buffers are DMA heap memory and a registered malloc
 * buffer, and every address the controller is given is an IOVA of a domain
 * that follows the heap: iovm_dma_iova(), never a physical address.
 *
 * Checked: Identify Controller ("QEMU NVMe Ctrl"); an I/O queue pair; writes
 * from the heap (PRP1+PRP2) and from registered memory (a PRP list), read
 * back; blocks the host wrote into the disk image before boot read here; a
 * read into a deregistered IOVA and into read-only registered memory
 * blocked by the IOMMU, memory untouched; the I/O completion's MSI-X.
 * QEMU 7.2's controller completes such a read with status 0 (its DMA
 * helpers drop a failed write-back): the IOMMU's fault is in QEMU's log,
 * the test checks the memory.
 *
 * On the host, the same binary seeds the disk image before the boot and
 * checks what the guest wrote after it:
 *   vm_nvme --seed IMAGE     vm_nvme --verify IMAGE
 */
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vm_common.h"

#define NVME_VENDOR 0x1b36
#define NVME_DEVICE 0x0010

#define PAGE 4096u
#define QDEPTH 64u          /* entries per queue: one 4 KiB page of SQEs */
#define LBA 512u            /* QEMU's default block size; checked from Identify Namespace */
/* Where each test's blocks live in the image: the host computes the same. */
#define HEAP_LBA 16u        /* 8 KiB from heap memory */
#define HEAP_LEN (2 * PAGE)
#define MR_LBA 128u         /* 64 KiB from a registered malloc buffer */
#define MR_LEN (16 * PAGE)
#define HOST_LBA 1024u      /* 16 KiB the host wrote before the boot */
#define HOST_LEN (4 * PAGE)
#define SEED(lba) (0x10f0u + (lba))

/* Registers of BAR0 (NVMe 1.4, 3.1). */
#define REG_CAP 0x00
#define REG_VS 0x08
#define REG_INTMS 0x0c
#define REG_CC 0x14
#define REG_CSTS 0x1c
#define REG_AQA 0x24
#define REG_ASQ 0x28
#define REG_ACQ 0x30
#define REG_DBS 0x1000

/* Opcodes. */
#define ADM_CREATE_SQ 0x01
#define ADM_CREATE_CQ 0x05
#define ADM_IDENTIFY 0x06
#define ADM_SET_FEATURES 0x09
#define IO_WRITE 0x01
#define IO_READ 0x02

struct sqe {
	uint32_t cdw0; /* opcode, command id */
	uint32_t nsid;
	uint64_t rsvd;
	uint64_t mptr;
	uint64_t prp1;
	uint64_t prp2;
	uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};
_Static_assert(sizeof(struct sqe) == 64, "an NVMe submission entry is 64 bytes");

struct cqe {
	uint32_t result;
	uint32_t rsvd;
	uint16_t sq_head, sq_id;
	uint16_t cid;
	uint16_t status; /* bit 0: phase */
};
_Static_assert(sizeof(struct cqe) == 16, "an NVMe completion entry is 16 bytes");

struct queue {
	uint16_t id;
	struct sqe *sq;
	struct cqe *cq;
	iovm_iova_t sq_iova, cq_iova;
	uint16_t tail, head, cid;
	uint16_t phase;
};

static unsigned dstrd;

static bool wait_ready(bool ready, double timeout)
{
	double t0 = now();

	while ((rd32(REG_CSTS) & 1) != ready) {
		if (now() - t0 > timeout)
			return false;
		usleep(1000);
	}
	return true;
}

/* Both rings of a queue pair in one zone each: found again by name. */
static void queue_init(struct iovm_ctx *ctx, struct iovm_domain *dom, struct queue *q, uint16_t id)
{
	const struct iovm_zone *zs, *zc;
	char name[IOVM_ZONE_NAMESIZE];

	snprintf(name, sizeof(name), "nvme.sq%u", id);
	MUST(iovm_zone_reserve(ctx, name, QDEPTH * sizeof(struct sqe), PAGE, 0, &zs));
	snprintf(name, sizeof(name), "nvme.cq%u", id);
	MUST(iovm_zone_reserve(ctx, name, QDEPTH * sizeof(struct cqe), PAGE, 0, &zc));
	*q = (struct queue){ .id = id, .sq = zs->va, .cq = zc->va, .phase = 1 };
	MUST(iovm_dma_iova(dom, q->sq, &q->sq_iova));
	MUST(iovm_dma_iova(dom, q->cq, &q->cq_iova));
}

/* Submit @cmd and wait for its completion; the status field, or -1 on a timeout. */
static int submit(struct queue *q, struct sqe cmd, uint32_t *result)
{
	volatile struct cqe *c;
	double t0 = now();
	uint16_t status;

	cmd.cdw0 |= (uint32_t)++q->cid << 16;
	q->sq[q->tail] = cmd;
	q->tail = (q->tail + 1) % QDEPTH;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	wr32(REG_DBS + (2u * q->id) * (4u << dstrd), q->tail);
	c = &q->cq[q->head];
	while ((c->status & 1) != q->phase) {
		if (now() - t0 > 10)
			return -1;
		usleep(100);
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	status = c->status >> 1;
	if (result)
		*result = c->result;
	if (c->cid != q->cid)
		status = 0x7fff;
	if (++q->head == QDEPTH) {
		q->head = 0;
		q->phase ^= 1;
	}
	wr32(REG_DBS + (2u * q->id + 1) * (4u << dstrd), q->head);
	return status;
}

static int io(struct queue *q, uint8_t op, uint32_t lba, uint32_t len, uint64_t prp1, uint64_t prp2)
{
	return submit(q,
		      (struct sqe){ .cdw0 = op, .nsid = 1, .prp1 = prp1, .prp2 = prp2, .cdw10 = lba,
				    .cdw12 = len / LBA - 1 },
		      NULL);
}

/* Pattern of @len bytes from block @lba on, one seed per block. */
static void pattern(uint8_t *p, uint32_t lba, size_t len)
{
	for (size_t off = 0; off < len; off += LBA)
		fill(p + off, LBA, SEED(lba + off / LBA));
}

/* The host side: seed the image before the boot, verify it after. */
static int host(const char *what, const char *image)
{
	static const struct { uint32_t lba, len; } written[] = { { HEAP_LBA, HEAP_LEN }, { MR_LBA, MR_LEN } };
	uint8_t want[MR_LEN], got[MR_LEN];
	int fd = open(image, O_RDWR);
	int bad = 0;

	if (fd < 0) {
		perror(image);
		return 1;
	}
	if (!strcmp(what, "--seed")) {
		pattern(want, HOST_LBA, HOST_LEN);
		bad = pwrite(fd, want, HOST_LEN, (off_t)HOST_LBA * LBA) != HOST_LEN;
	} else {
		for (unsigned i = 0; i < 2; i++) {
			pattern(want, written[i].lba, written[i].len);
			if (pread(fd, got, written[i].len, (off_t)written[i].lba * LBA) != written[i].len ||
			    memcmp(want, got, written[i].len)) {
				printf("FAIL: the image lacks the guest's %u bytes at block %u\n", written[i].len,
				       written[i].lba);
				bad = 1;
			} else {
				printf("ok: the image holds the guest's %u bytes at block %u\n", written[i].len,
				       written[i].lba);
			}
		}
	}
	close(fd);
	return bad;
}

int main(int argc, char **argv)
{
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	struct iovm_ctx *ctx;
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_device_info di;
	struct iovm_mr *mr, *ro_mr;
	struct queue aq, ioq;
	iovm_iova_t id_iova, heap_iova, rd_iova, mr_iova, list_iova, host_iova, ro_iova;
	uint8_t *id, *heap, *rd, *app, *ro, *want;
	uint64_t cap, *prp_list;
	char spec[300], mn[41] = { 0 };
	unsigned lbads;
	size_t bar_len;
	uint16_t cmd;
	int st, efd;

	if (argc == 3)
		return host(argv[1], argv[2]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	MUST(find_pci(NVME_VENDOR, NVME_DEVICE, spec, sizeof(spec)));
	printf("NVMe controller at %s\n", strchr(spec, ':') + 1);
	MUST(iovm_open("page_size=2M,log_level=notice", &ctx));
	MUST(iovm_device_open(ctx, spec, &dev));
	MUST(iovm_device_query(dev, &di));
	check_iommu_api(&di);
	/*
	 * The domain follows the heap: it maps what is committed already when
	 * it is created, so its IOVAs must fit the kernel's ranges before the
	 * device is attached.
	 */
	attr.dma_bits = kernel_dma_bits(&di);
	MUST(iovm_domain_create(ctx, &attr, &dom));
	MUST(iovm_device_attach(dev, dom, 0));
	MUST(iovm_device_config_read(dev, 4, &cmd, 2));
	cmd |= 0x6;
	MUST(iovm_device_config_write(dev, 4, &cmd, 2));
	MUST(iovm_device_bar(dev, 0, (void **)&bar, &bar_len));
	cap = rd64(REG_CAP);
	dstrd = (cap >> 32) & 0xf;
	CHECK(rd32(REG_VS) >= 0x10000 && cap != ~0ull, "BAR0 (%zu bytes): NVMe %u.%u, up to %u entries per queue",
	      bar_len, rd32(REG_VS) >> 16, (rd32(REG_VS) >> 8) & 0xff, (unsigned)(cap & 0xffff) + 1);

	/* The admin queue pair in zones; the controller reset, then enabled on them. */
	queue_init(ctx, dom, &aq, 0);
	wr32(REG_INTMS, ~0u);
	wr32(REG_CC, 0);
	MUST(wait_ready(false, 5) ? 0 : -ETIMEDOUT);
	wr32(REG_AQA, ((QDEPTH - 1) << 16) | (QDEPTH - 1));
	wr64(REG_ASQ, aq.sq_iova.addr);
	wr64(REG_ACQ, aq.cq_iova.addr);
	/* IOCQES 2^4, IOSQES 2^6, 4 KiB pages, NVM command set, enabled. */
	wr32(REG_CC, (4u << 20) | (6u << 16) | 1u);
	CHECK(wait_ready(true, 5), "enabled on admin queues at IOVAs %#lx and %#lx (zones)",
	      (unsigned long)aq.sq_iova.addr, (unsigned long)aq.cq_iova.addr);
	CHECK(in_kernel_ranges(&di, aq.sq_iova.addr, PAGE), "inside the kernel's IOVA ranges");

	/* Identify Controller into heap memory. */
	id = iovm_dma_zalloc(ctx, PAGE, PAGE, 0);
	MUST(id ? 0 : -ENOMEM);
	MUST(iovm_dma_iova(dom, id, &id_iova));
	st = submit(&aq, (struct sqe){ .cdw0 = ADM_IDENTIFY, .prp1 = id_iova.addr, .cdw10 = 1 }, NULL);
	memcpy(mn, id + 24, 40);
	for (int i = 39; i >= 0 && mn[i] == ' '; i--)
		mn[i] = 0;
	CHECK(st == 0 && *(uint16_t *)id == NVME_VENDOR && !strcmp(mn, "QEMU NVMe Ctrl"),
	      "Identify Controller (status %#x): vendor %#x, model '%s'", st, *(uint16_t *)id, mn);

	/* Identify Namespace 1: its block size. */
	memset(id, 0, PAGE);
	st = submit(&aq, (struct sqe){ .cdw0 = ADM_IDENTIFY, .nsid = 1, .prp1 = id_iova.addr, .cdw10 = 0 }, NULL);
	lbads = id[128 + 4 * (id[26] & 0xf) + 2];
	CHECK(st == 0 && (1u << lbads) == LBA, "namespace 1: %lu blocks of %u bytes", (unsigned long)*(uint64_t *)id,
	      1u << lbads);

	/* One I/O queue pair, its completions signalled by MSI-X vector 0. */
	efd = eventfd(0, EFD_NONBLOCK);
	CHECK(efd >= 0 && iovm_device_msi(dev, efd) == 0, "MSI-X vector 0 to an eventfd");
	st = submit(&aq, (struct sqe){ .cdw0 = ADM_SET_FEATURES, .cdw10 = 0x07, .cdw11 = 0 }, NULL);
	CHECK(st == 0, "Set Features, number of queues: one pair (status %#x)", st);
	queue_init(ctx, dom, &ioq, 1);
	st = submit(&aq,
		    (struct sqe){ .cdw0 = ADM_CREATE_CQ, .prp1 = ioq.cq_iova.addr, .cdw10 = ((QDEPTH - 1) << 16) | 1,
				  .cdw11 = (0u << 16) | 2u | 1u },
		    NULL);
	CHECK(st == 0, "I/O completion queue created (status %#x)", st);
	st = submit(&aq,
		    (struct sqe){ .cdw0 = ADM_CREATE_SQ, .prp1 = ioq.sq_iova.addr, .cdw10 = ((QDEPTH - 1) << 16) | 1,
				  .cdw11 = (1u << 16) | 1u },
		    NULL);
	CHECK(st == 0, "I/O submission queue created (status %#x)", st);

	/* 8 KiB from the heap: PRP1 and PRP2 point at its two pages. */
	heap = iovm_dma_alloc(ctx, HEAP_LEN, PAGE, 0);
	rd = iovm_dma_zalloc(ctx, MR_LEN, PAGE, 0);
	MUST(heap && rd ? 0 : -ENOMEM);
	pattern(heap, HEAP_LBA, HEAP_LEN);
	MUST(iovm_dma_iova(dom, heap, &heap_iova));
	MUST(iovm_dma_iova(dom, rd, &rd_iova));
	{
		/*
		 * The admin queue's completions signalled it too: drained first,
		 * until quiet for half a second (the interrupt of the last admin
		 * command comes after its completion entry, which submit() polled:
		 * a loaded emulator delivered it after one drain, and counted 2).
		 */
		struct pollfd pf = { .fd = efd, .events = POLLIN };
		uint64_t n = 0;

		while (poll(&pf, 1, 500) > 0 && read(efd, &n, sizeof(n)) == sizeof(n))
			;
		n = 0;
		st = io(&ioq, IO_WRITE, HEAP_LBA, HEAP_LEN, heap_iova.addr, heap_iova.addr + PAGE);
		CHECK(st == 0, "write 8 KiB from the heap at IOVA %#lx (status %#x)", (unsigned long)heap_iova.addr, st);
		if (poll(&pf, 1, 5000) <= 0 || read(efd, &n, sizeof(n)) != sizeof(n))
			n = 0;
		CHECK(n == 1, "its completion raised the interrupt once (%lu)", (unsigned long)n);
	}
	st = io(&ioq, IO_READ, HEAP_LBA, HEAP_LEN, rd_iova.addr, rd_iova.addr + PAGE);
	CHECK(st == 0 && !memcmp(rd, heap, HEAP_LEN), "read back (status %#x)", st);

	/* 64 KiB from the application's own memory, registered: a PRP list. */
	app = aligned_alloc(PAGE, MR_LEN);
	prp_list = iovm_dma_zalloc(ctx, PAGE, PAGE, 0);
	MUST(app && prp_list ? 0 : -ENOMEM);
	pattern(app, MR_LBA, MR_LEN);
	MUST(iovm_mr_reg(dom, app, MR_LEN, IOVM_ACCESS_LOCAL_WRITE, &mr));
	MUST(iovm_mr_iova(mr, app, MR_LEN, &mr_iova));
	for (unsigned i = 1; i < MR_LEN / PAGE; i++)
		prp_list[i - 1] = mr_iova.addr + i * PAGE;
	MUST(iovm_dma_iova(dom, prp_list, &list_iova));
	st = io(&ioq, IO_WRITE, MR_LBA, MR_LEN, mr_iova.addr, list_iova.addr);
	CHECK(st == 0, "write 64 KiB from a registered malloc buffer at IOVA %#lx, PRP list (status %#x)",
	      (unsigned long)mr_iova.addr, st);
	memset(app, 0, MR_LEN);
	st = io(&ioq, IO_READ, MR_LBA, MR_LEN, mr_iova.addr, list_iova.addr);
	pattern(rd, MR_LBA, MR_LEN);
	CHECK(st == 0 && !memcmp(app, rd, MR_LEN), "read back into it (status %#x)", st);

	/* What the host wrote before the boot. */
	memset(rd, 0, MR_LEN);
	host_iova = rd_iova;
	for (unsigned i = 1; i < HOST_LEN / PAGE; i++)
		prp_list[i - 1] = host_iova.addr + i * PAGE;
	st = io(&ioq, IO_READ, HOST_LBA, HOST_LEN, host_iova.addr, list_iova.addr);
	want = malloc(HOST_LEN);
	MUST(want ? 0 : -ENOMEM);
	pattern(want, HOST_LBA, HOST_LEN);
	CHECK(st == 0 && !memcmp(rd, want, HOST_LEN), "the 16 KiB the host wrote before the boot read (status %#x)", st);
	free(want);

	/* Deregistered: the controller's write to memory is blocked by the IOMMU. */
	MUST(iovm_mr_dereg(mr));
	memset(app, 0x5a, MR_LEN);
	st = io(&ioq, IO_READ, MR_LBA, PAGE, mr_iova.addr, 0);
	CHECK(all(app, MR_LEN, 0x5a), "a read into a deregistered IOVA is blocked: memory untouched (status %#x)", st);

	/* Registered read-only: the controller may read it, not write it. */
	ro = aligned_alloc(PAGE, PAGE);
	MUST(ro ? 0 : -ENOMEM);
	pattern(ro, HEAP_LBA, PAGE);
	MUST(iovm_mr_reg(dom, ro, PAGE, IOVM_ACCESS_LOCAL_READ, &ro_mr));
	MUST(iovm_mr_iova(ro_mr, ro, PAGE, &ro_iova));
	st = io(&ioq, IO_WRITE, HEAP_LBA, PAGE, ro_iova.addr, 0);
	CHECK(st == 0, "a write from read-only registered memory (status %#x)", st);
	memset(ro, 0x33, PAGE);
	st = io(&ioq, IO_READ, HOST_LBA, PAGE, ro_iova.addr, 0);
	CHECK(all(ro, PAGE, 0x33), "a read into it is blocked: memory untouched (status %#x)", st);
	MUST(iovm_mr_dereg(ro_mr));

	/* The controller disabled before the domain goes. */
	wr32(REG_CC, 0);
	CHECK(wait_ready(false, 5), "controller disabled");
	iovm_device_msi(dev, -1);
	close(efd);
	kernel_report_detach(dev);
	MUST(iovm_device_close(dev));
	iovm_domain_destroy(dom);
	iovm_close(ctx);
	free(app);
	free(ro);
	return vm_result();
}
