#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The sxm table line: good lines load and their TABLE status round-trips
# exactly; every bad line is refused with its own message and leaves no
# device behind; messages change the mode and unknown ones are refused.
# vm-timeout: 120
# vm: debug
. "$(dirname "$0")/../lib/test_common.sh"

require_cmd dmsetup
require_sxm

scratch_dev src 16
n=$((16 << 11))
mm=$(printf '%d:%d' $(stat -L -c '0x%t 0x%T' "$src"))

# Good lines and the TABLE they must read back as.
while IFS='|' read -r args want; do
	dm_create tgood "0 $n sxm $args"
	check_eq "table '$args' reads back as '$want'" "0 $n sxm $want" \
		"$(dmsetup table tgood)"
	# Loading the TABLE output gives the same table again.
	dm_create tround "$(dmsetup table tgood)"
	check_eq "table '$want' round-trips" "$(dmsetup table tgood)" \
		"$(dmsetup table tround)"
	dmsetup remove tround tgood
done <<EOF
$src 8|$mm 8
$src 128 1 track|$mm 128 1 track
$src 128 1 passthrough|$mm 128
$mm 2097152|$mm 2097152
$src 128 0|$mm 128
EOF

# Part of the source, as the second target of a table.
dm_create tpart "0 8 zero
8 4096 sxm $src 64"
check_eq "sxm as the second target of a table" "8 4096 sxm $mm 64" \
	"$(dmsetup table tpart | sed -n 2p)"
dmsetup remove tpart

# Bad lines: each with the message it must give, and no device left.
while IFS='|' read -r table want; do
	expect_fail "refused: '$table'" "$want" dmsetup create tbad --table "$table"
	if dmsetup info tbad >/dev/null 2>&1; then
		fail "nothing left behind by '$table'"
		dmsetup remove tbad
	fi
done <<EOF
0 $n sxm|Not enough arguments
0 $n sxm $src|Not enough arguments
0 $n sxm /dev/nonexistent 128|Error opening source device
0 $((n + 8)) sxm $src 128|Source device is smaller than the target
0 $n sxm $src 100|Region size must be a power of two
0 $n sxm $src 0|Region size must be a power of two
0 $n sxm $src 4|Region size must be at least 8 sectors
0 $n sxm $src 4194304|Region size must be at most 2097152 sectors
0 $n sxm $src 128x|Region size is not a number
0 $n sxm $src -128|Region size is not a number
0 $n sxm $src 0x80|Region size is not a number
0 $n sxm $src 99999999999999999999999|Region size is out of range
0 $n sxm $src 128 1|Fewer feature arguments than their count says
0 $n sxm $src 128 x track|Invalid number of feature arguments
0 $n sxm $src 128 4294967297 track|Invalid number of feature arguments
0 $n sxm $src 128 1 mirror|Unrecognised feature argument
0 $n sxm $src 128 1 Track|Unrecognised feature argument
0 $n sxm $src 128 2 track track|Duplicate feature argument
0 $n sxm $src 128 2 track passthrough|Conflicting feature arguments
0 $n sxm $src 128 1 track extra|Unexpected arguments after the feature arguments
EOF

# Messages.
dm_create tmsg "0 $n sxm $src 128"
check_eq "a new device: passthrough, nothing dirty or held, no helper" \
	"passthrough 128 $((n / 128)) 0 0 - 0 off 0 0 0 0 0 - - - 0 0 0 - 0 -" "$(dmsetup status tmsg | cut -d' ' -f4-)"
check "message 'mode track'" dmsetup message tmsg 0 mode track
check_eq "status says track" track "$(dmsetup status tmsg | cut -d' ' -f4)"
check_eq "TABLE carries the mode" "0 $n sxm $mm 128 1 track" "$(dmsetup table tmsg)"
while IFS='|' read -r msg want; do
	# shellcheck disable=SC2086
	expect_fail "message '$msg' refused" "$want" dmsetup message tmsg 0 $msg
done <<EOF
mode mirror|mode mirror needs a helper with a ring attached
mode bogus|unknown mode 'bogus'
mode|unsupported message 'mode'
frobnicate|unsupported message 'frobnicate'
mode track extra|unsupported message 'mode'
EOF
check_eq "refused messages changed nothing" track "$(dmsetup status tmsg | cut -d' ' -f4)"
check "message 'mode passthrough'" dmsetup message tmsg 0 mode passthrough
check_eq "TABLE back to passthrough" "0 $n sxm $mm 128" "$(dmsetup table tmsg)"

# A reload that changes the region size is refused; the live table stays.
expect_fail "reload with another region size refused" \
	"A reload may not change length or region size" \
	dmsetup reload tmsg --table "0 $n sxm $src 256"
check_eq "live table unchanged" "0 $n sxm $mm 128" "$(dmsetup table tmsg)"
check "target listed with its version" bash -c "dmsetup targets | grep -q '^sxm *v1\.'"
