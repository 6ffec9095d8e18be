#!/bin/sh
# The Debian packages (debian/), built and used without installing them:
# debian/ agrees with the tree (versions, license, symbols), then the
# packages are built (scripts/deb.sh, LINTIAN=no unless set: make deb runs
# lintian), their metadata and contents checked, and they are unpacked with
# dpkg-deb -x into a scratch root, where a program is built against the
# unpacked headers and iovm.pc, linked shared and static, and run, and the
# unpacked iovm runs. The machine's installed packages are left alone.
# Without dpkg-buildpackage or debhelper, and not root to install them
# (scripts/deps.sh deb-build), it says so and skips the packages.
# Usage: deb_test.sh SOURCE_DIR [OUT_DIR (default SOURCE_DIR/build/deb)]
set -eu
src=$(cd "${1:?source dir}" && pwd)
out=${2:-$src/build/deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# debian/changelog's version is meson.build's, and the headers'.
meson_version=$(sed -n "s/^[[:space:]]*version:[[:space:]]*'\([^']*\)'.*/\1/p" "$src/meson.build" | head -n1)
version=$(sed -n '1s/^iovm (\([^)]*\)).*/\1/p' "$src/debian/changelog")
[ -n "$meson_version" ] || fail "no project version in meson.build"
[ -n "$version" ] || fail "debian/changelog: the first line is not 'iovm (VERSION) ...'"
[ "${version%-*}" = "$meson_version" ] ||
	fail "debian/changelog says $version, meson.build $meson_version: add a changelog entry (dch -v $meson_version)"
header_version=$(sed -n 's/^#define IOVM_VERSION_STRING "\(.*\)"$/\1/p' "$src/include/iovm/version.h")
[ "$header_version" = "$meson_version" ] ||
	fail "include/iovm/version.h says $header_version, meson.build $meson_version"

# debian/copyright (machine-readable) has LICENSE's holder and text.
grep -qx 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' "$src/debian/copyright" ||
	fail "debian/copyright is not in the machine-readable format"
holder=$(sed -n 's/^Copyright (c) //p' "$src/LICENSE")
grep -qx "Copyright: $holder" "$src/debian/copyright" ||
	fail "debian/copyright lacks LICENSE's 'Copyright: $holder'"
sed -n '/^Permission is hereby granted/,$p' "$src/LICENSE" >"$root/license"
# The stand-alone License: Expat paragraph (a Files paragraph's has no text).
awk '/^License: Expat$/ { on = 1; next } on && /^ / { sub(/^ /, ""); if ($0 == ".") $0 = ""; print; next } { on = 0 }' \
	"$src/debian/copyright" >"$root/copyright-license"
cmp -s "$root/license" "$root/copyright-license" ||
	{ diff -u "$root/license" "$root/copyright-license" >&2 || true; fail "debian/copyright's Expat text is not LICENSE's"; }

# The symbols file's version nodes are those of the version script.
nodes=$(grep -o '^[A-Za-z_][A-Za-z0-9_.]*[[:space:]]*{' "$src/src/libiovm.map" | tr -d ' \t{')
for n in $(sed -n 's/^ [^@]*@\([^ ]*\) .*/\1/p' "$src/debian/libiovm0.symbols" | sort -u); do
	echo "$nodes" | grep -qx "$n" || fail "debian/libiovm0.symbols: version node $n is not in src/libiovm.map"
done

if ! "$src/scripts/deps.sh" deb-build; then
	[ "$(id -u)" != 0 ] || fail "scripts/deps.sh deb-build could not install what builds the packages"
	echo "SKIP: the packages: dpkg-buildpackage, debhelper or a build dependency missing, and not root to install them"
	echo "debian/ agrees with meson.build, LICENSE and src/libiovm.map; packages not built"
	exit 0
fi

LINTIAN=${LINTIAN:-no} "$src/scripts/deb.sh" "$out" >"$root/deb.log" 2>&1 ||
	{ tail -n 40 "$root/deb.log" >&2; fail "scripts/deb.sh failed (its output's end above)"; }
tail -n 1 "$root/deb.log"

arch=$(dpkg --print-architecture)
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
lib=$out/libiovm0_${version}_$arch.deb
dev=$out/libiovm-dev_${version}_$arch.deb
cmd=$out/iovm_${version}_$arch.deb
py=$out/python3-iovm_${version}_all.deb
for d in "$lib" "$dev" "$cmd" "$py"; do
	[ -f "$d" ] || fail "no $d"
	[ "$(dpkg-deb -f "$d" Version)" = "$version" ] || fail "$d: Version $(dpkg-deb -f "$d" Version), not $version"
done

# Dependencies: the development files on exactly this library, the
# command on the library (dpkg-shlibdeps, from the symbols file).
deps() { dpkg-deb -f "$1" Depends | tr ',' '\n' | sed 's/^ *//; s/ *$//'; }
deps "$dev" | grep -qx "libiovm0 (= $version)" ||
	fail "libiovm-dev depends on '$(dpkg-deb -f "$dev" Depends)', not libiovm0 (= $version)"
deps "$cmd" | grep -q '^libiovm0\( \|$\)' ||
	fail "iovm depends on '$(dpkg-deb -f "$cmd" Depends)', not libiovm0"
deps "$lib" | grep -q '^libiovm' && fail "libiovm0 depends on itself or its -dev"
deps "$py" | grep -q '^libiovm0 (>= ' || fail "python3-iovm depends on '$(dpkg-deb -f "$py" Depends)', not libiovm0"
deps "$py" | grep -qx python3 || fail "python3-iovm does not depend on python3"
# libiovm0 ships the symbols file of debian/, as debian/gen-symbols.sh makes it.
dpkg-deb -I "$lib" symbols >"$root/symbols" 2>/dev/null || fail "libiovm0 has no symbols file"
cmp -s "$root/symbols" "$src/debian/libiovm0.symbols" ||
	{ diff -u "$src/debian/libiovm0.symbols" "$root/symbols" >&2 || true; fail "libiovm0's symbols are not debian/libiovm0.symbols"; }

# Contents: libiovm0 the library and its docs only; every file in one package.
contents() { dpkg-deb -c "$1" | awk '$1 !~ /^d/ { sub(/^\.\//, "", $6); print $6 }' | sort; }
contents "$lib" >"$root/lib.list"
contents "$dev" >"$root/dev.list"
contents "$cmd" >"$root/cmd.list"
contents "$py" >"$root/py.list"
grep -qx usr/lib/python3/dist-packages/iovm/__init__.py "$root/py.list" || fail "python3-iovm lacks the module"
grep -v -e '^usr/lib/python3/dist-packages/iovm/' -e '^usr/share/doc/python3-iovm/' "$root/py.list" &&
	fail "python3-iovm holds more than the module and its docs (above)"
if grep -v -e "^usr/lib/$ma/libiovm\.so\.[0-9][0-9.]*$" -e '^usr/share/doc/libiovm0/' "$root/lib.list"; then
	fail "libiovm0 holds more than the shared library and its docs (above)"
fi
for f in "usr/lib/$ma/libiovm.so.0" usr/share/doc/libiovm0/copyright; do
	grep -qx "$f" "$root/lib.list" || fail "libiovm0 lacks $f"
done
for f in usr/include/iovm.h usr/include/iovm/version.h "usr/lib/$ma/libiovm.a" "usr/lib/$ma/libiovm.so" \
	"usr/lib/$ma/pkgconfig/iovm.pc" usr/share/doc/libiovm-dev/copyright; do
	grep -qx "$f" "$root/dev.list" || fail "libiovm-dev lacks $f"
done
for f in usr/bin/iovm usr/libexec/iovm/iovm-bench usr/share/doc/iovm/copyright; do
	grep -qx "$f" "$root/cmd.list" || fail "iovm lacks $f"
done
grep '^usr/share/man/man[^3]' "$root/dev.list" && fail "libiovm-dev holds man pages of other sections than 3"
grep '^usr/share/man/man[^1]' "$root/cmd.list" && fail "iovm holds man pages of other sections than 1"
sort "$root/lib.list" "$root/dev.list" "$root/cmd.list" "$root/py.list" | uniq -d | grep . && fail "files in two packages (above)"

for d in "$lib" "$dev" "$cmd" "$py"; do
	dpkg-deb -x "$d" "$root"
done
for p in libiovm0 libiovm-dev iovm; do
	cmp -s "$root/usr/share/doc/$p/copyright" "$src/debian/copyright" || fail "$p's copyright is not debian/copyright"
done
libdir=$root/usr/lib/$ma

# The soname is the package's name: libiovm.so.0 in libiovm0.
soname=$(objdump -p "$libdir/libiovm.so.0" | awk '$1 == "SONAME" { print $2 }')
[ "$soname" = libiovm.so.0 ] || fail "the library's SONAME is '$soname', not libiovm.so.0"
[ "$(echo "$soname" | sed 's/^\(lib.*\)\.so\.\(.*\)$/\1\2/')" = libiovm0 ] || fail "soname $soname is not libiovm0's"
[ "$(readlink "$libdir/libiovm.so")" = libiovm.so.0 ] || fail "libiovm.so does not link to libiovm.so.0"
# debian/gen-symbols.sh, run on the packaged library, writes debian/libiovm0.symbols as it is.
"$src/debian/gen-symbols.sh" "$libdir/libiovm.so.0" >"$root/gen.symbols"
cmp -s "$root/gen.symbols" "$src/debian/libiovm0.symbols" ||
	{ diff -u "$src/debian/libiovm0.symbols" "$root/gen.symbols" >&2 || true; fail "debian/libiovm0.symbols is not what debian/gen-symbols.sh makes"; }

# A program built against the unpacked headers and iovm.pc.
pc() { PKG_CONFIG_SYSROOT_DIR=$root PKG_CONFIG_LIBDIR=$libdir/pkgconfig pkg-config "$@" iovm; }
[ "$(pc --modversion)" = "$meson_version" ] || fail "iovm.pc says version $(pc --modversion)"
case " $(pc --cflags) " in *" -I$root/usr/include "*) ;; *) fail "pkg-config --cflags: '$(pc --cflags)', not the unpacked headers" ;; esac
case " $(pc --libs) " in *" -L$libdir "*) ;; *) fail "pkg-config --libs: '$(pc --libs)', not the unpacked library" ;; esac
cat >"$root/prog.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <iovm.h>
int main(void)
{
	struct iovm_ctx *ctx;
	void *p;

	if (iovm_open("", &ctx))
		return 1;
	p = iovm_dma_alloc(ctx, 4096, 4096, 0);
	if (!p)
		return 1;
	memset(p, 0x5a, 4096);
	if (iovm_dma_free(ctx, p) || iovm_close(ctx))
		return 1;
	printf("%s %s\n", IOVM_VERSION_STRING, iovm_version(NULL));
	return 0;
}
C
cc -std=c17 -Wall -Wextra -Werror -o "$root/prog-shared" "$root/prog.c" $(pc --cflags --libs)
objdump -p "$root/prog-shared" | grep -q 'NEEDED *libiovm\.so\.0$' || fail "the shared program does not need libiovm.so.0"
LD_LIBRARY_PATH=$libdir ldd "$root/prog-shared" | grep -q "libiovm\.so\.0 => $libdir/libiovm\.so\.0 " ||
	fail "the shared program does not load the unpacked library"
