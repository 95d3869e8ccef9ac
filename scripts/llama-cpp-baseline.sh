#!/usr/bin/env bash
# Usage: scripts/llama-cpp-baseline.sh [HARNESS ARGS...]
#   e.g. scripts/llama-cpp-baseline.sh --model M.gguf --threads 2 --prompt 128 --gen 128 --batch 1,4,8 [--json]
#        scripts/llama-cpp-baseline.sh --model M.gguf --greedy-check --tokens 1,2,3 --max-tokens 16
#   With no arguments it only fetches and builds.
# A llama.cpp baseline beside `pensieve bench-engine`: fetches llama.cpp's sources from npm (llama.rn 0.12.9 =
# llama.cpp b10256; the llamafile sgemm that llama.rn leaves out comes from @fugood/llama.node 1.7.15 = b10257),
# builds bench/llama_cpp (CPU backend, upstream's default options, -march=native) and runs our harness
# (bench/llama_cpp/batched_bench.cpp). Never part of `make build` or CI.
# Environment:
#   LLAMA_CPP_DIR      cache for the packages and the build (default /tmp/pensieve-llama-cpp)
#   LLAMA_CPP_JOBS     parallel compile jobs (default 2)
#   LLAMA_CPP_VARIANT  `default` (upstream defaults, GGML_LLAMAFILE=ON) or `nollamafile` (default: default)
# Idempotent: packages are fetched once; the build step is incremental (a no-op once built).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${LLAMA_CPP_DIR:-/tmp/pensieve-llama-cpp}"
jobs="${LLAMA_CPP_JOBS:-2}"
variant="${LLAMA_CPP_VARIANT:-default}"
rn_version=0.12.9
node_version=1.7.15
rn_dir="$dir/llama.rn-$rn_version"
src="$rn_dir/package/cpp"
build="$dir/build"

say() { echo "llama-cpp-baseline: $*" >&2; }
need() { command -v "$1" >/dev/null || { say "$1 is required ($2)"; exit 1; }; }
need npm "apt-get install npm"
need cmake "apt-get install cmake"
need c++ "apt-get install g++"
mkdir -p "$dir"

# 1. llama.cpp sources as shipped in llama.rn (package/cpp, symbols prefixed lm_ggml_).
if [[ ! -f "$src/llama.h" ]]; then
  say "fetching llama.rn@$rn_version"
  tmp="$(mktemp -d "$dir/fetch.XXXXXX")"
  (cd "$tmp" && npm pack --silent "llama.rn@$rn_version" >/dev/null)
  mkdir -p "$tmp/x" && tar -xzf "$tmp"/llama.rn-*.tgz -C "$tmp/x"
  rm -rf "$rn_dir" && mv "$tmp/x" "$rn_dir" && rm -rf "$tmp"
fi

# 2. ggml-cpu/llamafile/sgemm.{h,cpp} (upstream builds it by default; llama.rn omits it), from llama.node's
#    unprefixed llama.cpp tree, renamed to llama.rn's lm_ggml_ prefix. Checked by renaming back.
lf="$src/ggml-cpu/llamafile"
if [[ ! -f "$lf/sgemm.cpp" || ! -f "$lf/sgemm.h" ]]; then
  say "fetching @fugood/llama.node@$node_version (for ggml-cpu/llamafile)"
  tmp="$(mktemp -d "$dir/fetch.XXXXXX")"
  (cd "$tmp" && npm pack --silent "@fugood/llama.node@$node_version" >/dev/null)
  inner=package/src/llama.cpp/ggml/src/ggml-cpu
  tar -xzf "$tmp"/fugood-llama.node-*.tgz -C "$tmp" "$inner/llamafile" "$inner/ggml-cpu.c"
  # Same ggml-cpu revision? llama.rn's ggml-cpu.c renamed back must equal llama.node's.
  if ! diff -q <(sed -e 's/lm_ggml_/ggml_/g' -e 's/LM_GGML_/GGML_/g' "$src/ggml-cpu/ggml-cpu.c") \
      "$tmp/$inner/ggml-cpu.c" >/dev/null; then
    say "warning: llama.node's ggml-cpu.c differs from llama.rn's; the sgemm may not match this revision"
  fi
  mkdir -p "$lf"
  for f in sgemm.h sgemm.cpp; do
    sed -e 's/ggml_/lm_ggml_/g' -e 's/GGML_/LM_GGML_/g' "$tmp/$inner/llamafile/$f" >"$lf/$f.part"
    if ! diff -q <(sed -e 's/lm_ggml_/ggml_/g' -e 's/LM_GGML_/GGML_/g' "$lf/$f.part") "$tmp/$inner/llamafile/$f" \
        >/dev/null; then
      say "renaming $f is not reversible; refusing to use it"; exit 1
    fi
    mv "$lf/$f.part" "$lf/$f"
  done
  rm -rf "$tmp"
fi

# 3. Configure once, build incrementally.
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  say "configuring $build"
  cmake -S "$root/bench/llama_cpp" -B "$build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_RN_CPP_DIR="$src" >&2
fi
cmake --build "$build" -j "$jobs" >&2

case "$variant" in
  default) bin="$build/bin/llama-bench-pensieve" ;;
  nollamafile) bin="$build/bin/llama-bench-pensieve-nollamafile" ;;
  *) say "LLAMA_CPP_VARIANT must be default or nollamafile"; exit 1 ;;
esac
[[ $# -eq 0 ]] && { say "built $bin"; exit 0; }
exec "$bin" "$@"
