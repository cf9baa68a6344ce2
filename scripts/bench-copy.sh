#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# bench-copy.sh — the copy engine (sxm-ctl copy) against its peers, run
# side by side in the same run on the same data and the same nbdkit sink,
# so that the figures are ratios and survive a noisy shared machine.
#
#   1. A dense source (2 GiB of random data) to an nbdkit memory sink, over
#      TCP loopback and over a Unix socket: sxm-ctl copy vs nbdcopy vs
#      qemu-img convert, each run REPS times interleaved, medians compared
#      as "sxm-ctl time / peer time" (target: < 1.0 against both); with
#      the source in the page cache (warm) and dropped before each run
#      (cold).  CPU time (user + system) is compared too.
#   2. A 64 GiB sparse file holding 1 GiB of data in 256 pieces: sxm-ctl
#      copy of it vs sxm-ctl copy of the 1 GiB of data as a dense file
#      (target: <= 1.5), nbdcopy of the sparse file for reference.
#   3. Peak RSS of sxm-ctl while copying the dense source (target: < 64 MiB).
#
# The test files are made once and kept under build/bench/.  Every server
# is first written once untimed (nbdkit's memory plugin allocates on first
# write, slowly).  Environment: REPS (default 3), DENSE_MIB (2048), SXM_CTL.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
B=$top/build/bench
SXM_CTL=${SXM_CTL:-$top/build/userspace/sxm-ctl}
REPS=${REPS:-3}
DENSE_MIB=${DENSE_MIB:-2048}
SPARSE_GIB=64
PIECES=256				# of 4 MiB: 1 GiB of data

for c in nbdkit nbdcopy qemu-img /usr/bin/time; do
	command -v "$c" >/dev/null || { echo "bench-copy: needs $c" >&2; exit 1; }
done
[ -x "$SXM_CTL" ] || { echo "bench-copy: build sxm-ctl first (make userspace)" >&2; exit 1; }

mkdir -p "$B"
W=$(mktemp -d /tmp/sxm-bench.XXXXXX)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || :; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || :; done
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------- test data ----

dense=$B/dense-${DENSE_MIB}m.img
dense1=$B/dense-1g.img
sparse=$B/sparse-${SPARSE_GIB}g.img

if [ "$(stat -c %s "$dense" 2>/dev/null || echo 0)" -ne $((DENSE_MIB << 20)) ]; then
	echo "making $dense (random data, once)"
	head -c $((DENSE_MIB << 20)) /dev/urandom >"$dense.tmp"
	mv "$dense.tmp" "$dense"
fi
if [ "$(stat -c %s "$dense1" 2>/dev/null || echo 0)" -ne $((1 << 30)) ] ||
   [ ! -f "$sparse.ok" ]; then
	echo "making $dense1 and $sparse (once)"
	head -c $((1 << 30)) /dev/urandom >"$dense1"
	rm -f "$sparse" "$sparse.ok"
	truncate -s "${SPARSE_GIB}G" "$sparse"
	step=$(((SPARSE_GIB << 10) / 4 / PIECES))	# in 4 MiB units
	for ((i = 0; i < PIECES; i++)); do
		# Spread out, each a little off the even grid.
		dd if="$dense1" of="$sparse" bs=4M count=1 skip=$i \
			seek=$((i * step + (i * 7) % (step - 1))) \
			conv=notrunc status=none
	done
	touch "$sparse.ok"
fi

# --------------------------------------------------------------- servers ----

# server VAR tcp|unix NBDKIT_ARGS... — start nbdkit, URI in VAR.  A big
# allocator=malloc export takes seconds to start: wait for it while it
# lives, and try another port only when it died (the port was taken).
server() {
	local var=$1 transport=$2 uri pid try i port
	shift 2
	for try in $(seq 10); do
		if [ "$transport" = unix ]; then
			rm -f "$W/$var.sock"
			uri="nbd+unix:///?socket=$W/$var.sock"
			nbdkit --foreground --exit-with-parent -U "$W/$var.sock" "$@" \
				2>"$W/$var.log" &
		else
			port=$((20000 + RANDOM % 40000))
			uri="nbd://127.0.0.1:$port/"
			nbdkit --foreground --exit-with-parent -i 127.0.0.1 -p "$port" "$@" \
				2>"$W/$var.log" &
		fi
		pid=$!
		pids+=("$pid")
		for i in $(seq 1200); do
			kill -0 "$pid" 2>/dev/null || break
			if nbdinfo --size "$uri" >/dev/null 2>&1; then
				printf -v "$var" %s "$uri"
				return 0
			fi
			sleep 0.1
		done
		kill "$pid" 2>/dev/null || :
		wait "$pid" 2>/dev/null || :
	done
	echo "bench-copy: nbdkit $* would not start: $(tail -n 3 "$W/$var.log")" >&2
	exit 1
}

# ---------------------------------------------------------------- timing ----

# run CMD... — run CMD once (the bench fails if it does); prints its wall
# time and its CPU time (user + system), in seconds.
run() {
	if ! /usr/bin/time -f '%e %U %S' -o "$W/time" "$@" >"$W/out" 2>&1; then
		echo "bench-copy: failed: $*" >&2
		cat "$W/out" >&2
		exit 1
	fi
	awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' "$W/time"
}

