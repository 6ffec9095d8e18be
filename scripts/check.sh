#!/bin/sh
# The whole test suite, leg by leg: the default build (gcc) and the install
# test, the Debian packages (built without lintian, unpacked and used), an
# ASan+UBSan build, and a ThreadSanitizer build with clang in the release
# configuration, all by default; a plain clang build on request. Every leg
# replays the fuzz corpora. Hugepages are reserved around it (as root) and
# released after.
#   check.sh [--only LEG[,LEG...]]   LEG: default, install, deb, asan, tsan, clang
set -eu
cd "$(dirname "$0")/.."

legs=default,install,deb,asan,tsan
if [ "${1:-}" = "--only" ]; then
	legs=${2:?--only needs a list of legs}
fi
state=$(mktemp /tmp/iovm-hugepages.XXXXXX)
times=$(mktemp /tmp/iovm-check-times.XXXXXX)
t0=$(date +%s)
running=
running_since=$t0
# Each leg's time, at the end whatever happened: the last lines a CI log keeps.
summary() {
	echo "== make check's legs (s):"
	cat "$times"
	[ -z "$running" ] || echo "== stopped in $running, after $(($(date +%s) - running_since)) s"
	echo "== in all: $(($(date +%s) - t0)) s"
	rm -f "$times"
}
trap 'summary; scripts/hugepages.sh release "$state"' EXIT
trap 'exit 130' INT TERM
scripts/hugepages.sh reserve "$state"

run_suite() { # dir, meson options...
	dir=$1
	shift
	start=$(date +%s)
	running=$dir running_since=$start
	[ -f "$dir/build.ninja" ] || meson setup "$dir" "$@" >/dev/null
	ninja -C "$dir"
	built=$(date +%s)
	# shellcheck disable=SC2086 # TEST_SKIP: words, each a meson test option
	meson test -C "$dir" --print-errorlogs --num-processes "$(nproc)" ${TEST_WRAPPER:+"--wrapper=$TEST_WRAPPER"} ${TEST_SKIP:-}
	echo "== $dir: built in $((built - start)) s, tested in $(($(date +%s) - built)) s" | tee -a "$times"
	running=
}

timed() { # name, command...: the command, its time noted for the summary
	name=$1
	shift
	start=$(date +%s)
	running=$name running_since=$start
	"$@"
	running=
	echo "== $name: $(($(date +%s) - start)) s" >>"$times"
}

leg() { # name: whether it is to run
	case ",$legs," in *",$1,"*) return 0 ;; esac
	return 1
}

if leg default; then
	echo "== default build (gcc)"
	run_suite build
fi
if leg install; then
	echo "== make install, then build against the installed library"
	[ -f build/build.ninja ] || meson setup build >/dev/null
	timed install tests/install_test.sh build .
fi
if leg deb; then
	# A build of its own, in a copy of the tree (scripts/deb.sh): about 30 s
	# of CPU. lintian is make deb's, not this leg's.
	echo "== Debian packages: built, unpacked into a scratch root, built against"
	timed deb tests/deb_test.sh . build/deb
fi
if leg asan; then
	echo "== ASan + UBSan build"
	running=build-asan running_since=$(date +%s) # the subshell's are its own
	(
		export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
		export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
		# -O1, as AddressSanitizer's documentation advises for a usable
		# speed; line numbers and stacks stay exact enough at -O1.
		run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false -Ddebug=true -Doptimization=1 \
			-Dc_args=-fno-sanitize-recover=all
	)
	running=
fi
if leg tsan; then
	# clang: gcc's TSan refuses atomic_thread_fence(). In the release
	# configuration, without the debug checks the other legs keep on (a
	# build that only compiles with them is broken): it is the clang leg
	# too, which make check no longer runs on its own to keep within CI's
	# 30 minutes. The crash-point walks, debug builds' only, are the gcc and
	# ASan legs': they kill processes, not race threads.
	echo "== ThreadSanitizer build (clang, release configuration)"
	running=build-tsan running_since=$(date +%s)
	# No suppressions: a race is fixed, or a read that races by design made atomic.
	(
		export CC=clang
		export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
		# The command line's script (tools_cli): a minute alone under TSan,
		# for threads the library's own tests run; gcc and ASan run it.
		# Suite one_thread: tests that start no thread (tests/meson.build),
		# where TSan has nothing to find: about three minutes of its time.
		export TEST_SKIP="--no-suite cli --no-suite one_thread"
		# TSan of clang 14-17 cannot place its shadow memory where more
		# than 28 bits of mmap randomization may put the program (Ubuntu
		# 24.04 kernels): run its tests without address randomization.
		if [ "$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 28)" -gt 28 ] && command -v setarch >/dev/null; then
			export TEST_WRAPPER="setarch $(uname -m) -R"
		fi
		run_suite build-tsan -Db_sanitize=thread -Db_lundef=false -Dbuildtype=debugoptimized -Ddebug_checks=false
	)
	running=
fi
if leg clang; then
	# On request only (make check-clang): the TSan leg builds with clang in
	# the same configuration.
	echo "== clang build"
	running=build-clang running_since=$(date +%s)
	(
		export CC=clang
		# The release configuration: without the debug checks. The command
		# line's script runs in the gcc and ASan legs, the races that run
		# for a fixed number of seconds (suite timed: about 70 s) in the
		# gcc, ASan and TSan legs.
		export TEST_SKIP="--no-suite cli --no-suite timed"
		run_suite build-clang -Dbuildtype=debugoptimized -Ddebug_checks=false
	)
	running=
fi
