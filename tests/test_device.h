#pragma once
// The backend the model and engine tests run on: the CPU, or the device PENSIEVE_TEST_DEVICE names
// (scripts/test-cuda.sh sets it to cuda so the same tests, with the same bounds, run on the GPU). A device
// that cannot be opened fails the tests that use it: a GPU run must not pass on the CPU.
#include <cstdlib>
#include <memory>
#include <string>

#include "backend/backend.h"

namespace pensieve::testing {

inline std::unique_ptr<backend::Backend> make_test_backend(int cpu_threads = 2) {
  const char* device = std::getenv("PENSIEVE_TEST_DEVICE");
  if (device == nullptr || std::string(device).empty() || std::string(device) == "cpu") {
    return backend::make_cpu_backend(cpu_threads);
  }
  return backend::make_backend(backend::parse_device(device), cpu_threads);
}

}  // namespace pensieve::testing
