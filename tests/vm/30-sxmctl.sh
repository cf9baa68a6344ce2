#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# sxm-ctl create, status, track, harvest and remove on a real sxm device:
# the table create loads, status in both forms, tracking turned on and off
# through the target message, the dirty extents writes leave (merged, in
# bytes, the last region short), harvest emptying the map, remove refusing
# an open device; and every bad call refused with exit status 2 (usage) or
# 1 (failure) and the right message, with nothing created or changed.
. "$(dirname "$0")/../lib/test_common.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup dd

rm_dev() {
	dmsetup info "$1" >/dev/null 2>&1 || return 0
	dmsetup remove --retry "$1"
}

# write OFFSET_BYTES LEN_BYTES DEV — direct writes of 4 KiB blocks.
write_at() {
	dd if=/dev/urandom of="$3" bs=4096 seek=$(($1 / 4096)) \
		count=$(($2 / 4096)) oflag=direct conv=notrunc status=none
}

json_field() {	# json_field NAME JSON — a number or string field, bare
	sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<< "$2"
}

plan 44

scratch_dev src 64
srcdev=$(printf '%d:%d' $((0x$(stat -c %t "$src"))) $((0x$(stat -c %T "$src"))))

# ------------------------------------------------------------- create ----

cleanup_push rm_dev sxm30
check "create sxm30 over $src" sxm-ctl create sxm30 "$src"
check_eq "the table is sxm over the source, 64 KiB regions, passthrough" \
	"0 131072 sxm $srcdev 128" "$(dmsetup table sxm30)"
check "/dev/mapper/sxm30 is a block device" test -b /dev/mapper/sxm30

js=$(sxm-ctl status sxm30 --json)
diag "$js"
check_eq "status --json: mode" passthrough "$(json_field mode "$js")"
check_eq "status --json: region size" 65536 "$(json_field region_size "$js")"
check_eq "status --json: regions" 1024 "$(json_field nr_regions "$js")"
check_eq "status --json: no dirty region" 0 "$(json_field dirty_regions "$js")"
check_eq "status --json: no helper" null "$(json_field helper_pid "$js")"
check_eq "status --json: the source" "$srcdev" "$(json_field source "$js")"
check "status (human) names the mode" \
	bash -c "sxm-ctl status sxm30 | grep -q '^  mode *passthrough$'"

# ------------------------------------------------------- track, harvest ----

check "track on" sxm-ctl track sxm30 on
check_eq "the table says track" "0 131072 sxm $srcdev 128 1 track" \
	"$(dmsetup table sxm30)"
check_eq "status says track" track \
	"$(json_field mode "$(sxm-ctl status sxm30 --json)")"

# Region 0 (4 KiB in it), regions 16-17 (128 KiB at 1 MiB), region 1023.
write_at 0 4096 /dev/mapper/sxm30
write_at $((1 << 20)) $((128 << 10)) /dev/mapper/sxm30
write_at $(((64 << 20) - 4096)) 4096 /dev/mapper/sxm30
want='[{"offset":0,"length":65536},{"offset":1048576,"length":131072},{"offset":67043328,"length":65536}]'
check_eq "status counts 4 dirty regions" 4 \
	"$(json_field dirty_regions "$(sxm-ctl status sxm30 --json)")"
check_eq "harvest --peek: merged extents in bytes" "$want" \
	"$(sxm-ctl harvest sxm30 --peek --json)"
check "harvest (human): header and 3 extents" bash -c \
	"sxm-ctl harvest sxm30 --peek | grep -v '^#' | tr '\n' ' ' | grep -qx '0 65536 1048576 131072 67043328 65536 '"
h0=$(json_field harvests "$(sxm-ctl status sxm30 --json)")
check_eq "harvest: the same extents" "$want" "$(sxm-ctl harvest sxm30 --json)"
js=$(sxm-ctl status sxm30 --json)
check_eq "after a harvest the map is empty" 0 "$(json_field dirty_regions "$js")"
check_eq "after a harvest the count went up" $((h0 + 1)) \
	"$(json_field harvests "$js")"
