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
#
# Power cuts: a test whose header has "# vm: power-cuts N" (N >= 1) and
# "# vm: disks NAME:MIB[,NAME:MIB...]" gets N+1 boots of its own on the
# same disks.  The host creates each disk as a sparse raw file in the run's
# folder (disks-TEST/NAME.img, kept if the test fails) and attaches them
# in order as virtio disks (/dev/vda, /dev/vdb, ...; discard=unmap: a
# discard reads back as zeros) with cache=writeback: the guest sees a volatile
# write cache, so the kernel's flushes and FUA writes are issued as on real
# hardware, and every write qemu has completed is in the host's page cache,
# which SIGKILL does not lose (only a host crash would).  So a cut keeps
# every write the guest saw complete and, of the writes in flight, any
# subset, whole or torn at the block layer's granularity; it does not drop
# completed-but-unflushed writes as a disk cache losing power could.  The
# guest learns its boot (sxm.power_boot=K and sxm.power_boots=N+1 on the
# kernel command line; SXM_POWER_BOOT and SXM_POWER_BOOTS in the test's
# environment).  In boots 1..N the test, when ready, calls power_cut
# (tests/lib/test_common.sh), which prints "=== POWER-CUT" on the results
# channel; the host then waits a random 0..D ms ("# vm: power-cut-delay D",
# default 2000) and kills qemu with SIGKILL, and boots the next one.  A boot
# 1..N that does not ask within its time limit, or a last boot that asks,
# fails the test and ends it.  The boots' TAP goes into the test's one
# result, numbered on across the boots, each boot's part after a
# "# power boot K/N+1" line that says when its power was cut.  Both
# kernels have virtio disks (the debug kernel's PCI is there for them).
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
	if grep -Eq '^# vm:.*\<power-cuts\>' "tests/$t"; then
		[ -n "$cur" ] && boots+=("$cur")
		boots+=("power:$t") cur=""
	elif grep -Eq '^# vm:.*\<fresh-boot\>' "tests/$t"; then
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

