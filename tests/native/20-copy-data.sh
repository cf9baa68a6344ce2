#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# sxm-ctl copy puts exactly the source's bytes on a real NBD server: dense,
# sparse and all-zero sources, over TCP and a Unix socket, with io_uring
# and libaio, to a fresh (zeroed) export and to one full of other data; to
# a file: sink; over TLS (PSK and X.509); with one connection or four; and
# --verify /
# --verify-only notice a sink that differs.
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/native_nbd.sh"
native_setup
require_cmd qemu-io openssl

make_random "$T/dense" 48
make_sparse "$T/sparse" 160 0 17 63 64 159
truncate -s 32M "$T/holes"				# all zero, no data
dd if=/dev/zero of="$T/zeroes" bs=1M count=32 status=none	# all zero, allocated
# An odd size: not a multiple of 512 at the end.
head -c $((8 * 1048576 + 4096 + 100)) /dev/urandom >"$T/odd"

size_of() { stat -c %s "$1"; }

# copy_case DESC TRANSPORT ENGINE SRC [PREFILL] — a fresh export the size of
# SRC (PREFILL: first fill it with random data), copy, compare.
copy_case() {
	local desc=$1 transport=$2 engine=$3 src=$4 prefill=${5:-} out
	nbd_start "$transport" sink memory size="$(size_of "$src")"
	if [ -n "$prefill" ]; then
		head -c "$(size_of "$src")" /dev/urandom >"$T/junk"
		nbdcopy "$T/junk" "$sink"
	fi
	if out=$("$SXM_CTL" copy --engine "$engine" "$src" "$sink" 2>&1); then
		same_data "$desc" "$src" "$sink"
	else
		fail "$desc" "$out"
	fi
	_tc_kill "$sink_pid"
	LAST_OUT=$out
}

for transport in tcp unix; do
	for engine in uring aio; do
		for src in dense sparse holes zeroes odd; do
			copy_case "$src source over $transport with $engine" \
				"$transport" "$engine" "$T/$src"
		done
	done
done

# The accounting says how the bytes went.
copy_case "sparse source, zeroed sink: holes skipped, not read" unix uring "$T/sparse"
grep -q "5.0 MiB written, 0 B zeroed, 155.0 MiB skipped, 5.0 MiB read" \
	<<<"$LAST_OUT" && pass "sparse: 5 MiB written and read, 155 MiB skipped" ||
	fail "sparse: 5 MiB written and read, 155 MiB skipped" "$LAST_OUT"

for src in sparse holes zeroes; do
	copy_case "$src source over an export full of junk" tcp uring "$T/$src" junk
done
# (LAST_OUT is the zeroes case; checked below.)
zeroes_out=$LAST_OUT

# Holes of the source where the export already reads as zeroes (base:
# allocation says so) are skipped; where it has data they are zeroed.
nbd_start unix sink memory size=160M
head -c 160M /dev/urandom >"$T/junk160"
nbdcopy "$T/junk160" "$sink"
out1=$("$SXM_CTL" copy "$T/sparse" "$sink" 2>&1) || true
out2=$("$SXM_CTL" copy "$T/sparse" "$sink" 2>&1) || true
grep -q "155.0 MiB zeroed, 0 B skipped" <<<"$out1" &&
	pass "holes over data: zeroed" || fail "holes over data: zeroed" "$out1"
grep -q "0 B zeroed, 155.0 MiB skipped" <<<"$out2" &&
	pass "holes over zeroes: skipped" || fail "holes over zeroes: skipped" "$out2"
same_data "holes over zeroes: data identical" "$T/sparse" "$sink"
_tc_kill "$sink_pid"
LAST_OUT=$zeroes_out
grep -q "0 B written, 32.0 MiB zeroed, 0 B skipped, 32.0 MiB read" <<<"$LAST_OUT" &&
	pass "zero data sent as write-zeroes, not written" ||
	fail "zero data sent as write-zeroes, not written" "$LAST_OUT"

# SXM_ENGINE picks the engine too.
nbd_start unix sink memory size=48M
out=$(SXM_ENGINE=aio "$SXM_CTL" -v copy "$T/dense" "$sink" 2>&1) || true
grep -q "copying .* with aio" <<<"$out" && pass "SXM_ENGINE=aio selects libaio" ||
	fail "SXM_ENGINE=aio selects libaio" "$out"
out=$("$SXM_CTL" -v copy "$T/dense" "$sink" 2>&1) || true
grep -q "copying .* with uring" <<<"$out" && pass "the default engine is io_uring here" ||
	fail "the default engine is io_uring here" "$out"
grep -q "4 connection(s)" <<<"$out" && pass "multi-conn export: 4 connections" ||
	fail "multi-conn export: 4 connections" "$out"
_tc_kill "$sink_pid"

# Without multi-conn, one connection.
nbd_start tcp sink --filter=multi-conn memory size=48M multi-conn-mode=disable
out=$("$SXM_CTL" -v copy "$T/dense" "$sink" 2>&1) || true
grep -q "1 connection(s)" <<<"$out" && pass "no multi-conn: 1 connection" ||
	fail "no multi-conn: 1 connection" "$out"
same_data "no multi-conn: data identical" "$T/dense" "$sink"
_tc_kill "$sink_pid"

# Small requests, shallow queue.
nbd_start unix sink memory size=48M
check "--buffer-size 64k --queue-depth 2" \
	"$SXM_CTL" copy --buffer-size 64k --queue-depth 2 "$T/dense" "$sink"
