#!/bin/bash
# SPDX-License-Identifier: MIT
#
# vm_test.sh - the VM test: iovm's VFIO backend against real VFIO, in a
# QEMU guest with an emulated Intel IOMMU (intremap=on: without it
# VFIO_SET_IOMMU fails with EPERM), QEMU's edu DMA device and an NVMe
# controller. TCG: these machines cannot run a stock guest under KVM.
#
# It installs what it lacks from Debian (qemu-system-x86, busybox-static),
# fetches Debian's 6.1 guest kernel (apt-get download, dpkg -x: its VFIO
# drivers are modules, loaded in order by the guest's init), builds the
# tests statically against libiovm_internal.a (every symbol), packs an
# initramfs, boots, and passes
# only if every test in the guest printed "RESULT: PASS".
#
# Usage: vm_test.sh BUILD_DIR [TESTS, comma-separated]
#   Default: edu,nvme,noiommu; with IOVM_VM_KERNEL, edu,nvme,edu+group,noiommu.
#   NAME+group and NAME+iommufd run test NAME through that kernel interface
#   (the VFIO group and type1 container, or iommufd and the VFIO cdev); a
#   bare NAME takes iommufd where the kernel has it, the group otherwise.
#   The test "noiommu" runs in a second guest, without an IOMMU, and needs
#   a kernel with CONFIG_VFIO_NOIOMMU; iommufd needs CONFIG_IOMMUFD and
#   CONFIG_VFIO_DEVICE_CDEV (Linux 6.6 and later). Debian 12's 6.1 kernel
#   has neither: these run when IOVM_VM_KERNEL names a kernel that has them
#   (tests/vm/make_kernel.sh builds one), and are skipped, saying so,
#   otherwise.
#   The test "bench" runs `iovm bench vfio` in the guest (2 GiB of RAM then,
#   for its gigabyte of hugepages); its JSON lands in BUILD_DIR/bench-vfio.json.
# Exit: 0 pass, 1 fail, 77 skipped (QEMU truly cannot run here; says why).
set -u
BUILD=$(readlink -f "${1:?usage: vm_test.sh BUILD_DIR [TESTS]}")
if [ -n "${IOVM_VM_KERNEL:-}" ]; then TESTS=${2:-edu,nvme,edu+group,noiommu}; else TESTS=${2:-edu,nvme,noiommu}; fi
SRC=$(dirname "$(readlink -f "$0")")
ROOT=$(readlink -f "$SRC/../..")
CACHE=${IOVM_VM_CACHE:-/var/tmp/iovm-vm}
WORK=$BUILD/vm
TIMEOUT=${VM_TIMEOUT:-300}

. "$SRC/vm_lib.sh"
vm_need_qemu

# The guest kernel: Debian's, with the VFIO modules (some 15 MB of the package's 400).
mkdir -p "$CACHE" "$WORK" || fail "cannot make $CACHE or $WORK"
pkg=$(vm_kernel_pkg)
[ -n "$pkg" ] || skip "no linux-image package known to apt"
kpkg=$CACHE/$pkg
VFIO_MODULES="virt/lib/irqbypass drivers/vfio/vfio drivers/vfio/vfio_iommu_type1 drivers/vfio/vfio_virqfd
	drivers/vfio/pci/vfio-pci-core drivers/vfio/pci/vfio-pci"
vm_unpack_kernel "$pkg" "$kpkg" $VFIO_MODULES
kernel=$kpkg/vmlinuz
own_kernel=${IOVM_VM_KERNEL:-}
if [ -n "$own_kernel" ]; then
	[ -f "$own_kernel" ] || fail "IOVM_VM_KERNEL=$own_kernel: no such kernel"
	kernel=$own_kernel # all built in: no modules to load
else
	for t in ${TESTS//,/ }; do
		case $t in
		noiommu) why="built without CONFIG_VFIO_NOIOMMU" ;;
		*+iommufd) why="older than iommufd's VFIO cdev (6.6)" ;;
		*) continue ;;
		esac
		echo "SKIP $t: Debian's 6.1 kernel is $why (IOVM_VM_KERNEL=\$(tests/vm/make_kernel.sh) runs it)"
		TESTS=$(echo "$TESTS" | tr ',' '\n' | grep -vxF "$t" | paste -sd, -)
	done
	[ -n "$TESTS" ] || exit 77
fi

