#!/bin/sh
# make install works: install into a scratch root, then build the example
# against the installed headers and iovm.pc, shared and static, and run both.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR
set -eu
build=${1:?build dir}
src=${2:?source dir}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

meson install -C "$build" --destdir "$root" >/dev/null
prefix=$(meson introspect "$build" --buildoptions |
	 python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])' 2>/dev/null ||
	 echo /usr/local)
pcdir=$(find "$root" -name iovm.pc -printf '%h\n' | head -n1)
[ -n "$pcdir" ] || { echo "FAIL: iovm.pc not installed" >&2; exit 1; }
test -x "$root$prefix/bin/iovm" || { echo "FAIL: iovm not installed" >&2; exit 1; }
test -f "$root$prefix/include/iovm.h" || { echo "FAIL: iovm.h not installed" >&2; exit 1; }

pc() { PKG_CONFIG_PATH=$pcdir pkg-config --define-variable=prefix="$root$prefix" "$@" iovm; }
cc -std=c17 -Wall -Wextra -Werror -o "$root/ring-shared" "$src/examples/dma_ring.c" $(pc --cflags --libs)
libdir=$(pc --variable=libdir)
LD_LIBRARY_PATH=$libdir "$root/ring-shared" >/dev/null
cc -std=c17 -Wall -Wextra -Werror -o "$root/ring-static" "$src/examples/dma_ring.c" \
	$(pc --cflags) "$libdir/libiovm.a" -lpthread
"$root/ring-static" >/dev/null
# The IOMMU and engine, through the installed shared library too.
cc -std=c17 -Wall -Wextra -Werror -o "$root/iommu-shared" "$src/examples/iommu_copy.c" $(pc --cflags --libs)
LD_LIBRARY_PATH=$libdir "$root/iommu-shared" >/dev/null
# Only the public API is exported from the shared library.
if nm -D --defined-only "$libdir/libiovm.so" | awk '{print $3}' | grep -v '^iovm_' | grep -q .; then
	echo "FAIL: the shared library exports more than iovm_*:" >&2
	nm -D --defined-only "$libdir/libiovm.so" | awk '{print $3}' | grep -v '^iovm_' >&2
	exit 1
fi
echo "installed, built against iovm.pc (shared and static), ran"
