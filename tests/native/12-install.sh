#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make install into a staging root (DESTDIR): the module, sxm-ctl, the man
# page and the systemd unit land where the documentation says; the unit
# runs the installed sxm-ctl and systemd-analyze verify finds nothing in
# it (no unknown key, no missing command), the man page renders cleanly.
. "$(dirname "$0")/../lib/test_common.sh"
require_cmd systemd-analyze man make

top=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d /tmp/sxm-install.XXXXXX)
cleanup_push rm -rf "$T"
kver=$("$top/scripts/kver.sh")

check "make install DESTDIR=... PREFIX=/opt/sxm" \
	make -s -C "$top" install DESTDIR="$T/root" PREFIX=/opt/sxm
for f in opt/sxm/sbin/sxm-ctl opt/sxm/share/man/man8/sxm-ctl.8 \
	etc/systemd/system/sxm-ctl.service \
	"lib/modules/$kver/updates/dm-sxm.ko"; do
	check "installed: /$f" test -s "$T/root/$f"
done
check "sxm-ctl is executable" test -x "$T/root/opt/sxm/sbin/sxm-ctl"
unit=$T/root/etc/systemd/system/sxm-ctl.service
check_eq "the unit runs the installed sxm-ctl" "ExecStart=/opt/sxm/sbin/sxm-ctl daemon" \
	"$(grep '^ExecStart=' "$unit")"

# systemd-analyze looks for the command on this machine: the same unit,
# pointing at the staged binary.
sed "s|/opt/sxm/sbin/sxm-ctl|$T/root/opt/sxm/sbin/sxm-ctl|" "$unit" > "$T/sxm-ctl.service"
out=$(systemd-analyze verify "$T/sxm-ctl.service" 2>&1)
rc=$?
if [ "$rc" = 0 ] && [ -z "$out" ]; then
	pass "systemd-analyze verify: the unit is clean"
else
	fail "systemd-analyze verify: the unit is clean" "exit $rc: $out"
fi

out=$(MANWIDTH=80 man --warnings -l "$T/root/opt/sxm/share/man/man8/sxm-ctl.8" 2>&1 >/dev/null)
check_eq "the installed man page renders without a warning" "" "$out"
