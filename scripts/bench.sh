#!/usr/bin/env bash
# `make bench`: the benchmarks docs/benchmarks.md reports, on models synthesized here (no download).
#   scripts/bench.sh [BUILD_DIR]
# 1. tokenizer throughput (Llama 3 vocabulary, ~1 MB of mixed text, one thread);
# 2. engine alone: prefill and decode tok/s at batch 1, 4, 8 beside the memory-bandwidth bound, on
#    Qwen2.5-0.5B-shaped models (Q8_0 and Q4_0, Llama 3 vocabulary, random weights);
# 3. serving engine: 1/4/8/20 concurrent streams sharing a 2000-token prefix, prefix cache on and off;
# 4. through HTTP: `pensieve serve` driven by `pensieve bench` at 1, 4 and 20 concurrent streams.
# Environment: BENCH_THREADS (default: all cores), BENCH_OUT (HTTP bench JSON/SVG and the server log,
# default build/bench-results),
# BENCH_MODELS (synthesized models, default models/bench), BENCH_SKIP (space-separated step numbers to skip).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
[[ "$build" = /* ]] || build="$root/$build"
bin="$build/bin/pensieve"
threads="${BENCH_THREADS:-$(nproc)}"
out="${BENCH_OUT:-$build/bench-results}"
models="${BENCH_MODELS:-$root/models/bench}"
skip=" ${BENCH_SKIP:-} "
tokenizer="$root/../shared/fixtures/tokenizers/llama3/tokenizer.json"

if [[ ! -x "$bin" ]]; then
  echo "bench: $bin is missing (build first: make build)" >&2
  exit 1
fi
if [[ ! -f "$tokenizer" ]]; then
  echo "bench: the Llama 3 tokenizer is missing: expected $tokenizer (../shared beside the checkout)" >&2
  exit 1
fi
mkdir -p "$out" "$models"

step() { [[ "$skip" != *" $1 "* ]]; }
say() { printf '\n== %s\n' "$*"; }

say "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"

if step 1; then
  say "1. tokenizer (Llama 3 vocabulary, one thread)"
  "$build/bin/tokenizer_bench"
fi

declare -A model_files
for type in Q8_0 Q4_0; do
  file="$models/qwen2.5-0.5b-$type.gguf"
  if [[ ! -f "$file" ]]; then
    echo "bench: synthesizing $file"
    "$bin" synth --preset qwen2.5-0.5b --vocab-from "$tokenizer" --type "$type" --seed 0 -o "$file.part" >/dev/null
    mv "$file.part" "$file"
  fi
  model_files[$type]=$file
done

if step 2; then
  for type in Q8_0 Q4_0; do
    say "2. engine alone, qwen2.5-0.5b $type, $threads threads"
    "$bin" bench-engine --model "${model_files[$type]}" --prompt 128 --gen 128 --batch 1,4,8 --threads "$threads"
  done
fi

if step 3; then
  say "3. serving engine, qwen2.5-0.5b Q8_0: streams sharing a 2000-token prefix (64 own + 64 generated each)"
  "$bin" bench-engine --model "${model_files[Q8_0]}" --streams 1,4,8,20 --shared-prefix 2000 --prompt 64 --gen 64 \
    --prefix-cache both --threads "$threads"
fi

if step 4; then
  say "4. through HTTP: pensieve serve + pensieve bench, qwen2.5-0.5b Q8_0"
  log="$out/serve.log"
  "$bin" serve --model "${model_files[Q8_0]}" --alias bench --port 0 --parallel 20 --threads "$threads" >"$log" 2>&1 &
  server=$!
  trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
  url=""
  for _ in $(seq 1 300); do
    url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$log" | head -1 || true)
    [[ -n "$url" ]] && break
    kill -0 "$server" 2>/dev/null || { cat "$log" >&2; echo "bench: the server exited" >&2; exit 1; }
    sleep 0.2
  done
  [[ -n "$url" ]] || { echo "bench: the server printed no URL (see $log)" >&2; exit 1; }
  "$bin" bench --url "$url" --concurrency 1,4,20 --rounds 1 --prompt-tokens 128 --max-tokens 64 \
    --json "$out/http-Q8_0.json" --svg "$out/http-Q8_0.svg"
fi

say "results: $out"
