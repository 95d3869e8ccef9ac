#!/usr/bin/env bash
# Fuzzes each target for SECONDS (default 60) on one core, one after the other.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# Targets: gguf_reader_fuzz (the GGUF reader), chat_template_fuzz (template source + context),
# tokenizer_fuzz (text -> ids -> text), api_request_fuzz (a body into the OpenAI / Anthropic adapters),
# http_request_fuzz (raw bytes into a live server's connection), tool_call_parser_fuzz (model output into the
# tool-call parsers and reasoning splitter). Default: all of them.
# Builds fuzz/ with clang (ASan + UBSan) into build-fuzz/ (or PENSIEVE_FUZZ_BUILD_DIR); a main build made there
# with PENSIEVE_FUZZ=ON (scripts/test-sanitizers.sh asan) is used as it is. Seeds: fuzz/seeds/<target-without-_fuzz>/
# (checked in) and, for the GGUF reader, small valid GGUFs written on the spot. The growing corpus stays in
# <build>/corpus/<target>/ between runs; crashing inputs land in <build>/artifacts/ — once fixed, keep each
# as a regression seed (tests/gguf/regressions/ for the GGUF reader, fuzz/seeds/<name>/ for the others).
set -euo pipefail

seconds="${1:-60}"
shift || true
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  targets=(gguf_reader_fuzz chat_template_fuzz tokenizer_fuzz api_request_fuzz http_request_fuzz tool_call_parser_fuzz)
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${PENSIEVE_FUZZ_BUILD_DIR:-$root/build-fuzz}"
fixtures="${PENSIEVE_FIXTURES_DIR:-$root/../shared/fixtures}"
export PENSIEVE_FIXTURES_DIR="$fixtures"

if grep -qs '^PENSIEVE_FUZZ:BOOL=ON' "$build/CMakeCache.txt"; then
  # A main build with the fuzzers in it (scripts/test-sanitizers.sh asan made it): its rooms are instrumented
  # already, the harnesses lie in fuzz/ there.
  bin="$build/fuzz"
else
  if grep -qs '^CMAKE_PROJECT_NAME:STATIC=pensieve$' "$build/CMakeCache.txt"; then
    build="$build/fuzz-own"  # a main build without the fuzzers in it: they get their own build beside it
  fi
  # clang 16 when there (scripts/install-deps.sh installs it): clang 14 cannot build the HTTP harness.
  if [[ -z "${CXX:-}" ]] && command -v clang++-16 >/dev/null; then
    export CC=clang-16 CXX=clang++-16
  fi
  CC="${CC:-clang}" CXX="${CXX:-clang++}" cmake -S "$root/fuzz" -B "$build" -G Ninja \
    -DPENSIEVE_FIXTURES_DIR="$fixtures" >/dev/null
  bin="$build"
fi
available=()
for target in "${targets[@]}"; do
  if grep -q "^build $target:" "$build/build.ninja"; then
    available+=("$target")
  else
    echo "== $target: not built by this compiler (see fuzz/CMakeLists.txt); skipped"
  fi
done
targets=("${available[@]}")
cmake --build "$build" -j2 --target "${targets[@]}" gguf_make_seed_corpus

mkdir -p "$build/artifacts"
# clang 16's runtime does not find Debian's llvm-symbolizer by itself: without it, crash stacks are bare addresses.
export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer || true)}"
for target in "${targets[@]}"; do
  name="${target%_fuzz}"
  seeds="$build/seeds/$name"
  rm -rf "$seeds"
  mkdir -p "$seeds" "$build/corpus/$name"
  if [[ "$target" == gguf_reader_fuzz ]]; then
    vocab=()
    for f in "$fixtures"/vocab/*.gguf; do
      [[ -e "$f" ]] && vocab+=("$f")
    done
    "$bin/gguf_make_seed_corpus" "$seeds" "${vocab[@]}"
    cp "$root"/tests/gguf/regressions/* "$seeds"/ 2>/dev/null || true
    max_len=65536
  else
    cp "$root"/fuzz/seeds/"$name"/* "$seeds"/ 2>/dev/null || true
    max_len=16384
  fi
  echo "== $target: ${seconds}s, $(ls "$seeds" | wc -l) seeds, corpus $(ls "$build/corpus/$name" | wc -l)"
  # One in-process worker: a single core, and the stats print here rather than into a fuzz-N.log.
  (cd "$build" && "$bin/$target" "corpus/$name" "$seeds" \
    -max_total_time="$seconds" -max_len="$max_len" -rss_limit_mb=2048 -timeout=30 \
    -print_final_stats=1 -artifact_prefix="$build/artifacts/$name-")
done