[ "$(LD_LIBRARY_PATH=$libdir "$root/prog-shared")" = "$meson_version $meson_version" ] ||
	fail "the program linked shared ran wrong"
cc -std=c17 -Wall -Wextra -Werror -o "$root/prog-static" "$root/prog.c" $(pc --cflags) "$libdir/libiovm.a" -lpthread
objdump -p "$root/prog-static" | grep -q 'NEEDED *libiovm' && fail "the static program needs the shared library"
[ "$("$root/prog-static")" = "$meson_version $meson_version" ] || fail "the program linked statically ran wrong"
# The examples libiovm-dev ships build against it too.
for ex in "$root"/usr/share/doc/libiovm-dev/examples/*.c; do
	[ -f "$ex" ] || fail "libiovm-dev ships no examples"
	cc -std=c17 -Wall -Wextra -Werror -o "$root/example" "$ex" $(pc --cflags --libs)
	LD_LIBRARY_PATH=$libdir "$root/example" >/dev/null || fail "$(basename "$ex"), shipped, built and ran wrong"
done

# The unpacked command runs with the unpacked library, and looks for
# iovm-bench where the package puts it.
got=$(LD_LIBRARY_PATH=$libdir "$root/usr/bin/iovm" --version) || fail "iovm --version failed"
case $got in *"$meson_version"*) ;; *) fail "iovm --version says '$got', not $meson_version" ;; esac
grep -q /usr/libexec/iovm "$root/usr/bin/iovm" || fail "iovm does not look for iovm-bench in /usr/libexec/iovm"
# The unpacked Python module, on the unpacked library: DMA memory and its PA.
got=$(IOVM_LIBRARY=$libdir/libiovm.so.0 PYTHONPATH=$root/usr/lib/python3/dist-packages /usr/bin/python3 -c '
import iovm
with iovm.open("page_size=4K") as ctx:
    buf = ctx.buffer(b"from the package")
    assert buf.read() == b"from the package" and ctx.xlate(buf, 5).pa.addr == buf.pa + 5
    print(iovm.__file__)
') || fail "the unpacked python3-iovm does not work"
case $got in "$root"/usr/lib/python3/dist-packages/iovm/*) ;; *) fail "python imported '$got', not the unpacked module" ;; esac
echo "debian/ agrees with meson.build, LICENSE and src/libiovm.map; packages built, unpacked, built against (shared and static), ran"
