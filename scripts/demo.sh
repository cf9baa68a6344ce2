#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# demo.sh — the README's main command (make demo, which builds first):
# build the VM image and boot it with the two styles, one after the other:
# tests/demo/warm-migration.sh, a warm migration of a disk under a fio
# write load to nbdkit on another "host" (full sync, incremental syncs with
# their metrics, cutover), and tests/demo/mirror-migration.sh, the same in
# the mirror style (mirror, bulk copy, compose, Mirrored, a cutover in
# milliseconds); each ends with the sha256 of source and sink side by side.
# About three minutes under TCG.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
exec scripts/vm-run.sh demo/warm-migration.sh demo/mirror-migration.sh
