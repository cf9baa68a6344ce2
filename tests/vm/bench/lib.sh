# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# What the VM benchmarks share (sourced by tests/vm/bench/*.sh, after
# test_common.sh):
#   fio_w DEV ARGS...       one timed write run of $SECS s over $FIO_SIZE
#                           (default ${MIB}M): "IOPS P99_US MIBPS"
#   median                  the median of the numbers on stdin
#   col I WL FIELD          the median over the rounds in $res of
#                           configuration I's FIELD (4 IOPS, 5 p99 in us,
#                           6 MiB/s, further ones the bench's own) in
#                           workload WL; $res lines: "ROUND I WL FIELDS..."
#   ratio I J WL FIELD      the median over the rounds of I's FIELD / J's,
#                           as "x0.97"

fio_w() {
	local dev=$1
	shift
	fio --name=b --filename="$dev" --ioengine=io_uring --direct=1 \
		--time_based --runtime="$SECS" --ramp_time=1 --randrepeat=0 \
		--size="${FIO_SIZE:-${MIB}M}" --output-format=json "$@" 2>/dev/null | awk '
		/"write" : \{/ { w = 1 }
		w && /"iops" :/ && iops == "" { gsub(/[ ,]/, ""); split($0, a, ":"); iops = a[2] }
		w && /"bw" :/ && bw == "" { gsub(/[ ,]/, ""); split($0, a, ":"); bw = a[2] }
		w && /"99.000000" :/ && p99 == "" { gsub(/[ ,"]/, ""); split($0, a, ":"); p99 = a[2] }
		END { printf "%.0f %.0f %.1f\n", iops, p99 / 1000, bw / 1024 }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

col() {
	awk -v i="$1" -v w="$2" -v f="$3" '$2 == i && $3 == w { print $f }' "$res" | median
}

ratio() {
	awk -v i="$1" -v j="$2" -v w="$3" -v f="$4" '
		$3 == w && $2 == i { a[$1] = $f }
		$3 == w && $2 == j { b[$1] = $f }
		END { for (r in a) if (b[r] > 0) printf "%.4f\n", a[r] / b[r] }' "$res" |
		median | awk '{ printf "x%.2f", $1 }'
}
