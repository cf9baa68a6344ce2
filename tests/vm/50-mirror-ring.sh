#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The mirror ring in the kernel (sxm_mirror_test.c, acting as the helper
# with a local device as its sink): every write reaches the sink; a guest
# write waits for the helper; region locks hold writes back; a sink error,
# a silent helper, a dead helper and hostile ring values each degrade the
# mirror with their reason, mark the regions dirty and never fail the guest;
# and the regression tests of the ring's fixed defects (see the test file).
# vm-timeout: 900
# vm: debug
. "$(dirname "$0")/../lib/test_common.sh"

require_cmd dmsetup fio blkdiscard cmp
require_sxm
[ -x "$(dirname "$0")/sxm_mirror_test" ] ||
	bail "tests/vm/sxm_mirror_test is not built (make -C tests/vm)"

scratch_dev src 16
scratch_dev snk 16
SXM_TEST_SOURCE=$src SXM_TEST_SINK=$snk ktap_import "$(dirname "$0")/sxm_mirror_test"
