# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# kernel_log.sh — which kernel messages in a VM test's console fail it
# (sourced by scripts/vm-run.sh; tests/native/06-kernel-log.sh checks it).
#
#   kernel_bad_re            the regex (bash =~ / grep -E) of such lines
#   kernel_log_scan CONSOLE DEFAULT
#                            fills the associative array klog (declared by
#                            the caller): for each test that was running
#                            when the kernel complained (the "sxm-vm: BEGIN
#                            NAME" / "sxm-vm: END" markers scripts/vm-init.sh
#                            writes through /dev/kmsg; DEFAULT outside
#                            them), TAP: "not ok - kernel log: FIRST LINE",
#                            then as "# " lines the other complaints and the
#                            dozen lines after each (the report's body).

# Only kernel lines (they carry the "[ seconds]" stamp), not the tests' own
# output echoed on the console.  Besides Oops, BUG: (KASAN's "BUG: KASAN:
# ...", "BUG: sleeping function called from invalid context", "BUG:
# workqueue lockup"...), WARNING: (lockdep's "WARNING: possible circular
# locking dependency detected", "WARNING: inconsistent lock state", debug
# objects' ODEBUG, DEBUG_LIST's corruption) and hung tasks, the debug
# kernel's own words: UBSAN, KASAN, soft lockups, RCU stalls, lockdep's RCU
# checks, and the line scripts/vm-init.sh writes for kmemleak reports about
# dm-sxm ("kmemleak: N new suspected memory leaks in dm-sxm"; kmemleak's own
# line counts every leak of the boot, dm-sxm's or not).  "\<BUG:", not
# "BUG:": debug objects' ordinary "ODEBUG: N of N active objects replaced".
kernel_bad_re='^\[ *[0-9]+\.[0-9]+\] .*(Oops|\<BUG:|WARNING:|kernel BUG|general protection|hung_task|blocked for more than|Kernel panic'
kernel_bad_re+='|UBSAN:|KASAN:|kmemleak: [1-9][0-9]* new suspected memory leaks in dm-sxm|soft lockup|hard LOCKUP'
kernel_bad_re+='|self-detected stall|detected stalls on CPU|rcu_[a-z]+ kthread starved|possible circular locking'
kernel_bad_re+='|possible recursive locking|inconsistent lock state|possible irq lock inversion|suspicious RCU usage'
kernel_bad_re+='|ODEBUG: .*object type|list_add corruption|list_del corruption|sleeping function called from invalid context'
kernel_bad_re+='|scheduling while atomic|lock held when returning to user space)'

kernel_log_scan() {
	local line text who=$2 more=0 stamp='^\[ *[0-9]+\.[0-9]+\] (.*)'
	while IFS= read -r line; do
		case $line in
		*"sxm-vm: BEGIN "*) who=${line##*sxm-vm: BEGIN } more=0; continue ;;
		*"sxm-vm: END "*) who=$2 more=0; continue ;;
		esac
		text=$line
		[[ $line =~ $stamp ]] && text=${BASH_REMATCH[1]}
		if ! [[ $line =~ $kernel_bad_re ]]; then
			[ $more -gt 0 ] || continue
			more=$((more - 1))
			klog[$who]+="# $text"$'\n'
			continue
		fi
		more=12
		if [ -z "${klog[$who]:-}" ]; then
			klog[$who]="not ok - kernel log: $text"$'\n'
		else
			klog[$who]+="# $text"$'\n'
		fi
	done < <(tr -d '\r' < "$1")
}
