#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The persistent write-intent map (metadata:<dev>) against the real target:
# the table line and its refusals; a metadata device that is too small, not
# sxm's, of another region size, length or source, corrupt, of an unknown
# version or flags, each refused with its own message (metadata_reset binds
# a corrupt one anew); a write's region is on the metadata device when the
# write completes, with one metadata write however many writes hit the
# region; the map and the track survive a remove and a new load; bits of
# regions not yet acknowledged stay, those the helper acknowledged are
# cleared lazily; passthrough ends the track on disk; a metadata device
# that fails or hangs turns the map off with the reason in the status and
# a new track id, and never fails or holds the guest's writes past the
# bound; regions the helper marks dirty are on the metadata device when
# its call returns (a failure there turns the map off, the call
# succeeds); a map block that cannot be read counts as all written; and
# the mirror ring's own tests of writes, locks, degrades and suspends
# pass with the mirrored writes going through the persistent map.
# vm-timeout: 240
# vm: debug
. "$(dirname "$0")/../lib/test_common.sh"

require_cmd dmsetup
require_sxm
require_sxm_ctl
tool=$(dirname "$0")/meta_tool
[ -x "$tool" ] || bail "tests/vm/meta_tool is not built (make -C tests/vm)"
[ -x "$(dirname "$0")/sxm_mirror_test" ] ||
	bail "tests/vm/sxm_mirror_test is not built (make -C tests/vm)"

par=/sys/module/dm_sxm/parameters
restore_params() {
	echo "$1" > $par/meta_clean_ms
	echo "$2" > $par/meta_timeout_ms
}
cleanup_push restore_params "$(cat $par/meta_clean_ms)" "$(cat $par/meta_timeout_ms)"
# The cleaner every 300 ms, so that its rounds happen within this test.
echo 300 > $par/meta_clean_ms

scratch_dev src 64
scratch_dev meta 1
scratch_dev meta2 1
n=$((64 << 11))
mm() { printf '%d:%d' $(stat -L -c '0x%t 0x%T' "$1"); }
zap() { dd if=/dev/zero of="$1" bs=4k count=2 oflag=direct status=none; }
# Status fields (after "start len sxm"): see the admin guide.
st() { dmsetup status "$1" | cut -d' ' -f"$2"; }
# wr NAME REGION [COUNT]: 4 KiB of new data at the start of REGION (64 KiB).
wr() { dd if=/dev/urandom of="/dev/mapper/$1" bs=4k seek=$(($2 * 16)) \
	count="${3:-1}" oflag=direct conv=notrunc status=none; }
runs() { "$tool" bits "$1" | tr '\n' ' ' | sed 's/ $//'; }

# ------------------------------------------------------------ table lines
while IFS='|' read -r args want; do
	zap "$meta"
	dm_create tgood "0 $n sxm $args"
	check_eq "table '$args' reads back" "0 $n sxm $want" "$(dmsetup table tgood)"
	t=$(dmsetup table tgood)
	dmsetup remove tgood
	dm_create tround "$t"
	check_eq "table '$want' round-trips" "$t" "$(dmsetup table tround)"
	dmsetup remove tround
done <<EOF
$src 128 2 track metadata:$meta|$(mm "$src") 128 2 track metadata:$(mm "$meta")
$src 128 3 metadata:$meta source_id:vm-7/disk-0 track|$(mm "$src") 128 3 track metadata:$(mm "$meta") source_id:vm-7/disk-0
$src 128 1 metadata:$meta|$(mm "$src") 128 1 metadata:$(mm "$meta")
EOF

long=$(printf 'x%.0s' $(seq 128))
zap "$meta"
while IFS='|' read -r table want; do
	expect_fail "refused: '$table'" "$want" dmsetup create tbad --table "$table"
	dmsetup info tbad >/dev/null 2>&1 && { fail "nothing left by '$table'"; dmsetup remove tbad; }
done <<EOF
0 $n sxm $src 128 2 track metadata:|metadata: names no device
0 $n sxm $src 128 2 track metadata:/dev/nonexistent|Error opening metadata device
0 $n sxm $src 128 2 track source_id:x|source_id and metadata_reset need metadata:
0 $n sxm $src 128 1 metadata_reset|source_id and metadata_reset need metadata:
0 $n sxm $src 128 3 metadata:$meta metadata:$meta2 track|Duplicate feature argument
0 $n sxm $src 128 2 metadata:$meta source_id:$long|source_id must have 1 to 127 characters
0 $n sxm $src 128 2 metadata:$src track|The metadata device may not be the source
EOF
check_eq "refused lines left the metadata device blank" "0" \
	"$(dd if="$meta" bs=4k count=1 iflag=direct status=none | tr -d '\0' | wc -c)"

