# SPDX-License-Identifier: MIT
#
# vm_lib.sh - what the VM test scripts (vm_test.sh, vm_rdma.sh) share,
# sourced: skipping and failing, QEMU and a static busybox (installed from
# Debian when missing, as root), Debian's guest kernel with the modules a
# test keeps, and packing an initramfs.

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

# vm_fail_recap LOG...: the guest's failed checks again, last, so that a
# log cut to its tail (CI shows only that) still names them.
vm_fail_recap() {
	local f
	f=$(grep -hE 'FAIL \(|FATAL:' "$@" 2>/dev/null | tr -d '\r' | head -20)
	[ -z "$f" ] || { echo "the guest's failed checks:"; sed 's/^ */  /' <<<"$f"; }
}

# vm_install PKG...: apt-get install as root; skips when that cannot be.
vm_install() {
	[ "$(id -u)" = 0 ] || skip "not root, and $* missing"
	echo "installing $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null 2>&1 &&
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1; } ||
		skip "cannot install $*"
}

vm_static_busybox() { [ -x /bin/busybox ] && LANG=C ldd /bin/busybox 2>&1 | grep -q "not a dynamic"; }

# QEMU and the initramfs's shell.
vm_need_qemu() {
	local need=()
	command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
	vm_static_busybox || need+=(busybox-static)
	[ ${#need[@]} -eq 0 ] || vm_install "${need[@]}"
	command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64"
	vm_static_busybox || skip "no static busybox"
}

# The guest kernel's package: Debian's, as linux-image-amd64 names it
# today, else the one CACHE holds. Prints its name.
vm_kernel_pkg() {
	local pkg
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: \(linux-image-[0-9][^ ]*\)/\1/p' | head -1)
	[ -n "$pkg" ] || pkg=$(ls "$CACHE" 2>/dev/null | sed -n 's/^\(linux-image-[0-9][^_]*\)_.*\.deb$/\1/p;s/^\(linux-image-[0-9][^_]*-amd64\)\(-[a-z]*\)\{0,1\}$/\1/p' | head -1)
	echo "$pkg"
}

# vm_module_deps FILE: the modules FILE depends on (modinfo's depends=,
# read from the module itself: the host may lack modinfo).
vm_module_deps() {
	case $1 in
	*.xz) xz -dc "$1" ;;
	*) cat "$1" ;;
	esac | tr '\0' '\n' | sed -n 's/^depends=//p' | head -1 | tr ',' ' '
}

# vm_unpack_kernel PKG DIR MODULE...: downloads PKG and keeps in DIR its
# kernel (DIR/vmlinuz) and the modules named, each a path under kernel/
# without .ko (drivers/vfio/vfio) or a bare name (rdma_rxe), with what they
# depend on, in DIR/modules, uncompressed, and DIR/modules/load-order
# (dependencies first). A module the package lacks is left out. Some
# megabytes of the package's 400; nothing is done if DIR/vmlinuz exists.
vm_unpack_kernel() {
	local pkg=$1 dir=$2 tmp mods m f b d
	shift 2
	[ -f "$dir/vmlinuz" ] && return 0
	tmp=$CACHE/unpack.$$
	rm -rf "$tmp" && mkdir -p "$tmp" || fail "cannot make $tmp"
	echo "fetching $pkg"
	(cd "$tmp" && apt-get download -q "$pkg" >/dev/null 2>&1) || { rm -rf "$tmp"; skip "cannot download $pkg"; }
	dpkg -x "$tmp"/"$pkg"_*.deb "$tmp/x" || { rm -rf "$tmp"; fail "cannot unpack $pkg"; }
	rm -rf "$dir.new" && mkdir -p "$dir.new/modules" || fail "cannot make $dir.new"
	cp "$tmp"/x/boot/vmlinuz-* "$dir.new/vmlinuz" || { rm -rf "$tmp"; fail "no kernel in $pkg"; }
	mods=$(ls -d "$tmp"/x/lib/modules/*/kernel | head -1)
	# name (dashes as underscores) -> file, for the bare names and the dependencies.
	find "$mods" -name '*.ko' -o -name '*.ko.xz' | sed 's/.*\/\([^/]*\)\.ko\(\.xz\)\{0,1\}$/\1 &/' |
		awk '{ n = $1; gsub("-", "_", n); print n, $2 }' >"$tmp/index"
	: >"$dir.new/modules/load-order"
	# keep FILE: its dependencies first, then FILE.
	keep() {
		local f=$1 b d df
		b=$(basename "$f" | sed 's/\.ko\(\.xz\)\{0,1\}$//')
		[ -f "$dir.new/modules/$b.ko" ] && return 0
		case $f in
		*.xz) xz -dc "$f" >"$dir.new/modules/$b.ko" ;;
		*) cp "$f" "$dir.new/modules/$b.ko" ;;
		esac || fail "cannot keep $b"
		for d in $(vm_module_deps "$f"); do
			df=$(awk -v n="$(echo "$d" | tr - _)" '$1 == n { print $2; exit }' "$tmp/index")
			[ -n "$df" ] && keep "$df"
		done
		echo "$b" >>"$dir.new/modules/load-order"
	}
	for m in "$@"; do
		case $m in
		*/*) f=$(ls "$mods/$m.ko" "$mods/$m.ko.xz" 2>/dev/null | head -1) ;;
		*) f=$(awk -v n="$(echo "$m" | tr - _)" '$1 == n { print $2; exit }' "$tmp/index") ;;
		esac
		[ -n "$f" ] && keep "$f"
	done
	rm -rf "$tmp" "$dir" && mv "$dir.new" "$dir" || fail "cannot keep $pkg in $dir"
}

# vm_pack ROOT OUT: ROOT as a gzip'ed newc initramfs, every file root's.
vm_pack() {
	(cd "$1" && find . | busybox cpio -o -H newc -R 0:0 2>/dev/null | gzip -1) >"$2" ||
		fail "cannot pack the initramfs"
}
