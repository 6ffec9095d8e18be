#!/bin/sh
# Run every libFuzzer target for a while (make fuzz).
#   fuzz.sh [SECONDS [TARGET...]]    SECONDS per target, default 60 (FUZZ_SECONDS)
# Builds build-fuzz with clang, ASan+UBSan and -Dfuzz=true. Each target starts
# from its seed corpus (tests/fuzz/corpus/NAME) and writes what it finds to
# build-fuzz/corpus/NAME; a crash leaves its input in build-fuzz/artifacts/
# and fails the run. Once the bug is fixed, copy the input into the seed
# corpus: `make check` replays it from then on. To keep the new coverage,
# `fuzz.sh merge` minimizes build-fuzz/corpus into the seed corpus.
set -eu
cd "$(dirname "$0")/.."

dir=build-fuzz
if [ ! -f "$dir/build.ninja" ]; then
	CC=clang meson setup "$dir" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
		-Dbuildtype=debugoptimized -Dc_args=-fsanitize=fuzzer-no-link >/dev/null
fi
ninja -C "$dir" >/dev/null

targets=$(sed -n "s/^  '\([a-z_0-9]*\)',$/\1/p" tests/fuzz/meson.build)
if [ "${1:-}" = merge ]; then
	for t in $targets; do
		[ -d "$dir/corpus/$t" ] || continue
		echo "== merge $t"
		"$dir/tests/fuzz/fuzz_$t" -merge=1 "tests/fuzz/corpus/$t" "$dir/corpus/$t" 2>&1 | tail -n 1
	done
	exit 0
fi

secs=${1:-${FUZZ_SECONDS:-60}}
[ $# -gt 0 ] && shift
[ $# -gt 0 ] && targets=$*
mkdir -p "$dir/artifacts"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
failed=""
for t in $targets; do
	mkdir -p "$dir/corpus/$t"
	echo "== fuzz_$t for ${secs}s"
	if ! "$dir/tests/fuzz/fuzz_$t" -max_total_time="$secs" -print_final_stats=1 \
		-artifact_prefix="$dir/artifacts/$t-" "$dir/corpus/$t" "tests/fuzz/corpus/$t" \
		>"$dir/fuzz_$t.log" 2>&1; then
		failed="$failed $t"
		tail -n 30 "$dir/fuzz_$t.log"
	fi
	grep -E "^stat::(number_of_executed_units|new_units_added|peak_rss_mb)" "$dir/fuzz_$t.log" | tr '\n' ' '
	echo
done
if [ -n "$failed" ]; then
	echo "fuzz: crashes in:$failed (inputs in $dir/artifacts/)" >&2
	exit 1
fi
echo "fuzz: no crash"
