#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run-all.sh [--native-only | --vm-only | --debug-only] — every test, as
# `make check` runs it.
#
# Native tests: the C tests tests/native/*.c (kselftest_harness.h, linked
# with build/userspace/libsxm.a; built by tests/native/Makefile into
# build/tests/native/) and the scripts tests/native/*.sh, run on this machine;
# then those that run the helper again against its ASan+UBSan build
# (asan_pass, results named native-asan/NAME).
# VM tests: tests/vm/*.sh and the demo's tests/demo/*.sh, all in as few
# boots as possible (scripts/vm-run.sh), but for those tagged "# vm:
# debug-only" (they need the debug kernel's fault injection).  Then the debug pass: the VM tests
# whose header has "# vm: debug", and the regression tests tests/vm/6*-*.sh
# but those tagged "# vm: no-debug", again on the debug kernel (scripts/debug-kernel.sh; KASAN, lockdep,
# kmemleak, UBSAN...), their results named debug/vm/NAME.sh; SXM_DEBUG=0
# leaves it out.  --debug-only: every VM test and the demo's scripts on the
# debug kernel only (make check-debug).  With both passes (make check) and
# two CPUs or more, the debug pass and the native tests run beside the
# Debian pass, their output shown after its own: each guest waits much of
# its time on its tests' timers and I/O, so they share the CPUs well, and
# neither guest waits for the native tests to start; SXM_SERIAL=1 runs the
# native tests first and the debug pass last instead.  Every TAP "ok"/"not ok" line is
# one test point; "# SKIP" counts as skipped.  The output ends with a
# summary per test file and exactly one last line "N passed, N failed[, N
# skipped]"; the exit status is non-zero if anything failed.  Outputs are
# kept in build/test-results/last/.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
native=1 vm=1 debug=${SXM_DEBUG:-1}
case ${1:-} in
--native-only) vm=0 debug=0 ;;
--vm-only) native=0 ;;
--debug-only) native=0 vm=0 debug=all ;;
"") ;;
*) echo "usage: tests/run-all.sh [--native-only|--vm-only|--debug-only]" >&2; exit 2 ;;
esac

start=$(date +%s)
mkdir -p build/test-results
res=build/test-results/run-$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$res"
: > "$res/index"
ln -sfn "${res#build/test-results/}" build/test-results/last
for d in $(ls -1d build/test-results/run-* | head -n -8); do
	kill -0 "${d##*-}" 2>/dev/null || rm -rf "$d"
done

# record NAME RC — a result whose TAP output is already in $res/NAME.tap.
record() {
	echo "$1" >> "$res/index"
	echo "$2" > "$res/${1//\//_}.rc"
}

# run_native NAME CMD... — run one native test, show and keep its output.
run_native() {
	local name=$1 rc t0
	shift
	echo "run-all: $name"
	t0=$(date +%s.%N)
	timeout -k 10 600 "$@" 2>&1 | tee "$res/${name//\//_}.tap"
	rc=${PIPESTATUS[0]}
	awk -v t0="$t0" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", t1 - t0 }' \
		> "$res/${name//\//_}.time"
	[ "$rc" = 124 ] && echo "not ok - timed out after 600 s" >> "$res/${name//\//_}.tap"
	record "$name" "$rc"
}

# The debug kernel's tests: those tagged "# vm: debug" and the regression
# tests (tests/vm/6*-*.sh), or with --debug-only all of them.
dvmt=()
if [ "$debug" != 0 ] && compgen -G 'tests/vm/*.sh' >/dev/null; then
	if [ "$debug" = all ]; then
		dvmt=(tests/vm/*.sh tests/demo/*.sh)
	else
		for t in tests/vm/*.sh; do
			# A regression test tagged "# vm: no-debug" tests
			# userspace alone: Debian's kernel is enough.
			case ${t##*/} in
			6*-*.sh) grep -Eq '^# vm:.*\<no-debug\>' "$t" || dvmt+=("$t") ;;
			*) grep -Eq '^# vm:.*\<debug\>' "$t" && dvmt+=("$t") ;;
			esac
		done
	fi
