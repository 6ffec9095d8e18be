#!/bin/sh
# check_symbols.sh SOURCE LIBRARY - debian/libiovm0.symbols lists exactly
# what LIBRARY exports, so that a new public function without its line
# fails the default build's suite, not only `make deb` (dpkg-gensymbols
# refuses the difference there). The fix is the command the failure prints.
set -eu
top=${1:?usage: check_symbols.sh SOURCE LIBRARY}
lib=${2:?usage: check_symbols.sh SOURCE LIBRARY}
command -v objdump >/dev/null || { echo "SKIP: no objdump"; exit 77; }
new=$(mktemp)
trap 'rm -f "$new"' EXIT
"$top/debian/gen-symbols.sh" "$lib" >"$new"
if ! diff -u "$top/debian/libiovm0.symbols" "$new"; then
	echo "FAIL: debian/libiovm0.symbols is not what the library exports; run" >&2
	echo "  debian/gen-symbols.sh $lib >debian/libiovm0.symbols" >&2
	exit 1
fi
n=$(grep -c '^ iovm_' "$new")
[ "$n" -gt 100 ] || { echo "FAIL: only $n symbols listed" >&2; exit 1; }
echo "debian/libiovm0.symbols lists the $n exported functions"
