// Faster products for the two K-quant formats of Q4_K_M files (Q4_K and Q6_K), for batches of up to eight
// activation rows. The generic kernel (matvec.cu) stages bytes in shared memory and decodes one byte at a
// time, which left it at ~13% of the copy bandwidth on an H200. Here each lane loads the bytes it decodes
// straight from global memory with wide loads, in the layout's own grouping:
//   Q4_K: a lane takes a pair of 32-element chunks of a super-block (the low and high nibbles of the same 32
//         bytes): 2 x 16-byte loads of quants, the 12 scale bytes, 64 weights.
//   Q6_K: a lane takes 8 positions j of one half of a super-block; the four chunks of that half share their
//         bytes (ql low/high nibbles, qh 2-bit fields): 3 x 8 bytes, 32 weights.
// Each weight is computed with the same float expression as decode_chunk (quant_chunks.h) and rounded to f16,
// so the result equals the f16-copy GEMM path's up to the order of the sums.
#include <cuda_fp16.h>

#include "backend/cuda/kernels.h"
#include "backend/cuda/quant_chunks.h"
#include "backend/cuda/warp_sums.cuh"

namespace pensieve::backend::cuda {
namespace {

constexpr int kWarpsPerBlock = 4;

__device__ __forceinline__ float round_to_half(float v) { return __half2float(__float2half_rn(v)); }

// Eight consecutive f16 activations as floats (16-byte aligned: every group starts at a multiple of 8).
__device__ __forceinline__ void load_x8(const __half* p, float (&out)[8]) {
  const uint4 packed = *reinterpret_cast<const uint4*>(p);
  const auto* h = reinterpret_cast<const __half2*>(&packed);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __half22float2(h[i]);
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}

// Eight bytes from an address that is only 2-byte aligned (Q6_K super-blocks are 210 bytes).
__device__ __forceinline__ void load_bytes8(const uint8_t* p, uint8_t (&out)[8]) {
  const auto* h = reinterpret_cast<const uint16_t*>(p);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const uint16_t v = h[i];
    out[2 * i] = static_cast<uint8_t>(v & 0xff);
    out[2 * i + 1] = static_cast<uint8_t>(v >> 8);
  }
}

template <int N>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    matvec_q4_k(const uint8_t* __restrict__ w, size_t row_bytes, int rows, int blocks_per_row,
                const __half* __restrict__ x, int n, int cols, float* __restrict__ y) {
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int row = static_cast<int>(blockIdx.x) * kWarpsPerBlock + warp;
  if (row >= rows) return;
  const uint8_t* wr = w + static_cast<size_t>(row) * row_bytes;
  const int pair = lane % 4;  // chunks 2 * pair and 2 * pair + 1
  float acc[N];
#pragma unroll
  for (int j = 0; j < N; ++j) acc[j] = 0.0f;

  for (int sb = lane / 4; sb < blocks_per_row; sb += 8) {
    const uint8_t* b = wr + static_cast<size_t>(sb) * 144;
    const float d = half_bits_to_float(*reinterpret_cast<const uint16_t*>(b));
    const float dmin = half_bits_to_float(*reinterpret_cast<const uint16_t*>(b + 2));
    uint8_t scales[12];
#pragma unroll
    for (int i = 0; i < 3; ++i) {
      const uint32_t v = *reinterpret_cast<const uint32_t*>(b + 4 + 4 * i);
      scales[4 * i] = v & 0xff, scales[4 * i + 1] = (v >> 8) & 0xff;
      scales[4 * i + 2] = (v >> 16) & 0xff, scales[4 * i + 3] = v >> 24;
    }
    int sc_lo, m_lo, sc_hi, m_hi;
    k4_scale_min(scales, 2 * pair, sc_lo, m_lo);
    k4_scale_min(scales, 2 * pair + 1, sc_hi, m_hi);
    const float scale_lo = d * static_cast<float>(sc_lo), min_lo = dmin * static_cast<float>(m_lo);
    const float scale_hi = d * static_cast<float>(sc_hi), min_hi = dmin * static_cast<float>(m_hi);
    uint4 q[2];
    q[0] = *reinterpret_cast<const uint4*>(b + 16 + 32 * pair);
    q[1] = *reinterpret_cast<const uint4*>(b + 16 + 32 * pair + 16);
    const auto* qb = reinterpret_cast<const uint8_t*>(q);
    float lo[32], hi[32];
#pragma unroll
    for (int e = 0; e < 32; ++e) {
      lo[e] = round_to_half(scale_lo * static_cast<float>(qb[e] & 15) - min_lo);
      hi[e] = round_to_half(scale_hi * static_cast<float>(qb[e] >> 4) - min_hi);
    }
    const int base = sb * 256 + 64 * pair;
#pragma unroll
    for (int j = 0; j < N; ++j) {
      if (j < n) {
        const __half* xr = x + static_cast<size_t>(j) * cols + base;
        float s = 0.0f;
#pragma unroll
        for (int g = 0; g < 4; ++g) {
          float xa[8], xb[8];
          load_x8(xr + 8 * g, xa);
          load_x8(xr + 32 + 8 * g, xb);
#pragma unroll
          for (int e = 0; e < 8; ++e) s = fmaf(lo[8 * g + e], xa[e], fmaf(hi[8 * g + e], xb[e], s));
        }
        acc[j] += s;
      }
    }
  }
  store_warp_sums(acc, n, lane, y, rows, row);
}

template <int N>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    matvec_q6_k(const uint8_t* __restrict__ w, size_t row_bytes, int rows, int blocks_per_row,
                const __half* __restrict__ x, int n, int cols, float* __restrict__ y) {
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int row = static_cast<int>(blockIdx.x) * kWarpsPerBlock + warp;
  if (row >= rows) return;
  const uint8_t* wr = w + static_cast<size_t>(row) * row_bytes;
  const int half = (lane % 8) / 4;  // chunks 4 * half .. 4 * half + 3
  const int jq = lane % 4;          // positions 8 * jq .. 8 * jq + 7 within each chunk
  float acc[N];
#pragma unroll
  for (int j = 0; j < N; ++j) acc[j] = 0.0f;

  for (int sb = lane / 8; sb < blocks_per_row; sb += 4) {
    const uint8_t* b = wr + static_cast<size_t>(sb) * 210;
    uint8_t ql_a[8], ql_b[8], qh[8];
    load_bytes8(b + 64 * half + 8 * jq, ql_a);
    load_bytes8(b + 64 * half + 32 + 8 * jq, ql_b);
    load_bytes8(b + 128 + 32 * half + 8 * jq, qh);
    const auto* scales = reinterpret_cast<const int8_t*>(b + 192);
    const float d = half_bits_to_float(*reinterpret_cast<const uint16_t*>(b + 208));
    float wv[4][8];
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int c = 4 * half + q;
      const float ds = d * static_cast<float>(scales[2 * c + (8 * jq) / 16]);
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const uint8_t low_byte = (q % 2) ? ql_b[e] : ql_a[e];
        const int low = q < 2 ? (low_byte & 15) : (low_byte >> 4);
        const int value = low | (((qh[e] >> (2 * q)) & 3) << 4);
        wv[q][e] = round_to_half(ds * static_cast<float>(value - 32));
      }
    }
#pragma unroll
    for (int j = 0; j < N; ++j) {
      if (j < n) {
        const __half* xr = x + static_cast<size_t>(j) * cols + sb * 256 + 128 * half + 8 * jq;
        float s = 0.0f;
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          float xv[8];
          load_x8(xr + 32 * q, xv);
#pragma unroll
          for (int e = 0; e < 8; ++e) s = fmaf(wv[q][e], xv[e], s);
        }
        acc[j] += s;
      }
    }
  }
  store_warp_sums(acc, n, lane, y, rows, row);
}

}  // namespace

