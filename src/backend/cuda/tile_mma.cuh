#pragma once
// Pieces shared by the tensor-core product kernels for small batches (matvec_kquants.cu, matvec_f16.cu): a
// block takes 16 weight rows and up to 16 activation rows (tiles of 8), each warp a share of the row's
// columns, and mma.sync multiplies 16 x 16 slices of f16 weights by the activations with f32 sums.
#include <cuda_fp16.h>

#include <cstdint>
#include <span>

#include "backend/cuda/kernels.h"
#include "backend/cuda/silu_gate.cuh"

namespace pensieve::backend::cuda::tiles {

__device__ __forceinline__ __half2 bits_to_half2(uint32_t bits) {
  __half2 h;
  memcpy(&h, &bits, 4);
  return h;
}

// D (16 x 8, f32) += A (16 x 16, f16, row-major) * B (16 x 8, f16, column-major) on the tensor cores. Lane
// (g, t) = (lane / 4, lane % 4) holds A's rows g and g + 8 at k = 2t, 2t+1 (a[0], a[1]) and 2t+8, 2t+9 (a[2],
// a[3]), B's column g at the same k (b0, b1), and D's rows g, g + 8 at columns 2t, 2t+1.
__device__ __forceinline__ void mma_16x8x16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t half2_bits(__half2 h) {
  uint32_t bits;
  memcpy(&bits, &h, 4);
  return bits;
}

// acc[0] += acc[1]: the two accumulator chains a kernel kept so that consecutive mma.sync need not wait on
// each other.
template <int NT>
__device__ __forceinline__ void add_chains(float (&acc)[2][NT][4]) {
#pragma unroll
  for (int j = 0; j < NT; ++j)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[0][j][i] += acc[1][j][i];
}

// The shared memory store_tiles<NT, W> declares.
constexpr size_t store_tiles_bytes(int nt, int warps) { return static_cast<size_t>(warps - 1) * nt * 4 * 32 * 4; }

// The warps' tiles added in warp order into warp 0's acc; true in warp 0, which then holds the block's sums.
template <int NT, int W>
__device__ __forceinline__ bool sum_warp_tiles(float (&acc)[NT][4]) {
  __shared__ float part[W - 1][NT * 4][32];
  static_assert(sizeof(part) == store_tiles_bytes(NT, W));
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  if (warp > 0) {
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int i = 0; i < 4; ++i) part[warp - 1][4 * j + i][lane] = acc[j][i];
  }
  __syncthreads();
  if (warp != 0) return false;
#pragma unroll
  for (int j = 0; j < NT; ++j)
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int w = 0; w < W - 1; ++w) acc[j][i] += part[w][4 * j + i][lane];
  return true;
}

// The block's sums, rows g, g + 8 of each activation tile, written to y[j][rows].
template <int NT, int W>
__device__ __forceinline__ void store_tiles(float (&acc)[NT][4], int n, int rows, int row0, float* __restrict__ y) {
  if (!sum_warp_tiles<NT, W>(acc)) return;
  const int lane = static_cast<int>(threadIdx.x) % 32, g = lane / 4, t = lane % 4;
#pragma unroll
  for (int j = 0; j < NT; ++j) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int row = row0 + g + 8 * (i / 2), col = 8 * j + 2 * t + i % 2;
      if (row < rows && col < n) y[static_cast<size_t>(col) * rows + row] = acc[j][i];
    }
  }
}

