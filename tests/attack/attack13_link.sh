#!/bin/sh
# SPDX-License-Identifier: MIT
# attack13_link.sh BUILD_DIR SOURCE_ROOT FAKE_LIB CC [SANITIZE]
# libiovm needs no libibverbs at link time: neither libiovm.so (no NEEDED
# entry, no undefined ibv_ symbol) nor libiovm.a (a program linked with it
# and without -libverbs links, and runs: "verbs:" refused with a detail
# saying what to install where the library is missing, and working
# against the stand-in library named by IOVM_VERBS_LIBRARY, which the
# program itself does not link).
set -eu
build=$1 src=$2 fake=$3 cc=$4 san=${5:-none}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

readelf -d "$build/libiovm.so" > "$tmp/dyn"
grep -q NEEDED "$tmp/dyn" || fail "readelf -d shows no NEEDED at all: a vacuous check"
if grep -i -E 'NEEDED.*(ibverbs|rdmacm|mlx)' "$tmp/dyn"; then fail "libiovm.so needs libibverbs"; fi
nm -D --undefined-only "$build/libiovm.so" > "$tmp/und"
if grep -E ' ibv_|verbs' "$tmp/und"; then fail "libiovm.so has undefined verbs symbols"; fi
nm "$build/libiovm.a" > "$tmp/anm" 2>/dev/null
grep -q ' T iovm_device_verbs' "$tmp/anm" || fail "libiovm.a lacks iovm_device_verbs: a vacuous check"
if grep -E ' U (ibv_|__ibv_|verbs_)' "$tmp/anm"; then fail "libiovm.a needs verbs symbols at link time"; fi
echo "ok - no libibverbs at link time (libiovm.so, libiovm.a)"

cat > "$tmp/prog.c" <<'EOC'
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <iovm.h>
int main(int argc, char **argv)
{
	struct iovm_ctx *c;
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	struct iovm_mr_info info;
	struct iovm_device_verbs v;
	void *buf = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int ret;

	if (argc < 2 || iovm_open("log_level=error", &c))
		return 2;
	ret = iovm_device_open(c, argv[1], &dev);
	printf("%s: %d %s\n", argv[1], ret, ret ? iovm_error_detail() : "");
	if (!strcmp(argv[2], "missing"))
		return !(ret == -EOPNOTSUPP && strstr(iovm_error_detail(), "libibverbs"));
	if (!strcmp(argv[2], "lacking"))
		return !(ret == -EOPNOTSUPP && *iovm_error_detail());
	if (!strcmp(argv[2], "nodev"))
		return !(ret == -ENODEV || ret == -EOPNOTSUPP);
	if (ret || iovm_device_verbs(dev, &v) || strcmp(v.name, "fake0") ||
	    iovm_domain_create(c, NULL, &dom) || iovm_device_attach(dev, dom, IOVM_PASID_NONE) ||
	    iovm_mr_reg(dom, buf, 65536, IOVM_ACCESS_REMOTE_WRITE, &mr) || iovm_mr_query(mr, &info) ||
	    info.iova.addr != (uintptr_t)buf || !info.lkey || iovm_mr_dereg(mr) ||
	    iovm_device_detach(dev, IOVM_PASID_NONE) || iovm_domain_destroy(dom) || iovm_device_close(dev))
		return 1;
	return iovm_close(c) ? 1 : 0;
}
EOC
sanflag=
[ "$san" = none ] || sanflag="-fsanitize=$san"
# shellcheck disable=SC2086
$cc -std=c17 -D_GNU_SOURCE $sanflag -I"$src/include" -o "$tmp/prog" "$tmp/prog.c" "$build/libiovm.a" -lpthread -ldl ||
	fail "a program does not link with libiovm.a alone"
if readelf -d "$tmp/prog" | grep -i -E 'NEEDED.*ibverbs'; then fail "the program needs libibverbs"; fi
if nm "$tmp/prog" | grep -E ' [TU] ibv_'; then fail "the program has verbs symbols"; fi
IOVM_VERBS_LIBRARY=/nonexistent/libibverbs.so.1 "$tmp/prog" verbs:fake0 missing || fail "library missing: not refused"
IOVM_VERBS_LIBRARY=libc.so.6 "$tmp/prog" verbs:fake0 lacking || fail "a library without verbs calls: not refused"
IOVM_VERBS_LIBRARY=$fake "$tmp/prog" verbs:fake0 works || fail "the stand-in library, loaded by a static libiovm"
# rdma-core's own where installed: no device of that name here.
env -u IOVM_VERBS_LIBRARY "$tmp/prog" verbs:iovm-nosuch nodev || fail "the real library, no such device"
echo "ok - a program linked with libiovm.a runs without libibverbs, and loads it at run time"