median() {
	printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
}

declare -A T C
summary=()

# bench NAME CMD... — run once more; wall time to T[NAME], CPU to C[NAME].
bench() {
	local name=$1 w c
	shift
	read -r w c < <(run "$@")
	[ -n "$c" ] || exit 1
	T[$name]="${T[$name]:-} $w"
	C[$name]="${C[$name]:-} $c"
}

# report NAME... — print the medians; set med_NAME (wall) and cpu_NAME.
report() {
	local k m c
	for k in "$@"; do
		# shellcheck disable=SC2086
		m=$(median ${T[$k]})
		# shellcheck disable=SC2086
		c=$(median ${C[$k]})
		printf '  %-8s median %6.3f s wall, %6.3f s CPU   (wall:%s)\n' \
			"$k" "$m" "$c" "${T[$k]}"
		printf -v "med_$k" %s "$m"
		printf -v "cpu_$k" %s "$c"
	done
}

# ------------------------------------------------------------ 1. dense ----

# Two cache states.  warm: the source file is in the page cache, as it is
# after it was written; nbdcopy and qemu-img read it from there, while
# sxm-ctl reads the disk with O_DIRECT, as it does a device in use.  cold:
# the file's pages are dropped before every run, so every tool reads the
# disk, as in a migration.
drop_cache() {
	dd if="$1" iflag=nocache count=0 status=none
}

for transport in tcp unix; do
	server sink "$transport" memory size=$((DENSE_MIB << 20)) allocator=malloc
	run nbdcopy "$dense" "$sink" >/dev/null		# warm the server up
	for cache in warm cold; do
		echo
		echo "== dense $DENSE_MIB MiB over $transport, $cache cache: $sink =="
		for k in sxm nbdcopy qemu; do T[$k]="" C[$k]=""; done
		for ((r = 0; r < REPS; r++)); do
			[ $cache = warm ] || drop_cache "$dense"
			bench sxm "$SXM_CTL" copy --no-progress "$dense" "$sink"
			[ $cache = warm ] || drop_cache "$dense"
			bench nbdcopy nbdcopy --flush "$dense" "$sink"
			[ $cache = warm ] || drop_cache "$dense"
			bench qemu qemu-img convert -n -f raw -O raw "$dense" "$sink"
		done
		report sxm nbdcopy qemu
		r1=$(ratio "$med_sxm" "$med_nbdcopy")
		r2=$(ratio "$med_sxm" "$med_qemu")
		c1=$(ratio "$cpu_sxm" "$cpu_nbdcopy")
		c2=$(ratio "$cpu_sxm" "$cpu_qemu")
		echo "  time: sxm-ctl/nbdcopy $r1, sxm-ctl/qemu-img $r2 (target < 1.0)"
		echo "  CPU:  sxm-ctl/nbdcopy $c1, sxm-ctl/qemu-img $c2"
		summary+=("dense $transport $cache: time sxm-ctl/nbdcopy $r1, sxm-ctl/qemu-img $r2 (target < 1.0); CPU $c1, $c2")
	done

	if [ "$transport" = unix ]; then
		/usr/bin/time -f %M -o "$W/rss" "$SXM_CTL" copy --no-progress \
			"$dense" "$sink" >/dev/null
		rss=$(($(cat "$W/rss") / 1024))
		echo "  sxm-ctl peak RSS: $rss MiB (target < 64)"
		summary+=("peak RSS of sxm-ctl copy: $rss MiB (target < 64)")
	fi
	kill "${pids[-1]}"
	wait "${pids[-1]}" 2>/dev/null || :
done

# ----------------------------------------------------------- 2. sparse ----

# Two sinks, so that the sparse copy's write-zeroes never free what the
# dense copy wrote (the next dense run would pay the allocation again).
server sink unix memory size=${SPARSE_GIB}G
server sink1 unix memory size=${SPARSE_GIB}G
echo
echo "== sparse: $SPARSE_GIB GiB holding 1 GiB of data, over unix =="
run "$SXM_CTL" copy --no-progress "$sparse" "$sink" >/dev/null	# warm up
run "$SXM_CTL" copy --no-progress "$dense1" "$sink1" >/dev/null
for k in sparse dense1 nbdcopy; do T[$k]="" C[$k]=""; done
for ((r = 0; r < REPS; r++)); do
	bench sparse "$SXM_CTL" copy --no-progress "$sparse" "$sink"
	bench dense1 "$SXM_CTL" copy --no-progress "$dense1" "$sink1"
	bench nbdcopy nbdcopy --flush "$sparse" "$sink"
done
report sparse dense1 nbdcopy
r3=$(ratio "$med_sparse" "$med_dense1")
r4=$(ratio "$med_sparse" "$med_nbdcopy")
echo "  sparse/dense-1GiB $r3 (target <= 1.5); sxm-ctl/nbdcopy on the sparse file $r4"
summary+=("sparse 64 GiB (1 GiB data) / dense 1 GiB: $r3 (target <= 1.5); vs nbdcopy on it: $r4")

echo
echo "bench-copy summary ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)):"
printf '  %s\n' "${summary[@]}"
