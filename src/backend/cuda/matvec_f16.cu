// F16 weights times up to sixteen activation rows on the tensor cores. cuBLAS's GEMM reached 63% of the
// memory bound at one row (a decode step of one stream), where every weight byte is read once and nothing
// else should cost: here the weights go from one 16-byte load straight into mma.sync's operand registers,
// with no arithmetic per weight, and enough loads in flight per lane to keep the memory busy.
// The products are the f16 products cuBLAS forms, summed in f32 in another order: a sequence's result does
// not depend on which path its batch took, up to the order of the sums. As for Q4_K, a layer's Q, K and V go
// through one launch, and its gate and up products through one that applies the SiLU gate as well.
#include <cuda_fp16.h>

#include "backend/cuda/kernels.h"
#include "backend/cuda/overlapped_launch.cuh"
#include "backend/cuda/tile_mma.cuh"

namespace pensieve::backend::cuda {
namespace {

// Columns go in segments of 32, two mma steps. Lane (g, t) loads columns 8t .. 8t + 7 of the segment for its
// rows g and g + 8 and for activation row g: k slots (2t, 2t + 1) and (2t + 8, 2t + 9) of the first step are
// columns 8t, 8t + 1 and 8t + 2, 8t + 3, those of the second 8t + 4 .. 8t + 7 (the sum over k does not care
// which column sits in which slot, as long as weights and activations agree). A warp's load instruction then
// reads 64 contiguous bytes of each of eight rows. Each warp takes kSegments segments per round.
template <int NT>
constexpr int kSegments = NT == 1 ? 4 : 2;  // two activation tiles need the registers

// Weight bytes are read once per step by one warp: they skip L1 (nothing else would hit there), and L2 is told
// to fetch 256 bytes around each miss from DRAM, the bytes the warp's next loads of the same row want, so
// DRAM serves long runs of a page instead of the 64-byte pieces one load instruction asks for.
__device__ __forceinline__ uint4 load_weights16(const void* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
}
__device__ __forceinline__ uint4 load_or_zero(const __half* p, bool valid) {
  return valid ? *reinterpret_cast<const uint4*>(p) : make_uint4(0, 0, 0, 0);
}
__device__ __forceinline__ uint4 weights_or_zero(const __half* p, bool valid) {
  return valid ? load_weights16(p) : make_uint4(0, 0, 0, 0);
}

// One round's loads: kSegments segments of the lane's two weight rows and of its activation row.
template <int NT>
struct F16Round {
  static constexpr int S = kSegments<NT>;
  uint4 wa[S], wb[S], xv[NT][S];
  __device__ void load(const __half* row_a, const __half* row_b, const __half* x, int n, int cols, int segments,
                       int s0, int g, int t) {
    load_weights(row_a, row_b, segments, s0);
    load_activations(x, n, cols, segments, s0, g, t);
  }
  __device__ void load_weights(const __half* row_a, const __half* row_b, int segments, int s0) {
#pragma unroll
    for (int u = 0; u < S; ++u) {
      const bool valid = s0 + u < segments;
      wa[u] = weights_or_zero(row_a + (s0 + u) * 32, valid);
      wb[u] = weights_or_zero(row_b + (s0 + u) * 32, valid);
    }
  }
  __device__ void load_activations(const __half* x, int n, int cols, int segments, int s0, int g, int t) {
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      const int xr = 8 * j + g;
#pragma unroll
      for (int u = 0; u < S; ++u) {
        xv[j][u] = load_or_zero(x + static_cast<size_t>(min(xr, n - 1)) * cols + (s0 + u) * 32 + 8 * t,
                                xr < n && s0 + u < segments);
      }
    }
  }
};

// A warp loads its next round before it multiplies the current one, and alternates two accumulators (each
// mma.sync waits for the last one on its accumulator). Block b takes a tile of whichever of `parts` it falls
// in (a layer's Q, K and V in one launch). kGated: the tile's rows are rows row0 .. row0 + 7 of the gate
// matrix and the same rows of `w_up`, and the block writes silu(gate) * up (see store_gated_tiles).
template <int NT, int W, bool kGated>
__global__ void __launch_bounds__(W * 32)
    matvec_f16_tiles(tiles::MatrixParts parts, const __half* __restrict__ w_up, int cols,
                     const __half* __restrict__ x, int n, __half* __restrict__ y_f16) {
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane / 4, t = lane % 4;
  const tiles::MatrixParts::Part part = parts.of_block(static_cast<int>(blockIdx.x));
  const auto* __restrict__ w = reinterpret_cast<const __half*>(part.w);
  const int rows = part.rows;
  const int row0 = part.tile * (kGated ? 8 : 16);
  const __half* row_a = w + static_cast<size_t>(min(row0 + g, rows - 1)) * cols + 8 * t;
  const __half* row_b = (kGated ? w_up + static_cast<size_t>(min(row0 + g, rows - 1)) * cols
                                : w + static_cast<size_t>(min(row0 + g + 8, rows - 1)) * cols) +
                        8 * t;
  const int segments = cols / 32;
  constexpr int kSegs = kSegments<NT>, kStride = W * kSegs;
  float acc[2][NT][4] = {};

  F16Round<NT> next;
  next.load_weights(row_a, row_b, segments, warp * kSegs);
  wait_for_prior_kernels();  // the first weights are in flight; x is the kernel before's output
  next.load_activations(x, n, cols, segments, warp * kSegs, g, t);
  for (int s0 = warp * kSegs; s0 < segments; s0 += kStride) {
    const F16Round<NT> cur = next;
    if (s0 + kStride < segments) next.load(row_a, row_b, x, n, cols, segments, s0 + kStride, g, t);
#pragma unroll
    for (int u = 0; u < kSegs; ++u) {
      const uint32_t first[4] = {cur.wa[u].x, cur.wb[u].x, cur.wa[u].y, cur.wb[u].y};
      const uint32_t second[4] = {cur.wa[u].z, cur.wb[u].z, cur.wa[u].w, cur.wb[u].w};
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        tiles::mma_16x8x16(acc[0][j], first, cur.xv[j][u].x, cur.xv[j][u].y);
        tiles::mma_16x8x16(acc[1][j], second, cur.xv[j][u].z, cur.xv[j][u].w);
      }
    }
  }
  tiles::add_chains<NT>(acc);
  if constexpr (kGated) {
    tiles::store_gated_tiles<NT, W>(acc[0], n, rows, row0, part.y, y_f16);
  } else {
    tiles::store_tiles<NT, W>(acc[0], n, rows, row0, part.y);
  }
}

}  // namespace

