#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Mirror-style jobs failing, resuming and cancelled, under a fio --verify
# writer (4 KiB writes over the first 8 MiB of the device):
#   - sink writes failing from the start: the bulk copy fails, the job is
#     Failed (Mirroring + Copying) with the reason and lets the device go
#     (the mirror off, no helper); the errors stop, "retry --wait" goes on
#     to Mirrored;
#   - cancel while Mirrored: sxm is taken out again, the device's table is
#     what it was, the guest writes on;
#   - a bulk copy to a slow sink held to --rate, paused (it stands still:
#     the sink gets nothing past the guest's 8 MiB; the mirror stays on and
#     mirrors) and resumed; the daemon killed with kill -9 in the middle of
#     it, past 12 MiB: the bytes are counted at the sink (nbdkit's log
#     filter), so that a cursor the daemon claims but did not copy fails
#     the test.  Before the kill the sink had every byte below the saved
#     cursor; restarted, the copy resumes there: the sink gets every byte
#     past the cursor exactly once and nothing between 8 MiB and the
#     cursor (no guest write dirtied that), the job composes to Mirrored,
#     and the cutover leaves the sink identical to the source.
# On the debug kernel (KASAN and lockdep on every bio and packet) the bulk
# copy moved 256 KiB in 2 s, and the test did not end in 720 s: hence the
# time limit.
# vm-timeout: 450
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"
. "$(dirname "$0")/../lib/mirror.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio nbdkit nbdcopy

MIB=32 SIZE=$((32 << 20))
scratch_dev disk $MIB
rand_fill "$disk" $MIB
lv_create lv56 "$disk" $MIB
table0=$(dmsetup table lv56)
img=/tmp/sink56.img flag=/tmp/sink56.fail
truncate -s ${MIB}M $img
cleanup_push rm -f $img $flag
touch $flag
sink_start --filter=error file file=$img error-pwrite=EIO \
	error-pwrite-rate=100% error-pwrite-file=$flag
uri_err=$SINK_URI
daemon_start
fio_log=/tmp/fio56.log
fio_load fio_pid /dev/mapper/lv56 "$fio_log" --thread

# ----------------------------------------------------- failed, retried ----

out=$(sxm-ctl submit --source /dev/mapper/lv56 --sink "$uri_err" --kind sxm \
	--name e56 --wait 2>&1) && rc=0 || rc=$?
diag "$out"
check_eq "submit --wait fails on the sink's write errors" 1 "$rc"
check_eq "Failed in Mirroring + Copying" "Failed Mirroring + Copying" \
	"$(jf e56 phase) $(jf e56 fail_phase)"
check "the reason names the sink, the write and the error" bash -c \
	"sxm-ctl show e56 | grep -E '^Reason +sink nbd://.*write at 0x[0-9a-f]+ .*Input/output error'"
check "the device is let go: no helper, the mirror not on" \
	wait_until 20 bash -c "dmsetup status lv56 | awk '{ exit !(\$9 == \"-\" && \$11 != \"on\") }'"
check "the guest writes on" kill -0 "$fio_pid"
rm -f $flag
check "retry --wait goes on to Mirrored" sxm-ctl retry e56 --wait
check_eq "Mirrored, the mirror on" "Mirrored on -" "$(jf e56 phase) $(mstate lv56)"
compare_clean "the sink equals the source" lv56 /dev/mapper/lv56-sxm-orig \
	$img "$fio_pid"

# ---------------------------------------------------------------- cancel ----

check "cancel --wait" sxm-ctl cancel e56 --wait
check_eq "Cancelled" Cancelled "$(jf e56 phase)"
check_eq "the device's table is what it was" "$table0" "$(dmsetup table lv56)"
check "the hidden device is gone" bash -c "! dmsetup info lv56-sxm-orig"
check "the guest writes on" kill -0 "$fio_pid"
check "forget" sxm-ctl forget e56

# ------------------------------------------- kill -9 in the bulk copy ----

slog=/tmp/sink56.log
sink_start -p 10866 --delay 40ms --filter=log file file=$img logfile=$slog
# The sink's log from line $1 on: what it got after then.
log_from() { tail -n +"$1" $slog; }
# "START END" in bytes of each write (and zero) the sink got, from stdin.
sink_extents() {
	local x
	x=$(grep -oE ' (Write|Zero) id=[0-9]+ offset=0x[0-9a-f]+ count=0x[0-9a-f]+' |
		sed 's/.*offset=\(0x[0-9a-f]*\) count=\(0x[0-9a-f]*\)/\1 \2/')
	[ -n "$x" ] || return 0
	# shellcheck disable=SC2086
	printf '%d %d\n' $x | awk '{ printf "%d %d\n", $1, $1 + $2 }'
}
# covers LO HI < LOG — the writes in LOG cover every byte of [LO, HI);
# else the first byte they miss.
covers() {
	sink_extents | sort -n -k1,1 | awk -v lo="$1" -v hi="$2" '
		$1 <= lo && $2 > lo { lo = $2 }
		END { if (lo >= hi) exit 0; print "not written from byte " lo; exit 1 }'
}
# bytes_in LO HI < LOG — bytes the writes in LOG put in [LO, HI), each
# time a byte was written.
bytes_in() {
	sink_extents | awk -v lo="$1" -v hi="$2" '
		{ s = $1 > lo ? $1 : lo; e = $2 < hi ? $2 : hi; if (e > s) n += e - s }
		END { printf "%d\n", n }'
}
FIO_END=$((8 << 20))	# the writer's range is [0, 8 MiB)

