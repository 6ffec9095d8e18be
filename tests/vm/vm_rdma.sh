#!/bin/bash
# SPDX-License-Identifier: MIT
#
# vm_rdma.sh - the RDMA VM test: real RDMA through the Linux kernel's
# Soft-RoCE (rxe), between two endpoints in one QEMU guest (TCG, as
# vm_test.sh; no RDMA hardware, no host network: -nic none), each a
# process with its own rxe device: rxe0 on veth0, rxe1 on veth1, a veth
# pair between them, and each end in a network namespace of its own where
# the kernel's rxe can (vm_rdma_setup.sh, run by the guest's init, says
# which it did). The guest program, tests/vm/vm_rdma.c, checks RDMA WRITE,
# READ, SEND/RECV, a stale rkey and on-demand paging with plain libibverbs,
# before iovm's own cases (vm_rdma_mt.c: the registration cache under
# four threads).
#
# What it needs and does:
#  - QEMU and a static busybox (installed from Debian when missing, as
#    root; skipped, saying so, when that cannot be);
#  - the guest kernel: Debian's (linux-image-amd64, as vm_test.sh), keeping
#    rdma_rxe, ib_uverbs, ib_core, rdma_ucm, veth, crc32_generic and what
#    they depend on (udp_tunnel, ip6_udp_tunnel, rdma_cm, iw_cm, ib_cm),
#    loaded in that order by tests/vm/init;
#    or the kernel IOVM_VM_RDMA_KERNEL names, everything built in, such as
#    `tests/vm/make_kernel.sh rdma` builds (a Linux >= 6.15 with rxe's
#    on-demand paging, which the test then requires);
#  - rdma-core's user space and iproute2 (libibverbs1, ibverbs-providers
#    with the rxe provider, libibverbs-dev to compile against, iproute2 for
#    ip and rdma, and the libraries they load): Debian packages fetched with
#    apt-get download and unpacked with dpkg -x into the cache, not
#    installed; the guest gets the binaries, the provider, its .driver
#    file, their shared-library closure (ldd) and the dynamic loader;
#  - builds vm_rdma dynamically against them, with BUILD_DIR's
#    libiovm_internal.a and -ldl for iovm's cases; packs an initramfs;
#    boots with VM_TIMEOUT (300 s) and passes only if the guest printed
#    "RESULT: PASS". Downloads land in IOVM_VM_CACHE (/var/tmp/iovm-vm).
# Run as root for the installs; nothing else needs it (the cache must be
# writable).
#
# With "bench" after BUILD_DIR (make vm-bench-rdma): the guest runs
# BUILD_DIR's iovm-bench (`iovm bench rdma`, as meson built it, with the
# peers it found: UCX's and libfabric's runtime libraries, libucx0 and
# libfabric1 with their dependencies, are fetched and unpacked into the
# cache as rdma-core's are, in rdma-peers) in a guest of 3 GiB instead of
# vm_rdma, and its JSON lands in BUILD_DIR/bench-rdma.json, or
# bench-rdma-odp.json on the kernel IOVM_VM_RDMA_KERNEL names.
#
# Usage: vm_rdma.sh BUILD_DIR [bench]
# Exit: 0 pass, 1 fail, 77 skipped (says why).
set -u
BUILD=$(readlink -f "${1:?usage: vm_rdma.sh BUILD_DIR [bench]}")
MODE=${2:-test}
SRC=$(dirname "$(readlink -f "$0")")
ROOT=$(readlink -f "$SRC/../..")
CACHE=${IOVM_VM_CACHE:-/var/tmp/iovm-vm}
WORK=$BUILD/vm-rdma
TIMEOUT=${VM_TIMEOUT:-300}
[ "${2:-}" = bench ] && TIMEOUT=${VM_TIMEOUT:-900}
T0=$(date +%s)
step() { echo "[$(($(date +%s) - T0)) s] $*"; }

