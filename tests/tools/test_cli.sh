#!/bin/sh
# The iovm command end to end: info (text and JSON), demo, stat, bench,
# device-server, and its refusals. Usage: test_cli.sh BUILD_DIR
set -eu
build=${1:?build dir}
iovm="$build/tools/iovm"
tmp=$(mktemp -d)
servers=""
trap 'for p in $servers; do kill -KILL "$p" 2>/dev/null || :; done; rm -rf "$tmp"' EXIT
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

# --version: the command's version and the library's, on stdout, exit 0; the same as `iovm version`.
"$iovm" --version >"$tmp/version" || fail "iovm --version"
grep -Eqx 'iovm [0-9]+\.[0-9]+\.[0-9]+ \(library [0-9]+\.[0-9]+\.[0-9]+\)' "$tmp/version" ||
	fail "iovm --version: $(cat "$tmp/version")"
[ "$("$iovm" version)" = "$(cat "$tmp/version")" ] || fail "iovm version differs from --version"
ok

# COMMAND --help: the usage on stdout, nothing on stderr, exit 0; an unknown command: exit 2.
for c in info demo stat bench device-server; do
	"$iovm" "$c" --help >"$tmp/help" 2>"$tmp/help.err" || fail "iovm $c --help exited $?"
	head -n1 "$tmp/help" | grep -q "^usage: iovm $c" || fail "iovm $c --help: $(head -n1 "$tmp/help")"
	[ ! -s "$tmp/help.err" ] || fail "iovm $c --help wrote to stderr: $(cat "$tmp/help.err")"
	ok
done
"$iovm" bench mem --help | grep -q "^usage: iovm bench" || fail "iovm bench mem --help"
rc=0
"$iovm" no-such-command >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "an unknown command exited $rc, not 2"
ok

# Stdout that cannot be written: every command, --help and --version too,
# exits 1 and says why on stderr, never 0 with its output lost. A full
# device (a private copy of /dev/full, made with mknod: root only) and a
# pipe whose reader is gone, SIGPIPE ignored (closed_stdout).
closed="$build/tests/tools/closed_stdout"
full=""
if mknod -m 666 "$tmp/stdout-full" c 1 7 2>/dev/null; then
	full="$tmp/stdout-full"
else
	echo "# skip: stdout on a full device: mknod needs root"
fi
for c in "--version" "--help" "info" "info --json" "info --help" "stat" "stat --json 4K" "stat --help" \
	"demo" "demo --help" "bench --help" "bench reg --help" "device-server --help" \
	"bench reg --quick --no-dpdk" "bench reg --quick --no-dpdk --json"; do
	if [ -n "$full" ]; then
		rc=0
		# shellcheck disable=SC2086 # the words are the arguments
		"$iovm" $c >"$full" 2>"$tmp/out.err" || rc=$?
		[ "$rc" = 1 ] || fail "iovm $c >full device: exit $rc, not 1"
		grep -q "cannot write .*: No space left on device" "$tmp/out.err" ||
			fail "iovm $c >full device: $(tail -n1 "$tmp/out.err")"
		[ -c "$full" ] || fail "iovm $c >full device: the device is gone"
		ok
	fi
	rc=0
	# shellcheck disable=SC2086
	"$closed" "$iovm" $c 2>"$tmp/out.err" || rc=$?
	[ "$rc" = 1 ] || fail "iovm $c >closed pipe: exit $rc, not 1"
	grep -q "cannot write .*: Broken pipe" "$tmp/out.err" || fail "iovm $c >closed pipe: $(tail -n1 "$tmp/out.err")"
	ok
