#!/bin/sh
# Every public function (IOVM_API in include/iovm/*.h, the list
# tests/check_api_coverage.sh walks) is called by a fault-injection
# scenario in tests/fault/; a new function without one fails the suite.
set -eu
top=${1:?source root}
missing=""
n=0
for f in $(grep -h 'IOVM_API' "$top"/include/iovm/*.h | grep -v '#define' |
	   sed -n 's/.*[ *]\(iovm_[a-z0-9_]*\)(.*/\1/p' | sort -u); do
	n=$((n + 1))
	cat "$top"/tests/fault/fault_*.c | grep -q "\b$f(" || missing="$missing $f"
done
if [ -n "$missing" ]; then
	echo "public functions no fault-injection scenario calls:$missing" >&2
	exit 1
fi
echo "all $n public functions are called by a fault-injection scenario"