. "$SRC/vm_lib.sh"
vm_need_qemu
[ -f "$BUILD/libiovm_internal.a" ] || fail "no $BUILD/libiovm_internal.a: build first"
mkdir -p "$WORK" || fail "cannot make $WORK"
mkdir -p "$CACHE" 2>/dev/null && [ -w "$CACHE" ] ||
	skip "cannot write the cache $CACHE (set IOVM_VM_CACHE, or run as root)"

# The guest kernel.
kernel=${IOVM_VM_RDMA_KERNEL:-}
# no_timer_check: on a loaded host the TCG guest's IO-APIC timer check can
# miss its ticks and panic the boot ("IO-APIC + timer doesn't work").
append="console=ttyS0 panic=-1 quiet no_timer_check vmtests=rdma"
[ "$MODE" = bench ] && append=${append/vmtests=rdma/vmtests=bench-rdma}
# IOVM_VM_FI_LOG=warn|info|debug: libfabric's log level in the guest (FI_LOG_LEVEL), to read
# why its verbs provider has nothing to offer.
[ -n "${IOVM_VM_FI_LOG:-}" ] && append+=" vmfilog=$IOVM_VM_FI_LOG"
# IOVM_VM_BENCH_ROWS=cache: `iovm bench rdma` runs the cache's rows alone (IOVM_BENCH_RDMA in the guest).
[ -n "${IOVM_VM_BENCH_ROWS:-}" ] && append+=" vmbenchrows=$IOVM_VM_BENCH_ROWS"
# 1 GiB; the ODP kernel's run gets 3 GiB, for the case that registers a gigabyte.
MEM=${VM_RDMA_MEM:-1G}
[ -z "$kernel" ] && [ "$MODE" != bench ] || MEM=${VM_RDMA_MEM:-3G}
if [ -n "$kernel" ]; then
	[ -f "$kernel" ] || fail "IOVM_VM_RDMA_KERNEL=$kernel: no such kernel"
	append+=" vmrdmaodp" # built with rxe's on-demand paging: vm_rdma requires it
	kmods=
else
	pkg=$(vm_kernel_pkg)
	[ -n "$pkg" ] || skip "no linux-image package known to apt"
	# rdma_rxe needs the crc32 crypto algorithm, which it does not name as a dependency.
	# rdma_ucm (with rdma_cm, iw_cm, ib_cm) gives librdmacm its /dev/infiniband/rdma_cm:
	# libfabric's verbs provider finds its devices and addresses through it. A cache
	# of its own: the older "-rdma" one, without it, is left as it is.
	kdir=$CACHE/$pkg-rdmacm
	vm_unpack_kernel "$pkg" "$kdir" crc32_generic veth ib_core ib_uverbs rdma_rxe rdma_ucm
	kernel=$kdir/vmlinuz
	kmods=$kdir/modules
	grep -qx rdma_rxe "$kmods/load-order" || skip "$pkg has no rdma_rxe module"
fi
step "kernel: $kernel"

# rdma-core's and iproute2's user space, unpacked (Debian 12's names).
DEBS="libibverbs1 ibverbs-providers libibverbs-dev libnl-3-200 libnl-route-3-200 iproute2
	libmnl0 libbsd0 libmd0 libcap2 libbpf1 libelf1 zlib1g"
