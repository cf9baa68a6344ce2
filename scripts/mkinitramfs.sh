#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# mkinitramfs.sh OUT.cpio.gz — build the test VM's initramfs.
#
# OUT is two concatenated gzip'd cpio archives (the kernel unpacks both):
#
#   base     busybox-static, bash, the host tools the tests use (dmsetup, fio,
#            nbdkit with its plugins and filters, nbdcopy, nbdinfo, qemu-nbd,
#            iproute2, util-linux...) with their libraries found by ldd, and
#            the kernel modules of the VM's kernel with modules.dep.
#            Cached outside the checkout, so that every clone on this
#            machine shares it: ${XDG_CACHE_HOME:-~/.cache}/dm-sxm/initramfs/
#            KEY/ (the tree and its archive), KEY a hash of this script, the
#            kernel and every tool's identity; the four newest keys are kept.
#   overlay  what changes with the code: /init (scripts/vm-init.sh), tests/lib,
#            tests/vm, tests/demo, kernel/dm-sxm.ko and build/userspace/sxm-ctl if
#            they are built.  Rebuilt every time; it takes well under a second.
#
# SXM_KERNEL=debug: the image for the debug kernel (scripts/debug-kernel.sh)
# instead: its few modules (brd, scsi_debug; the rest is built in, and
# modules.builtin tells modprobe so), build/debug-module/kernel/dm-sxm.ko
# and the test modules build/debug-module/kmod/*.ko (built against it) in
# /lib/modules/VERSION/extra; its base has a key of its own.
#
# Layout in the guest: merged /usr like the host, busybox applets in /usr/bin
# wherever no real tool sits, the project under /sxm (tests/, kernel/,
# userspace/ as in the tree).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: mkinitramfs.sh OUT.cpio.gz}
dk=""
case ${SXM_KERNEL:-debian} in
debian)
	kver=$("$top/scripts/kver.sh")
	kimg="$top/.cache/kernel/$kver"
	kmod="$kimg/lib/modules/$kver"
	kfile="$kimg/boot/vmlinuz-$kver"
	ko="$top/kernel/dm-sxm.ko"
	work="$top/build/initramfs" ;;
debug)
	dk=$("$top/scripts/debug-kernel.sh" dir)
	kver=$(cat "$dk/kernelrelease")
	kmod="$dk/modules/lib/modules/$kver"
	kfile="$dk/bzImage"
	ko="$top/build/debug-module/kernel/dm-sxm.ko"
	work="$top/build/initramfs-debug" ;;
*) echo "mkinitramfs: SXM_KERNEL=$SXM_KERNEL: debian or debug" >&2; exit 2 ;;
esac
mkdir -p "$work"

# Several people may build at once: one at a time here (the overlay takes
# well under a second).
exec 9> "$work/.lock"
flock 9
cache=${XDG_CACHE_HOME:-$HOME/.cache}/dm-sxm/initramfs
mkdir -p "$cache"

[ -d "$kmod/kernel" ] || { echo "mkinitramfs: no $kmod (run: make deps)" >&2; exit 1; }

# Host tools copied in, with the libraries they load.
tools=(
	/usr/bin/bash /usr/sbin/dmsetup /usr/bin/fio /usr/bin/nbdkit
	/usr/bin/nbdcopy /usr/bin/nbdinfo /usr/bin/qemu-nbd /usr/sbin/ip
	/usr/sbin/tc /usr/sbin/blockdev /usr/sbin/losetup /usr/sbin/blkdiscard
	/usr/bin/fallocate /usr/sbin/mke2fs /usr/sbin/mkfs.ext4 /usr/bin/dd
	/usr/bin/cmp /usr/bin/timeout /usr/bin/sha256sum /usr/bin/stat
	/usr/bin/truncate /usr/bin/tail /usr/bin/strace /usr/bin/kmod
	/usr/bin/sg_raw
)
nbdkit_dirs=(/usr/lib/x86_64-linux-gnu/nbdkit/plugins /usr/lib/x86_64-linux-gnu/nbdkit/filters)

# Kernel modules (their dependencies are added from modinfo).  The debug
# kernel has everything built in but the few it has as modules: all of them.
modules=(dm-mod dm-flakey dm-delay dm-mirror dm-log dm-region-hash dm-zero
	dm-log-writes brd loop nbd veth sch_netem sch_prio cls_u32 ext4
	crc32c_generic crc32c-intel scsi_debug sd_mod virtio_pci virtio_blk)
if [ "${SXM_KERNEL:-debian}" = debug ]; then
	mapfile -t modules < <(cd "$kmod" && find kernel -name '*.ko*' | sed 's,.*/,,; s,\.ko.*,,')
fi

