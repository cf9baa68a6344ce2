# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# mirror.sh — helpers of the mirror-style tests (tests/vm/5*-mirror*.sh),
# on top of test_common.sh and warm.sh (source those first).
#
#   mstate DM                the mirror's state and reason from the
#                            target's status: "on -", "degraded sink_error"
#   wait_mirror DM STATE [SECS]
#                            until the mirror is in STATE (on, degraded)
#   compare_clean DESC DM SRC SINK FIOPID...
#                            a test point: with the writers frozen
#                            (SIGSTOP: run fio with --thread), SRC and the
#                            sink (its file, or an nbd:// URI read with
#                            nbdcopy) are equal over every region of DM
#                            not dirty or held; on a difference, the fio
#                            headers (with their time stamps) of the first
#                            blocks that differ

mstate() {
	dmsetup status "$1" | awk '{ print $11, $17 }'
}

_mirror_is() { [ "$(dmsetup status "$1" | awk '{ print $11 }')" = "$2" ]; }

wait_mirror() {
	wait_until "${3:-60}" _mirror_is "$1" "$2"
}

compare_clean() {
	local desc=$1 dm=$2 src=$3 file=$4 ext off len f b rs p
	shift 4
	rs=$(($(dmsetup status "$dm" | awk '{ print $5 }') * 512))
	for p in "$@"; do kill -STOP "$p"; done
	sleep 1
	ext=$(sxm-ctl harvest "$dm" --peek | grep -v '^#' || true)
	diag "$dm: dirty or held: $(grep -c . <<< "$ext" || true) extents"
	dd if="$src" of=/tmp/mirror-src.cmp bs=1M iflag=direct status=none
	case $file in
	nbd://* | nbds://* | nbd+unix://*) nbdcopy "$file" /tmp/mirror-snk.cmp ;;
	*) cp "$file" /tmp/mirror-snk.cmp ;;
	esac
	while read -r off len; do
		[ -n "$off" ] || continue
		for f in /tmp/mirror-src.cmp /tmp/mirror-snk.cmp; do
			dd if=/dev/zero of=$f bs="$rs" seek=$((off / rs)) \
				count=$(((len + rs - 1) / rs)) conv=notrunc status=none
		done
	done <<< "$ext"
	if cmp -s /tmp/mirror-src.cmp /tmp/mirror-snk.cmp; then
		pass "$desc"
	else
		fail "$desc" "$(cmp -l /tmp/mirror-src.cmp /tmp/mirror-snk.cmp |
			awk '{ print int(($1 - 1) / 4096) }' | uniq | head -n 4 |
			while read -r b; do
				echo "block $b (region $((b * 4096 / rs))), source then sink:"
				od -A d -t x8 -j $((b * 4096)) -N 32 /tmp/mirror-src.cmp
				od -A d -t x8 -j $((b * 4096)) -N 32 /tmp/mirror-snk.cmp
			done; cat /proc/uptime; dmsetup status "$dm")"
	fi
	rm -f /tmp/mirror-src.cmp /tmp/mirror-snk.cmp
	for p in "$@"; do kill -CONT "$p"; done
}