bool matvec_f16(const void* w, int64_t rows, int64_t cols, const uint16_t* x, int n, float* y, cudaStream_t stream) {
  const SameInputProduct product{w, rows, y, static_cast<size_t>(cols) * 2};
  return matvec_f16_same_input(std::span(&product, 1), cols, x, n, stream);
}

bool matvec_f16_same_input(std::span<const SameInputProduct> products, int64_t cols, const uint16_t* x, int n,
                           cudaStream_t stream) {
  if (cols % 32 != 0 || n < 1 || n > 16 || products.empty() || products.size() > tiles::MatrixParts::kMax) {
    return false;
  }
  const auto parts = tiles::MatrixParts::of(products);
  const int total = parts.tiles();
  const auto* xh = reinterpret_cast<const __half*>(x);
  tiles::with_tile_warps(static_cast<int64_t>(total) * 16, [&]<int W>() {
    const auto kernel = n <= 8 ? matvec_f16_tiles<1, W, false> : matvec_f16_tiles<2, W, false>;
    launch_overlapped(kernel, static_cast<unsigned>(total), W * 32, 0, stream, parts, static_cast<const __half*>(nullptr),
                      static_cast<int>(cols), xh, n, static_cast<__half*>(nullptr));
  });
  return true;
}

bool gated_matvec_f16(const void* w_gate, const void* w_up, int64_t rows, int64_t cols, const uint16_t* x, int n,
                      float* gate, uint16_t* gate_f16, cudaStream_t stream) {
  if (cols % 32 != 0 || n < 1 || n > 8) return false;
  const auto parts = tiles::MatrixParts::one(w_gate, static_cast<size_t>(cols) * 2, gate, rows);
  tiles::with_tile_warps(2 * rows, [&]<int W>() {
    launch_overlapped(matvec_f16_tiles<1, W, true>, static_cast<unsigned>((rows + 7) / 8), W * 32, 0, stream, parts,
                      static_cast<const __half*>(w_up), static_cast<int>(cols), reinterpret_cast<const __half*>(x), n,
                      reinterpret_cast<__half*>(gate_f16));
  });
  return true;
}

}  // namespace pensieve::backend::cuda
