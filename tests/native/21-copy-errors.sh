#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# sxm-ctl copy refuses bad input with a clear message and the right exit
# status (2: usage, 1: failure), and writes nothing when it refuses: bad
# options, a missing source, malformed and unreachable URIs, a server that
# never answers, a read-only export, an export smaller than the source, bad
# bitmap files.
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/native_nbd.sh"
native_setup

make_random "$T/src" 16
nbd_start unix good memory size=16M
nbd_start tcp small memory size=15M
nbd_start unix ro -r memory size=16M
head -c 8 /dev/zero >"$T/bitmap.short"		# 256 regions need 32 bytes
head -c 1M /dev/zero >"$T/small.img"
# 17 regions of 1 MiB: one word, of which bit 50 is past the end.
head -c $((17 << 20)) /dev/urandom >"$T/src17"
printf '\0\0\0\0\0\0\4\0' >"$T/bitmap.17"	# bit 50: region 50 of 17
nbd_start unix big memory size=17M
# A server that accepts and then says nothing for a minute.
NBD_NO_PROBE=1 nbd_start unix mute --filter=delay memory size=16M delay-open=60

# Each line: exit status | text the message must contain | arguments.
while IFS='|' read -r rc text args; do
	[ -n "$rc" ] || continue
	eval "set -- $args"
	expect_err "copy $args" "$rc" "$text" "$SXM_CTL" copy "$@"
done <<EOF
2|expected SOURCE and URI|
2|expected SOURCE and URI|"$T/src"
2|expected SOURCE and URI|"$T/src" "$good" extra
2|unknown option|--frobnicate "$T/src" "$good"
2|is not uring, aio or auto|--engine spdk "$T/src" "$good"
2|is not a number from 1 to|--queue-depth 0 "$T/src" "$good"
2|is not a number from 1 to|--queue-depth lots "$T/src" "$good"
2|must be a power of two|--buffer-size 96k "$T/src" "$good"
2|must be a power of two|--buffer-size 64M "$T/src" "$good"
2|is not a size|--rate fast "$T/src" "$good"
2|is not a size|--rate 0 "$T/src" "$good"
2|must be a power of two of at least 4096|--region-size 1000 "$T/src" "$good"
2|is not a number from 1 to|--connections 99 "$T/src" "$good"
2|is not a duration up to 1h|--connect-timeout soon "$T/src" "$good"
2|is not a duration up to 1h|--connect-timeout 0 "$T/src" "$good"
1|no NBD handshake within 1 s|--connect-timeout 1s "$T/src" "$mute"
1|source $T/nonexistent: open: No such file or directory|"$T/nonexistent" "$good"
1|not a regular file or block device|"$T" "$good"
2|unsupported URI|"$T/src" http://example.invalid/disk
2|unsupported URI|"$T/src" nbd:/oops
2|socket|"$T/src" nbd+unix:///export
2|unable to parse URI|"$T/src" "nbd://[::1"
2|no file name|"$T/src" file:
1|Connection refused|"$T/src" nbd://127.0.0.1:1/
1|No such file or directory|"$T/src" "nbd+unix:///?socket=$T/no.sock"
1|export is read-only, cannot write to it|"$T/src" "$ro"
1|smaller than the source's 16.0 MiB (16777216 bytes)|"$T/src" "$small"
1|export is 15.0 MiB (15728640 bytes)|"$T/src" "$small"
1|file is 1.0 MiB (1048576 bytes), smaller than the source's|"$T/src" "file:$T/small.img"
2|bytes, expected 32 (256 regions)|--bitmap "$T/bitmap.short" "$T/src" "$good"
2|bits set past region 16|--region-size 1M --bitmap "$T/bitmap.17" "$T/src17" "$big"
1|bitmap $T/none: No such file or directory|--bitmap "$T/none" "$T/src" "$good"
EOF

# Nothing reached the export that was too small, or the read-only one.
zero15=$(head -c $((15 << 20)) /dev/zero | sha256sum | cut -d' ' -f1)
check_eq "nothing written to the small export" "$zero15" "$(_sha_uri "$small")"
zero16=$(head -c $((16 << 20)) /dev/zero | sha256sum | cut -d' ' -f1)
check_eq "nothing written to the read-only export" "$zero16" "$(_sha_uri "$ro")"
check_eq "nothing written by the refused calls" "$zero16" "$(_sha_uri "$good")"

# --help is not an error.
check "copy --help" "$SXM_CTL" copy --help