same_data "--buffer-size 64k --queue-depth 2: data identical" "$T/dense" "$sink"

# A server that refuses any request not aligned to 64 KiB, and a source
# whose data and holes are 4 KiB apart.
truncate -s 16M "$T/sparse4k"
dd if=/dev/urandom of="$T/sparse4k" bs=4k count=3 seek=5 conv=notrunc status=none
dd if=/dev/urandom of="$T/sparse4k" bs=4k count=1 seek=1000 conv=notrunc status=none
nbd_start unix big64 --filter=blocksize-policy memory size=16M \
	blocksize-minimum=65536 blocksize-preferred=65536 \
	blocksize-error-policy=error
head -c 16M /dev/urandom >"$T/junk16"
nbdcopy "$T/junk16" "$big64"
check "64 KiB minimum block size: copy and verify" \
	"$SXM_CTL" copy --verify "$T/sparse4k" "$big64"
expect_err "64 KiB minimum block size: 4 KiB regions refused" 1 \
	"region size 4096 is smaller than the 65536-byte blocks" \
	"$SXM_CTL" copy --region-size 4k "$T/sparse4k" "$big64"
_tc_kill "$big64_pid"

# --verify reads back; --verify-only notices one changed block.
check "--verify passes on a good copy" \
	"$SXM_CTL" copy --verify "$T/dense" "$sink"
qemu-io -f raw -c "write -P 0x55 $((5 << 20)) 4096" "$sink" >/dev/null
expect_err "--verify-only finds the changed block" 1 \
	"data differs from the source at 0x500000" \
	"$SXM_CTL" copy --verify-only "$T/dense" "$sink"
_tc_kill "$sink_pid"

# file: sink, new (created sparse) and existing.
check "file: sink, new file" "$SXM_CTL" copy "$T/sparse" "file:$T/out.img"
check_eq "file: sink, new file: data identical" \
	"$(sha256sum <"$T/sparse")" "$(sha256sum <"$T/out.img")"
head -c $((160 << 20)) /dev/urandom >"$T/out.img"
check "file: sink over junk" "$SXM_CTL" copy --verify "$T/sparse" "file://$T/out.img"
check_eq "file: sink over junk: data identical" \
	"$(sha256sum <"$T/sparse")" "$(sha256sum <"$T/out.img")"

# TLS with a pre-shared key, over TCP and a Unix socket.
if nbdkit --dump-config | grep -q '^tls=yes'; then
	printf '%s:%s\n' "$(id -un)" \
		"$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$T/keys.psk"
	for transport in tcp unix; do
		NBD_TLS_PSK=$T/keys.psk nbd_start "$transport" sink \
			--tls=require --tls-psk="$T/keys.psk" memory size=48M
		check "TLS (PSK) over $transport" "$SXM_CTL" copy --verify "$T/dense" "$sink"
		same_data "TLS (PSK) over $transport: data identical" "$T/dense" "$sink"
		# No user@ and no terminal: the effective user's name is used.
		check "TLS (PSK) over $transport, default user name" \
			"$SXM_CTL" copy "$T/dense" "${sink/$(id -un)@/}" </dev/null
		expect_err "TLS required, plain nbd:// refused clearly" 1 \
			"server requires TLS" "$SXM_CTL" copy "$T/dense" \
			"$(sed -e 's/^nbds/nbd/' -e "s/$(id -un)@//" -e 's/[?&]tls-psk-file=[^&]*//' <<<"$sink")"
		_tc_kill "$sink_pid"
	done
else
	fail "TLS (PSK)" "this nbdkit was built without TLS"
fi

# TLS with X.509 certificates: a CA, a server certificate for 127.0.0.1; a
# client that trusts another CA is refused.
if nbdkit --dump-config | grep -q '^tls=yes'; then
	pki=$T/pki
	mkdir -p "$pki/server" "$pki/client" "$pki/other"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=sxm-test-ca \
		-keyout "$pki/ca-key.pem" -out "$pki/server/ca-cert.pem" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
		-keyout "$pki/server/server-key.pem" -out "$pki/server.csr" 2>/dev/null
	printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" \
		"keyUsage=digitalSignature,keyEncipherment" \
		"extendedKeyUsage=serverAuth" >"$pki/ext"
	openssl x509 -req -in "$pki/server.csr" -CA "$pki/server/ca-cert.pem" \
		-CAkey "$pki/ca-key.pem" -CAcreateserial -days 2 -extfile "$pki/ext" \
		-out "$pki/server/server-cert.pem" 2>/dev/null
	cp "$pki/server/ca-cert.pem" "$pki/client/"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca \
		-keyout "$pki/other-key.pem" -out "$pki/other/ca-cert.pem" 2>/dev/null
	NBD_TLS_CERTS=$pki/client nbd_start tcp sink --tls=require \
		--tls-certificates="$pki/server" memory size=48M
	check "TLS (X.509) over tcp" "$SXM_CTL" copy --verify "$T/dense" "$sink"
	same_data "TLS (X.509) over tcp: data identical" "$T/dense" "$sink"
	expect_err "TLS (X.509): a server signed by another CA is refused" 1 \
		"certificate verification" "$SXM_CTL" copy "$T/dense" \
		"${sink/$pki\/client/$pki/other}"
	_tc_kill "$sink_pid"
else
	fail "TLS (X.509)" "this nbdkit was built without TLS"
fi