U=$CACHE/rdma-user
if [ ! -f "$U/.done" ]; then
	step "fetching $(echo $DEBS)"
	rm -rf "$U.new" && mkdir -p "$U.new/debs" || fail "cannot make $U.new"
	(cd "$U.new/debs" && apt-get download -q $DEBS >/dev/null 2>&1) ||
		{ rm -rf "$U.new"; skip "cannot download the packages $(echo $DEBS)"; }
	for d in "$U.new"/debs/*.deb; do dpkg -x "$d" "$U.new/root" || fail "cannot unpack $d"; done
	rm -rf "$U.new/debs" "$U" && touch "$U.new/.done" && mv "$U.new" "$U" || fail "cannot keep $U"
fi
UR=$U/root
# The benchmark's peers' runtime libraries, the same way, in a cache of their own.
PR=
if [ "$MODE" = bench ]; then
	[ -x "$BUILD/bench/iovm-bench" ] || fail "no $BUILD/bench/iovm-bench: build first"
	PDEBS="libucx0 libfabric1 librdmacm1 libnuma1 libpsm2-2 libpsm-infinipath1 libatomic1"
	P=$CACHE/rdma-peers
	if [ ! -f "$P/.done" ]; then
		step "fetching $PDEBS"
		rm -rf "$P.new" && mkdir -p "$P.new/debs" || fail "cannot make $P.new"
		(cd "$P.new/debs" && apt-get download -q $PDEBS >/dev/null 2>&1) ||
			{ rm -rf "$P.new"; skip "cannot download the packages $PDEBS"; }
		for d in "$P.new"/debs/*.deb; do dpkg -x "$d" "$P.new/root" || fail "cannot unpack $d"; done
		rm -rf "$P.new/debs" "$P" && touch "$P.new/.done" && mv "$P.new" "$P" || fail "cannot keep $P"
	fi
	PR=$P/root
fi
ULIB=$UR/usr/lib/x86_64-linux-gnu:$UR/lib/x86_64-linux-gnu
[ -z "$PR" ] || ULIB=$PR/usr/lib/x86_64-linux-gnu:$PR/lib/x86_64-linux-gnu:$ULIB
PROVIDER=$UR/usr/lib/x86_64-linux-gnu/libibverbs/librxe-rdmav34.so
for f in "$PROVIDER" "$UR/etc/libibverbs.d/rxe.driver" "$UR/usr/bin/rdma" "$UR/bin/ip" \
	"$UR/usr/include/infiniband/verbs.h"; do
	[ -e "$f" ] || skip "the unpacked packages lack ${f#$UR}"
done

# The guest program: dynamic (libibverbs dlopen()s its provider), with iovm's library for its cases.
cc=${CC:-gcc}
$cc -std=c17 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -I"$ROOT/include" -I"$ROOT/src" -I"$UR/usr/include" \
	-o "$WORK/vm_rdma" "$SRC/vm_rdma.c" "$SRC/vm_rdma_mt.c" "$BUILD/libiovm_internal.a" \
	-L"$UR/usr/lib/x86_64-linux-gnu" -Wl,-rpath-link,"$ULIB" -libverbs -ldl -lpthread ||
	fail "cannot build vm_rdma"

# The initramfs: busybox, init and the setup, the modules, the user space and its libraries.
R=$WORK/rootfs
rm -rf "$R" && mkdir -p "$R"/{bin,lib/modules,lib64,proc,sys,dev,tmp,run,etc/libibverbs.d} \
	"$R"/usr/{bin,lib/x86_64-linux-gnu/libibverbs} || fail "cannot make $R"
cp /bin/busybox "$R/bin/busybox" && ln -s busybox "$R/bin/sh"
# Name resolution of "localhost" (librdmacm's rdma_getaddrinfo, libfabric's verbs provider
# without an address): no DNS here, the files alone.
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n' >"$R/etc/hosts" &&
	printf 'hosts: files\n' >"$R/etc/nsswitch.conf" || fail "cannot fill $R/etc"
cp "$SRC/init" "$R/init" && cp "$SRC/vm_rdma_setup.sh" "$R/vm_setup" && cp "$WORK/vm_rdma" "$R/" &&
	cp "$UR/bin/ip" "$UR/usr/bin/rdma" "$R/usr/bin/" && cp "$PROVIDER" "$R/usr/lib/x86_64-linux-gnu/libibverbs/" &&
	cp "$UR/etc/libibverbs.d/rxe.driver" "$R/etc/libibverbs.d/" || fail "cannot fill $R"
: >"$R/lib/modules/load-order"
if [ -n "$kmods" ]; then
	cp "$kmods"/*.ko "$kmods/load-order" "$R/lib/modules/" || fail "cannot copy the modules"
fi
# The benchmark, and UCX's ib transport (UCX loads its modules from ucx/ beside libucs).
extra=
if [ "$MODE" = bench ]; then
	cp "$BUILD/bench/iovm-bench" "$R/vm_bench" || fail "cannot copy iovm-bench"
	mkdir -p "$R/usr/lib/x86_64-linux-gnu/ucx" &&
		cp -L "$PR"/usr/lib/x86_64-linux-gnu/ucx/libuct_ib.so.0 "$R/usr/lib/x86_64-linux-gnu/ucx/" ||
		fail "no UCX ib module in libucx0"
	extra="$R/vm_bench $R/usr/lib/x86_64-linux-gnu/ucx/libuct_ib.so.0"
fi
# libibverbs itself (iovm dlopen()s it), and every library the binaries and the provider load, from
# the unpacked packages first, then the host's.
cp -L "$UR/usr/lib/x86_64-linux-gnu/libibverbs.so.1" "$R/usr/lib/x86_64-linux-gnu/" || fail "no libibverbs.so.1"
libs=$(for b in $extra "$R/vm_rdma" "$R/usr/bin/ip" "$R/usr/bin/rdma" "$PROVIDER" "$R/usr/lib/x86_64-linux-gnu/libibverbs.so.1"; do
	LD_LIBRARY_PATH=$ULIB ldd "$b" || echo "$b: not a dynamic executable?"
done)
missing=$(echo "$libs" | sed -n 's/^\s*\(\S*\) => not found.*/\1/p' | sort -u)
[ -z "$missing" ] || skip "no $(echo $missing) for the guest's binaries (neither unpacked nor on the host)"
for l in $(echo "$libs" | sed -n 's/.*=> \(\/\S*\) .*/\1/p' | sort -u); do
	cp -L "$l" "$R/usr/lib/x86_64-linux-gnu/" || fail "cannot copy $l"
