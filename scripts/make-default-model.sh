#!/usr/bin/env bash
# Writes the bundled default model: the tiny `demo` shape with random weights and the real Llama 3 tokenizer
# and chat template, so that `make serve` has something to load before any real model is downloaded.
# Usage: scripts/make-default-model.sh PATH/TO/pensieve OUT.gguf
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 PATH/TO/pensieve OUT.gguf" >&2
  exit 2
fi
bin=$1
out=$2
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tokenizer_dir="$root/../shared/fixtures/tokenizers/llama3"

if [[ ! -x "$bin" ]]; then
  echo "make-default-model: $bin is not an executable pensieve binary (build first: make build)" >&2
  exit 1
fi
if [[ ! -f "$tokenizer_dir/tokenizer.json" || ! -f "$tokenizer_dir/tokenizer_config.json" ]]; then
  echo "make-default-model: the Llama 3 tokenizer is missing: expected $tokenizer_dir/tokenizer.json and tokenizer_config.json (../shared beside the checkout)" >&2
  exit 1
fi

mkdir -p "$(dirname "$out")"
"$bin" synth --preset demo --vocab-from "$tokenizer_dir/tokenizer.json" --type Q8_0 --seed 0 -o "$out"

cat <<NOTE
$out is a demo model: its weights are random, so whatever it generates is noise. It exists so that the
server, APIs and tooling can be exercised without a download. To serve a real model, point pensieve at any
GGUF file of a supported architecture (llama, qwen2, qwen3), e.g. one made by llama.cpp's
convert_hf_to_gguf.py or downloaded from Hugging Face.
NOTE
