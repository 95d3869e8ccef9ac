#!/usr/bin/env bash
# Fuzzes the GGUF reader for SECONDS (default 60) on one core.
#   scripts/fuzz.sh [SECONDS]
# Builds fuzz/ with clang into build-fuzz/, writes a seed corpus of small valid GGUFs (plus shrunken copies of the
# vocabulary fixtures), then runs libFuzzer. The growing corpus stays in build-fuzz/corpus between runs; crashing
# inputs land in build-fuzz/artifacts/ — copy each into tests/gguf/regressions/ once fixed.
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${PENSIEVE_FUZZ_BUILD_DIR:-$root/build-fuzz}"
fixtures="${PENSIEVE_FIXTURES_DIR:-$root/../shared/fixtures}"

CC="${CC:-clang}" CXX="${CXX:-clang++}" cmake -S "$root/fuzz" -B "$build" -G Ninja >/dev/null
cmake --build "$build" -j2 --target gguf_reader_fuzz gguf_make_seed_corpus

seeds="$build/seeds"
rm -rf "$seeds"
vocab=()
for f in "$fixtures"/vocab/*.gguf; do
  [[ -e "$f" ]] && vocab+=("$f")
done
"$build/gguf_make_seed_corpus" "$seeds" "${vocab[@]}"
cp "$root"/tests/gguf/regressions/* "$seeds"/ 2>/dev/null || true

mkdir -p "$build/corpus" "$build/artifacts"
echo "fuzzing for ${seconds}s with $(ls "$seeds" | wc -l) seeds"
# One in-process worker: a single core, and the stats print here rather than into a fuzz-N.log.
cd "$build"
./gguf_reader_fuzz corpus "$seeds" \
  -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
  -print_final_stats=1 -artifact_prefix="$build/artifacts/"
