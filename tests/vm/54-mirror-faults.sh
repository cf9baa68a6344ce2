#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Mirror style against a faulty sink (a slow link, nbdkit's error filter, a
# downed veth), under fio --verify writers over all of the device:
#   - every sink write slowed (10 ms of link delay): the bulk copy and the mirror
#     race for the same regions all along; once composed, the newest data
#     won everywhere (source and sink equal, the writers frozen);
#   - sink write errors while Mirrored: the mirror degrades (sink_error,
#     counted by the job), the guest sees no error and its writes go on,
#     the job stays Mirrored and keeps trying; the errors stop and the
#     mirror is back, the sink equal again;
#   - the link to the sink down while Mirrored: the mirror degrades
#     (sink_timeout, counted by the job), the guest waits at most the
#     ring's timeout and its writes go on; the link up, the mirror is back,
#     the sink equal again;
#   - a cutover asked for while the mirror is down: with the sink still
#     failing, it fails without freezing the guest; with the sink healed,
#     the mirror is brought back live first and the freeze copies
#     nothing;
# then the sink is identical to the frozen source, fio clean.  The writers
# run throughout, so a slow machine may add a degradation of its own (a
# write past the ring's timeout): each fault is checked to count at least
# one degradation for its reason, and every degradation counted to have
# one, not an exact total.
# vm-timeout: 450
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"
. "$(dirname "$0")/../lib/mirror.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio nbdkit nbdcopy cmp

MIB=32
scratch_dev disk $MIB
rand_fill "$disk" $MIB
lv_create lv54 "$disk" $MIB
img=/tmp/sink54.img flag=/tmp/sink54.fail
truncate -s ${MIB}M $img
cleanup_push rm -f $img $flag
sink_start --delay 10ms --filter=error file file=$img \
	error-pwrite=EIO error-pwrite-rate=100% error-pwrite-file=$flag
daemon_start

# Two writers on ranges of their own (fio's verify cannot share blocks).
fa=/tmp/fio54a.log fb=/tmp/fio54b.log
fio_load fa_pid /dev/mapper/lv54 "$fa" --offset=8M --size=24M --thread \
	--fsync=32
fio_load fb_pid /dev/mapper/lv54 "$fb" --thread --ioengine=psync \
	--iodepth=1 --bs=512 --size=8M --sync=dsync --rate_iops=80
check "the writers write before the job starts" wait_writes lv54 50

mirrored() { mirror_steady lv54 m54; }
# Every degradation the job counted has its reason: the total is the sum
# of "reason:count" over its degraded_reasons.
reasons_add_up() {
	[ "$(jf m54 degradations)" = "$(jf m54 degraded_reasons | tr ' ' '\n' |
		awk -F: '{ n += $2 } END { print n + 0 }')" ]
}

# -------------------------------------------------- a slow sink races ----

check "submit --kind sxm --wait: bulk copy and mirror race on a slow sink" \
	sxm-ctl submit --source /dev/mapper/lv54 --sink "$SINK_URI" --kind sxm \
	--name m54 --wait
check_eq "Mirrored" Mirrored "$(jf m54 phase)"
diag "$(sxm-ctl show m54 | grep -E '^(Mirror|Sink latency|Bytes)')"
compare_clean "the newest data won: sink equals source" lv54 \
	/dev/mapper/lv54-sxm-orig $img "$fa_pid" "$fb_pid"

# ------------------------------------------------------ write errors ----

# Each fault below starts with the mirror on and the job done resyncing:
# a resync under way holds region locks, and a guest write kept waiting
# past the ring's timeout takes the mirror down for lock_timeout, which
# would hide the fault's own reason.
check "the mirror on, the job Mirrored" wait_until 120 mirrored
n_err=$(reason_count m54 sink_error) t1=$(last_event m54)
touch $flag
check "sink write errors degrade the mirror" wait_mirror lv54 degraded 20
check_eq "the reason is sink_error" "degraded sink_error" "$(mstate lv54)"
check "the guest writes on: 100 more writes complete" wait_writes lv54 100
check "the writers are alive" bash -c "kill -0 $fa_pid && kill -0 $fb_pid"
check_event "the events say why it cannot come back yet" m54 "$t1" \
	'the mirror cannot come back yet: .*Input/output error'