# 4 MiB/s: the bulk copy lasts seconds however quick the machine is, so
# that the pause and the kill -9 find it running.
check "submit --kind sxm to a slow sink" sxm-ctl submit \
	--source /dev/mapper/lv56 --sink "$SINK_URI" --kind sxm --name k56 \
	--rate 4M
rec=$SXM_JOB_DIR/k56.job
saved() { sed -n "s/^$1 //p" "$rec"; }
cursor_at_least() { [ "$(saved full_done)" -ge "$1" ]; }
check "the bulk copy saves its cursor as it goes" \
	wait_until 90 cursor_at_least $((2 << 20))
# Paced between its groups of batches (it saves the cursor after each),
# it copies at most 4 MiB a second: over an interval of T s the cursor
# moves at most 4 MiB * T and the one group under way at its start.  The
# sleep is the interval measured over, not a wait for an event; the
# groups' sizes are seen as the cursor moves.
t0=$(uptime_ms) d0=$(saved full_done) dp=$d0 group=0
while [ $(($(uptime_ms) - t0)) -lt 2000 ]; do
	sleep 0.1
	d=$(saved full_done)
	[ $((d - dp)) -le "$group" ] || group=$((d - dp))
	dp=$d
done
t1=$(uptime_ms) d1=$(saved full_done)
lim=$(((4 << 20) * (t1 - t0) / 1000 + group))
diag "the cursor moved $((d1 - d0)) bytes in $((t1 - t0)) ms, by at most $group at once"
check "--rate 4M holds the bulk copy to it (at most $lim bytes)" \
	test $((d1 - d0)) -le $lim
check "pause" sxm-ctl pause k56
# Paused, the copy gives up its batch under way and waits, its op none.
paused() { [ "$(jf k56 op)" = "" ] && [ "$(jf k56 paused)" = true ]; }
check "the bulk copy stops" wait_until 30 paused
c1=$(jf k56 full_done) mark=$(($(wc -l < $slog) + 1))
stays_on "paused, the mirror stays on and mirrors the guest's writes" \
	lv56 k56 3 "Mirroring + Copying"
check_eq "paused, the bulk copy stands still" "$c1" "$(jf k56 full_done)"
check_eq "and the sink got nothing past the guest's range meanwhile" 0 \
	"$(log_from $mark | bytes_in $FIO_END $SIZE)"
check "resume" sxm-ctl resume k56
# Past 12 MiB: [8 MiB, cursor) is then a range no guest write dirties.
past=$((c1 + (2 << 20)))
[ $past -ge $((12 << 20)) ] || past=$((12 << 20))
check "the bulk copy goes on (to $past)" wait_until 90 cursor_at_least $past
daemon_kill9
# What the killed daemon had sent is all in the sink's log once its
# connections are closed there; nothing writes to the sink until the
# restart (the mirror's pump was the daemon's).
check "the sink saw its connections close" wait_until 30 sink_quiet $slog
cursor=$(saved full_done)
saved_bulk=$(saved bytes_full)
mark=$(($(wc -l < $slog) + 1))
diag "killed at cursor $cursor"
check_eq "killed in Mirroring + Copying" "Mirroring + Copying" "$(saved phase)"
check "the cursor is inside the device, past 12 MiB" \
	test "$cursor" -ge $((12 << 20)) -a "$cursor" -lt $SIZE
check "before the kill the sink got every byte below the cursor" \
	covers 0 "$cursor" < $slog
check_eq "the target degraded: the helper is gone" "degraded helper_detached" \
	"$(mstate lv56)"
daemon_start
check "restarted, the job composes to Mirrored" wait_phase k56 Mirrored 240
check "the bulk copy resumed at the cursor" bash -c \
	"sxm-ctl show k56 | grep -q 'bulk copy resumes at $cursor of $SIZE bytes'"
log_from $mark > /tmp/sink56.after
check "after the restart the sink got every byte past the cursor" \
	covers "$cursor" $SIZE < /tmp/sink56.after
check_eq "each of them once" $((SIZE - cursor)) \
	"$(bytes_in "$cursor" $SIZE < /tmp/sink56.after)"
check_eq "and nothing below the cursor past the guest's range" 0 \
	"$(bytes_in $FIO_END "$cursor" < /tmp/sink56.after)"
check_eq "the job's count agrees: Bytes (Bulk) grew by the device past the cursor" \
	$((saved_bulk + SIZE - cursor)) "$(jf k56 bytes_full)"
check "the cutover" sxm-ctl cutover k56 --wait
check_eq "the sink is identical to the frozen source" \
	"$(sha256_of /dev/mapper/lv56-sxm-orig)" "$(sha256_of $img)"
dmsetup resume lv56
check "resumed, the writer's writes go through" wait_writes lv56 20
fio_stop fio_pid "$fio_log" "fio --verify=crc32c saw no error through it all"
