#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench: every benchmark, each printing ratios against a peer run side
# by side in the same run (these machines are shared and noisy: no absolute
# figure means much alone).  Benchmarks never fail the build; they report.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
rc=0
for b in "$top"/scripts/bench-*.sh; do
	[ -x "$b" ] || continue
	echo "=== ${b##*/}"
	"$b" || { echo "bench: ${b##*/} failed (exit $?)"; rc=1; }
done
exit $rc
