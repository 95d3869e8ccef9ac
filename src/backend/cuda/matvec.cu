// Products with quantized weights read straight from their GGUF bytes: a warp per output row, each lane
// decoding one 32-element chunk at a time, up to eight activation rows per pass over the weights. A warp
// first copies the bytes of its next 32 chunks into shared memory with coalesced loads, so the lanes' byte
// reads (each chunk's layout is scattered over its block) hit shared memory, not DRAM. Also: decoding whole
// matrices to f16 for the cuBLAS path, and embedding lookups.
#include <cuda_fp16.h>

#include "backend/cuda/kernels.h"
#include "backend/cuda/quant_chunks.h"
#include "backend/cuda/warp_sums.cuh"

namespace pensieve::backend::cuda {
namespace {

constexpr int kWarpsPerBlock = 4;
// The largest 32-chunk span of any quantized type: 32 Q8_0 blocks.
constexpr int kStageBytes = 32 * 34;

template <QuantType T>
constexpr bool is_quantized() {
  return quant_format(T).block_elements > 1;
}

template <QuantType T, int N>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    matvec_kernel(const uint8_t* __restrict__ w, size_t row_bytes, int rows, int chunks_per_row,
                  const __half* __restrict__ x, int n, int cols, float* __restrict__ y) {
  static_assert(quant_bytes(T, 32 * 32) <= kStageBytes);
  __shared__ __align__(16) uint16_t stage[kWarpsPerBlock][kStageBytes / 2];
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int row = static_cast<int>(blockIdx.x) * kWarpsPerBlock + warp;
  if (row >= rows) return;  // only warp-level synchronization below
  const uint8_t* wr = w + static_cast<size_t>(row) * row_bytes;
  float acc[N];
#pragma unroll
  for (int j = 0; j < N; ++j) acc[j] = 0.0f;

  for (int base = 0; base < chunks_per_row; base += 32) {
    const int count = min(32, chunks_per_row - base);
    const auto* src = reinterpret_cast<const uint16_t*>(wr + quant_bytes(T, static_cast<size_t>(base) * 32));
    const int halves = static_cast<int>(quant_bytes(T, static_cast<size_t>(count) * 32) / 2);
    for (int i = lane; i < halves; i += 32) stage[warp][i] = src[i];
    __syncwarp();
    if (lane < count) {
      float wv[32];
      decode_chunk<T>(reinterpret_cast<const uint8_t*>(stage[warp]), lane, wv);
#pragma unroll
      for (int e = 0; e < 32; ++e) wv[e] = __half2float(__float2half_rn(wv[e]));
#pragma unroll
      for (int j = 0; j < N; ++j) {
        if (j < n) {
          const auto* xv = reinterpret_cast<const uint4*>(x + static_cast<size_t>(j) * cols + (base + lane) * 32);
          float s = 0.0f;
#pragma unroll
          for (int q = 0; q < 4; ++q) {
            const uint4 packed = xv[q];
            const auto* h = reinterpret_cast<const __half2*>(&packed);
#pragma unroll
            for (int p = 0; p < 4; ++p) {
              const float2 f = __half22float2(h[p]);
              s = fmaf(wv[q * 8 + 2 * p], f.x, s);
              s = fmaf(wv[q * 8 + 2 * p + 1], f.y, s);
            }
          }
          acc[j] += s;
        }
      }
    }
    __syncwarp();
  }
  store_warp_sums(acc, n, lane, y, rows, row);
}

template <QuantType T>
__global__ void dequantize_f16_kernel(const uint8_t* __restrict__ w, size_t row_bytes, int64_t rows,
                                      int chunks_per_row, __half* __restrict__ out) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= rows * chunks_per_row) return;
  const int64_t row = idx / chunks_per_row;
  const int c = static_cast<int>(idx % chunks_per_row);
  float v[32];
  decode_chunk<T>(w + static_cast<size_t>(row) * row_bytes, c, v);
  __align__(16) __half h[32];
#pragma unroll
  for (int e = 0; e < 32; ++e) h[e] = __float2half_rn(v[e]);
  auto* dst = reinterpret_cast<uint4*>(out + static_cast<size_t>(row) * chunks_per_row * 32 + c * 32);
  const auto* s = reinterpret_cast<const uint4*>(h);
#pragma unroll
  for (int q = 0; q < 4; ++q) dst[q] = s[q];
}

