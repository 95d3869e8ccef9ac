#pragma once
// The end of every warp-per-row product kernel: each lane holds partial sums of N activation rows; the warp
// adds them and lane 0 writes the n valid ones into y[j][rows] at `row`.
#include <cstddef>

namespace pensieve::backend::cuda {

template <int N>
__device__ __forceinline__ void store_warp_sums(float (&acc)[N], int n, int lane, float* y, int rows, int row) {
#pragma unroll
  for (int j = 0; j < N; ++j) {
    float v = acc[j];
#pragma unroll
    for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
    if (lane == 0 && j < n) y[static_cast<size_t>(j) * rows + row] = v;
  }
}

}  // namespace pensieve::backend::cuda
