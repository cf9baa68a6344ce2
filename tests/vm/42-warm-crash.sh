#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The daemon killed with kill -9 in the middle of the full sync, and again
# in the middle of an incremental sync: restarted, it resumes each from the
# job record and the kernel's held regions without copying again what was
# done.  The bytes are counted on the sink (nbdkit's log filter): after the
# first restart the sink gets exactly the part of the device past the
# saved cursor, and nothing below it; after the second, exactly the
# regions the kernel still held (harvested, never acknowledged).  The
# device here is a plain block device, so the job made /dev/mapper/NAME
# over it.  A cutover then leaves the sink identical to the source.
# Last, a cutover interrupted twice: stopped with SIGTERM the daemon gives
# the guest its disk back (the job is Ready again); with a guest writing,
# the cutover syncs live first and then freezes the source, and killed
# with kill -9 then it leaves the device suspended, and restarted it
# finishes the cutover.
# vm-timeout: 300
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup nbdkit nbdcopy fio

MIB=32 SIZE=$((32 << 20)) RS=65536
scratch_dev disk $MIB
rand_fill "$disk" $MIB
slog=/tmp/sink42.log
sink_start --filter=log memory size=${MIB}M logfile=$slog
daemon_start

rec=$SXM_JOB_DIR/crash42.job
saved() { sed -n "s/^$1 //p" "$rec"; }
saved_of() { sed -n "s/^$2 //p" "$SXM_JOB_DIR/$1.job"; }
# Bytes the sink was sent after line $1 of its log; and its lowest offset.
sent_after() { tail -n +$(($1 + 1)) $slog > /tmp/sink42.part; sink_bytes /tmp/sink42.part; }
lowest_write() {
	grep -oE ' Write id=[0-9]+ offset=0x[0-9a-f]+' /tmp/sink42.part |
		sed 's/.*offset=0x//' | while read -r o; do echo $((16#$o)); done |
		sort -n | head -n 1
}

# ----------------------------------------------- kill -9 in the full sync ----

cleanup_push _tc_dm_remove crash42
check "submit a plain device at 4 MiB/s" sxm-ctl submit --source "$disk" \
	--sink "$SINK_URI" --name crash42 --rate 4M
check "the job made /dev/mapper/crash42 over it" \
	wait_until 20 test -b /dev/mapper/crash42
check "the full sync saves its cursor as it goes" \
	wait_until 60 bash -c "[ \$(sed -n 's/^full_done //p' $rec) -ge $((8 << 20)) ]"
# Into the next chunk: the sink has been sent more than the saved cursor.
# (The cursor read first: read second, it may count the chunk the sink
# was sent meanwhile, and on a slow machine always does.)
past_cursor() {
	local c
	c=$(saved full_done)
	[ "$(sink_bytes $slog)" -gt "$c" ]
}
check "the copy goes on past the saved cursor" wait_until 60 past_cursor
daemon_kill9
# What the killed daemon had sent is all in the sink's log once its
# connections are closed there.
check "the sink saw its connections close" wait_until 30 sink_quiet $slog
cursor=$(saved full_done)
saved_full=$(saved bytes_full)
before=$(sink_bytes $slog)
mark=$(wc -l < $slog)
diag "killed at cursor $cursor; the sink had been sent $before bytes"
check_eq "killed in the Full Sync phase" "Full Sync" "$(saved phase)"
check "the cursor is inside the device" test "$cursor" -gt 0 -a "$cursor" -lt $SIZE
check "the sink got the cursor and at most one chunk (12 MiB) more" \
	test "$before" -ge "$cursor" -a $((before - cursor)) -le $((12 << 20))
check "tracking went on without a helper" bash -c \
	"sxm-ctl status crash42 | grep -q '^  helper *none' && sxm-ctl status crash42 | grep -q '^  mode *track'"

daemon_start
check "restarted, the job finishes its full sync" wait_phase crash42 Ready 90
after=$(sent_after "$mark")
check_eq "after the restart the sink got exactly the device past the cursor" \
	$((SIZE - cursor)) "$after"
low=$(lowest_write)
check "and nothing below the cursor ($low >= $cursor)" test "${low:-0}" -ge "$cursor"
check "the events say where it resumed" bash -c \
	"sxm-ctl show crash42 | grep -q 'full sync resumes at $cursor of $SIZE bytes'"
# What the killed daemon sent after its last save is lost to the count.
check_eq "Bytes (Full): what was saved before the kill plus what was sent after" \
	$((saved_full + after)) "$(jf crash42 bytes_full)"

# ----------------------------------------- kill -9 in an incremental sync ----

# 16 MiB of new data in regions 64..319 (a known set), then a slow sync.
dd if=/dev/urandom of=/dev/mapper/crash42 bs=1M seek=4 count=16 oflag=direct status=none
check_eq "the writes are tracked: 16 MiB dirty" $((16 << 20)) "$(jf crash42 dirty_bytes)"
mark=$(wc -l < $slog)
check "sync" sxm-ctl sync crash42
check "the sync acknowledges its first chunks as it goes" \
	wait_until 60 bash -c "[ \$(sed -n 's/^bytes_incr //p' $rec) -gt 0 ]"
# Into the next chunk: the sink has been sent more than was acknowledged.
past_acked() {
	local a
	a=$(saved bytes_incr)
	[ "$(sent_after "$mark")" -gt "$a" ]
}
check "the sync goes on past what it acknowledged" wait_until 60 past_acked
daemon_kill9
check "the sink saw its connections close" wait_until 30 sink_quiet $slog
acked=$(saved bytes_incr)
sent1=$(sent_after "$mark")
held=$(sxm-ctl status crash42 --json | sed -n 's/.*"held_regions":\([0-9]*\).*/\1/p')
diag "killed with $acked bytes acknowledged, $sent1 sent, $held regions held"
check_eq "killed in the Syncing phase" Syncing "$(saved phase)"
check_eq "the kernel holds exactly what was not acknowledged" \
	$(((16 << 20) - acked)) $((held * RS))
check "and the sink had at most one chunk more than was acknowledged" \
	test $((sent1 - acked)) -ge 0 -a $((sent1 - acked)) -le $((12 << 20))

mark=$(wc -l < $slog)
daemon_start
synced_once() { [ "$(jf crash42 sync_count)" = 1 ]; }
check "restarted, the sync completes" wait_until 60 synced_once
check_eq "after the restart the sink got exactly the held regions" \
	$((held * RS)) "$(sent_after "$mark")"
check_eq "Sync Count 1" 1 "$(jf crash42 sync_count)"
check_eq "Bytes (Incr): the acknowledged part plus the rest" \
	$((acked + held * RS)) "$(jf crash42 bytes_incr)"
check_eq "nothing left dirty or held" 0 "$(jf crash42 dirty_bytes)"

# -------------------------------------------------------------- cutover ----

check "cutover" sxm-ctl cutover crash42 --wait
check_eq "the sink is identical to the source" "$(sha256_of "$disk")" \
	"$(sha256_of "$SINK_URI")"

# ---------------------------------------- a cutover, SIGTERM and kill -9 ----

# A sink half a second away: a cutover lasts long enough to stop.  (A
# link delay, not nbdkit's delay filter, which aborts nbdkit 1.32 when a
# killed client leaves delayed requests behind: see sink_start.)
scratch_dev disk2 16
rand_fill "$disk2" 16
sink_start --delay 500ms memory size=16M
cleanup_push _tc_dm_remove cut42
check "submit to a slow sink" sxm-ctl submit --source "$disk2" --sink "$SINK_URI" \
	--name cut42 --wait
dd if=/dev/urandom of=/dev/mapper/cut42 bs=1M count=8 oflag=direct status=none
check "cutover" sxm-ctl cutover cut42
check "Cutting Over" wait_phase cut42 "Cutting Over" 30
daemon_stop
check "SIGTERM mid-cutover: the device is resumed" bash -c \
	"dmsetup info cut42 | grep -q '^State: *ACTIVE'"
check_eq "and the job saved as Ready" Ready "$(saved_of cut42 phase)"
daemon_start
check_eq "restarted: Ready" Ready "$(jf cut42 phase)"
# A guest writing through it, so that the cutover's live catch-up leaves
# a delta to copy frozen, which the slow sink makes last seconds.
fio_load fio42 /dev/mapper/cut42 /tmp/fio42.log --rate_iops=20
check "the guest is writing" wait_until 30 bash -c \
	"[ \$(sxm-ctl show cut42 --json | sed -n 's/.*\"dirty_bytes\":\([0-9]*\).*/\1/p') -gt 0 ]"
# (The job's online verify may be opening its connections over the slow
# link when the cutover is asked: the phase changes once they are up.)
check "cutover again" sxm-ctl cutover cut42
check "Cutting Over" wait_phase cut42 "Cutting Over" 30
check "the source is frozen once the live syncs caught up" wait_until 90 bash -c \
	"dmsetup info cut42 | grep -q '^State: *SUSPENDED'"
daemon_kill9
t_dead=$(uptime_ms)
check "kill -9 mid-cutover: the device stays suspended" bash -c \
	"dmsetup info cut42 | grep -q '^State: *SUSPENDED'"
daemon_start
t_back=$(uptime_ms)
check "restarted, the daemon finishes the cutover" wait_phase cut42 Completed 60
held=$(jf cut42 downtime_ms)
check "the downtime counts from the freeze, not the restart ($held ms; the daemon was gone $((t_back - t_dead)) ms)" \
	test "$held" -ge $((t_back - t_dead))
check "the events say it resumed in Cutting Over" bash -c \
	"sxm-ctl show cut42 | grep -q 'the job resumes in Cutting Over'"
check "the device is still suspended (frozen)" bash -c \
	"dmsetup info cut42 | grep -q '^State: *SUSPENDED'"
check_eq "the sink is identical to the source" "$(sha256_of "$disk2")" \
	"$(sha256_of "$SINK_URI")"
dmsetup resume cut42
fio_stop fio42 /tmp/fio42.log "fio, held and let go, saw no error"
