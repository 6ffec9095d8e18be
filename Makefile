# iovm - the two commands of the README, and a few more.
#
#   make run     build, then run `iovm demo` on the default configuration
#   make docs    man pages and the HTML reference from the headers, into $(BUILD)/docs/{man,html}
#   make check   build, run every test, then again under ASan+UBSan and ThreadSanitizer (clang)
#   make vm-test the VM test alone (also part of make check, in the default build)
#   make vm-bench `iovm bench vfio` in the VM test's guest
#   make vm-test-iommufd  the VM test on its own 6.12 guest kernel: iommufd and no-IOMMU too
#   make vm-test-rdma  RDMA between two Soft-RoCE (rxe) endpoints in a QEMU guest
#   make vm-test-rdma-odp  the same on its own 7.x guest kernel: namespaces and on-demand paging
#   make vm-bench-rdma `iovm bench rdma` in that guest (vm-bench-rdma-odp: on the 7.x kernel)
#   make fuzz    every libFuzzer target for FUZZ_SECONDS (60) each; make check replays their corpora
#   make check-tsan  the suite under ThreadSanitizer alone
#   make deb     Debian packages libiovm0, libiovm-dev, iovm into build/deb, checked by lintian
#
# Both install missing Debian packages first (apt-get, as root).

BUILD       ?= build
BUILD_ASAN  ?= build-asan
BUILD_CLANG ?= build-clang
PREFIX      ?= /usr/local
DEMO_ARGS   ?=

.PHONY: all deps build docs deb run check test check-tsan fuzz check-asan check-clang vm-test vm-test-iommufd vm-test-rdma vm-test-rdma-odp vm-bench vm-bench-rdma vm-bench-rdma-odp bench install uninstall clean

all: build

deps:
	@scripts/deps.sh build

build: deps
	@[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD) --prefix=$(PREFIX)
	ninja -C $(BUILD)

# Built by `ninja` too (so `make install` has them); this names them alone.
docs: build
	ninja -C $(BUILD) docs

run: build
	$(BUILD)/tools/iovm demo $(DEMO_ARGS)

check:
	@scripts/deps.sh check
	scripts/check.sh

# The suite once, in the default build only.
test: build
	scripts/check.sh --only default,install

check-tsan:
	@scripts/deps.sh check
	scripts/check.sh --only tsan

check-asan:
	@scripts/deps.sh check
	scripts/check.sh --only asan

check-clang:
	@scripts/deps.sh check
	scripts/check.sh --only clang

FUZZ_SECONDS ?= 60
fuzz:
	@scripts/deps.sh check
	scripts/fuzz.sh $(FUZZ_SECONDS)

# The VM test alone: iovm's VFIO backend in a QEMU guest with an emulated IOMMU.
vm-test: build
	tests/vm/vm_test.sh $(BUILD) edu,nvme,noiommu

# The VM test on a guest kernel of its own (built once into /var/tmp/iovm-vm,
# about 4 minutes): edu and NVMe through iommufd, edu through the VFIO group,
# and VFIO's no-IOMMU mode, which Debian's 6.1 kernel cannot run.
vm-test-iommufd: build
	IOVM_VM_KERNEL=$$(tests/vm/make_kernel.sh | tail -n1) tests/vm/vm_test.sh $(BUILD)

# RDMA through the kernel's Soft-RoCE (rxe) on Debian's 6.1 guest kernel:
# two processes, each with its own rxe device, over a veth pair; libibverbs
# first, then iovm. Not part of make check (yet).
vm-test-rdma: build
	tests/vm/vm_rdma.sh $(BUILD)

# The RDMA VM test on a guest kernel of its own (built once into
# /var/tmp/iovm-vm from trixie-backports' newest linux-source, some 25
# minutes here): each endpoint in its own network namespace, and rxe's
# on-demand paging, which Debian's 6.1 kernel lacks.
vm-test-rdma-odp: build
	IOVM_VM_RDMA_KERNEL=$$(tests/vm/make_kernel.sh rdma | tail -n1) tests/vm/vm_rdma.sh $(BUILD)

# `iovm bench rdma` on Soft-RoCE in the RDMA VM test's guest (Debian's 6.1:
# no ODP rows), beside UCX's and libfabric's caches: build/bench-rdma.json.
vm-bench-rdma: build
	tests/vm/vm_rdma.sh $(BUILD) bench

# The same on the ODP kernel (built once, as vm-test-rdma-odp): build/bench-rdma-odp.json.
vm-bench-rdma-odp: build
	IOVM_VM_RDMA_KERNEL=$$(tests/vm/make_kernel.sh rdma | tail -n1) tests/vm/vm_rdma.sh $(BUILD) bench

# `iovm bench vfio` in the VM test's guest: VFIO through an emulated IOMMU.
vm-bench: build
	tests/vm/vm_test.sh $(BUILD) bench

bench: build
	@scripts/deps.sh bench || true
	@[ -f $(BUILD)/build.ninja ] && meson setup --reconfigure $(BUILD) >/dev/null
	ninja -C $(BUILD)
	$(BUILD)/tools/iovm bench mem --plot $(BUILD)/bench-mem.svg --json-out $(BUILD)/bench-mem.json
	$(BUILD)/tools/iovm bench iommu --plot $(BUILD)/bench-iommu.svg --json-out $(BUILD)/bench-iommu.json
	$(BUILD)/tools/iovm bench reg --plot $(BUILD)/bench-reg.svg --json-out $(BUILD)/bench-reg.json
	$(BUILD)/tools/iovm bench mp --plot $(BUILD)/bench-mp.svg --json-out $(BUILD)/bench-mp.json

# Into PREFIX, also when $(BUILD) was set up before with another prefix.
install: build
	meson configure $(BUILD) --prefix=$(PREFIX) >/dev/null
	meson install -C $(BUILD)

# Debian packages (debian/), built from a copy of the tree: scripts/deb.sh.
.PHONY: deb
deb:
	@scripts/deps.sh deb
	scripts/deb.sh $(BUILD)/deb

uninstall:
	ninja -C $(BUILD) uninstall

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_CLANG) build-tsan build-fuzz
