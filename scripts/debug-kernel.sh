#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# debug-kernel.sh [COMMAND] — the VM tests' debug kernel: Debian's
# linux-source-6.1 built with KASAN, lockdep, kmemleak, UBSAN, debug objects
# and the lockup detectors, everything the tests use built in
# (scripts/debug-kernel.config on top of allnoconfig).
#
#   build       (default) build the kernel unless it is cached
#   --force     build it again even if it is cached
#   dir         print the cache folder of the current key; exit 1 if the
#               kernel is not built
#   module      build dm-sxm.ko against it in build/debug-module/kernel/
#               (a copy of kernel/*.c *.h Makefile: kernel/*.o of the normal
#               build are left alone), with the test hooks (SXM_TEST_HOOKS=1:
#               kernel/dm-sxm-target.c's test_delay_map_ms); and the test
#               modules of tests/vm/kmod/ in build/debug-module/kmod/
#
# Cache: ${XDG_CACHE_HOME:-$HOME/.cache}/dm-sxm/debug-kernel/KEY/, outside
# the checkout so that every clone on this machine shares it.  KEY hashes the
# linux-source-6.1 package version, the compiler, the config fragment and
# the functions of this script that make the build.  In it: bzImage, config, kernelrelease, build-seconds,
# build.log, modules/lib/modules/VERSION/ (modules_install: brd, scsi_debug,
# modules.builtin...) and build/, the kernel tree that external modules are
# built against (make -C .../build M=...).  A build runs in a temporary folder
# renamed into place when it is complete, so an interrupted build is never
# taken for a finished one; older keys' folders are removed.
# SXM_DEBUG_KERNEL_DIR=FOLDER: use that build (dir, module) whatever the key.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
frag=$top/scripts/debug-kernel.config
src_tar=/usr/src/linux-source-6.1.tar.xz
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/dm-sxm/debug-kernel
cmd=${1:-build}

say() { echo "debug-kernel: $*" >&2; }
die() { say "$*"; exit 1; }

key() {
	local v
	v=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null) ||
		die "linux-source-6.1 is not installed (run: make deps)"
	[ -r "$src_tar" ] || die "no $src_tar (run: make deps)"
	{
		echo "linux-source-6.1 $v"
		gcc --version | head -n 1
		sha256sum < "$frag"
		# The functions that make the build, not the rest of the
		# script: editing a comment or module() keeps the cache.
		sed -n '/^check_config() {/,/^}/p; /^build() {/,/^}/p' "$0"
	} | sha256sum | cut -c1-16
}

# check_config FRAGMENT CONFIG — every option of the fragment as it asks.
check_config() {
	local line opt want bad=0
	while IFS= read -r line; do
		case $line in
		CONFIG_*=*)
			opt=${line%%=*} want=$line
			grep -qxF -- "$want" "$2" && continue
			say "config: wanted $want, got: $(grep -E "^(# )?$opt[= ]" "$2" || echo "$opt absent (dependencies not met)")"
			bad=1 ;;
		"# CONFIG_"*" is not set")
			opt=${line#\# } opt=${opt%% *}
			grep -q "^$opt=" "$2" || continue
			say "config: wanted $opt off, got: $(grep "^$opt=" "$2")"
			bad=1 ;;
		esac
	done < "$1"
	return $bad
}

