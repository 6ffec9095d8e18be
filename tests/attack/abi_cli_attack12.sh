#!/bin/sh
# SPDX-License-Identifier: MIT
#
# abi_cli_attack12.sh BUILD_DIR SOURCE_ROOT - outside tests of iovm's ABI
# promises (README "ABI", include/iovm/version.h) and of the `iovm` command
# (README "The iovm command"), from the built artifacts and public headers
# only.
#
# Sections: P1 the shared library's exports, P2 libiovm.a's symbols (a
# program defining the library's internal names for itself), P3 version.h,
# P4 --version, P5 --help and exit statuses, P6 bench --json, P7 outputs
# that cannot be made, P8 --plot file names never reaching gnuplot's
# command language, P9 `iovm stat` sizes.
#
# Each check prints "ok ..." or "FAIL ..."; "note ..." lines are
# observations that no promise decides. Exit status 1 when a check failed,
# 77 when the artifacts are missing. Light on CPU: only --quick benches.
set -u
LC_ALL=C
export LC_ALL

if [ $# -lt 2 ]; then
	echo "usage: $0 BUILD_DIR SOURCE_ROOT" >&2
	exit 2
fi
B=$(cd "$1" && pwd) || exit 2
S=$(cd "$2" && pwd) || exit 2
IOVM=$B/tools/iovm
SO=$B/libiovm.so.0
AR=$B/libiovm.a
INC=$S/include
for f in "$IOVM" "$SO" "$AR" "$INC/iovm.h"; do
	[ -e "$f" ] || { echo "skip: $f missing"; exit 77; }
done
CC=${CC:-cc}
TO=$(command -v timeout) || { echo "skip: no timeout(1)"; exit 77; }
PY=$(command -v python3 || true)

T=$(mktemp -d "${TMPDIR:-/tmp}/iovm-a12.XXXXXX") || exit 2
cleanup() {
	chattr -i "$T/imm.json" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

nfail=0
npass=0
ok() { npass=$((npass + 1)); echo "ok   $*"; }
bad() { nfail=$((nfail + 1)); echo "FAIL $*"; }
note() { echo "note $*"; }
show() { # show FILE: a file's head, for a failure's detail
	sed -n '1,6p' "$1" | sed 's/^/       | /'
}

# run TIMEOUT CMD...: stdout in $T/out, stderr in $T/err, status in $rc. The
# timeout guards against a hang only: scaled (A12_TIMEOUT_SCALE, 6) so that a
# loaded machine (make check's other legs, one CPU) never trips it.
run() {
	_t=$(($1 * ${A12_TIMEOUT_SCALE:-6}))
	shift
	"$TO" -k 5 "$_t" "$@" >"$T/out" 2>"$T/err"
	rc=$?
}

NL='
'
V_HDR=$(sed -n 's/^#define IOVM_VERSION_STRING "\(.*\)"$/\1/p' "$INC/iovm/version.h")
echo "# iovm headers: $V_HDR; build $B"

# ---------------------------------------------------------------------------
# P1: libiovm.so.0 exports the headers' iovm_* functions, and nothing else,
# each under IOVM_0.
# ---------------------------------------------------------------------------
cat "$INC"/iovm.h "$INC"/iovm/*.h | tr '\n' ' ' | grep -o 'IOVM_API [^;{]*' |
	grep -v '__attribute__' |
	sed -E 's/^IOVM_API[^(]*[ *](iovm_[a-z0-9_]+)[ ]*\(.*/\1/' | sort -u >"$T/hdr.txt"
nm -D --defined-only "$SO" | awk '{print $2, $3}' >"$T/dyn_raw.txt"
awk '$2 != "IOVM_0"' "$T/dyn_raw.txt" | sed 's/@.*//' | awk '{print $2}' | sort -u >"$T/dyn.txt"
nh=$(wc -l <"$T/hdr.txt")
if [ "$nh" -lt 50 ] || grep -qv '^iovm_[a-z0-9_]*$' "$T/hdr.txt"; then
	bad "P1 could not list the headers' functions ($nh)"
elif cmp -s "$T/hdr.txt" "$T/dyn.txt"; then
	ok "P1 libiovm.so.0 exports exactly the $nh iovm_* functions of the headers"
else
	bad "P1 exports differ from the headers' functions (< headers only, > exported only):"
	diff "$T/hdr.txt" "$T/dyn.txt" | sed 's/^/       | /' | head -20
fi
unver=$(awk '$2 != "IOVM_0" && $2 !~ /@@IOVM_0$/' "$T/dyn_raw.txt")
nottext=$(awk '$2 != "IOVM_0" && $1 != "T"' "$T/dyn_raw.txt")
if [ -z "$unver" ] && [ -z "$nottext" ]; then
	ok "P1 every exported symbol is a function under the default version IOVM_0"
else
	bad "P1 exported symbols outside IOVM_0 or not functions: $unver $nottext"
fi
vdefs=$(readelf -W -V "$SO" | sed -n '/Version definition/,/Version needs/p' |
	grep -o 'Name: [^ ]*' | sed 's/Name: //' | sort -u | tr '\n' ' ')
case $vdefs in
*IOVM_0*) ok "P1 version definitions: $vdefs" ;;
*) bad "P1 no IOVM_0 version node ($vdefs)" ;;
esac
soname=$(readelf -d "$SO" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = libiovm.so.0 ] && ok "P1 soname libiovm.so.0" || bad "P1 soname is '$soname'"
# Undefined references that a program's own names could satisfy (anything
# not from the C library) would let a program's symbol replace the library's.
undef=$(readelf -W --dyn-syms "$SO" | awk '$7 == "UND" && $8 != "" {print $8}' |
	grep -v '@GLIBC_' | grep -v '^_ITM_\|^__gmon_start__\|^__cxa_finalize' | tr '\n' ' ')
[ -z "$undef" ] && ok "P1 the .so needs nothing but libc" ||
	bad "P1 the .so has undefined non-libc references: $undef"

# ---------------------------------------------------------------------------
# P2: libiovm.a is one relocatable object; its only globals are the API; a
# program may define the library's internal names for itself.
# ---------------------------------------------------------------------------
members=$(ar t "$AR" | tr '\n' ' ')
nmem=$(ar t "$AR" | wc -l)
[ "$nmem" -eq 1 ] && ok "P2 libiovm.a holds one object ($members)" ||
	bad "P2 libiovm.a holds $nmem members: $members"
# defined globals (any upper-case type but U), weak and common included
nm "$AR" 2>/dev/null | awk 'NF == 3 && $2 ~ /^[A-TV-Zuvw]$/ {print $2, $3}' >"$T/a_glob_raw.txt"
awk '{print $2}' "$T/a_glob_raw.txt" | sort -u >"$T/a_glob.txt"
if cmp -s "$T/a_glob.txt" "$T/hdr.txt"; then
	ok "P2 libiovm.a's defined globals are exactly the $nh API functions"
