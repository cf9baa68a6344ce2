#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Source faults from the block layer itself: fail_make_request (the debug
# kernel's fault injection) fails the bios that reach the source's disk, so
# the error comes back to the target exactly as a dying disk's would.
#   - tracking: a write the source fails reaches the writer as the same
#     error dm-linear gives over the same disk, and its region is dirty; a
#     read error too; the disk well again, writes go through;
#   - mirroring (a mirror-style job, Mirrored): a write the source fails
#     fails for the guest, the job stays Mirrored, the region is dirty or
#     held, and after the cutover the sink equals the source: it does not
#     keep the bytes the source refused;
#   - a copy whose source read fails after 2 MiB (both styles): the job
#     fails naming the source and the error; once the disk reads again,
#     retry and cutover leave the sink equal to the source: nothing the
#     copy could not read was taken as copied;
#   - a persistent map's metadata device whose disk fails its writes (one,
#     or all until it is well again): the guest's writes succeed, the map
#     goes off with the reason and a new track id, the superblock says "no
#     track" as soon as a write of it gets through, and a later load starts
#     a new track.
# Debian's kernel has no fault injection (CONFIG_FAIL_MAKE_REQUEST): this
# test runs on the debug kernel only (make check's debug pass).
# vm: debug-only
# vm-timeout: 300
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup nbdkit dd cmp

fmr=/sys/kernel/debug/fail_make_request
[ -d $fmr ] || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
[ -d $fmr ] || skip_all "this kernel has no fail_make_request (CONFIG_FAIL_MAKE_REQUEST): run it on the debug kernel (scripts/vm-run.sh --kernel debug)"