build() {
	local k=$1 dir=$cache_root/$1 tmp t0 t1 jobs tree pid n
	mkdir -p "$cache_root"
	# One builder per key; a second one waits, then finds it done.
	exec 8> "$cache_root/.lock-$k"
	if ! flock -n 8; then
		say "another build of $k is running; waiting for it"
		flock 8
	fi
	if [ -e "$dir/bzImage" ] && [ "$cmd" != --force ]; then
		say "cached: $dir"
		return 0
	fi
	# What a build killed before its clean-up left (the lock is ours).
	rm -rf "$cache_root/.tmp-$k-"*
	jobs=$(nproc)
	tmp=$(mktemp -d "$cache_root/.tmp-$k-XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	tree=$tmp/build
	t0=$(date +%s)
	say "building the debug kernel into $dir (make -j$jobs; about 15 minutes on 2 cores)"
	say "unpacking $src_tar"
	mkdir -p "$tree"
	tar -xJf "$src_tar" -C "$tree" --strip-components=1

	say "configuring: allnoconfig + scripts/debug-kernel.config"
	cp "$frag" "$tmp/fragment.config"
	make -C "$tree" -s KCONFIG_ALLCONFIG="$tmp/fragment.config" allnoconfig > "$tmp/build.log" 2>&1 ||
		{ tail -n 30 "$tmp/build.log" >&2; die "allnoconfig failed"; }
	make -C "$tree" -s olddefconfig >> "$tmp/build.log" 2>&1 ||
		{ tail -n 30 "$tmp/build.log" >&2; die "olddefconfig failed"; }
	check_config "$frag" "$tree/.config" ||
		die "the config lacks options scripts/debug-kernel.config asks for (above)"

	say "compiling (log: $tmp/build.log)"
	make -C "$tree" -j"$jobs" bzImage modules >> "$tmp/build.log" 2>&1 &
	pid=$!
	trap 'kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
	trap 'exit 130' INT TERM
	while kill -0 $pid 2>/dev/null; do
		for _ in $(seq 60); do kill -0 $pid 2>/dev/null && sleep 1; done
		n=$(grep -c '^  CC ' "$tmp/build.log" || true)
		kill -0 $pid 2>/dev/null && say "  $(( ($(date +%s) - t0) / 60 )) min, $n files compiled"
	done
	if ! wait $pid; then
		grep -E -B2 -A8 'error|Error' "$tmp/build.log" | tail -n 40 >&2
		die "the kernel build failed (log above)"
	fi
	trap 'rm -rf "$tmp"' EXIT
	make -C "$tree" -s INSTALL_MOD_PATH="$tmp/modules" INSTALL_MOD_STRIP=1 \
		modules_install >> "$tmp/build.log" 2>&1 ||
		{ tail -n 30 "$tmp/build.log" >&2; die "modules_install failed"; }
	make -C "$tree" -s kernelrelease > "$tmp/kernelrelease"
	rm -f "$tmp/modules/lib/modules/$(cat "$tmp/kernelrelease")"/{build,source}
	cp "$tree/arch/x86/boot/bzImage" "$tmp/bzImage"
	cp "$tree/.config" "$tmp/config"

	# External modules need the headers, the scripts and tools built,
	# .config, Module.symvers: not the kernel's own objects.
	find "$tree" -path "$tree/scripts" -prune -o -path "$tree/tools" -prune -o \
		\( -name '*.o' -o -name '*.ko' -o -name '.tmp_vmlinux*' \) -type f -print0 |
		xargs -0 rm -f
	t1=$(date +%s)
	echo $((t1 - t0)) > "$tmp/build-seconds"
	rm -rf "$dir"
	mv "$tmp" "$dir"
	trap - EXIT
	# Older keys' builds (a few GB each) go.
	for d in "$cache_root"/*; do
		[ "$d" = "$dir" ] || [ ! -e "$d/bzImage" ] || rm -rf "$d"
	done
	say "built $(cat "$dir/kernelrelease") in $(( (t1 - t0) / 60 )) min $(( (t1 - t0) % 60 )) s: $dir"
}

# module: dm-sxm.ko against the debug kernel, built from a copy of kernel/
# in build/debug-module/kernel; kernel/Makefile's -I$(src)/../include finds
# build/debug-module/include, a link to the tree's include/.
module() {
	local dir=$1 m=$top/build/debug-module f
	mkdir -p "$m/kernel"
	exec 9> "$m/.lock"	# one build here at a time
	flock 9
	ln -sfn ../../include "$m/include"
	for f in "$m"/kernel/*.c "$m"/kernel/*.h; do
		[ -e "$f" ] && [ ! -e "$top/kernel/${f##*/}" ] && rm -f "$f"
	done
	# cp -p keeps the times, so make rebuilds only what changed.
	for f in "$top"/kernel/*.c "$top"/kernel/*.h "$top"/kernel/Makefile; do
		cmp -s "$f" "$m/kernel/${f##*/}" || cp -p "$f" "$m/kernel/"
	done
	# Without W=1: the sanitizers make gcc warn where the plain build is
	# clean (tests/native/05-kernel-lint.sh holds that one to W=1).
	make -C "$dir/build" M="$m/kernel" SXM_TEST_HOOKS=1 modules
	# The test modules (tests/vm/kmod/), into build/debug-module/kmod.
	mkdir -p "$m/kmod"
	for f in "$top"/tests/vm/kmod/*.c "$top"/tests/vm/kmod/Makefile; do
		cmp -s "$f" "$m/kmod/${f##*/}" || cp -p "$f" "$m/kmod/"
	done
	make -C "$dir/build" M="$m/kmod" modules
}

case $cmd in
build | --force) build "$(key)" ;;
dir)
	d=${SXM_DEBUG_KERNEL_DIR:-$cache_root/$(key)}
	[ -e "$d/bzImage" ] || die "not built: $d (run: scripts/debug-kernel.sh)"
	echo "$d" ;;
module)
	d=${SXM_DEBUG_KERNEL_DIR:-$cache_root/$(key)}
	[ -e "$d/bzImage" ] || die "not built: $d (run: scripts/debug-kernel.sh)"
	module "$d" ;;
-h | --help) sed -n '4,/^set /{/^set /d;s/^# \{0,1\}//;p}' "$0" ;;
*) die "unknown command $cmd (see: $0 --help)" ;;
esac
