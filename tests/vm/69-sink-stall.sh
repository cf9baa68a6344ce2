#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A sink that stops answering: its server takes the requests and never
# replies (the server stopped with SIGSTOP: hung, or overloaded), or the
# link to it drops everything (the veth down).  Nothing else would end such a request (TCP retries for a quarter
# of an hour), so every sink connection a job makes gives up after the
# job's --io-timeout without a sign of life:
#   - warm style: a full sync and an incremental sync fail within the
#     timeout, saying "Connection timed out", while fio writes on; a cancel
#     asked for meanwhile ends within it too; once the sink answers again
#     retry finishes, with no false "the sink changed";
#   - mirror style: the mirror degrades, the guest writes on, the job stays
#     Mirrored; once the sink answers again the mirror is back by itself and
#     the sink equals the source; then the cutover.
# vm-timeout: 420
# The timeouts are the helper's; the kernel's part (the mirror degraded and
# back) is 50's and 74's on the debug kernel: make check's debug pass
# leaves it out, its longest test (make check-debug runs it).
# vm: no-debug
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"
. "$(dirname "$0")/../lib/mirror.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio qemu-nbd nbdcopy cmp

# The sink: qemu-nbd in the sink's namespace, serving an image file.  Not
# nbdkit: nbdkit 1.32 aborts when requests it held answer a connection
# that has gone, which is what a client that gave up leaves behind.
qsink_start() {	# VAR PORT IMAGE: VAR=URI, VAR_pid
	_tc_sink_netns
	spawn "$1_pid" ip netns exec "$SINK_NS" qemu-nbd -f raw -e 8 -t \
		-b "$SINK_ADDR" -p "$2" "$3" 2>>"/tmp/qemu-nbd-$2.log"
	printf -v "$1" %s "nbd://$SINK_ADDR:$2"
	wait_until 20 nbdinfo --size "nbd://$SINK_ADDR:$2" ||
		bail "qemu-nbd on port $2 did not answer"
}

# Seconds since $t0, for the diagnostics.
since() { echo $(($(date +%s) - t0)); }

daemon_start

# ----------------------------------------------------- warm style ----

scratch_dev d1 16
rand_fill "$d1" 16
lv_create lv69 "$d1" 16
img=/tmp/sink69a.img
truncate -s 16M $img
cleanup_push rm -f $img /tmp/sink69b.img
qsink_start uri_a 10869 $img
fio_log=/tmp/fio69.log
fio_load fio_pid /dev/mapper/lv69 "$fio_log" --size=8M

check "submit --io-timeout 3s at 2 MiB/s" sxm-ctl submit \
	--source /dev/mapper/lv69 --sink "$uri_a" --name w69 --rate 2M \
	--io-timeout 3s
check_eq "show says the I/O timeout" 3000 "$(jf w69 io_timeout_ms)"
check "the full sync is under way" wait_until 30 bash -c \
	"[ \$(sed -n 's/^full_done //p' $SXM_JOB_DIR/w69.job) -gt 0 ]"
check "the sink stops answering" kill -STOP "$uri_a_pid"
t0=$(date +%s)
check "the job fails within the timeout (and some)" wait_phase w69 Failed 20
diag "failed $(since) s after the sink stopped answering"
reason=$(sxm-ctl show w69 --json | sed -n 's/.*"reason":"\([^"]*\)".*/\1/p')
diag "reason: $reason"
check "the reason names the sink, the request and the timeout" \
	grep -qE "^sink $uri_a: (write|write-zeroes|read|flush)( at 0x[0-9a-f]+ .*)?: Connection timed out$" <<< "$reason"
check_eq "in Full Sync" "Full Sync" "$(jf w69 fail_phase)"
check "fio writes on" kill -0 "$fio_pid"
check "the sink answers again" kill -CONT "$uri_a_pid"
check "retry --wait finishes the full sync" sxm-ctl retry w69 --wait
check_eq "the same sink: no change found" 0 "$(jf w69 sink_changes)"

# An incremental sync with the sink not answering.
sleep 1
check "the sink stops answering again" kill -STOP "$uri_a_pid"
t0=$(date +%s)
expect_rc "sync --wait fails on the timeout" 1 "Connection timed out" \
	sxm-ctl sync w69 --wait
diag "the sync failed $(since) s after the sink stopped answering"
check_eq "Failed in Syncing" "Failed Syncing" \
	"$(jf w69 phase) $(jf w69 fail_phase)"