else
	bad "P2 libiovm.a's defined globals differ from the API (< API, > archive):"
	diff "$T/hdr.txt" "$T/a_glob.txt" | sed 's/^/       | /' | head -20
fi
weak=$(readelf -W -s "$AR" | awk '$5 == "WEAK" || $5 == "UNIQUE" || $5 == "GNU_UNIQUE" {print $8}' | tr '\n' ' ')
[ -z "$weak" ] && ok "P2 no weak or unique symbols in libiovm.a" || bad "P2 weak/unique symbols: $weak"
hidden=$(readelf -W -s "$AR" | awk '$5 == "GLOBAL" && $6 != "DEFAULT" && $7 != "UND" {print $8}' | tr '\n' ' ')
[ -z "$hidden" ] || note "P2 globals with non-default visibility: $hidden"

# Names a program may not define for reasons of its own: the C library's
# and libm's, and reserved ones.
{
	for l in /lib/x86_64-linux-gnu/libc.so.6 /lib/x86_64-linux-gnu/libm.so.6 \
		/lib64/ld-linux-x86-64.so.2 /lib/x86_64-linux-gnu/libgcc_s.so.1; do
		[ -e "$l" ] && nm -D --defined-only "$l" 2>/dev/null | awk '{print $3}' | sed 's/@.*//'
	done
	echo main
} | sort -u >"$T/sysnames.txt"
# The archive's local names: functions (t) and objects (b, d, r), no
# compiler-made names (with a dot), no reserved ones (leading _).
nm "$AR" | awk 'NF == 3 && $2 ~ /^[bdrt]$/ {print $2, $3}' |
	grep -E ' [A-Za-z][A-Za-z0-9_]*$' >"$T/a_local_raw.txt"
awk '$1 == "t" {print $2}' "$T/a_local_raw.txt" | sort -u >"$T/lf0.txt"
awk '$1 != "t" {print $2}' "$T/a_local_raw.txt" | sort -u | comm -23 - "$T/lf0.txt" >"$T/lv0.txt"
# common names a user might pick, whether or not the library has them
extra="log_msg crc32c rb_insert rb_erase rb_first rb_next iova_alloc iova_free \
epoch_enter epoch_exit epoch_init epoch_synchronize mutex_lock mutex_unlock mutex_init \
list_add list_del list_init list_empty list_push list_remove phys_alloc phys_free phys_map \
mem_alloc mem_free mem_create pt_map pt_unmap pt_walk hash_add hash_init spin_lock \
spin_unlock bitmap_set bitmap_clear xmalloc xcalloc xstrdup die panic fatal log_init \
config_parse align_up align_down round_up is_pow2 ilog2 now_ns gettid_cached"
for n in $extra; do echo "$n"; done | sort -u | comm -23 - "$T/lv0.txt" |
	sort -u - "$T/lf0.txt" | comm -23 - "$T/sysnames.txt" >"$T/lf.txt"
comm -23 "$T/lv0.txt" "$T/sysnames.txt" >"$T/lv.txt"
nlf=$(wc -l <"$T/lf.txt")
nlv=$(wc -l <"$T/lv.txt")
skipped=$(cat "$T/lf0.txt" "$T/lv0.txt" | sort -u | comm -12 - "$T/sysnames.txt" | tr '\n' ' ')
echo "# P2: $nlf function names and $nlv variable names to define (left out, the C library's: ${skipped:-none})"

# gen_defs FUNCS VARS OUT: strong definitions of those names
gen_defs() {
	awk -v fl="$1" -v vl="$2" 'BEGIN {
		print "/* generated: strong definitions of libiovm.a'"'"'s local names */"
		nf = 0; while ((getline n < fl) > 0) f[nf++] = n
		nv = 0; while ((getline n < vl) > 0) v[nv++] = n
		printf "volatile int a12_called[%d];\n", nf + 1
		for (i = 0; i < nf; i++) {
			printf "int %s(void);\nint %s(void) { a12_called[%d]++; return %d; }\n", f[i], f[i], i, 4242000 + i
		}
		for (i = 0; i < nv; i++)
			printf "long %s[2] = { %dL, %dL };\n", v[i], 5151000 + i, 5151000 + i
		printf "const int a12_nf = %d, a12_nv = %d;\n", nf, nv
		printf "int (*const a12_f[])(void) = {"
		for (i = 0; i < nf; i++) printf " %s,", f[i]
		printf " 0 };\nconst char *const a12_fn[] = {"
		for (i = 0; i < nf; i++) printf " \"%s\",", f[i]
		printf " 0 };\nlong *const a12_v[] = {"
		for (i = 0; i < nv; i++) printf " %s,", v[i]
		printf " 0 };\nconst char *const a12_vn[] = {"
		for (i = 0; i < nv; i++) printf " \"%s\",", v[i]
		printf " 0 };\n"
	}' >"$3"
}

cat >"$T/p2main.c" <<'EOF'
#include <iovm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern volatile int a12_called[];
extern const int a12_nf, a12_nv;
extern int (*const a12_f[])(void);
extern const char *const a12_fn[];
extern long *const a12_v[];
extern const char *const a12_vn[];

static int nlog;
static void logfn(void *arg, enum iovm_log_level level, const char *msg)
{
	(void)arg; (void)level; (void)msg;
	nlog++;
}

static int untouched(const char *when)
{
	int bad = 0;
	for (int i = 0; i < a12_nf; i++)
		if (a12_called[i]) {
			printf("program's %s() was called %s\n", a12_fn[i], when);
			bad = 1;
		}
	for (int i = 0; i < a12_nv; i++)
		if (a12_v[i][0] != 5151000 + i || a12_v[i][1] != 5151000 + i) {
			printf("program's variable %s changed %s: %ld %ld\n", a12_vn[i], when,
			       a12_v[i][0], a12_v[i][1]);
			bad = 1;
		}
	return bad;
}

#define CHECK(c) do { if (!(c)) { printf("failed: %s (line %d): %s\n", #c, __LINE__, \
	iovm_error_detail()); return 1; } } while (0)

