#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The sink's identity: a job never trusts a sink that no longer holds what
# it wrote.  The NBD server at the job's address is killed and another
# started on the same port serving a new, empty volume of the same size (a
# destination re-provisioned behind the job's back):
#   - warm, while Ready: the next sync finds it (--on-sink-change fail,
#     the default): Failed with the reason, nothing copied to it; the right
#     server back, retry goes on and the cutover ends with the sink equal to
#     the source;
#   - warm, --on-sink-change resync, under a write load: the sync finds it,
#     the job copies everything again and the cutover ends equal;
#   - warm, across a daemon restart: the cutover finds it and fails the
#     job, the guest's device resumed (--no-verify: else the online verify
#     finds it first);
#   - a sink of another size: caught by its geometry;
#   - mirror style, while Mirrored, under a write load (fail and resync):
#     the pump's reconnection finds it, the guest writes on without an
#     error;
# and the same server restarted on the same volume is no change: the job
# goes on, its checks counted, no change found.
# vm-timeout: 420
# Not on the debug kernel in make check (make check-debug runs it there):
# what it proves is the daemon's (the sink's identity and the policy on a
# change); the kernel paths it drives (tracking, harvests, the mirror's
# degrade on a lost sink and its resync, the cutover) are the ones 50, 51
# and 74 run on the debug kernel, and it is the longest test there.
# vm: no-debug
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"
. "$(dirname "$0")/../lib/mirror.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio nbdkit nbdcopy cmp

MIB=16
daemon_start

# serve PORT FILE — nbdkit on PORT serving FILE; its pid in spid[PORT].
declare -A spid
serve() {
	sink_start -p "$1" file file="$2"
	spid[$1]=$SINK_PID
}

# swap PORT FILE — the server on PORT killed, another started there on FILE.
swap() {
	kill -KILL "${spid[$1]}"
	wait "${spid[$1]}" 2>/dev/null || true
	serve "$1" "$2"
}

# new_img NAME — an empty sink volume of MIB MiB.
new_img() {
	rm -f "/tmp/$1.img"
	truncate -s ${MIB}M "/tmp/$1.img"
	cleanup_push rm -f "/tmp/$1.img"
}

has_event() { sxm-ctl show "$1" | grep -qF -- "$2"; }

# ---------------------------------------------- warm, Ready, policy fail ----

scratch_dev d1 $MIB
rand_fill "$d1" $MIB
new_img s67a
new_img s67a-new
serve 10871 /tmp/s67a.img
uri=$SINK_URI
cleanup_push _tc_dm_remove w67a
check "warm submit --wait: Ready" sxm-ctl submit --source "$d1" --sink "$uri" \
	--name w67a --wait
check "a sync with the same server" sxm-ctl sync w67a --wait
checks=$(jf w67a sink_checks)
check "its connections were checked ($checks)" test "$checks" -ge 1
check_eq "no change found" 0 "$(jf w67a sink_changes)"
check_eq "the default policy is fail" fail "$(jf w67a on_sink_change)"

swap 10871 /tmp/s67a-new.img
dd if=/dev/urandom of=/dev/mapper/w67a bs=64k count=1 seek=5 oflag=direct \
	status=none
expect_rc "the next sync fails: not the sink the job wrote to" 1 \
	"not the sink the job wrote to" sxm-ctl sync w67a --wait
# Its online verify (Ready) or the sync, whichever looks first.
check "the job is Failed in Ready or Syncing" bash -c \
	"[[ '$(jf w67a phase) $(jf w67a fail_phase)' =~ ^Failed\ (Ready|Syncing)$ ]]"
check "the reason says which region differs" bash -c \
	"sxm-ctl show w67a | grep -E '^Reason +sink nbd://.*: the region at [0-9]+ .*differs from the source'"
check_eq "the change is counted" 1 "$(jf w67a sink_changes)"
check "and said in an event" has_event w67a "not the sink the job wrote to"
all_zero() { [ -z "$(tr -d '\0' < "$1" | head -c 1)" ]; }
check "nothing was copied to the new volume" all_zero /tmp/s67a-new.img