# Copy FILE into ROOT at the same path, dereferenced; keep a symlink at the
# path asked for when it is one (mkfs.ext4 -> mke2fs).  /lib, /bin, /sbin,
# /lib64 map into /usr as on the host.
usrpath() {
	case $1 in
	/usr/*) echo "$1" ;;
	/lib/* | /lib64/* | /bin/* | /sbin/*) echo "/usr$1" ;;
	*) echo "$1" ;;
	esac
}
put() {
	local root=$1 f=$2 real dst rdst
	real=$(readlink -f "$f")
	dst=$root$(usrpath "$f")
	rdst=$root$(usrpath "$real")
	[ -e "$rdst" ] || { mkdir -p "$(dirname "$rdst")"; cp -p "$real" "$rdst"; }
	if [ "$dst" != "$rdst" ] && [ ! -e "$dst" ]; then
		mkdir -p "$(dirname "$dst")"
		ln -s "$(usrpath "$real")" "$dst"
	fi
}
# Copy an executable or shared object and every library ldd lists for it.
put_elf() {
	local root=$1 f=$2 lib
	put "$root" "$f"
	while read -r lib; do
		[ -e "$root$(usrpath "$lib")" ] || put "$root" "$lib"
	done < <(ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 }
		$1 ~ /^\// { print $1 }')
}

# Write ROOT as a gzip'd newc cpio owned by root.
mkcpio() {
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort |
		cpio -o -H newc -R 0:0 --quiet) | gzip -1 > "$2"
}

# ---------------------------------------------------------------- base ----

# The cache key: this script, the kernel and every tool's identity (not
# the checkout's path: clones share the cache).
key=$( {
	sha256sum < "$0"
	echo "${SXM_KERNEL:-debian} $kver"
	stat -L -c '%n %s %Y' "${tools[@]}" /usr/bin/busybox
	for d in "${nbdkit_dirs[@]}"; do stat -c '%n %s %Y' "$d"/*; done
	stat -L -c '%s %Y' "$kfile"
} | sha256sum | cut -c1-16)
base=$cache/$key

# One builder per key; a second one waits, then finds it done.
exec 8> "$cache/.lock-$key"
flock 8
if [ ! -s "$base/base.cpio.gz" ]; then
	echo "mkinitramfs: building the base image (cached in $base)"
	# Built aside and renamed into place when complete, so that an
	# interrupted build is never taken for a finished one.
	rm -rf "$cache/.tmp-$key-"*
	tmp=$(mktemp -d "$cache/.tmp-$key-XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	b="$tmp/base"
	mkdir -p "$b"/{usr/bin,usr/sbin,usr/lib,usr/lib64,dev,proc,sys,tmp,run,etc,root,var,mnt}
	ln -s usr/bin "$b/bin"
	ln -s usr/sbin "$b/sbin"
	ln -s usr/lib "$b/lib"
	ln -s usr/lib64 "$b/lib64"
	ln -s ../run "$b/var/run"
	ln -s ../tmp "$b/var/tmp"

	for t in "${tools[@]}"; do put_elf "$b" "$t"; done
	for d in "${nbdkit_dirs[@]}"; do
		for so in "$d"/*.so; do
			# A plugin whose libraries are not installed is left out.
			if ldd "$so" | grep -q 'not found'; then
				echo "mkinitramfs: skipping $so (missing libraries)"
				continue
			fi
			put_elf "$b" "$so"
		done
	done

	# /bin/sh is bash: busybox's sh runs its own applets before PATH, so
	# system("blkdiscard -z ...") would get busybox's blkdiscard.
	ln -s bash "$b/usr/bin/sh"
	# busybox: every applet not provided by a real tool above.
	cp /usr/bin/busybox "$b/usr/bin/busybox"
	for a in $(/usr/bin/busybox --list); do
		[ -e "$b/usr/bin/$a" ] || [ -e "$b/usr/sbin/$a" ] || ln -s busybox "$b/usr/bin/$a"
	done
	# kmod for modprobe/insmod/rmmod/lsmod/modinfo (the kernel runs
	# /sbin/modprobe to load dm targets on demand).
	for a in modprobe insmod rmmod lsmod modinfo depmod; do
		rm -f "$b/usr/bin/$a"
		ln -s ../bin/kmod "$b/usr/sbin/$a"
	done

	# Minimal /etc.
	echo 'root:x:0:0:root:/root:/bin/bash' > "$b/etc/passwd"
	echo 'root:x:0:' > "$b/etc/group"
	printf '127.0.0.1 localhost\n::1 localhost\n' > "$b/etc/hosts"
	cp /etc/services /etc/protocols "$b/etc/" 2>/dev/null || true

	# Kernel modules with their dependencies, decompressed, then depmod.
	declare -A path_of=()
	while read -r p; do
		n=${p##*/}
		n=${n%%.ko*}
		path_of[${n//-/_}]=$p
	done < <(cd "$kmod" && find kernel -name '*.ko*')
	want=("${modules[@]}")
	declare -A done_mod=()
	while [ ${#want[@]} -gt 0 ]; do
		m=${want[0]//-/_}
		want=("${want[@]:1}")
		[ -n "${done_mod[$m]:-}" ] && continue
		done_mod[$m]=1
		p=${path_of[$m]:-}
		[ -n "$p" ] || { echo "mkinitramfs: module $m not in $kmod" >&2; exit 1; }
		dst="$b/usr/lib/modules/$kver/${p%.ko*}.ko"
		mkdir -p "$(dirname "$dst")"
		case $p in
		*.ko.xz) xz -dc "$kmod/$p" > "$dst" ;;
		*.ko.zst) zstd -qdc "$kmod/$p" > "$dst" ;;
		*.ko.gz) gzip -dc "$kmod/$p" > "$dst" ;;
		*) cp "$kmod/$p" "$dst" ;;
		esac
		deps=$(modinfo -F depends "$dst")
		[ -n "$deps" ] && IFS=, read -r -a more <<< "$deps" && want+=("${more[@]}")
	done
	cp "$kmod"/modules.builtin* "$kmod"/modules.order "$b/usr/lib/modules/$kver/"
	depmod -b "$b" "$kver"

	mkcpio "$b" "$tmp/base.cpio.gz"
	rm -rf "$base"
	mv "$tmp" "$base"
	trap - EXIT
fi
touch "$base"
# The four newest bases stay (clones at other commits may want theirs).
# shellcheck disable=SC2012 # the names are hex keys
ls -1dt "$cache"/*/ 2>/dev/null | tail -n +5 | while read -r d; do
	k=$(basename "$d")
	# Not one that another run holds (its lock, held to the end).
	flock -n "$cache/.lock-$k" rm -rf "$d" "$cache/.lock-$k" || true
done

# ------------------------------------------------------------- overlay ----

o="$work/overlay"
rm -rf "$o"
mkdir -p "$o/sxm/tests" "$o/usr/sbin"
trap 'rm -f "$out.tmp.$$"' EXIT
install -m 0755 "$top/scripts/vm-init.sh" "$o/init"
cp -r "$top/tests/lib" "$top/tests/vm" "$o/sxm/tests/"
[ -d "$top/tests/demo" ] && cp -r "$top/tests/demo" "$o/sxm/tests/"

if [ -f "$ko" ]; then
	# Add dm-sxm.ko to the base's modules and rerun depmod on a copy of
	# them, so that modprobe dm-sxm (and dm's request_module) finds it.
	mkdir -p "$o/sxm/kernel" "$o/usr/lib/modules/$kver/extra"
	cp "$ko" "$o/sxm/kernel/"
	cp "$ko" "$o/usr/lib/modules/$kver/extra/"
	# The debug kernel's test modules (tests/vm/kmod/) beside it.
	[ -z "$dk" ] || find "$top/build/debug-module/kmod" -maxdepth 1 -name '*.ko' \
		-exec cp {} "$o/usr/lib/modules/$kver/extra/" \; 2>/dev/null || true
	d=$(mktemp -d)
	mkdir -p "$d/lib/modules"
	cp -r "$base/base/usr/lib/modules/$kver" "$d/lib/modules/"
	cp -r "$o/usr/lib/modules/$kver/extra" "$d/lib/modules/$kver/"
	depmod -b "$d" "$kver"
	cp "$d/lib/modules/$kver"/modules.* "$o/usr/lib/modules/$kver/"
	rm -rf "$d"
	newest=$(find "$top/kernel" "$top/include" -newer "$ko" \
		\( -name '*.c' -o -name '*.h' \) ! -name '*.mod.c' | head -n 1)
	[ -z "$newest" ] || echo "mkinitramfs: warning: ${ko#"$top"/} is older than $newest (run: make module${dk:+-debug})" >&2
else
	echo "mkinitramfs: ${ko#"$top"/} not built; the image has no dm-sxm (make module${dk:+-debug})" >&2
fi

if [ -x "$top/build/userspace/sxm-ctl" ]; then
	mkdir -p "$o/sxm/userspace"
	cp "$top/build/userspace/sxm-ctl" "$o/sxm/userspace/"
	ln -s /sxm/userspace/sxm-ctl "$o/usr/sbin/sxm-ctl"
	# Libraries the base lacks.
	while read -r lib; do
		[ -e "$base/base$(usrpath "$lib")" ] || put "$o" "$lib"
	done < <(ldd "$top/build/userspace/sxm-ctl" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }')
else
	echo "mkinitramfs: build/userspace/sxm-ctl not built; the image has no sxm-ctl (make userspace)" >&2
fi

mkcpio "$o" "$work/overlay.cpio.gz"
cat "$base/base.cpio.gz" "$work/overlay.cpio.gz" > "$out.tmp.$$"
mv "$out.tmp.$$" "$out"
