#!/bin/sh
# static_lib.sh IN.a OUT.a - the installed static library: every object of
# the library linked into one relocatable object whose hidden symbols (all
# but the IOVM_API ones: the sources build with -fvisibility=hidden) are
# made local, so that a program linked against it sees only iovm_* and can
# define its own log_msg, crc32c or rb_insert.
set -eu
in=$1
out=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
case $in in /*) ;; *) in=$PWD/$in ;; esac
if [ "$(head -c 7 "$in")" = '!<thin>' ]; then
	# A thin archive (meson's for a library it does not install) names its objects.
	dir=$(dirname "$in")
	${AR:-ar} t "$in" | while read -r o; do
		case $o in /*) echo "$o" ;; *) echo "$dir/$o" ;; esac
	done >"$tmp/objects"
else
	mkdir "$tmp/x"
	(cd "$tmp/x" && ${AR:-ar} x "$in")
	ls "$tmp"/x/*.o >"$tmp/objects"
fi
# shellcheck disable=SC2046 # object paths have no blanks (meson's and mktemp's)
${LD:-ld} -r -o "$tmp/iovm.o" $(cat "$tmp/objects")
${OBJCOPY:-objcopy} --localize-hidden "$tmp/iovm.o"
rm -f "$out"
${AR:-ar} rcD "$out" "$tmp/iovm.o"
