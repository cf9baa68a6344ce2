# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# demo.sh — what the demo's scripts (tests/demo/*.sh) share, on top of
# test_common.sh and warm.sh (source those first).
#
#   say TEXT...          a heading
#   run CMD...           show the command, then run it
#   demo_setup NAME MIB  a MIB MiB "VM disk" full of data, /dev/mapper/NAME
#                        (dm-linear on a loop device, as LVM makes them);
#                        nbdkit on "another host" (the sink namespace);
#                        fio writing 4 KiB blocks to it and checking them
#                        (pid in $fio_pid); sxm-ctl daemon
#   demo_finish NAME     the sha256 of the frozen source and of the sink
#                        side by side, a test point that they are equal;
#                        then the device let go so that fio checks its
#                        data, a test point for that

say() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

demo_setup() {
	local name=$1 mib=$2 disk
	say "A ${mib} MiB VM disk full of data: /dev/mapper/$name (dm-linear on a loop device)"
	scratch_dev disk "$mib"
	rand_fill "$disk" "$mib"
	lv_create "$name" "$disk" "$mib"
	run dmsetup table "$name"

	say "The destination: nbdkit in network namespace '$SINK_NS', another host as far as we know"
	sink_start memory size="${mib}M"
	echo "sink: $SINK_URI"

	say "The guest's load: fio writing 4 KiB blocks and verifying their crc32c as it goes"
	_demo_fio_log=/tmp/fio-demo-$name.log
	fio_load fio_pid "/dev/mapper/$name" "$_demo_fio_log" --size=16M \
		--rate_iops=200
	sleep 1

	say "The helper service (in production: systemctl start sxm-ctl, scripts/sxm-ctl.service)"
	daemon_start
	echo "sxm-ctl daemon running, pid $DAEMON_PID, socket $SXM_SOCKET, jobs in $SXM_JOB_DIR"
}

demo_finish() {
	local name=$1 src_sha sink_sha
	say "Source and sink, side by side"
	src_sha=$(sha256_of "/dev/mapper/$name-sxm-orig")
	sink_sha=$(sha256_of "$SINK_URI")
	printf '  %-6s  %-34s  %s\n' source "/dev/mapper/$name (frozen)" "$src_sha" \
		sink "$SINK_URI" "$sink_sha"
	check_eq "the sink is byte-identical to the source" "$src_sha" "$sink_sha"

	say "The guest: let go again (a rollback, for the demo) so that fio can finish its checks"
	dmsetup resume "$name"
	sleep 2
	fio_stop fio_pid "$_demo_fio_log" "fio: every block it wrote read back intact, no I/O error"
	grep -E 'write: IOPS' "$_demo_fio_log" | sed 's/^ */  fio: /'
}
