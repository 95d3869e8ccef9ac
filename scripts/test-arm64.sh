#!/usr/bin/env bash
# Cross-builds the backend tests for AArch64 and runs them under qemu-user, so the NEON kernel tables are
# checked against the scalar reference on an x86 machine: once on an emulated CPU with the dot product
# extension (both "neon" and "neon-dotprod" are tested) and once on one without it (only "neon"; the test
# also checks that the dot product table is then reported missing and not picked).
#
# Usage: scripts/test-arm64.sh [BUILD_DIR]   (default build-arm64). Exits non-zero on any failure, with a
# one-line reason on the last line.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${1:-$root/build-arm64}"
jobs="${JOBS:-$(nproc)}"
sysroot=/usr/aarch64-linux-gnu

fail() {
  echo "test-arm64: FAILED: $*" >&2
  exit 1
}

if [[ "$(uname -m)" == "aarch64" || "$(uname -m)" == "arm64" ]]; then
  echo "test-arm64: skipped: this machine is AArch64, so the native test_backend already tests the NEON tables"
  exit 0
fi

# The cross compiler, the emulator and GoogleTest's sources (built for the target inside the cross build).
bash "$root/scripts/apt-install-missing.sh" test-arm64 g++-aarch64-linux-gnu qemu-user googletest ||
  fail "could not install the cross compiler, qemu-user or googletest"

qemu=(qemu-aarch64 -L "$sysroot")
# An emulator that cannot start a trivial target program makes every later failure meaningless.
probe_dir="$(mktemp -d)"
trap 'rm -rf "$probe_dir"' EXIT
echo 'int main() { return 0; }' >"$probe_dir/probe.c"
aarch64-linux-gnu-gcc "$probe_dir/probe.c" -o "$probe_dir/probe" || fail "aarch64-linux-gnu-gcc cannot build a program"
"${qemu[@]}" "$probe_dir/probe" || fail "qemu-aarch64 cannot run an AArch64 program on this machine"

if [[ ! -f "$build_dir/build.ninja" ]]; then
  cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-linux-gnu.cmake" \
    -DPENSIEVE_KERNELS_ONLY=ON >/dev/null || fail "cmake could not configure $build_dir"
fi
cmake --build "$build_dir" -j "$jobs" --target test_backend || fail "the AArch64 build of test_backend failed"

# Runs test_backend on one emulated CPU; expect_dotprod says whether that CPU has the dot product.
run_on() {
  local cpu="$1" expect_dotprod="$2" log="$build_dir/test_backend-$1.log"
  if ! PENSIEVE_EXPECT_DOTPROD="$expect_dotprod" "${qemu[@]}" -cpu "$cpu" "$build_dir/tests/test_backend" >"$log" 2>&1; then
    grep -E '^\[  FAILED  \]|Failure' "$log" | head -20 >&2 || true
    fail "test_backend under qemu-aarch64 -cpu $cpu (full log: $log)"
  fi
  local passed
  passed="$(sed -n 's/^\[  PASSED  \] \([0-9]*\) tests\?\..*/\1/p' "$log")"
  echo "test-arm64: qemu-aarch64 -cpu $cpu: ${passed:-?} tests of test_backend passed; tables checked against scalar: $3"
}

run_on max 1 "neon and neon-dotprod"
run_on cortex-a53 0 "neon (neon-dotprod reported absent, as it must be)"
# The override: PENSIEVE_ISA=neon must pick the baseline table even where the dot product one is there.
if ! PENSIEVE_ISA=neon "${qemu[@]}" -cpu max "$build_dir/tests/test_backend" --gtest_filter='Kernels.ThisMachineHasSimdTables' \
  >"$build_dir/test_backend-isa-override.log" 2>&1; then
  fail "PENSIEVE_ISA=neon did not pick the neon table (log: $build_dir/test_backend-isa-override.log)"
fi
echo "test-arm64: OK: the AArch64 NEON kernel tables match the scalar reference under qemu"