int main(void)
{
	struct iovm_ctx *ctx = NULL, *c2 = NULL;
	static const size_t sizes[] = { 1, 64, 4096, 65536, 2u << 20, (2u << 20) + 1, 8u << 20 };
	unsigned num = 0;

	if (untouched("before main's calls"))
		return 1;
	CHECK(strcmp(iovm_version(&num), IOVM_VERSION_STRING) == 0 && num == IOVM_VERSION);
	CHECK(iovm_log_set_handler(logfn, NULL) == 0);
	CHECK(iovm_log_set_level(IOVM_LOG_DEBUG) == 0);
	CHECK(iovm_open("no_such_option_a12=1", &c2) < 0);
	CHECK(iovm_error_detail()[0] != 0);
	CHECK(iovm_open("", &ctx) == 0);
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		iovm_pa_t pa;
		void *p = iovm_dma_alloc(ctx, sizes[i], 0, 0);
		CHECK(p != NULL);
		memset(p, 0xa5, sizes[i]);
		CHECK(iovm_dma_pa(ctx, p, &pa) == 0);
		CHECK(iovm_dma_size(ctx, p) >= sizes[i]);
		CHECK(iovm_dma_free(ctx, p) == 0);
	}
	unsigned char *z = iovm_dma_zalloc(ctx, 3 << 20, 4096, 0);
	CHECK(z != NULL && z[0] == 0 && z[(3 << 20) - 1] == 0);
	{
		struct iovm_domain *dom = NULL;
		iovm_iova_t iova;
		iovm_pa_t pa, pa2;
		uint32_t perm = 0;
		CHECK(iovm_domain_create(ctx, NULL, &dom) == 0);
		CHECK(iovm_domain_map_ptr(dom, z, 1 << 20, IOVM_MAP_READ | IOVM_MAP_WRITE, &iova) == 0);
		CHECK(iovm_domain_translate(dom, iova, &pa, &perm) == 0);
		CHECK(iovm_dma_pa(ctx, z, &pa2) == 0 && pa.addr == pa2.addr);
		CHECK(iovm_domain_unmap(dom, iova, 1 << 20) == 0);
		CHECK(iovm_domain_destroy(dom) == 0);
	}
	CHECK(iovm_dma_free(ctx, z) == 0);
	{
		struct iovm_mem_stats st;
		memset(&st, 0, sizeof(st));
		CHECK(iovm_mem_stats(ctx, &st) == 0);
	}
	CHECK(iovm_close(ctx) == 0);
	iovm_log_set_handler(NULL, NULL);
	if (untouched("by the library"))
		return 1;
	/* the program's own versions are the ones its calls reach */
	for (int i = 0; i < a12_nf; i++) {
		int r = a12_f[i]();
		if (r != 4242000 + i || a12_called[i] != 1) {
			printf("program's %s() returned %d, called %d times\n", a12_fn[i], r, a12_called[i]);
			return 1;
		}
	}
	for (int i = 0; i < a12_nv; i++)
		a12_v[i][1]++;
	printf("A12 OK functions=%d variables=%d log_messages=%d\n", a12_nf, a12_nv, nlog);
	return 0;
}
EOF

cd "$T" || exit 1
gen_defs "$T/lf.txt" "$T/lv.txt" "$T/defs.c"
gen_defs "$T/lv.txt" "$T/lf.txt" "$T/defs_swap.c" # the other way round
CFL="-O1 -g0 -fno-builtin -w"
if ! $CC -std=gnu17 -O1 -I"$INC" -c p2main.c -o p2main.o 2>cc.err; then
	bad "P2 p2main.c does not compile"; show cc.err
fi
$CC $CFL -c defs.c -o defs.o 2>cc1.err || { bad "P2 defs.c does not compile"; show cc1.err; }
$CC $CFL -c defs_swap.c -o defs_swap.o 2>cc2.err || { bad "P2 defs_swap.c does not compile"; show cc2.err; }

# p2_link LABEL OUT LINK-ARGS...: link, run, expect the A12 OK line
p2_link() {
	_l=$1
	_o=$2
	shift 2
	if ! $CC -o "$_o" "$@" >link.err 2>&1; then
		bad "P2 $_l: link failed: $CC -o $_o $*"
		grep -v '^/usr/bin/ld: warning' link.err | head -8 | sed 's/^/       | /'
		return
	fi
	run 60 "./$_o"
	if [ $rc -eq 0 ] && grep -q '^A12 OK' "$T/out"; then
		ok "P2 $_l: links, runs, iovm works, own names stay the program's ($(grep '^A12 OK' "$T/out" | cut -c8-))"
	else
		bad "P2 $_l: ./$_o exit $rc"
		show "$T/out"
		show "$T/err"
	fi
}
p2_link "static libiovm.a, PIE, functions+variables" p2_pie p2main.o defs.o "$AR" -lpthread
p2_link "static libiovm.a, kinds swapped" p2_swap p2main.o defs_swap.o "$AR" -lpthread
p2_link "static libiovm.a, -no-pie" p2_nopie -no-pie p2main.o defs.o "$AR" -lpthread
p2_link "static libiovm.a, definitions after the archive" p2_after p2main.o "$AR" defs.o -lpthread
if [ -e /usr/lib/x86_64-linux-gnu/libc.a ]; then
	p2_link "fully -static" p2_static -static p2main.o defs.o "$AR" -lpthread
else
	note "P2 no libc.a: fully static link not tried"
fi
p2_link "shared libiovm.so, -rdynamic (program exports the names)" p2_dyn \
	-rdynamic p2main.o defs.o -L"$B" -liovm -Wl,-rpath,"$B"
# Expected failure: a program that defines an API name as well.
cat >dup.c <<'EOF'
const char *iovm_version(unsigned *n) { (void)n; return "x"; }
EOF
$CC -c dup.c -o dup.o 2>/dev/null
if $CC -o p2_dup p2main.o defs.o dup.o "$AR" -lpthread >dup.err 2>&1; then
	note "P2 a second iovm_version linked beside libiovm.a without a complaint"
else
	ok "P2 a program defining iovm_version beside libiovm.a fails to link (expected)"
fi
# The references in the built program go to IOVM_0.
if readelf -W --dyn-syms p2_dyn 2>/dev/null | grep -q 'iovm_open@IOVM_0'; then
	ok "P1 a program linked with -liovm references iovm_open@IOVM_0"
else
	bad "P1 a program linked with -liovm does not reference iovm_open@IOVM_0"
fi
# dlopen: no internal name is reachable, the API is under IOVM_0.
cat >dl.c <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv)
{
	void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	int bad = 0;
	if (!h) { printf("dlopen: %s\n", dlerror()); return 1; }
	for (int i = 2; i < argc; i++)
		if (dlsym(h, argv[i])) { printf("internal name %s is visible\n", argv[i]); bad = 1; }
	if (!dlvsym(h, "iovm_version", "IOVM_0")) { printf("no iovm_version@IOVM_0\n"); bad = 1; }
	return bad;
}
EOF
if $CC -o dl dl.c -ldl 2>/dev/null; then
	run 30 ./dl "$SO" $(head -n 300 "$T/lf0.txt") $(cat "$T/lv0.txt")
	[ $rc -eq 0 ] && ok "P1 dlsym finds none of the internal names in libiovm.so.0, dlvsym(IOVM_0) finds the API" ||
		{ bad "P1 dlopen/dlsym check"; show "$T/out"; }
