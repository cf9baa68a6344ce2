#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# sxm-ctl copy under sink faults from real nbdkit filters: write errors
# fail the copy with a clear message and leave the failed and uncopied
# regions in the still-dirty bitmap, from which a retry completes the copy
# with identical data; a failing flush leaves everything dirty; a slow
# sink still completes; a sink killed mid-copy and an interrupted copy end
# promptly with the regions left; a sink that stops answering fails the
# copy after --io-timeout (and a slow one that answers does not); the rate
# limit holds, roughly.
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/native_nbd.sh"
native_setup
require_cmd qemu-nbd

make_random "$T/src" 32
zero_words() { [ "$(tr -d '\0' <"$1" | wc -c)" -eq 0 ]; }
dirty_bits() {
	od -An -v -tu1 "$1" | tr -s ' ' '\n' | grep -v '^$' |
		awk '{ n = $1; while (n) { c += n % 2; n = int(n / 2) } } END { print c + 0 }'
}

# --- Write errors, then a retry from the still-dirty bitmap. -------------
touch "$T/fault"
nbd_start unix sink --filter=error memory size=32M \
	error-pwrite=EIO error-pwrite-rate=10% error-pwrite-file="$T/fault"
expect_err "write errors fail the copy, saying where" 1 \
	"sink $sink: write at 0x" \
	"$SXM_CTL" copy --dirty-out "$T/dirty" "$T/src" "$sink"
out=$("$SXM_CTL" copy --dirty-out "$T/dirty" "$T/src" "$sink" 2>&1) || true
grep -q "bytes): Input/output error" <<<"$out" &&
	pass "the message has the length and the error" ||
	fail "the message has the length and the error" "$out"
n=$(dirty_bits "$T/dirty")
if [ "$n" -gt 0 ] && [ "$n" -le 512 ]; then
	pass "still-dirty bitmap saved ($n of 512 regions)"
else
	fail "still-dirty bitmap saved" "$n regions set"
fi
rm -f "$T/fault"
check "retry with the still-dirty bitmap completes" \
	"$SXM_CTL" copy --bitmap "$T/dirty" --dirty-out "$T/dirty2" "$T/src" "$sink"
check "nothing left dirty after the retry" zero_words "$T/dirty2"
same_data "after the retry the export equals the source" "$T/src" "$sink"
_tc_kill "$sink_pid"

# The same with every write failing: nothing is claimed done.
touch "$T/fault"
nbd_start tcp sink --filter=error memory size=32M \
	error-pwrite=EIO error-pwrite-rate=100% error-pwrite-file="$T/fault"
"$SXM_CTL" copy --dirty-out "$T/dirty" "$T/src" "$sink" >/dev/null 2>&1 || true
check_eq "all writes failing: every region still dirty" 512 "$(dirty_bits "$T/dirty")"
rm -f "$T/fault"
check "retry after all writes failed" \
	"$SXM_CTL" copy --bitmap "$T/dirty" "$T/src" "$sink"
same_data "retry after all writes failed: data identical" "$T/src" "$sink"
_tc_kill "$sink_pid"

# Write-zeroes errors: a sparse source over an export that has data.
make_sparse "$T/sparse" 32 3 20
touch "$T/fault"
nbd_start unix sink --filter=error memory size=32M \
	error-zero=EIO error-zero-rate=100% error-zero-file="$T/fault"
nbdcopy "$T/src" "$sink"
expect_err "write-zeroes errors fail the copy" 1 "write-zeroes at 0x" \
	"$SXM_CTL" copy --dirty-out "$T/dirty" "$T/sparse" "$sink"
rm -f "$T/fault"
check "retry after write-zeroes errors" \
	"$SXM_CTL" copy --bitmap "$T/dirty" "$T/sparse" "$sink"
same_data "retry after write-zeroes errors: data identical" "$T/sparse" "$sink"
_tc_kill "$sink_pid"

# A flush that fails: nothing can be trusted to be on the sink.
head -c 4M /dev/urandom >"$T/src4"
nbd_start unix sink eval get_size='echo 4194304' can_write='exit 0' \
	pread='dd if=/dev/zero bs=$3 count=1 status=none' \
	pwrite='cat >/dev/null' can_flush='exit 0' \
	flush='echo "EIO the disk is on fire" >&2; exit 1'
