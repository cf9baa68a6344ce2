#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# demo.sh — the README's main command (make demo, which builds first):
# build the VM image and boot it with one script, tests/demo/warm-migration.sh:
# a warm migration of a disk under a fio write load to nbdkit on another
# "host", full sync, incremental syncs with their metrics, cutover, and the
# sha256 of source and sink side by side.  About two minutes under TCG.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
exec scripts/vm-run.sh demo/warm-migration.sh
