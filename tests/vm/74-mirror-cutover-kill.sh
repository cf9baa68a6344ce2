#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A mirror-style cutover interrupted, each time on a volume of its own
# under a fio --verify writer, the sink a link delay away (300 ms, and
# 1.5 s during the cutover) so that each step of a cutover lasts long
# enough to be caught:
#   - SIGTERM as soon as the job is Cutting Over;
#   - kill -9 once the source is frozen;
#   - SIGTERM once the source is frozen.
# Where the signal lands decides what the daemon does: a cutover stopped
# before its freeze, or in a copy of the frozen part, is given up (the
# device resumed, the job Mirrored); one past that point is finished
# before the daemon exits (Completed, the device frozen); kill -9 leaves
# the device as it was.  Either way, every time, the device and the job's
# record agree: never a resumed device with a Completed job (the guest's
# later writes would be lost to the sink) nor a frozen device with a job
# that is not cutting over or Completed (a hung guest).  Restarted, the
# daemon takes each job on from there: a Mirrored one brings the mirror
# back and cuts over again; one killed Cutting Over finishes its cutover,
# the downtime counted from the freeze, not the restart.  Every job ends
# Completed with every region verified and its sink byte-identical to the
# frozen source, and fio, let go, saw no error.
# vm-timeout: 600
# vm: debug (only the kill -9 case there)
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"
. "$(dirname "$0")/../lib/mirror.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio nbdkit cmp

MIB=4
daemon_start
state() { dmsetup info "$1" | sed -n 's/^State: *//p'; }
saved() { sed -n "s/^$2 //p" "$SXM_JOB_DIR/$1.job"; }
frozen() { [ "$(state "$1")" = SUSPENDED ]; }
steady() {
	[ "$(jf "$1" phase) $(mstate "$2")" = "Mirrored on -" ] &&
		[ "$(jf "$1" verified_now_bytes)" = $((MIB << 20)) ]
}
# point DESC JOB CMD... — a test point; on failure, what show says of JOB.
point() {
	local desc=$1 job=$2
	shift 2
	if "$@"; then
		pass "$desc"
	else
		fail "$desc" "$(sxm-ctl show "$job" 2>&1 | tail -n 25)"
	fi
}

# On the debug kernel only b, the kernel's part (its helper gone with the
# source frozen and a ring attached): each case costs minutes there.
cases="a b c"
[ "${_warm_tscale:-1}" -le 1 ] || cases=b
for c in $cases; do
	scratch_dev d $MIB
	rand_fill "$d" $MIB
	lv_create lv74$c "$d" $MIB
	truncate -s ${MIB}M /tmp/sink74$c.img
	cleanup_push rm -f /tmp/sink74$c.img
	sink_start --delay 300ms file file=/tmp/sink74$c.img
	printf -v "port_$c" %s "$SINK_PORT"
	fio_load "fpid_$c" /dev/mapper/lv74$c /tmp/fio74$c.log --size=2M --rate_iops=20
	check "$c: submit --kind sxm" sxm-ctl submit --source /dev/mapper/lv74$c \
		--sink "$SINK_URI" --kind sxm --name m74$c
done
for c in $cases; do
	check "$c: Mirrored" wait_phase m74$c Mirrored 120
done

# interrupted C SIG WHEN — a cutover of job C, SIG sent to the daemon
# once WHEN ("cutting": the job is Cutting Over; "frozen": the source
# is suspended); then the device and the record must agree.
interrupted() {
	local c=$1 sig=$2 when=$3 st ph fpid=fpid_$1 port=port_$1
	# From a steady state: the mirror on and the online verify through
	# the device (after a restart it starts over), so that the cutover
	# has little to do live.
	point "$c: Mirrored, the mirror on, every region verified" m74$c \
		wait_until 180 steady m74$c lv74$c
	# 1.5 s each way and back: every step of the cutover takes seconds,
	# long enough to be seen on the debug kernel too.
	sink_delay "${!port}" 1500ms
	check "$c: cutover" sxm-ctl cutover m74$c
	if [ "$when" = cutting ]; then
		point "$c: Cutting Over" m74$c wait_phase m74$c "Cutting Over" 30
	else
		point "$c: the source is frozen" m74$c wait_until 60 frozen lv74$c
	fi
	if [ "$sig" = KILL ]; then
		daemon_kill9
		t_dead=$(uptime_ms)
	else
		daemon_stop
	fi
	st=$(state lv74$c) ph=$(saved m74$c phase)
	last="$st $ph"
	sink_delay "${!port}" 300ms
	diag "$c: SIG$sig once $when: the device is $st, the job saved as $ph"
	case "$sig $st $ph" in
	"TERM ACTIVE Mirrored" | "TERM SUSPENDED Completed" | \
	"KILL SUSPENDED Cutting Over" | "KILL SUSPENDED Completed" | \
	"KILL ACTIVE Cutting Over" | "KILL ACTIVE Mirrored")
		pass "$c: SIG$sig once $when: the device and the record agree ($st, $ph)" ;;
	*)
		fail "$c: SIG$sig once $when: the device and the record agree" \
			"the device is $st, the job saved as $ph" ;;
	esac
	check "$c: the guest's writer is alive" kill -0 "${!fpid}"
	daemon_start
}

# finish C — from wherever the restarted daemon took job C, to Completed.
finish() {
	local c=$1
	if [ "$(saved m74$c phase)" = Mirrored ]; then
		check "$c: restarted: Mirrored" wait_phase m74$c Mirrored 60
		check "$c: the mirror is back on" wait_mirror lv74$c on 60
		check "$c: the events say the cutover was interrupted" bash -c \
			"sxm-ctl show m74$c | grep -q 'cutover interrupted'"
		check "$c: cutover --wait" sxm-ctl cutover m74$c --wait
	fi
	check "$c: Completed" wait_phase m74$c Completed 60
	check_eq "$c: every region verified" true "$(jf m74$c verified_all)"
	check_eq "$c: the device is frozen" SUSPENDED "$(state lv74$c)"
	check "$c: the sink is byte-identical to the frozen source" \
		cmp /dev/mapper/lv74$c-sxm-orig /tmp/sink74$c.img
	dmsetup resume lv74$c
	fio_stop "fpid_$c" /tmp/fio74$c.log "$c: fio, held and let go, saw no error"
}

case_a() {
	interrupted a TERM cutting
	finish a
}
case_b() {
	interrupted b KILL frozen
	if [ "$last" = "SUSPENDED Cutting Over" ]; then
		t_back=$(uptime_ms)
		check "b: restarted, the daemon finishes the cutover" wait_phase m74b Completed 60
		held=$(jf m74b downtime_ms)
		check "b: the downtime counts from the freeze, not the restart ($held ms; the daemon was gone $((t_back - t_dead)) ms)" \
			test "$held" -ge $((t_back - t_dead))
		check "b: the events say it resumed in Cutting Over" bash -c \
			"sxm-ctl show m74b | grep -q 'the job resumes in Cutting Over'"
	fi
	finish b
}
case_c() {
	interrupted c TERM frozen
	finish c
}
for c in $cases; do
	case_$c
done
