#!/bin/sh
# SPDX-License-Identifier: MIT
# check_addr_swap.sh PROBE.c COMPILER [ARGS...] - compile every case of the
# probe (tests/base/addr_swap.c) with the headers as they are now: case 0
# must compile; every other case must be refused, with the first error on
# one of the case's own lines (a probe that fails for another reason, a
# typo or a missing header, proves nothing and fails this check).
set -u
probe=$1
shift
cases=$(grep -c '^#elif SWAP_CASE == ' "$probe")
out=$(mktemp)
trap 'rm -f "$out"' EXIT
fail=0

if ! "$@" -fsyntax-only -DSWAP_CASE=0 "$probe" >"$out" 2>&1; then
	echo "FAIL: case 0 (the right types) does not compile:"
	cat "$out"
	exit 1
fi
n=1
while [ "$n" -le "$cases" ]; do
	first=$(grep -n "^#elif SWAP_CASE == $n\$" "$probe" | cut -d: -f1)
	end=$(awk -v f="$first" 'NR > f && /^#(elif|else)/ { print NR; exit }' "$probe")
	if [ -z "$first" ] || [ -z "$end" ]; then
		echo "FAIL: case $n is not where the probe's cases are numbered 1 to $cases"
		fail=1
	elif "$@" -fsyntax-only -DSWAP_CASE=$n "$probe" >"$out" 2>&1; then
		echo "FAIL: case $n compiles: $(sed -n "$((first + 1)),$((end - 1))p" "$probe" | tr -s '\t' ' ')"
		fail=1
	else
		line=$(grep -m1 -o "$(basename "$probe"):[0-9]*:[0-9]*: error" "$out" | cut -d: -f2)
		if [ -z "$line" ] || [ "$line" -le "$first" ] || [ "$line" -ge "$end" ]; then
			echo "FAIL: case $n is refused, but not on its own lines ($first-$end):"
			cat "$out"
			fail=1
		fi
	fi
	n=$((n + 1))
done
[ "$fail" = 0 ] && echo "# $cases swapped-address cases refused, the right types accepted"
exit "$fail"
