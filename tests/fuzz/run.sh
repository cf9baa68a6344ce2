#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run every fuzz harness (build/fuzz/fuzz_NAME) for SECS seconds each (default
# 5) on a copy of its seed corpus (tests/fuzz/corpus/NAME/), one TAP test
# point per harness: it passes if libFuzzer found nothing (no crash, no
# sanitizer report, no leak, no input slower than 10 s).  What it found is
# kept in build/fuzz/found/NAME/ (the input that broke it) and shown; add
# it to the corpus with its fix.  New inputs it made go to
# build/fuzz/new/NAME/, never into the repository.
#
#   tests/fuzz/run.sh [SECS]         (make check: 5; make fuzz DURATION=...)
. "$(dirname "$0")/../lib/test_common.sh"

secs=${1:-5}
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$top/build/fuzz
require_cmd clang
make -s -C "$top/tests/fuzz" >/dev/null || bail "the fuzz harnesses do not build"

for bin in "$out"/fuzz_*; do
	name=${bin##*/fuzz_}
	seeds=$top/tests/fuzz/corpus/$name
	[ -d "$seeds" ] || bail "fuzz_$name has no seed corpus (tests/fuzz/corpus/$name)"
	rm -rf "$out/new/$name" "$out/found/$name"
	mkdir -p "$out/new/$name" "$out/found/$name"
	log=$out/found/$name/log
	rc=0
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$out/found/$name/" \
		"$out/new/$name" "$seeds" >"$log" 2>&1 || rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	diag "fuzz_$name: ${runs:-?} runs in $secs s, corpus $(find "$seeds" "$out/new/$name" -type f | wc -l) inputs"
	if [ "$rc" -eq 0 ]; then
		pass "fuzz_$name: nothing found"
	else
		fail "fuzz_$name: found something (exit $rc)" \
			"$(grep -E 'ERROR|SUMMARY|invariant|runtime error|Test unit written' "$log" | head -n 8)
$(for f in "$out/found/$name"/crash-* "$out/found/$name"/leak-* "$out/found/$name"/timeout-*; do
	[ -e "$f" ] && { echo "$f:"; od -c "$f" | head -n 6; }; done)"
	fi
done