done
# bench reg's event-coverage table (bench/bench_reg_cover.c): iovm, each monitor in a process of its own,
# sees every change it was tried on, but what it says it cannot watch (iovm/reg.h: shared memory).
"$iovm" bench reg --quick --no-dpdk >"$tmp/reg.out" 2>/dev/null || fail "iovm bench reg --quick --no-dpdk"
grep -q "^note: event coverage" "$tmp/reg.out" || fail "bench reg: no event-coverage table"
# The columns: "note:   " and the event in 38, then iovm's in 10.
iovm_col() { grep "^note:   $1 " "$tmp/reg.out" | cut -c48-57 | tr -d ' '; }
case "$(iovm_col 'munmap()')" in
incaller | bythread)
	for ev in 'munmap()' 'syscall(SYS_munmap)' 'mremap() moving it' 'mremap() shrinking it' \
		'mmap(MAP_FIXED) over it' 'madvise(MADV_DONTNEED)'; do
		# (Not free(): under a sanitizer its allocator, not glibc's, unmaps; reg_hooks tests glibc's.)
		case "$(iovm_col "$ev")" in
		incaller | bythread) ok ;;
		*) fail "bench reg: iovm's monitor: $ev: $(iovm_col "$ev")" ;;
		esac
	done
	;;
*) echo "# skip: bench reg's coverage: iovm's munmap() row says '$(iovm_col 'munmap()')' (no memory monitor here?)" ;;
esac

# ... and a bad command line keeps its 2 (its usage went to stderr).
rc=0
"$closed" "$iovm" info --bogus 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "iovm info --bogus >closed pipe: exit $rc, not 2"
ok

"$iovm" info >"$tmp/info" || fail "iovm info"
for word in "page sizes" "hugepage pools" "host PAs" "userfaultfd" "IOMMU groups" "VFIO" "CPUs"; do
	grep -q "$word" "$tmp/info" || fail "iovm info lacks '$word'"
	ok
done
"$iovm" info --json >"$tmp/info.json" || fail "iovm info --json"
json_ok "$tmp/info.json" "iovm info --json"
# A NUMA node set: the line of iovm's configuration says it, and the page size beside it still.
if IOVM_OPTS=numa_node=0 "$iovm" info >"$tmp/info-node" 2>/dev/null && ! grep -q "cannot open" "$tmp/info-node"; then
	grep -q "^iovm  *page size [0-9]* [KMG]iB.*; NUMA node 0;" "$tmp/info-node" ||
		fail "iovm info, numa_node=0: $(grep '^iovm ' "$tmp/info-node")"
	ok
fi
# IOVM_OPTS that iovm_open() refuses: the report says why, in the text and the JSON.
IOVM_OPTS=bogus=1 "$iovm" info >"$tmp/info-bad" || fail "iovm info, IOVM_OPTS=bogus=1"
grep -q "cannot open with IOVM_OPTS: Invalid argument: iovm_open: unknown option 'bogus'" "$tmp/info-bad" ||
	fail "iovm info, bad IOVM_OPTS: the reason is lost: $(grep '^iovm ' "$tmp/info-bad")"
ok
IOVM_OPTS=bogus=1 "$iovm" info --json | grep -q "\"detail\": \"iovm_open: unknown option 'bogus'" ||
	fail "iovm info --json, bad IOVM_OPTS: the reason is lost"
ok
# host_pa=on: the configuration line says the mode is strict, and so does the
# JSON; host_pa=off: neither. Opening with host_pa=on needs readable host PAs
# (root) and free hugepages: where it cannot open, the line says so instead.
IOVM_OPTS=host_pa=off "$iovm" info --json >"$tmp/info-off.json" || fail "iovm info, host_pa=off"
if ! grep -q '"error"' "$tmp/info-off.json"; then
	grep -q '"host_pa_only": false' "$tmp/info-off.json" || fail "iovm info --json, host_pa=off: no host_pa_only false"
	ok
