#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Sinks of other kinds, each for a warm and a mirror-style job under a fio
# --verify writer, to a cutover with the sink byte-identical to the frozen
# source:
#   - nbds:// (TLS with a pre-shared key), the warm cutover with
#     --verify-all, which reads back every byte of the device;
#   - a server that does not allow several connections (nbdkit's
#     multi-conn filter): one connection, and the mirror's pump its own;
#   - a sink whose blocks are at least 4 KiB: a warm job copies whole
#     regions to it; a mirror-style job over a device the guest writes in
#     512-byte blocks is refused at submit, saying why, with nothing left
#     behind.
# vm-timeout: 420
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio nbdkit od

MIB=16
daemon_start

# migrate TAG KIND URI IMG [SUBMIT_ARGS...] — a job of KIND (warm or sxm)
# on a new $MIB MiB volume to URI (backed by IMG), under fio, cut over;
# the checks named after TAG.
migrate() {
	local tag=$1 kind=$2 uri=$3 img=$4 d log=/tmp/fio71-$1.log want
	shift 4
	scratch_dev d $MIB
	rand_fill "$d" $MIB
	lv_create "lv71$tag" "$d" $MIB
	fio_load fpid "/dev/mapper/lv71$tag" "$log" --size=4M --rate_iops=60
	want=Ready
	[ "$kind" = sxm ] && want=Mirrored
	check "$tag: submit --kind $kind --wait" sxm-ctl submit \
		--source "/dev/mapper/lv71$tag" --sink "$uri" --kind "$kind" \
		--name "j71$tag" --wait "$@"
	check_eq "$tag: $want" $want "$(jf "j71$tag" phase)"
	[ "$kind" = sxm ] || check "$tag: a sync" sxm-ctl sync "j71$tag" --wait
	cut_args=()
	[ "$kind" = sxm ] || cut_args=(--verify-all)
	check "$tag: cutover --wait ${cut_args[*]}" sxm-ctl cutover "j71$tag" \
		--wait "${cut_args[@]}"
	check_eq "$tag: Completed, every region verified" "Completed true" \
		"$(jf "j71$tag" phase) $(jf "j71$tag" verified_all)"
	check_eq "$tag: the sink is byte-identical to the frozen source" \
		"$(sha256_of "/dev/mapper/lv71$tag-sxm-orig")" "$(sha256_of "$img")"
	dmsetup resume "lv71$tag"
	sleep 1
	fio_stop fpid "$log" "$tag: fio --verify saw no error"
}

# ----------------------------------------------------------- nbds:// ----

psk=/tmp/keys71.psk
printf 'root:%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" > $psk
for kind in warm sxm; do
	img=/tmp/sink71-tls-$kind.img
	truncate -s ${MIB}M $img
	cleanup_push rm -f $img
	# Not sink_start: its plain nbd:// probe cannot talk to it.
	port=$((10871 + ${#kind}))
	_tc_sink_netns
	spawn tls_pid ip netns exec "$SINK_NS" nbdkit --foreground \
		--exit-with-parent -i "$SINK_ADDR" -p $port --tls=require \
		--tls-psk=$psk file file=$img
	uri="nbds://root@$SINK_ADDR:$port/?tls-psk-file=$psk"
	wait_until 20 nbdinfo --size "$uri" || bail "nbdkit with TLS did not answer on $uri"
	migrate "tls$kind" $kind "$uri" $img
done
check_eq "the warm cutover with --verify-all read back all of the device" \
	$((MIB << 20)) "$(jf j71tlswarm verified_bytes)"
scratch_dev d $MIB
lv_create lv71plain "$d" $MIB
expect_fail "a plain nbd:// to a server that requires TLS is refused, saying so" \
	"TLS" sxm-ctl submit --source /dev/mapper/lv71plain \
	--sink "nbd://$SINK_ADDR:$port"
check_eq "and the volume is as it was" linear \
	"$(dmsetup table lv71plain | awk '{ print $3 }')"

# ------------------------------------------------ one connection only ----

for kind in warm sxm; do
	img=/tmp/sink71-one-$kind.img
	truncate -s ${MIB}M $img
	cleanup_push rm -f $img
	sink_start --filter=multi-conn file file=$img multi-conn-mode=disable
	n0=$(wc -l < "$DAEMON_LOG")
	migrate "one$kind" $kind "nbd://$SINK_ADDR:$SINK_PORT" $img
	conns=$(tail -n +$((n0 + 1)) "$DAEMON_LOG" | grep -E "sink nbd://$SINK_ADDR:$SINK_PORT: [0-9]+ bytes, [0-9]+ connection" |
		sed 's/.* bytes, \([0-9]*\) connection.*/\1/' | sort -u | tr '\n' ' ')
	check_eq "one$kind: every connection set of one connection" "1 " "$conns"
done

# --------------------------------------------- 4 KiB minimum blocks ----

img=/tmp/sink71-4k.img
truncate -s ${MIB}M $img
cleanup_push rm -f $img
sink_start --filter=blocksize-policy file file=$img blocksize-minimum=4096 \
	blocksize-preferred=65536 blocksize-error-policy=error
check_eq "the sink says 4096-byte blocks" 4096 \
	"$(nbdinfo --json "nbd://$SINK_ADDR:$SINK_PORT" | sed -n 's/.*"block_size_minimum": *\([0-9]*\).*/\1/p')"
migrate "4kwarm" warm "nbd://$SINK_ADDR:$SINK_PORT" $img
scratch_dev d $MIB
lv_create lv71m4k "$d" $MIB
expect_fail "mirror style over 512-byte guest writes to it: refused, saying why" \
	"its blocks are at least 4096 bytes, and the guest writes 512-byte blocks" \
	sxm-ctl submit --source /dev/mapper/lv71m4k --sink "nbd://$SINK_ADDR:$SINK_PORT" \
	--kind sxm --name j71m4k
check "no job is left of it" bash -c "! sxm-ctl show j71m4k >/dev/null 2>&1"
check_eq "and the volume is as it was: dm-linear, not sxm" linear \
	"$(dmsetup table lv71m4k | awk '{ print $3 }')"
