#!/bin/bash
# SPDX-License-Identifier: MIT
#
# make_kernel.sh - the VM test's own guest kernel, for what Debian's 6.1
# kernel lacks: iommufd (CONFIG_IOMMUFD, VFIO_DEVICE_CDEV) and VFIO's
# no-IOMMU mode (CONFIG_VFIO_NOIOMMU). A small, all built-in 6.12 from
# bookworm-backports' linux-source, fetched through a private apt state
# (the machine's apt configuration is not touched). The build's own needs
# (bc, flex, bison, libelf-dev: objtool is not optional on x86-64) are
# installed from the machine's usual sources when missing, as root.
# About 4 minutes on 2 cores. An option of the VM test, not of every
# `make check`: vm_test.sh uses the kernel when IOVM_VM_KERNEL names it.
#
# Usage: make_kernel.sh [CACHE_DIR]   (default /var/tmp/iovm-vm)
# Prints the kernel's path last.
set -euo pipefail
CACHE=${1:-${IOVM_VM_CACHE:-/var/tmp/iovm-vm}}
VERSION=6.12
OUT=$CACHE/bzImage-$VERSION-iovm
[ -f "$OUT" ] && { echo "$OUT"; exit 0; }
W=$CACHE/kbuild
mkdir -p "$W"/apt/{lists/partial,cache/archives/partial,sources.d}
cd "$W"
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
[ -n "$mirror" ] || mirror=$(sed -n 's/^deb \(http[^ ]*\) .*/\1/p' /etc/apt/sources.list 2>/dev/null | head -n1)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm-backports main" >apt/sources.list
APT=(-o Dir::Etc::SourceList="$W/apt/sources.list" -o Dir::Etc::SourceParts="$W/apt/sources.d"
	-o Dir::State::Lists="$W/apt/lists" -o Dir::Cache="$W/apt/cache")
if [ ! -d linux-source-$VERSION ]; then
	apt-get "${APT[@]}" update -q >/dev/null
	apt-get "${APT[@]}" download -q linux-source-$VERSION >/dev/null
	dpkg -x linux-source-${VERSION}_*.deb src
	tar -xf src/usr/src/linux-source-$VERSION.tar.xz
fi
need=()
for p in make gcc bc flex bison libelf-dev xz-utils; do
	dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || { echo "make_kernel.sh: needs ${need[*]} (run as root to install them)" >&2; exit 1; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
cd linux-source-$VERSION
make -s ARCH=x86_64 tinyconfig
# What the guest's init, iovm and VFIO need; everything built in (no modules to load).
./scripts/config -e 64BIT -e PRINTK -e PRINTK_TIME -e TTY -e SERIAL_8250 -e SERIAL_8250_CONSOLE \
	-e BLK_DEV_INITRD -e RD_GZIP -e BINFMT_ELF -e BINFMT_SCRIPT -e PROC_FS -e PROC_PAGE_MONITOR -e SYSFS \
	-e DEVTMPFS -e TMPFS -e SHMEM -e HUGETLBFS -e HUGETLB_PAGE -e MEMFD_CREATE -e TRANSPARENT_HUGEPAGE \
	-e USERFAULTFD -e FUTEX -e EPOLL -e EVENTFD -e SIGNALFD -e TIMERFD -e POSIX_TIMERS -e HIGH_RES_TIMERS \
	-e MULTIUSER -e SMP -e PCI -e PCI_MSI -e PCIEPORTBUS -e ACPI -e X86_LOCAL_APIC -e X86_IO_APIC \
	-e X86_X2APIC -e IOMMU_SUPPORT -e INTEL_IOMMU -e IRQ_REMAP -e IOMMUFD -e VFIO -e VFIO_GROUP \
	-e VFIO_CONTAINER -e VFIO_IOMMU_TYPE1 -e VFIO_NOIOMMU -e VFIO_DEVICE_CDEV -e VFIO_PCI -e VFIO_PCI_MMAP \
	-e VFIO_PCI_INTX -e IRQ_BYPASS_MANAGER -e UNIX -e NET -e FILE_LOCKING -e ADVISE_SYSCALLS -e MMU \
	-e PCI_MMCONFIG -e HYPERVISOR_GUEST -e PARAVIRT -e MAGIC_SYSRQ -e BUG -e DMADEVICES
make -s ARCH=x86_64 olddefconfig
for o in IOMMUFD VFIO_DEVICE_CDEV VFIO_NOIOMMU INTEL_IOMMU IRQ_REMAP VFIO_PCI HUGETLBFS USERFAULTFD; do
	grep -q "^CONFIG_$o=y" .config || { echo "make_kernel.sh: CONFIG_$o did not stick" >&2; exit 1; }
done
make -s -j"$(nproc)" ARCH=x86_64 bzImage
cp arch/x86/boot/bzImage "$OUT.new" && mv "$OUT.new" "$OUT"
echo "$OUT"
