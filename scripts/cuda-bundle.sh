#!/usr/bin/env bash
# Packs what scripts/test-cuda.sh needs on a GPU machine that cannot install packages (such as the `device`
# machines this project is measured on): the binaries built here (nvcc 13.0 here matches their driver), the
# shared libraries they load that such a machine lacks (PCRE2, ICU, fmt: Debian's), the fixtures the tests
# read, and optionally node with the e2e test clients. cuBLAS is not packed: a machine with the CUDA toolkit
# has it. The archive is unpacked and run by scripts/test-cuda.sh --bundle FILE.
#
# Usage: scripts/cuda-bundle.sh BUILD_DIR OUT.tar.xz [--node] [--no-tests] [--fixtures "models quant tokenizers/llama3"]
# (--fixtures: folders or files under ../shared/fixtures; default "models quant". XZ_LEVEL=9 packs tighter
# and slower: the e2e bundle with the Qwen tokenizer and template fits the device tool's 64 MiB only so.)
set -euo pipefail
build="$1"
out="$2"
shift 2
with_node=0
with_tests=1
fixture_parts="models quant"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --node) with_node=1 ;;
    --no-tests) with_tests=0 ;;
    --fixtures) fixture_parts="$2"; shift ;;
    *) echo "cuda-bundle: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fixtures="$(cd "$root/../shared/fixtures" && pwd)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage/bin" "$stage/lib" "$stage/fixtures"
for t in pensieve; do cp "$build/bin/$t" "$stage/bin/"; done
# The e2e suite's scripted server (fixed replies through the real HTTP and API code).
[[ -x "$build/tests/e2e/pensieve_scripted_serve" ]] && cp "$build/tests/e2e/pensieve_scripted_serve" "$stage/bin/"
if [[ $with_tests -eq 1 ]]; then
  for t in test_cuda test_model test_engine test_parallel; do
    [[ -x "$build/tests/$t" ]] && cp "$build/tests/$t" "$stage/bin/"
  done
fi
# Every non-system library the binaries load, except the CUDA toolkit's own.
for f in "$stage"/bin/*; do
  ldd "$f" | awk '/=> \// {print $3}'
done | sort -u | grep -v -E 'libc\.so|libm\.so|libstdc\+\+|libgcc_s|libpthread|libdl\.so|librt\.so|/cuda' |
  while read -r lib; do cp -L "$lib" "$stage/lib/"; done
for part in $fixture_parts; do (cd "$fixtures" && cp -r --parents "$part" "$stage/fixtures/"); done
# The tests look for the fixtures where they were when the tests were built (PENSIEVE_FIXTURES_DIR).
echo "$fixtures" > "$stage/fixtures-path"
if [[ $with_node -eq 1 ]]; then
  cp "$(command -v node)" "$stage/bin/node"
  (cd "$root/tests/e2e" && [[ -d node_modules ]]) || (cd "$root/tests/e2e" && npm ci --no-audit --no-fund --loglevel=error)
  cp -r "$root/tests/e2e/node_modules" "$stage/node_modules"
  # Type declarations, source maps and TypeScript sources are never loaded at run time; without them the
  # bundle fits what the device tool carries (64 MiB).
  find "$stage/node_modules" -type f \( -name '*.map' -o -name '*.ts' -o -name '*.mts' -o -name '*.cts' \) -delete
fi
tar -C "$stage" -cf - . | xz -T2 "-${XZ_LEVEL:-6}" > "$out"
ls -la "$out"