check_eq "harvest --peek of an empty map" "[]" \
	"$(sxm-ctl harvest sxm30 --peek --json)"

# Output that cannot be written: the harvested regions stay held.
write_at $((2 << 20)) 4096 /dev/mapper/sxm30
expect_rc "harvest into a full output fails" 1 "No space left on device" \
	bash -c "sxm-ctl harvest sxm30 > /dev/full"
check_eq "the region it could not print is held" 1 \
	"$(json_field held_regions "$(sxm-ctl status sxm30 --json)")"
check_eq "and a peek shows it" '[{"offset":2097152,"length":65536}]' \
	"$(sxm-ctl harvest sxm30 --peek --json)"
check_eq "the next harvest returns it" '[{"offset":2097152,"length":65536}]' \
	"$(sxm-ctl harvest sxm30 --json)"
check_eq "printed, it is acknowledged: nothing held" 0 \
	"$(json_field held_regions "$(sxm-ctl status sxm30 --json)")"

check "track off" sxm-ctl track sxm30 off
check_eq "the table says passthrough again" "0 131072 sxm $srcdev 128" \
	"$(dmsetup table sxm30)"

# A device whose size is no multiple of the region: the last one is short.
cleanup_push rm_dev lin30
dmsetup create lin30 --table "0 131064 linear $src 0"
cleanup_push rm_dev sxm30b
check "create over a dm device, 1 MiB regions, tracking" \
	sxm-ctl create sxm30b /dev/mapper/lin30 --region-size 1M --track
write_at $((131064 * 512 - 4096)) 4096 /dev/mapper/sxm30b
check_eq "the short last region ends at the device's end" \
	'[{"offset":66060288,"length":1044480}]' \
	"$(sxm-ctl harvest sxm30b --peek --json)"

# ------------------------------------------------------------ bad calls ----

expect_rc "create: the name exists" 1 "exists" sxm-ctl create sxm30 "$src"
expect_rc "create: region not a power of two" 2 "power of two" \
	sxm-ctl create bad30 "$src" --region-size 3k
expect_rc "create: region too big" 2 "power of two" \
	sxm-ctl create bad30 "$src" --region-size 2G
expect_rc "create: region junk" 2 "--region-size 64q" \
	sxm-ctl create bad30 "$src" --region-size 64q
expect_rc "create: no such source" 1 "No such file" \
	sxm-ctl create bad30 /dev/nonexistent
expect_rc "create: source not a block device" 1 "not a block device" \
	sxm-ctl create bad30 /proc/version
expect_rc "create: name with a slash" 2 "cannot be a device-mapper name" \
	sxm-ctl create a/b "$src"
expect_rc "create: missing source" 2 "missing arguments" sxm-ctl create bad30
expect_rc "status: no such device" 1 "no such device-mapper device" \
	sxm-ctl status nonexistent30
expect_rc "status: not an sxm device" 1 "not an sxm device" \
	sxm-ctl status lin30
expect_rc "track: neither on nor off" 2 "on or off" sxm-ctl track sxm30 yes
expect_rc "harvest: unknown option" 2 "unknown option --bogus" \
	sxm-ctl harvest sxm30 --bogus
expect_rc "remove: not an sxm device" 1 "not an sxm device" \
	sxm-ctl remove lin30
check "none of them created a device" bash -c '! dmsetup info bad30 >/dev/null 2>&1'

# -------------------------------------------------------------- remove ----

exec 3< /dev/mapper/sxm30
expect_rc "remove: refused while open" 1 "in use" sxm-ctl remove sxm30
exec 3<&-
check "remove" sxm-ctl remove sxm30
check "the device is gone" bash -c '! dmsetup info sxm30 >/dev/null 2>&1'
