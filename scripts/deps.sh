#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install every Debian package the build, the VM harness, the tests and the
# benchmarks use, unpack the kernel image the VM boots into .cache/, and
# build the VM's debug kernel from linux-source-6.1 unless it is cached
# (scripts/debug-kernel.sh: some 25 minutes on 2 cores, once per
# machine; SXM_DEBUG=0 skips it, SXM_DEBUG=later leaves it to
# tests/run-all.sh, which builds it beside Debian's pass).  Quick when
# everything is already there.
# Nothing is fetched from anywhere but the Debian archive.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)

pkgs=(
	# build
	build-essential pkg-config linux-headers-amd64 sparse
	libdevmapper-dev liburing-dev libaio-dev libnbd-dev
	# kselftest headers and checkpatch.pl; the debug kernel, and what
	# building it takes
	linux-source-6.1 bc bison flex libelf-dev libssl-dev
	# the VM and what runs inside it
	qemu-system-x86 busybox-static cpio gzip kmod xz-utils zstd
	dmsetup fio iproute2 nbdkit libnbd-bin qemu-utils util-linux sg3-utils
	# benchmarks
	time
	# the documentation's checks (tests/native/08-docs.sh)
	man-db groff-base python3-docutils
	# the initramfs's tracer (scripts/mkinitramfs.sh); systemd-analyze
	# (tests/native/12-install.sh)
	strace systemd
	# the native tests' own tools: TLS certificates, a seccomp filter,
	# writing behind a sink's back
	openssl python3 qemu-utils
	# the parsers' fuzz harnesses (tests/fuzz/: libFuzzer, ASan, UBSan);
	# clang's static analyzer (tests/native/11-analyzers.sh)
	clang libclang-rt-14-dev clang-tools-14
)

missing=()
for p in "${pkgs[@]}"; do
	s=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$s" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The kernel the VM boots: the image that matches the installed headers,
# unpacked (not installed: installing runs update-initramfs for minutes).
kver=$("$top/scripts/kver.sh")
kdir="$top/.cache/kernel/$kver"
if [ ! -e "$kdir/boot/vmlinuz-$kver" ] || [ ! -d "$kdir/lib/modules/$kver" ]; then
	echo "deps: unpacking linux-image-$kver into .cache/kernel"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && apt-get download -qq "linux-image-$kver" 2>/dev/null ||
		{ apt-get update -qq && apt-get download -qq "linux-image-$kver"; })
	rm -rf "$kdir"
	mkdir -p "$kdir"
	dpkg -x "$tmp"/linux-image-"$kver"_*.deb "$kdir"
fi

# kselftest headers and checkpatch.pl from the kernel source package.
ksrc="$top/.cache/linux-source"
if [ ! -e "$ksrc/.done" ]; then
	echo "deps: unpacking kselftest headers and checkpatch.pl from linux-source"
	rm -rf "$ksrc"
	mkdir -p "$ksrc"
	tar -xJf /usr/src/linux-source-6.1.tar.xz -C "$ksrc" --strip-components=1 \
		linux-source-6.1/tools/testing/selftests/kselftest.h \
		linux-source-6.1/tools/testing/selftests/kselftest_harness.h \
		linux-source-6.1/scripts/checkpatch.pl \
		linux-source-6.1/scripts/spelling.txt \
		linux-source-6.1/scripts/const_structs.checkpatch
	touch "$ksrc/.done"
fi

# The debug kernel of the VM tests (make check runs some tests on it).
if [ "${SXM_DEBUG:-1}" != 0 ] && [ "${SXM_DEBUG:-1}" != later ] &&
   ! "$top/scripts/debug-kernel.sh" dir >/dev/null 2>&1; then
	t0=$(date +%s)
	echo "deps: building the debug kernel (scripts/debug-kernel.sh; once per machine)"
	"$top/scripts/debug-kernel.sh"
	echo "deps: the debug kernel took $(( ($(date +%s) - t0) / 60 )) min $(( ($(date +%s) - t0) % 60 )) s"
fi