template <QuantType T>
__global__ void embed_kernel(const uint8_t* __restrict__ table, size_t row_bytes, int chunks_per_row,
                             const int32_t* __restrict__ tokens, int n, float* __restrict__ out) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<int64_t>(n) * chunks_per_row) return;
  const int i = static_cast<int>(idx / chunks_per_row);
  const int c = static_cast<int>(idx % chunks_per_row);
  float v[32];
  decode_chunk<T>(table + static_cast<size_t>(tokens[i]) * row_bytes, c, v);
  float* dst = out + static_cast<size_t>(i) * chunks_per_row * 32 + c * 32;
#pragma unroll
  for (int e = 0; e < 32; ++e) dst[e] = v[e];
}

unsigned grid_for(int64_t threads, int block) { return static_cast<unsigned>((threads + block - 1) / block); }

}  // namespace

bool matvec_supports(uint32_t type) {
  bool quantized = false;
  dispatch_quant_type(type, [&]<QuantType T>() { quantized = is_quantized<T>(); });
  return quantized;
}

void matvec(uint32_t type, const void* w, size_t row_bytes, int64_t rows, int64_t cols, const uint16_t* x, int n,
            float* y, const void* repacked, cudaStream_t stream) {
  if (matvec_kquant(type, w, row_bytes, rows, cols, x, n, y, repacked, stream)) return;
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* xh = reinterpret_cast<const __half*>(x);
  const int cpr = static_cast<int>(cols / 32);
  const unsigned grid = grid_for(rows, kWarpsPerBlock);
  dispatch_quant_type(type, [&]<QuantType T>() {
    if constexpr (is_quantized<T>()) {
      for (int j0 = 0; j0 < n; j0 += 8) {
        const int m = n - j0 < 8 ? n - j0 : 8;
        const __half* xj = xh + static_cast<size_t>(j0) * cols;
        float* yj = y + static_cast<size_t>(j0) * rows;
        if (m == 1) {
          matvec_kernel<T, 1><<<grid, kWarpsPerBlock * 32, 0, stream>>>(wb, row_bytes, int(rows), cpr, xj, m, int(cols), yj);
        } else if (m <= 4) {
          matvec_kernel<T, 4><<<grid, kWarpsPerBlock * 32, 0, stream>>>(wb, row_bytes, int(rows), cpr, xj, m, int(cols), yj);
        } else {
          matvec_kernel<T, 8><<<grid, kWarpsPerBlock * 32, 0, stream>>>(wb, row_bytes, int(rows), cpr, xj, m, int(cols), yj);
        }
      }
    }
  });
}

void dequantize_f16(uint32_t type, const void* w, size_t row_bytes, int64_t rows, int64_t cols, uint16_t* out,
                    cudaStream_t stream) {
  if (dequantize_kquant_f16(type, w, row_bytes, rows, cols, out, stream)) return;
  const int cpr = static_cast<int>(cols / 32);
  dispatch_quant_type(type, [&]<QuantType T>() {
    dequantize_f16_kernel<T><<<grid_for(rows * cpr, 256), 256, 0, stream>>>(static_cast<const uint8_t*>(w), row_bytes,
                                                                            rows, cpr, reinterpret_cast<__half*>(out));
  });
}

void embed(uint32_t type, const void* table, size_t row_bytes, int64_t cols, const int32_t* tokens, int n, float* out,
           cudaStream_t stream) {
  const int cpr = static_cast<int>(cols / 32);
  dispatch_quant_type(type, [&]<QuantType T>() {
    embed_kernel<T><<<grid_for(static_cast<int64_t>(n) * cpr, 256), 256, 0, stream>>>(
        static_cast<const uint8_t*>(table), row_bytes, cpr, tokens, n, out);
  });
}

}  // namespace pensieve::backend::cuda
