#!/bin/bash
# loaded_repeat.sh - run one test binary N times beside busy loops, the
# way a flake that shows only on a loaded machine (CI's 2 CPUs running
# two tests at once) is caught and its fix measured.
#
#   scripts/loaded_repeat.sh BIN N [LOOPS]
#
# Runs BIN (with the caller's environment: A18_ONLY=case,
# IOVM_ATTACK18_KNOWN=1, ...) N times with LOOPS (default 2) busy-loop
# processes running, keeps the log of each failing run in
# ${TMPDIR:-/tmp}/loaded_repeat.RUN.log, prints its FAIL lines, and ends
# with the counts. Exit status: 0 when every run passed.
set -u
bin=${1:?usage: loaded_repeat.sh BIN N [LOOPS]}
n=${2:?usage: loaded_repeat.sh BIN N [LOOPS]}
loops=${3:-2}
dir=${TMPDIR:-/tmp}
pids=()
for ((i = 0; i < loops; i++)); do
	(while :; do :; done) &
	pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
pass=0
fail=0
for ((i = 1; i <= n; i++)); do
	log=$dir/loaded_repeat.$i.log
	if timeout 600 "$bin" >"$log" 2>&1; then
		pass=$((pass + 1))
		rm -f "$log"
	else
		fail=$((fail + 1))
		grep -m3 FAIL "$log"
		echo "run $i failed: $log"
	fi
	echo "loaded_repeat: run $i of $n: $pass passed, $fail failed" >&2
done
echo "pass=$pass fail=$fail"
[ "$fail" -eq 0 ]
