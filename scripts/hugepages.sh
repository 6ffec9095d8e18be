#!/bin/sh
# Hugepages for the test suite: added to the machine's pools, and afterwards
# only those taken back.
#   hugepages.sh reserve STATEFILE   add pages to each pool; remember how many were added
#   hugepages.sh release STATEFILE   take back what reserve added, as far as it is free
#
# The pools are the machine's: other processes use them, and others may
# resize them while the suite runs. So nothing is set to a remembered value:
# reserve adds N pages to whatever the pool holds then, and release takes
# back at most what reserve added and never more than is free at that
# moment (pages others hold stay theirs; what could not be taken back is
# said). Both hold a lock (flock on $IOVM_HUGEPAGES_LOCK) so that two runs
# of iovm's scripts or benchmarks do not interleave their read-modify-write
# of a pool. Only as root; otherwise it does nothing and the hugepage tests
# skip or use what is free.
set -u

# 256 x 2 MiB: enough for every hugepage test at once on a 2-core CI machine.
NR_2M=${IOVM_TEST_HUGEPAGES_2M:-256}
NR_1G=${IOVM_TEST_HUGEPAGES_1G:-1}
D=${IOVM_HUGEPAGES_SYSFS:-/sys/kernel/mm/hugepages}
if [ -d /run/lock ]; then lockdir=/run/lock; else lockdir=/tmp; fi
LOCK=${IOVM_HUGEPAGES_LOCK:-$lockdir/iovm-hugepages.lock}

[ "$(id -u)" = 0 ] || [ -n "${IOVM_HUGEPAGES_SYSFS:-}" ] || exit 0
state=${2:?state file}

locked() { # command...: run it holding the lock (flock(1) where installed)
	if command -v flock >/dev/null 2>&1; then
		flock "$LOCK" "$@"
	else
		"$@"
	fi
}

reserve() {
	: >"$state"
	for sz in 2048 1048576; do
		f=$D/hugepages-${sz}kB/nr_hugepages
		[ -w "$f" ] || continue
		if [ $sz = 2048 ]; then want=$NR_2M; else want=$NR_1G; fi
		[ "$want" -gt 0 ] || continue
		before=$(cat "$f")
		echo $((before + want)) >"$f" 2>/dev/null || true
		after=$(cat "$f")
		added=$((after - before))
		# Another writer may have shrunk the pool between the two reads:
		# what we added is then unknown, and taken as nothing.
		[ "$added" -ge 0 ] || added=0
		[ "$added" -le "$want" ] || added=$want
		echo "$sz $added" >>"$state"
		echo "hugepages: ${sz} kB pool $before -> $after (added $added of $want)"
	done
}

release() {
	[ -f "$state" ] || return 0
	while read -r sz added; do
		f=$D/hugepages-${sz}kB/nr_hugepages
		[ "$added" -gt 0 ] 2>/dev/null || continue
		now=$(cat "$f")
		free=$(cat "$D/hugepages-${sz}kB/free_hugepages")
		# Free pages, less those reserved by mappings not yet touched.
		resv=$(cat "$D/hugepages-${sz}kB/resv_hugepages" 2>/dev/null || echo 0)
		avail=$((free - resv))
		[ "$avail" -ge 0 ] || avail=0
		take=$added
		[ "$take" -le "$avail" ] || take=$avail
		[ "$take" -le "$now" ] || take=$now
		echo $((now - take)) >"$f" 2>/dev/null || true
		msg="hugepages: ${sz} kB pool $now -> $(cat "$f") (took back $take of the $added added)"
		[ "$take" -eq "$added" ] || msg="$msg; $((added - take)) in use by others, left in the pool"
		echo "$msg"
	done <"$state"
	rm -f "$state"
}

case "$1" in
reserve | release) locked "$0" "_$1" "$state" ;;
_reserve) reserve ;;
_release) release ;;
*) echo "hugepages.sh: reserve|release STATEFILE" >&2; exit 2 ;;
esac
