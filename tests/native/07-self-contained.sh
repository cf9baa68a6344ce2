#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The repository stands on its own: no file in it (code, comments, docs,
# tests) points at documents outside the checkout, such as the design
# documents the project started from (../shared/...).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1

echo "TAP version 13"
echo "1..1"
if git rev-parse --git-dir >/dev/null 2>&1; then
	files=$(git ls-files)
else
	files=$(find . -path ./build -prune -o -path ./.cache -prune -o -path ./.git -prune -o -type f -print)
fi
# shellcheck disable=SC2086 # one name a line, none with blanks
hits=$(grep -nI -E '\.\./shared/|/work/\.library' $files 2>/dev/null |
	grep -v '^tests/native/07-self-contained.sh:')
if [ -z "$hits" ]; then
	echo "ok 1 nothing in the repository points outside it"
else
	echo "$hits" | sed 's/^/# /'
	echo "not ok 1 nothing in the repository points outside it"
fi