fi

# ---------------------------------------------------------------------------
# P3: version.h - macros, iovm_version(), C17 and C++ compiles.
# ---------------------------------------------------------------------------
cat >ver.c <<'EOF'
#include <iovm/version.h>
#include <stdio.h>
#include <string.h>

#if !defined(IOVM_VERSION_MAJOR) || !defined(IOVM_VERSION_MINOR) || !defined(IOVM_VERSION_PATCH)
#error "no IOVM_VERSION_MAJOR/MINOR/PATCH"
#endif
#if IOVM_VERSION != IOVM_VERSION_MAJOR * 10000 + IOVM_VERSION_MINOR * 100 + IOVM_VERSION_PATCH
#error "IOVM_VERSION is not 10000 * major + 100 * minor + patch"
#endif
#if !IOVM_VERSION_AT_LEAST(IOVM_VERSION_MAJOR, IOVM_VERSION_MINOR, IOVM_VERSION_PATCH)
#error "AT_LEAST(own version) is false"
#endif
#if IOVM_VERSION_AT_LEAST(IOVM_VERSION_MAJOR, IOVM_VERSION_MINOR, IOVM_VERSION_PATCH + 1)
#error "AT_LEAST(next patch) is true"
#endif
#if IOVM_VERSION_AT_LEAST(IOVM_VERSION_MAJOR, IOVM_VERSION_MINOR + 1, 0)
#error "AT_LEAST(next minor) is true"
#endif
#if IOVM_VERSION_AT_LEAST(IOVM_VERSION_MAJOR + 1, 0, 0)
#error "AT_LEAST(next major) is true"
#endif
#if !IOVM_VERSION_AT_LEAST(0, 0, 0)
#error "AT_LEAST(0.0.0) is false"
#endif
/* arguments are expressions */
#if IOVM_VERSION_AT_LEAST(IOVM_VERSION_MAJOR, 1 ? IOVM_VERSION_MINOR + 1 : 0, 0)
#error "AT_LEAST with an expression argument"
#endif
#if IOVM_VERSION_MINOR > 0 && !IOVM_VERSION_AT_LEAST(IOVM_VERSION_MAJOR, IOVM_VERSION_MINOR - 1, 99)
#error "AT_LEAST(previous minor .99) is false"
#endif

int main(void)
{
	char want[64];
	unsigned n = 12345u, n2 = 0;
	const char *s1, *s2;

	snprintf(want, sizeof(want), "%d.%d.%d", IOVM_VERSION_MAJOR, IOVM_VERSION_MINOR, IOVM_VERSION_PATCH);
	if (strcmp(want, IOVM_VERSION_STRING) != 0) {
		printf("IOVM_VERSION_STRING %s is not %s\n", IOVM_VERSION_STRING, want);
		return 1;
	}
	s1 = iovm_version(NULL);
	s2 = iovm_version(&n);
	iovm_version(&n2);
	if (!s1 || !s2 || s1 != s2 || strcmp(s1, IOVM_VERSION_STRING) != 0) {
		printf("iovm_version(): '%s' '%s', headers %s\n", s1 ? s1 : "(null)", s2 ? s2 : "(null)",
		       IOVM_VERSION_STRING);
		return 1;
	}
	if (n != IOVM_VERSION || n2 != IOVM_VERSION) {
		printf("iovm_version(&n): %u %u, headers %d\n", n, n2, IOVM_VERSION);
		return 1;
	}
	printf("version %s %u\n", s1, n);
	return 0;
}
EOF
WFL="-Wall -Wextra -Werror -pedantic"
for std in c17 c11 gnu17; do
	if $CC -std=$std $WFL -I"$INC" -o ver_$std ver.c -L"$B" -liovm -Wl,-rpath,"$B" 2>ver.err; then
		run 20 ./ver_$std
		[ $rc -eq 0 ] && ok "P3 version.h, -std=$std $WFL: macros agree, iovm_version() (.so) = $(cat "$T/out")" ||
			{ bad "P3 -std=$std run"; show "$T/out"; }
	else
		bad "P3 version.h does not compile with -std=$std $WFL"
		show ver.err
	fi
done
if $CC -std=c17 $WFL -I"$INC" -o ver_a ver.c "$AR" -lpthread 2>ver.err; then
	run 20 ./ver_a
	[ $rc -eq 0 ] && ok "P3 iovm_version() of libiovm.a agrees with the headers" ||
		{ bad "P3 libiovm.a iovm_version"; show "$T/out"; }
else
	bad "P3 ver.c with libiovm.a does not link"; show ver.err
fi
if $CC -std=c17 $WFL -Wundef -Wstrict-prototypes -Wshadow -I"$INC" -fsyntax-only ver.c 2>ver.err; then
	ok "P3 version.h clean with -Wundef -Wstrict-prototypes -Wshadow too"
else
	note "P3 version.h warns with -Wundef -Wstrict-prototypes -Wshadow:"; show ver.err
fi
printf '#include <iovm.h>\nint main(void) { return 0; }\n' >all.c
$CC -std=c17 $WFL -I"$INC" -fsyntax-only all.c 2>all.err &&
	ok "P3 <iovm.h> compiles in C17 with $WFL" || { bad "P3 <iovm.h> fails C17 $WFL"; show all.err; }
if command -v clang >/dev/null 2>&1; then
	clang -std=c17 $WFL -I"$INC" -fsyntax-only ver.c 2>ver.err &&
		ok "P3 version.h compiles with clang -std=c17 $WFL" || { bad "P3 clang"; show ver.err; }
fi
CXX=${CXX:-g++}
if command -v "$CXX" >/dev/null 2>&1; then
	cat >ver.cc <<'EOF'
