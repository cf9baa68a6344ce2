#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Bad input to the warm-migration commands, table-driven: each call must
# fail with its exit status (2: bad command line, 1: refused) and its
# message, and change nothing: no job record, no device-mapper device made
# or changed, the running job untouched.  Among them: a sink smaller than
# the source, a read-only export, malformed and unreachable URIs, an
# unknown job, a cutover before Ready, a second job on a device already in
# one.  Then who may talk to the daemon: root, or its --group (the socket's
# mode and SO_PEERCRED both), and a CLI with no daemon to talk to.
# vm-timeout: 150
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup nbdkit
jail=$(dirname "$0")/jail_tool
[ -x "$jail" ] || bail "$jail is not built (make -C tests/vm)"

scratch_dev disk 16
scratch_dev plain 16
lv_create lv44 "$disk" 16
sink_start -p 10820 memory size=16M
good=$SINK_URI
sink_start -p 10821 memory size=8M
small=$SINK_URI
sink_start -p 10822 -r memory size=16M
ro=$SINK_URI
daemon_start

# A job in its full sync (128 KiB/s, 128 s: longer than what follows takes
# up to the cancel below, also on the debug kernel), for the calls that
# need one.
check "submit a slow job" sxm-ctl submit --source /dev/mapper/lv44 \
	--sink "$good" --name slow44 --rate 128K
check "it is in its full sync" wait_phase slow44 "Full Sync" 20

state() {
	dmsetup ls | sort
	dmsetup table lv44
	ls "$SXM_JOB_DIR"
	sxm-ctl list | awk 'NR > 1 { print $1, $2, $3 }'
}
before=$(state)

# exit status | what the message must say | sxm-ctl arguments
while IFS='|' read -r want text args; do
	[ -n "$want" ] || continue
	read -r -a argv <<< "$args"
	expect_rc "refused: sxm-ctl $args" "$want" "$text" sxm-ctl "${argv[@]}"
done <<EOF
1|smaller than the source|submit --source $plain --sink $small --name bad44
1|export is read-only|submit --source $plain --sink $ro --name bad44
1|unsupported URI|submit --source $plain --sink foo://bar/x --name bad44
1|sink nbd://[::1:|submit --source $plain --sink nbd://[::1:10809/x --name bad44
1|Connection refused|submit --source $plain --sink nbd://$SINK_ADDR:9/x --name bad44
1|No route to host|submit --source $plain --sink nbd://169.254.77.99:10809/x --name bad44
1|not a block device|submit --source /etc/passwd --sink $good --name bad44
1|No such file or directory|submit --source /dev/nonexistent --sink $good --name bad44
1|already in job slow44 (Full Sync): one job per device|submit --source /dev/mapper/lv44 --sink $good --name bad44
1|a job named slow44 exists already|submit --source $plain --sink $good --name slow44
1|cutover needs the full sync done|cutover slow44
1|incremental syncs start once the full sync is done|sync slow44
1|not Failed: nothing to retry|retry slow44
1|is not paused|resume slow44
1|only Completed or Cancelled jobs can be forgotten|forget slow44
1|no such job: nosuch|show nosuch
1|no such job: nosuch|sync nosuch
1|no such job: nosuch|cutover nosuch
1|no such job: nosuch|cancel nosuch
1|no such job: nosuch|cadence nosuch 1h
2|--source and --sink are required|submit --source $plain
2|--kind cold: warm|submit --source $plain --sink $good --kind cold
2|--cadence 10ms: manual or a duration of at least 1s|submit --source $plain --sink $good --cadence 10ms
2|--cadence 1y|submit --source $plain --sink $good --cadence 1y
2|--rate fast|submit --source $plain --sink $good --rate fast
2|--name '../x'|submit --source $plain --sink $good --name ../x
2|--region-size 3k|submit --source $plain --sink $good --region-size 3k
2|unknown option --bogus|submit --bogus
2|which job?|show
2|1q: manual or a duration|cadence slow44 1q
2|too many arguments|sync slow44 extra
EOF

check_eq "nothing changed: devices, tables, records, jobs" "$before" "$(state)"
check_eq "the slow job still runs its full sync" "Full Sync" "$(jf slow44 phase)"
check "no bad44 record" test ! -e "$SXM_JOB_DIR/bad44.job"

# A plain device with no --name: the job, and its /dev/mapper device, are
# named after the disk; a second job on the disk is refused all the same.
pname=$(basename "$plain")-sxm
cleanup_push _tc_dm_remove "$pname"
check "submit a plain disk without --name" sxm-ctl submit --source "$plain" \
	--sink "$good" --rate 1M
check "the job is $pname, its device /dev/mapper/$pname" \
	wait_until 20 test -b "/dev/mapper/$pname"
expect_rc "a second job on that disk is refused" 1 \
	"is already in job $pname" sxm-ctl submit --source "$plain" --sink "$good" --name bad44
expect_rc "and through its sxm device too" 1 "is already in job $pname" \
	sxm-ctl submit --source "/dev/mapper/$pname" --sink "$good" --name bad44
check "cancel it" sxm-ctl cancel "$pname" --wait
check "the device it made is gone (nothing had it open)" \
	bash -c "! dmsetup info $pname >/dev/null 2>&1"

# ------------------------------------------------------- who may talk ----

as_user() { "$jail" --uid "$1" --gid "$2" "${@:3}"; }
expect_rc "another user: refused by the socket's mode (0660 root:root)" 1 \
	"Permission denied (root or the daemon's --group only)" \
	as_user 1000 1000 sxm-ctl list
chmod 0666 "$SXM_SOCKET"
expect_rc "with the mode opened, SO_PEERCRED still refuses it" 1 \
	"permission denied: root or the daemon's --group only" \
	as_user 1000 1000 sxm-ctl list

check "cancel the slow job" sxm-ctl cancel slow44 --wait
check_eq "lv44 runs its original table again" \
	"0 32768 linear $((0x$(stat -c %t "$disk"))):$((0x$(stat -c %T "$disk"))) 0" \
	"$(dmsetup table lv44)"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
check "the daemon removes its socket when it stops" test ! -e "$SXM_SOCKET"
expect_rc "no daemon: the CLI says so" 1 'is "sxm-ctl daemon" running?' \
	sxm-ctl list

daemon_start --group 1234
check_eq "--group: the socket is 0660 root:1234" "660 0:1234" \
	"$(stat -c '%a %u:%g' "$SXM_SOCKET")"
check "a member of the group may use it" as_user 1000 1234 sxm-ctl list
expect_rc "a user outside the group may not" 1 \
	"Permission denied (root or the daemon's --group only)" \
	as_user 1000 1000 sxm-ctl list
expect_fail "a second daemon on the same state directory is refused" \
	"another sxm-ctl daemon uses it" sxm-ctl daemon --socket /tmp/sxm-other.sock
check_eq "the cancelled jobs are listed as Cancelled after the restart" \
	"Cancelled Cancelled" "$(jf slow44 phase) $(jf "$pname" phase)"
