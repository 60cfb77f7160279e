#!/usr/bin/env bash
# in_vm.sh GTEST-BINARY: runs a privileged GoogleTest program that needs SRv6 in the kernel
# inside the VM (scripts/vm) when this host's kernel lacks it; where the host has it, the program
# already ran on the host (its own CTest entries) and this skips. In the VM nothing may skip:
# Debian's kernel has every feature these tests probe for, so a skip there is a failure.
source "$(dirname "$0")/lib.sh"
require_root
bin=$1
agent="$SEGWAN_BUILD_DIR/edge-manager/edge-manager"
if "$agent" --check-kernel-missing --slice-mode table >/dev/null 2>&1; then
  skip "this kernel ($(uname -r)) has SRv6: $(basename "$bin") ran on the host"
fi
[ "${SEGWAN_LAB_VM:-auto}" != no ] || skip "this kernel ($(uname -r)) lacks SRv6 and SEGWAN_LAB_VM=no"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
# The runner gets SIGTERM (and takes the VM down) if the test runner kills this script.
setpriv --pdeathsig TERM "${VM_RUN[@]}" --timeout "${SEGWAN_VM_TIMEOUT:-500}" -- sh -c 'echo "--- in a VM on Debian'"'"'s kernel $(uname -r)"; exec "$0" --gtest_color=no' "$bin" >"$out" 2>&1 || rc=$?
cat "$out"
[ "$rc" -eq 0 ] || fail "$(basename "$bin") failed in the VM (exit $rc)"
grep -q '^\[  PASSED  \]' "$out" || fail "$(basename "$bin") printed no PASSED line in the VM"
if grep -q '^\[  SKIPPED \]' "$out"; then
  fail "tests skipped in the VM, whose kernel has every feature they probe for: $(grep '^\[  SKIPPED \] [A-Z]' "$out" | paste -sd ' ')"
fi
pass "$(basename "$bin") passed in the VM: $(grep '^\[==========\]' "$out" | tail -1)"
