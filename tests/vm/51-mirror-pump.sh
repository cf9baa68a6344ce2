#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The mirror pump (userspace/io/pump.c, driven by mirror_pump_test.c as the
# helper) against the target and real nbdkit sinks over the veth: every
# kind of write reaches the sink, with counters and latency; locks and
# harvests under load neither hang nor degrade the mirror; a sink write
# error and a sink slower than the ring's timeout degrade it with their
# reason, the completions of abandoned entries are ignored, and the
# mirror comes back after a drop and a resync.
# vm-timeout: 300
# vm: debug
. "$(dirname "$0")/../lib/test_common.sh"

require_cmd dmsetup fio nbdkit nbdcopy cmp
require_sxm
[ -x "$(dirname "$0")/mirror_pump_test" ] ||
	bail "tests/vm/mirror_pump_test is not built (make -C tests/vm)"

scratch_dev src 16
sink_start memory size=16M
plain=$SINK_URI
truncate -s 16M /tmp/pump-err.img
cleanup_push rm -f /tmp/pump-err.img /tmp/pump-err.flag /tmp/pump-fio.pid
sink_start --filter=error file file=/tmp/pump-err.img error-pwrite=EIO \
	error-pwrite-rate=100% error-pwrite-file=/tmp/pump-err.flag
err=$SINK_URI
sink_start --filter=delay memory size=16M delay-write=500ms
slow=$SINK_URI

SXM_TEST_SOURCE=$src SXM_TEST_SINK=$plain SXM_TEST_ERR_SINK=$err \
	SXM_TEST_ERR_FLAG=/tmp/pump-err.flag SXM_TEST_SLOW_SINK=$slow \
	ktap_import "$(dirname "$0")/mirror_pump_test"