bool matvec_kquant(uint32_t type, const void* w, size_t row_bytes, int64_t rows, int64_t cols, const uint16_t* x,
                   int n, float* y, cudaStream_t stream) {
  const bool q4 = type == static_cast<uint32_t>(QuantType::Q4_K);
  const bool q6 = type == static_cast<uint32_t>(QuantType::Q6_K);
  if (!q4 && !q6) return false;
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* xh = reinterpret_cast<const __half*>(x);
  const int blocks = static_cast<int>(cols / 256);
  const unsigned grid = static_cast<unsigned>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock);
  for (int j0 = 0; j0 < n; j0 += 8) {
    const int m = n - j0 < 8 ? n - j0 : 8;
    const __half* xj = xh + static_cast<size_t>(j0) * cols;
    float* yj = y + static_cast<size_t>(j0) * rows;
    const int r = static_cast<int>(rows), c = static_cast<int>(cols);
    if (q4) {
      if (m == 1) matvec_q4_k<1><<<grid, kWarpsPerBlock * 32, 0, stream>>>(wb, row_bytes, r, blocks, xj, m, c, yj);
      else if (m <= 4) matvec_q4_k<4><<<grid, kWarpsPerBlock * 32, 0, stream>>>(wb, row_bytes, r, blocks, xj, m, c, yj);
      else matvec_q4_k<8><<<grid, kWarpsPerBlock * 32, 0, stream>>>(wb, row_bytes, r, blocks, xj, m, c, yj);
    } else {
      if (m == 1) matvec_q6_k<1><<<grid, kWarpsPerBlock * 32, 0, stream>>>(wb, row_bytes, r, blocks, xj, m, c, yj);
      else if (m <= 4) matvec_q6_k<4><<<grid, kWarpsPerBlock * 32, 0, stream>>>(wb, row_bytes, r, blocks, xj, m, c, yj);
      else matvec_q6_k<8><<<grid, kWarpsPerBlock * 32, 0, stream>>>(wb, row_bytes, r, blocks, xj, m, c, yj);
    }
  }
  return true;
}

}  // namespace pensieve::backend::cuda
