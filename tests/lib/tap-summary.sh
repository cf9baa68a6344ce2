#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# tap-summary.sh DIR — count the TAP results of a test run and print one line
# per test file, then exactly one last line "N passed, N failed[, N skipped]".
# Exit status 1 if anything failed.
#
# DIR/index lists the test files in run order (e.g. "vm/00-harness.sh"); for
# each, DIR/<name with / as _>.tap holds its output, .rc its exit status and
# .time (optional) how many seconds it ran.
# Counting rules (kselftest):
#   "ok N ..."                  passed;  with "# SKIP" in it: skipped
#   "not ok N ..."              failed;  with "# TODO" in it: skipped
#   indented lines (subtests)   not counted; their parent line is
#   exit 4 (or "1..0") and no   one skipped (the whole file was skipped)
#     test points
#   other non-zero exit and no  one failed ("exit status N")
#     failure counted
#   no test points at all       one failed (a test never passes silently)
#   fewer points than "1..N"    one failed (the test stopped early), unless
#                               it already failed
set -u
dir=${1:?usage: tap-summary.sh DIR}
tp=0 tf=0 ts=0
while read -r name; do
	[ -n "$name" ] || continue
	base=$dir/${name//\//_}
	rc=$(cat "$base.rc" 2>/dev/null || echo 1)
	read -r p f s plan < <(awk '
		/^ok /     { if (toupper($0) ~ /# *SKIP/) s++; else p++; next }
		/^not ok / { if (toupper($0) ~ /# *TODO/) s++; else f++; next }
		/^1\.\.[0-9]+/ { split($1, a, /\.\./); plan = a[2] }
		END { printf "%d %d %d %s\n", p, f, s, plan == "" ? "-" : plan }
	' "$base.tap" 2>/dev/null || echo "0 0 0 -")
	why=""
	if [ $((p + f + s)) -eq 0 ] && { [ "$rc" = 4 ] || { [ "$rc" = 0 ] && [ "$plan" = 0 ]; }; }; then
		s=1 why="skipped"
	elif [ "$rc" != 0 ] && [ "$rc" != 4 ] && [ "$f" -eq 0 ]; then
		f=1 why="exit status $rc"
	elif [ $((p + f + s)) -eq 0 ]; then
		f=1 why="no TAP test points"
	elif [ "$plan" != - ] && [ $((p + f + s)) -lt "$plan" ] && [ "$f" -eq 0 ]; then
		why="planned $plan, ran $((p + f + s))" f=1
	fi
	if [ "$f" -gt 0 ]; then verdict=FAIL; elif [ "$p" -eq 0 ]; then verdict=SKIP; else verdict=PASS; fi
	secs=$(cat "$base.time" 2>/dev/null)
	printf '%-4s %-32s %3d passed, %d failed, %d skipped%s%s\n' \
		"$verdict" "$name" "$p" "$f" "$s" "${secs:+, $secs s}" "${why:+ ($why)}"
	tp=$((tp + p)) tf=$((tf + f)) ts=$((ts + s))
done < "$dir/index"

if [ "$ts" -gt 0 ]; then
	echo "$tp passed, $tf failed, $ts skipped"
else
	echo "$tp passed, $tf failed"
fi
[ "$tf" -eq 0 ]