dm_create ta "0 $n sxm $src 128 2 track metadata:$meta"
scratch_dev src2 64
expect_fail "a metadata device in use by another target is refused" \
	"Metadata device is in use by another sxm target" \
	dmsetup create tb --table "0 $n sxm $src2 128 2 track metadata:$meta"
expect_fail "a reload may not drop the metadata device" \
	"A reload may not change the metadata device or source_id" \
	dmsetup reload ta --table "0 $n sxm $src 128 1 track"
expect_fail "a reload may not change the source_id" \
	"A reload may not change the metadata device or source_id" \
	dmsetup reload ta --table "0 $n sxm $src 128 3 track metadata:$meta source_id:other"
check "a reload with the same metadata device is taken" \
	dmsetup reload ta --table "0 $n sxm $src 128 2 track metadata:$meta"
check "and resumes" dmsetup resume ta
dmsetup remove ta

# ------------------------------------------------ bad metadata devices
# Bound now to a 64 MiB target, 64 KiB regions, source_id "".
dm_create tsmall "0 8 linear $meta 0"
while IFS='|' read -r prep table want; do
	eval "$prep"
	expect_fail "refused: $want" "$want" dmsetup create tbad --table "$table"
	dmsetup info tbad >/dev/null 2>&1 && { fail "nothing left ($want)"; dmsetup remove tbad; }
done <<EOF
:|0 $n sxm $src 128 2 track metadata:/dev/mapper/tsmall|Metadata device is too small
:|0 $n sxm $src 256 2 track metadata:$meta|Metadata device is of another region size
:|0 $((n / 2)) sxm $src 128 2 track metadata:$meta|Metadata device is of a target of another length
:|0 $n sxm $src 128 3 track metadata:$meta source_id:another|Metadata device belongs to another source
"$tool" sb-set "$meta" version 2|0 $n sxm $src 128 2 track metadata:$meta|Metadata device has a format version this target does not know
"$tool" sb-set "$meta" version 1; "$tool" sb-set "$meta" flags 0x81|0 $n sxm $src 128 2 track metadata:$meta|Metadata superblock has flags or fields this target does not know
"$tool" sb-set "$meta" flags 1; "$tool" flip "$meta" 0 100|0 $n sxm $src 128 2 track metadata:$meta|Metadata superblock is corrupt (bad checksum)
dd if=/dev/urandom of=$meta bs=4k count=1 oflag=direct status=none|0 $n sxm $src 128 2 track metadata:$meta|Metadata device holds no sxm metadata
EOF
dmsetup remove tsmall
dd if=/dev/urandom of="$meta" bs=4k count=1 oflag=direct status=none
expect_fail "metadata_reset does not take a device that is not sxm's" \
	"Metadata device holds no sxm metadata" \
	dmsetup create tbad --table "0 $n sxm $src 128 3 track metadata:$meta metadata_reset"
zap "$meta"
dm_create ta "0 $n sxm $src 128 2 track metadata:$meta"
dmsetup remove ta
"$tool" flip "$meta" 0 100
dm_create ta "0 $n sxm $src 128 3 track metadata:$meta metadata_reset"
check_eq "metadata_reset binds a corrupt superblock anew" "active reset" \
	"$(st ta 19) $(st ta 23)"
check_eq "and the superblock is good again" "csum_ok 1" "$("$tool" sb "$meta" | head -1)"
dmsetup remove ta

# --------------------------------------------------------- write intent
zap "$meta"
dm_create ta "0 $n sxm $src 128 3 track metadata:$meta source_id:vm-7/disk-0"
check_eq "a blank device is bound: active, new, nothing on disk" "$(mm "$meta") active 0 new -" \
	"$(st ta 18) $(st ta 19) $(st ta 20) $(st ta 23) $(st ta 25)"
check "sxm-ctl status shows the metadata device" \
	bash -c "sxm-ctl status ta | grep -q '^  metadata      $(mm "$meta"), active'"
check "and its JSON" \
	bash -c "sxm-ctl status ta --json | grep -q '\"metadata\":{\"dev\":\"$(mm "$meta")\",\"state\":\"active\"'"
w0=$(st ta 21)
wr ta 5
check_eq "a write: its region on the metadata device" "5-5" "$(runs "$meta")"
w1=$(st ta 21)
check "with a metadata write" test "$w1" -gt "$w0"
for i in 1 2 3 4 5 6 7 8; do
	dd if=/dev/urandom of=/dev/mapper/ta bs=4k seek=$((5 * 16 + i)) count=1 \
		oflag=direct conv=notrunc status=none