fi
if IOVM_OPTS=host_pa=on "$iovm" info >"$tmp/info-hpa" 2>/dev/null && ! grep -q "cannot open" "$tmp/info-hpa"; then
	grep -q "host-PA mode on, strict" "$tmp/info-hpa" || fail "iovm info, host_pa=on: $(grep '^iovm ' "$tmp/info-hpa")"
	ok
	IOVM_OPTS=host_pa=on "$iovm" info --json | grep -q '"host_pa_only": true' ||
		fail "iovm info --json, host_pa=on: no host_pa_only true"
	ok
fi
for key in '"hugepage_pools"' '"userfaultfd"' '"iommu_groups"' '"vfio"' '"cpus"' '"host_pa"' '"host_pa_only"'; do
	grep -q "$key" "$tmp/info.json" || fail "iovm info --json lacks $key"
	ok
done

"$iovm" demo >"$tmp/demo" || fail "iovm demo"
grep -q "^done\.$" "$tmp/demo" || fail "iovm demo did not finish"
grep -q "found the same zone (same memory)" "$tmp/demo" || fail "demo: zone not found again"
ok

# A bad option is refused (exit 1), and the message on stderr names it.
rc=0
IOVM_OPTS="pagesize=2M" "$iovm" demo >"$tmp/bad" 2>"$tmp/bad.err" || rc=$?
[ "$rc" = 1 ] || fail "bad IOVM_OPTS: demo exited $rc, not 1"
grep -q "^iovm demo: .*'pagesize'" "$tmp/bad.err" || fail "bad option not named on stderr: $(cat "$tmp/bad.err")"
ok

# Bad command lines: exit 2, a message and the usage on stderr, nothing on stdout.
for args in "--version extra" "version extra" "info extra" "info --bogus" "demo a b" "demo --bogus" \
	"stat --bogus" "stat 1X" "stat --json -x" "bench" "bench nosuch" "bench reg --bogus" "bench reg --plot" \
	"device-server" "nosuchcommand"; do
	rc=0
	# shellcheck disable=SC2086 # the words are the arguments
	"$iovm" $args >"$tmp/bad.out" 2>"$tmp/bad.err" || rc=$?
	[ "$rc" = 2 ] || fail "iovm $args: exit $rc, not 2"
	[ -s "$tmp/bad.err" ] || fail "iovm $args: nothing said on stderr"
	[ ! -s "$tmp/bad.out" ] || fail "iovm $args: wrote on stdout: $(head -n2 "$tmp/bad.out")"
	ok
done
for args in "stat --bogus" "info extra" "demo a b" "bench"; do
	rc=0
	# shellcheck disable=SC2086
	"$iovm" $args 2>&1 >/dev/null | grep -q "^usage: iovm ${args%% *} " || fail "iovm $args: no usage on stderr"
	ok
done
# A benchmark that cannot run here (no device for bench vfio): exit 1, why on stderr, nothing on stdout.
if [ -z "${IOVM_BENCH_DEVICE:-}" ] && [ ! -e /dev/vfio/vfio ]; then
	rc=0
	"$iovm" bench vfio --quick >"$tmp/vfio.out" 2>"$tmp/vfio.err" || rc=$?
	[ "$rc" = 1 ] || fail "bench vfio without a device: exit $rc, not 1"
	grep -q "no device to assign" "$tmp/vfio.err" || fail "bench vfio without a device: $(cat "$tmp/vfio.err")"
	[ ! -s "$tmp/vfio.out" ] || fail "bench vfio without a device wrote on stdout"
	ok
fi

