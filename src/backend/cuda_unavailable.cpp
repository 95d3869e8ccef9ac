// The CUDA entry points of a build without CUDA (-DPENSIEVE_CUDA=OFF, or no toolkit found).
#include <stdexcept>

#include "backend/backend.h"

namespace pensieve::backend {

std::string cuda_unavailable_reason(int) { return "this build of pensieve has no CUDA backend"; }

std::unique_ptr<Backend> make_cuda_backend(int index) {
  throw std::runtime_error("cuda:" + std::to_string(index) + ": " + cuda_unavailable_reason(index));
}

}  // namespace pensieve::backend