done
cp -L /lib64/ld-linux-x86-64.so.2 "$R/lib64/" || fail "no dynamic loader"
vm_pack "$R" "$WORK/initramfs.gz"
step "initramfs: $(du -k "$WORK/initramfs.gz" | cut -f1) KiB"

# Boot; the guest powers off when its test is done.
log=$WORK/vm.log
step "booting $(basename "$kernel") under TCG (timeout ${TIMEOUT} s)"
timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg -M q35 -cpu max -smp 2 -m "$MEM" -nographic -no-reboot -nic none \
	-kernel "$kernel" -initrd "$WORK/initramfs.gz" -append "$append" </dev/null >"$log" 2>&1
rc=$?
grep -vE '^\s*$' "$log" | sed 's/^/  | /'
if [ $rc -ne 0 ] && ! grep -q "VM: running" "$log"; then
	grep -qiE "could not|failed to|no such" "$log" && skip "QEMU cannot run here (rc $rc)"
	fail "the guest did not start its test (qemu rc $rc)"
fi
[ $rc -eq 0 ] || fail "qemu rc $rc$([ $rc = 124 ] && echo ": timed out after $TIMEOUT s")"
step "guest done"
if [ "$MODE" = bench ]; then
	out=$BUILD/bench-rdma$(grep -q vmrdmaodp <<<"$append" && echo -odp).json
	sed -n '/^BENCH-JSON-BEGIN/,/^BENCH-JSON-END/p' "$log" | sed '1d;$d' | tr -d '\r' >"$out"
	grep -q 'RESULT: PASS' "$log" || fail "iovm bench rdma did not finish in the guest"
	echo "PASS: iovm bench rdma; JSON: $out"
	exit 0
fi
grep -q 'RESULT: PASS' "$log" || { vm_fail_recap "$log"; fail "the RDMA guest test did not pass"; }
echo "PASS: RDMA between two rxe endpoints: $(sed -n 's/^VM: rdma: \(rxe0 .*\)/\1/p' "$log" | head -1 | tr -d '\r')"
