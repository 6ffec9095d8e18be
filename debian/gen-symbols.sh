#!/bin/sh
# gen-symbols.sh LIBRARY - print debian/libiovm0.symbols for LIBRARY (a
# built libiovm.so.0): every symbol it exports, under the version nodes of
# src/libiovm.map. A symbol already in debian/libiovm0.symbols keeps its
# version there; a new one gets meson.build's project version, the first
# release with it. The package build fails when the file and the library
# disagree (DPKG_GENSYMBOLS_CHECK_LEVEL=4 in debian/rules): after adding a
# function, run
#   debian/gen-symbols.sh build/libiovm.so.0 >debian/libiovm0.symbols.new &&
#   mv debian/libiovm0.symbols.new debian/libiovm0.symbols
# and commit the change with the function.
set -eu
lib=${1:?usage: gen-symbols.sh LIBRARY}
top=$(cd "$(dirname "$0")/.." && pwd)
map=$top/src/libiovm.map
old=$top/debian/libiovm0.symbols
version=$(sed -n "s/^[[:space:]]*version:[[:space:]]*'\([^']*\)'.*/\1/p" "$top/meson.build" | head -n1)
[ -n "$version" ] || { echo "gen-symbols.sh: no version in meson.build" >&2; exit 1; }
soname=$(objdump -p "$lib" | awk '$1 == "SONAME" { print $2 }')
case $soname in
libiovm.so.*) ;;
*) echo "gen-symbols.sh: $lib: soname '$soname', not libiovm.so.N" >&2; exit 1 ;;
esac
# The version nodes the map defines: "IOVM_0 {", "IOVM_1 { ... } IOVM_0;".
nodes=$(sed 's,/\*.*\*/,,; /^[[:space:]]*\*/d; /^\/\*/d' "$map" |
	awk '/^[[:space:]]*[A-Za-z_][A-Za-z0-9_.]*[[:space:]]*\{/ { sub(/[[:space:]]*\{.*/, ""); gsub(/[[:space:]]/, ""); print }')
[ -n "$nodes" ] || { echo "gen-symbols.sh: no version node in $map" >&2; exit 1; }

# objdump -T: ADDRESS FLAGS... SECTION SIZE VERSION NAME; defined ones only.
objdump -T "$lib" | awk '$NF != "" && $(NF-3) != "*UND*" && NF >= 6 && $2 != "" { print $NF, $(NF-1) }' |
	grep -v '^[^ ]* [(]' | sort -u >"${TMPDIR:-/tmp}/gen-symbols.$$"
trap 'rm -f "${TMPDIR:-/tmp}/gen-symbols.$$"' EXIT
status=0
while read -r name node; do
	case " $(echo $nodes) " in
	*" $node "*) ;;
	*) echo "gen-symbols.sh: $name is exported under '$node', not a node of $map" >&2; status=1 ;;
	esac
done <"${TMPDIR:-/tmp}/gen-symbols.$$"
[ $status = 0 ] || exit 1

pkg=$(echo "$soname" | sed 's/^\(lib.*\)\.so\.\(.*\)$/\1\2/')
echo "$soname $pkg #MINVER#"
echo "* Build-Depends-Package: libiovm-dev"
while read -r name node; do
	v=""
	[ -f "$old" ] && v=$(awk -v s="$name@$node" '$1 == s { print $2; exit }' "$old")
	echo " $name@$node ${v:-$version}"
done <"${TMPDIR:-/tmp}/gen-symbols.$$"
