#!/usr/bin/env bash
# Installs every Debian package the build and the tests need, and the npm test clients.
# Idempotent and non-interactive: it does nothing when everything is already there.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

debian_packages=(
  build-essential cmake ninja-build pkg-config git
  clang libclang-rt-14-dev            # libFuzzer and sanitizers
  clang-16 libclang-rt-16-dev         # the HTTP fuzzer: clang 14 cannot build its coroutines
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev libspdlog-dev libpcre2-dev libicu-dev
  libboost-dev libboost-system-dev
  curl
  chromium                            # the web page's browser test (tests/e2e/web_page.test.mjs)
)
# A machine may already carry its own Node.js (with npm inside); Debian's npm would conflict with it.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  debian_packages+=(nodejs npm)
fi

bash "$root/scripts/apt-install-missing.sh" install-deps "${debian_packages[@]}"

# npm test clients (official openai and @anthropic-ai/sdk) for the end-to-end tests.
if [[ -f "$root/tests/e2e/package.json" ]]; then
  if [[ ! -d "$root/tests/e2e/node_modules" || "$root/tests/e2e/package-lock.json" -nt "$root/tests/e2e/node_modules" ]]; then
    (cd "$root/tests/e2e" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$root/tests/e2e/node_modules"
  fi
fi
