#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A job's metadata device that fails under it: dm-flakey under the
# metadata device of a warm job in Ready, with fio writing through the
# job's device (new regions, so that the map must be written).  The first
# metadata write in a down interval fails: the guest sees no error (fio
# verifies its data), the kernel turns the persistent map off (status
# "failed" with the reason, "show" too) and changes the track id, and the
# job's next sync finds that its map may have holes: it copies everything
# again and says why.  A cutover then leaves the sink equal to the source.
# Then a metadata device that fails its reads at the job's start (an error
# table) is refused by submit with the reason, and no job is made; and
# sxm-ctl create and insert with --metadata: refused with the reason
# (another source's, too small), or made with the map active; sxm-ctl
# restore and remove end the track on the metadata device (what is written
# without sxm afterwards is not in the map: no later load may trust it).
# The kernel's paths here (a metadata device that fails) are 76's and
# 63's on the debug kernel; make check-debug runs this one there too.
# vm-timeout: 300
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"

require_cmd dmsetup fio nbdkit nbdcopy
require_sxm
require_sxm_ctl

MIB=32
scratch_dev disk $MIB
scratch_dev mdisk 1
rand_fill "$disk" $MIB
dd if=/dev/zero of="$mdisk" bs=64k count=16 oflag=direct status=none
sink_start memory size=${MIB}M
daemon_start

# The metadata device: up until the job is Ready, then flakey (2 s up,
# 2 s down: every I/O fails while down).
dm_create fmeta "0 2048 linear $mdisk 0"
cleanup_push _tc_dm_remove w79
check "submit with the metadata device over dm" sxm-ctl submit --source "$disk" \
	--sink "$SINK_URI" --name w79 --metadata /dev/mapper/fmeta --cadence 2s
check "Ready, the map active" wait_phase w79 Ready 120
check_eq "show says so" active "$(jf w79 state)"
full0=$(jf w79 bytes_full)
dmsetup load fmeta --table "0 2048 flakey $mdisk 0 2 2"
dmsetup suspend fmeta
dmsetup resume fmeta

is_failed() { [ "$(jf w79 state)" = failed ]; }
said() { grep -q "job w79: $1" "$DAEMON_LOG"; }
full_again() { [ "$(jf w79 bytes_full)" -gt "$full0" ]; }
# Writes to every region in turn: each new one needs a metadata write.
fio_load fw /dev/mapper/w79 /tmp/fw79.log --size=${MIB}M --rw=write --bs=64k
check "the metadata write fails in a down interval: the map goes off" \
	wait_until 60 is_failed
check "show says why" bash -c "sxm-ctl show w79 | grep -q '^Metadata .*: failed [a-z_]'"
check "the job finds its map may have holes, and says so" wait_until 60 \
	said "tracking was interrupted"
check "and copies everything again" wait_until 120 full_again
fio_stop fw /tmp/fw79.log "the guest saw no error, its data verifies"
check "the job is Ready again" wait_phase w79 Ready 120
check "cutover" sxm-ctl cutover w79 --wait
check_eq "the sink equals the source" "$(sha256_of "$disk")" "$(sha256_of "$SINK_URI")"

# A metadata device that cannot be read: refused, no job.
dmsetup load fmeta --table "0 2048 error"
dmsetup suspend fmeta
dmsetup resume fmeta
scratch_dev disk2 8
expect_fail "a metadata device that cannot be read is refused at submit" \
	"reading its superblock" sxm-ctl submit --source "$disk2" \
	--sink "$SINK_URI" --name x79 --metadata /dev/mapper/fmeta
check "and no job was made" bash -c "! sxm-ctl show x79"

# sxm-ctl create and insert with a metadata device: checked first, each
# refusal with its reason, nothing made; then made, the map active.
dmsetup load fmeta --table "0 2048 linear $mdisk 0"
dmsetup suspend fmeta
dmsetup resume fmeta
scratch_dev m2 1
dm_create tiny79 "0 8 linear $m2 0"
cleanup_push _tc_dm_remove c79
expect_fail "create: a metadata device of another source is refused" \
	"belongs to another source" sxm-ctl create c79 "$disk" --track \
	--metadata /dev/mapper/fmeta
expect_fail "create: a metadata device too small is refused" "is too small" \
	sxm-ctl create c79 "$disk2" --track --metadata /dev/mapper/tiny79
dmsetup remove tiny79
check "neither made a device" bash -c "! dmsetup info c79"
check "create --metadata" sxm-ctl create c79 "$disk2" --track --metadata "$m2"
check_eq "its status: the map active, new" "active new" \
	"$(sxm-ctl status c79 --json | sed -n 's/.*"state":"\([a-z]*\)".*"loaded":"\([a-z]*\)".*/\1 \2/p')"
check "and its source id is its name" \
	bash -c "sxm-ctl metadata dump $m2 | grep -q 'source_id.*c79'"
dmsetup remove c79
lv_create lv79 "$disk2" 8
cleanup_push _tc_dm_remove lv79
check "insert --metadata under an LV: its own source id" sxm-ctl insert lv79 \
	--track --metadata "$m2" --source-id c79 --region-size 64k
check_eq "the map active, loaded clean (the track of c79 goes on)" "active clean" \
	"$(sxm-ctl status lv79 --json | sed -n 's/.*"state":"\([a-z]*\)".*"loaded":"\([a-z]*\)".*/\1 \2/p')"
check "restore" sxm-ctl restore lv79
track() { sxm-ctl metadata dump "$m2" --json | sed -n 's/.*"track_id":"\([0-9a-f]*\)".*/\1/p'; }
check_eq "restore ended the track on the metadata device" 0000000000000000 "$(track)"
check "create it again: a new track" sxm-ctl create c79 "$disk2" --track --metadata "$m2"
check_eq "loaded clean, its track on disk" "clean 1" \
	"$(sxm-ctl status c79 --json | sed -n 's/.*"loaded":"\([a-z]*\)".*/\1/p') $([ "$(track)" != 0000000000000000 ] && echo 1)"
check "sxm-ctl remove" sxm-ctl remove c79
check_eq "ended the track too" 0000000000000000 "$(track)"