expect_err "a failed flush fails the copy" 1 "sink $sink: flush: Input/output error" \
	"$SXM_CTL" copy --dirty-out "$T/dirty" "$T/src4" "$sink"
check_eq "a failed flush leaves every region dirty" 64 "$(dirty_bits "$T/dirty")"
_tc_kill "$sink_pid"

# --- A slow sink still completes. -----------------------------------------
nbd_start tcp sink --filter=delay memory size=32M delay-write=20ms delay-zero=20ms
check "slow sink (20 ms per write)" "$SXM_CTL" copy "$T/src" "$sink"
same_data "slow sink: data identical" "$T/src" "$sink"
_tc_kill "$sink_pid"

# --- The sink dies mid-copy. ----------------------------------------------
nbd_start unix sink --filter=delay memory size=32M delay-write=200ms
"$SXM_CTL" copy --buffer-size 64k --queue-depth 4 --dirty-out "$T/dirty" \
	"$T/src" "$sink" >"$T/killed.out" 2>&1 &
copy_pid=$!
cleanup_push _tc_kill "$copy_pid"
sleep 1
kill -KILL "$sink_pid"
rc=0
for i in $(seq 300); do kill -0 "$copy_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$copy_pid" 2>/dev/null; then
	fail "sink killed: the copy ends" "still running after 30 s"
else
	wait "$copy_pid" || rc=$?
	check_eq "sink killed: the copy fails" 1 "$rc"
	grep -q "^sxm-ctl copy: sink $sink: write at 0x" "$T/killed.out" &&
		pass "sink killed: the message names the sink and the write" ||
		fail "sink killed: the message names the sink and the write" "$(cat "$T/killed.out")"
	n=$(dirty_bits "$T/dirty")
	[ "$n" -gt 0 ] && pass "sink killed: $n regions left dirty" ||
		fail "sink killed: regions left dirty" "none"
fi

# --- Interrupted, then resumed. -------------------------------------------
nbd_start tcp sink --filter=delay memory size=32M delay-write=100ms
"$SXM_CTL" copy --buffer-size 64k --queue-depth 4 --dirty-out "$T/dirty" \
	"$T/src" "$sink" >"$T/int.out" 2>&1 &
copy_pid=$!
cleanup_push _tc_kill "$copy_pid"
sleep 1
kill -INT "$copy_pid"
rc=0
wait "$copy_pid" || rc=$?
check_eq "SIGINT: the copy stops with status 1" 1 "$rc"
grep -q "interrupted" "$T/int.out" && pass "SIGINT: says interrupted" ||
	fail "SIGINT: says interrupted" "$(cat "$T/int.out")"
n=$(dirty_bits "$T/dirty")
[ "$n" -gt 0 ] && [ "$n" -lt 512 ] && pass "SIGINT: $n of 512 regions left" ||
	fail "SIGINT: some regions left" "$n"
check "resume after SIGINT" "$SXM_CTL" copy --bitmap "$T/dirty" --queue-depth 64 \
	"$T/src" "$sink"
same_data "resume after SIGINT: data identical" "$T/src" "$sink"
_tc_kill "$sink_pid"

# --- A sink that stops answering (its server stopped: SIGSTOP). -----------
# The server has taken the requests and never answers: the copy gives up
# on the connection after --io-timeout, fails saying so and leaves the
# regions dirty; an interrupted copy ends within that bound too; once the
# server answers again a retry completes.  qemu-nbd, not nbdkit: nbdkit
# 1.32 aborts when requests it held answer a connection that has gone.
# A sink that answers slowly but keeps answering is no timeout.
ended_within() {	# PID SECONDS: the process is gone by then
	local i
	for i in $(seq $(($2 * 10))); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}
truncate -s 32M "$T/stall.img"
qemu-nbd -f raw -e 4 -t -k "$T/q.sock" "$T/stall.img" 2>"$T/qemu-nbd.log" &
q_pid=$!
cleanup_push _tc_kill "$q_pid"
sink="nbd+unix:///?socket=$T/q.sock"
for i in $(seq 100); do nbdinfo --size "$sink" >/dev/null 2>&1 && break; sleep 0.1; done
"$SXM_CTL" copy --buffer-size 64k --queue-depth 8 --rate 8M --io-timeout 2s \
	--dirty-out "$T/dirty" "$T/src" "$sink" >"$T/stall.out" 2>&1 &
