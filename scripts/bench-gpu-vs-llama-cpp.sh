#!/usr/bin/env bash
# On a GPU machine, one run: builds llama.cpp (llama-server, llama-batched-bench) with CUDA from the peers'
# source tarball, synthesizes one model with an all-zero final norm (so llama-server's output parser does
# not abort on random text; see ../shared/peers/README.md), and measures both engines and both servers on
# that same file: 128-token prompts, 256 generated, 1 / 20 / 64 streams; and twenty agents sharing a prefix.
#
# Usage: scripts/bench-gpu-vs-llama-cpp.sh PENSIEVE_BIN TOKENIZER_JSON LLAMA_TARBALL OUT_DIR [preset:type]
set -euo pipefail
bin="$1"
tokenizer="$2"
tarball="$3"
out="$4"
spec="${5:-llama-3.1-8b:Q4_K_M}"
preset="${spec%%:*}"
type="${spec##*:}"
mkdir -p "$out" /tmp/llama /tmp/pensieve-models
model="/tmp/pensieve-models/$preset-$type-zero-norm.gguf"

tar -xJf "$tarball" -C /tmp/llama
src="$(dirname "$(find /tmp/llama -maxdepth 2 -name CMakeLists.txt | head -1)")"
start=$(date +%s)
cmake -S "$src" -B "$src/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF > "$out/llama-build.log" 2>&1
cmake --build "$src/build" -j "$(nproc)" --target llama-server llama-batched-bench >> "$out/llama-build.log" 2>&1
echo "llama.cpp built in $(( $(date +%s) - start )) s"
[[ -f "$model" ]] || "$bin" synth --preset "$preset" --vocab-from "$tokenizer" --type "$type" --zero-output-norm \
  --threads "$(nproc)" -o "$model" > /dev/null

echo "== engines"
"$src/build/bin/llama-batched-bench" -m "$model" -ngl 99 -fa on -c 40000 -npp 128 -ntg 256 -npl 1,20,64 \
  > "$out/llama-engine.txt" 2>&1 || true
grep -E "^\|" "$out/llama-engine.txt" | tail -4
"$bin" bench-engine --model "$model" --device cuda --prompt 128 --gen 256 --batch 1,20,64 | tee "$out/pensieve-engine.txt"

# throughput: 1 / 20 / 64 streams of 128 + 256 tokens. prefix: twenty agents sharing a 2000-word system prompt
# (+64 own words, 64 generated, two rounds): time to first token.
serve_and_bench() {  # name port throughput|prefix command...
  local name="$1" port="$2" scenario="$3"
  shift 3
  "$@" > "$out/$name-$scenario-server.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/health" > /dev/null 2>&1 && break; sleep 0.5; done
  echo "== $name over HTTP: $scenario"
  if [[ "$scenario" == throughput ]]; then
    "$bin" bench --url "http://127.0.0.1:$port" --concurrency 1,20,64 --prompt-tokens 128 --max-tokens 256 --rounds 1 \
      --json "$out/$name-http.json" | tee "$out/$name-http.txt" || true
  else
    "$bin" bench --url "http://127.0.0.1:$port" --concurrency 20 --shared-prefix 2000 --prompt-tokens 64 \
      --max-tokens 64 --rounds 2 --json "$out/$name-prefix.json" | tee "$out/$name-prefix.txt" || true
  fi
  kill -TERM "$pid"
  wait "$pid" || true
}
serve_and_bench llama-server 8081 throughput "$src/build/bin/llama-server" -m "$model" -ngl 99 -np 64 -c 65536 --port 8081
serve_and_bench pensieve 8082 throughput "$bin" serve --model "$model" --device cuda --port 8082 --parallel 64 \
  --ctx-size 4096 --quiet
# 20 slots of 4096 tokens for llama-server, so each agent's ~2100-token prompt fits its slot.
serve_and_bench llama-server 8083 prefix "$src/build/bin/llama-server" -m "$model" -ngl 99 -np 20 -c 81920 --port 8083
serve_and_bench pensieve 8084 prefix "$bin" serve --model "$model" --device cuda --port 8084 --parallel 64 \
  --ctx-size 4096 --quiet
