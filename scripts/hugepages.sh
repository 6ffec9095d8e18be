#!/bin/sh
# Reserve hugepages for the test suite, and give them back afterwards.
#   hugepages.sh reserve STATEFILE   remember the pools' sizes, then grow them
#   hugepages.sh release STATEFILE   put the pools back as they were
# Only as root; otherwise it does nothing and the hugepage tests skip.
set -u

# 256 x 2 MiB: enough for every hugepage test at once on a 2-core CI machine.
NR_2M=${IOVM_TEST_HUGEPAGES_2M:-256}
NR_1G=${IOVM_TEST_HUGEPAGES_1G:-1}
D=/sys/kernel/mm/hugepages

[ "$(id -u)" = 0 ] || exit 0
state=${2:?state file}

case "$1" in
reserve)
	: >"$state"
	for sz in 2048 1048576; do
		f=$D/hugepages-${sz}kB/nr_hugepages
		[ -w "$f" ] || continue
		cur=$(cat "$f")
		echo "$sz $cur" >>"$state"
		if [ $sz = 2048 ]; then add=$NR_2M; else add=$NR_1G; fi
		echo $((cur + add)) >"$f" 2>/dev/null || true
		echo "hugepages: ${sz} kB pool $cur -> $(cat "$f")"
	done
	;;
release)
	[ -f "$state" ] || exit 0
	while read -r sz cur; do
		echo "$cur" >"$D/hugepages-${sz}kB/nr_hugepages" 2>/dev/null || true
		echo "hugepages: ${sz} kB pool back to $(cat "$D/hugepages-${sz}kB/nr_hugepages")"
	done <"$state"
	rm -f "$state"
	;;
*) echo "hugepages.sh: reserve|release STATEFILE" >&2; exit 2 ;;
esac
