#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Load: sixteen jobs at once on one host, half warm (syncing every 10 s),
# half mirror style, each on a small device under a fio --verify writer,
# while 50 clients loop on "show" for a minute and two more run sxm-ctl
# show --json the way an operator's script does:
#   - every client is answered, every time (no error, no deadlock); the
#     latency of show (p50, p99, max) and the daemon's peak RSS are
#     reported;
#   - then all sixteen cut over at once under their writers: each is
#     Completed, its sink byte-identical to its frozen source, and fio saw
#     no error through any of it.
# vm-timeout: 900
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio nbdkit nbdinfo sha256sum

N=16 MIB=8 CLIENTS=50 SECS=60
tool=$(dirname "$0")/show_load_tool
[ -x "$tool" ] || bail "tests/vm/show_load_tool is not built (make vm-tests)"

names=() fioargs=()
for i in $(seq $N); do
	scratch_dev d $MIB
	rand_fill "$d" $MIB
	lv_create lv70_$i "$d" $MIB
	truncate -s ${MIB}M /tmp/sink70_$i.img
	cleanup_push rm -f /tmp/sink70_$i.img
	sink_start file file=/tmp/sink70_$i.img
	uri[i]=$SINK_URI
	names+=("j70_$i")
	fioargs+=(--name="w$i" --filename=/dev/mapper/lv70_$i)
done
daemon_start

# One fio, one verifying writer per device, slow enough for sixteen of
# them in an emulated guest.
fio_log=/tmp/fio70.log
spawn fio_pid fio --ioengine="$FIO_ENGINE" --direct=1 --rw=randwrite \
	--bs=4k --iodepth=2 --size=${MIB}M --rate_iops=15 --time_based \
	--runtime=3600 --verify=crc32c --verify_backlog=64 --verify_fatal=1 \
	--randrepeat=0 --output="$fio_log" "${fioargs[@]}"
sleep 2

ok=1
for i in $(seq $N); do
	if [ "$i" -le $((N / 2)) ]; then
		args=(--cadence 10s)
	else
		args=(--kind sxm)
	fi
	sxm-ctl submit --source /dev/mapper/lv70_$i --sink "${uri[i]}" \
		--name j70_$i "${args[@]}" >/dev/null || ok=0
done
check_eq "sixteen jobs submitted, $((N / 2)) warm and $((N / 2)) mirror style" 1 "$ok"

# Every job where it should stay: a warm one Ready or in one of its
# cadence syncs (every 10 s, longer under this load: a look may well find
# one Syncing), a mirror-style one Mirrored.  Else the phases, said.
all_up() {
	local i ph bad=""
	for i in $(seq $N); do
		ph=$(jf j70_$i phase)
		if [ "$i" -le $((N / 2)) ]; then
			case $ph in Ready | Syncing) continue ;; esac
		else
			[ "$ph" = Mirrored ] && continue
		fi
		bad="$bad j70_$i:$ph"
	done
	[ -z "$bad" ] || { echo "not up:$bad"; return 1; }
}
t0=$SECONDS
check "all sixteen reach Ready or Mirrored under their writers" \
	wait_until 600 all_up
diag "all up in $((SECONDS - t0)) s"

# The minute of clients.
cli_loop() {	# ID FIRST: an operator's script, sxm-ctl show --json, counted
	local n=0 bad=0 end=$((SECONDS + SECS)) i=$2
	while [ $SECONDS -lt $end ]; do
		sxm-ctl show "j70_$((i % N + 1))" --json | grep -q '^{"name":' ||
			bad=$((bad + 1))
		n=$((n + 1)) i=$((i + 1))
	done
	echo "$n $bad" > "/tmp/cli70_$1.out"
}
cli_loop 0 0 & c0=$!
cli_loop 1 7 & c1=$!
out=$("$tool" "$SXM_SOCKET" $CLIENTS $SECS "${names[@]}")
rc=$?
wait $c0 $c1
diag "$CLIENTS clients, $SECS s: $out"
check_eq "every show answered, none failed" 0 "$rc"
read -r n0 bad0 < /tmp/cli70_0.out
read -r n1 bad1 < /tmp/cli70_1.out
check_eq "sxm-ctl show --json in two loops: $((n0 + n1)) calls, all answered" \
	0 "$((bad0 + bad1))"
check "the daemon is there" kill -0 "$DAEMON_PID"
check "still all Ready (or syncing) or Mirrored" all_up
syncs=0
for i in $(seq $((N / 2))); do
	syncs=$((syncs + $(jf j70_$i sync_count)))
done
diag "warm jobs: $syncs syncs in all meanwhile"
check "the warm jobs synced meanwhile" test "$syncs" -ge $((N / 2))

# All sixteen cut over at once, under their writers.
pids=()
for i in $(seq $N); do
	sxm-ctl cutover j70_$i --wait > /tmp/cut70_$i.out 2>&1 &
	pids+=($!)
done
ok=1
for p in "${pids[@]}"; do wait "$p" || ok=0; done
check_eq "sixteen cutovers at once, each done" 1 "$ok"
[ "$ok" = 1 ] || diag "$(cat /tmp/cut70_*.out | grep -v '^ ' | tail -n 20)"
same=0 done=0
for i in $(seq $N); do
	[ "$(jf j70_$i phase)" = Completed ] && done=$((done + 1))
	[ "$(sha256_of /dev/mapper/lv70_$i-sxm-orig)" = "$(sha256_of /tmp/sink70_$i.img)" ] &&
		same=$((same + 1))
done
check_eq "sixteen Completed" $N $done
check_eq "sixteen sinks byte-identical to their frozen sources" $N $same
rss=$(awk '/^VmHWM/ { print $2 }' /proc/"$DAEMON_PID"/status)
diag "the daemon's peak RSS: ${rss} kB"
check "the daemon's peak RSS is known" test -n "$rss"
for i in $(seq $N); do dmsetup resume lv70_$i; done
sleep 1
fio_stop fio_pid "$fio_log" "fio --verify on sixteen devices saw no error"
