#!/bin/sh
# Every test program that uses hugepages, run while another process uses
# the machine's pool (tests/tools/hugepage_contender.c: it holds 3 pages
# and takes and gives back 2 more every millisecond, and every eighth time
# takes every free page instead). Each must pass or skip saying why: the
# pool is never a test's own.
#   test_hugepage_contention.sh BUILD_DIR
set -u
build=${1:?build dir}
contender="$build/tests/tools/hugepage_contender"
checks=0
for t in mem_hugepages os_exhaustion os_cgroup_limit mem_heap mem_xlate mem_stress phys iommu_domain guest; do
	prog="$build/tests/test_$t"
	[ -x "$prog" ] || { echo "FAIL: $prog not built" >&2; exit 1; }
	out=$("$contender" 3 2 --drain "$prog" 2>&1)
	rc=$?
	case $rc in
	0) echo "ok - $t" ;;
	77) echo "ok - $t # SKIP $(echo "$out" | sed -n 's/^# SKIP: //p' | head -n1)" ;;
	*)
		echo "$out" | tail -n 20 >&2
		echo "FAIL: $t exited $rc while another process used hugepages" >&2
		exit 1
		;;
	esac
	checks=$((checks + 1))
done
echo "# $checks programs passed or skipped"