"$iovm" stat 1M 64K --json >"$tmp/stat.json" || fail "iovm stat"
json_ok "$tmp/stat.json" "iovm stat --json"
# --json: the JSON alone on stdout, whatever the library logs (to stderr).
IOVM_OPTS=log_level=debug "$iovm" stat --json 4K >"$tmp/stat-log.json" 2>"$tmp/stat-log.err" || fail "iovm stat, log_level=debug"
json_ok "$tmp/stat-log.json" "iovm stat --json with log_level=debug"
IOVM_OPTS=log_level=debug "$iovm" info --json >"$tmp/info-log.json" 2>/dev/null || fail "iovm info, log_level=debug"
json_ok "$tmp/info-log.json" "iovm info --json with log_level=debug"
# The text says each arena's largest free run, the JSON's figure (not its page size):
# 1 MiB and 64 KiB of a 2 MiB bank in 4 KiB pages leave a run that is neither.
size_text() { # BYTES: as fmt_size() writes a multiple of 1 KiB
	n=$1 u=B
	for next in KiB MiB GiB TiB; do
		[ "$n" -ge 1024 ] && [ $((n % 1024)) -eq 0 ] || break
		n=$((n / 1024)) u=$next
	done
	echo "$n $u"
}
IOVM_OPTS=page_size=4K,mem_limit=64M "$iovm" stat 1M 64K >"$tmp/stat.txt" || fail "iovm stat 1M 64K"
IOVM_OPTS=page_size=4K,mem_limit=64M "$iovm" stat --json 1M 64K >"$tmp/stat2.json" || fail "iovm stat --json 1M 64K"
runs=$(sed -n 's/^ *"largest_free_run": \([0-9]*\),*$/\1/p' "$tmp/stat2.json")
[ -n "$runs" ] || fail "iovm stat --json: no largest_free_run"
for run in $runs; do
	grep -q "largest free run $(size_text "$run");" "$tmp/stat.txt" ||
		fail "iovm stat: no arena with 'largest free run $(size_text "$run")': $(grep arena "$tmp/stat.txt")"
	ok
done
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

# Whether a row of the table in FILE says iovm failed: its iovm column (a
# peer that failed, DPDK's when it cannot start here, is not iovm's).
iovm_failed() { # FILE
	awk '/^measure /{t=1; next} t && /^$/{t=0} t && substr($0, 57, 10) ~ /failed/{f=1} END{exit !f}' "$1"
}
# The IOMMU benchmark: every row measured (none "failed"), JSON that parses.
"$iovm" bench iommu --quick --no-dpdk --json-out "$tmp/iommu.json" >"$tmp/iommu" 2>&1 ||
	fail "iovm bench iommu: $(cat "$tmp/iommu")"
json_ok "$tmp/iommu.json" "iovm bench iommu --json-out"
for row in "IOVA alloc+free, 1 thread" "map 256 x 4 KiB, one batch" "copy 64 KiB through the IOMMU" \
	"unmap per I/O: deferred"; do
	grep -q "$row" "$tmp/iommu" || fail "bench iommu lacks the row '$row'"
	ok
done
if iovm_failed "$tmp/iommu"; then fail "bench iommu: a row failed: $(cat "$tmp/iommu")"; fi
ok
# The registration benchmark likewise; with --json, stdout is the JSON alone
# (the table goes to stderr), the same document --json-out writes.
"$iovm" bench reg --quick --no-dpdk --json --json-out "$tmp/reg.json" >"$tmp/reg.stdout" 2>"$tmp/reg" ||
	fail "iovm bench reg: $(cat "$tmp/reg")"
json_ok "$tmp/reg.json" "iovm bench reg --json-out"
json_ok "$tmp/reg.stdout" "iovm bench reg --json: stdout"
cmp -s "$tmp/reg.stdout" "$tmp/reg.json" || fail "bench --json and --json-out wrote different JSON"
ok
for row in "rcache hit: get+put" "on-demand minor fault" "pinned registration of"; do
	grep -q "$row" "$tmp/reg" || fail "bench reg lacks the row '$row'"
	ok
done
if iovm_failed "$tmp/reg"; then fail "bench reg: a row failed: $(cat "$tmp/reg")"; fi
ok
# An output that cannot be written fails the run (exit 1, said on stderr), the table printed all the same.
if "$iovm" bench reg --quick --no-dpdk --json-out "$tmp/no/such/dir/r.json" >"$tmp/reg-bad" 2>&1; then
	fail "bench --json-out into a missing directory exited 0"
