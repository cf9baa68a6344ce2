#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A warm migration end to end, under a continuous fio --verify write load
# through the device the whole time: a live "logical volume" (dm-linear)
# that fio keeps open gets sxm inserted under it by "sxm-ctl submit", a
# full sync, three incremental syncs, and a cutover with fio still
# writing, which syncs live until little is dirty before it freezes the
# source.  Then: the sink is byte-identical to the frozen source; the
# metrics add up to what the sink was sent (nbdkit's log filter counts
# it): Bytes (Full) is the device, Bytes (Incr) the sum of the syncs,
# Sync Count 3 and the cutover's; the source stays suspended; and fio,
# let go afterwards, saw no error and no bad block.
# vm-timeout: 180
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio nbdkit nbdcopy

MIB=32
scratch_dev disk $MIB
rand_fill "$disk" $MIB
lv_create lv40 "$disk" $MIB
sink_start --filter=log memory size=${MIB}M logfile=/tmp/sink40.log
slog=/tmp/sink40.log
daemon_start

fio_log=/tmp/fio40.log
fio_load fio_pid /dev/mapper/lv40 "$fio_log"
sleep 1

# ------------------------------------------------------------ full sync ----

out=$(sxm-ctl submit --source /dev/mapper/lv40 --sink "$SINK_URI" \
	--name vm40 --rate 8M --wait 2>&1) && rc=0 || rc=$?
diag "$out"
check_eq "submit --wait: the full sync under load reaches Ready" 0 "$rc"
check "submit says sxm went under the live device" \
	grep -q "sxm inserted under it" <<< "$out"
check "submit --wait (not a terminal): progress lines" \
	grep -qE "^vm40: full sync +[0-9]+%  .* / 32.0 MiB  .*ETA" <<< "$out"
check_eq "phase Ready" Ready "$(jf vm40 phase)"
check_eq "lv40 runs sxm over the hidden device, tracking" \
	"0 $((MIB * 2048)) sxm $(dmsetup info -c --noheadings -o major,minor --separator : lv40-sxm-orig) 128 1 track" \
	"$(dmsetup table lv40)"
check_eq "Bytes (Full) is the whole device" $((MIB << 20)) "$(jf vm40 bytes_full)"
check_eq "Sync Count 0 after the full sync" 0 "$(jf vm40 sync_count)"
full_sent=$(sink_bytes $slog)
check_eq "the sink was sent exactly Bytes (Full)" "$(jf vm40 bytes_full)" "$full_sent"
dirty=$(jf vm40 dirty_bytes)
check "writes during the full sync are tracked ($dirty bytes dirty)" \
	test "${dirty:-0}" -gt 0
check "the job record is on disk" grep -q '^phase Ready$' "$SXM_JOB_DIR/vm40.job"

# ---------------------------------------------------- incremental syncs ----

jail=$(dirname "$0")/jail_tool
incr=0 ok=1
for i in 1 2 3; do
	sleep 1
	sent0=$(sink_bytes $slog)
	# The first on a terminal: it draws a bar.
	cmd=(sxm-ctl sync vm40 --wait)
	[ $i != 1 ] || cmd=("$jail" --pty "${cmd[@]}")
	if ! out=$("${cmd[@]}" 2>&1); then
		ok=0
		diag "sync $i: $out"
	fi
	got=$(jf vm40 last_sync_bytes)
	sent=$(($(sink_bytes $slog) - sent0))
	diag "sync $i: $got bytes, the sink got $sent"
	[ $i != 1 ] || bar=$out
	[ "$got" = "$sent" ] && [ "$got" -gt 0 ] || ok=0
	incr=$((incr + got))
done
check_eq "three incremental syncs, each sending the sink what it reports" 1 $ok
check "sync --wait on a terminal draws a progress bar in place" \
	grep -qE $'\r\e\\[K\\[#*\\.*\\] vm40: sync +[0-9]+%' <<< "$bar"
check_eq "Sync Count 3" 3 "$(jf vm40 sync_count)"
check_eq "Bytes (Incr) is the sum of the three syncs" "$incr" "$(jf vm40 bytes_incr)"
js=$(sxm-ctl show vm40 --json)
diag "$(sxm-ctl show vm40 | head -n 22)"
check "Last Sync, Lag, Rate and the predicted downtime are known" bash -c \
	"grep -q '\"last_sync\":[0-9]' <<< '$js' && grep -q '\"lag_seconds\":[0-9]' <<< '$js' &&
	 grep -q '\"rate\":[1-9]' <<< '$js' && grep -q '\"predicted_downtime_seconds\":[0-9]' <<< '$js'"
