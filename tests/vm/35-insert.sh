#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Live insertion: a two-segment dm-linear device (an LV over two PVs) held
# open by a running fio --verify=crc32c gets sxm inserted under it and taken
# out again while fio writes; fio finishes with no error, tracking saw its
# writes, and "dmsetup table" is byte-identical before and after.  Also: a
# kernel refusal part-way through an insert is rolled back to exactly the
# original state, restore finishes an insert interrupted at any step, and
# bad calls are refused with nothing changed.
# vm-timeout: 240
. "$(dirname "$0")/../lib/test_common.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio

rm_dev() {
	dmsetup info "$1" >/dev/null 2>&1 || return 0
	dmsetup remove --retry "$1"
}

absent() { ! dmsetup info "$1" >/dev/null 2>&1; }

majmin() { dmsetup info -c --noheadings -o major,minor --separator : "$1"; }

# Everything about a device that an insert + restore must leave as it was.
snapshot() {
	dmsetup table "$1"
	dmsetup info -c --noheadings -o name,uuid,major,minor "$1"
}

json_field() {
	sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<< "$2"
}

plan 40

export SXM_STATE_DIR=/tmp/sxm-state-35
rm -rf "$SXM_STATE_DIR"
cleanup_push rm -rf "$SXM_STATE_DIR"

pv1="" pv2="" fio_pid=""
scratch_dev pv1 64
scratch_dev pv2 64
# Teardown order (last pushed first): hidden devices, then the LVs.
cleanup_push rm_dev lv35
cleanup_push rm_dev lv35-sxm-orig
printf '0 65536 linear %s 2048\n65536 65536 linear %s 4096\n' "$pv1" "$pv2" |
	dmsetup create lv35 --uuid LVM-sxmtest35
before=$(snapshot lv35)
diag "before: $before"

# ---------------------------------------------- live, under fio --verify ----

# Rate-limited random writes over the whole device (about 12 s), each block
# checked against its crc32c as it goes and again at the end.
fio_log=/tmp/fio35.log
spawn fio_pid fio --name=live --filename=/dev/mapper/lv35 \
	--ioengine="$FIO_ENGINE" --direct=1 --rw=randwrite --bs=4k \
	--iodepth=8 --size=64M --rate_iops=1500 --verify=crc32c \
	--verify_fatal=1 --verify_backlog=512 --do_verify=1 \
	--output="$fio_log"
sleep 2

check "insert --track under the open device" sxm-ctl insert lv35 --track
hidden=$(majmin lv35-sxm-orig)
check_eq "lv35 runs sxm over the hidden device" \
	"0 131072 sxm $hidden 128 1 track" "$(dmsetup table lv35)"
check_eq "the hidden device carries the original table" \
	"$(head -n 2 <<< "$before")" "$(dmsetup table lv35-sxm-orig)"
check "the record is in \$SXM_STATE_DIR" test -s "$SXM_STATE_DIR/lv35.insert"
check "fio still runs" kill -0 "$fio_pid"
sleep 3
n=$(json_field dirty_regions "$(sxm-ctl status lv35 --json)")
check "tracking saw fio's writes ($n dirty regions)" test "${n:-0}" -gt 0
expect_rc "insert twice is refused" 1 "has an sxm target already" \
	sxm-ctl insert lv35
expect_rc "remove refuses an inserted device" 1 "sxm-ctl restore lv35" \
	sxm-ctl remove lv35
check "fio still runs after the refusals" kill -0 "$fio_pid"

check "restore while fio writes" sxm-ctl restore lv35
check "fio was still running when restore returned" kill -0 "$fio_pid"
check_eq "table, uuid, numbers and attributes as before" "$before" \
	"$(snapshot lv35)"
