#pragma once
// CUDA runtime errors as exceptions, for the backend's host code: a failed call, or a launch whose error the
// runtime reports at the next cudaGetLastError.
#include <stdexcept>
#include <string>

#include <cuda_runtime_api.h>

namespace pensieve::backend::cuda {

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA: ") + what + ": " + cudaGetErrorString(e));
}

inline void check_launch(const char* what) { check(cudaGetLastError(), what); }

}  // namespace pensieve::backend::cuda
