#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Static analysis of the helper (userspace/), with no finding left
# unexplained:
#   1. gcc -fanalyzer over every source;
#   2. clang's static analyzer (scan-build) over the build.
# A finding passes only if it is listed below, by tool, file and checker,
# with the reason it is not a bug; anything else fails the test with the
# analyzer's words.
. "$(dirname "$0")/../lib/test_common.sh"
require_cmd gcc scan-build pkg-config

top=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d /tmp/sxm-analyzers.XXXXXX)
cleanup_push rm -rf "$T"
cd "$top/userspace" || bail "no userspace/"

# "tool file checker  reason": findings that are not bugs.
known=(
	"gcc io/sink_file.c -Wanalyzer-malloc-leak  write_zeroes() keeps its buffer in the sink's private struct (s->priv, a void *), which the analyzer loses track of; file_close() frees it"
)

# is_known TOOL FILE CHECKER — listed above.
is_known() {
	local k
	for k in "${known[@]}"; do
		read -r kt kf kc _ <<<"$k"
		[ "$kt $kf $kc" = "$1 $2 $3" ] && return 0
	done
	return 1
}

# judge TOOL FILE — each "file:line:col: warning: ... [checker]" in FILE.
judge() {
	local tool=$1 out=$2 line f c bad=0
	while IFS= read -r line; do
		f=${line%%:*}
		c=$(sed -n 's/.*\[\(-W[^]=]*\|[a-z][A-Za-z]*\.[A-Za-z.]*\)[]=].*/\1/p' <<<"$line")
		if is_known "$tool" "$f" "$c"; then
			diag "known, not a bug: $line" >&2
		else
			bad=1
			echo "# $line"
		fi
	done < <(grep -E '^[a-z]+/[a-z_]+\.c:[0-9]+:[0-9]+: warning:' "$out")
	return $bad
}

# ------------------------------------------------------ gcc -fanalyzer ----

flags=(-fanalyzer -std=gnu11 -O1 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64
	-I../include/uapi -I.)
read -ra pc <<<"$(pkg-config --cflags devmapper liburing libnbd)"
for f in */*.c; do
	gcc "${flags[@]}" "${pc[@]}" -c -o "$T/x.o" "$f" >>"$T/gcc.out" 2>&1 ||
		echo "$f: warning: did not compile [-Wcompile]" >>"$T/gcc.out"
done
n=$(ls */*.c | wc -l)
if bad=$(judge gcc "$T/gcc.out"); then
	pass "gcc -fanalyzer: $n sources, nothing unexplained"
else
	fail "gcc -fanalyzer: $n sources, nothing unexplained" "$bad"
fi

# ----------------------------------------------------------- scan-build ----

scan-build -o "$T/sb" make -s -C "$top/userspace" OUT="$T/obj" \
	-j"$(nproc)" >"$T/sb.out" 2>&1 || echo "userspace/Makefile: warning: the build failed [build]" >>"$T/sb.out"
if bad=$(judge clang "$T/sb.out"); then
	pass "scan-build: nothing unexplained ($(grep -o 'No bugs found\|[0-9]* bugs\? found' "$T/sb.out"))"
else
	fail "scan-build: nothing unexplained" "$bad"
fi

# The list holds only what is still found: a fixed one comes off it.
for k in "${known[@]}"; do
	read -r kt kf kc _ <<<"$k"
	out=$T/gcc.out
	[ "$kt" = clang ] && out=$T/sb.out
	grep -qE "^$kf:[0-9]+:[0-9]+: warning:.*\[$kc[]=]" "$out" &&
		pass "listed and still found: $kt $kf $kc" ||
		fail "listed and still found: $kt $kf $kc" "not found any more: take it off the list"
done
