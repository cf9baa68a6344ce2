#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# sxm-ctl metadata size, format, check and dump, on files (a loop device
# too, where this machine has one): the size formula at the map-block
# boundaries; format writes exactly a blank superblock and refuses a
# bound one without --force (and a block device in use); check finds a
# blank device and a hand-built bound one consistent, and each corruption
# of include/uapi/linux/dm-sxm-metadata.h with a message of its own; dump
# prints what was built (fields, runs of regions across a map block
# boundary, a bad map block's regions all set), as text and as JSON.
# The devices are built by a generator of the format written here, with
# zlib's crc32, not with sxm-ctl's code.
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/native_nbd.sh"
native_setup
require_cmd python3 truncate cmp

# ------------------------------------------------------------ generator ----

cat >"$T/meta.py" <<'EOF'
# meta.py FILE OP [ARG...] [; OP [ARG...]]...   in one go:
#   make key=value...     FILE becomes a bound metadata device (defaults
#                         below; bits=0,5-7: the regions set)
#   put OFFSET FMT VALUE  struct.pack FMT VALUE at OFFSET
#   seal BLOCK            the block's checksum made right again
#   bit REGION            a map bit set, raw (no seal)
#   isblank               exit 0 if block 0 is a blank superblock, else 1
import struct, sys, zlib
BLOCK, PER, HDR = 4096, 32256, 64
SB_MAGIC, MAP_MAGIC = 0x4253584d, 0x504d584d

def seal(data, n):
	# The superblock's checksum covers bytes 4..511, a map block's 4..4095.
	b = data[n * BLOCK:(n + 1) * BLOCK]
	end = 512 if n == 0 else BLOCK
	struct.pack_into('<I', data, n * BLOCK, zlib.crc32(bytes(b[4:end])))