check "the hidden device is gone" absent lv35-sxm-orig
check "the record is gone" test ! -e "$SXM_STATE_DIR/lv35.insert"
rc=0
wait "$fio_pid" || rc=$?
check_eq "fio --verify=crc32c finished with no error" 0 "$rc"
[ "$rc" -eq 0 ] || diag "$(tail -n 20 "$fio_log")"
check "fio reports no error" grep -q "err= 0" "$fio_log"

# ----------------------------------------- a refusal part-way rolls back ----

# An 8 TiB + 4 KiB zero device: with 4 KiB regions that is one region too
# many, which the kernel only finds when the sxm table is loaded -- after
# the hidden device was made.
big=$((1 << 34))
cleanup_push rm_dev big35
cleanup_push rm_dev big35-sxm-orig
dmsetup create big35 --table "0 $((big + 8)) zero"
big_before=$(snapshot big35)
expect_fail "insert refused by the kernel at load" "Too many regions" \
	sxm-ctl insert big35 --region-size 4k
check_eq "big35 exactly as before" "$big_before" "$(snapshot big35)"
check "no hidden device left" absent big35-sxm-orig
check "no record left" test ! -e "$SXM_STATE_DIR/big35.insert"
check "no inactive table left" bash -c \
	"dmsetup info big35 | grep -q '^Tables present: *LIVE$'"

# ------------------------------------ restore finishes interrupted work ----

# Stopped after the hidden device was made and the sxm table loaded, not
# yet resumed: restore drops the loaded table and the hidden device.
dmsetup table lv35 |
	dmsetup create lv35-sxm-orig --uuid "SXM-ORIG-$(majmin lv35)"
dmsetup load lv35 --table "0 131072 sxm $(majmin lv35-sxm-orig) 128"
check "restore after an insert stopped before its resume" \
	sxm-ctl restore lv35
check_eq "lv35 as before" "$before" "$(snapshot lv35)"
check "no inactive table left" bash -c \
	"dmsetup info lv35 | grep -q '^Tables present: *LIVE$'"
check "the hidden device is gone" absent lv35-sxm-orig

# Stopped after the original table was put back but before the hidden
# device was removed.
check "insert again" sxm-ctl insert lv35
dmsetup table lv35-sxm-orig | dmsetup load lv35
dmsetup suspend lv35
dmsetup resume lv35
check "restore after a restore stopped before removing the hidden device" \
	sxm-ctl restore lv35
check_eq "lv35 as before" "$before" "$(snapshot lv35)"
check "the hidden device is gone" absent lv35-sxm-orig

# ------------------------------------------------------------ bad calls ----

cleanup_push rm_dev other35
dmsetup create other35 --table "0 2048 zero"
other_before=$(snapshot other35)
expect_rc "insert: no such device" 1 "no such device-mapper device" \
	sxm-ctl insert nonexistent35
expect_rc "insert: bad region size" 2 "power of two" \
	sxm-ctl insert other35 --region-size 5k
expect_rc "restore: nothing was inserted" 1 "sxm was not inserted" \
	sxm-ctl restore other35
expect_rc "restore: missing argument" 2 "missing arguments" sxm-ctl restore
check_eq "other35 untouched" "$other_before" "$(snapshot other35)"
check "no hidden device made for other35" absent other35-sxm-orig

# ---------------------------------------------------- a read-only device ----

cleanup_push rm_dev ro35
cleanup_push rm_dev ro35-sxm-orig
dmsetup create ro35 --readonly --table "0 8192 zero"
ro_before=$(snapshot ro35; dmsetup info ro35 | grep '^State')
check "insert under a read-only device" sxm-ctl insert ro35
check "it stays read-only" bash -c \
	"dmsetup info ro35 | grep -q '^State: *ACTIVE (READ-ONLY)$'"
check "the hidden device is read-only too" bash -c \
	"dmsetup info ro35-sxm-orig | grep -q '^State: *ACTIVE (READ-ONLY)$'"
check "restore" sxm-ctl restore ro35
check_eq "ro35 as before, read-only" "$ro_before" \
	"$(snapshot ro35; dmsetup info ro35 | grep '^State')"
