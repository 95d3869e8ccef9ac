# The two commands a newcomer needs: `make serve` and `make test`. Both install what they need first.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
PENSIEVE := $(BUILD_DIR)/bin/pensieve
DEFAULT_MODEL := models/demo.gguf

.PHONY: all deps build test test-unit test-arm64 test-asan test-tsan fuzz-smoke soak serve bench fuzz clean install

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD_DIR)/build.ninja: CMakeLists.txt | deps
	cmake -S . -B $(BUILD_DIR) -G Ninja $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

# CI runs this on a clean checkout. Order: the plain tests (e2e_soak among them: a one-minute soak, run alone),
# the ARM kernels, the tests again under ASan + UBSan, then a short run of every fuzzer from that same sanitized
# build (with clang 16 test-asan builds the fuzzers too, so one sanitized tree serves both).
test: test-unit test-arm64 test-asan
	PENSIEVE_FUZZ_BUILD_DIR=$(abspath $(ASAN_DIR)) bash scripts/fuzz.sh $(FUZZ_SMOKE_SECONDS)

test-unit: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

# The unit and e2e tests again, built with AddressSanitizer + UndefinedBehaviorSanitizer (CUDA off, clang 16,
# -O1, line tables; part of `make test`). Its cost on CI: see docs/configuration.md ("How this is checked").
# Left out, and why: e2e_soak, whose RSS bound means nothing under ASan's quarantine and shadow memory
# (test-unit runs it on the plain build).
ASAN_DIR ?= $(BUILD_DIR)-asan
ASAN_EXCLUDE ?= ^e2e_soak$$
test-asan: deps
	JOBS=$(JOBS) bash scripts/test-sanitizers.sh asan $(ASAN_DIR) '$(ASAN_EXCLUDE)'

# ThreadSanitizer over the engine/HTTP hand-off (engine and HTTP unit tests, e2e suites); not part of `make test`.
test-tsan: deps
	JOBS=$(JOBS) bash scripts/test-sanitizers.sh tsan $(BUILD_DIR)-tsan

# Every fuzzer for FUZZ_SMOKE_SECONDS each over its checked-in seeds: catches a harness that no longer builds or
# an input that crashes again. On its own it builds build-fuzz/; `make test` runs it from $(ASAN_DIR) instead.
FUZZ_SMOKE_SECONDS ?= 10
fuzz-smoke: deps
	bash scripts/fuzz.sh $(FUZZ_SMOKE_SECONDS)

# A few hundred clients of every kind, well-behaved and not, against `pensieve serve` (tests/e2e/soak.mjs).
SOAK_SECONDS ?= 300
SOAK_CLIENTS ?= 300
soak: build
	cd tests/e2e && PENSIEVE_BIN=$(abspath $(PENSIEVE)) PENSIEVE_FIXTURES_DIR=$(abspath ../shared/fixtures) \
	  node soak.mjs --seconds $(SOAK_SECONDS) --clients $(SOAK_CLIENTS)

# The NEON kernel tables, cross-built for AArch64 and run under qemu-user against the scalar reference.
test-arm64: deps
	JOBS=$(JOBS) bash scripts/test-arm64.sh $(BUILD_DIR)-arm64

# The bundled demo model is synthesized once (random weights, real Llama 3 tokenizer) and cached in models/.
$(DEFAULT_MODEL): | build
	bash scripts/make-default-model.sh $(PENSIEVE) $@

# Extra flags for the server, e.g. `make serve SERVE_ARGS="--port 9000 --api-key secret"`.
SERVE_ARGS ?=
serve: build $(DEFAULT_MODEL)
	@echo "make serve: $(DEFAULT_MODEL) is the bundled demo model. Its weights are RANDOM, so its text is noise."
	@echo "make serve: to serve a real model: $(PENSIEVE) serve --model PATH/TO/model.gguf"
	$(PENSIEVE) serve --model $(DEFAULT_MODEL) --alias demo $(SERVE_ARGS)

bench: build
	bash scripts/bench.sh $(BUILD_DIR)

fuzz:
	bash scripts/fuzz.sh $(or $(FUZZ_SECONDS),60)

# `make install [PREFIX=/usr/local] [DESTDIR=/staging]`: the binary, a systemd unit running
# `pensieve serve --config $(SYSCONFDIR)/pensieve/config.json`, and an example config. An existing config.json or
# pensieve.env is never overwritten; the example beside it always is. Builds first only if there is no binary.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
SYSTEMD_UNIT_DIR ?= $(PREFIX)/lib/systemd/system
install:
	@test -x $(PENSIEVE) || $(MAKE) build
	install -D -m 755 $(PENSIEVE) $(DESTDIR)$(BINDIR)/pensieve
	install -d -m 755 $(DESTDIR)$(SYSTEMD_UNIT_DIR) $(DESTDIR)$(SYSCONFDIR)/pensieve
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' packaging/pensieve.service.in \
	  > $(DESTDIR)$(SYSTEMD_UNIT_DIR)/pensieve.service
	chmod 644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/pensieve.service
	install -m 644 packaging/config.example.json $(DESTDIR)$(SYSCONFDIR)/pensieve/config.example.json
	test -e $(DESTDIR)$(SYSCONFDIR)/pensieve/config.json || \
	  install -m 644 packaging/config.example.json $(DESTDIR)$(SYSCONFDIR)/pensieve/config.json
	test -e $(DESTDIR)$(SYSCONFDIR)/pensieve/pensieve.env || \
	  install -m 600 packaging/pensieve.env.example $(DESTDIR)$(SYSCONFDIR)/pensieve/pensieve.env

clean:
	rm -rf $(BUILD_DIR) $(BUILD_DIR)-arm64 $(BUILD_DIR)-asan $(BUILD_DIR)-tsan build-fuzz
