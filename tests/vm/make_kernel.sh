#!/bin/bash
# SPDX-License-Identifier: MIT
#
# make_kernel.sh - the VM tests' own guest kernels, for what Debian's 6.1
# kernel lacks, all built in (no modules to load), from Debian's
# linux-source fetched through a private apt state (the machine's apt
# configuration is not touched). The build's own needs (bc, flex, bison,
# libelf-dev: objtool is not optional on x86-64) are installed from the
# machine's usual sources when missing, as root. Options of the VM tests,
# not of every `make check`:
#
#   make_kernel.sh        a small 6.12 from bookworm-backports with iommufd
#                         (CONFIG_IOMMUFD, VFIO_DEVICE_CDEV) and VFIO's
#                         no-IOMMU mode (CONFIG_VFIO_NOIOMMU), for
#                         vm_test.sh (IOVM_VM_KERNEL); about 4 minutes on 2
#                         cores
#   make_kernel.sh rdma   the same options and the RDMA stack: Soft-RoCE
#                         (RDMA_RXE), user verbs, on-demand paging, veth and
#                         network namespaces, from the newest linux-source
#                         of trixie-backports (rxe pages on demand from
#                         Linux 6.15: bookworm-backports stops at 6.12), with
#                         rxe-odp-copy.patch (7.3.4's ODP copies ignore the
#                         page offset), for vm_rdma.sh (IOVM_VM_RDMA_KERNEL);
#                         IOVM_VM_RDMA_KVER (7.3, say) picks the version;
#                         about 25 minutes on 2 busy cores
#
# Usage: make_kernel.sh [rdma] [CACHE_DIR]   (default /var/tmp/iovm-vm)
# Prints the kernel's path last.
set -euo pipefail
SRC=$(dirname "$(readlink -f "$0")")
VARIANT=iommufd
[ "${1:-}" = rdma ] && { VARIANT=rdma; shift; }
CACHE=${1:-${IOVM_VM_CACHE:-/var/tmp/iovm-vm}}
if [ $VARIANT = iommufd ]; then
	SUITE=bookworm-backports VERSION=6.12 APTDIR=apt OUT=$CACHE/bzImage-6.12-iovm
else
	SUITE=trixie-backports VERSION=${IOVM_VM_RDMA_KVER:-} APTDIR=apt-$SUITE
	if [ -z "$VERSION" ]; then
		# One built before, whichever version it was.
		old=$(ls "$CACHE"/bzImage-*-iovm-rdma 2>/dev/null | sort -V | tail -n1 || true)
		[ -n "$old" ] && { echo "$old"; exit 0; }
	fi
	OUT=$CACHE/bzImage-$VERSION-iovm-rdma
fi
[ -f "$OUT" ] && { echo "$OUT"; exit 0; }
W=$CACHE/kbuild
A=$W/$APTDIR
mkdir -p "$A"/{lists/partial,cache/archives/partial,sources.d}
cd "$W"
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
[ -n "$mirror" ] || mirror=$(sed -n 's/^deb \(http[^ ]*\) .*/\1/p' /etc/apt/sources.list 2>/dev/null | head -n1)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $SUITE main" >"$A/sources.list"
APT=(-o Dir::Etc::SourceList="$A/sources.list" -o Dir::Etc::SourceParts="$A/sources.d"
	-o Dir::State::Lists="$A/lists" -o Dir::Cache="$A/cache")
if [ -z "$VERSION" ]; then
	# The newest linux-source-X.Y of the suite; at least 6.15.
	apt-get "${APT[@]}" update -q >/dev/null
	VERSION=$(apt-cache "${APT[@]}" search --names-only '^linux-source-[0-9.]*$' |
		sed -n 's/^linux-source-\([0-9.]*\) .*/\1/p' | sort -V | tail -n1)
	[ -n "$VERSION" ] || { echo "make_kernel.sh: no linux-source in $SUITE" >&2; exit 1; }
	[ "$(printf '%s\n' 6.15 "$VERSION" | sort -V | head -n1)" = 6.15 ] ||
		{ echo "make_kernel.sh: $SUITE's newest linux-source is $VERSION, before rxe's ODP (6.15)" >&2; exit 1; }
	OUT=$CACHE/bzImage-$VERSION-iovm-rdma
	[ -f "$OUT" ] && { echo "$OUT"; exit 0; }
fi
if [ ! -d linux-source-$VERSION ]; then
	apt-get "${APT[@]}" update -q >/dev/null
	apt-get "${APT[@]}" download -q linux-source-$VERSION >/dev/null
	dpkg -x linux-source-${VERSION}_*.deb src
	tar -xf src/usr/src/linux-source-$VERSION.tar.xz
	rm -rf src linux-source-${VERSION}_*.deb
fi
need=()
for p in make gcc bc flex bison libelf-dev xz-utils patch; do
	dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || { echo "make_kernel.sh: needs ${need[*]} (run as root to install them)" >&2; exit 1; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
cd linux-source-$VERSION
if [ $VARIANT = rdma ]; then
	# rxe's ODP copies ignore the page offset (7.3.4): fixed here, once; a source without the bug is left alone.
	fix=$SRC/rxe-odp-copy.patch
	if patch -p1 -R -s -f --dry-run <"$fix" >/dev/null 2>&1; then
		:
	elif patch -p1 -N -s --dry-run <"$fix" >/dev/null 2>&1; then
		patch -p1 -N -s <"$fix"
		echo "make_kernel.sh: applied $(basename "$fix")" >&2
	else
		echo "make_kernel.sh: $(basename "$fix") does not apply to $VERSION: built as it is" >&2
	fi
fi
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
must="IOMMUFD VFIO_DEVICE_CDEV VFIO_NOIOMMU INTEL_IOMMU IRQ_REMAP VFIO_PCI HUGETLBFS USERFAULTFD"
if [ $VARIANT = rdma ]; then
	# Soft-RoCE between two veth ends, each in a network namespace, and what vm_rdma_setup.sh runs.
	./scripts/config -e INET -e IPV6 -e IP_MULTIPLE_TABLES -e NETDEVICES -e NET_CORE -e VETH -e NAMESPACES \
		-e NET_NS -e SYSCTL -e PROC_SYSCTL -e INFINIBAND -e INFINIBAND_USER_ACCESS -e INFINIBAND_USER_MEM \
		-e INFINIBAND_ON_DEMAND_PAGING -e RDMA_RXE -e CRYPTO -e CRYPTO_CRC32
	must+=" INFINIBAND INFINIBAND_USER_ACCESS INFINIBAND_ON_DEMAND_PAGING RDMA_RXE VETH NET_NS"
fi
make -s ARCH=x86_64 olddefconfig
for o in $must; do
	grep -q "^CONFIG_$o=y" .config || { echo "make_kernel.sh: CONFIG_$o did not stick" >&2; exit 1; }
done
make -s -j"$(nproc)" ARCH=x86_64 bzImage
cp arch/x86/boot/bzImage "$OUT.new" && mv "$OUT.new" "$OUT"
echo "$OUT"
