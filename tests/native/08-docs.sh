#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The documentation stays true to the tree: sxm-ctl(8) renders without a
# warning and has an entry for every command sxm-ctl has; the reST documents
# parse without a warning; Kconfig's in-tree recipe lists the objects
# kernel/Makefile builds.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
man8=Documentation/man/sxm-ctl.8

echo "TAP version 13"
echo "1..4"

# 1. man --warnings: groff's own warnings, to stderr.
if ! command -v man >/dev/null; then
	echo "not ok 1 sxm-ctl(8) renders without a warning # man missing: run scripts/deps.sh"
elif w=$(MANWIDTH=80 man --warnings -l "$man8" 2>&1 >/dev/null) && [ -z "$w" ]; then
	echo "ok 1 sxm-ctl(8) renders without a warning"
else
	echo "$w" | sed 's/^/# /'
	echo "not ok 1 sxm-ctl(8) renders without a warning"
fi

# 2. Every command of userspace/cli/cmds.def has its entry (.BI "name ..." or
# .B name) under COMMANDS.
missing=""
for c in $(sed -n 's/^SXM_SUBCMD("\([a-z-]*\)".*/\1/p' userspace/cli/cmds.def); do
	grep -Eq "^\.BI? \"?$c( |\"|$)" "$man8" || missing+=" $c"
done
if [ -z "$missing" ] && [ -n "$(sed -n 's/^SXM_SUBCMD("\([a-z-]*\)".*/\1/p' userspace/cli/cmds.def)" ]; then
	echo "ok 2 sxm-ctl(8) describes every command"
else
	echo "# without an entry:${missing:- (no commands found in userspace/cli/cmds.def)}"
	echo "not ok 2 sxm-ctl(8) describes every command"
fi

# 3. The reST documents: docutils reports nothing at level "info" or above.
rst=$(git ls-files 'Documentation/*.rst' 2>/dev/null || find Documentation -name '*.rst')
if ! /usr/bin/python3 -c 'import docutils' 2>/dev/null; then
	echo "not ok 3 the reST documents parse cleanly # python3-docutils missing: run scripts/deps.sh"
elif out=$(/usr/bin/python3 - $rst 2>&1 <<'EOF'
import sys
import docutils.core
bad = 0
for f in sys.argv[1:]:
    with open(f) as fh:
        src = fh.read()
    try:
        docutils.core.publish_string(src, source_path=f, writer_name='null',
                                     settings_overrides={'report_level': 1,
                                                         'halt_level': 1})
    except Exception as e:
        print(f"{f}: {e}")
        bad += 1
sys.exit(1 if bad else 0)
EOF
) && [ -n "$rst" ]; then
	echo "ok 3 the reST documents parse cleanly ($(echo $rst | wc -w) files)"
else
	echo "$out" | sed 's/^/# /'
	echo "not ok 3 the reST documents parse cleanly"
fi

# 4. Kconfig's recipe names kernel/Makefile's objects, in the same order.
objs=$(sed -n 's/^dm-sxm-y *:= *//p' kernel/Makefile)
recipe=$(grep -o '"dm-sxm-y := [^"]*"' Kconfig | sed 's/^"dm-sxm-y := //; s/"$//')
if [ -n "$objs" ] && [ "$objs" = "$recipe" ]; then
	echo "ok 4 Kconfig's in-tree recipe lists kernel/Makefile's objects"
else
	echo "# kernel/Makefile: $objs"
	echo "# Kconfig:         $recipe"
	echo "not ok 4 Kconfig's in-tree recipe lists kernel/Makefile's objects"
fi