check "fio writes on" kill -0 "$fio_pid"
check "the sink answers again" kill -CONT "$uri_a_pid"
check "retry --wait runs the sync again" sxm-ctl retry w69 --wait
check_eq "no change found" 0 "$(jf w69 sink_changes)"

# The link drops everything: the same, without the server knowing.  The
# sync's own requests time out; or the online verify's did first, the job
# let that connection go, and the sync's new one finds no route to the
# sink (the link's route went with it).  Either way within the timeout.
ip link set "$SRC_IF" down
t0=$(date +%s)
rc=0
out=$(sxm-ctl sync w69 --wait 2>&1) || rc=$?
diag "the sync failed $(since) s after the link went down"
check "the link down: sync --wait fails on the timeout, or finds no route" \
	bash -c '[ "$1" = 1 ] && grep -qE "Connection timed out|Network is unreachable" <<< "$2"' \
	_ "$rc" "$out"
check "within the timeout and some" test "$(since)" -le 15
ip link set "$SRC_IF" up
check "the link up: retry --wait runs the sync again" sxm-ctl retry w69 --wait

# A cancel while the sink holds a sync's requests: done within the bound.
check "the sink stops answering once more" kill -STOP "$uri_a_pid"
sxm-ctl sync w69 >/dev/null
sleep 1
t0=$(date +%s)
check "cancel --wait while the sink does not answer" sxm-ctl cancel w69 --wait
diag "cancelled in $(since) s"
check "within the timeout and some" test "$(since)" -le 15
check "the device is running" bash -c \
	"dmsetup info lv69 | grep -q '^State: *ACTIVE'"
check "the sink answers again" kill -CONT "$uri_a_pid"
fio_stop fio_pid "$fio_log" "fio saw no error through all of it"
check "the sink server lived through all of it" kill -0 "$uri_a_pid"

# ---------------------------------------------------- mirror style ----

scratch_dev d2 32
rand_fill "$d2" 32
lv_create lv69m "$d2" 32
img=/tmp/sink69b.img
truncate -s 32M $img
qsink_start uri_b 10870 $img
fa=/tmp/fio69a.log fb=/tmp/fio69b.log
fio_load fa_pid /dev/mapper/lv69m "$fa" --offset=8M --size=24M --thread \
	--fsync=32
fio_load fb_pid /dev/mapper/lv69m "$fb" --thread --ioengine=psync \
	--iodepth=1 --bs=512 --size=8M --sync=dsync --rate_iops=80
sleep 1
check "submit --kind sxm --io-timeout 3s --wait" sxm-ctl submit \
	--source /dev/mapper/lv69m --sink "$uri_b" --kind sxm --name m69 \
	--io-timeout 3s --wait
check "the sink stops answering" kill -STOP "$uri_b_pid"
t0=$(date +%s)
check "the mirror degrades" wait_mirror lv69m degraded 20
diag "degraded ($(mstate lv69m)) $(since) s after the sink stopped answering"
sleep 8
check "the guest writes on" bash -c "kill -0 $fa_pid && kill -0 $fb_pid"
check_eq "the job stays Mirrored (and keeps trying)" Mirrored "$(jf m69 phase)"
check "the events say why it cannot come back yet" wait_until 20 bash -c \
	"sxm-ctl show m69 | grep -qE 'the mirror cannot come back yet: .*(timed out|no NBD handshake within)'"
diag "said $(since) s after the sink stopped answering"
check "the sink answers again" kill -CONT "$uri_b_pid"
t0=$(date +%s)
check "the mirror is back by itself" wait_mirror lv69m on 60
diag "back $(since) s after the sink answered again"
compare_clean "the sink equals the source again" lv69m \
	/dev/mapper/lv69m-sxm-orig $img "$fa_pid" "$fb_pid"
check "cutover --wait" sxm-ctl cutover m69 --wait
check_eq "the sink is byte-identical to the frozen source" \
	"$(sha256_of /dev/mapper/lv69m-sxm-orig)" "$(sha256_of $img)"
dmsetup resume lv69m
sleep 1
fio_stop fa_pid "$fa" "fio 4 KiB --verify=crc32c saw no error"
fio_stop fb_pid "$fb" "fio 512 B O_DSYNC --verify=crc32c saw no error"
check "the sink server lived through all of it" kill -0 "$uri_b_pid"
