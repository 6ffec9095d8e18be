#!/bin/sh
# deb.sh [OUTDIR] - the Debian packages libiovm0, libiovm-dev and iovm
# (debian/), built by dpkg-buildpackage from a copy of the tree, into OUTDIR
# (default build/deb) with the source package, .buildinfo and .changes,
# then checked by lintian (LINTIAN=no skips it): any error or warning fails.
# The copy holds what git tracks and the files it does not ignore, changes
# not yet committed included, so the build leaves the tree as it was and
# does the same from a fresh clone.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/build/deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$top"
version=$(dpkg-parsechangelog -S Version)
meson_version=$(sed -n "s/^[[:space:]]*version:[[:space:]]*'\([^']*\)'.*/\1/p" meson.build | head -n1)
[ "${version%-*}" = "$meson_version" ] || {
	echo "deb.sh: debian/changelog is at $version, meson.build at $meson_version:" \
		"add a changelog entry (dch -v $meson_version)" >&2
	exit 1
}
work=$out/work
src=$work/iovm-$version
start=$(date +%s)

rm -rf "$work"
rm -f "$out"/*.deb "$out"/*.ddeb "$out"/*.dsc "$out"/*.tar.* "$out"/*.buildinfo "$out"/*.changes \
	"$out"/lintian.txt
mkdir -p "$src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files -z --cached --others --exclude-standard |
		xargs -0 -r sh -c 'for f; do if [ -e "$f" ]; then printf "%s\0" "$f"; fi; done' sh |
		tar --null -T - -cf - | tar -xf - -C "$src"
else
	tar --exclude='./build*' --exclude='./obj-*' --exclude='./debian/tmp' -cf - . | tar -xf - -C "$src"
fi

# parallel: the machine's cores, unless DEB_BUILD_OPTIONS says.
opts=${DEB_BUILD_OPTIONS:-}
case " $opts " in *" parallel="*) ;; *) opts="${opts:+$opts }parallel=$(nproc)" ;; esac
(cd "$src" && DEB_BUILD_OPTIONS=$opts dpkg-buildpackage --no-sign) || {
	echo "deb.sh: dpkg-buildpackage failed in $src (left there for a look). If" \
		"dpkg-gensymbols shows a diff above, a function was added or removed:" \
		"debian/gen-symbols.sh says what to do." >&2
	exit 1
}
built=$(date +%s)

changes=$(ls "$work"/*.changes)
checked="lintian skipped (LINTIAN=no)"
if [ "${LINTIAN:-yes}" != no ]; then
	# Info tags shown too, among them unused-override: the day iovm(1)
	# exists, debian/iovm.lintian-overrides is to go. As root, lintian
	# says on stderr it would rather not be: not a tag.
	if ! lintian --fail-on error,warning --display-info "$changes" >"$out/lintian.txt" 2>&1; then
		cat "$out/lintian.txt"
		echo "deb.sh: lintian: errors or warnings (above)" >&2
		exit 1
	fi
	cat "$out/lintian.txt"
	checked="lintian clean in $(($(date +%s) - built)) s"
fi
mv "$work"/*.deb "$work"/*.dsc "$work"/*.tar.* "$work"/*.buildinfo "$work"/*.changes "$out"/
mv "$work"/*.ddeb "$out"/ 2>/dev/null || true
rm -rf "$work"
echo "deb.sh: $(cd "$out" && ls ./*.deb | sed 's,^\./,,' | tr '\n' ' ')in $out;" \
	"built in $((built - start)) s, $checked"
