#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Operating a warm job: sync now, a cadence that runs syncs by itself and is
# changed, pause (no scheduled or requested sync, a full sync holds still)
# and resume; and cancel in every phase -- Initializing, Full Sync (paused
# and resumed first), Ready, Syncing, Cutting Over and Failed -- each with
# fio --verify writing through the device: fio sees no error, the
# migration never writes the source (the part fio does not touch keeps its
# checksum), and sxm is taken out again (the LV's original table back, or
# the device made over a plain disk turned linear while it is open).
# vm-timeout: 240
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio nbdkit

failf=/tmp/fail41
sink_start --filter=error memory size=16M \
	error-pwrite=EIO error-pwrite-rate=100% error-pwrite-file=$failf
uri=$SINK_URI
# A sink 300 ms away: syncs and cutovers last long enough to cancel.  (A
# link delay, not nbdkit's delay filter: a cancel drops the writes in
# flight, which aborts nbdkit 1.32 behind that filter; see sink_start.)
sink_start --delay 300ms memory size=16M
slow=$SINK_URI
daemon_start

# Bytes 4 MiB.. of a device: fio (--size=4M) never writes there.
tail_sha() { dd if="$1" bs=1M skip=4 iflag=direct status=none | sha256sum | cut -d' ' -f1; }
majmin() { echo "$((0x$(stat -L -c %t "$1"))):$((0x$(stat -L -c %T "$1")))"; }
count() { jf "$1" sync_count; }
cancelled_in() {
	sxm-ctl show "$1" | grep -q "cancelled in $2\$"
}

# new_lv NAME [TABLE] — a 16 MiB scratch disk of random data under a dm
# device NAME (linear, or TABLE with DISK for the disk); sets $disk, $tsha.
new_lv() {
	local table=${2:-"0 32768 linear DISK 0"}
	scratch_dev disk 16
	rand_fill "$disk" 16
	lv_create "$1" "$disk" 16
	dmsetup reload "$1" --table "${table//DISK/$disk}"
	dmsetup suspend "$1"
	dmsetup resume "$1"
	tsha=$(tail_sha "$disk")
}

# after_cancel JOB LV PHASE TABLE — the checks every cancel must pass.
after_cancel() {
	check_eq "$1: cancelled in $3" "cancelled in $3" \
		"$(sxm-ctl show "$1" | grep -o 'cancel.*' | tail -n 1)"
	check_eq "$1: the original table of $2 is back" "$4" "$(dmsetup table "$2")"
	check "$1: no hidden device left" bash -c "! dmsetup info $2-sxm-orig >/dev/null 2>&1"
	check_eq "$1: the source was not written" "$tsha" "$(tail_sha "$disk")"
}

# ------------------------------------------- sync now, cadence, pause ----

new_lv lv41
fio_load fio0 /dev/mapper/lv41 /tmp/fio41.log --size=4M
check "submit, manual cadence" sxm-ctl submit --source /dev/mapper/lv41 \
	--sink "$uri" --name ops41 --wait
check "sync now" sxm-ctl sync ops41 --wait
check_eq "Sync Count 1" 1 "$(count ops41)"
sleep 2
check_eq "manual cadence: no sync by itself" 1 "$(count ops41)"
check "cadence 2s" sxm-ctl cadence ops41 2s
check "the schedule runs syncs by itself" wait_until 20 bash -c \
	"[ \$(sxm-ctl show ops41 --json | sed -n 's/.*\"sync_count\":\([0-9]*\).*/\1/p') -ge 3 ]"
check "show says when the next sync is" bash -c \
	"sxm-ctl show ops41 | grep -q '^Cadence *2s (next sync in '"
check "pause" sxm-ctl pause ops41
n=$(count ops41)
sleep 4
check_eq "paused: no scheduled sync" "$n" "$(count ops41)"
check_eq "phase Ready, paused" "Ready true" "$(jf ops41 phase) $(jf ops41 paused)"
expect_fail "paused: sync now is refused" "is paused" sxm-ctl sync ops41
check "resume" sxm-ctl resume ops41
check "resumed: the schedule syncs again" wait_until 15 bash -c \
	"[ \$(sxm-ctl show ops41 --json | sed -n 's/.*\"sync_count\":\([0-9]*\).*/\1/p') -gt $n ]"
check "cadence manual" sxm-ctl cadence ops41 manual
sleep 1
n=$(count ops41)
sleep 3
check_eq "manual again: no sync by itself" "$n" "$(count ops41)"
check "cancel in Ready" sxm-ctl cancel ops41 --wait
fio_stop fio0 /tmp/fio41.log "ops41: fio saw no error"
after_cancel ops41 lv41 Ready "0 32768 linear $(majmin "$disk") 0"

# ------------------------------------------------ cancel: Initializing ----

