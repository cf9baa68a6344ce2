#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The copy engine's region bitmap and I/O engines: with --bitmap only the
# regions set are written (little-endian u64 words, region r = bit r%64 of
# word r/64) and every other byte of the sink stays as it was; adjacent
# regions are coalesced into requests of the buffer size; when io_uring is
# unavailable (io_uring_setup failing with ENOSYS or EPERM under seccomp)
# "auto" falls back to libaio and "uring" fails clearly; a tmpfs source.
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/native_nbd.sh"
native_setup
require_cmd python3

make_random "$T/src" 4
make_random "$T/junk" 4

# bitmap FILE WORDS BIT... — write a bitmap of WORDS little-endian words.
bitmap() {
	local f=$1 words=$2 b i
	shift 2
	local -a w
	for ((i = 0; i < words; i++)); do w[i]=0; done
	for b in "$@"; do w[b / 64]=$((w[b / 64] | (1 << (b % 64)))); done
	: >"$f"
	for ((i = 0; i < words; i++)); do
		printf '%016x' "${w[i]}" | sed 's/../& /g' | tr ' ' '\n' | tac |
			grep . | while read -r byte; do printf "\\x$byte"; done >>"$f"
	done
}

# regions_match DESC RSIZE_KIB NREGIONS BIT... — copy the regions BITs of
# $T/src over $T/junk; the export must then equal junk with exactly those
# regions taken from src.
regions_match() {
	local desc=$1 rkib=$2 n=$3 r out
	shift 3
	bitmap "$T/map" $(((n + 63) / 64)) "$@"
	cp "$T/junk" "$T/want"
	for r in "$@"; do
		dd if="$T/src" of="$T/want" bs=${rkib}k skip="$r" seek="$r" count=1 \
			conv=notrunc status=none
	done
	nbd_start unix sink memory size=4M
	nbdcopy "$T/junk" "$sink"
	if ! out=$("$SXM_CTL" copy --region-size "${rkib}k" --bitmap "$T/map" \
			"$T/src" "$sink" 2>&1); then
		fail "$desc" "$out"
	else
		nbdcopy "$sink" "$T/got"
		out=$(cmp "$T/want" "$T/got" 2>&1) && pass "$desc" ||
			fail "$desc" "$out (region size ${rkib} KiB)"
	fi
	_tc_kill "$sink_pid"
}

regions_match "one word: regions 0 1 5 63 copied, the rest untouched" 64 64 0 1 5 63
regions_match "sixteen words: regions 64 130 511 1023 only" 4 1024 64 130 511 1023
regions_match "a run across a word boundary: 60..70" 4 1024 60 61 62 63 64 65 66 67 68 69 70

# Adjacent regions are coalesced up to the buffer size: nbdkit's log
# filter shows the requests.
nbd_start unix sink --filter=log memory size=4M logfile="$T/log"
check "copy through the log filter" \
	"$SXM_CTL" copy --region-size 4k --buffer-size 512k "$T/src" "$sink"
writes=$(grep -c ' Write id=.* count=0x80000 ' "$T/log" || true)
others=$(grep ' Write id=.* offset=' "$T/log" | grep -vc 'count=0x80000 ' || true)
check_eq "4 MiB of 4 KiB regions went as 8 writes of 512 KiB" "8 0" "$writes $others"
grep -q 'Flush' "$T/log" && pass "the copy ends with a flush" ||
	fail "the copy ends with a flush" "$(grep -v Read "$T/log" | tail -n 5)"
_tc_kill "$sink_pid"

# --- No io_uring: io_uring_setup fails under a seccomp filter. -----------
# noring ERRNO CMD... — run CMD with io_uring_setup failing with ERRNO.
noring() {
	local err=$1
	shift
	python3 - "$err" "$@" <<'EOF'
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
err = int(sys.argv[1])
NR_IO_URING_SETUP, AUDIT_ARCH_X86_64 = 425, 0xC000003E
ALLOW, ERRNO = 0x7fff0000, 0x00050000
LD, JEQ, RET = 0x20, 0x15, 0x06	# BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_RET|K
ins = lambda c, jt, jf, k: struct.pack("HBBI", c, jt, jf, k)
prog = b"".join([
	ins(LD, 0, 0, 4), ins(JEQ, 1, 0, AUDIT_ARCH_X86_64), ins(RET, 0, 0, ALLOW),
	ins(LD, 0, 0, 0), ins(JEQ, 0, 1, NR_IO_URING_SETUP),
	ins(RET, 0, 0, ERRNO | err), ins(RET, 0, 0, ALLOW)])
buf = ctypes.create_string_buffer(prog)
class Fprog(ctypes.Structure):
	_fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
fp = Fprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.byref(fp), 0, 0):
	sys.exit("seccomp: " + os.strerror(ctypes.get_errno()))
os.execvp(sys.argv[2], sys.argv[2:])
EOF
}

if [ "$(uname -m)" = x86_64 ]; then
	nbd_start tcp sink memory size=4M
	for e in 38:ENOSYS 1:EPERM; do
		out=$(noring "${e%%:*}" "$SXM_CTL" -v copy "$T/src" "$sink" 2>&1) || true
		grep -q "io_uring unavailable" <<<"$out" && grep -q "copying .* with aio" <<<"$out" &&
			pass "io_uring_setup ${e#*:}: auto falls back to libaio" ||
			fail "io_uring_setup ${e#*:}: auto falls back to libaio" "$out"
		same_data "io_uring_setup ${e#*:}: data identical" "$T/src" "$sink"
	done
	expect_err "io_uring_setup ENOSYS: --engine uring fails clearly" 1 \
		"io_uring: setup: Function not implemented" \
		noring 38 "$SXM_CTL" copy --engine uring "$T/src" "$sink"
	_tc_kill "$sink_pid"
else
	skip "io_uring unavailable: fallback to libaio" "the seccomp filter is written for x86_64 only"
fi

# --- A source on tmpfs (O_DIRECT or, where refused, buffered). -----------
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	shm=$(mktemp /dev/shm/sxm-src.XXXXXX)
	cleanup_push rm -f "$shm"
	cp "$T/src" "$shm"
	nbd_start unix sink memory size=4M
	for engine in uring aio; do
		check "tmpfs source with $engine" "$SXM_CTL" copy --engine "$engine" "$shm" "$sink"
		same_data "tmpfs source with $engine: data identical" "$shm" "$sink"
	done
	_tc_kill "$sink_pid"
else
	skip "tmpfs source" "no writable /dev/shm"
fi
