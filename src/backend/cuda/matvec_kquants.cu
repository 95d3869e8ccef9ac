// Faster products for the two K-quant formats of Q4_K_M files (Q4_K and Q6_K), for batches of up to eight
// activation rows. One warp per weight row; each lane loads the bytes it decodes straight from global memory
// and decodes sixteen consecutive elements, so the warp's activation reads are contiguous runs (an earlier
// layout gave each lane 64 scattered elements, and its activation reads, not the weights, bounded the kernel:
// ~840 GB/s on an H200).
// A weight is decoded in half precision, two at a time: the sub-block's scale (and min) rounded to f16 once,
// then one f16 fma per pair (Q4_K: scale * q - min; Q6_K: scale * (q - 32)), the 4- or 6-bit values made
// halves by OR-ing them into the mantissa of 1024. Decoding in f32 and rounding each weight to f16 (as
// decode_chunk would) took two conversions per weight on the GPU's slow conversion pipe, and that, not
// memory, bounded batch-1 decode. The f16 copies the GEMM path reads are decoded by the same functions
// (dequantize_kquant_f16 below), so both paths multiply the very same f16 weights and a sequence's result
// does not depend on which path its batch took, up to the order of the sums.
#include <cuda_fp16.h>

#include "backend/cuda/kernels.h"
#include "backend/cuda/quant_chunks.h"
#include "backend/cuda/warp_sums.cuh"

