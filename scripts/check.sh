#!/bin/sh
# The whole test suite: the default build, then an ASan+UBSan build, then a
# clang build; hugepages are reserved around it (as root) and released after.
#   check.sh [--only default]
set -eu
cd "$(dirname "$0")/.."

only=${2:-}
[ "${1:-}" = "--only" ] || only=""
state=$(mktemp /tmp/iovm-hugepages.XXXXXX)
trap 'scripts/hugepages.sh release "$state"' EXIT
trap 'exit 130' INT TERM
scripts/hugepages.sh reserve "$state"

run_suite() { # dir, meson options...
	dir=$1
	shift
	[ -f "$dir/build.ninja" ] || meson setup "$dir" "$@" >/dev/null
	ninja -C "$dir"
	meson test -C "$dir" --print-errorlogs --num-processes "$(nproc)"
}

echo "== default build (gcc)"
run_suite build
echo "== make install, then build against the installed library"
tests/install_test.sh build .
[ "$only" = default ] && exit 0

echo "== ASan + UBSan build"
(
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
	run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug \
		-Dc_args=-fno-sanitize-recover=all
)

echo "== clang build"
(
	export CC=clang
	run_suite build-clang -Dbuildtype=debugoptimized
)