swap 10871 /tmp/s67a.img
check "the right server back: retry --wait" sxm-ctl retry w67a --wait
check "cutover --wait" sxm-ctl cutover w67a --wait
check_eq "the sink equals the frozen source" "$(sha256_of "$d1")" \
	"$(sha256_of /tmp/s67a.img)"

# -------------------------------- warm, Ready, policy resync, under load ----

scratch_dev d2 $MIB
rand_fill "$d2" $MIB
lv_create lv67b "$d2" $MIB
new_img s67b
new_img s67b-new
serve 10872 /tmp/s67b.img
uri=$SINK_URI
fio_load fio_b /dev/mapper/lv67b /tmp/fio67b.log
check "warm submit --on-sink-change resync --wait" sxm-ctl submit \
	--source /dev/mapper/lv67b --sink "$uri" --name w67b \
	--on-sink-change resync --wait
check_eq "the policy is recorded" resync "$(jf w67b on_sink_change)"
full=$(jf w67b bytes_full)
# Paused, the job lets its connection go (its online verify stops): the
# swap is found when it opens one again -- a sync asked now, or its online
# verify if it had more to verify (then the sync is refused, in Full Sync).
check "pause" sxm-ctl pause w67b
swap 10872 /tmp/s67b-new.img
check "resume" sxm-ctl resume w67b
sxm-ctl sync w67b >/dev/null 2>&1 || true
copied_again_b() {
	has_event w67b "everything is copied again" &&
		[ "$(jf w67b phase)" = Ready ] &&
		[ "$(jf w67b full_sync_done)" = "$((MIB << 20))" ]
}
check "the change found, everything copied again" wait_until 60 copied_again_b
check_eq "the change is counted" 1 "$(jf w67b sink_changes)"
check "the full sync ran again ($full, then $(jf w67b bytes_full) bytes)" \
	test "$(jf w67b bytes_full)" -ge $((full + (MIB << 20)))
check "a sync to the new volume" sxm-ctl sync w67b --wait
check "cutover --wait" sxm-ctl cutover w67b --wait
check_eq "the new volume equals the frozen source" \
	"$(sha256_of /dev/mapper/lv67b-sxm-orig)" "$(sha256_of /tmp/s67b-new.img)"
dmsetup resume lv67b
fio_stop fio_b /tmp/fio67b.log "fio saw no error"

# ------------------------------------------- warm, across a daemon restart ----

scratch_dev d3 $MIB
rand_fill "$d3" $MIB
new_img s67c
new_img s67c-new
serve 10873 /tmp/s67c.img
uri=$SINK_URI
cleanup_push _tc_dm_remove w67c
# --no-verify: no online verify opens the sink while Ready, so the
# cutover is the first to look at it.
check "warm submit --no-verify --wait" sxm-ctl submit --source "$d3" \
	--sink "$uri" --name w67c --no-verify --wait
daemon_stop
swap 10873 /tmp/s67c-new.img
daemon_start
check "the restarted daemon has the job Ready" wait_phase w67c Ready 30
expect_rc "the cutover finds the other sink" 1 "not the sink the job wrote to" \
	sxm-ctl cutover w67c --wait
check_eq "Failed in Cutting Over" "Failed Cutting Over" \
	"$(jf w67c phase) $(jf w67c fail_phase)"
check "the device is not left suspended" bash -c \
	"dmsetup info w67c | grep -q '^State: *ACTIVE'"

# ------------------------- warm, resync, across a daemon restart, verifying ----

scratch_dev d4 $MIB
rand_fill "$d4" $MIB
new_img s67d
new_img s67d-new
serve 10876 /tmp/s67d.img
uri=$SINK_URI
cleanup_push _tc_dm_remove w67d
check "warm submit --on-sink-change resync --wait" sxm-ctl submit \
	--source "$d4" --sink "$uri" --name w67d --on-sink-change resync --wait
