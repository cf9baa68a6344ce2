#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Every parser of the helper's inputs under libFuzzer with ASan and UBSan
# (tests/fuzz/): a short run of each on its seed corpus, 5 seconds, or
# $SXM_FUZZ_SECS.  "make fuzz DURATION=..." runs them long.
exec "$(dirname "$0")/../fuzz/run.sh" "${SXM_FUZZ_SECS:-5}"