def setbit(data, r):
	data[(1 + r // PER) * BLOCK + HDR + (r % PER) // 8] |= 1 << (r % 8)

def regions(spec):
	for part in filter(None, spec.split(',')):
		a, _, z = part.partition('-')
		yield from range(int(a), int(z or a) + 1)

def make(kv):
	o = dict(nr=40010, rs=128, len=None, meta_id=0x0123456789abcdef,
		 track_id=0xff, flags=3, seq=7, source_id='vg0/vm1',
		 clean_time=1767323045, bound_time=1767225600, size=None,
		 bits='')
	for a in kv:
		k, v = a.split('=', 1)
		o[k] = v if k in ('source_id', 'bits') else int(v, 0)
	nr, rs = o['nr'], o['rs']
	ln = o['len'] if o['len'] is not None else nr * rs - rs // 2
	nmap = (nr + PER - 1) // PER
	data = bytearray(BLOCK * (1 + nmap))
	struct.pack_into('<IIIIQQQQQQQQ', data, 0, 0, SB_MAGIC, 1, o['flags'],
			 o['seq'], o['meta_id'], rs, nr, ln, o['track_id'],
			 o['clean_time'], o['bound_time'])
	sid = o['source_id'].encode()
	data[80:80 + len(sid)] = sid
	for k in range(nmap):
		struct.pack_into('<IIQQ', data, (k + 1) * BLOCK, 0, MAP_MAGIC,
				 k + 1, o['meta_id'])
	for r in regions(o['bits']):
		setbit(data, r)
	for n in range(1 + nmap):
		seal(data, n)
	size = o['size'] or len(data)
	return data[:size] + bytearray(max(0, size - len(data)))

path, ops = sys.argv[1], [[]]
for a in sys.argv[2:]:
	if a == ';':
		ops.append([])
	else:
		ops[-1].append(a)
data = None
for cmd, *args in ops:
	if cmd == 'make':
		data = make(args)
		continue
	if data is None:
		data = bytearray(open(path, 'rb').read())
	if cmd == 'put':
		struct.pack_into(args[1], data, int(args[0], 0), int(args[2], 0))
	elif cmd == 'seal':
		seal(data, int(args[0]))
	elif cmd == 'bit':
		setbit(data, int(args[0]))
	elif cmd == 'isblank':
		want = bytearray(BLOCK)
		struct.pack_into('<III', want, 4, SB_MAGIC, 1, 0)
		seal(want, 0)
		sys.exit(0 if data[:BLOCK] == want else 1)
with open(path, 'wb') as f:
	f.write(data)
EOF
meta() { python3 "$T/meta.py" "$@"; }

# run VAR_OUT VAR_RC CMD... — the output (stdout and stderr) and status.
run() {
	local -n _out=$1 _rc=$2
	shift 2
	_rc=0
	_out=$("$@" 2>&1) || _rc=$?
}

# The bound device most points start from: 40010 regions of 64 KiB in two
# map blocks (32256 + 7754), its last region half long; runs 0, 5-7, one
# across the block boundary (32250-32261) and the last region.
RS=128 NR=40010
LEN=$((NR * RS - RS / 2))
BITS=0,5-7,32250-32261,40009
meta "$T/good.img" make bits=$BITS
# corrupt NAME OP... — $T/NAME.img: good.img changed by meta.py's OPs.
corrupt() {
	local name=$1
	shift
	cp "$T/good.img" "$T/$name.img"
	meta "$T/$name.img" "$@"
}

# ----------------------------------------------------------------- size ----

size_ok() {
	local want=$1 out rc
	shift
	run out rc "$SXM_CTL" metadata size "$@"
	if [ "$rc" = 0 ] && [ "$out" = "$want" ]; then
		pass "size $*: $want"
	else
		fail "size $*: $want" "exit $rc: $out"
	fi
}
ns=(1 32255 32256 32257 64512 64513 1000000 18446744073709551615)
# What the header's SXM_META_BYTES() says, in integers that do not wrap.
read -ra want < <(python3 -c 'import sys
print(*[(1 + (int(n) + 32255) // 32256) * 4096 for n in sys.argv[1:]])' "${ns[@]}")
for i in "${!ns[@]}"; do
	size_ok "${want[i]}" --regions "${ns[i]}"
done
size_ok 8192 --regions 32256
size_ok 12288 --regions 32257
# 32256 regions of 64 KiB are 2113929216 bytes; a sector more is a region more.
size_ok 8192 --size 2113929216
size_ok 12288 --size $((2113929216 + 512))
size_ok 8192 --size $((2113929216 + 511))	# a target is whole sectors
size_ok 139264 --size 64G
size_ok 2138112 --size 64G --region-size 4k
size_ok 8192 --size 1T --region-size 1G
truncate -s $((2113929216 + 512)) "$T/source"
size_ok 12288 --source "$T/source"
size_ok 8192 --source "$T/source" --region-size 128k

while IFS='|' read -r rc text args; do
	[ -n "$rc" ] || continue
	eval "set -- $args"
	expect_err "size $args" "$rc" "$text" "$SXM_CTL" metadata size "$@"
done <<EOF
2|one of --regions, --size and --source|
2|one of --regions, --size and --source|--regions 5 --size 1G
2|one of --regions, --size and --source|--size 1G --source "$T/source"
2|--regions 0: not a number of regions|--regions 0
2|--regions lots: not a number of regions|--regions lots
2|--region-size goes with --size or --source|--regions 5 --region-size 4k
2|--size 100: not a size of at least a sector|--size 100
2|--size 1Q: not a size of at least a sector|--size 1Q
2|--region-size 3k: must be a power of two from 4k to 1G|--size 1G --region-size 3k
2|too many arguments|--size 1G extra
2|unknown option --frob|--frob
1|$T/none: No such file or directory|--source "$T/none"
1|$T: not a regular file or block device|--source "$T"
EOF
expect_err "metadata with no command" 2 "which command?" "$SXM_CTL" metadata
expect_err "metadata frob" 2 "unknown command 'frob'" "$SXM_CTL" metadata frob
expect_err "metadata --help lists the commands" 0 "sxm-ctl metadata dump DEV [--json]" \
	"$SXM_CTL" metadata --help
expect_err "size --help has the formula" 0 "4096 * (1 + ceil(N / 32256))" \
	"$SXM_CTL" metadata size --help

# --------------------------------------------------------------- format ----

head -c 1M /dev/urandom >"$T/fmt.img"
cp "$T/fmt.img" "$T/fmt.orig"
expect_err "format a file" 0 "fmt.img: formatted: blank, 1.0 MiB, room for the map of 8225280 regions" \
	"$SXM_CTL" metadata format "$T/fmt.img"
check "format wrote a blank superblock: magic, version, no flags, checksum, zeroes" \
	meta "$T/fmt.img" isblank
check "format wrote nothing past block 0" \
	cmp -i 4096 "$T/fmt.img" "$T/fmt.orig"
expect_err "check: a formatted device is blank" 0 "consistent: blank (formatted)" \
	"$SXM_CTL" metadata check "$T/fmt.img"
expect_err "format a blank device again" 0 "formatted" \
	"$SXM_CTL" metadata format "$T/fmt.img"

cp "$T/good.img" "$T/bound.img"
expect_err "format refuses a bound device" 1 \
	"bound to a target (source_id \"vg0/vm1\", 40010 regions of 64.0 KiB, bound 2026-01-01T00:00:00Z): formatting loses its map; --force formats it anyway" \
	"$SXM_CTL" metadata format "$T/bound.img"
check "nothing written to the bound device" cmp "$T/bound.img" "$T/good.img"
corrupt boundcsum put 16 '<Q' 8
expect_err "format refuses a bound superblock with a bad checksum too" 1 "bound to a target" \
	"$SXM_CTL" metadata format "$T/boundcsum.img"
expect_err "format --force formats a bound device" 0 "formatted" \
	"$SXM_CTL" metadata format --force "$T/bound.img"
check "--force: block 0 blank" meta "$T/bound.img" isblank
check "--force: the map blocks untouched" cmp -i 4096 "$T/bound.img" "$T/good.img"

head -c 4096 /dev/urandom >"$T/small.img"
cp "$T/small.img" "$T/small.orig"
expect_err "format refuses a device of one block" 1 \
	"4096 bytes: a metadata device has at least 8192 (a superblock and a map block)" \
	"$SXM_CTL" metadata format --force "$T/small.img"
check "nothing written to it" cmp "$T/small.img" "$T/small.orig"
expect_err "format a directory" 1 "not a regular file or block device" \
	"$SXM_CTL" metadata format "$T"
expect_err "format a missing file (never made)" 1 "No such file or directory" \
	"$SXM_CTL" metadata format "$T/none.img"
check "format made no file" test ! -e "$T/none.img"
expect_err "format without a device" 2 "missing arguments" "$SXM_CTL" metadata format
expect_err "format with two" 2 "too many arguments" \
	"$SXM_CTL" metadata format "$T/fmt.img" "$T/small.img"

# A block device: opened O_EXCL, so one that something holds is refused.
if loop=$(losetup -f --show "$T/fmt.img" 2>/dev/null); then
	cleanup_push losetup -d "$loop"
	python3 -c 'import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_EXCL)
print("held", flush=True)
time.sleep(120)' "$loop" >"$T/holder.out" &
	holder=$!
	cleanup_push _tc_kill "$holder"
	for _ in $(seq 50); do [ -s "$T/holder.out" ] && break; sleep 0.1; done
	expect_err "format refuses a block device in use" 1 "in use (a loaded table, a mount or another program holds it)" \
		"$SXM_CTL" metadata format "$loop"
	_tc_kill "$holder"
	expect_err "format a block device" 0 "formatted: blank, 1.0 MiB" \
		"$SXM_CTL" metadata format "$loop"
	expect_err "check a block device" 0 "consistent: blank (formatted)" \
		"$SXM_CTL" metadata check "$loop"
	size_ok 8192 --source "$loop" --region-size 4k
else
	for d in "format refuses a block device in use" "format a block device" \
		 "check a block device" "size --source a block device"; do
		skip "$d" "no loop device here"
	done
fi

# ---------------------------------------------------------------- check ----

truncate -s 1M "$T/zero.img"
expect_err "check: all zeroes is blank" 0 "zero.img: consistent: blank (all zeroes)" \
	"$SXM_CTL" metadata check "$T/zero.img"
expect_err "check: a hand-built bound device" 0 \
	"good.img: consistent: bound, 40010 regions of 64.0 KiB, 2 map blocks, 17 regions set, clean" \
	"$SXM_CTL" metadata check "$T/good.img"
meta "$T/one.img" make nr=32256 flags=1 bits=32255
expect_err "check: 32256 regions, one map block" 0 \
	"consistent: bound, 32256 regions of 64.0 KiB, 1 map block, 1 regions set" \
	"$SXM_CTL" metadata check "$T/one.img"
meta "$T/two.img" make nr=32257 rs=8 bits=32256
expect_err "check: 32257 regions, two map blocks" 0 \
	"consistent: bound, 32257 regions of 4.0 KiB, 2 map blocks, 1 regions set" \
	"$SXM_CTL" metadata check "$T/two.img"

# Each corruption alone: exit 1, its own message, and no other.
# name|message|meta.py commands (";" between them)
while IFS='|' read -r name text cmds; do
	[ -n "$name" ] || continue
	eval "corrupt $name $cmds"
	run out rc "$SXM_CTL" metadata check "$T/$name.img"
	if [ "$rc" != 1 ]; then
		fail "check finds $name" "exit $rc, expected 1: $out"
	elif ! grep -qF -- "$name.img: $text" <<<"$out"; then
		fail "check finds $name" "no '$text' in: $out"
	elif ! grep -qF "inconsistent: 1 problem" <<<"$out" ||
	     [ "$(grep -c ': ' <<<"$out")" != 2 ]; then
		fail "check finds $name, and nothing else" "$out"
	else
		pass "check finds $name: $text"
	fi
done <<'EOF'
sb-magic|superblock: bad magic 12345678 (a metadata device's is 4253584d)|put 4 '<I' 0x12345678 \; seal 0
sb-csum|superblock: bad checksum|put 16 '<Q' 8
sb-version|superblock: unknown version 2 (this sxm-ctl reads version 1)|put 8 '<I' 2 \; seal 0
sb-flags|superblock: unknown flags 0x4|put 12 '<I' 7 \; seal 0
sb-reserved|superblock: nonzero reserved bytes (the first at byte 1000)|put 1000 '<B' 1 \; seal 0
sb-reserved-last|superblock: nonzero reserved bytes (the first at byte 4095)|put 4095 '<B' 0x80 \; seal 0
sb-source-id|superblock: source_id is not NUL-padded (bytes after its NUL)|put 120 '<B' 65 \; seal 0
sb-geometry|superblock: geometry: nr_regions 40010, but len_sectors 5119000 in regions of 128 sectors make 39993|put 48 '<Q' 5119000 \; seal 0
sb-geometry-len|superblock: geometry: len_sectors is 0|put 48 '<Q' 0 \; seal 0
map-csum|map block 2: bad checksum|put 8292 '<B' 0xff
map-magic|map block 1: bad magic 00000000 (a map block's is 504d584d)|put 4100 '<I' 0 \; seal 1
map-blocknr|map block 1: wrong block number 5|put 4104 '<Q' 5 \; seal 1
map-blocknr-swap|map block 2: wrong block number 1|put 8200 '<Q' 1 \; seal 2
map-meta-id|map block 2: wrong meta_id 000000000000002a (the superblock's is 0123456789abcdef)|put 8208 '<Q' 42 \; seal 2
map-reserved|map block 1: nonzero reserved bytes|put 4126 '<B' 1 \; seal 1
map-tail-word|map block 2: bits set past the last region (40009)|bit 40010 \; seal 2
map-tail-block|map block 2: bits set past the last region (40009)|bit 64511 \; seal 2
EOF

# Those that need a device built otherwise.
meta "$T/sid.img" make source_id="$(printf 'x%.0s' $(seq 128))"
meta "$T/rs96.img" make nr=100 rs=96 len=9600
meta "$T/rs4.img" make nr=100 rs=4 len=400
meta "$T/rs2g.img" make nr=2 rs=4194304 len=8388608
head -c 8192 "$T/good.img" >"$T/short.img"
head -c 4096 /dev/zero >"$T/zero4k.img"
head -c 100 /dev/zero >"$T/zero100.img"
while IFS='|' read -r name text; do
	[ -n "$name" ] || continue
	run out rc "$SXM_CTL" metadata check "$T/$name.img"
	if [ "$rc" = 1 ] && grep -qF -- "$name.img: $text" <<<"$out" &&
	   grep -qF "inconsistent: 1 problem" <<<"$out"; then
		pass "check finds $name: $text"
	else
		fail "check finds $name" "exit $rc: $out"
	fi
done <<'EOF'
sid|superblock: source_id is not NUL-padded (no NUL in its 128 bytes)
rs96|superblock: region_sectors 96 is not a power of two from 8 to 2097152
rs4|superblock: region_sectors 4 is not a power of two from 8 to 2097152
rs2g|superblock: region_sectors 4194304 is not a power of two from 8 to 2097152
short|device is 8192 bytes, smaller than the 12288 (SXM_META_BYTES) the map of 40010 regions needs
zero4k|device is 4096 bytes: blank, but too small to bind (a metadata device has at least 8192
zero100|device is 100 bytes, smaller than a superblock (4096)
EOF

# Everything at once: one line each.
corrupt many put 12 '<I' 0x13 \; put 2000 '<B' 9 \; seal 0 \; \
	put 8292 '<B' 0xff \; put 4104 '<Q' 9 \; seal 1
run out rc "$SXM_CTL" metadata check "$T/many.img"
check_eq "check: four problems, four lines, exit 1" "1 4 4" \
	"$rc $(grep -c 'many.img: \(superblock\|map block\)' <<<"$out") $(grep -o 'inconsistent: [0-9]*' <<<"$out" | cut -d' ' -f2)"
expect_err "check without a device" 2 "missing arguments" "$SXM_CTL" metadata check
expect_err "check a missing device: exit 2" 2 "none.img: No such file or directory" \
	"$SXM_CTL" metadata check "$T/none.img"
expect_err "check a directory: exit 2" 2 "not a regular file or block device" \
	"$SXM_CTL" metadata check "$T"
expect_err "check --json is no option" 2 "unknown option --json" \
	"$SXM_CTL" metadata check --json "$T/good.img"

# ----------------------------------------------------------------- dump ----

last=$((NR - 1))
lastoff=$((last * RS * 512))
lastlen=$((LEN * 512 - lastoff))
want_good="# first_region nr_regions offset length (bytes)
0 1 0 65536
5 3 327680 196608
32250 12 2113536000 786432
$last 1 $lastoff $lastlen"
run out rc "$SXM_CTL" metadata dump "$T/good.img"
check_eq "dump: the runs built, one across the map blocks" "$want_good" \
	"$(sed -n '/^# first_region/,$p' <<<"$out")"
for line in "$T/good.img: sxm metadata, bound" \
	"  size            12288 bytes (the map needs 12288)" \
	"  magic           4253584d" "  version         1" \
	"  flags           0x3 (bound, clean)" "  seq             7" \
	"  meta_id         0123456789abcdef" \
	"  region_sectors  128 (64.0 KiB)" "  nr_regions      40010" \
	"  len_sectors     $LEN (2.4 GiB)" "  track_id        00000000000000ff" \
	"  clean_time      2026-01-02T03:04:05Z (1767323045)" \
	"  bound_time      2026-01-01T00:00:00Z (1767225600)" \
	'  source_id       "vg0/vm1"' "  map blocks      2 (0 bad)" \
	"  regions set     17 (1.0 MiB)"; do
	grep -qxF -- "$line" <<<"$out" && pass "dump: $line" ||
		fail "dump: $line" "$out"
done
check_eq "dump exits 0" 0 "$rc"

# jsoncheck DESC FILE PYTHON-EXPR — the expression, over the JSON as j, is True.
jsoncheck() {
	local desc=$1 file=$2 expr=$3 out rc
	run out rc "$SXM_CTL" metadata dump --json "$file"
	if [ "$rc" != 0 ]; then
		fail "$desc" "exit $rc: $out"
	elif res=$(python3 -c 'import json, sys
j = json.loads(sys.stdin.read())
ok = eval("(" + sys.argv[1].strip() + ")")
print(ok if ok is True else j)
sys.exit(0 if ok is True else 1)' "$expr" <<<"$out" 2>&1); then
		pass "$desc"
	else
		fail "$desc" "$res"
	fi
}
jsoncheck "dump --json: every field" "$T/good.img" "j == {
	'device': '$T/good.img', 'size': 12288, 'state': 'bound',
	'magic': '4253584d', 'version': 1, 'csum': j['csum'], 'flags': 3,
	'flag_names': ['bound', 'clean'], 'seq': 7,
	'meta_id': '0123456789abcdef', 'region_sectors': 128,
	'region_size': 65536, 'nr_regions': $NR, 'len_sectors': $LEN,
	'track_id': '00000000000000ff', 'clean_time': 1767323045,
	'clean_time_iso': '2026-01-02T03:04:05Z', 'bound_time': 1767225600,
	'bound_time_iso': '2026-01-01T00:00:00Z', 'source_id': 'vg0/vm1',
	'needed': 12288, 'map_blocks': 2, 'bad_blocks': [],
	'regions_set': 17, 'bytes_set': 65536 * 16 + $lastlen,
	'extents': [
	  {'first_region': 0, 'nr_regions': 1, 'offset': 0, 'length': 65536},
	  {'first_region': 5, 'nr_regions': 3, 'offset': 327680, 'length': 196608},
	  {'first_region': 32250, 'nr_regions': 12, 'offset': 2113536000, 'length': 786432},
	  {'first_region': $last, 'nr_regions': 1, 'offset': $lastoff, 'length': $lastlen}],
	'problems': []} and int(j['csum'], 16) == int.from_bytes(open('$T/good.img', 'rb').read(4), 'little')"

# Map block 2 torn: its regions (32256 to the last) all read as set, so the
# run from 32250 goes on to the end.
run out rc "$SXM_CTL" metadata dump "$T/map-csum.img"
want_bad="# first_region nr_regions offset length (bytes)
0 1 0 65536
5 3 327680 196608
32250 $((NR - 32250)) 2113536000 $((LEN * 512 - 2113536000))"
check_eq "dump: a bad map block's regions are all set" "$want_bad" \
	"$(sed -n '/^# first_region/,$p' <<<"$out")"
for line in "  map blocks      2 (1 bad)" \
	"  bad block       2: regions 32256-$last read as set" \
	"  regions set     $((1 + 3 + 6 + NR - 32256)) ($(awk -v b=$((4 * 65536 + LEN * 512 - 2113536000)) 'BEGIN { printf "%.1f", b / 1048576 }') MiB)"; do
	grep -qxF -- "$line" <<<"$out" && pass "dump: $line" ||
		fail "dump: $line" "$out"
done
grep -qE '^  problem         map block 2: bad checksum [0-9a-f]{8} \(computed [0-9a-f]{8}\)$' <<<"$out" &&
	pass "dump: the bad block's problem" || fail "dump: the bad block's problem" "$out"
check_eq "dump of a device with a bad block exits 0" 0 "$rc"
jsoncheck "dump --json: the bad block, its regions set" "$T/map-csum.img" "
	j['map_blocks'] == 2 and
	j['bad_blocks'] == [{'block': 2, 'first_region': 32256, 'errors': ['bad checksum']}] and
	j['regions_set'] == 1 + 3 + 6 + $NR - 32256 and
	j['extents'][-1] == {'first_region': 32250, 'nr_regions': $NR - 32250,
			     'offset': 2113536000, 'length': $LEN * 512 - 2113536000} and
	len(j['problems']) == 1 and j['problems'][0].startswith('map block 2: bad checksum')"
jsoncheck "dump --json: wrong block number and meta_id read as bad too" "$T/map-meta-id.img" "
	j['bad_blocks'] == [{'block': 2, 'first_region': 32256, 'errors': ['wrong meta_id']}] and
	j['regions_set'] == 1 + 3 + 6 + $NR - 32256"
jsoncheck "dump --json: bits past the end are a problem, not a bad block" "$T/map-tail-word.img" "
	j['bad_blocks'] == [] and j['regions_set'] == 17 and
	j['problems'] == ['map block 2: bits set past the last region ($last)']"
jsoncheck "dump --json: 32257 regions, the last alone in block 2" "$T/two.img" "
	j['map_blocks'] == 2 and j['extents'] == [{'first_region': 32256,
	'nr_regions': 1, 'offset': 32256 * 4096, 'length': 2048}]"
jsoncheck "dump --json: blank, all zeroes" "$T/zero.img" "
	j['state'] == 'zeroes' and j['needed'] is None and j['extents'] == [] and
	j['map_blocks'] == 0 and j['problems'] == []"
jsoncheck "dump --json: blank, formatted" "$T/fmt.img" "
	j['state'] == 'blank' and j['magic'] == '4253584d' and j['flags'] == 0 and
	j['flag_names'] == [] and j['clean_time_iso'] is None"
expect_err "dump: blank" 0 "map             none: the first table to load it binds it" \
	"$SXM_CTL" metadata dump "$T/zero.img"
expect_err "dump: no superblock, nothing to dump" 1 "sb-magic.img: nothing to dump" \
	"$SXM_CTL" metadata dump "$T/sb-magic.img"
expect_err "dump: says why" 1 "sb-magic.img: superblock: bad magic 12345678" \
	"$SXM_CTL" metadata dump --json "$T/sb-magic.img"
expect_err "dump: a device short of its map" 1 "smaller than the 12288 (SXM_META_BYTES)" \
	"$SXM_CTL" metadata dump "$T/short.img"
expect_err "dump: regions of no size" 1 "rs96.img: nothing to dump" \
	"$SXM_CTL" metadata dump "$T/rs96.img"
check_eq "dump --json of no superblock prints no JSON" "" \
	"$("$SXM_CTL" metadata dump --json "$T/sb-magic.img" 2>/dev/null)"
expect_err "dump: unknown flags shown by value" 0 "  flags           0x7 (bound, clean, 0x4)" \
	"$SXM_CTL" metadata dump "$T/sb-flags.img"
meta "$T/notrack.img" make track_id=0 clean_time=0 flags=1
expect_err "dump: no track said" 0 "  track_id        0000000000000000 (no track: the map means nothing)" \
	"$SXM_CTL" metadata dump "$T/notrack.img"
expect_err "dump: a time never set" 0 "  clean_time      never (0)" \
	"$SXM_CTL" metadata dump "$T/notrack.img"
expect_err "dump with two devices" 2 "too many arguments" \
	"$SXM_CTL" metadata dump "$T/good.img" "$T/good.img"