fi
grep -q "no/such/dir/r.json: No such file or directory" "$tmp/reg-bad" || fail "bench --json-out failure unsaid"
grep -q "rcache hit: get+put" "$tmp/reg-bad" || fail "bench --json-out failure lost the table"
ok
# An output that cannot be written to the end (a full device: a private copy
# of /dev/full, as root) fails the run, says why, and the device stays: a
# failed output is removed only when it is a regular file.
if mknod -m 666 "$tmp/full" c 1 7 2>/dev/null; then
	for out in --json-out --plot; do
		if "$iovm" bench reg --quick --no-dpdk $out "$tmp/full" >"$tmp/reg-full" 2>&1; then
			fail "bench $out onto a full device exited 0"
		fi
		grep -Eq "full: (No space left on device|gnuplot is not installed)" "$tmp/reg-full" ||
			fail "bench $out onto a full device: $(tail -2 "$tmp/reg-full")"
		[ -c "$tmp/full" ] || fail "bench $out removed the device it could not write"
		ok
	done
else
	echo "# skip: a full device needs mknod (root)"
fi
rc=0
"$iovm" bench reg --quick --no-dpdk --hugepages abc >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "bench --hugepages abc exited $rc, not 2"
ok
# --plot: a file name is never gnuplot's to read. A name with a quote and a
# newline that would run a command through gnuplot's language runs nothing:
# the chart is written under that name, or (no gnuplot) the run fails.
odd="c'
system(\"touch pwned\")
'.svg"
abs_iovm=$(cd "$(dirname "$iovm")" && pwd)/iovm
if (cd "$tmp" && "$abs_iovm" bench reg --quick --no-dpdk --plot "$odd") >"$tmp/reg-plot" 2>&1; then
	[ -s "$tmp/$odd" ] || fail "bench --plot exited 0 without the chart"
else
	grep -q "gnuplot is not installed" "$tmp/reg-plot" || fail "bench --plot failed: $(tail -3 "$tmp/reg-plot")"
	[ ! -e "$tmp/$odd" ] || fail "bench --plot failed and left a file"
fi
[ ! -e "$tmp/pwned" ] || fail "bench --plot ran a command from the file name"
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
# where DPDK is built in and can run (else a note says why), and the device
# process with 1 to 16 clients beside the same engine in one process. Every
# row measured, and the JSON holds every row with its fields. The pool is
# left alone.
"$iovm" bench mp --quick --hugepages 0 --json-out "$tmp/mp.json" >"$tmp/mp" 2>&1 ||
	fail "iovm bench mp: $(cat "$tmp/mp")"
json_ok "$tmp/mp.json" "iovm bench mp --json-out"
for row in "attach: spawn to first alloc+PA" "alloc+free 64 B, second process" \
	"alloc+free 4 KiB, second process" "zone lookup by name, second process" \
	"recovery: kill -9 of a holder of 1000 blocks" "device: copy 64 B, 1 client" "device: copy 64 B, 2 clients" \
	"device: copy 64 B, 4 clients" "device: copy 64 B, 16 clients" "device: copy 64 B, speed-up 1 to 2 clients" \
	"device: copy 4 KiB, 1 client" "device: copy 4 KiB, 16 clients" "device: copy 4 KiB, speed-up 1 to 2 clients"; do
	grep -q "^$row .*[0-9]" "$tmp/mp" || fail "bench mp lacks a figure for '$row': $(cat "$tmp/mp")"
	python3 -c 'import json, sys
sys.exit(not any(o["name"] == sys.argv[2] and isinstance(o["iovm"], (int, float))
		 for o in json.load(open(sys.argv[1]))))' "$tmp/mp.json" "$row" ||
		fail "bench mp JSON lacks iovm's figure for '$row'"
	ok
done
for key in '"name"' '"unit"' '"iovm"' '"peer"' '"peer_value"' '"ratio"' '"target"' '"met"'; do
	grep -q "$key" "$tmp/mp.json" || fail "bench mp JSON lacks $key"
	ok
done
# The device rows' peer ran too, and every completion the clients reaped the device process counted.
grep -q "^device: copy 64 B, 1 client .*same engine, one process, 1 queue *[0-9]" "$tmp/mp" ||
	fail "bench mp: no in-process figure beside the device process: $(cat "$tmp/mp")"
ok
if grep -q "^note: device process:" "$tmp/mp"; then fail "bench mp: $(grep "^note: device process:" "$tmp/mp")"; fi
ok
if grep -q "not built yet" "$tmp/mp"; then fail "bench mp: a row not built: $(cat "$tmp/mp")"; fi
ok
if iovm_failed "$tmp/mp"; then fail "bench mp: a row failed: $(cat "$tmp/mp")"; fi
ok
# DPDK's rows: measured, or a note that says why not.
if ! grep -q "^attach: .*DPDK secondary rte_eal_init *[0-9]" "$tmp/mp"; then
	grep -q "^note: DPDK: .*iovm alone" "$tmp/mp" || fail "bench mp: no DPDK figure and no reason: $(cat "$tmp/mp")"
fi
ok
# Every benchmark's JSON: each row with every field; a row with a target
# says whether it is met (true or false) unless a figure it needs is
# missing (a target the report does not understand would stay null); a
# row without a peer figure says why, and names no peer unless it failed.
if command -v python3 >/dev/null; then
	for j in bench iommu reg placement mp; do
		python3 - "$tmp/$j.json" <<'EOF' || fail "bench JSON $j.json: rows as the report promises"
import json, sys
rows = json.load(open(sys.argv[1]))
keys = {"name", "unit", "iovm", "peer", "peer_status", "peer_value", "ratio", "lead", "better", "target", "met"}
for r in rows:
    missing = keys - set(r)
    assert not missing, (r["name"], "lacks", missing)
    assert r["peer_status"] in ("measured", "failed", "not built", "not run", "none"), r
    assert r["better"] in ("lower", "higher"), r
    if r["peer_status"] == "measured":
        assert r["peer"] and r["peer_value"] is not None, r
    elif r["peer_status"] == "failed":
        assert r["peer"] and r["peer_value"] is None, r
    else:
        assert r["peer"] is None and r["peer_value"] is None, r
    if r["target"] is not None and r["iovm"] is not None and r["peer_status"] in ("measured", "none"):
        assert r["met"] in (True, False), ("target not checked", r)
    if r["target"] is None:
        assert r["met"] is None, r
EOF
		ok
	done
fi
if "$iovm" bench nosuchbench >/dev/null 2>&1; then fail "unknown benchmark accepted"; fi
ok

# A device process: `iovm device-server` with a share of its own, then a
# second one attached to that share; a client copies through each and checks
# the bytes; each stops cleanly on its signal and prints its counters.
client="$build/tests/tools/devsrv_client"
share="iovm-cli-share-$$" dev="iovm-cli-dev-$$" dev2="iovm-cli-dev2-$$"
wait_line() { # FILE PID PATTERN WHAT: until FILE has a line matching PATTERN, while PID lives
	i=0
	until grep -q "$3" "$1"; do
		kill -0 "$2" 2>/dev/null || fail "$4: the server ended: $(cat "$1")"
		i=$((i + 1))
		[ $i -lt 400 ] || fail "$4: not within 20 s: $(cat "$1")"
		sleep 0.05
	done
}
stop_server() { # PID SIGNAL FILE: the exit status after SIGNAL
	kill -"$2" "$1"
	rc=0
	wait "$1" || rc=$?
	[ "$rc" -eq 0 ] || fail "device-server after SIG$2 exited $rc: $(cat "$3")"
	grep -q "^stopped by SIG$2\$" "$3" || fail "device-server: no 'stopped by SIG$2' line: $(cat "$3")"
}
"$iovm" device-server "$dev" --share "$share" --own 16M --workers 2 --stats 1 >"$tmp/ds" 2>&1 &
ds=$!
servers="$ds"
wait_line "$tmp/ds" "$ds" "^ready: device server $dev on share $share (its own), workers 2, pid $ds\$" "device-server ready"
ok
"$client" "$share" "$dev" 100 >"$tmp/cl" 2>&1 || fail "devsrv_client: $(cat "$tmp/cl")"
grep -q "^copies 100 ok$" "$tmp/cl" || fail "devsrv_client: $(cat "$tmp/cl")"
ok
# --stats: a line of counters every second, which comes to show the copies.
wait_line "$tmp/ds" "$ds" "^stats: clients 0, queues opened 1, descriptors 100, torn down 0, refused 0\$" "device-server --stats"
ok
# Refused: a device process of that name exists already; no such share; no such device.
rc=0
"$iovm" device-server "$dev" --share "$share" >"$tmp/ds-dup" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "a second device-server $dev: exit $rc, not 1: $(cat "$tmp/ds-dup")"
grep -q "iovm_device_serve: .*:" "$tmp/ds-dup" || fail "device-server, name taken: $(cat "$tmp/ds-dup")"
ok
rc=0
"$iovm" device-server "$dev2" --share "iovm-cli-noshare-$$" >"$tmp/ds-none" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "device-server on a share nobody made: exit $rc, not 1: $(cat "$tmp/ds-none")"
grep -q "iovm_attach: .*:" "$tmp/ds-none" || fail "device-server, no share: $(cat "$tmp/ds-none")"
ok
if "$client" "$share" "iovm-cli-nodev-$$" 1 >"$tmp/cl-none" 2>&1; then fail "a queue on no device process opened"; fi
grep -q "iovm_rqueue_open" "$tmp/cl-none" || fail "devsrv_client, no device: $(cat "$tmp/cl-none")"
ok
for args in "" "$dev2" "--share $share" "$dev2 --share $share --workers 0" "$dev2 --share $share --workers 65" \
	"$dev2 --share $share --own 1X" "$dev2 --share $share --stats" "$dev2 --share $share --bogus"; do
	rc=0
	# shellcheck disable=SC2086 # the words are the arguments
	"$iovm" device-server $args >"$tmp/ds-bad" 2>&1 || rc=$?
	[ "$rc" -eq 2 ] || fail "device-server $args: exit $rc, not 2: $(cat "$tmp/ds-bad")"
	ok
done
# A second device process, attached to the first one's share (no --own).
"$iovm" device-server "$dev2" --share "$share" >"$tmp/ds2" 2>&1 &
ds2=$!
servers="$ds $ds2"
wait_line "$tmp/ds2" "$ds2" "^ready: device server $dev2 on share $share (attached), workers 1," "attached device-server ready"
"$client" "$share" "$dev2" 10 >"$tmp/cl2" 2>&1 || fail "devsrv_client on $dev2: $(cat "$tmp/cl2")"
stop_server "$ds2" INT "$tmp/ds2"
# "clients": the client has exited, but the server may be stopped before it
# has seen it go (its hang-up is read asynchronously): 0 or 1, not a count
# this test can wait for without a clock.
grep -q "^counters: clients [01], queues opened 1, descriptors 10, torn down 0, refused 0\$" "$tmp/ds2" ||
	fail "attached device-server's counters: $(cat "$tmp/ds2")"
ok
stop_server "$ds" TERM "$tmp/ds"
servers=""
grep -q "^counters: clients [01], queues opened 1, descriptors 100, torn down 0, refused 0\$" "$tmp/ds" ||
	fail "device-server's counters: $(cat "$tmp/ds")"
ok

if "$iovm" nosuchcommand >/dev/null 2>&1; then fail "unknown command accepted"; fi
ok
echo "# $checks checks passed"