namespace pensieve::backend::cuda {
namespace {

constexpr int kWarpsPerBlock = 4;

__device__ __forceinline__ __half2 bits_to_half2(uint32_t bits) {
  __half2 h;
  memcpy(&h, &bits, 4);
  return h;
}

// Two small unsigned values at bits 0.. and 16.. of `bits` (the rest zero) as halves, minus `offset`:
// 0x6400 is 1024 in f16, whose last mantissa bit is worth 1, so OR-ing in v gives 1024 + v exactly.
__device__ __forceinline__ __half2 small_ints_to_half2(uint32_t bits, __half2 offset) {
  return __hsub2(bits_to_half2(bits | 0x64006400u), offset);
}

// Q4_K: the f16 weights of a sub-block are fma(scale, q, -min) in f16 with both rounded to f16 first.
struct Q4kHalfScale {
  __half2 scale, neg_min;
  __device__ Q4kHalfScale(float d, float dmin, int sc, int m)
      : scale(__half2half2(__float2half_rn(d * static_cast<float>(sc)))),
        neg_min(__half2half2(__float2half_rn(-(dmin * static_cast<float>(m))))) {}
  // Two 4-bit values at bits 0..3 and 16..19.
  __device__ __half2 weights(uint32_t pair) const {
    return __hfma2(scale, small_ints_to_half2(pair, __half2half2(__ushort_as_half(0x6400))), neg_min);
  }
};

// Q6_K: scale * (q - 32), the scale (d times the int8 sub-scale) rounded to f16 first.
struct Q6kHalfScale {
  __half2 scale;
  __device__ Q6kHalfScale(float d, int sc) : scale(__half2half2(__float2half_rn(d * static_cast<float>(sc)))) {}
  // Two 6-bit values at bits 0..5 and 16..21.
  __device__ __half2 weights(uint32_t pair) const {
    return __hmul2(scale, small_ints_to_half2(pair, __half2half2(__ushort_as_half(0x6420))));  // 1024 + 32
  }
};

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

// Sixteen bytes as four little-endian words from an address that is only 2-byte aligned (Q6_K super-blocks
// are 210 bytes).
__device__ __forceinline__ void load_words4(const uint8_t* p, uint32_t (&out)[4]) {
  const auto* h = reinterpret_cast<const uint16_t*>(p);
#pragma unroll
  for (int i = 0; i < 4; ++i) out[i] = static_cast<uint32_t>(h[2 * i]) | (static_cast<uint32_t>(h[2 * i + 1]) << 16);
}

template <int N>
__device__ __forceinline__ void accumulate16(const float (&wv)[16], const __half* __restrict__ x, int n, int cols,
                                             int base, float (&acc)[N]) {
#pragma unroll
  for (int j = 0; j < N; ++j) {
    if (j < n) {
      float xa[8], xb[8];
      load_x8(x + static_cast<size_t>(j) * cols + base, xa);
      load_x8(x + static_cast<size_t>(j) * cols + base + 8, xb);
      float s = 0.0f;
#pragma unroll
      for (int e = 0; e < 8; ++e) s = fmaf(wv[e], xa[e], fmaf(wv[8 + e], xb[e], s));
      acc[j] += s;
    }
  }
}

// Four words of packed small values (element 4i + k in byte k of word i) as sixteen weights: pairs (4i, 4i+2)
// come from bits 0.. and 16.., pairs (4i+1, 4i+3) from bits 8.. and 24.. (`pair_of` builds one pair's bits
// from a word shifted right by 0 or 8).
template <typename Decode, typename PairOf>
__device__ __forceinline__ void weights16(const Decode& decode, PairOf pair_of, float (&wv)[16]) {
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 a = __half22float2(decode.weights(pair_of(i, 0)));
    const float2 b = __half22float2(decode.weights(pair_of(i, 8)));
    wv[4 * i] = a.x, wv[4 * i + 2] = a.y, wv[4 * i + 1] = b.x, wv[4 * i + 3] = b.y;
  }
}

// One warp per weight row, two super-blocks per step: lane l takes super-block l / 16 of the pair and, in it,
// sixteen consecutive elements (chunk (l % 16) / 2, half l % 2), so the half-warp reads its 256 activations as
// one contiguous 512-byte run.
template <int N>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    matvec_q4_k(const uint8_t* __restrict__ w, size_t row_bytes, int rows, int blocks_per_row,
                const __half* __restrict__ x, int n, int cols, float* __restrict__ y) {
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int row = static_cast<int>(blockIdx.x) * kWarpsPerBlock + warp;
  if (row >= rows) return;
  const uint8_t* wr = w + static_cast<size_t>(row) * row_bytes;
  const int c = (lane % 16) / 2, part = lane % 2;
  const int shift = 4 * (c % 2);  // chunks 2k and 2k + 1 share bytes: low and high nibbles
  float acc[N];
#pragma unroll
  for (int j = 0; j < N; ++j) acc[j] = 0.0f;

#pragma unroll 4
  for (int sb = lane / 16; sb < blocks_per_row; sb += 2) {
    const uint8_t* b = wr + static_cast<size_t>(sb) * 144;
    const uint4 q = *reinterpret_cast<const uint4*>(b + 16 + 32 * (c / 2) + 16 * part);
    const uint32_t packed_scales[3] = {*reinterpret_cast<const uint32_t*>(b + 4),
                                       *reinterpret_cast<const uint32_t*>(b + 8),
                                       *reinterpret_cast<const uint32_t*>(b + 12)};
    const uint32_t dd = *reinterpret_cast<const uint32_t*>(b);
    int sc, m;
    k4_scale_min(reinterpret_cast<const uint8_t*>(packed_scales), c, sc, m);
    const Q4kHalfScale decode(half_bits_to_float(dd & 0xffff), half_bits_to_float(dd >> 16), sc, m);
    const uint32_t words[4] = {q.x, q.y, q.z, q.w};
    float wv[16];
    weights16(decode, [&](int i, int by) { return ((words[i] >> shift) >> by) & 0x000f000fu; }, wv);
    accumulate16<N>(wv, x, n, cols, sb * 256 + 32 * c + 16 * part, acc);
  }
  store_warp_sums(acc, n, lane, y, rows, row);
}

// Q6_K, laid out as matvec_q4_k: lane l takes sixteen consecutive elements of chunk (l % 16) / 2 of super-block
// l / 16 of the pair; their low nibbles, high bits and scale (one per 16 elements) are the lane's alone.
template <int N>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    matvec_q6_k(const uint8_t* __restrict__ w, size_t row_bytes, int rows, int blocks_per_row,
                const __half* __restrict__ x, int n, int cols, float* __restrict__ y) {
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int row = static_cast<int>(blockIdx.x) * kWarpsPerBlock + warp;
  if (row >= rows) return;
  const uint8_t* wr = w + static_cast<size_t>(row) * row_bytes;
  const int c = (lane % 16) / 2, part = lane % 2;
  const int low_shift = (c % 4) < 2 ? 0 : 4, high_shift = 2 * (c % 4);
  float acc[N];
#pragma unroll
  for (int j = 0; j < N; ++j) acc[j] = 0.0f;

#pragma unroll 4
  for (int sb = lane / 16; sb < blocks_per_row; sb += 2) {
    const uint8_t* b = wr + static_cast<size_t>(sb) * 210;
    uint32_t ql[4], qh[4];
    load_words4(b + 64 * (c / 4) + 32 * (c % 2) + 16 * part, ql);
    load_words4(b + 128 + 32 * (c / 4) + 16 * part, qh);
    const Q6kHalfScale decode(half_bits_to_float(*reinterpret_cast<const uint16_t*>(b + 208)),
                              reinterpret_cast<const int8_t*>(b + 192)[2 * c + part]);
    float wv[16];
    weights16(decode, [&](int i, int by) {
      const uint32_t low = (ql[i] >> low_shift) >> by, high = ((qh[i] >> high_shift) >> by) << 4;
      return (low & 0x000f000fu) | (high & 0x00300030u);
    }, wv);
    accumulate16<N>(wv, x, n, cols, sb * 256 + 32 * c + 16 * part, acc);
  }
  store_warp_sums(acc, n, lane, y, rows, row);
}

// The f16 copy of a Q4_K or Q6_K matrix for the GEMM path, decoded by the same half-precision functions as
// the kernels above: one thread per 32-element chunk (k4 chunk c: nibbles (c % 2) of bytes 32 (c / 2)..;
// Q6_K chunk c: see decode_chunk).
template <QuantType T>
__global__ void dequantize_kquant_f16_kernel(const uint8_t* __restrict__ w, size_t row_bytes, int64_t rows,
                                             int chunks_per_row, __half* __restrict__ out) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= rows * chunks_per_row) return;
  const int64_t row = idx / chunks_per_row;
  const int chunk = static_cast<int>(idx % chunks_per_row);
  const int c = chunk % 8;
  __align__(16) __half2 h[16];  // element e of the chunk at h[e / 2], low half for even e
  if constexpr (T == QuantType::Q4_K) {
    const uint8_t* b = w + static_cast<size_t>(row) * row_bytes + static_cast<size_t>(chunk / 8) * 144;
    int sc, m;
    k4_scale_min(b + 4, c, sc, m);
    const Q4kHalfScale s(half_bits_to_float(load_u16(b)), half_bits_to_float(load_u16(b + 2)), sc, m);
    const uint8_t* qs = b + 16 + 32 * (c / 2);
    const int shift = 4 * (c % 2);
    for (int e = 0; e < 32; e += 2) {
      const uint32_t pair = ((qs[e] >> shift) & 15u) | (((qs[e + 1] >> shift) & 15u) << 16);
      h[e / 2] = s.weights(pair);
    }
  } else {
    const uint8_t* b = w + static_cast<size_t>(row) * row_bytes + static_cast<size_t>(chunk / 8) * 210;
    const uint8_t* ql = b + 64 * (c / 4) + 32 * (c % 2);
    const uint8_t* qh = b + 128 + 32 * (c / 4);
    const auto* scales = reinterpret_cast<const int8_t*>(b + 192);
    const float d = half_bits_to_float(load_u16(b + 208));
    const int low_shift = (c % 4) < 2 ? 0 : 4, high_shift = 2 * (c % 4);
    for (int e = 0; e < 32; e += 2) {
      const Q6kHalfScale s(d, scales[2 * c + e / 16]);
      const auto value = [&](int j) { return ((ql[j] >> low_shift) & 15u) | (((qh[j] >> high_shift) & 3u) << 4); };
      h[e / 2] = s.weights(value(e) | (value(e + 1) << 16));
    }
  }
  auto* dst = reinterpret_cast<uint4*>(out + static_cast<size_t>(row) * chunks_per_row * 32 + chunk * 32);
  const auto* src = reinterpret_cast<const uint4*>(h);
#pragma unroll
  for (int q = 0; q < 4; ++q) dst[q] = src[q];
}

}  // namespace

bool dequantize_kquant_f16(uint32_t type, const void* w, size_t row_bytes, int64_t rows, int64_t cols, uint16_t* out,
                           cudaStream_t stream) {
  const int cpr = static_cast<int>(cols / 32);
  const int64_t threads = rows * cpr;
  const auto grid = static_cast<unsigned>((threads + 255) / 256);
  const auto* wb = static_cast<const uint8_t*>(w);
  auto* oh = reinterpret_cast<__half*>(out);
  if (type == static_cast<uint32_t>(QuantType::Q4_K)) {
    dequantize_kquant_f16_kernel<QuantType::Q4_K><<<grid, 256, 0, stream>>>(wb, row_bytes, rows, cpr, oh);
  } else if (type == static_cast<uint32_t>(QuantType::Q6_K)) {
    dequantize_kquant_f16_kernel<QuantType::Q6_K><<<grid, 256, 0, stream>>>(wb, row_bytes, rows, cpr, oh);
  } else {
    return false;
  }
  return true;
}

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