#include <iovm/version.h>
#include <cstdio>
#include <cstring>
static_assert(IOVM_VERSION == IOVM_VERSION_ENCODE(IOVM_VERSION_MAJOR, IOVM_VERSION_MINOR, IOVM_VERSION_PATCH), "encode");
static_assert(IOVM_VERSION_AT_LEAST(IOVM_VERSION_MAJOR, IOVM_VERSION_MINOR, IOVM_VERSION_PATCH), "at least");
static_assert(!IOVM_VERSION_AT_LEAST(IOVM_VERSION_MAJOR, IOVM_VERSION_MINOR, IOVM_VERSION_PATCH + 1), "not at least");
int main()
{
	unsigned n = 0;
	const char *s = iovm_version(&n);
	if (std::strcmp(s, IOVM_VERSION_STRING) != 0 || n != IOVM_VERSION) {
		std::printf("C++: iovm_version() %s %u\n", s, n);
		return 1;
	}
	return 0;
}
EOF
	for std in c++17 c++11 c++20; do
		if $CXX -std=$std -Wall -Wextra -Werror -pedantic -I"$INC" -o vercc ver.cc -L"$B" -liovm \
			-Wl,-rpath,"$B" 2>cxx.err; then
			run 20 ./vercc
			[ $rc -eq 0 ] && ok "P3 version.h in C++ ($CXX -std=$std -Wall -Wextra -Werror -pedantic), links, agrees" ||
				{ bad "P3 C++ $std run"; show "$T/out"; }
		else
			if [ $std = c++17 ]; then bad "P3 C++ -std=$std compile"; else note "P3 C++ -std=$std compile fails"; fi
			show cxx.err
		fi
	done
	printf '#include <iovm.h>\nint main() { return 0; }\n' >all.cc
	$CXX -std=c++17 -Wall -Wextra -Werror -pedantic -I"$INC" -fsyntax-only all.cc 2>allcc.err &&
		ok "P3 <iovm.h> compiles in C++17 with -Wall -Wextra -Werror -pedantic" ||
		{ note "P3 <iovm.h> (not only version.h) fails in C++17 -pedantic:"; show allcc.err; }
else
	note "P3 no C++ compiler"
fi
vfile=$(readlink "$SO")
case $vfile in
*".so.$V_HDR") ok "P3 the shared library's file name ($vfile) has the headers' version" ;;
*) note "P3 libiovm.so.0 -> $vfile, headers $V_HDR" ;;
esac

# ---------------------------------------------------------------------------
# P4: iovm --version / iovm version
# ---------------------------------------------------------------------------
for a in --version version; do
	run 20 "$IOVM" $a
	want="iovm $V_HDR (library $V_HDR)"
	if [ $rc -eq 0 ] && [ "$(cat "$T/out")" = "$want" ] && [ ! -s "$T/err" ] &&
		[ "$(wc -l <"$T/out")" -eq 1 ]; then
		ok "P4 iovm $a: '$want', exit 0, nothing on stderr"
	else
		bad "P4 iovm $a: exit $rc, stdout '$(cat "$T/out")', stderr '$(head -c 200 "$T/err")'"
	fi
done
# The library part is the running library's: a library whose iovm_version()
# says 7.8.9 must show as (library 7.8.9).
cat >shim.c <<'EOF'
const char *iovm_version(unsigned *n) { if (n) *n = 70809; return "7.8.9"; }
EOF
printf 'IOVM_0 { global: iovm_version; local: *; };\n' >shim.map
if $CC -shared -fPIC -o libshim.so shim.c -Wl,--version-script=shim.map 2>/dev/null; then
	run 20 env LD_PRELOAD="$T/libshim.so" ./ver_c17
	shim_works=$(grep -c 'iovm_version(): .7\.8\.9' "$T/out")
	run 20 env LD_PRELOAD="$T/libshim.so" "$IOVM" --version
	if [ "$shim_works" -ge 1 ]; then
		if [ "$(cat "$T/out")" = "iovm $V_HDR (library 7.8.9)" ]; then
			ok "P4 --version reports the running library's version (7.8.9 from a stand-in library)"
		else
			bad "P4 with a library whose iovm_version() is 7.8.9, iovm --version says '$(cat "$T/out")'"
		fi
	else
		note "P4 the stand-in library did not take the place of iovm_version(); check skipped"
	fi
fi

# ---------------------------------------------------------------------------
# P5: --help / -h anywhere after the command; exit statuses
# ---------------------------------------------------------------------------
SH=a12help$$
help_case() { # CMD ARGS...
	_c=$1
	nhelp=$((nhelp + 1))
	run 30 "$IOVM" "$@"
	_first=$(head -n 1 "$T/out")
	case $_first in
	"usage: iovm $_c"*)
		if [ $rc -eq 0 ] && [ ! -s "$T/err" ]; then
			npass=$((npass + 1))
		else
			bad "P5 iovm $*: exit $rc, stderr '$(head -c 200 "$T/err")'"
		fi
		;;
	*) bad "P5 iovm $*: exit $rc, stdout begins '$_first', stderr '$(head -c 200 "$T/err")'" ;;
	esac
}
f0=$nfail
nhelp=0
for h in --help -h; do
	help_case info $h
	help_case info --json $h
	help_case demo $h
	help_case demo page_size=4K $h
	help_case stat $h
	help_case stat --json $h
	help_case stat 4K 8K $h
	help_case stat 1X $h
	help_case bench $h
	help_case bench mem $h
	help_case bench reg --quick --no-dpdk $h
	help_case bench iommu --json $h
	help_case bench placement $h
	help_case bench mp $h
	help_case bench vfio $h
	help_case bench reg --json-out "$T/help.json" $h
	help_case device-server $h
	help_case device-server a12dev $h
	help_case device-server a12dev --share $SH $h
	help_case device-server a12dev --share $SH --own 1M --workers 2 $h
done
help_case stat --help 4K
help_case bench --help reg
help_case device-server --help a12dev --share $SH
[ -e "$T/help.json" ] && bad "P5 'bench reg --json-out F --help' wrote F (the bench ran)"
ls -a /dev/shm 2>/dev/null | grep -q "$SH" && bad "P5 a --help device-server left $SH in /dev/shm"
[ $nfail -eq $f0 ] && ok "P5 --help/-h, anywhere after info/demo/stat/bench/device-server: usage on stdout, stderr empty, exit 0 ($nhelp cases)"

