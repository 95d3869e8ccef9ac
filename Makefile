# The two commands a newcomer needs: `make serve` and `make test`. Both install what they need first.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
PENSIEVE := $(BUILD_DIR)/bin/pensieve
DEFAULT_MODEL := models/demo.gguf

.PHONY: all deps build test serve bench fuzz clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD_DIR)/build.ninja: CMakeLists.txt | deps
	cmake -S . -B $(BUILD_DIR) -G Ninja $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

# Until the HTTP server exists, `serve` synthesizes the bundled demo model and shows what it holds.
$(DEFAULT_MODEL): | build
	bash scripts/make-default-model.sh $(PENSIEVE) $@

serve: build $(DEFAULT_MODEL)
	$(PENSIEVE) inspect $(DEFAULT_MODEL)

bench: build
	bash scripts/bench.sh $(BUILD_DIR)

fuzz:
	bash scripts/fuzz.sh $(or $(FUZZ_SECONDS),60)

clean:
	rm -rf $(BUILD_DIR) build-fuzz