# power_test TEST — the N+1 boots of a "power-cuts N" test (see the
# header); boot numbers go on from $n.
power_test() {
	local t=$1 b cuts disks dmax tmo budget dd k total spec name mib drv=() mach
	local console chan qpid qrc start end cut asked rc part secs=0 why=""
	b=$(res "$t")
	echo "$pre$t" >> "$results/index"
	cuts=$(sed -n 's/^# vm:.*\<power-cuts  *\([0-9][0-9]*\).*/\1/p' "tests/$t" | head -n 1)
	disks=$(sed -n 's/^# vm:.*\<disks  *\([^ ]*\).*/\1/p' "tests/$t" | head -n 1)
	dmax=$(sed -n 's/^# vm:.*\<power-cut-delay  *\([0-9][0-9]*\).*/\1/p' "tests/$t" | head -n 1)
	dmax=${dmax:-2000}
	if [ "${cuts:-0}" -lt 1 ] || ! [[ $disks =~ ^[a-z0-9_-]+:[0-9]+(,[a-z0-9_-]+:[0-9]+)*$ ]]; then
		printf 'not ok 1 %s: needs "# vm: power-cuts N" (N >= 1) and "# vm: disks NAME:MIB[,...]"\n' "$t" > "$b.tap"
		echo 1 > "$b.rc"; cat "$b.tap"; return
	fi
	# The debug kernel's ACPI may not route PCI interrupts on qemu's "pc"
	# machine: its _PRT is an AML loop that the debug kernel's interpreter
	# under TCG may not finish within ACPI's 30 s loop limit (a disk then
	# gets no interrupt).  On q35 it is a table.
	mach=()
	[ "$flavour" = debug ] && mach=(-machine q35)
	dd=$out/disks-${t//\//_}
	mkdir -p "$dd"
	IFS=, read -r -a spec <<< "$disks"
	for d in "${spec[@]}"; do
		name=${d%%:*} mib=${d#*:}
		rm -f "$dd/$name.img"
		truncate -s "${mib}M" "$dd/$name.img"
		drv+=(-drive "file=$dd/$name.img,format=raw,if=virtio,cache=writeback,discard=unmap")
	done
	tmo=$(sed -n 's/^# vm-timeout: *\([0-9]*\).*/\1/p' "tests/$t" | head -n 1)
	budget=$((60 + ${tmo:-300} * tscale + extra + 15))
	total=$((cuts + 1))
	: > "$b.tap.parts"
	rc=0
	for ((k = 1; k <= total; k++)); do
		n=$((n + 1))
		console=$out/boot-$n.console.log
		chan=$out/boot-$n.results.log
		: > "$console"
		: > "$chan"
		rm -f "$out/boot-$n.qemu.pid"
		echo "vm-run: boot $n: $t, power boot $k/$total"
		echo "vm-run: console log: $top/$console"
		start=$(date +%s.%N)
		timeout -k 5 "$budget" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m "$mem" \
			"${mach[@]}" -nographic -no-reboot -nic none -monitor none \
			-kernel "$kernel" -initrd "$initrd" "${drv[@]}" \
			-pidfile "$out/boot-$n.qemu.pid" \
			-append "console=ttyS0 panic=-1 loglevel=7 printk.devkmsg=on $kargs$xkargs sxm.boot=$n sxm.tscale=$tscale sxm.extra_time=$extra sxm.tests=$t sxm.power_boot=$k sxm.power_boots=$total" \
			-serial "file:$console" -serial "file:$chan" < /dev/null > "$out/boot-$n.qemu.log" 2>&1 &
		qpid=$!
		trap 'kill $qpid 2>/dev/null; exit 130' INT TERM
		[ "$quiet" = 0 ] && { tail -s 0.5 --pid=$qpid -n +1 -F "$chan" 2>/dev/null | tr -d '\r' & }
		# Watch for the test's request; cut the power a random while after.
		cut="" asked=0
		while kill -0 $qpid 2>/dev/null; do
			if grep -q '^=== POWER-CUT' "$chan"; then
				asked=1
				cut=$(( (RANDOM * 32768 + RANDOM) % (dmax + 1) ))
				sleep "$(printf '%d.%03d' $((cut / 1000)) $((cut % 1000)))"
				[ -s "$out/boot-$n.qemu.pid" ] && kill -KILL "$(cat "$out/boot-$n.qemu.pid")" 2>/dev/null
				break
			fi
			sleep 0.1
		done
		{ wait $qpid; } 2>/dev/null	# no "Killed" from bash
		qrc=$?
		trap - INT TERM
		end=$(date +%s.%N)
		secs=$(awk -v a="$secs" -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", a + e - s }')
		awk -v n="$n" -v s="$start" -v e="$end" -v c="$cut" 'BEGIN {
			printf "vm-run: boot %d took %.1f s%s\n", n, e - s, c == "" ? "" : " (power cut " c " ms after the request)" }'
		# This boot's part: the test's lines, its end, what it left.
		part=$(tr -d '\r' < "$chan" | awk -v t="$t" '
			$1 == "===" && $2 == "BEGIN" && $3 == t { on = 1; next }
			$1 == "===" && $2 == "END" && $3 == t { sub("rc=", "", $4); print "=== RC " $4; on = 0; next }
			$1 == "===" && $2 == "LEFTOVER" { sub("^=== LEFTOVER [^ ]* ", ""); print "not ok - teardown left behind:" $0; next }
			$1 == "===" && $2 == "POWER-CUT" { next }
			on { print }')
		local brc
		brc=$(sed -n 's/^=== RC //p' <<< "$part")
		part=$(grep -v '^=== RC ' <<< "$part")
		{
			if [ -n "$cut" ]; then
				echo "# power boot $k/$total: power cut ${cut} ms after the test asked"
			else
				echo "# power boot $k/$total"
			fi
			[ -z "$part" ] || printf '%s\n' "$part"
			if [ "$k" -lt "$total" ] && [ "$asked" = 0 ]; then
				if [ "$brc" = 4 ]; then
					why=skip
				else
					echo "not ok - power boot $k/$total: the test did not ask for its power cut (exit status ${brc:-none}; qemu $qrc; see $console)"
				fi
			elif [ "$k" = "$total" ] && [ "$asked" = 1 ]; then
				echo "not ok - power boot $k/$total (the last): the test asked for a power cut"
			elif [ "$k" = "$total" ] && [ -z "$brc" ]; then
				echo "not ok - did not finish: the guest hung or died (see $console)"
			fi
			declare -A klog=()
			kernel_log_scan "$console" "$t"
			for who in "${!klog[@]}"; do printf '%s' "${klog[$who]}" | head -n 40; done
		} >> "$b.tap.parts"
		[ "$k" = "$total" ] && rc=${brc:-1}
		[ "$why" = skip ] && { rc=4; break; }
		if grep -Eq "$kernel_bad_re" <(tr -d '\r' < "$console"); then
			echo "vm-run: the kernel complained; context in $top/$console:" >&2
			tr -d '\r' < "$console" | grep -E -B2 -A12 "$kernel_bad_re" | head -n 60 >&2
		fi
		# A boot that went wrong ends the test: the next boots count on it.
		if [ "$k" -lt "$total" ] && [ "$asked" = 0 ]; then
			[ "$why" = skip ] || echo "not ok - power boots $((k + 1))..$total not run" >> "$b.tap.parts"
			break
		fi
	done
	# One TAP stream: the points numbered on across the boots; the plans of
	# the boots dropped, a last boot that ran fewer points than it planned
	# a failure.
	awk -v last="$total" '
		BEGIN { print "TAP version 13" }
		/^TAP version/ { next }
		/^# power boot / { split($4, a, "/"); boot = a[1]; bn = 0; print; next }
		/^1\.\.[0-9]+/ { split($1, p, /\.\./)
			if (boot == last && bn < p[2] && $0 !~ /SKIP/) { n++; print "not ok " n " power boot " boot ": planned " p[2] ", ran " bn }
			if ($0 ~ /SKIP/) print "# " $0
			next }
		/^(not )?ok( [0-9]+)?( |$)/ { n++; bn++
			if ($1 == "ok") sub(/^ok( [0-9]+)?/, "ok " n); else sub(/^not ok( [0-9]+)?/, "not ok " n)
			print; next }
		{ print }
		END { if (n > 0) print "1.." n }' "$b.tap.parts" > "$b.tap"
	rm -f "$b.tap.parts"
	grep -q '^not ok' "$b.tap" && [ "$rc" = 0 ] && rc=1
	echo "$rc" > "$b.rc"
	echo "$secs" > "$b.time"
	# The disks (130 MiB and more): kept only for a failure to look at.
	[ "$rc" = 0 ] && rm -rf "$dd"
}

n=0
for group in "${boots[@]}"; do
	if [[ $group == power:* ]]; then
		power_test "${group#power:}"
		continue
	fi
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
