#!/bin/sh
# Install the Debian packages a target needs, when they are missing.
#   deps.sh build   compiler and build system
#   deps.sh check   the above, clang for the second compiler, its sanitizer and libFuzzer runtimes,
#                   groff for the docs test's check of the man pages
#   deps.sh bench   the peers the benchmarks compare against (optional)
#   deps.sh deb     the build's, dpkg-buildpackage and debhelper, and lintian (make deb)
#   deps.sh deb-build  the same but lintian (make check's deb leg, which skips it)
#   deps.sh rdma    the build's, and libibverbs' headers (libibverbs-dev, with the
#                   providers) to build the verbs backend against on the host;
#                   vm_rdma.sh needs none of it: it unpacks its own
set -eu

want=""
case "${1:-build}" in
build) want="gcc libc6-dev make meson ninja-build pkg-config libibverbs-dev" ;;
check) want="gcc libc6-dev make meson ninja-build pkg-config libibverbs-dev clang libclang-rt-dev groff-base" ;;
bench) want="gcc libc6-dev make meson ninja-build pkg-config libdpdk-dev libucx-dev libfabric-dev gnuplot-nox" ;;
deb) want="gcc libc6-dev make meson ninja-build pkg-config libibverbs-dev python3 build-essential debhelper dpkg-dev lintian" ;;
deb-build) want="gcc libc6-dev make meson ninja-build pkg-config libibverbs-dev python3 build-essential debhelper dpkg-dev" ;;
rdma) want="gcc libc6-dev make meson ninja-build pkg-config libibverbs-dev" ;;
*) echo "deps.sh: unknown target '$1'" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing Debian packages:$missing (run as root, or apt-get install them)" >&2
	exit 1
fi
echo "deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends $missing >/dev/null 2>&1 || {
	apt-get update >/dev/null
	apt-get install -y --no-install-recommends $missing >/dev/null
}
