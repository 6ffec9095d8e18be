# SPDX-License-Identifier: MIT
#
# vm_rdma_setup.sh - sourced by the guest's init (as /vm_setup) in the RDMA
# VM test, after the modules are loaded and before the tests run: two
# Soft-RoCE endpoints joined by a veth pair, rxe0 on veth0 (10.99.0.1) and
# rxe1 on veth1 (10.99.0.2). Exports IOVM_VM_RDMA for vm_rdma: the two
# devices, and the two network namespaces when there are any.
#
# Each endpoint gets a network namespace of its own (A holds veth0, B
# veth1) where the kernel's rxe opens its UDP port (4791) in the netdev's
# namespace (rxe_ns.c: Linux 7.3 has it); the check is that port, in B.
# Older rxe, such as Debian 12's 6.1, has that port in the initial
# namespace only, and sends by routes of that namespace: there both ends
# stay in it, and policy routing sends the traffic between the two local
# addresses over the veth pair rather than through the loopback device
# (rxe takes a packet for the device of the netdev it came in on).
# Needs iproute2's ip and rdma (busybox's ip has no netns), by their paths:
# Debian's busybox shell prefers its own applets to $PATH.

IP=/usr/bin/ip
RDMA=/usr/bin/rdma

# rdma_up CMD...: runs it; says so if it failed.
rdma_up() {
	"$@" || { echo "VM: rdma: failed: $*"; return 1; }
}

rdma_setup_netns() {
	mkdir -p /var/run/netns
	rdma_up $IP netns add A && rdma_up $IP netns add B &&
		rdma_up $IP link add veth0 netns A type veth peer name veth1 netns B &&
		rdma_up $IP -n A addr add 10.99.0.1/24 dev veth0 && rdma_up $IP -n B addr add 10.99.0.2/24 dev veth1 &&
		rdma_up $IP -n A link set lo up && rdma_up $IP -n B link set lo up &&
		rdma_up $IP -n A link set veth0 up && rdma_up $IP -n B link set veth1 up &&
		rdma_up $IP netns exec A $RDMA link add rxe0 type rxe netdev veth0 &&
		rdma_up $IP netns exec B $RDMA link add rxe1 type rxe netdev veth1 || return 1
	if ! $IP netns exec B sh -c "grep -q ':12B7 ' /proc/net/udp"; then
		echo "VM: rdma: this rxe has no UDP port in namespace B: it predates network namespaces"
		$RDMA link delete rxe0 2>/dev/null
		$RDMA link delete rxe1 2>/dev/null
		$IP netns del A
		$IP netns del B
		return 1
	fi
	export IOVM_VM_RDMA="rxe0 rxe1 /var/run/netns/A /var/run/netns/B"
}

rdma_setup_initns() {
	rdma_up $IP link add veth0 type veth peer name veth1 &&
		rdma_up $IP addr add 10.99.0.1/24 dev veth0 && rdma_up $IP addr add 10.99.0.2/24 dev veth1 &&
		rdma_up $IP link set lo up && rdma_up $IP link set veth0 up && rdma_up $IP link set veth1 up || return 1
	for c in all veth0 veth1; do
		echo 1 >/proc/sys/net/ipv4/conf/$c/accept_local
		echo 0 >/proc/sys/net/ipv4/conf/$c/rp_filter
	done
	# From one local address to the other: the veth pair, not the local table's loopback.
	rdma_up $IP rule add pref 100 table local && rdma_up $IP rule del pref 0 &&
		rdma_up $IP route add 10.99.0.2 dev veth0 src 10.99.0.1 table 10 &&
		rdma_up $IP rule add pref 10 iif lo from 10.99.0.1 to 10.99.0.2 table 10 &&
		rdma_up $IP route add 10.99.0.1 dev veth1 src 10.99.0.2 table 11 &&
		rdma_up $IP rule add pref 11 iif lo from 10.99.0.2 to 10.99.0.1 table 11 &&
		rdma_up $RDMA link add rxe0 type rxe netdev veth0 && rdma_up $RDMA link add rxe1 type rxe netdev veth1 ||
		return 1
	export IOVM_VM_RDMA="rxe0 rxe1"
}

mkdir -p /run /var && ln -sfn /run /var/run
# vm_rdma.sh's IOVM_VM_FI_LOG: libfabric's log level.
fi_log=$(sed -n 's/.*vmfilog=\([a-z]*\).*/\1/p' /proc/cmdline)
[ -n "$fi_log" ] && export FI_LOG_LEVEL=$fi_log
# vm_rdma.sh's IOVM_VM_BENCH_ROWS: which of `iovm bench rdma`'s rows run.
bench_rows=$(sed -n 's/.*vmbenchrows=\([a-z]*\).*/\1/p' /proc/cmdline)
[ -n "$bench_rows" ] && export IOVM_BENCH_RDMA=$bench_rows
grep -q vmrdmaodp /proc/cmdline && export IOVM_VM_RDMA_ODP=1
if rdma_setup_netns; then
	echo "VM: rdma: rxe0 in namespace A, rxe1 in namespace B"
elif rdma_setup_initns; then
	echo "VM: rdma: rxe0 and rxe1 in the initial namespace, policy-routed over the veth pair"
else
	echo "VM: rdma: no endpoints"
fi
$RDMA link show
