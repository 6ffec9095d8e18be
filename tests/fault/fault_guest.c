/* SPDX-License-Identifier: MIT */
/*
 * fault_guest.c - fault-injection scenarios of iovm/guest.h and the pools of
 * iovm/phys.h: a guest placed, reached, translated through its stage 2,
 * given a device, nested under a stage 1, shut down, started and rebooted;
 * a reserved pool made, found, used by a guest and given back.
 */
#include "fault.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)

/* A reboot that fails leaves the guest stopped (guest.h): starting it must then work. */
static void reboot(struct iovm_guest *g)
{
	struct iovm_guest_info info;
	int ret = iovm_guest_reboot(g);

	if (ret < 0) {
		fault_met("iovm_guest_reboot(g)", ret, __FILE__, __LINE__);
		FI_INT(iovm_guest_info(g, &info));
		CHECK(!info.running);
		FI_INT(iovm_guest_start(g));
	}
}

static void sc_guest(void)
{
	struct iovm_ctx *ctx = fault_open("page_size=4K,host_pa=off,oracle=on");
	struct iovm_guest_attr ga = { .size = 4 << 20, .flags = IOVM_GUEST_DIRECT_MAP, .page_size = 4096 };
	struct iovm_guest_bank banks[8];
	struct iovm_domain *s2, *s1;
	struct iovm_guest_info info;
	struct iovm_device *dev;
	struct iovm_guest *g;
	iovm_iova_t giova;
	iovm_pa_t pa;
	uint32_t perm;
	unsigned n;
	uint8_t *ram;
	size_t len;

	FI_INT(iovm_guest_create(ctx, &ga, &g));
	FI_INT(iovm_guest_info(g, &info));
	CHECK(info.running);
	CHECK_EQ(info.size, 4 << 20);
	FI_INT(iovm_guest_banks(g, banks, 8, &n));
	CHECK(n >= 1);
	ram = FI_PTR(iovm_guest_ptr(g, banks[0].gpa, &len));
	ram[0] = 0x11;
	FI_INT(iovm_guest_stage2(g, &s2));
	FI_INT(iovm_domain_translate(s2, IOVM_IOVA(banks[0].gpa.addr), &pa, &perm));
	CHECK_EQ(pa.addr, banks[0].pa.addr);
	/* A device given to the guest, and a stage 1 the guest manages over its stage 2. */
	FI_INT(iovm_device_open(ctx, "sw", &dev));
	FI_INT(iovm_guest_assign(g, dev, 1, 0));
	FI_INT(iovm_guest_domain_create(g, NULL, &s1));
	FI_INT(__extension__({
		giova = IOVM_IOVA_ANY;
		iovm_domain_map_gpa(s1, &giova, banks[0].gpa, 64 << 10, RW);
	}));
	FI_INT(iovm_domain_translate(s1, giova, &pa, &perm));
	CHECK_EQ(pa.addr, banks[0].pa.addr);
	FI_INT(iovm_device_attach(dev, s1, 2));
	FI_INT(iovm_device_detach(dev, 2));
	FI_INT(iovm_domain_unmap(s1, giova, 64 << 10));
	FI_INT(iovm_domain_destroy(s1));
	FI_INT(iovm_guest_unassign(g, dev, 1));
	FI_INT(iovm_device_close(dev));
	/* Down and up again, on the same banks, zeroed. */
	FI_INT(iovm_guest_shutdown(g));
	FI_EXPECT(iovm_guest_shutdown(g), -EALREADY);
	FI_INT(iovm_guest_start(g));
	ram = FI_PTR(iovm_guest_ptr(g, banks[0].gpa, &len));
	CHECK_EQ(ram[0], 0);
	reboot(g);
	FI_INT(iovm_guest_info(g, &info));
	CHECK(info.running);
	FI_INT(iovm_guest_destroy(g));
	CHECK_EQ(iovm_close(ctx), 0);
}

static void sc_pool(void)
{
	struct iovm_ctx *ctx = fault_open("page_size=4K,host_pa=off,pool=boot:1M:4K");
	struct iovm_guest_attr ga = { .size = 2 << 20, .flags = IOVM_GUEST_DIRECT_MAP, .page_size = 4096,
				      .placement = IOVM_PLACE_POOL };
	struct iovm_pool *boot, *late, *found;
	struct iovm_phys_stats ps;
	struct iovm_guest *g;

	FI_INT(iovm_pool_lookup(ctx, "boot", &boot));
	FI_INT(iovm_pool_create(ctx, "late", 4 << 20, 4096, 4, &late));
	FI_INT(iovm_pool_lookup(ctx, "late", &found));
	CHECK(found == late);
	FI_EXPECT(iovm_pool_create(ctx, "late", 1 << 20, 4096, 1, &found), -EEXIST);
	FI_INT(iovm_phys_stats(ctx, &ps));
	CHECK_EQ(ps.nr_pools, 2);
	ga.pool = late;
	FI_INT(iovm_guest_create(ctx, &ga, &g));
	FI_EXPECT(iovm_pool_destroy(late), -EBUSY);
	reboot(g);
	FI_INT(iovm_guest_destroy(g));
	FI_INT(iovm_pool_destroy(late));
	FI_INT(iovm_pool_destroy(boot));
	FI_INT(iovm_phys_stats(ctx, &ps));
	CHECK_EQ(ps.nr_pools, 0);
	CHECK_EQ(iovm_close(ctx), 0);
}

static const struct fault_scenario fault_guest_scenarios[] = {
	{ "guest", sc_guest },
	{ "reserved pools", sc_pool },
	{ NULL, NULL },
};