# Writes take 1.5 s under this LV: putting sxm under it (a suspend, then
# the start of tracking) waits for them, so the job is Initializing a while.
new_lv lv41a "0 32768 delay DISK 0 0 DISK 0 1500"
orig=$(dmsetup table lv41a)
fio_load fio1 /dev/mapper/lv41a /tmp/fio41a.log --size=4M --iodepth=2
sleep 2
check "submit" sxm-ctl submit --source /dev/mapper/lv41a --sink "$uri" --name init41
check "cancel at once" sxm-ctl cancel init41 --wait
fio_stop fio1 /tmp/fio41a.log "init41: fio saw no error"
after_cancel init41 lv41a Initializing "$orig"

# ------------------------------- pause, resume, cancel: Full Sync ----

scratch_dev plain 16
rand_fill "$plain" 16
disk=$plain tsha=$(tail_sha "$plain")
cleanup_push _tc_dm_remove full41
check "submit a plain disk at 1 MiB/s" sxm-ctl submit --source "$plain" \
	--sink "$uri" --name full41 --rate 1M
check "/dev/mapper/full41 is made" wait_until 20 test -b /dev/mapper/full41
fio_load fio2 /dev/mapper/full41 /tmp/fio41b.log --size=4M
check "pause in Full Sync" sxm-ctl pause full41
sleep 1
d0=$(jf full41 full_sync_done)
sleep 3
check_eq "paused: the full sync holds still" "$d0" "$(jf full41 full_sync_done)"
check_eq "still Full Sync, paused" "Full Sync true" "$(jf full41 phase) $(jf full41 paused)"
check "resume" sxm-ctl resume full41
check "the full sync goes on" wait_until 15 bash -c \
	"[ \$(sxm-ctl show full41 --json | sed -n 's/.*\"full_sync_done\":\([0-9]*\).*/\1/p') -gt $d0 ]"
check "cancel in Full Sync" sxm-ctl cancel full41 --wait
check "full41: cancelled in Full Sync" cancelled_in full41 "Full Sync"
check_eq "full41: open, so left as a plain linear mapping of the disk" \
	"0 32768 linear $(majmin "$plain") 0" "$(dmsetup table full41)"
check "fio still runs on it" kill -0 "$fio2"
fio_stop fio2 /tmp/fio41b.log "full41: fio saw no error"
check_eq "full41: the source was not written" "$tsha" "$(tail_sha "$plain")"

# ------------------------------------------------------ cancel: Syncing ----

new_lv lv41s
fio_load fio3 /dev/mapper/lv41s /tmp/fio41s.log --size=4M
check "submit" sxm-ctl submit --source /dev/mapper/lv41s --sink "$slow" \
	--name sync41 --wait
dd if=/dev/urandom of=/dev/mapper/lv41s bs=1M seek=8 count=8 oflag=direct status=none
tsha=$(tail_sha "$disk")	# the migration must not change it from here
check "sync" sxm-ctl sync sync41
check "it is Syncing" wait_phase sync41 Syncing 10
check "cancel in Syncing" sxm-ctl cancel sync41 --wait
fio_stop fio3 /tmp/fio41s.log "sync41: fio saw no error"
after_cancel sync41 lv41s Syncing "0 32768 linear $(majmin "$disk") 0"

# ------------------------------------------------ cancel: Cutting Over ----

new_lv lv41c
fio_load fio4 /dev/mapper/lv41c /tmp/fio41c.log --size=4M
check "submit" sxm-ctl submit --source /dev/mapper/lv41c --sink "$slow" \
	--name cut41 --wait
dd if=/dev/urandom of=/dev/mapper/lv41c bs=1M seek=8 count=8 oflag=direct status=none
tsha=$(tail_sha "$disk")
check "cutover" sxm-ctl cutover cut41
check "it is Cutting Over" wait_phase cut41 "Cutting Over" 10
# It syncs live first, then freezes the source for the last delta, which
# the slow sink makes last seconds.
check "lv41c is suspended, guest I/O held" wait_until 60 bash -c \
	"dmsetup info lv41c | grep -q '^State: *SUSPENDED'"
check "cancel in Cutting Over" sxm-ctl cancel cut41 --wait
check "the device is resumed" bash -c "dmsetup info lv41c | grep -q '^State: *ACTIVE'"
fio_stop fio4 /tmp/fio41c.log "cut41: fio, held and let go, saw no error"
after_cancel cut41 lv41c "Cutting Over" "0 32768 linear $(majmin "$disk") 0"

# ------------------------------------------------------- cancel: Failed ----

new_lv lv41f
touch $failf
check "submit to a sink that fails every write" bash -c \
	"! sxm-ctl submit --source /dev/mapper/lv41f --sink $uri --name fail41 --wait"
rm -f $failf
check_eq "Failed" Failed "$(jf fail41 phase)"
check "cancel a Failed job" sxm-ctl cancel fail41 --wait
after_cancel fail41 lv41f Failed "0 32768 linear $(majmin "$disk") 0"
check_eq "the daemon lists every job Cancelled" \
	"cut41 Cancelled,fail41 Cancelled,full41 Cancelled,init41 Cancelled,ops41 Cancelled,sync41 Cancelled" \
	"$(sxm-ctl list | awk 'NR > 1 { print $1, $2 }' | sort | paste -sd,)"