daemon_stop
swap 10876 /tmp/s67d-new.img
daemon_start
copied_again() {
	has_event w67d "everything is copied again" &&
		[ "$(jf w67d phase)" = Ready ] && [ "$(jf w67d full_sync_done)" = "$((MIB << 20))" ]
}
check "restarted, its online verify finds the other sink: copied again" \
	wait_until 60 copied_again
check "cutover --wait" sxm-ctl cutover w67d --wait
check_eq "the new volume equals the frozen source" "$(sha256_of "$d4")" \
	"$(sha256_of /tmp/s67d-new.img)"

# ------------------------------------------------ another size of sink ----

new_img s67c-big
truncate -s $((MIB * 2))M /tmp/s67c-big.img
swap 10873 /tmp/s67c-big.img
expect_rc "retry: a sink of another size is another sink" 1 \
	"bytes now, the job wrote to one of $((MIB << 20))" sxm-ctl retry w67c --wait
check_eq "still Failed" Failed "$(jf w67c phase)"
swap 10873 /tmp/s67c.img
check "the right one back: retry, cutover" bash -c \
	"sxm-ctl retry w67c --wait && sxm-ctl cutover w67c --wait"
check_eq "the sink equals the source" "$(sha256_of "$d3")" \
	"$(sha256_of /tmp/s67c.img)"

# --------------------------------------------- mirror style, while Mirrored ----

checks_over() { [ "$(jf "$1" sink_checks)" -gt "$2" ]; }
mirrored_on() {
	[ "$(jf "$1" phase)" = Mirrored ] && [ "$(jf "$1" mirror)" = on ]
}
resynced() { has_event "$1" "everything is copied again" && mirrored_on "$1"; }

# mirror_case POLICY PORT — a mirror-style job under load, its sink swapped.
mirror_case() {
	local pol=$1 port=$2 name=m67$1 n
	scratch_dev mdev $MIB
	rand_fill "$mdev" $MIB
	lv_create "lv$name" "$mdev" $MIB
	new_img "s$name"
	new_img "s$name-new"
	serve "$port" "/tmp/s$name.img"
	fio_load fio_m "/dev/mapper/lv$name" "/tmp/fio$name.log"
	check "$pol: submit --kind sxm --wait: Mirrored" sxm-ctl submit \
		--source "/dev/mapper/lv$name" --sink "$SINK_URI" --kind sxm \
		--name "$name" --on-sink-change "$pol" --wait

	# The same volume again first: no change; the mirror stays or comes
	# back on (the pump may reconnect before a write fails).
	n=$(jf "$name" sink_checks)
	swap "$port" "/tmp/s$name.img"
	check "$pol: the same volume restarted: its new connection is checked" \
		wait_until 60 checks_over "$name" "$n"
	check "$pol: and the job is Mirrored, the mirror on" \
		wait_until 60 mirrored_on "$name"
	check_eq "$pol: no change found" 0 "$(jf "$name" sink_changes)"

	swap "$port" "/tmp/s$name-new.img"
	check "$pol: the pump's new connection finds the other volume" \
		wait_until 60 has_event "$name" "not the sink the job wrote to"
	check "$pol: the guest writes on (fio is alive)" kill -0 "$fio_m"
	if [ "$pol" = fail ]; then
		check "fail: the job is Failed" wait_phase "$name" Failed 30
		check "fail: with the reason" bash -c \
			"sxm-ctl show $name | grep -E '^Reason +sink nbd://.*(differs from the source|bytes now)'"
		check "fail: cancel puts the device back" \
			sxm-ctl cancel "$name" --wait
	else
		check "resync: copied again, Mirrored" wait_until 120 resynced "$name"
		check_eq "resync: the change is counted" 1 "$(jf "$name" sink_changes)"
		check "resync: cutover --wait" sxm-ctl cutover "$name" --wait
		check_eq "resync: the new volume equals the frozen source" \
			"$(sha256_of "/dev/mapper/lv$name-sxm-orig")" \
			"$(sha256_of "/tmp/s$name-new.img")"
		dmsetup resume "lv$name"
	fi
	fio_stop fio_m "/tmp/fio$name.log" "$pol: fio saw no error"
}

mirror_case fail 10874
mirror_case resync 10875
