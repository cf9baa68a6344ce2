#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The helper keeps its shape (userspace/Makefile, docs/design.md "The
# helper's layers"):
#   1. every source of userspace/ lives in a layer's folder, and includes
#      the project's headers by their folder ("io/sink.h"), only from its
#      own layer or one below it;
#   2. no function is longer than 80 lines, but for the ones listed below
#      with the reason they stay long.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top/userspace" || exit 1

# Each layer and what it may include besides itself.  io and dm are side
# by side: neither includes the other.
declare -A below=(
	[base]=""
	[kdev]="base"
	[dm]="base kdev"
	[io]="base kdev"
	[jobs]="base kdev dm io"
	[daemon]="base kdev dm io jobs"
	[cli]="base kdev dm io jobs daemon"
)

# Functions allowed over 80 lines, as "file:function  reason".  New code
# has none; these are older, and each is one sequence that reads best top
# to bottom, or waits its turn to be split (said so).
long_ok=(
	"jobs/mirror.c:do_cutover  the frozen window in the order it must happen: suspend, nothing in flight, empty harvest, pump stopped, flushes, compare, mirror off; each step undoes the ones before on failure"
	"jobs/warm.c:do_sync  harvest, then per chunk copy, flush, acknowledge exactly what reached the sink: the order is the guarantee, with the rate pacing between"
	"jobs/warm.c:do_full  the resumable full sync: per chunk copy, flush, save the cursor; the cursor's rule (the first region still dirty) sits next to the copy it follows"
	"jobs/mirror_locks.c:mirror_locked_pass  one batch under region locks at a time: take, copy or compare, release, pace; the guest's writes wait only inside, so the lock and release stay in view"
	"jobs/mirror.c:do_copy  the bulk copy's chunks with the pump's state checked between them; waits its turn to be split with the rest of mirror.c"
	"jobs/mirror.c:mirror_up  bringing the mirror up: the pump, the stale entries dropped, the mirror set, verified; waits its turn to be split with the rest of mirror.c"
	"jobs/core.c:sxm_job_run_open  the attach: /dev/dm-sxm opened, features, attach, the source opened for reading, the engine probed; waits its turn to be split"
	"jobs/job.c:sxm_job_check  the rules table of which command a job takes in which phase, one case per command"
	"dm/insert.c:sxm_insert  the insert as one transaction: record, hidden device, load, suspend, resume, and each step's undo on failure"
	"dm/insert.c:sxm_restore  the restore as one transaction, finishing whatever an interrupted insert or restore left"
	"io/copy.c:copy_setup  the copy's buffers, slots and queues sized from its options, each allocation checked in order"
	"io/sink_file.c:file_open  opening a file sink: regular file or block device, size, O_DIRECT and its alignment, the zeroing method probed"
	"cli/cmd_copy.c:parse_args  one getopt switch over copy's options, a case each"
	"cli/cmd_copy.c:cmd_copy  the command's sequence: source, bitmap, sink, copy, verify, report; waits its turn to be split"
	"cli/cmd_dev.c:cmd_harvest  options, attach, harvest, then extents printed as text or JSON; waits its turn to be split"
	"cli/cmd_job.c:print_json  one JSON object, field by field, in the order of struct sxm_job_rec"
)

echo "TAP version 13"
echo "1..2"

# 1. Includes.
bad=()
nfiles=0
while IFS= read -r f; do
	nfiles=$((nfiles + 1))
	layer=${f%%/*}
	if [ "$layer" = "$f" ] || [ -z "${below[$layer]+x}" ]; then
		bad+=("$f: not in a layer's folder")
		continue
	fi
	while IFS= read -r inc; do
		h=${inc#*\"}
		h=${h%\"*}
		hl=${h%%/*}
		if [ "$hl" = "$h" ]; then
			bad+=("$f: includes \"$h\" without its layer's folder")
		elif [ -z "${below[$hl]+x}" ]; then
			bad+=("$f: includes \"$h\", not in a layer")
		elif [ "$hl" != "$layer" ] && ! [[ " ${below[$layer]} " == *" $hl "* ]]; then
			bad+=("$f: $layer includes \"$h\" from $hl, a layer above or beside it")
		fi
	done < <(grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f")
done < <(find . -name '*.[ch]' -o -name '*.def' | sed 's|^\./||' | sort)

if [ "${#bad[@]}" -eq 0 ] && [ "$nfiles" -gt 0 ]; then
	echo "ok 1 every file includes only its own layer and those below ($nfiles files)"
else
	printf '# %s\n' "${bad[@]}"
	echo "not ok 1 every file includes only its own layer and those below ($nfiles files)"
fi

# 2. Function lengths: from the line that names the function (at column 0,
# kernel style) to its closing brace (column 0), both counted.
long=$(find . -name '*.c' | sed 's|^\./||' | sort | xargs awk '
	FNR == 1 { name = ""; start = 0 }
	/^[A-Za-z_].*\(/ && !/;[[:space:]]*$/ && !/^(struct|enum|union)[^(]*=/ {
		s = $0
		sub(/\(.*/, "", s)
		n = split(s, w, /[ *]+/)
		name = w[n]
		start = FNR
	}
	/^}/ && name != "" {
		len = FNR - start + 1
		if (len > 80)
			printf "%s:%s %d\n", FILENAME, name, len
		name = ""
	}')
unexplained=()
while IFS= read -r l; do
	[ -n "$l" ] || continue
	fn=${l% *}
	ok=0
	for a in "${long_ok[@]}"; do
		[ "${a%% *}" = "$fn" ] && ok=1
	done
	if [ "$ok" = 1 ]; then
		echo "# long, with a reason: $l lines"
	else
		unexplained+=("$l lines")
	fi
done <<< "$long"
# A listed function that is no longer long (or gone) leaves the list.
for a in "${long_ok[@]}"; do
	grep -q "^${a%% *} " <<< "$long" || unexplained+=("${a%% *}: listed, but not over 80 lines: take it off the list")
done
if [ "${#unexplained[@]}" -eq 0 ]; then
	echo "ok 2 no function over 80 lines without a reason (${#long_ok[@]} listed)"
else
	printf '# over 80 lines: %s\n' "${unexplained[@]}"
	echo "not ok 2 no function over 80 lines without a reason"
fi