// Up to three matrices that multiply the same activations (a layer's Q, K and V), in one launch: block b
// works on the matrix whose tiles it falls in. Every launch of a decode step costs a few microseconds before
// its first weights arrive, more than K and V take to read (2.4 MB each on 8B).
struct MatrixParts {
  static constexpr int kMax = 3;
  const uint8_t* w[kMax];
  float* y[kMax];
  size_t row_bytes[kMax];
  int rows[kMax];
  int end_tile[kMax];  // one past the part's last block
  bool q6k[kMax];      // a Q6_K matrix (repacked) among Q4_K ones
  int count;
  // The products' matrices one after another (at most kMax of them), 16-row tiles each.
  static MatrixParts of(std::span<const SameInputProduct> products) {
    MatrixParts parts{};
    int tiles = 0;
    for (const SameInputProduct& p : products) {
      const int i = parts.count++;
      parts.w[i] = static_cast<const uint8_t*>(p.w);
      parts.y[i] = p.y;
      parts.row_bytes[i] = p.row_bytes;
      parts.rows[i] = static_cast<int>(p.rows);
      parts.q6k[i] = p.repacked_q6k;
      tiles += static_cast<int>((p.rows + 15) / 16);
      parts.end_tile[i] = tiles;
    }
    return parts;
  }
  static MatrixParts one(const void* w, size_t row_bytes, float* y, int64_t rows) {
    const SameInputProduct product{w, rows, y, row_bytes};
    return of(std::span(&product, 1));
  }
  int tiles() const { return count > 0 ? end_tile[count - 1] : 0; }
  bool any_q6k() const {
    for (int i = 0; i < count; ++i) {
      if (q6k[i]) return true;
    }
    return false;
  }
  struct Part {
    const uint8_t* w;
    float* y;
    size_t row_bytes;
    int rows, tile;
    bool q6k;
  };
  // (Selected without indexing by a runtime value, which would copy the parameters to local memory.)
  __device__ Part of_block(int b) const {
    const bool second = count > 1 && b >= end_tile[0], third = count > 2 && b >= end_tile[1];
    if (third) return {w[2], y[2], row_bytes[2], rows[2], b - end_tile[1], q6k[2]};
    if (second) return {w[1], y[1], row_bytes[1], rows[1], b - end_tile[0], q6k[1]};
    return {w[0], y[0], row_bytes[0], rows[0], b, q6k[0]};
  }
};

// The gated kernel's sums: tile row g holds x . gate row row0 + g and tile row g + 8 the same for up, so lane
// (g, t) has both for its activation columns 2t, 2t + 1 and writes silu(gate) * up there, in f32 and f16.
template <int NT, int W>
__device__ __forceinline__ void store_gated_tiles(float (&acc)[NT][4], int n, int rows, int row0,
                                                  float* __restrict__ y, __half* __restrict__ y_f16) {
  if (!sum_warp_tiles<NT, W>(acc)) return;
  const int lane = static_cast<int>(threadIdx.x) % 32, g = lane / 4, t = lane % 4;
  const int row = row0 + g;
#pragma unroll
  for (int j = 0; j < NT; ++j) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int col = 8 * j + 2 * t + i;
      if (row >= rows || col >= n) continue;
      const float v = silu_gate(acc[j][i], acc[j][i + 2]);
      const size_t at = static_cast<size_t>(col) * rows + row;
      y[at] = v;
      y_f16[at] = __float2half_rn(v);
    }
  }
}

// Warps per 16-row tile: enough tiles in flight on every multiprocessor, with each warp's share of the row's
// super-blocks as short as that allows (few rows: K and V projections; many: gate and up). kByRowLength: the
// caller passes the row's length in 256-column super-blocks, and the largest matrices with rows of at most
// eight (1B's gate, up and output) take two warps a tile, four super-blocks each, where four warps had two:
// 1B Q4_K_M at one stream went from 1445-1461 to 1512-1526 tok/s. 8B's rows of sixteen measured slower with
// two warps (438-440 against 447-448), and fewer warps for fewer tiles were slower on both.
template <bool kByRowLength = false, typename Launch>
void with_tile_warps(int64_t rows, Launch&& launch, int64_t superblocks_per_row = 0) {
  const int64_t tiles = (rows + 15) / 16;
  if constexpr (kByRowLength) {
    if (tiles >= 512 && superblocks_per_row <= 8) {
      launch.template operator()<2>();
      return;
    }
  }
  if (tiles >= 512) launch.template operator()<4>();
  else if (tiles >= 128) launch.template operator()<8>();
  else launch.template operator()<16>();
}

}  // namespace pensieve::backend::cuda::tiles
