#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Mirror style, the helper and the sink dying under a write load:
#   - the daemon killed with kill -9 while Mirrored: the guest's writes go
#     on without an error, the target says "degraded helper_detached" and
#     tracks them; the restarted daemon attaches again, resyncs and is
#     Mirrored, counting the degradation and its reason; the mirror then
#     stays on (sampled for seconds: no degradation, writes mirrored);
#   - the sink (nbdkit, file plugin) killed with kill -9 at a random moment
#     (a random count of mirrored writes) while Mirrored: the mirror goes
#     down (degraded by the target when a write or flush fails, or off,
#     set by the daemon when its pump saw the connections go first), and
#     the job counts it for one of those reasons; every write the guest saw
#     acknowledged is on the sink, or its region is dirty (the source and
#     what the dead sink left in its file are equal over every region not
#     marked dirty or held);
#     nbdkit started again on the same file, the job resyncs by itself and
#     the mirror stays on;
#   - the sink killed again with the writer frozen, nothing in flight: its
#     connections close cleanly (FIN, which libnbd calls "closed", not
#     "dead"), the job takes that as a lost sink all the same (exactly one
#     degradation, pump_stopped: nothing else can take an idle mirror down)
#     and comes back on new connections once nbdkit does (the writer stays
#     frozen until then: nothing to resync, so this costs seconds, not a
#     resync); thawed, the writer's writes are mirrored over them.
# A slow machine may add a degradation of its own (a write past the ring's
# timeout) while the writer runs: each fault is checked to count at least
# one degradation with its reason, not an exact total.
# All end in a cutover with the sink byte-identical to the source, and
# fio --verify saw no error.
# vm-timeout: 360
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"
. "$(dirname "$0")/../lib/mirror.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio nbdkit nbdcopy cmp

MIB=32
scratch_dev disk $MIB
rand_fill "$disk" $MIB
lv_create lv53 "$disk" $MIB
img=/tmp/sink53.img
truncate -s ${MIB}M $img
cleanup_push rm -f $img
sink_start -p 10853 file file=$img
daemon_start

# The job says its mirror is back on once its resync under locks is done,
# which is after the kernel's mirror is on again.
mirrored() { mirror_steady lv53 m53; }
mstate_is() { [ "$(mstate lv53)" = "$1" ]; }
mirror_down() {
	case $(mfield lv53 11) in
	degraded | off) return 0 ;;
	esac
	return 1
}
# Regions dirty or held.
tracked() { dmsetup status lv53 | awk '{ print $7 + $10 }'; }
tracked_above() { [ "$(tracked)" -gt "$1" ]; }
degradations_above() { [ "$(jf m53 degradations)" -gt "$1" ]; }
# Times the job counted the mirror down for a lost sink: a write or a
# flush the sink failed (the target degrades), or the pump's connections
# gone (the daemon turns the mirror off).
sink_downs() {
	echo $(($(reason_count m53 sink_error) + $(reason_count m53 sink_flush_error) +
		$(reason_count m53 pump_stopped)))
}

fio_log=/tmp/fio53.log
# --thread: SIGSTOP to $fio_pid then freezes the writer itself.
fio_load fio_pid /dev/mapper/lv53 "$fio_log" --fsync=16 --thread
check "submit --kind sxm --wait reaches Mirrored under load" \
	sxm-ctl submit --source /dev/mapper/lv53 --sink "$SINK_URI" --kind sxm \
	--name m53 --wait

# ------------------------------------------------- kill -9 of the daemon ----

check "Mirrored, the guest's writes are mirrored" wait_mirrored lv53 20
# What was counted so far (a slow machine may have degraded once already).
deg=$(jf m53 degradations) hd=$(reason_count m53 helper_detached)
t0=$(last_event m53) dirty=$(tracked)
daemon_kill9
check "the helper gone, the target says why: degraded helper_detached" \
	wait_until 20 mstate_is "degraded helper_detached"
check "the guest writes on: 50 more writes complete" wait_writes lv53 50
check "fio is alive" kill -0 "$fio_pid"
# 50 random 4 KiB writes over fio's 128 regions dirty about 40; the
# degradation itself marks at most the writes that were in flight (fio
# has 4 at a time).
check "its writes are tracked meanwhile (regions dirty or held: $dirty before the kill, 8 more)" \
	wait_until 30 tracked_above $((dirty + 7))
