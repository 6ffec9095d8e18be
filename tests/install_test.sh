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
# (and the version node's own symbol, IOVM_0).
if nm -D --defined-only "$libdir/libiovm.so" | awk '{print $3}' | grep -v '^iovm_' | grep -vx 'IOVM_0' | grep -q .; then
	echo "FAIL: the shared library exports more than iovm_*:" >&2
	nm -D --defined-only "$libdir/libiovm.so" | awk '{print $3}' | grep -v '^iovm_' | grep -vx 'IOVM_0' >&2
	exit 1
fi
# Every export carries the soname's version node (src/libiovm.map).
if objdump -T "$libdir/libiovm.so" | awk '$NF ~ /^iovm_/ && $(NF-1) != "IOVM_0"' | grep -q .; then
	echo "FAIL: exports without the IOVM_0 version node:" >&2
	objdump -T "$libdir/libiovm.so" | awk '$NF ~ /^iovm_/ && $(NF-1) != "IOVM_0"' >&2
	exit 1
fi
# The static library defines no global symbol but iovm_*: a program may have
# its own log_msg, crc32c or rb_insert (names the library uses inside).
if nm -g --defined-only "$libdir/libiovm.a" | awk 'NF == 3 {print $3}' | grep -v '^iovm_' | grep -q .; then
	echo "FAIL: the static library defines more than iovm_*:" >&2
	nm -g --defined-only "$libdir/libiovm.a" | awk 'NF == 3 {print $3}' | grep -v '^iovm_' | head >&2
	exit 1
fi
cat >"$root/own_names.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <iovm.h>
/* Names the library uses inside: a program of its own may define them too. */
int log_msg(int level, const char *fmt) { return level + (int)strlen(fmt); }
unsigned crc32c(unsigned crc, const void *p, unsigned long n) { (void)p; return crc + (unsigned)n; }
void rb_insert(void) {}
int iova_alloc(void) { return 7; }
int main(void)
{
	struct iovm_ctx *ctx;
	void *p;

	if (iovm_open("", &ctx))
		return 1;
	p = iovm_dma_alloc(ctx, 4096, 4096, 0);
	if (!p || iovm_dma_free(ctx, p) || iovm_close(ctx))
		return 1;
	rb_insert();
	printf("%s %d %u %d\n", iovm_version(NULL), log_msg(1, "x"), crc32c(1, p, 2), iova_alloc());
	return 0;
}
C
cc -std=c17 -Wall -Wextra -Werror -o "$root/own-static" "$root/own_names.c" $(pc --cflags) "$libdir/libiovm.a" -lpthread
got=$("$root/own-static")
want="$(LD_LIBRARY_PATH=$libdir "$root$prefix/bin/iovm" --version | sed 's/^iovm \([^ ]*\) .*/\1/') 2 3 7"
[ "$got" = "$want" ] ||
	{ echo "FAIL: a program with names of its own, linked statically, ran wrong" >&2; exit 1; }
# The installed headers compile alone in strict C17 and, where a C++ compiler
# is installed, in C++ (-pedantic: the descriptor's anonymous key struct).
printf '#include <iovm.h>\nint main(void) { struct iovm_desc d = { 0 }; d.src_key = 1; return (int)d.src_key - 1; }\n' \
	>"$root/strict.c"
cc -std=c17 -Wall -Wextra -Werror -pedantic $(pc --cflags) -c -o "$root/strict.o" "$root/strict.c"
for cxx in g++ clang++; do
	command -v "$cxx" >/dev/null || continue
	printf '#include <iovm.h>\nint main() { iovm_desc d = {}; d.src_key = 1; return iovm_version(nullptr) ? (int)d.src_key - 1 : 1; }\n' \
		>"$root/cxx.cc"
	"$cxx" -std=c++17 -Wall -Wextra -Werror -pedantic $(pc --cflags) -c -o "$root/cxx.o" "$root/cxx.cc" ||
		{ echo "FAIL: the headers do not compile in C++17 with $cxx" >&2; exit 1; }
done
# make install PREFIX=... goes there though the build was set up with another prefix.
make -s -C "$src" install BUILD="$(cd "$build" && pwd)" PREFIX="$root/elsewhere" >/dev/null
meson configure "$build" --prefix="$prefix" >/dev/null
test -x "$root/elsewhere/bin/iovm" || { echo "FAIL: make install PREFIX= did not install there" >&2; exit 1; }
test -f "$root/elsewhere/include/iovm/version.h" || { echo "FAIL: version.h not installed" >&2; exit 1; }
echo "installed, built against iovm.pc (shared and static), ran; exports versioned, no internal symbol"
