#!/bin/sh
# Print the kernel version the project builds against and boots in the VM:
# the one linux-headers-amd64 depends on, else the newest installed headers.
# SPDX-License-Identifier: GPL-2.0
if [ -n "$KVER" ]; then echo "$KVER"; exit 0; fi
v=$(dpkg-query -W -f='${Depends}' linux-headers-amd64 2>/dev/null |
	sed -n 's/^linux-headers-\([^ ,]*\).*/\1/p')
if [ -z "$v" ]; then
	v=$(ls -1 /lib/modules 2>/dev/null | sort -V | while read -r d; do
		[ -e "/lib/modules/$d/build/Makefile" ] && echo "$d"; done | tail -n 1)
fi
[ -n "$v" ] || { echo "kver: no kernel headers installed (run: make deps)" >&2; exit 1; }
echo "$v"
