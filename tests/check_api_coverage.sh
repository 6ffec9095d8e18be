#!/bin/sh
# Every public function (IOVM_API in include/iovm/*.h) has a row in the
# bad-input table; a new function without one fails the suite.
set -eu
top=${1:?source root}
table="$top/tests/mem/test_badinput.c"
missing=""
for f in $(grep -h 'IOVM_API' "$top"/include/iovm/*.h | grep -v '#define' |
	   sed -n 's/.*[ *]\(iovm_[a-z0-9_]*\)(.*/\1/p' | sort -u); do
	grep -q "ROW([a-z0-9_]*, $f," "$table" || missing="$missing $f"
done
if [ -n "$missing" ]; then
	echo "public functions without a bad-input row:$missing" >&2
	exit 1
fi
echo "every public function has a bad-input row"