done
check_eq "eight more writes to the same region: no metadata write" "$w1" "$(st ta 21)"
dd if=/dev/urandom of=/dev/mapper/ta bs=64k seek=10 count=10 oflag=direct status=none
check_eq "ten regions written at once: all on disk" "5-5 10-19" "$(runs "$meta")"
check_eq "status counts them" 11 "$(st ta 20)"
sleep 1.5
check_eq "regions not yet harvested stay on disk (cleaner ran)" "5-5 10-19" "$(runs "$meta")"
t1=$("$tool" track ta)
check "a track id" test "$t1" != 0

# ------------------------------------------------- clean shutdown, load
dmsetup remove ta
sb=$("$tool" sb "$meta")
check_eq "remove: clean flag and the track on disk" "flags 3 track_id $t1" \
	"$(grep -E '^(flags|track_id) ' <<< "$sb" | tr '\n' ' ' | sed 's/ $//')"
dm_create ta "0 $n sxm $src 128 3 track metadata:$meta source_id:vm-7/disk-0"
check_eq "loaded again: clean, the same track" "clean $t1" "$(st ta 23) $("$tool" track ta)"
check "the last clean shutdown is reported" test "$(st ta 24)" -gt 1700000000
check_eq "the regions on disk are dirty again" 11 "$(st ta 7)"
check_eq "superblock no longer clean while active" "flags 1" \
	"$("$tool" sb "$meta" | grep '^flags ')"

# ------------------------------------------------------------- cleaner
wr ta 25	# written in the cleaner's current round too
check "harvest and acknowledge" sxm-ctl harvest ta
for i in $(seq 100); do [ "$(st ta 20)" = 0 ] && break; sleep 0.1; done
check_eq "acknowledged regions are cleared from the metadata device" "0 ''" \
	"$(st ta 20) '$(runs "$meta")'"
wr ta 7
check_eq "a new write is marked again" "7-7" "$(runs "$meta")"

# ------------------------------------------------------ the helper's marks
# Regions the helper found differing on the sink: on disk when the call
# returns, and dirty again after a load.
w0=$(st ta 21)
check_eq "the helper marks regions 40-42 dirty" 3 "$("$tool" mark ta 40 42)"
check_eq "they are on the metadata device when the call returns" "7-7 40-42" \
	"$(runs "$meta")"
check "with a metadata write" test "$(st ta 21)" -gt "$w0"
w0=$(st ta 21)
check_eq "marked again: nothing new" 0 "$("$tool" mark ta 40 42)"
check_eq "and no metadata write" "$w0" "$(st ta 21)"
t1=$("$tool" track ta)
dmsetup remove ta
dm_create ta "0 $n sxm $src 128 3 track metadata:$meta source_id:vm-7/disk-0"
check_eq "loaded again: the same track, the marks dirty" "$t1 4" \
	"$("$tool" track ta) $(st ta 7)"

# ------------------------------------------------ passthrough ends the track
check "mode passthrough" dmsetup message ta 0 mode passthrough
check_eq "the track ends on disk before an untracked write" "track_id 0" \
	"$("$tool" sb "$meta" | grep '^track_id ')"
wr ta 9
dmsetup remove ta
dm_create ta "0 $n sxm $src 128 3 track metadata:$meta source_id:vm-7/disk-0"
t2=$("$tool" track ta)
check "after a passthrough, a load starts a new track" \
	test "$t2" != 0 -a "$t2" != "$t1"
check_eq "and restores nothing as dirty" 0 "$(st ta 7)"
dmsetup remove ta

# ------------------------------------------------- a failing metadata device
zap "$meta"
dm_create tmeta "0 2048 linear $meta 0"
swap_meta() { dmsetup load tmeta --table "$1" && dmsetup suspend tmeta && dmsetup resume tmeta; }
dm_create ta "0 $n sxm $src 128 2 track metadata:/dev/mapper/tmeta"
wr ta 3
t1=$("$tool" track ta)
swap_meta "0 2048 error"
check "a write while the metadata device fails succeeds" wr ta 30
check_eq "status: failed, write_error" "failed write_error" "$(st ta 19) $(st ta 25)"
for i in $(seq 50); do t2=$("$tool" track ta); [ "$t2" != "$t1" ] && break; sleep 0.1; done
check "the track id changed" test "$t2" != "$t1" -a "$t2" != 0
check "more writes succeed, in memory" wr ta 31 4
check "and are tracked" test "$(st ta 7)" -ge 3
fio_verify "data intact with the metadata device failed" /dev/mapper/ta --size=2M
# The device works again: the next suspend writes "no track" on it.
swap_meta "0 2048 linear $meta 0"
dmsetup remove ta
check_eq "a failed map's superblock says no track" "track_id 0" \
	"$("$tool" sb "$meta" | grep '^track_id ')"
dm_create ta "0 $n sxm $src 128 2 track metadata:/dev/mapper/tmeta"
t3=$("$tool" track ta)
check "a later load starts a new track (neither the old nor the failed one)" \
	test "$t3" != "$t1" -a "$t3" != "$t2" -a "$t3" != 0
