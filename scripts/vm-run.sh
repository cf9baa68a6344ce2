#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vm-run.sh [options] [TEST...] — run VM tests in qemu (TCG) and report TAP.
#
#   TEST           tests/vm/NAME.sh, vm/NAME.sh or NAME.sh; default: all of
#                  tests/vm/*.sh in order; tests/demo/NAME.sh (demo/NAME.sh)
#                  runs a demo (scripts/demo.sh) the same way
#   --results DIR  write NAME.tap/NAME.rc and append to DIR/index (as
#                  tests/run-all.sh does) instead of the run's own folder
#   --no-summary   do not print the per-file summary and the total line
#   --initrd FILE  boot FILE instead of building the image
#   --kernel K     debian (default) or debug: the debug kernel built by
#                  scripts/debug-kernel.sh (KASAN, lockdep, kmemleak, UBSAN...;
#                  see tests/README.md), with dm-sxm.ko built against it in
#                  build/debug-module/; results are named debug/vm/NAME.sh.
#                  Also SXM_KERNEL=debug in the environment.
#   --karg ARG     add ARG to the guest kernel's command line (repeatable),
#                  e.g. --karg sxm.fuzz_duration=600 for vm/60-abi-fuzz.sh
#   --extra-time S  each test's time limit, and the guest's, S seconds more
#                  (for a run made longer with --karg)
#   -q             do not echo the tests' output while they run
#
# Tests share one boot, in order.  A test whose header has "# vm: fresh-boot"
# gets a boot of its own; "# vm-timeout: SECS" sets its time limit inside the
# guest (default 300; on the debug kernel times SXM_DEBUG_TIMEOUT_SCALE,
# default 3).  The host kills a guest that outlives the sum of its
# tests' limits plus the boot; the test that was running and every test that
# did not report count as failed.  Kernel complaints in the console (Oops,
# BUG:, WARNING:, general protection, hung tasks, panics) count as a failure
# of the test that was running, with the lines shown.  Each run has its own
# folder, build/vm/run-DATE-PID (build/vm/last is the newest; the last 8 are
# kept), with per boot N the console (boot-N.console.log), the results
# channel (boot-N.results.log) and qemu's own output.  What a test leaves
# behind is reported as a failure (see scripts/vm-init.sh).  On the debug
# kernel, KASAN, UBSAN, lockdep, debug-objects, lockup and RCU stall reports
# fail the test that was running too, and each boot ends with a kmemleak
# scan reported as the test point debug/vm/boot-N-kmemleak.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
results="" summary=1 initrd="" quiet=0 tests=() flavour=${SXM_KERNEL:-debian}
xkargs="" extra=0

