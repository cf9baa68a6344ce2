# SPDX-License-Identifier: GPL-2.0
#
# dm-sxm: top-level build.
#
#   make            build the kernel module and sxm-ctl
#   make deps       install every Debian package the project uses, build
#                   the debug kernel once per machine (SXM_DEBUG=0: not)
#   make check      build, run the native tests and the VM tests (the
#                   kernel-facing ones on the debug kernel too, in a second
#                   guest beside the first; the debug kernel, if not cached,
#                   is built beside the first pass)
#   make check-debug  every VM test on the debug kernel only
#   make debug-kernel  build the debug kernel (KASAN, lockdep...) if not cached
#   make module-debug  dm-sxm.ko against it, in build/debug-module/kernel/
#   make fuzz-kernel [DURATION=600] [SEED=N] [KERNEL=debug|debian]
#                   the ABI stress fuzzer (tests/vm/60-abi-fuzz.sh) for
#                   DURATION seconds, on the debug kernel by default
#   make fuzz [DURATION=600]
#                   every parser's libFuzzer harness (tests/fuzz/) for
#                   DURATION seconds each; make check runs them 5 s each
#   make demo       the main job: a live run in the VM
#   make bench      benchmarks, as ratios against peers run side by side
#   make install    dm-sxm.ko (modules_install, depmod), sxm-ctl, sxm-ctl(8)
#                   and the systemd unit; DESTDIR, PREFIX (/usr/local)
#
# KVER / KDIR select the kernel to build against (default: the one
# linux-headers-amd64 points at); the VM boots that same kernel.

KVER	?= $(shell scripts/kver.sh 2>/dev/null)
KDIR	?= /lib/modules/$(KVER)/build
PREFIX	?= /usr/local


.PHONY: all deps module module-sparse userspace vm-tests check \
	check-native check-vm check-debug debug-kernel module-debug fuzz-kernel fuzz deps-base demo \
	bench install clean

all: module userspace vm-tests

deps:
	@scripts/deps.sh

# What the demo and the benchmarks need: not the debug kernel.
deps-base:
	@SXM_DEBUG=0 scripts/deps.sh

module:
	$(MAKE) -C $(KDIR) M=$(CURDIR)/kernel W=1 modules

module-sparse:
	$(MAKE) -C $(KDIR) M=$(CURDIR)/kernel W=1 C=2 modules

userspace:
	$(MAKE) -C userspace

# The C programs the VM tests run (static, built on the host); some link
# build/userspace/libsxm.a, so not beside userspace's own build.
vm-tests: userspace
	$(MAKE) -C tests/vm

# The debug kernel, if not cached, is built by run-all beside the native
# tests and Debian's pass (scripts/deps.sh only installs what it needs).
check:
	@SXM_DEBUG=$(if $(filter 0,$(SXM_DEBUG)),0,later) scripts/deps.sh
	@$(MAKE) --no-print-directory -j$(shell nproc) all
	@tests/run-all.sh

check-native: userspace
	@tests/run-all.sh --native-only

check-vm: all
	@tests/run-all.sh --vm-only

check-debug: deps
	@$(MAKE) --no-print-directory userspace vm-tests
	@tests/run-all.sh --debug-only

debug-kernel:
	@scripts/debug-kernel.sh

DURATION ?= 600
KERNEL	?= debug
fuzz-kernel: deps
	@$(MAKE) --no-print-directory all
	@scripts/vm-run.sh --kernel $(KERNEL) --karg sxm.fuzz_duration=$(DURATION) \
		$(if $(SEED),--karg sxm.fuzz_seed=$(SEED)) --extra-time $(DURATION) \
		tests/vm/60-abi-fuzz.sh

fuzz: deps-base
	@tests/fuzz/run.sh $(DURATION)

module-debug: debug-kernel
	@scripts/debug-kernel.sh module

demo: deps-base
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

bench: deps-base
	@$(MAKE) --no-print-directory all
	@scripts/bench.sh

# The module goes under $(DESTDIR)/lib/modules/$(KVER)/updates (depmod is
# run for a real install only), unsigned: a host that enforces module
# signatures (Secure Boot) needs it signed with a key it trusts.  The unit
# runs $(PREFIX)/sbin/sxm-ctl.
install: module userspace
	$(MAKE) -C $(KDIR) M=$(CURDIR)/kernel INSTALL_MOD_PATH=$(DESTDIR) \
		INSTALL_MOD_DIR=updates CONFIG_MODULE_SIG_ALL= modules_install
	$(if $(DESTDIR),,depmod -a $(KVER))
	install -D -m 0755 build/userspace/sxm-ctl $(DESTDIR)$(PREFIX)/sbin/sxm-ctl
	install -D -m 0644 Documentation/man/sxm-ctl.8 \
		$(DESTDIR)$(PREFIX)/share/man/man8/sxm-ctl.8
	sed 's|/usr/local/sbin/sxm-ctl|$(PREFIX)/sbin/sxm-ctl|' scripts/sxm-ctl.service | \
		install -D -m 0644 /dev/stdin $(DESTDIR)/etc/systemd/system/sxm-ctl.service

clean:
	-$(MAKE) -C $(KDIR) M=$(CURDIR)/kernel clean
	$(MAKE) -C userspace clean
	$(MAKE) -C tests/vm clean
	rm -rf build
