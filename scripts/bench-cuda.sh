#!/usr/bin/env bash
# The GPU benchmark of issue "GPU speed" on one machine: for each synthesized model, the engine alone
# (bench-engine: batch 1/20/64, 128-token prompts, 256 generated) and the server through HTTP (serve + bench:
# 1/20/64 concurrent streams, same lengths, ignore_eos). Models are made by `pensieve synth` from the Llama 3
# tokenizer (random weights) and cached in $PENSIEVE_BENCH_MODELS (default /tmp/pensieve-models).
#
# Usage: scripts/bench-cuda.sh PENSIEVE_BIN TOKENIZER_JSON OUT_DIR [preset:type ...]
#   default models: llama-3.2-1b:Q4_K_M llama-3.1-8b:Q4_K_M llama-3.1-8b:F16
set -euo pipefail
bin="$1"
tokenizer="$2"
out="$3"
shift 3
specs=("$@")
[[ ${#specs[@]} -gt 0 ]] || specs=(llama-3.2-1b:Q4_K_M llama-3.1-8b:Q4_K_M llama-3.1-8b:F16)
models="${PENSIEVE_BENCH_MODELS:-/tmp/pensieve-models}"
levels="${PENSIEVE_BENCH_LEVELS:-1,20,64}"
gen="${PENSIEVE_BENCH_GEN:-256}"
mkdir -p "$models" "$out"

for spec in "${specs[@]}"; do
  preset="${spec%%:*}"
  type="${spec##*:}"
  model="$models/$preset-$type.gguf"
  name="$preset-$type"
  if [[ ! -f "$model" ]]; then
    start=$(date +%s)
    "$bin" synth --preset "$preset" --vocab-from "$tokenizer" --type "$type" --threads "$(nproc)" -o "$model" >/dev/null
    echo "synth $name: $(( $(date +%s) - start )) s"
  fi
  echo "== $name: engine"
  "$bin" bench-engine --model "$model" --device cuda --prompt 128 --gen "$gen" --batch "$levels" | tee "$out/$name-engine.txt"

  echo "== $name: HTTP"
  log="$out/$name-serve.log"
  "$bin" serve --model "$model" --alias bench --device cuda --port 0 --parallel 64 --ctx-size 4096 --quiet \
    > "$out/$name-serve.out" 2> "$log" &
  pid=$!
  url=""
  for _ in $(seq 1 600); do
    url="$(grep -o 'http://[0-9.:]*' "$out/$name-serve.out" | head -1 || true)"
    [[ -n "$url" ]] && curl -sf "$url/health" >/dev/null 2>&1 && break
    sleep 0.5
  done
  grep -E "ready|memory" "$log" || true
  "$bin" bench --url "$url" --concurrency "$levels" --prompt-tokens 128 --max-tokens "$gen" --rounds 1 \
    --json "$out/$name-http.json" --svg "$out/$name-http.svg" | tee "$out/$name-http.txt" || true
  kill -TERM "$pid"
  wait "$pid" || true
done