# bad command lines: exit 2 and something on stderr
bad_cl() { # DESC ARGS...
	_d=$1
	shift
	run 60 "$IOVM" "$@"
	if [ $rc -eq 2 ] && [ -s "$T/err" ]; then
		npass=$((npass + 1))
		grep -q 'usage: iovm' "$T/err" || note "P5 iovm $*: exit 2 with a message but no usage on stderr: $(head -n1 "$T/err")"
	else
		bad "P5 iovm $* ($_d): exit $rc (want 2), stderr '$(head -c 160 "$T/err" | tr '\n' ' ')'"
	fi
}
f0=$nfail
bad_cl "unknown command" nosuchcmd
bad_cl "unknown option as command" --nosuch
bad_cl "no command"
bad_cl "unknown option" info --bogus
bad_cl "extra argument" info extra
bad_cl "unknown option" stat --bogus
bad_cl "no bench name" bench
bad_cl "unknown bench" bench nosuch
bad_cl "unknown option" bench reg --quick --no-dpdk --bogus
bad_cl "missing value" bench reg --quick --no-dpdk --json-out
bad_cl "missing value" bench reg --quick --no-dpdk --plot
bad_cl "non-numeric --hugepages" bench iommu --quick --no-dpdk --hugepages abc
bad_cl "empty --hugepages" bench iommu --quick --no-dpdk --hugepages ''
bad_cl "no NAME" device-server
bad_cl "no --share" device-server a12dev
bad_cl "--workers 0" device-server a12dev --share $SH --workers 0
bad_cl "--workers abc" device-server a12dev --share $SH --workers abc
bad_cl "--stats -1" device-server a12dev --share $SH --stats -1
bad_cl "--own 1X" device-server a12dev --share $SH --own 1X
bad_cl "extra argument" --version extra
bad_cl "extra argument" demo page_size=4K extra
bad_cl "an option, not IOVM options" demo --bogus
[ $nfail -eq $f0 ] && ok "P5 bad command lines exit 2 with a message on stderr (22 cases)"
# a call that fails: exit 1, why on stderr
run 30 "$IOVM" device-server a12dev --share a12nosuchshare$$
[ $rc -eq 1 ] && [ -s "$T/err" ] && ok "P5 device-server on a missing share: exit 1, '$(head -n1 "$T/err" | cut -c1-80)...'" ||
	bad "P5 device-server on a missing share: exit $rc"
run 60 "$IOVM" bench iommu --quick --no-dpdk --opts no_such_opt=1
[ $rc -eq 1 ] && [ -s "$T/err" ] && ok "P5 bench --opts with an unknown option: exit 1, why on stderr" ||
	bad "P5 bench --opts no_such_opt=1: exit $rc"

# ---------------------------------------------------------------------------
# P6: bench NAME --json: stdout is one JSON document; --json-out the same
# ---------------------------------------------------------------------------
json_ok() { # FILE: exactly one strict JSON document
	"$PY" -c '
import json, sys
def const(x): raise ValueError("not JSON: " + x)
d = json.load(open(sys.argv[1]), parse_constant=const)
assert isinstance(d, (list, dict)) and d, "empty document"
' "$1" 2>"$T/py.err"
}
if [ -z "$PY" ]; then
	note "P6 no python3: JSON checks skipped"
else
	for spec in "reg --quick --no-dpdk" "iommu --quick --no-dpdk" "mem --quick --no-dpdk --hugepages 0"; do
		name=${spec%% *}
		rm -f "$T/j_$name.json"
		# shellcheck disable=SC2086
		run 300 "$IOVM" bench $spec --json --json-out "$T/j_$name.json"
		if [ $rc -ne 0 ]; then
			bad "P6 iovm bench $spec --json --json-out F: exit $rc"; show "$T/err"; continue
		fi
		if json_ok "$T/out"; then
			ok "P6 bench $spec --json: stdout is one strict JSON document ($(wc -c <"$T/out") bytes)"
		else
			bad "P6 bench $spec --json: stdout is not one JSON document: $(tail -n1 "$T/py.err")"
			show "$T/out"
		fi
		[ -s "$T/err" ] || bad "P6 bench $spec --json: no table on stderr"
		if cmp -s "$T/out" "$T/j_$name.json"; then
			ok "P6 bench $spec: --json stdout and --json-out file are identical"
		else
			bad "P6 bench $spec: --json stdout and --json-out file differ"
			cmp "$T/out" "$T/j_$name.json" 2>&1 | head -2 | sed 's/^/       | /'
		fi
	done
	run 60 "$IOVM" bench iommu --quick --no-dpdk --json
	[ $rc -eq 0 ] && json_ok "$T/out" && ok "P6 bench iommu --quick --no-dpdk --json alone: one JSON document" ||
		bad "P6 bench iommu --json alone: exit $rc / $(tail -n1 "$T/py.err")"
	run 60 "$IOVM" bench iommu --quick --no-dpdk --json --plot "$T/j.svg"
	if command -v gnuplot >/dev/null 2>&1; then
		[ $rc -eq 0 ] && json_ok "$T/out" && ok "P6 --json with --plot: stdout still one JSON document" ||
			bad "P6 --json --plot: exit $rc / $(tail -n1 "$T/py.err")"
	else
		# No chart to make: the run fails (P7 says how), its JSON must not.
		json_ok "$T/out" && ok "P6 --json with --plot, no gnuplot: stdout still one JSON document (exit $rc)" ||
			bad "P6 --json --plot without gnuplot: stdout is not one JSON document: $(tail -n1 "$T/py.err")"
	fi
fi

# ---------------------------------------------------------------------------
# P7: outputs that cannot be made fail the run (exit 1, why on stderr),
# nothing half-written left. Device nodes are private copies (mknod) so
# that nothing of the system's /dev is at stake.
# ---------------------------------------------------------------------------
BQ="bench iommu --quick --no-dpdk"
mkdir -p "$T/adir"
echo old >"$T/imm.json"
chattr +i "$T/imm.json" 2>/dev/null && have_imm=1 || have_imm=0
mkfull() { rm -f "$1"; mknod -m 666 "$1" c 1 7 2>/dev/null; }
p7() { # DESC OPTION PATH [more args]: expect exit 1 and a reason on stderr
	_d=$1
	_opt=$2
	_p=$3
	shift 3
	# shellcheck disable=SC2086
	run 120 "$IOVM" $BQ "$@" "$_opt" "$_p"
	if [ $rc -eq 1 ] && grep -q . "$T/err"; then
		ok "P7 $_opt $_d: exit 1, '$(tail -n1 "$T/err" | cut -c1-90)'"
	else
		bad "P7 iovm $BQ $* $_opt $_p ($_d): exit $rc (want 1); stderr ends '$(tail -n1 "$T/err")'"
	fi
}
for opt in --json-out --plot; do
	p7 "into a missing directory" $opt "$T/nodir/x.out"
	p7 "a directory as the file" $opt "$T/adir"
	[ -d "$T/adir" ] && [ -z "$(ls -A "$T/adir")" ] || bad "P7 $opt: the directory given as the file changed"
	[ $have_imm = 1 ] && p7 "an immutable file" $opt "$T/imm.json"
	p7 "a file that refuses writes (/proc/version)" $opt /proc/version
	if mkfull "$T/full"; then
		p7 "a full device (copy of /dev/full)" $opt "$T/full"
		[ -c "$T/full" ] || bad "P7 iovm $BQ $opt $T/full: the run deleted the device node it was given (as root, '$opt /dev/full' deletes /dev/full)"
		mkfull "$T/full"
		p7 "a full device, with --json" $opt "$T/full" --json
		[ -c "$T/full" ] || bad "P7 iovm $BQ --json $opt $T/full: the run deleted the device node it was given"
	fi