wr ta 3
dmsetup remove ta

# A map block that cannot be read counts as all written: every region of
# it is dirty after the load, and the load succeeds.
dm_create ta "0 $n sxm $src 128 2 track metadata:/dev/mapper/tmeta"
dmsetup remove ta
swap_meta "0 8 linear $meta 0
8 8 error
16 2032 linear $meta 16"
dm_create ta "0 $n sxm $src 128 2 track metadata:/dev/mapper/tmeta"
# (Rewriting that block then fails: the map may go off, as it should.)
check_eq "an unreadable map block: loaded, its regions all dirty" \
	1024 "$(st ta 7)"
dmsetup remove ta
swap_meta "0 2048 linear $meta 0"

# A map block with a bad checksum counts as all written too, and is
# rewritten before its bits count: by the cleaner's next round (held off
# here), or by a write or a mark in it, which writes it as loaded.
echo 60000 > $par/meta_clean_ms
dm_create ta "0 $n sxm $src 128 2 track metadata:/dev/mapper/tmeta"
dmsetup remove ta
"$tool" flip "$meta" 1 100
dm_create ta "0 $n sxm $src 128 2 track metadata:/dev/mapper/tmeta"
check_eq "a corrupt map block: loaded, its regions all dirty" "1024 active" \
	"$(st ta 7) $(st ta 19)"
check_eq "still bad on disk" "bad 0" "$(runs "$meta")"
check_eq "a mark in it (its region dirty already)" 0 "$("$tool" mark ta 5 5)"
check "writes it as loaded: good, all its regions" \
	bash -c "\"$tool\" bits \"$meta\" | grep -qx '0-[0-9]*'"
dmsetup remove ta
echo 300 > $par/meta_clean_ms

# ------------------------------------------------- a hanging metadata device
echo 1000 > $par/meta_timeout_ms
zap "$meta"
dm_create ta "0 $n sxm $src 128 2 track metadata:/dev/mapper/tmeta"
wr ta 3
t1=$("$tool" track ta)
dmsetup suspend --noflush tmeta
ms() { awk '{ print int($1 * 1000) }' /proc/uptime; }
s0=$(ms)
check "a write while the metadata device hangs completes" wr ta 40
ms=$(($(ms) - s0))
check "within the bound (took ${ms} ms, bound 1000 ms)" test "$ms" -lt 10000
check_eq "status: failed, timeout" "failed timeout" "$(st ta 19) $(st ta 25)"
check_eq "the old track is on disk while the write hangs" "track_id $t1" \
	"$("$tool" sb "$meta" | grep '^track_id ')"
dmsetup resume tmeta
# The write that hung lands: "no track" follows it within a second or
# so (10 s allowed: a slow debug guest), not at the next suspend (a power
# cut meanwhile would find the old track, without the writes since).
sbt() { "$tool" sb "$meta" | grep '^track_id '; }
for i in $(seq 100); do [ "$(sbt)" = "track_id 0" ] && break; sleep 0.1; done
check_eq "once the hung write is done, no track on disk (no suspend)" \
	"track_id 0" "$(sbt)"
check "writes go on" wr ta 41 4
dmsetup remove ta

# A mark whose map block cannot be written: the call succeeds, the map
# goes off, and "no track" is on the device (its superblock can be
# written) by the time the call returns.
zap "$meta"
dm_create ta "0 $n sxm $src 128 2 track metadata:/dev/mapper/tmeta"
wr ta 3
t1=$("$tool" track ta)
swap_meta "0 8 linear $meta 0
8 2040 error"
check_eq "a mark while the map's blocks fail: the call succeeds" 1 \
	"$("$tool" mark ta 50 50)"
check_eq "no track on the device when it returns" "track_id 0" \
	"$("$tool" sb "$meta" | grep '^track_id ')"
check_eq "status: failed, write_error" "failed write_error" "$(st ta 19) $(st ta 25)"
for i in $(seq 50); do t2=$("$tool" track ta); [ "$t2" != "$t1" ] && break; sleep 0.1; done
check "the track id changed" test "$t2" != "$t1" -a "$t2" != 0
dmsetup remove ta
swap_meta "0 2048 linear $meta 0"
dmsetup remove tmeta

# --------------------------------------------------------- the mirror too
scratch_dev msrc 16
scratch_dev msnk 16
SXM_TEST_META=$meta SXM_TEST_SOURCE=$msrc SXM_TEST_SINK=$msnk \
SXM_TEST_ONLY=every_write_reaches_the_sink,write_waits_for_the_sink_and_locks,sink_error_degrades,helper_death_degrades_and_remirrors,failed_flush_marks_unflushed_writes,suspend_does_not_wait_for_locks \
	ktap_import "$(dirname "$0")/sxm_mirror_test"