check_eq "the job stays Mirrored (and keeps trying)" Mirrored "$(jf m54 phase)"
check "the job counted it: sink_error $n_err, now more" \
	test "$(reason_count m54 sink_error)" -gt "$n_err"
rm -f $flag
check "the errors gone, the mirror is back" wait_mirror lv54 on 60
compare_clean "the sink equals the source again" lv54 \
	/dev/mapper/lv54-sxm-orig $img "$fa_pid" "$fb_pid"

# ------------------------------------------------------ the link down ----

check "the mirror on, the job Mirrored" wait_until 120 mirrored
n_tmo=$(reason_count m54 sink_timeout)
ip link set "$SRC_IF" down
check "a downed link degrades the mirror" wait_mirror lv54 degraded 30
check_eq "the reason is sink_timeout" "degraded sink_timeout" "$(mstate lv54)"
check "the guest writes on: 100 more writes complete" wait_writes lv54 100
check "the writers are alive" bash -c "kill -0 $fa_pid && kill -0 $fb_pid"
ip link set "$SRC_IF" up
check "the link up, the mirror is back" wait_mirror lv54 on 60
check "the job counted it: sink_timeout $n_tmo, now more" \
	test "$(reason_count m54 sink_timeout)" -gt "$n_tmo"
check "every degradation counted has its reason ($(jf m54 degradations): $(jf m54 degraded_reasons))" \
	reasons_add_up
diag "$(sxm-ctl show m54 | grep -E '^(Mirror|Degraded|  [0-9]{4}-)' | tail -n 14)"
compare_clean "the sink equals the source again" lv54 \
	/dev/mapper/lv54-sxm-orig $img "$fa_pid" "$fb_pid"

# ------------------------------------------ a cutover while degraded ----

# Asked for while the mirror is down, a cutover first brings it back live,
# so that the freeze finds nothing dirty; with a sink that takes no writes
# it fails there, and the guest is never frozen for a copy that could not
# succeed.
check "the mirror on, the job Mirrored" wait_until 120 mirrored
t3=$(last_event m54)
touch $flag
check "errors again: the mirror degrades" wait_mirror lv54 degraded 20
check_event "the job has tried, failed, and backs off" m54 "$t3" \
	'the mirror cannot come back yet: .*Input/output error'
expect_fail "a cutover while the sink fails every write: it fails, unfrozen" \
	"the mirror could not come back (sink nbd://" \
	sxm-ctl cutover m54 --wait
check "the reason names the write error and says the guest was not frozen" \
	bash -c "sxm-ctl show m54 | grep -q 'cutover failed: the mirror could not come back (.*Input/output error); the guest was not frozen'"
check "the device is running" bash -c "dmsetup info lv54 | grep -q '^State: *ACTIVE'"
check_eq "the job is Mirrored again, degraded" "Mirrored degraded sink_error" \
	"$(jf m54 phase) $(mstate lv54)"
check "the guest writes on: 50 more writes complete" wait_writes lv54 50
check "the writers are alive" bash -c "kill -0 $fa_pid && kill -0 $fb_pid"
# Not a wait for an event: time for the job's retries to fail again and
# its backoff to grow to seconds (up to 5 s), so that the cutover asked
# for at once finds the mirror still down, most often.  If the job's own
# retry got there first the mirror is up, and the freeze has nothing to
# copy either way: both are checked alike, and the diagnostics say which.
sleep 6
rm -f $flag
check "the errors gone, a cutover asked for at once" \
	sxm-ctl cutover m54 --wait
check_eq "the freeze had nothing left to copy" 0 "$(jf m54 cutover_bytes)"
if sxm-ctl show m54 | grep -q 'before the cutover'; then
	diag "the cutover brought the mirror back itself"
else
	diag "the job's own retry brought the mirror back before the cutover ran"
fi
diag "$(sxm-ctl show m54 | grep -E 'cutover|Downtime|Degraded')"

# -------------------------------------------------------------- cutover ----

check_eq "the sink is byte-identical to the frozen source" \
	"$(sha256_of /dev/mapper/lv54-sxm-orig)" "$(sha256_of $img)"
dmsetup resume lv54
check "resumed, the writers' writes go through" wait_writes lv54 20
fio_stop fa_pid "$fa" "fio 4 KiB --verify=crc32c saw no error"
fio_stop fb_pid "$fb" "fio 512 B O_DSYNC --verify=crc32c saw no error"
