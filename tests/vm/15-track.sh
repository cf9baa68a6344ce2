#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Changed-region tracking against the real target (sxm_track_test.c): the
# harvested map is exactly the regions written, writes racing harvests are
# each in exactly one map with their data on the source, the map survives a
# reload, and /dev/dm-sxm refuses hostile ioctls without losing a bit.
# vm-timeout: 300
# vm: debug
. "$(dirname "$0")/../lib/test_common.sh"

require_cmd dmsetup
require_sxm
[ -x "$(dirname "$0")/sxm_track_test" ] ||
	bail "tests/vm/sxm_track_test is not built (make -C tests/vm)"

scratch_dev src 64
SXM_TEST_SOURCE=$src ktap_import "$(dirname "$0")/sxm_track_test"