fi

# debug_pass — run the debug kernel's tests; their results go to
# $res/debug.d and are merged into $res by debug_merge.
debug_pass() {
	local t0
	t0=$(date +%s)

	# Built here if not cached (make check leaves it to us: on a fresh
	# machine it builds while the native tests and Debian's pass run,
	# niced so that their guest keeps its pace).
	if ! scripts/debug-kernel.sh dir >/dev/null 2>&1; then
		echo "run-all: building the debug kernel (scripts/debug-kernel.sh; once per machine)"
		nice -n 10 scripts/debug-kernel.sh
		echo "run-all: the debug kernel took $(($(date +%s) - t0)) s"
	fi
	echo "run-all: the debug kernel: ${dvmt[*]}"
	scripts/vm-run.sh --kernel debug --results "$res/debug.d" --no-summary "${dvmt[@]}"
	echo "run-all: the debug pass took $(($(date +%s) - t0)) s"
}

debug_merge() {
	if [ ! -s "$res/debug.d/index" ]; then
		echo "not ok 1 scripts/vm-run.sh --kernel debug could not run the VM tests" > "$res/debug_vm_run.tap"
		record debug/vm/run 1
		return
	fi
	merge_results debug.d last
}

# merge_results SUB first|last — the results a pass wrote to $res/SUB into
# $res, listed before or after those there.
merge_results() {
	local f

	if [ "$2" = first ]; then
		cat "$res/$1/index" "$res/index" > "$res/index.new" &&
			mv "$res/index.new" "$res/index"
	else
		cat "$res/$1/index" >> "$res/index"
	fi
	for f in "$res/$1"/*; do
		[ "${f##*/}" = index ] || mv "$f" "$res/"
	done
	rm -f "$res/$1/index"
	rmdir "$res/$1" 2>/dev/null
}

# native_pass — build and run the native tests, results into $res.
native_pass() {
	if compgen -G 'tests/native/*.c' >/dev/null; then
		# A build failure is a failed test, shown, and the rest still runs.
		log=$res/native_build.tap
		if ! make -s -C tests/native > "$log.out" 2>&1; then
			{ echo "not ok 1 build tests/native"; sed 's/^/# /' "$log.out"; } > "$log"
			cat "$log"
			record native/build 1
		fi
		rm -f "$log.out"
	fi
	for t in build/tests/native/*; do
		[ -f "$t" ] && [ -x "$t" ] && run_native "native/${t##*/}" "$t"
	done
	for t in tests/native/*.sh; do
		[ -f "$t" ] && run_native "native/${t##*/}" bash "$t"
	done
	asan_pass
}

# asan_pass — the native tests that run the helper, again, against an
# ASan+UBSan build of it (build/asan/: libsxm.a for the C tests, sxm-ctl
# for the scripts, through $SXM_CTL).  Every report is written to a file,
# and any report is a failure, also where the test accepted the exit
# status it caused.
asan_pass() {
	local san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
	local out=$top/build/asan logs=$res/asan-reports log=$res/native-asan_build.tap t

	if ! { make -s -C userspace OUT="$out/userspace" SAN="$san" &&
	       make -s -C tests/native OUT="$out/tests/native" \
		       UOUT="$out/userspace" SAN="$san"; } > "$log.out" 2>&1; then
		{ echo "not ok 1 build the ASan+UBSan helper"; sed 's/^/# /' "$log.out"; } > "$log"
		cat "$log"
		record native-asan/build 1
		rm -f "$log.out"
		return
	fi
	rm -f "$log.out"
	mkdir -p "$logs"
	(
		export ASAN_OPTIONS="log_path=$logs/report:exitcode=86:detect_leaks=1"
		export UBSAN_OPTIONS="log_path=$logs/report:exitcode=86:print_stacktrace=1:halt_on_error=1"
		export SXM_CTL=$out/userspace/sxm-ctl
		for t in "$out"/tests/native/*; do
			[ -f "$t" ] && [ -x "$t" ] && run_native "native-asan/${t##*/}" "$t"
		done
		for t in $(grep -l '^native_setup' tests/native/*.sh); do
			run_native "native-asan/${t##*/}" bash "$t"
		done
	)
	log=$res/native-asan_reports.tap
	if compgen -G "$logs/report.*" >/dev/null; then
		{ echo "not ok 1 no ASan, LeakSanitizer or UBSan report"
		  head -n 40 "$logs"/report.* | sed 's/^/# /'; echo "1..1"; } > "$log"
		record native-asan/reports 1
	else
		printf 'ok 1 no ASan, LeakSanitizer or UBSan report\n1..1\n' > "$log"
		record native-asan/reports 0
	fi
	cat "$log"
}

