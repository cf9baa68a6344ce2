#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# ABI stress fuzzing (sxm_fuzz_tool.c): processes and threads drive
# /dev/dm-sxm with random valid and invalid operations (attach, close while
# busy, ring set-up, mmap/munmap/mremap, scribbles on the shared ring and
# honest completions, ring enter, region locks with overlapping and
# duplicated ranges, harvest/ack/mark with bad maps and pointers, mirror on
# and off, fork), while dmsetup suspends, reloads, messages and at the end
# removes and recreates the device, and fio writes and verifies through it.
# The kernel reports nothing, no thread gets stuck, invalid requests are
# refused, fio's data verifies, and afterwards the device is removed and
# dm-sxm unloads.
#
# Environment: SXM_FUZZ_DURATION (seconds, default 30), SXM_FUZZ_SEED (to
# replay a run), SXM_FUZZ_ARGS (more options for the tool, e.g.
# "--no-dup-release --skip=fork,poke"; see sxm_fuzz_tool --help); or on the
# guest's kernel command line sxm.fuzz_duration=, sxm.fuzz_seed= and
# sxm.fuzz_args= (commas for spaces: --no-dup-release,--no-fork).  The time
# limit below is for the default 30 s; a longer run needs a larger one.
# vm-timeout: 420
# vm: debug
. "$(dirname "$0")/../lib/test_common.sh"

require_cmd dmsetup fio
require_sxm
tool=$(dirname "$0")/sxm_fuzz_tool
[ -x "$tool" ] || bail "tests/vm/sxm_fuzz_tool is not built (make -C tests/vm)"

karg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^sxm\.$1=//p" | tail -n 1; }
dur=${SXM_FUZZ_DURATION:-$(karg fuzz_duration)}
dur=${dur:-30}
fseed=${SXM_FUZZ_SEED:-$(karg fuzz_seed)}
fargs=${SXM_FUZZ_ARGS:-$(karg fuzz_args | tr , ' ')}
# The debug kernel runs slower: the harness scales time limits by sxm.tscale.
tscale=$(sed -n 's/.*sxm\.tscale=\([0-9]*\).*/\1/p' /proc/cmdline)
tscale=${tscale:-1}
plan 9

# 64 MiB of 4 KiB regions, less 21 sectors: the last region is short and
# the last map word partly used.  fio writes the first 48 MiB; the fuzzer's
# writer the rest.
scratch_dev src 64
len=$(((64 << 11) - 21))
dm_create tfuzz "0 $len sxm $src 8 1 track"

# fio stops before the end, when the fuzzer removes and recreates the
# device: the fuzzer waits for fio to exit (fio closes and opens the device
# again between its phases: "remove refused, busy" alone is no proof that
# it is done; a remove in that moment failed fio with "stat: No such file
# or directory").
fio_log=/tmp/fio-fuzz.log
fio_secs=$((dur * 7 / 10 > 5 ? dur * 7 / 10 : 5))
spawn fiopid fio --name=fuzz --filename=/dev/mapper/tfuzz --ioengine=io_uring \
	--direct=1 --rw=randwrite --bs=4k --iodepth=16 --size=48M --time_based \
	--runtime="$fio_secs" --verify=crc32c --verify_backlog=256 \
	--verify_fatal=1 --do_verify=1 --randrepeat=0 --debug=process \
	--output="$fio_log" 2>"$fio_log.err"
sleep 1

res=/tmp/fuzz-results
args=(--device tfuzz --duration "$dur" --fio-bytes $((48 << 20)) --fio-pid "$fiopid"
	--results "$res"
	--stuck $((60 * tscale)))
[ -z "$fseed" ] || args+=(--seed "$fseed")
# shellcheck disable=SC2206
[ -z "$fargs" ] || args+=($fargs)
diag "sxm_fuzz_tool ${args[*]}"

# The tool writes its progress straight to our output.  It bounds its own
# run (watchdog, kills, then exits); a process stuck in the kernel cannot
# exit at all, so wait with a limit here too.
spawn fuzzpid "$tool" "${args[@]}"
# (and up to --stuck more, while the endgame waits for fio).
limit=$((dur + 260 * tscale))
for ((i = 0; i < limit * 10; i++)); do
	kill -0 "$fuzzpid" 2>/dev/null || break
	sleep 0.1
done
frc=0
if kill -0 "$fuzzpid" 2>/dev/null; then
	fail "sxm_fuzz_tool ended" "still running $limit s after its start (stuck in the kernel?)"
	frc=125
else
	wait "$fuzzpid" || frc=$?
	check_eq "sxm_fuzz_tool ran to its end (exit 0 or 1)" 1 "$([ $frc -le 1 ] && echo 1)"
fi

r() { sed -n "s/^$1=//p" "$res" 2>/dev/null; }
seedtxt="seed $(r seed), $(r ops) operations in $(r seconds) s"
check_eq "no thread stuck, held up or killed in the kernel ($seedtxt)" "0 0 0 0" \
	"$(r stuck) $(r held_up) $(r died) $(r unkillable)"
check_eq "the kernel reported nothing while the fuzzer ran" 0 "$(r kernel)"
check_eq "every invalid request was refused, every answer consistent" 0 "$(r unexpected)"
check_eq "the writer's data read back intact, no I/O errors, dm commands fine" "0 0 0 0" \
	"$(r writer_mismatches) $(r writer_errors) $(r dm_failures) $(r setup_errors)"

# fio ended by itself (time_based), or the teardown kills it.
for ((i = 0; i < 600; i++)); do
	kill -0 "$fiopid" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$fiopid" 2>/dev/null; then
	fail "fio verified its data under the fuzzer" "fio still running"
else
	rc=0
	wait "$fiopid" || rc=$?
	if [ $rc -eq 0 ] && grep -q 'err= 0' "$fio_log"; then
		pass "fio verified its data under the fuzzer"
		diag "$(grep -E 'write: IOPS|read: IOPS' "$fio_log")"
	else
		# Its whole log: --debug=process says how its job ended.
		fail "fio verified its data under the fuzzer" \
			"exit $rc: $(cat "$fio_log.err"; head -n 80 "$fio_log")"
	fi
fi

if [ $frc -eq 125 ]; then
	skip "remove the device" "the fuzzer is stuck"
	skip "dm-sxm unloads" "the fuzzer is stuck"
	skip "dm-sxm loads again" "the fuzzer is stuck"
	exit 1
fi
dmsetup resume tfuzz >/dev/null 2>&1 || true
check "remove the device" timeout 60 dmsetup remove --retry tfuzz
check "dm-sxm unloads with nothing left" rmmod dm_sxm
check "dm-sxm loads again" modprobe dm-sxm
