#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The online verify: while a job is Ready or Mirrored a background pass
# reads source and sink back and compares them, region by region:
#   - warm: the pass runs by itself once the job is Ready; a region
#     corrupted on the sink behind the job's back (its backing file written
#     directly) is found by "verify --wait", counted, and repaired by the
#     sync it asks for; the cutover says every region was verified;
#   - mirror style under a write load: the same, repaired by a resync
#     under locks while the guest writes on;
#   - --no-verify: recorded, shown, and the Completed job says that not
#     every region was verified.
# vm-timeout: 300
# What it proves is the daemon's (the verify's maps and its repairs); the
# kernel's part, a region marked dirty, is 76's and 60's on the debug
# kernel: make check's debug pass leaves it out (make check-debug runs it).
# vm: no-debug
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"
. "$(dirname "$0")/../lib/mirror.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio nbdkit nbdcopy cmp

MIB=16
SIZE=$((MIB << 20))
daemon_start

# corrupt FILE OFFSET — 4 KiB of noise at OFFSET of a sink's backing file.
corrupt() {
	dd if=/dev/urandom of="$1" bs=4k count=1 seek=$(($2 / 4096)) \
		conv=notrunc status=none
}

verified_whole() { [ "$(jf "$1" verified_now_bytes)" = "$SIZE" ]; }
passes_at_least() { [ "$(jf "$1" verify_passes)" -ge "$2" ]; }
img_equals() { cmp -s "$1" "$2"; }

# ------------------------------------------------------------------ warm ----

scratch_dev d1 $MIB
rand_fill "$d1" $MIB
truncate -s ${MIB}M /tmp/s68a.img
cleanup_push rm -f /tmp/s68a.img
sink_start file file=/tmp/s68a.img
cleanup_push _tc_dm_remove w68
check "warm submit --wait" sxm-ctl submit --source "$d1" --sink "$SINK_URI" \
	--name w68 --wait
check "the online verify covers the device by itself" \
	wait_until 60 verified_whole w68
check "and counts its pass" passes_at_least w68 1
check "show says so" bash -c \
	"sxm-ctl show w68 | grep -qE '^Verify +100% verified now; [0-9]+ pass'"

corrupt /tmp/s68a.img $((5 << 20))
check "verify --wait: a pass now" sxm-ctl verify w68 --wait
check_eq "it found the corrupted region" 1 "$(jf w68 verify_mismatches)"
check "and said where" bash -c \
	"sxm-ctl show w68 | grep -q 'verify: 1 region of nbd://.* differs from the source (the first at $((5 << 20)))'"
check "the sync it asked for repairs the sink" \
	wait_until 30 img_equals /tmp/s68a.img /dev/mapper/w68
check "cutover --wait says every region was verified" bash -c \
	"sxm-ctl cutover w68 --wait | grep -q 'every region of the sink was verified equal to the source'"
check_eq "verified_all" true "$(jf w68 verified_all)"
check_eq "the sink equals the frozen source" "$(sha256_of "$d1")" \
	"$(sha256_of /tmp/s68a.img)"

# ---------------------------------------------------------------- mirror ----

scratch_dev d2 $MIB
rand_fill "$d2" $MIB
lv_create lv68 "$d2" $MIB
truncate -s ${MIB}M /tmp/s68b.img
cleanup_push rm -f /tmp/s68b.img
sink_start file file=/tmp/s68b.img
# fio writes the first 8 MiB; the corruption goes past it.
fio_load fio68 /dev/mapper/lv68 /tmp/fio68.log --thread
check "mirror-style submit --wait" sxm-ctl submit --source /dev/mapper/lv68 \
	--sink "$SINK_URI" --kind sxm --name m68 --wait
check "the online verify runs while Mirrored" wait_until 60 passes_at_least m68 1
corrupt /tmp/s68b.img $((12 << 20))
check "verify --wait under load" sxm-ctl verify m68 --wait
check_eq "it found the corrupted region" 1 "$(jf m68 verify_mismatches)"
check "and resynced it under locks" bash -c \
	"sxm-ctl show m68 | grep -q 'verify: [0-9]* bytes resynced and read back'"
check_eq "the mirror stayed on" on "$(jf m68 mirror)"
compare_clean "source and sink are equal where nothing is dirty" lv68 \
	/dev/mapper/lv68-sxm-orig /tmp/s68b.img "$fio68"
check "cutover --wait" sxm-ctl cutover m68 --wait
check_eq "verified_all" true "$(jf m68 verified_all)"
check_eq "the sink equals the frozen source" \
	"$(sha256_of /dev/mapper/lv68-sxm-orig)" "$(sha256_of /tmp/s68b.img)"
dmsetup resume lv68
fio_stop fio68 /tmp/fio68.log "fio saw no error"

# ------------------------------------------------------------- --no-verify ----

scratch_dev d3 $MIB
rand_fill "$d3" $MIB
sink_start memory size=${MIB}M
cleanup_push _tc_dm_remove n68
check "submit --no-verify" sxm-ctl submit --source "$d3" --sink "$SINK_URI" \
	--name n68 --no-verify --wait
check_eq "recorded" true "$(jf n68 no_verify)"
check "show says the verify is off" bash -c \
	"sxm-ctl show n68 | grep -q '^Verify *off (--no-verify)'"
sleep 2
check_eq "no pass ran" 0 "$(jf n68 verify_passes)"
check "cutover --wait says not every region was verified" bash -c \
	"sxm-ctl cutover n68 --wait | grep -q 'not every region was verified (--no-verify)'"
check_eq "verified_all" false "$(jf n68 verified_all)"
check_eq "the sink equals the source all the same" "$(sha256_of "$d3")" \
	"$(sha256_of "$SINK_URI")"
