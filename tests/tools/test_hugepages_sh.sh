#!/bin/sh
# scripts/hugepages.sh against a pretend sysfs (IOVM_HUGEPAGES_SYSFS): it
# adds pages to what the pool holds, and takes back only what it added and
# only what is free, whatever others did to the pool in between.
#   test_hugepages_sh.sh SOURCE_DIR
set -eu
src=${1:?source dir}
hp="$src/scripts/hugepages.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
checks=0
export IOVM_HUGEPAGES_SYSFS="$tmp/sys" IOVM_HUGEPAGES_LOCK="$tmp/lock"
export IOVM_TEST_HUGEPAGES_2M=256 IOVM_TEST_HUGEPAGES_1G=1

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
pool() { # size_kb nr free resv
	d="$tmp/sys/hugepages-$1kB"
	mkdir -p "$d"
	echo "$2" >"$d/nr_hugepages"
	echo "$3" >"$d/free_hugepages"
	echo "$4" >"$d/resv_hugepages"
}
nr() { cat "$tmp/sys/hugepages-$1kB/nr_hugepages"; }
# The kernel's side of a resize, as far as these tests need it: what is
# added is free, what is taken back was free.
settle() { # size_kb old_nr
	d="$tmp/sys/hugepages-$1kB"
	echo $(($(cat "$d/free_hugepages") + $(nr "$1") - $2)) >"$d/free_hugepages"
}
expect() { # what, got, want
	[ "$2" = "$3" ] || fail "$1: $2, expected $3"
	checks=$((checks + 1))
}

# Alone: 256 added to the 600 there, and exactly those taken back.
pool 2048 600 600 0
pool 1048576 2 2 0
"$hp" reserve "$tmp/state" >/dev/null
expect "2 MiB pool after reserve" "$(nr 2048)" 856
expect "1 GiB pool after reserve" "$(nr 1048576)" 3
settle 2048 600
settle 1048576 2
"$hp" release "$tmp/state" >/dev/null
expect "2 MiB pool after release" "$(nr 2048)" 600
expect "1 GiB pool after release" "$(nr 1048576)" 2
[ ! -e "$tmp/state" ] || fail "the state file outlived the release"
checks=$((checks + 1))

# Someone else grew the pool by 100 meanwhile: their pages stay.
pool 2048 600 600 0
"$hp" reserve "$tmp/state" >/dev/null
echo 956 >"$tmp/sys/hugepages-2048kB/nr_hugepages"
echo 956 >"$tmp/sys/hugepages-2048kB/free_hugepages"
"$hp" release "$tmp/state" >/dev/null
expect "pool grown by another, after release" "$(nr 2048)" 700

# Others hold all but 40 pages at release, 10 of them reserved: only the 30
# that can be had go back, and the release says so.
pool 2048 600 600 0
"$hp" reserve "$tmp/state" >/dev/null
echo 40 >"$tmp/sys/hugepages-2048kB/free_hugepages"
echo 10 >"$tmp/sys/hugepages-2048kB/resv_hugepages"
out=$("$hp" release "$tmp/state")
expect "pool in use by others, after release" "$(nr 2048)" 826
echo "$out" | grep -q "226 in use by others" || fail "release did not say what it left: $out"
checks=$((checks + 1))

# The kernel gave fewer than asked (fragmented memory): only those are taken back.
pool 2048 600 600 0
rm -rf "$tmp/sys/hugepages-1048576kB"
"$hp" reserve "$tmp/state" >/dev/null
echo 700 >"$tmp/sys/hugepages-2048kB/nr_hugepages" # as if only 100 were had
grep -q "^2048 256$" "$tmp/state" || fail "state: $(cat "$tmp/state")"
sed -i 's/^2048 256$/2048 100/' "$tmp/state"
echo 700 >"$tmp/sys/hugepages-2048kB/free_hugepages"
"$hp" release "$tmp/state" >/dev/null
expect "partial reserve, after release" "$(nr 2048)" 600

# Unprivileged and not pretending: it does nothing at all.
if [ "$(id -u)" != 0 ]; then
	out=$(env -u IOVM_HUGEPAGES_SYSFS "$hp" reserve "$tmp/state2")
	expect "unprivileged reserve output" "$out" ""
	[ ! -e "$tmp/state2" ] || fail "an unprivileged reserve wrote its state"
fi
echo "# $checks checks passed"