copy_pid=$!
cleanup_push _tc_kill "$copy_pid"
sleep 1
kill -STOP "$q_pid"
t0=$(date +%s)
if ended_within "$copy_pid" 20; then
	rc=0
	wait "$copy_pid" || rc=$?
	diag "the copy ended $(( $(date +%s) - t0 )) s after the server stopped (--io-timeout 2s)"
	check_eq "a stalled sink: the copy fails" 1 "$rc"
	grep -q "sink $sink: write at 0x.*Connection timed out" "$T/stall.out" &&
		pass "a stalled sink: the message says timed out, and where" ||
		fail "a stalled sink: the message says timed out, and where" "$(cat "$T/stall.out")"
	grep -q "no answer for 2 s on connection" "$T/stall.out" &&
		pass "a stalled sink: the log says which connection gave no answer" ||
		fail "a stalled sink: the log says which connection" "$(cat "$T/stall.out")"
	# All of them, as for a killed sink: no flush covered any write.
	n=$(dirty_bits "$T/dirty")
	[ "$n" -gt 0 ] && pass "a stalled sink: $n of 512 regions left dirty" ||
		fail "a stalled sink: regions left dirty" "none"
else
	fail "a stalled sink: the copy ends within 20 s" "still running"
fi
# Interrupted while the sink does not answer: it ends within the bound.
kill -CONT "$q_pid"
"$SXM_CTL" copy --buffer-size 64k --queue-depth 8 --rate 8M --io-timeout 3s \
	--bitmap "$T/dirty" --dirty-out "$T/dirty2" "$T/src" "$sink" \
	>"$T/stall2.out" 2>&1 &
copy_pid=$!
cleanup_push _tc_kill "$copy_pid"
sleep 1
kill -STOP "$q_pid"
sleep 0.5
kill -INT "$copy_pid"
t0=$(date +%s)
if ended_within "$copy_pid" 20; then
	rc=0
	wait "$copy_pid" || rc=$?
	diag "it ended $(( $(date +%s) - t0 )) s after SIGINT (--io-timeout 3s)"
	check_eq "interrupted with the sink stopped: status 1" 1 "$rc"
	grep -q "interrupted" "$T/stall2.out" &&
		pass "interrupted with the sink stopped: says so" ||
		fail "interrupted with the sink stopped: says so" "$(cat "$T/stall2.out")"
	check_eq "interrupted with the sink stopped: nothing copied is claimed" \
		"$(dirty_bits "$T/dirty")" "$(dirty_bits "$T/dirty2")"
else
	fail "interrupted with the sink stopped: ends within 20 s" "still running"
fi
kill -CONT "$q_pid"
check "the server goes on: a retry completes" "$SXM_CTL" copy --io-timeout 2s \
	--bitmap "$T/dirty" "$T/src" "$sink"
check_eq "after the stall and the retry: data identical" \
	"$(sha256sum <"$T/src")" "$(sha256sum <"$T/stall.img")"
_tc_kill "$q_pid"

# Slow, but answering within the timeout: 700 ms a write, 1 s timeout.
head -c 4M /dev/urandom >"$T/src4s"
nbd_start tcp sink --filter=delay memory size=4M delay-write=700ms
check "a slow sink that keeps answering: no timeout" \
	"$SXM_CTL" copy --buffer-size 64k --queue-depth 8 --io-timeout 1s \
	"$T/src4s" "$sink"
same_data "a slow sink: data identical" "$T/src4s" "$sink"
_tc_kill "$sink_pid"

# --- Rate limit: bytes/elapsed not far over it (no tight timing). --------
head -c 24M /dev/urandom >"$T/src24"
nbd_start unix sink memory size=24M
t0=$(date +%s%N)
check "--rate 8M" "$SXM_CTL" copy --rate 8M "$T/src24" "$sink"
t1=$(date +%s%N)
rate=$(( (24 << 20) * 1000 / ((t1 - t0) / 1000000) ))
diag "measured $((rate >> 10)) KiB/s against a limit of 8192 KiB/s"
[ "$rate" -le $(( (8 << 20) * 3 / 2 )) ] &&
	pass "--rate 8M: not over 1.5x the limit" ||
	fail "--rate 8M: not over 1.5x the limit" "$rate bytes/s"
same_data "--rate 8M: data identical" "$T/src24" "$sink"