daemon_start
check "restarted, the daemon brings the mirror back" wait_mirror lv53 on 60
check "and the job is Mirrored, its resync done" wait_until 60 mirrored
stays_on "the mirror stays on: writes mirrored, no degradation" lv53 m53 5
compare_clean "after the restart, the sink equals the source where nothing is dirty" \
	lv53 /dev/mapper/lv53-sxm-orig $img "$fio_pid"
# Exactly one helper_detached: the helper went away once (the restarted
# daemon counts the mirror it finds down once, with the kernel's reason).
check "the job counted the degradation" degradations_above "$deg"
check_eq "helper_detached, once more" $((hd + 1)) \
	"$(reason_count m53 helper_detached)"
check_event "the events say it went down" m53 "$t0" \
	'mirror degraded: helper_detached'
check_event "and that it came back" m53 "$t0" \
	'mirror back on after .* \(helper_detached\)'

# ------------------------------------------- kill -9 of the sink ----

# At a random moment: after a random count of mirrored writes (at 150
# writes a second, about 0.3 to 2.3 s).
n=$((50 + RANDOM % 300))
check "$n more writes mirrored" wait_mirrored lv53 $n 120
deg=$(jf m53 degradations) sd=$(sink_downs)
t1=$(last_event m53)
kill -KILL "$SINK_PID"
wait "$SINK_PID" 2>/dev/null || true
check "the mirror goes down when the sink dies" wait_until 20 mirror_down
diag "status: $(dmsetup status lv53)"
check "the guest writes on: 50 more writes complete" wait_writes lv53 50
check "fio is alive" kill -0 "$fio_pid"
compare_clean "every region not dirty is on the sink as on the source" \
	lv53 /dev/mapper/lv53-sxm-orig $img "$fio_pid"

sink_start -p 10853 file file=$img
check "the sink back, the job resyncs by itself to Mirrored, mirror on" \
	wait_until 60 mirrored
check "the job counted a degradation (or more) for the lost sink: $(jf m53 degraded_reasons)" \
	test "$(jf m53 degradations)" -gt "$deg" -a "$(sink_downs)" -gt "$sd"
diag "$(sxm-ctl show m53 | grep -E '^(Mirror|Degraded|Sink latency)')"
check_event "the job says the mirror is back" m53 "$t1" 'mirror back on after'
stays_on "the mirror stays on: writes mirrored, no degradation" lv53 m53 5

# ------------------------------------ kill -9 of the sink, idle ----

kill -STOP "$fio_pid"
check "the writer frozen, nothing in flight" wait_until 20 bash -c \
	"[ \"\$(dmsetup status lv53 | awk '{ print \$12 + \$13 }')\" = 0 ]"
check "and nothing in flight in the device" wait_drained lv53
# An extra degradation just before the freeze would still be resyncing:
# the idle kill must find the mirror on and the job done with it.
check "the mirror on, Mirrored" wait_until 60 mirrored
deg=$(jf m53 degradations) ps=$(reason_count m53 pump_stopped)
t2=$(last_event m53)
kill -KILL "$SINK_PID"
wait "$SINK_PID" 2>/dev/null || true
check "a sink gone while idle (FIN, no reset) is noticed: the mirror is down" \
	wait_until 20 degradations_above "$deg"
check_event "the pump saw it and stopped" m53 "$t2" 'mirror degraded: pump_stopped'
sink_start -p 10853 file file=$img
check_event "the sink back, the mirror is back on new connections" m53 "$t2" \
	'mirror back on after .* \(pump_stopped\)'
check "mirror on, Mirrored" wait_until 60 mirrored
# The writer frozen, nothing wrote to the device since the kill: no other
# degradation could happen, and the count is exact.
check_eq "one degradation more, pump_stopped" "$((deg + 1)) $((ps + 1))" \
	"$(jf m53 degradations) $(reason_count m53 pump_stopped)"
kill -CONT "$fio_pid"
stays_on "thawed, the writer's writes are mirrored, the mirror stays on" \
	lv53 m53 5

# -------------------------------------------------------------- cutover ----

check "cutover --wait" sxm-ctl cutover m53 --wait
check_eq "the sink is byte-identical to the frozen source" \
	"$(sha256_of /dev/mapper/lv53-sxm-orig)" "$(sha256_of $img)"
dmsetup resume lv53
check "resumed, the writer's writes go through" wait_writes lv53 20
fio_stop fio_pid "$fio_log" "fio --verify=crc32c saw no error through it all"
