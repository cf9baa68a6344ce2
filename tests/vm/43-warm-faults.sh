#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Sink faults, from real tools (nbdkit's error, rate and delay filters, and
# kill -9 of the server):
#   - write errors fail the full sync, an incremental sync and a cutover
#     cleanly: the job says why, nothing is lost (the kernel holds what was
#     not acknowledged), a failed cutover resumes the device and the job is
#     Ready again while fio writes on through it with no error; once the
#     errors stop, retry (and cutover) complete, the sink equal the source;
#   - a slow sink (5 MB/s, 10 ms a write) still converges under load;
#   - the sink killed in the middle of the full sync: the job fails with
#     the reason, the server comes back, retry finishes the job.
# vm-timeout: 240
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio nbdkit nbdcopy

daemon_start

# ------------------------------------------------------- write errors ----

scratch_dev d1 16
rand_fill "$d1" 16
lv_create lv43 "$d1" 16
truncate -s 16M /tmp/sink43a.img
flag=/tmp/sink43a.fail
touch $flag
sink_start --filter=error file file=/tmp/sink43a.img error-pwrite=EIO \
	error-pwrite-rate=100% error-pwrite-file=$flag
uri_a=$SINK_URI
fio_log=/tmp/fio43.log
fio_load fio_pid /dev/mapper/lv43 "$fio_log"

expect_rc "submit --wait: the full sync fails on the write errors" 1 \
	"write at 0x" sxm-ctl submit --source /dev/mapper/lv43 --sink "$uri_a" \
	--name err43 --wait
check_eq "the job is Failed" Failed "$(jf err43 phase)"
check "the reason names the sink, the write and the error" bash -c \
	"sxm-ctl show err43 | grep -E '^Reason +sink nbd://.*: write at 0x[0-9a-f]+ .*Input/output error'"
rm -f $flag
check "retry --wait finishes the full sync" sxm-ctl retry err43 --wait
check_eq "Ready" Ready "$(jf err43 phase)"

touch $flag
sleep 1
expect_rc "sync --wait fails on the write errors" 1 "Input/output error" \
	sxm-ctl sync err43 --wait
check_eq "Failed in Syncing" "Failed Syncing" "$(jf err43 phase) $(jf err43 fail_phase)"
held=$(sxm-ctl status lv43 --json | sed -n 's/.*"held_regions":\([0-9]*\).*/\1/p')
check "nothing is lost: the kernel holds the regions not copied ($held)" \
	test "${held:-0}" -gt 0
check_eq "the failed sync is not counted" 0 "$(jf err43 sync_count)"
rm -f $flag
check "retry --wait runs the sync again" sxm-ctl retry err43 --wait
check_eq "Sync Count 1" 1 "$(jf err43 sync_count)"

touch $flag
expect_rc "cutover --wait fails on the write errors" 1 "cutover failed" \
	sxm-ctl cutover err43 --wait
check_eq "the job is Ready again, not Failed" Ready "$(jf err43 phase)"
check "the device was resumed: the guest keeps its disk" bash -c \
	"dmsetup info lv43 | grep -q '^State: *ACTIVE'"
check "fio writes on" kill -0 "$fio_pid"
check_eq "the failed cutover is counted" 1 "$(jf err43 cutover_failures)"
rm -f $flag
check "cutover --wait once the errors stop" sxm-ctl cutover err43 --wait
check_eq "the sink equals the frozen source" \
	"$(sha256_of /dev/mapper/lv43-sxm-orig)" "$(sha256_of "$uri_a")"
dmsetup resume lv43
fio_stop fio_pid "$fio_log" "fio saw no error through all of it"

# ---------------------------------------------------------- slow sink ----

scratch_dev d2 16
rand_fill "$d2" 16
sink_start --filter=rate --filter=delay memory size=16M rate=40M delay-write=10ms
uri_b=$SINK_URI
cleanup_push _tc_dm_remove slow43
check "submit to a slow sink (5 MB/s)" sxm-ctl submit --source "$d2" \
	--sink "$uri_b" --name slow43 --wait
fio_load fio2_pid /dev/mapper/slow43 /tmp/fio43b.log --size=4M --rate_iops=50
ok=1 sizes=""
for i in 1 2 3; do
	sleep 1
	sxm-ctl sync slow43 --wait >/dev/null 2>&1 || ok=0
	sizes+=" $(jf slow43 last_sync_bytes)"
done
diag "sync sizes under load:$sizes"
check_eq "three syncs complete under load" "1 3" "$ok $(jf slow43 sync_count)"
check "each sync stays within the 4 MiB the load writes" bash -c \
	"for s in $sizes; do [ \$s -le $((4 << 20)) ] || exit 1; done"
fio_stop fio2_pid /tmp/fio43b.log "fio through the slow job: no error"
check "a sync after the load catches up" sxm-ctl sync slow43 --wait
check_eq "nothing dirty: converged" 0 "$(jf slow43 dirty_bytes)"
check "cutover" sxm-ctl cutover slow43 --wait
check_eq "cutover with nothing left to copy" 0 "$(jf slow43 cutover_bytes)"
check_eq "the slow sink equals the source" "$(sha256_of "$d2")" \
	"$(sha256_of "$uri_b")"

# ------------------------------------------------ the sink killed, back ----

scratch_dev d3 16
rand_fill "$d3" 16
truncate -s 16M /tmp/sink43c.img
sink_start file file=/tmp/sink43c.img
uri_c=$SINK_URI port_c=$SINK_PORT pid_c=$SINK_PID
cleanup_push _tc_dm_remove kill43
check "submit at 4 MiB/s" sxm-ctl submit --source "$d3" --sink "$uri_c" \
	--name kill43 --rate 4M
check "the full sync is under way" wait_until 30 bash -c \
	"[ \$(sed -n 's/^full_done //p' $SXM_JOB_DIR/kill43.job) -gt 0 ]"
kill -KILL "$pid_c"
check "the job fails" wait_phase kill43 Failed 30
reason=$(sxm-ctl show kill43 --json | sed -n 's/.*"reason":"\([^"]*\)".*/\1/p')
diag "reason: $reason"
check "with a reason that names the sink, the write and the lost connection" \
	grep -qE "^sink nbd://$SINK_ADDR:$port_c: write at 0x[0-9a-f]+ .*: (Transport endpoint is not connected|Connection reset by peer|Broken pipe)$" <<< "$reason"
check_eq "in Full Sync" "Full Sync" "$(jf kill43 fail_phase)"
expect_rc "retry while the sink is down fails again, saying why" 1 \
	"Connection refused" sxm-ctl retry kill43 --wait
sink_start -p "$port_c" file file=/tmp/sink43c.img
check "the sink is back: retry --wait finishes the full sync" \
	sxm-ctl retry kill43 --wait
check "cutover" sxm-ctl cutover kill43 --wait
check_eq "the sink equals the source" "$(sha256_of "$d3")" \
	"$(sha256_of "$uri_c")"