# The tests, static, against the library just built.
cc=${CC:-gcc}
for t in ${TESTS//,/ }; do
	if [ "$t" = bench ]; then
		# iovm-bench, static, without the peers (the guest has no DPDK): every
		# file of bench/, which builds each peer's part only where it is found.
		$cc -std=c17 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -static -I"$ROOT/include" -I"$ROOT/src" \
			-o "$WORK/vm_bench" "$ROOT"/bench/*.c "$ROOT"/tools/output.c "$ROOT"/tools/json.c \
			"$BUILD/libiovm_internal.a" -lpthread -lm || fail "cannot build the benchmark"
		continue
	fi
	t=${t%%+*}
	[[ " ${built:-} " == *" $t "* ]] && continue # built for an earlier NAME+INTERFACE
	built="${built:-} $t"
	$cc -std=c17 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -static -I"$ROOT/include" -I"$ROOT/src" -o "$WORK/vm_$t" \
		"$SRC/vm_$t.c" "$BUILD/libiovm_internal.a" -lpthread || fail "cannot build vm_$t"
done

# The initramfs: busybox, the VFIO modules in load order, init, the tests.
R=$WORK/rootfs
rm -rf "$R" && mkdir -p "$R"/{bin,lib/modules,proc,sys,dev,tmp}
cp /bin/busybox "$R/bin/busybox" && ln -s busybox "$R/bin/sh"
cp "$SRC/init" "$R/init"
for t in ${TESTS//,/ }; do cp "$WORK/vm_${t%%+*}" "$R/"; done
: >"$R/lib/modules/load-order"
for m in $VFIO_MODULES; do
	b=$(basename $m)
	[ -z "$own_kernel" ] || break
	[ -f "$kpkg/modules/$b.ko" ] || continue # vfio_virqfd is part of vfio on later kernels
	cp "$kpkg/modules/$b.ko" "$R/lib/modules/" && echo "$b" >>"$R/lib/modules/load-order"
done
vm_pack "$R" "$WORK/initramfs.gz"
# The NVMe disk: fresh each boot, with blocks the guest must read back.
rm -f "$WORK/nvme.img" && truncate -s 64M "$WORK/nvme.img" || fail "cannot make the disk image"
case ",$TESTS," in *,nvme,* | *,nvme+*) "$WORK/vm_nvme" --seed "$WORK/nvme.img" || fail "cannot seed the disk image" ;; esac

# Boot once with the IOMMU for the tests that need one, and once without
# for the no-IOMMU test (VFIO's unsafe no-IOMMU mode). Each guest powers
# off when its tests are done.
# boot LOG TESTS IOMMU(yes|no): prints the guest's console; sets $pass.
boot() {
	local log=$1 tests=$2 iommu=$3 mem=1G qiommu=() append="console=ttyS0 panic=-1 quiet vmtests=$2" rc
	case ",$tests," in *,bench,*) mem=2560M ;; esac
	if [ "$iommu" = yes ]; then
		qiommu=(-device intel-iommu,intremap=on,caching-mode=on)
		append+=" intel_iommu=on"
	else
		append+=" vmnoiommu vfio.enable_unsafe_noiommu_mode=1"
	fi
	echo "booting $(basename "$kernel") ($([ "$iommu" = yes ] && echo "emulated Intel IOMMU" || echo "no IOMMU")) with $tests"
	timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg -M q35,kernel-irqchip=split -cpu max -smp 2 -m $mem \
		-nographic -no-reboot -nic none "${qiommu[@]}" \
		-device edu,dma_mask=0xffffffffffffffff \
		-drive file="$WORK/nvme.img",if=none,id=nvm,format=raw -device nvme,serial=iovm0001,drive=nvm \
		-kernel "$kernel" -initrd "$WORK/initramfs.gz" -append "$append" </dev/null >"$log" 2>&1
	rc=$?
	grep -vE '^\s*$' "$log" | grep -vE 'DMAR: \[DMA|DMAR: DRHD' | sed 's/^/  | /'
	if [ $rc -ne 0 ] && ! grep -q "VM: running" "$log"; then
		grep -qiE "could not|failed to|no such" "$log" && skip "QEMU cannot run here (rc $rc)"
		fail "the guest did not start its tests (qemu rc $rc)"
	fi
	[ $rc -eq 0 ] || fail "qemu rc $rc"
	pass=$((pass + $(grep -c 'RESULT: PASS' "$log")))
}

pass=0
with=$(echo "$TESTS" | tr ',' '\n' | grep -vx noiommu | paste -sd, -)
without=$(echo "$TESTS" | tr ',' '\n' | grep -x noiommu | paste -sd, -)
log=$WORK/vm.log
[ -z "$with" ] || boot "$log" "$with" yes
[ -z "$without" ] || boot "$WORK/vm-noiommu.log" "$without" no
n=$(echo "$TESTS" | tr ',' '\n' | wc -l)
[ "$pass" = "$n" ] || { vm_fail_recap "$WORK"/vm*.log; fail "$pass of $n guest tests passed"; }
case ",$TESTS," in *,nvme,* | *,nvme+*) "$WORK/vm_nvme" --verify "$WORK/nvme.img" | sed 's/^/  host: /'
	[ "${PIPESTATUS[0]}" = 0 ] || fail "the disk image lacks what the guest wrote" ;; esac
case ",$TESTS," in *,bench,*)
	sed -n '/^BENCH-JSON-BEGIN/,/^BENCH-JSON-END/p' "$log" | sed '1d;$d' | tr -d '\r' >"$BUILD/bench-vfio.json"
	echo "benchmark JSON: $BUILD/bench-vfio.json" ;; esac
echo "PASS: $pass of $n guest tests"
