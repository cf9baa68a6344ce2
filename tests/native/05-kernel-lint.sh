#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The kernel module builds with W=1 and sparse (C=2: every file checked)
# with no warning at all, with the debug build's test hooks
# (SXM_TEST_HOOKS=1) and without, and checkpatch.pl --strict finds nothing
# in kernel/, include/ and the test modules tests/vm/kmod/.  Runs natively:
# building needs no kernel.  It builds in a copy of kernel/, so that the
# module in the tree (which a guest's image may be taking meanwhile) is
# never rebuilt under it.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
kver=$("$top/scripts/kver.sh") || exit 1
kdir=${KDIR:-/lib/modules/$kver/build}
checkpatch=$top/.cache/linux-source/scripts/checkpatch.pl
log=$(mktemp)
work=$(mktemp -d)
trap 'rm -rf "$log" "$work"' EXIT
# kernel/Makefile finds the ABI header as $(src)/../include.
mkdir "$work/kernel"
cp "$top"/kernel/Makefile "$top"/kernel/*.[ch] "$work/kernel/"
rm -f "$work"/kernel/*.mod.c
ln -s "$top/include" "$work/include"

echo "TAP version 13"
echo "1..4"

# build N DESC [MAKE_ARGS...] — rebuild every object (so that every
# warning is seen again) with W=1 and sparse: a test point.
build() {
	local n=$1 desc=$2
	shift 2
	make -s -C "$kdir" M="$work/kernel" clean >/dev/null 2>&1
	if make -C "$kdir" M="$work/kernel" W=1 C=2 "$@" modules >"$log" 2>&1 &&
	   ! grep -E 'warning:|error:|sparse:' "$log" | grep -v 'Skipping BTF' | grep -q .; then
		echo "ok $n $desc"
	else
		grep -E 'warning:|error:|sparse:' "$log" | sed 's/^/# /'
		tail -5 "$log" | sed 's/^/# /'
		echo "not ok $n $desc"
	fi
}
# The hooks' build first: the module left is the normal one.
build 1 "kernel module with the test hooks builds clean with W=1 and sparse" \
	SXM_TEST_HOOKS=1
build 2 "kernel module builds clean with W=1 and sparse"
hooks=$(modinfo -F parm "$work/kernel/dm-sxm.ko" 2>&1 | grep -i 'test' || true)
if [ -f "$work/kernel/dm-sxm.ko" ] && [ -z "$hooks" ]; then
	echo "ok 3 the normal build has no test hooks"
else
	echo "$hooks" | sed 's/^/# /'
	echo "not ok 3 the normal build has no test hooks"
fi

if [ ! -f "$checkpatch" ]; then
	echo "not ok 4 checkpatch --strict # checkpatch.pl missing: run scripts/deps.sh"
	exit 1
fi
files=$(cd "$top" && ls kernel/*.c kernel/*.h include/uapi/linux/*.h tests/vm/kmod/*.c | grep -v '\.mod\.c$')
if (cd "$top" && perl "$checkpatch" --strict --no-tree --terse -f $files) >"$log" 2>&1 &&
   ! grep -qE ': (ERROR|WARNING|CHECK):' "$log"; then
	echo "ok 4 checkpatch --strict clean on kernel/, include/ and tests/vm/kmod/"
else
	grep -E ': (ERROR|WARNING|CHECK):' "$log" | sed 's/^/# /'
	echo "not ok 4 checkpatch --strict clean on kernel/, include/ and tests/vm/kmod/"
fi
