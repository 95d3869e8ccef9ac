#!/usr/bin/env bash
# Every GPU test, on a machine with an NVIDIA GPU: the CUDA op tests (test_cuda, none may skip), the model and
# engine suites on the GPU with the CPU's bounds (PENSIEVE_TEST_DEVICE=cuda), and the e2e suite with the
# official SDKs against `pensieve serve`, whose --device auto takes the GPU.
#
# Usage, in the repository root:
#   scripts/test-cuda.sh [BUILD_DIR]        binaries built here (make build) on a machine with the toolkit
#   scripts/test-cuda.sh --bundle FILE.tar  binaries packed elsewhere by scripts/cuda-bundle.sh
# PENSIEVE_CUDA_PARTS="ops model parallel e2e" runs only some parts (default: all four; a bundle too large to
# carry whole can be run in two calls). `parallel`: tensor parallelism over 2, 4 and 8 ranks, over NCCL where
# the machine has that many GPUs, through host copies between ranks sharing a GPU where it has not (said so).
set -euo pipefail
parts="${PENSIEVE_CUDA_PARTS:-ops model parallel e2e}"
want() { [[ " $parts " == *" $1 "* ]]; }
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin_dir=""
tests_dir=""
if [[ "${1:-}" == "--bundle" ]]; then
  unpack="$(mktemp -d /tmp/pensieve-bundle.XXXX)"
  xz -dc "$2" | tar -C "$unpack" -xf -
  bin_dir="$unpack/bin"
  tests_dir="$unpack/bin"
  export LD_LIBRARY_PATH="$unpack/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
  # Put the fixtures where the tests were built to look for them.
  want="$(cat "$unpack/fixtures-path")"
  mkdir -p "$(dirname "$want")" "$(dirname "$(dirname "$want")")/main"
  [[ -e "$want" ]] || ln -s "$unpack/fixtures" "$want"
  export PENSIEVE_FIXTURES_DIR="$want"
  [[ -x "$unpack/bin/node" ]] && export PATH="$unpack/bin:$PATH" && export NODE_PATH="$unpack/node_modules"
  [[ -d "$unpack/node_modules" && ! -e "$root/tests/e2e/node_modules" ]] && ln -s "$unpack/node_modules" "$root/tests/e2e/node_modules"
else
  build="${1:-build}"
  bin_dir="$build/bin"
  tests_dir="$build/tests"
  export PENSIEVE_FIXTURES_DIR="${PENSIEVE_FIXTURES_DIR:-$root/../shared/fixtures}"
fi

nvidia-smi -L
failed=0
run() {
  echo "== $*"
  if ! "$@"; then failed=1; echo "FAILED: $*"; fi
}

# The op tests must run, not skip: a skip here means the GPU was not usable.
if want ops; then
  echo "== test_cuda"
  if out="$("$tests_dir/test_cuda" 2>&1)"; then echo "$out" | tail -n 25; else echo "$out"; failed=1; fi
  if echo "$out" | grep -q '\[  SKIPPED \]'; then echo "FAILED: test_cuda skipped tests on a GPU machine"; failed=1; fi
fi

if want model; then
  export PENSIEVE_TEST_DEVICE=cuda
  run "$tests_dir/test_model" --gtest_brief=1
  run "$tests_dir/test_engine" --gtest_brief=1
  unset PENSIEVE_TEST_DEVICE
fi

# Tensor parallel: test_parallel's ranks become GPUs. With N GPUs or more, rank r is cuda:r over NCCL; with
# fewer, ranks share GPUs and talk through host copies (the split forward on the GPU is tested, NCCL is not).
# The lines below say which world sizes ran over NCCL.
gpus="$(nvidia-smi -L | grep -c '^GPU ' || true)"
if want parallel; then
  if [[ ! -x "$tests_dir/test_parallel" ]]; then
    echo "FAILED: $tests_dir/test_parallel missing"
    failed=1
  else
    for n in 2 4 8; do
      if [[ "$gpus" -ge "$n" ]]; then echo "== tensor parallel over $n GPUs: NCCL"
      else echo "== tensor parallel over $n ranks: only $gpus GPU(s) here, ranks share them through host copies (NCCL over $n GPUs not run)"; fi
    done
    export PENSIEVE_TEST_DEVICE=cuda
    run "$tests_dir/test_parallel"
    unset PENSIEVE_TEST_DEVICE
  fi
fi

if ! want e2e; then
  :
elif command -v node >/dev/null && [[ -d "$root/tests/e2e/node_modules" ]]; then
  export PENSIEVE_BIN="$bin_dir/pensieve"
  if [[ -x "$bin_dir/pensieve_scripted_serve" ]]; then
    export PENSIEVE_SCRIPTED_BIN="$bin_dir/pensieve_scripted_serve"
  else
    export PENSIEVE_SCRIPTED_BIN="$tests_dir/e2e/pensieve_scripted_serve"
  fi
  export PENSIEVE_EXPECT_DEVICE=cuda  # serve.test.mjs checks /v1/status names the GPU
  # tensor_parallel.test.mjs splits over two GPUs where there are two (over CPU ranks otherwise).
  if [[ "$gpus" -ge 2 ]]; then export PENSIEVE_TP_DEVICE=cuda; fi
  for t in "$root"/tests/e2e/*.test.mjs; do
    # The browser test drives Debian's chromium; a GPU machine without it says so (the page is device-agnostic).
    if [[ "$(basename "$t")" == web_page.test.mjs ]] && ! command -v chromium >/dev/null; then
      echo "== SKIPPED $t: no chromium on this machine (make test runs it)"
      continue
    fi
    run node --test "$t"
  done
else
  echo "FAILED: node or tests/e2e/node_modules missing: the e2e suite did not run"
  failed=1
fi

if [[ $failed -ne 0 ]]; then echo "test-cuda: FAILED"; exit 1; fi
echo "test-cuda: all passed"
