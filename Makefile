# SPDX-License-Identifier: GPL-2.0
#
# dm-sxm: top-level build.
#
#   make            build the kernel module and sxm-ctl
#   make deps       install every Debian package the project uses
#   make check      build, run the native tests and the VM tests
#   make demo       the main job: a live run in the VM
#   make bench      benchmarks, as ratios against peers run side by side
#
# KVER / KDIR select the kernel to build against (default: the one
# linux-headers-amd64 points at); the VM boots that same kernel.

KVER	?= $(shell scripts/kver.sh 2>/dev/null)
KDIR	?= /lib/modules/$(KVER)/build


.PHONY: all deps module module-sparse userspace vm-tests check \
	check-native check-vm demo bench clean

all: module userspace vm-tests

deps:
	@scripts/deps.sh

module:
	$(MAKE) -C $(KDIR) M=$(CURDIR)/kernel W=1 modules

module-sparse:
	$(MAKE) -C $(KDIR) M=$(CURDIR)/kernel W=1 C=2 modules

userspace:
	$(MAKE) -C userspace

# The C programs the VM tests run (static, built on the host).
vm-tests:
	$(MAKE) -C tests/vm

check: deps
	@$(MAKE) --no-print-directory all
	@tests/run-all.sh

check-native: userspace
	@tests/run-all.sh --native-only

check-vm: all
	@tests/run-all.sh --vm-only

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@scripts/bench.sh

clean:
	-$(MAKE) -C $(KDIR) M=$(CURDIR)/kernel clean
	$(MAKE) -C userspace clean
	$(MAKE) -C tests/vm clean
	rm -rf build