done
# the reason given for a full device
if mkfull "$T/full"; then
	run 120 "$IOVM" $BQ --json-out "$T/full"
	grep -qi 'no space' "$T/err" ||
		note "P7 --json-out to a full device (write: ENOSPC) says '$(tail -n1 "$T/err")'"
fi
# stdout that cannot be written: exit 1, why on stderr, never 0 with the
# output lost; on a full device (a private copy of /dev/full) and on a
# pipe whose reader is gone, SIGPIPE ignored (epipe, built here: no race
# on when the reader leaves)
P7OUT="--version|--help|stat --json 4K|stat 4K|info --json|info|demo|bench --help|$BQ|$BQ --json"
p7out() { # HOW CMD...: HOW is a label; expect exit 1 and "cannot write" on stderr
	_how=$1
	shift
	_ifs=$IFS
	IFS='|'
	set -f
	for c in $P7OUT; do
		IFS=$_ifs
		# shellcheck disable=SC2086
		"$@" $c 2>"$T/err"
		r=$?
		if [ $r -eq 1 ] && grep -q "cannot write" "$T/err"; then
			npass=$((npass + 1))
		else
			bad "P7 'iovm $c' with stdout $_how: exit $r (want 1), stderr ends '$(tail -n1 "$T/err")'"
		fi
		IFS='|'
	done
	IFS=$_ifs
	set +f
}
if mkfull "$T/full"; then
	f0=$nfail
	p7full() { "$TO" 120 "$IOVM" "$@" >"$T/full"; }
	p7out "a full device" p7full
	[ $nfail -eq $f0 ] && ok "P7 stdout on a full device: exit 1, why on stderr (--version, --help, stat, info, demo, bench)"
fi
cat >epipe.c <<'EOF'
#include <signal.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	int p[2];
	if (argc < 2 || pipe(p) || close(p[0]) || dup2(p[1], 1) < 0)
		return 125;
	signal(SIGPIPE, SIG_IGN);
	execvp(argv[1], argv + 1);
	return 127;
}
EOF
if $CC -o epipe epipe.c 2>/dev/null; then
	f0=$nfail
	p7out "a closed pipe" "$TO" 120 ./epipe "$IOVM"
	[ $nfail -eq $f0 ] && ok "P7 stdout a closed pipe, SIGPIPE ignored: exit 1, why on stderr (--version, --help, stat, info, demo, bench)"
else
	note "P7 cannot build the closed-pipe helper: skipped"
fi
# gnuplot missing (an empty PATH), or failing
mkdir -p "$T/nogp" "$T/fakebin"
rm -f "$T/nogp.svg"
run 120 env PATH="$T/nogp" "$IOVM" $BQ --plot "$T/nogp.svg"
if [ $rc -eq 1 ] && grep -qi gnuplot "$T/err"; then
	ok "P7 --plot without gnuplot: exit 1, '$(tail -n1 "$T/err" | cut -c1-80)'"
else
	bad "P7 --plot without gnuplot: exit $rc, stderr '$(tail -n1 "$T/err")'"
fi
[ -e "$T/nogp.svg" ] && bad "P7 --plot without gnuplot left $T/nogp.svg ($(wc -c <"$T/nogp.svg") bytes)"
if mkfull "$T/full"; then
	run 120 env PATH="$T/nogp" "$IOVM" $BQ --plot "$T/full"
	[ -c "$T/full" ] || bad "P7 PATH=<no gnuplot> iovm $BQ --plot $T/full: the failed run deleted the device node it was given (as root, '--plot /dev/null' without gnuplot deletes /dev/null)"
fi
printf '#!/bin/sh\ncat >/dev/null\nexit 3\n' >"$T/fakebin/gnuplot"
chmod +x "$T/fakebin/gnuplot"
run 120 env PATH="$T/fakebin:$PATH" "$IOVM" $BQ --plot "$T/fail.svg"
[ $rc -eq 1 ] && [ ! -e "$T/fail.svg" ] && ok "P7 --plot with a gnuplot that fails: exit 1, no file left" ||
	bad "P7 --plot with a failing gnuplot: exit $rc, file left: $([ -e "$T/fail.svg" ] && echo yes || echo no)"
# --json-out made, --plot not: the run fails
rm -f "$T/both.json"
run 120 "$IOVM" $BQ --json-out "$T/both.json" --plot "$T/nodir/x.svg"
[ $rc -eq 1 ] && ok "P7 --json-out fine but --plot impossible: exit 1" || bad "P7 --json-out + bad --plot: exit $rc"
[ -e "$T/both.json" ] && note "P7 after that failed run, --json-out's file is left whole ($(wc -c <"$T/both.json") bytes) and stderr says 'JSON written'"

# ---------------------------------------------------------------------------
# P8: --plot FILE: no file name reaches gnuplot's command language
# ---------------------------------------------------------------------------
if ! command -v gnuplot >/dev/null 2>&1; then
	note "P8 gnuplot not installed: skipped"