while [ $# -gt 0 ]; do
	case $1 in
	--results) results=$2; shift ;;
	--no-summary) summary=0 ;;
	--initrd) initrd=$2; shift ;;
	--kernel) flavour=$2; shift ;;
	--kernel=*) flavour=${1#--kernel=} ;;
	--karg)
		case $2 in *[[:space:]]* | "") echo "vm-run: --karg '$2': one argument, no spaces" >&2; exit 2 ;; esac
		xkargs="$xkargs $2"; shift ;;
	--extra-time)
		[[ $2 =~ ^[0-9]+$ ]] || { echo "vm-run: --extra-time '$2': seconds" >&2; exit 2; }
		extra=$2; shift ;;
	-q) quiet=1 ;;
	-h | --help) sed -n '4,/^set /{/^set /d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
	-*) echo "vm-run: unknown option $1" >&2; exit 2 ;;
	*) t=${1#tests/}; t=${t#./tests/}; [[ $t == vm/* || $t == demo/* ]] || t=vm/$t; tests+=("$t") ;;
	esac
	shift
done
if [ ${#tests[@]} -eq 0 ]; then
	for f in tests/vm/*.sh; do [ -e "$f" ] && tests+=("vm/${f##*/}"); done
fi
[ ${#tests[@]} -gt 0 ] || { echo "vm-run: no tests in tests/vm" >&2; exit 1; }
for t in "${tests[@]}"; do
	[ -f "tests/$t" ] || { echo "vm-run: no such test: tests/$t" >&2; exit 2; }
done

# The kernel, and what results are called: vm/NAME.sh on Debian's kernel,
# debug/vm/NAME.sh on the debug kernel (so that one run-all can count both).
case $flavour in
debian)
	kver=$(scripts/kver.sh) || exit 1
	kernel=.cache/kernel/$kver/boot/vmlinuz-$kver
	pre="" mem=2G kargs="" tscale=1
	[ -e "$kernel" ] || { echo "vm-run: no $kernel (run: make deps)" >&2; exit 1; } ;;
debug)
	# KASAN's shadow takes an eighth of the memory, kmemleak and lockdep
	# more; kasan_multi_shot: every report, not only the first of the boot;
	# printk.time=1: the stamps kernel_log_scan looks for.  Everything
	# runs slower: each test's time limit is times tscale.
	pre="debug/" mem=2G kargs="kasan_multi_shot printk.time=1" tscale=${SXM_DEBUG_TIMEOUT_SCALE:-3}
	kernel="" ;;
*) echo "vm-run: --kernel $flavour: debian or debug" >&2; exit 2 ;;
esac
export SXM_KERNEL=$flavour

# This run's folder; older ones pruned to the last 8.
mkdir -p build/vm
out=build/vm/run-$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$out"
ln -sfn "${out#build/vm/}" build/vm/last
for d in $(ls -1d build/vm/run-* | head -n -8); do
	kill -0 "${d##*-}" 2>/dev/null || rm -rf "$d"
done
rm -f build/vm/boot-* build/vm/initramfs.cpio.gz

if [ -z "$results" ]; then
	results=$out/results
	rm -rf "$results"
fi
mkdir -p "$results"
touch "$results/index"

# fail_setup NAME MSG [LOG] — a failed test point for a step before the boot.
fail_setup() {
	{ echo "not ok 1 $2"; [ -z "${3:-}" ] || sed 's/^/# /' "$3" | tail -n 40; } \
		> "$results/${pre//\//_}${1//\//_}.tap"
	echo 1 > "$results/${pre//\//_}${1//\//_}.rc"
	echo "$pre$1" >> "$results/index"
	cat "$results/${pre//\//_}${1//\//_}.tap"
}

if [ "$flavour" = debug ]; then
	if ! dk=$(scripts/debug-kernel.sh dir 2>"$out/debug-kernel.log"); then
		fail_setup vm/kernel "the debug kernel is not built (run: make deps, or scripts/debug-kernel.sh)" \
			"$out/debug-kernel.log"
		[ "$summary" = 1 ] && tests/lib/tap-summary.sh "$results"
		exit 1
	fi
	kernel=$dk/bzImage
	# dm-sxm.ko for it; a failure shows, and the tests that need the
	# module fail for want of it.
	if ! scripts/debug-kernel.sh module > "$out/debug-module.log" 2>&1; then
		rm -f build/debug-module/kernel/dm-sxm.ko
		fail_setup vm/module "build dm-sxm.ko for the debug kernel (scripts/debug-kernel.sh module)" \
			"$out/debug-module.log"
	fi
fi

# C programs the VM tests run (tests/vm/Makefile, if there is one).  A build
# failure is a failed test point; the tests that need the program say so.
if [ -f tests/vm/Makefile ] && ! make -s -C tests/vm > "$out/build.log" 2>&1; then
	fail_setup vm/build "build tests/vm (make -C tests/vm)" "$out/build.log"
fi

if [ -z "$initrd" ]; then
	initrd=$out/initramfs.cpio.gz
	if ! scripts/mkinitramfs.sh "$initrd"; then
		fail_setup vm/image "build the VM image (scripts/mkinitramfs.sh)"
		[ "$summary" = 1 ] && tests/lib/tap-summary.sh "$results"
		exit 1
	fi
fi

# Group the tests into boots: a run of ordinary tests shares one boot; a
# "fresh-boot" test gets its own.
boots=() cur=""
for t in "${tests[@]}"; do
	if grep -Eq '^# vm:.*\<fresh-boot\>' "tests/$t"; then
		[ -n "$cur" ] && boots+=("$cur")
		boots+=("$t") cur=""
	else
		cur=${cur:+$cur,}$t
	fi
done
[ -n "$cur" ] && boots+=("$cur")

res() { local n=$pre$1; echo "$results/${n//\//_}"; }

# Kernel log lines that make a run fail: kernel_bad_re, kernel_log_scan.
. tests/lib/kernel_log.sh

n=0
for group in "${boots[@]}"; do
	n=$((n + 1))
	IFS=, read -r -a gt <<< "$group"
	console=$out/boot-$n.console.log
	chan=$out/boot-$n.results.log
	: > "$console"
	: > "$chan"
	budget=60
	for t in "${gt[@]}"; do
		tmo=$(sed -n 's/^# vm-timeout: *\([0-9]*\).*/\1/p' "tests/$t" | head -n 1)
		budget=$((budget + ${tmo:-300} * tscale + extra + 15))
		echo "$pre$t" >> "$results/index"
	done

	echo "vm-run: boot $n: ${gt[*]}"
	echo "vm-run: console log: $top/$console"
	start=$(date +%s.%N)
	timeout -k 5 "$budget" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m "$mem" \
		-nographic -no-reboot -nic none -monitor none \
		-kernel "$kernel" -initrd "$initrd" \
		-append "console=ttyS0 panic=-1 loglevel=7 printk.devkmsg=on $kargs$xkargs sxm.boot=$n sxm.tscale=$tscale sxm.extra_time=$extra sxm.tests=$group" \
		-serial "file:$console" -serial "file:$chan" < /dev/null > "$out/boot-$n.qemu.log" 2>&1 &
	qpid=$!
	trap 'kill $qpid 2>/dev/null; exit 130' INT TERM
	# Echo the results channel while the guest runs.
	[ "$quiet" = 0 ] && tail -s 0.5 --pid=$qpid -n +1 -F "$chan" 2>/dev/null | tr -d '\r'
	wait $qpid
	qrc=$?
	trap - INT TERM
	end=$(date +%s.%N)
	awk -v n="$n" -v s="$start" -v e="$end" 'BEGIN { printf "vm-run: boot %d took %.1f s\n", n, e - s }'
	[ "$qrc" = 0 ] || echo "vm-run: qemu exited with status $qrc$([ "$qrc" = 124 ] && echo " (killed after ${budget}s)"); see $top/$out/boot-$n.qemu.log"

	# Split the results channel into one .tap and .rc per test.
	tr -d '\r' < "$chan" | awk -v dir="$results" -v pre="$pre" '
		function f(t) { t = pre t; gsub("/", "_", t); return dir "/" t }
		/^=== BEGIN / { cur = $3; printf "" > (f(cur) ".tap"); next }
		/^=== END /   { sub("rc=", "", $4); print $4 > (f($3) ".rc")
			if (sub("time=", "", $5)) print $5 > (f($3) ".time")
			cur = ""; next }
		/^=== LEFTOVER / { t = $3; sub(":$", "", t); sub("^=== LEFTOVER [^ ]* ", "")
			print "not ok - teardown left behind:" $0 >> (f(t) ".tap"); next }
		/^=== DONE/ { next }
		cur != "" { print >> (f(cur) ".tap") }'
	for t in "${gt[@]}"; do
		b=$(res "$t")
		[ -e "$b.rc" ] && continue
		echo 1 > "$b.rc"
		if [ -e "$b.tap" ]; then
			echo "not ok - did not finish: the guest hung or died (see $console)" >> "$b.tap"
		else
			echo "not ok - not run: the guest hung or died before it (see $console)" > "$b.tap"
		fi
	done
	# The boot's closing kmemleak scan (debug kernel; scripts/vm-init.sh).
	[ -e "$(res "vm/boot-$n-kmemleak").rc" ] && echo "${pre}vm/boot-$n-kmemleak" >> "$results/index"

	# Kernel complaints, charged to the test that was running: one failed
	# point per test, the first line as its description, the others and
	# the dozen lines after each (the report's body) shown, up to 40.
	declare -A klog=()
	kernel_log_scan "$console" "vm/boot-$n"
	for who in "${!klog[@]}"; do
		if [ "$who" = "vm/boot-$n" ]; then
			echo "$pre$who" >> "$results/index"
			echo 1 > "$(res "$who").rc"
		fi
		printf '%s' "${klog[$who]}" | head -n 40 >> "$(res "$who").tap"
	done
	unset klog
	if grep -Eq "$kernel_bad_re" <(tr -d '\r' < "$console"); then
		echo "vm-run: the kernel complained; context in $top/$console:" >&2
		tr -d '\r' < "$console" | grep -E -B2 -A12 "$kernel_bad_re" | head -n 60 >&2
	fi
done

# The image is 50 MB and rebuilt in a second: do not keep it.
[ "$initrd" = "$out/initramfs.cpio.gz" ] && rm -f "$initrd"

if [ "$summary" = 1 ]; then
	echo
	tests/lib/tap-summary.sh "$results"
fi
