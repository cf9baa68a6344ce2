# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# native_nbd.sh — real nbdkit sinks on this machine for the native tests of
# sxm-ctl's data path (no VM, no kernel module).  Source it after
# test_common.sh:
#
#   . "$(dirname "$0")/../lib/test_common.sh"
#   . "$(dirname "$0")/../lib/native_nbd.sh"
#   native_setup                          # $T: scratch dir, $SXM_CTL
#   nbd_start tcp sink memory size=64M    # $sink = nbd://127.0.0.1:PORT/
#   nbd_start unix s2 -r memory size=64M  # $s2 = nbd+unix:///?socket=...
#   check "copy" "$SXM_CTL" copy "$T/src" "$sink"
#
# nbd_start TRANSPORT VAR NBDKIT_ARGS...
#   TRANSPORT is tcp (127.0.0.1, a free port found by trying) or unix (a
#   socket in $T).  Sets VAR to the URI and VAR_pid to nbdkit's pid; nbdkit
#   is killed at teardown.  With NBD_TLS_PSK=FILE set the URI is nbds:// or
#   nbds+unix:// with tls-psk-file=FILE and the user name (nbdkit must get
#   --tls=require --tls-psk=FILE too); with NBD_TLS_CERTS=DIR it is
#   nbds:// with tls-certificates=DIR (DIR/ca-cert.pem: the server's CA).
#   NBD_NO_PROBE=1 (unix only): do not wait for an NBD answer, only for the
#   socket (a server made not to answer).
# expect_err DESC RC TEXT CMD...
#   a test point: CMD must exit with status RC and print TEXT.
# same_data DESC FILE URI
#   a test point: sha256 of FILE equals that of the export.
# make_random FILE MIB, make_sparse FILE MIB OFFSET_MIB...
#   test data: random, or a sparse file with 1 MiB of random data at each
#   offset.

native_setup() {
	require_cmd nbdkit nbdinfo nbdcopy sha256sum
	local top
	top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	SXM_CTL=${SXM_CTL:-$top/build/userspace/sxm-ctl}
	[ -x "$SXM_CTL" ] || bail "sxm-ctl is not built: make userspace"
	T=$(mktemp -d /tmp/sxm-native.XXXXXX)
	cleanup_push rm -rf "$T"
}

_nbd_wait() {
	local uri=$1 pid=$2 sock=${3:-} i
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || return 1
		# A server that will not talk (NBD_NO_PROBE): its socket is enough.
		if [ -n "${NBD_NO_PROBE:-}" ]; then
			[ -S "$sock" ] && return 0
		elif nbdinfo --size "$uri" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

nbd_start() {
	local transport=$1 var=$2 try port uri pid sock log
	shift 2
	log=$T/nbdkit-$var.log
	for try in $(seq 20); do
		if [ "$transport" = unix ]; then
			sock=$T/$var.sock
			rm -f "$sock"
			uri="nbd+unix:///?socket=$sock"
			if [ -n "${NBD_TLS_PSK:-}" ]; then
				uri="nbds+unix://$(id -un)@/?socket=$sock&tls-psk-file=$NBD_TLS_PSK"
			fi
			nbdkit --foreground --exit-with-parent -U "$sock" "$@" \
				>"$log" 2>&1 &
		else
			port=$((20000 + RANDOM % 40000))
			uri="nbd://127.0.0.1:$port/"
			if [ -n "${NBD_TLS_CERTS:-}" ]; then
				uri="nbds://127.0.0.1:$port/?tls-certificates=$NBD_TLS_CERTS"
			elif [ -n "${NBD_TLS_PSK:-}" ]; then
				uri="nbds://$(id -un)@127.0.0.1:$port/?tls-psk-file=$NBD_TLS_PSK"
			fi
			nbdkit --foreground --exit-with-parent -i 127.0.0.1 \
				-p "$port" "$@" >"$log" 2>&1 &
		fi
		pid=$!
		cleanup_push _tc_kill "$pid"
		if _nbd_wait "$uri" "$pid" "${sock:-}"; then
			printf -v "$var" %s "$uri"
			printf -v "${var}_pid" %s "$pid"
			return 0
		fi
		_tc_kill "$pid"
		# Only a port in use is worth another try.
		grep -q "in use" "$log" 2>/dev/null || break
	done
	bail "nbdkit $* did not start: $(tail -n 5 "$log")"
}

expect_err() {
	local desc=$1 want_rc=$2 want=$3 out rc=0
	shift 3
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" -ne "$want_rc" ]; then
		fail "$desc" "$(printf 'exit status %d, expected %d: %s\n%s' \
			"$rc" "$want_rc" "$*" "$out")"
	elif ! grep -qF -- "$want" <<<"$out"; then
		fail "$desc" "$(printf "no '%s' in:\n%s" "$want" "$out")"
	else
		pass "$desc"
	fi
}

_sha_uri() {
	nbdcopy "$1" - | sha256sum | cut -d' ' -f1
}

same_data() {
	local desc=$1 file=$2 uri=$3 a b
	a=$(sha256sum "$file" | cut -d' ' -f1)
	b=$(_sha_uri "$uri") || b="(nbdcopy failed)"
	check_eq "$desc" "$a" "$b"
}

make_random() {
	head -c "$(($2 << 20))" /dev/urandom >"$1"
}

make_sparse() {
	local f=$1 mib=$2 off
	shift 2
	rm -f "$f"
	truncate -s "${mib}M" "$f"
	for off in "$@"; do
		dd if=/dev/urandom of="$f" bs=1M count=1 seek="$off" \
			conv=notrunc status=none
	done
}