check "list shows the job with its metrics" bash -c \
	"sxm-ctl list | grep -E '^vm40 +Ready .* 3 '"
check "fio is still writing" kill -0 "$fio_pid"

# -------------------------------------------------------------- cutover ----

sxm-ctl show vm40 --watch > /tmp/watch40.out 2>&1 &
watch_pid=$!
"$jail" --pty sxm-ctl show vm40 --watch > /tmp/watch40.tty 2>&1 &
tty_pid=$!
sleep 2		# fio dirties most of what it writes to
dirty0=$(jf vm40 dirty_bytes)
incr0=$(jf vm40 bytes_incr)
sent0=$(sink_bytes $slog)
out=$(sxm-ctl cutover vm40 --wait 2>&1) && rc=0 || rc=$?
diag "$out"
check_eq "cutover --wait under load succeeds" 0 "$rc"
check "it reports the downtime and that the source stays frozen" bash -c \
	"grep -q 'guest I/O held [0-9]* ms' <<< '$out' && grep -q 'left suspended (frozen)' <<< '$out'"
check_eq "phase Completed" Completed "$(jf vm40 phase)"
check "show --watch ends once the job is done" wait_until 10 bash -c "! kill -0 $watch_pid"
check "show --watch (not a terminal): progress lines, then the job" bash -c \
	"grep -qE '^vm40: (Ready|Cutting Over|cutover|verify)' /tmp/watch40.out &&
	 grep -q '^Phase *Completed' /tmp/watch40.out"
check "show --watch on a terminal ends too" wait_until 10 bash -c "! kill -0 $tty_pid"
# On a terminal it redraws the job in place (home, clear screen) every
# second, the last drawing the Completed job, and no progress lines.
clear=$'\e[H\e[2J' drawn=$(< /tmp/watch40.tty)
stripped=${drawn//"$clear"/}
redraws=$(((${#drawn} - ${#stripped}) / ${#clear}))
tr -d '\r' <<< "${drawn##*"$clear"}" > /tmp/watch40.last
diag "show --watch on a terminal: $redraws drawings"
check "show --watch on a terminal: redrawn in place, the last Completed" bash -c \
	"[ $redraws -ge 2 ] && grep -q '^Phase *Completed' /tmp/watch40.last &&
	 ! grep -qE '^vm40: ' /tmp/watch40.tty"
check "the drawings before it were of the job cutting over" \
	grep -qE '^Phase *(Ready|Cutting Over)' /tmp/watch40.tty
check "lv40 is suspended: the source cannot diverge" bash -c \
	"dmsetup info lv40 | grep -q '^State: *SUSPENDED'"
cut=$(jf vm40 cutover_bytes)
catchup=$(jf vm40 catchup_syncs)
caught=$(($(jf vm40 bytes_incr) - incr0))
diag "dirty when asked $dirty0; catch-up syncs: $catchup, which sent $caught; frozen copy $cut"
check "the cutover caught up with syncs live before it froze the source" \
	bash -c "[ $catchup -ge 1 ] && sxm-ctl show vm40 | grep -q 'cutover: $catchup syncs\? caught up live first'"
check_eq "the cutover sent the sink what it reports (live, then frozen)" \
	$((caught + cut)) "$(($(sink_bytes $slog) - sent0))"
check_eq "every byte copied in the cutover was read back and verified" \
	"$cut" "$(jf vm40 verified_bytes)"
check "downtime measured" test "$(jf vm40 downtime_ms)" -gt 0
check_eq "Sync Count 3, and the cutover's syncs" $((3 + catchup)) "$(jf vm40 sync_count)"
check_eq "the sink got Bytes (Full) + Bytes (Incr) + the cutover, nothing more" \
	$(($(jf vm40 bytes_full) + $(jf vm40 bytes_incr) + cut)) "$(sink_bytes $slog)"
src_sha=$(sha256_of /dev/mapper/lv40-sxm-orig)
sink_sha=$(sha256_of "$SINK_URI")
diag "source $src_sha"
diag "sink   $sink_sha"
check_eq "the sink is byte-identical to the frozen source" "$src_sha" "$sink_sha"
check "fio is still there, its writes held" kill -0 "$fio_pid"

# Let the guest go (as an operator rolling back would) so that fio can
# finish and check its data.
dmsetup resume lv40
sleep 2
fio_stop fio_pid "$fio_log" "fio --verify=crc32c saw no I/O or verify error"
check "the daemon is still up" kill -0 "$DAEMON_PID"
