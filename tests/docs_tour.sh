#!/bin/sh
# The README's first program is a program: the C block under "A first
# program" is compiled as printed (C17, every warning an error) against the
# build's headers and shared library, and run.
# Usage: docs_tour.sh BUILD_DIR SOURCE_DIR CC [CC ARGS...]
set -eu
build=${1:?build dir}
src=${2:?source dir}
shift 2
[ $# -gt 0 ] || { echo "usage: docs_tour.sh BUILD_DIR SOURCE_DIR CC [ARGS...]" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

awk '/^## A first program/ { seen = 1; next }
     seen && /^## / { exit }
     seen && /^```c$/ { code = 1; next }
     code && /^```/ { exit }
     code' "$src/README.md" >"$tmp/first.c"
[ -s "$tmp/first.c" ] || { echo "FAIL: README.md has no C block under '## A first program'" >&2; exit 1; }

"$@" -std=c17 -Wall -Wextra -pedantic -Werror -o "$tmp/first" "$tmp/first.c" \
	-I"$src/include" -L"$build" -liovm
out=$(LD_LIBRARY_PATH="$build" "$tmp/first")
echo "$out"
echo "$out" | grep -q '^buffer .*: pa 0x[0-9a-f]*, in a [0-9]* KiB page$' ||
	{ echo "FAIL: the first line is not the one the README shows" >&2; exit 1; }
echo "$out" | grep -q '^ring rxq0: 64 KiB at pa 0x[0-9a-f]*, physically contiguous$' ||
	{ echo "FAIL: the second line is not the one the README shows" >&2; exit 1; }