dpid=""
if [ ${#dvmt[@]} -gt 0 ] && [ "$vm" = 1 ] && [ "${SXM_SERIAL:-0}" != 1 ] &&
   [ "$(nproc)" -ge 2 ]; then
	# The C programs the guests run, built once before two runs need them.
	make -s -C tests/vm >/dev/null 2>&1
	echo "run-all: the debug pass runs beside the rest; its output follows theirs"
	debug_pass > "$res/debug-pass.log" 2>&1 &
	dpid=$!
	# vm-run stops its guest on TERM (a background job ignores INT).
	trap 'pkill -TERM -P "$dpid"; kill "$dpid" 2>/dev/null; exit 130' INT TERM
fi

# The native tests: beside Debian's guest when the debug pass runs beside
# too (the three keep both CPUs busy, and neither guest waits for them to
# start), their output shown after Debian's pass; else first, as they go.
npid=""
if [ "$native" = 1 ]; then
	if [ -n "$dpid" ] && [ "$vm" = 1 ]; then
		echo "run-all: the native tests run beside Debian's pass; their output follows it"
		(
			res=$res/native.d
			mkdir -p "$res" && : > "$res/index"
			native_pass
			: > "$res/finished"
		) > "$res/native.log" 2>&1 &
		npid=$!
		trap 'pkill -TERM -P "$dpid"; pkill -TERM -P "$npid"; kill "$dpid" "$npid" 2>/dev/null; exit 130' INT TERM
	else
		native_pass
	fi
fi

if [ "$vm" = 1 ]; then
	if compgen -G 'tests/vm/*.sh' >/dev/null; then
		n0=$(wc -l < "$res/index")
		# The demo's scripts too, so that the README's first command
		# stays true.
		# Not those tagged "# vm: debug-only" (they need what only
		# the debug kernel has: fault injection).
		vmt=()
		for t in tests/vm/*.sh tests/demo/*.sh; do
			grep -Eq '^# vm:.*\<debug-only\>' "$t" || vmt+=("$t")
		done
		scripts/vm-run.sh --results "$res" --no-summary "${vmt[@]}"
		# vm-run records every test it was asked for; if it could not
		# even start (no image), say so as a failure.
		if [ "$(wc -l < "$res/index")" = "$n0" ]; then
			echo "not ok 1 scripts/vm-run.sh could not run the VM tests" > "$res/vm_run.tap"
			record vm/run 1
		fi
	fi
fi

if [ -n "$npid" ]; then
	wait "$npid"
	echo
	cat "$res/native.log"
	rm -f "$res/native.log"
	# A native pass that died part-way has run only some of its tests.
	if [ ! -e "$res/native.d/finished" ]; then
		echo "not ok 1 the native tests did not all run (their pass died; see above)" > "$res/native.d/native_pass.tap"
		echo native/pass >> "$res/native.d/index"
		echo 1 > "$res/native.d/native_pass.rc"
	fi
	rm -f "$res/native.d/finished"
	merge_results native.d first
fi

# The debug pass: waited for if it ran beside the rest, else run now.
if [ -n "$dpid" ]; then
	wait "$dpid"
	trap - INT TERM
	echo
	cat "$res/debug-pass.log"
	debug_merge
elif [ ${#dvmt[@]} -gt 0 ]; then
	debug_pass
	debug_merge
fi

echo
echo "run-all: took $(($(date +%s) - start)) s; outputs in $top/build/test-results/last/"
tests/lib/tap-summary.sh "$res"
