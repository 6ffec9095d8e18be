#!/bin/sh
# The iovm command end to end: info (text and JSON), demo, stat, bench, and
# its refusals. Usage: test_cli.sh BUILD_DIR
set -eu
build=${1:?build dir}
iovm="$build/tools/iovm"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
checks=0

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
ok() {
	checks=$((checks + 1))
}

# A JSON document that parses (python3 where installed, a shape check otherwise).
json_ok() { # file, what
	if command -v python3 >/dev/null; then
		python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$1" || fail "$2: not JSON"
	else
		head -c1 "$1" | grep -q '[[{]' || fail "$2: not JSON"
	fi
	ok
}

"$iovm" info >"$tmp/info" || fail "iovm info"
for word in "page sizes" "hugepage pools" "host PAs" "userfaultfd" "IOMMU groups" "VFIO" "CPUs"; do
	grep -q "$word" "$tmp/info" || fail "iovm info lacks '$word'"
	ok
done
"$iovm" info --json >"$tmp/info.json" || fail "iovm info --json"
json_ok "$tmp/info.json" "iovm info --json"
for key in '"hugepage_pools"' '"userfaultfd"' '"iommu_groups"' '"vfio"' '"cpus"' '"host_pa"'; do
	grep -q "$key" "$tmp/info.json" || fail "iovm info --json lacks $key"
	ok
done

"$iovm" demo >"$tmp/demo" || fail "iovm demo"
grep -q "^done\.$" "$tmp/demo" || fail "iovm demo did not finish"
grep -q "found the same zone (same memory)" "$tmp/demo" || fail "demo: zone not found again"
ok

# A bad option is refused, and the message names it.
if IOVM_OPTS="pagesize=2M" "$iovm" demo >"$tmp/bad" 2>&1; then fail "bad IOVM_OPTS accepted"; fi
grep -q "'pagesize'" "$tmp/bad" || fail "bad option not named"
ok