# inject DEV on|off [SPACE [TIMES]] — every bio to DEV's disk fails (after
# SPACE bytes went through, at most TIMES times), or none.
inject() {
	local disk=/sys/block/${1##*/}/make-it-fail
	if [ "$2" = off ]; then
		echo 0 > "$disk"
		return
	fi
	echo 0 > $fmr/verbose
	echo 100 > $fmr/probability
	echo 1 > $fmr/interval
	echo "${3:-0}" > $fmr/space
	echo "${4:--1}" > $fmr/times
	echo 1 > "$disk"
}
cleanup_push sh -c "for f in /sys/block/*/make-it-fail; do echo 0 > \$f; done"

# write_err DEV BLOCK — write one 4 KiB block of a fresh pattern at 4 KiB
# block BLOCK of DEV, O_DIRECT; prints dd's error (empty if it worked).
write_err() {
	head -c 4096 /dev/urandom > /tmp/blk63
	{ dd if=/tmp/blk63 of="$1" bs=4k seek="$2" count=1 oflag=direct \
		conv=notrunc status=none 2>&1 || true; } | sed 's/^dd: //; s/^[^:]*: //'
}

read_err() {
	{ dd if="$1" of=/dev/null bs=4k skip="$2" count=1 iflag=direct \
		status=none 2>&1 || true; } | sed 's/^dd: //; s/^[^:]*: //'
}

# ------------------------------------------------------------ tracking ----

scratch_dev d 16
rand_fill "$d" 16
n=$(blockdev --getsz "$d")
dm_create lin63 "0 $n linear $d 0"
dm_create trk63 "0 $n sxm $d 128 1 track"

inject "$d" on
lin=$(write_err /dev/mapper/lin63 300)
diag "dm-linear over the failing disk: ${lin:-no error}"
check "dm-linear: the write fails" test -n "$lin"
check_eq "tracking: the write fails as through dm-linear" "$lin" \
	"$(write_err /dev/mapper/trk63 300)"
check "tracking: the region written is dirty" held_covers trk63 $((300 * 4096))
check_eq "tracking: a read fails as through dm-linear" \
	"$(read_err /dev/mapper/lin63 700)" "$(read_err /dev/mapper/trk63 700)"
inject "$d" off
check_eq "tracking: the disk well again, a write goes through" "" \
	"$(write_err /dev/mapper/trk63 300)"
check "tracking: and reads back" cmp -n 4096 /tmp/blk63 \
	<(dd if=/dev/mapper/trk63 bs=4k skip=300 count=1 iflag=direct status=none)

diag "tracking: ${SECONDS} s"

# ---------------------------------------------------------- mirroring ----

daemon_start
scratch_dev m 8
rand_fill "$m" 8
lv_create lv63m "$m" 8
sink_start memory size=8M
uri=$SINK_URI
check "mirror: submit --kind sxm --wait" sxm-ctl submit --source /dev/mapper/lv63m \
	--sink "$uri" --name m63 --kind sxm --region-size 64k --wait
check_eq "mirror: Mirrored" Mirrored "$(jf m63 phase)"
before=$(dd if=/dev/mapper/lv63m bs=4k skip=1000 count=1 iflag=direct status=none | sha256sum)

inject "$m" on
err=$(write_err /dev/mapper/lv63m 1000)
check_eq "mirror: the write the source fails fails for the guest" \
	"Input/output error" "${err##*: }"
check_eq "mirror: as through dm-linear over the same disk" "$err" \
	"$(write_err /dev/mapper/lv63m-sxm-orig 1000)"
inject "$m" off
check_eq "mirror: the job stays Mirrored" Mirrored "$(jf m63 phase)"
check "mirror: the region is dirty or held" held_covers lv63m $((1000 * 4096))
check_eq "mirror: the source still has the old block" "$before" \
	"$(dd if=/dev/mapper/lv63m bs=4k skip=1000 count=1 iflag=direct status=none | sha256sum)"
check "mirror: cutover" sxm-ctl cutover m63 --wait
check_eq "mirror: the sink equals the source, not the refused write" \
	"$(sha256_of /dev/mapper/lv63m-sxm-orig)" "$(sha256_of "$uri")"
dmsetup resume lv63m
diag "mirroring: ${SECONDS} s"

# ------------------------------------------- read errors in the copy ----

for kind in warm sxm; do
	j=63$kind
	scratch_dev s 8
	rand_fill "$s" 8
	lv_create lv$j "$s" 8
	sink_start memory size=8M
	uri=$SINK_URI
	args=(--source /dev/mapper/lv$j --sink "$uri" --name $j --region-size 64k)
	[ $kind = sxm ] && args+=(--kind sxm)
	# Every bio to the disk after the first 2 MiB fails, until turned off.
	inject "$s" on $((2 << 20))
	expect_rc "$kind: submit --wait fails on the source's read error" 1 \
		"Input/output error" sxm-ctl submit "${args[@]}" --wait
	inject "$s" off
	check_eq "$kind: the job is Failed" Failed "$(jf $j phase)"
	reason=$(sxm-ctl show $j --json | sed -n 's/.*"reason":"\([^"]*\)".*/\1/p')
	diag "reason: $reason"
	check "$kind: the reason names the source and the error" \
		grep -qE "source .*: read at 0x[0-9a-f]+ .*Input/output error" <<< "$reason"
	check "$kind: the disk reads again: retry --wait" sxm-ctl retry $j --wait
	check "$kind: cutover" sxm-ctl cutover $j --wait
	check_eq "$kind: the sink equals the source" \
		"$(sha256_of /dev/mapper/lv$j-sxm-orig)" "$(sha256_of "$uri")"
	dmsetup resume lv$j
	diag "$kind: ${SECONDS} s"
done

# ------------------------------------------ the metadata device fails ----
# fail_make_request on the disk of a persistent map's metadata device: the
# block layer fails its writes as a dying disk's.  Never the guest's error:
# the map goes off ("failed", the reason), the track id changes, and the
# superblock says "no track" as soon as a write of it gets through: at
# once when only one write fails, or at the next suspend once the disk
# writes again.  No later load trusts the map.
tool=$(dirname "$0")/meta_tool
[ -x "$tool" ] || bail "tests/vm/meta_tool is not built (make -C tests/vm)"
scratch_dev ms 16
scratch_dev md 1
n=$(blockdev --getsz "$ms")
zap() { dd if=/dev/zero of="$1" bs=4k count=2 oflag=direct status=none; }
st() { dmsetup status "$1" | cut -d' ' -f"$2"; }
# wr NAME REGION: 4 KiB of new data at the start of REGION (64 KiB).
wr() { dd if=/dev/urandom of="/dev/mapper/$1" bs=4k seek=$(($2 * 16)) \
	count=1 oflag=direct conv=notrunc status=none; }
sb_track() { "$tool" sb "$md" | sed -n 's/^track_id //p'; }
new_track() { [ "$("$tool" track mt63)" != "$1" ]; }
mtable="0 $n sxm $ms 128 3 track metadata:$md source_id:fmr-63"

for times in 1 -1; do
	what=$([ $times = 1 ] && echo "one write fails" || echo "every write fails")
	zap "$md"
	dm_create mt63 "$mtable"
	wr mt63 2
	t1=$("$tool" track mt63)
	check_eq "$what: the map active, its track on disk" "active $t1" \
		"$(st mt63 19) $(sb_track)"
	inject "$md" on 0 $times
	check_eq "$what: the guest's write succeeds" "" \
		"$(write_err /dev/mapper/mt63 $((20 * 16)))"
	check_eq "$what: the map is off, and says why" "failed write_error" \
		"$(st mt63 19) $(st mt63 25)"
	check "$what: the track id changes" wait_until 10 new_track "$t1"
	check "$what: writes go on" wr mt63 21
	check "$what: and are tracked" test "$(st mt63 7)" -ge 3
	inject "$md" off
	if [ $times = 1 ]; then
		check_eq "$what: the next write of the superblock got through: no track on disk" \
			0 "$(sb_track)"
	else
		check_eq "$what: the disk well again, no write was tried: the old track on disk" \
			"$t1" "$(sb_track)"
		dmsetup suspend mt63 && dmsetup resume mt63
		check_eq "$what: the next suspend writes no track" 0 "$(sb_track)"
	fi
	dmsetup remove mt63
	dm_create mt63 "$mtable"
	t3=$("$tool" track mt63)
	check "$what: a later load starts a new track" \
		test "$t3" != "$t1" -a "$t3" != 0
	check_eq "$what: and restores nothing as dirty" 0 "$(st mt63 7)"
	dmsetup remove mt63
done