else
	mkdir -p "$T/p8"
	i=0
	long=$(printf '%0250d' 0 | tr 0 a)
	toolong=$(printf '%0300d' 0 | tr 0 b)
	BT='`'
	p8() { # NAME [WANT_RC]
		i=$((i + 1))
		_n=$1
		_want=${2:-0}
		_d=$T/p8/d$i
		mkdir -p "$_d"
		(cd "$_d" && run 120 env A12M="$T/p8/MARK$i" HOME="$_d" "$IOVM" $BQ --plot "$_n" &&
			echo $rc >"$T/p8/rc")
		rc=$(cat "$T/p8/rc")
		_shown=$(printf '%s' "$_n" | od -An -c | tr -s ' \n' ' ' | cut -c1-110)
		_hit=$(ls -d /A12MARK /tmp/A12MARK "$T/A12MARK" 2>/dev/null
			find "$T/p8" -name A12MARK -o -name 'MARK[0-9]*' 2>/dev/null)
		if [ -n "$_hit" ]; then
			bad "P8 --plot name [$_shown] ran a command: $_hit"
			rm -f $_hit
			return
		fi
		if [ "$rc" -ne "$_want" ]; then
			bad "P8 --plot name [$_shown]: exit $rc (want $_want): $(tail -n1 "$T/err")"
			return
		fi
		if [ "$_want" -eq 0 ]; then
			case $_n in /*) _f=$_n ;; *) _f=$_d/$_n ;; esac
			if [ -f "$_f" ] && grep -q '<svg' "$_f"; then
				npass=$((npass + 1))
			else
				bad "P8 --plot name [$_shown]: exit 0 but no SVG under that exact name: $(ls -A "$_d" | tr '\n' '/')"
			fi
		else
			npass=$((npass + 1))
		fi
	}
	f0=$nfail
	p8 "a'b.svg"
	p8 'a"b.svg'
	p8 'x.svg"; system("touch ${A12M:-A12MARK}"); print "'
	p8 "x.svg'; system('touch \${A12M:-A12MARK}'); print '"
	p8 "x.svg\"${NL}system(\"touch \${A12M:-A12MARK}\")${NL}print \""
	p8 "x${NL}system(\"touch \${A12M:-A12MARK}\")${NL}.svg"
	p8 "!touch \${A12M:-A12MARK}"
	p8 "x.svg${NL}!touch \${A12M:-A12MARK}${NL}"
	p8 "|touch \${A12M:-A12MARK}"
	p8 "<touch \${A12M:-A12MARK}"
	p8 "${BT}touch \${A12M:-A12MARK}${BT}.svg"
	p8 "\$(touch \${A12M:-A12MARK}).svg"
	p8 "x\\\"; system(\"touch \${A12M:-A12MARK}\"); #.svg"
	p8 "x\\'; system('touch \${A12M:-A12MARK}'); #.svg"
	p8 "x\\"
	p8 'x; system("touch ${A12M:-A12MARK}").svg'
	p8 "x.svg;!touch \${A12M:-A12MARK}"
	p8 '-e system("touch ${A12M:-A12MARK}").svg'
	p8 '-x.svg'
	p8 '--persist.svg'
	p8 'a b	c.svg'
	p8 "cr$(printf '\r')x.svg"
	p8 '%s%n%x%p.svg'
	p8 '@A12MACRO.svg'
	p8 "$long"
	p8 "$toolong" 1
	[ $nfail -eq $f0 ] && ok "P8 $i hostile --plot names: no command ran, each chart written under its exact name (too long: exit 1)"
	# a hostile name in the directory part
	hd=$T/p8/"dir'\";!touch \${A12M:-A12MARK}"
	mkdir -p "$hd"
	p8 "$hd/c.svg"
fi

# ---------------------------------------------------------------------------
# P9: iovm stat SIZE
# ---------------------------------------------------------------------------
f0=$nfail
for s in 1X '1T?' -1 +1 1e3 1.5M '' ' 1' '1 ' 1KK 1KiBB K 0x 1,5K 1P 1E \
	18446744073709551616 16777216T 17179869184G 0x10000000000000000 "1${NL}"; do
	run 60 "$IOVM" stat "$s"
	if { [ $rc -eq 2 ] || [ $rc -eq 1 ]; } && [ -s "$T/err" ]; then
		npass=$((npass + 1))
	else
		bad "P9 iovm stat '$s': exit $rc (want 2 or 1 with a message); stderr '$(head -c 120 "$T/err")'"
	fi
done
[ $nfail -eq $f0 ] && ok "P9 iovm stat refuses 21 malformed or overflowing sizes (exit 1/2, message)"
if [ -n "$PY" ]; then
	inuse() {
		run 60 "$IOVM" stat --json "$@"
		[ $rc -eq 0 ] || { echo "exit$rc"; return; }
		"$PY" -c 'import json,sys; h=json.load(open(sys.argv[1]))["heap"]; print(h["in_use"], h["allocs"])' "$T/out" 2>/dev/null || echo unparsed
	}
	f0=$nfail
	for pair in "1KB 1024" "1K 1024" "1KiB 1024" "1k 1024" "0x10 16" "2MiB 2097152" "2m 2097152" "0X1000 4096"; do
		set -- $pair
		a=$(inuse "$1")
		b=$(inuse "$2")
		[ "$a" = "$b" ] && case $a in exit* | unparsed) false ;; esac || bad "P9 iovm stat --json $1 and $2 differ: '$a' vs '$b'"
	done
	[ $nfail -eq $f0 ] && ok "P9 valid spellings (1KB, 1KiB, 1k, 0x10, 2MiB, 2m, 0X1000) allocate what their plain byte counts do"
	run 60 "$IOVM" stat 1T
	[ $rc -eq 1 ] && ok "P9 iovm stat 1T: exit 1 ('$(head -n1 "$T/err" | cut -c1-70)')" || note "P9 iovm stat 1T: exit $rc"
	run 60 "$IOVM" stat 0
	note "P9 iovm stat 0: exit $rc"
fi
# The parser behind SIZE, as base.h documents it.
cat >sz.c <<'EOF'
#include <iovm.h>
#include <stdio.h>
#include <string.h>
static int bad;
static void t(const char *s, int ok, unsigned long long want)
{
	uint64_t v = 0xdeadbeef;
	int r = iovm_size_parse(s, &v);
	if (ok ? (r != 0 || v != want) : r != -22) {
		printf("iovm_size_parse(\"%s\") = %d, %llu (want %s %llu)\n", s, r, (unsigned long long)v,
		       ok ? "0," : "-EINVAL", want);
		bad = 1;
	}
}
int main(void)
{
	t("4096", 1, 4096); t("64K", 1, 65536); t("2MiB", 1, 2 << 20); t("1T", 1, 1ULL << 40);
	t("1KB", 1, 1024); t("1k", 1, 1024); t("0x10", 1, 16); t("0x1G", 1, 1ULL << 30);
	t("18446744073709551615", 1, 18446744073709551615ULL); t("16777215T", 1, 16777215ULL << 40);
	t("1X", 0, 0); t("1T?", 0, 0); t("-1", 0, 0); t("+1", 0, 0); t(" 1", 0, 0); t("1 ", 0, 0);
	t("1e3", 0, 0); t("1.5M", 0, 0); t("", 0, 0); t("K", 0, 0); t("0x", 0, 0); t("1KK", 0, 0);
	t("1KiBB", 0, 0); t("18446744073709551616", 0, 0); t("16777216T", 0, 0);
	t("17179869184G", 0, 0); t("0x10000000000000000", 0, 0); t("1P", 0, 0);
	if (iovm_size_parse(NULL, NULL) != -22) { printf("NULL not -EINVAL\n"); bad = 1; }
	return bad;
}
EOF
if $CC -std=c17 -I"$INC" -o sz sz.c "$AR" -lpthread 2>sz.err; then
	run 20 ./sz
	[ $rc -eq 0 ] && ok "P9 iovm_size_parse() follows base.h on 28 strings (overflow and sign included)" ||
		{ bad "P9 iovm_size_parse()"; show "$T/out"; }
fi

echo "# $npass passed, $nfail failed"
[ $nfail -eq 0 ]