"$iovm" stat 1M 64K --json >"$tmp/stat.json" || fail "iovm stat"
json_ok "$tmp/stat.json" "iovm stat --json"
# Sizes as the options parse them: every suffix they know, in either case,
# allocated in full (sizes past the slabs, 32 KiB, are counted exactly);
# anything else refused before a byte is allocated.
in_use() { # SIZE...: the heap's in_use after `iovm stat SIZE...`
	IOVM_OPTS=page_size=4K,mem_limit=64M "$iovm" stat --json "$@" >"$tmp/sz.json" ||
		fail "iovm stat $*: $(cat "$tmp/sz.json")"
	sed -n 's/^ *"in_use": \([0-9]*\),*$/\1/p' "$tmp/sz.json" | head -n 1
}
for pair in 40960:40K 40960:40k 40960:40KiB 40960:0xa000 3145728:3M 3145728:3mb \
	2097152:2MiB 4194304:4194304; do
	want=${pair%%:*} size=${pair#*:}
	got=$(in_use "$size")
	[ "$got" = "$want" ] || fail "iovm stat $size: $got bytes in use, not $want"
	ok
done
for size in 1T 1t 1G 1TiB; do
	if IOVM_OPTS=page_size=4K,mem_limit=64M "$iovm" stat "$size" >"$tmp/big" 2>&1; then
		fail "iovm stat $size under mem_limit=64M succeeded: $(cat "$tmp/big")"
	fi
	grep -q "cannot allocate '$size'" "$tmp/big" || fail "iovm stat $size: $(cat "$tmp/big")"
	ok
done
for size in 1X 1P 1.5G 1KB2 "1 M" -1 0 M ""; do
	if "$iovm" stat "$size" >"$tmp/bad" 2>&1; then fail "iovm stat '$size' accepted"; fi
	grep -q "is not a size" "$tmp/bad" || fail "iovm stat '$size': $(cat "$tmp/bad")"
	ok
done

# With a pretend sysfs (no root needed, the machine's pool untouched): asked
# for 8 free pages where 2 are, it adds 6 to the 600 the pool holds, and at
# exit takes back only what is free (the pretend pool never frees them), so
# the pages others hold stay in the pool: 604, not its remembered 600.
mkdir -p "$tmp/sys/hugepages-2048kB"
echo 600 >"$tmp/sys/hugepages-2048kB/nr_hugepages"
echo 2 >"$tmp/sys/hugepages-2048kB/free_hugepages"
echo 0 >"$tmp/sys/hugepages-2048kB/resv_hugepages"
IOVM_HUGEPAGES_SYSFS="$tmp/sys" IOVM_HUGEPAGES_LOCK="$tmp/hp.lock" \
	"$iovm" bench mem --quick --no-dpdk --hugepages 8 --json-out "$tmp/bench.json" >"$tmp/bench" 2>&1 ||
	fail "iovm bench mem: $(cat "$tmp/bench")"
grep -q "hugepages: 6 added to the 2 MiB pool (600 -> 606)" "$tmp/bench" ||
	fail "bench --hugepages 8 with 2 free did not add 6: $(grep hugepages "$tmp/bench")"
ok
[ "$(cat "$tmp/sys/hugepages-2048kB/nr_hugepages")" = 604 ] ||
	fail "bench took back pages in use: pool $(cat "$tmp/sys/hugepages-2048kB/nr_hugepages"), expected 604"
ok
json_ok "$tmp/bench.json" "iovm bench mem --json-out"
for key in '"name"' '"unit"' '"iovm"' '"peer"' '"peer_value"' '"ratio"'; do
	grep -q "$key" "$tmp/bench.json" || fail "bench JSON lacks $key"
	ok
done
grep -q "alloc+free 64 B" "$tmp/bench" || fail "bench table lacks its rows"
ok

# The IOMMU benchmark: every row measured (none "failed"), JSON that parses.
"$iovm" bench iommu --quick --no-dpdk --json-out "$tmp/iommu.json" >"$tmp/iommu" 2>&1 ||
	fail "iovm bench iommu: $(cat "$tmp/iommu")"
json_ok "$tmp/iommu.json" "iovm bench iommu --json-out"
for row in "IOVA alloc+free, 1 thread" "map 256 x 4 KiB, one batch" "copy 64 KiB through the IOMMU" \
	"unmap per I/O: deferred"; do
	grep -q "$row" "$tmp/iommu" || fail "bench iommu lacks the row '$row'"
	ok
done
if grep -q " failed " "$tmp/iommu"; then fail "bench iommu: a row failed: $(cat "$tmp/iommu")"; fi
ok
# The registration benchmark likewise.
"$iovm" bench reg --quick --no-dpdk --json-out "$tmp/reg.json" >"$tmp/reg" 2>&1 ||
	fail "iovm bench reg: $(cat "$tmp/reg")"
json_ok "$tmp/reg.json" "iovm bench reg --json-out"
for row in "rcache hit: get+put" "on-demand minor fault" "pinned registration of"; do
	grep -q "$row" "$tmp/reg" || fail "bench reg lacks the row '$row'"
	ok
done
if grep -q " failed " "$tmp/reg"; then fail "bench reg: a row failed: $(cat "$tmp/reg")"; fi
ok
# The placement benchmark: every row measured, and with a reserved pool
# every guest creation and reboot succeeds (a behaviour, not a timing).
"$iovm" bench placement --quick --json-out "$tmp/placement.json" >"$tmp/placement" 2>&1 ||
	fail "iovm bench placement: $(cat "$tmp/placement")"
json_ok "$tmp/placement.json" "iovm bench placement --json-out"
for row in "guest creations that succeed, reserved pool" "guest reboots that succeed, halving" "banks per guest"; do
	grep -q "$row" "$tmp/placement" || fail "bench placement lacks the row '$row'"
	ok
done
pool=$(sed -n 's/^note: reserved pool: \([0-9]*\) of \([0-9]*\) creations, \([0-9]*\) of \([0-9]*\) reboots.*/\1 \2 \3 \4/p' "$tmp/placement")
set -- $pool
[ $# -eq 4 ] && [ "$2" -gt 0 ] && [ "$1" -eq "$2" ] && [ "$3" -eq "$4" ] ||
	fail "bench placement: with a pool, some creation or reboot failed: $pool"
ok
# The multi-process benchmark: a shared heap, DPDK's secondaries beside it
# where DPDK is built in and can run (else a note says why). Every iovm row
# measured, the device process's row says it is not built yet, and the
# JSON holds every row with its fields. The pool is left alone.
"$iovm" bench mp --quick --hugepages 0 --json-out "$tmp/mp.json" >"$tmp/mp" 2>&1 ||
	fail "iovm bench mp: $(cat "$tmp/mp")"
json_ok "$tmp/mp.json" "iovm bench mp --json-out"
for row in "attach: spawn to first alloc+PA" "alloc+free 64 B, second process" \
	"alloc+free 4 KiB, second process" "zone lookup by name, second process" \
	"recovery: kill -9 of a holder of 1000 blocks"; do
	grep -q "^$row .*[0-9]" "$tmp/mp" || fail "bench mp lacks a figure for '$row': $(cat "$tmp/mp")"
	grep -q "\"name\": \"$row\", \"unit\": \"[^\"]*\", \"iovm\": [0-9]" "$tmp/mp.json" ||
		fail "bench mp JSON lacks iovm's figure for '$row'"
	ok
done
for key in '"name"' '"unit"' '"iovm"' '"peer"' '"peer_value"' '"ratio"' '"target"' '"met"'; do
	grep -q "$key" "$tmp/mp.json" || fail "bench mp JSON lacks $key"
	ok
done
grep -q "^device process: descriptors/s.*not built yet" "$tmp/mp" || fail "bench mp: the device process row"
grep -q '"status": "not built yet"' "$tmp/mp.json" || fail "bench mp JSON: the device process row"
ok
if grep -q " failed " "$tmp/mp"; then fail "bench mp: a row failed: $(cat "$tmp/mp")"; fi
ok
# DPDK's rows: measured, or a note that says why not.
if ! grep -q "^attach: .*DPDK secondary rte_eal_init *[0-9]" "$tmp/mp"; then
	grep -q "^note: DPDK: .*iovm alone" "$tmp/mp" || fail "bench mp: no DPDK figure and no reason: $(cat "$tmp/mp")"
fi
ok
if "$iovm" bench nosuchbench >/dev/null 2>&1; then fail "unknown benchmark accepted"; fi
ok

if "$iovm" nosuchcommand >/dev/null 2>&1; then fail "unknown command accepted"; fi
ok
echo "# $checks checks passed"
