#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The same warm migration with each way of reading the source, and to
# another NBD server:
#   - libaio chosen (sxm-ctl daemon --engine aio, as SXM_ENGINE=aio does);
#   - io_uring made unavailable by a seccomp filter (io_uring_setup fails
#     with ENOSYS, as on a kernel without it; kernel.io_uring_disabled does
#     not exist in 6.1): "auto" falls back to libaio and says why, and a
#     job that insists on io_uring fails saying why;
#   - io_uring by default, to qemu-nbd instead of nbdkit.
# Each ends with the sink byte-identical to the source.
# vm-timeout: 180
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup nbdkit nbdcopy qemu-nbd
jail=$(dirname "$0")/jail_tool
[ -x "$jail" ] || bail "$jail is not built (make -C tests/vm)"

# migrate JOB DISK URI — a whole warm migration of DISK, with one sync.
migrate() {
	cleanup_push _tc_dm_remove "$1"
	check "$1: submit --wait" sxm-ctl submit --source "$2" --sink "$3" \
		--name "$1" --wait
	dd if=/dev/urandom of="/dev/mapper/$1" bs=1M seek=2 count=2 oflag=direct status=none
	check "$1: sync --wait" sxm-ctl sync "$1" --wait
	check "$1: cutover --wait" sxm-ctl cutover "$1" --wait
	check_eq "$1: the sink equals the source" "$(sha256_of "$2")" "$(sha256_of "$3")"
}

# ----------------------------------------------------------- libaio ----

scratch_dev d1 16
rand_fill "$d1" 16
sink_start -p 10840 memory size=16M
daemon_start --engine aio
migrate aio45 "$d1" "$SINK_URI"
check_eq "aio45: read with libaio" aio "$(jf aio45 engine)"
check "the copy engine said so too" grep -q "copying .* with aio" "$DAEMON_LOG"
daemon_stop

# ------------------------------------ io_uring unavailable (seccomp) ----

scratch_dev d2 16
rand_fill "$d2" 16
sink_start -p 10841 memory size=16M
: > "$DAEMON_LOG"
DAEMON_WRAP="$jail --no-io-uring" daemon_start
migrate auto45 "$d2" "$SINK_URI"
check_eq "auto45: auto fell back to libaio" aio "$(jf auto45 engine)"
check "the job says why" bash -c "sxm-ctl show auto45 | grep -q \
	'reading the source with libaio: io_uring is unavailable (io_uring: setup: Function not implemented)'"
check "no copy used io_uring" bash -c "! grep -q 'copying .* with uring' $DAEMON_LOG"

scratch_dev d3 16
sink_start -p 10842 memory size=16M
cleanup_push _tc_dm_remove uring45
sxm-ctl submit --source "$d3" --sink "$SINK_URI" --name uring45 --engine uring >/dev/null
check "a job that insists on io_uring fails" wait_phase uring45 Failed 30
check "saying why" bash -c \
	"sxm-ctl show uring45 | grep -q '^Reason .*io_uring: setup: Function not implemented'"
check "cancel it" sxm-ctl cancel uring45 --wait
daemon_stop

# --------------------------------------------- io_uring, to qemu-nbd ----

scratch_dev d4 16
rand_fill "$d4" 16
truncate -s 16M /tmp/qemu45.img
spawn qpid ip netns exec "$SINK_NS" qemu-nbd -f raw -x disk -e 4 -t \
	-b "$SINK_ADDR" -p 10843 /tmp/qemu45.img
quri=nbd://$SINK_ADDR:10843/disk
check "qemu-nbd answers" wait_until 20 nbdinfo --size "$quri"
: > "$DAEMON_LOG"
daemon_start
migrate qemu45 "$d4" "$quri"
check_eq "qemu45: read with io_uring" uring "$(jf qemu45 engine)"
check_eq "qemu-nbd's image file holds the source" "$(sha256_of "$d4")" \
	"$(sha256_of /tmp/qemu45.img)"
