#!/usr/bin/env bash
# Builds pensieve with a sanitizer into its own build folder (CUDA off: the sanitizers see host code only) and
# runs tests there.
#   scripts/test-sanitizers.sh asan BUILD_DIR [CTEST_EXCLUDE_REGEX]
#     AddressSanitizer + UndefinedBehaviorSanitizer (leaks too), every unit and e2e test except those matching
#     the regex; with clang 16 also the fuzzers, for scripts/fuzz.sh to run from the same build. Any report
#     fails the test it happens in: UBSan halts on the first finding, and a server process with a report exits
#     non-zero, which the e2e tests check.
#   scripts/test-sanitizers.sh tsan BUILD_DIR
#     ThreadSanitizer over the engine/HTTP hand-off: the serving engine's and the HTTP room's unit tests and
#     the e2e suites that drive a real server from many connections at once.
# JOBS (default nproc) sets the parallel build and test jobs.
set -euo pipefail

kind="$1"
build_dir="$2"
exclude="${3:-}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="${JOBS:-$(nproc)}"

# The e2e tests leave out the checks that mean nothing under a sanitizer (RSS bounds), saying so.
export PENSIEVE_E2E_SANITIZER="$kind"

# -O1 keeps the stacks readable and the tests a few times faster than -O0. Line tables are all a sanitizer's
# report needs (file:line per frame); full debug info made the Boost-heavy test files the build's long tail.
# (-g1 is gcc's name for the same.)
common_flags() {
  local debug="$1"
  common=(-G Ninja -DPENSIEVE_CUDA=OFF -DPENSIEVE_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug
          "-DCMAKE_CXX_FLAGS_DEBUG=-O1 $debug" "-DCMAKE_C_FLAGS_DEBUG=-O1 $debug")
}
common_flags -g1
case "$kind" in
  asan)
    # With clang 16 (scripts/install-deps.sh installs it) the fuzzers are built here too, over the same
    # instrumented rooms, so that `make test` compiles one sanitized tree for its tests and its fuzz smoke run
    # (PENSIEVE_FUZZ_BUILD_DIR for scripts/fuzz.sh). Without it: the default compiler, tests only.
    compiler=()
    fuzz=OFF
    if [[ -z "${CXX:-}" ]] && command -v clang++-16 >/dev/null; then
      compiler=(-DCMAKE_C_COMPILER=clang-16 -DCMAKE_CXX_COMPILER=clang++-16)
      fuzz=ON
      common_flags -gline-tables-only
    fi
    cmake -S "$root" -B "$build_dir" "${common[@]}" "${compiler[@]}" -DPENSIEVE_SANITIZE=ON \
      -DPENSIEVE_FUZZ="$fuzz" >/dev/null
    cmake --build "$build_dir" -j "$jobs"
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
    ctest --test-dir "$build_dir" -j "$jobs" --output-on-failure ${exclude:+-E "$exclude"}
    ;;
  tsan)
    flags="-fsanitize=thread -fno-omit-frame-pointer"
    cmake -S "$root" -B "$build_dir" "${common[@]}" -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_C_FLAGS="$flags" \
      -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread >/dev/null
    cmake --build "$build_dir" -j "$jobs" --target test_engine test_http pensieve pensieve_scripted_serve
    # halt_on_error: the first race fails the run, with both stacks printed.
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
    "$build_dir/tests/test_engine"
    "$build_dir/tests/test_http"
    ctest --test-dir "$build_dir" -j "$jobs" --output-on-failure -R '^e2e_(serve|hardening|agent_loop)$'
    ;;
  *)
    echo "usage: $0 asan|tsan BUILD_DIR [CTEST_EXCLUDE_REGEX]" >&2
    exit 2
    ;;
esac
