#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A warm job switched to mirror style: a warm migration under fio --verify
# writers reaches Ready and syncs once; "sxm-ctl mirror" brings the pump
# up, sets the mirror, resyncs what is dirty and the job is Mirrored (kind
# sxm); what a mirror-style job refuses is refused with its reason; the
# cutover then holds the guest's I/O for milliseconds (the warm cutover
# would have copied and verified the last delta with the I/O held), the
# sink is identical to the frozen source, fio clean.
# vm-timeout: 180
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"
. "$(dirname "$0")/../lib/mirror.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio nbdkit nbdcopy

MIB=32
scratch_dev disk $MIB
rand_fill "$disk" $MIB
lv_create lv55 "$disk" $MIB
sink_start memory size=${MIB}M
daemon_start

fio_log=/tmp/fio55.log
fio_load fio_pid /dev/mapper/lv55 "$fio_log" --fsync=16 --thread
check "the writer writes before the job starts" wait_writes lv55 50

check "a warm job reaches Ready" sxm-ctl submit --source /dev/mapper/lv55 \
	--sink "$SINK_URI" --name w55 --wait
check "and syncs" sxm-ctl sync w55 --wait
dirty_now() { [ "$(jf w55 dirty_bytes)" -gt 0 ]; }
check "writes since are dirty" wait_until 30 dirty_now
diag "$(jf w55 dirty_bytes) bytes dirty"
expect_rc "the warm cutover's prediction is known, mirror not yet" 0 "predicted downtime" \
	sxm-ctl show w55

# ------------------------------------------------------------ the switch ----

out=$(sxm-ctl mirror w55 --wait 2>&1) && rc=0 || rc=$?
diag "$out"
check_eq "mirror --wait: the warm job is Mirrored" 0 "$rc"
check_eq "phase Mirrored, kind sxm" "Mirrored sxm" "$(jf w55 phase) $(jf w55 kind)"
check_eq "the kernel mirrors" "on -" "$(mstate lv55)"
check_eq "nothing dirty" 0 "$(jf w55 dirty_bytes)"
check "the events say it switched and what it resynced" bash -c \
	"sxm-ctl show w55 > /tmp/show55; grep -q 'switching to mirror style' /tmp/show55 &&
	 grep -q 'composed: [0-9]* bytes resynced' /tmp/show55"
compare_clean "the sink equals the source" lv55 /dev/mapper/lv55-sxm-orig \
	"$SINK_URI" "$fio_pid"

# ------------------------------------------------ what it refuses now ----

expect_rc "mirror again: it is mirror-style already" 1 "mirror-style already" \
	sxm-ctl mirror w55
expect_rc "sync: nothing to sync" 1 "nothing to sync" sxm-ctl sync w55
expect_rc "cadence: none" 1 "has no cadence" sxm-ctl cadence w55 1h
expect_rc "pause: only the bulk copy pauses" 1 "only the bulk copy" \
	sxm-ctl pause w55
expect_rc "mirror of a job that does not exist" 1 "no such job" \
	sxm-ctl mirror nope55
expect_rc "mirror with no job" 2 "which job" sxm-ctl mirror

# -------------------------------------------------------------- cutover ----

out=$(sxm-ctl cutover w55 --wait 2>&1) && rc=0 || rc=$?
diag "$out"
check_eq "cutover --wait" 0 "$rc"
down=$(jf w55 downtime_ms)
diag "mirror-style cutover under load: guest I/O held $down ms"
check "downtime measured, in milliseconds (< 1 s)" test "$down" -gt 0 -a "$down" -lt 1000
check_eq "the sink is byte-identical to the frozen source" \
	"$(sha256_of /dev/mapper/lv55-sxm-orig)" "$(sha256_of "$SINK_URI")"
dmsetup resume lv55
check "resumed, the writer's writes go through" wait_writes lv55 20
fio_stop fio_pid "$fio_log" "fio --verify=crc32c saw no error"
