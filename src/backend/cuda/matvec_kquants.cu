// Faster products for the two K-quant formats of Q4_K_M files (Q4_K and Q6_K), for batches of up to sixteen
// activation rows, on the tensor cores (see the tile kernels below for the layout).
// A weight is decoded in half precision, two at a time: the sub-block's scale (and min) rounded to f16 once,
// then one f16 fma per pair (Q4_K: scale * q - min; Q6_K: scale * (q - 32)), the 4- or 6-bit values made
// halves by OR-ing them into the mantissa of 1024. The f16 copies the GEMM path reads are decoded by the same
// functions (dequantize_kquant_f16 below), so both paths multiply the very same f16 weights, sum exact f16
// products in f32, and a sequence's result does not depend on which path its batch took, up to the order of
// the sums.
#include <cuda_fp16.h>

#include "backend/cuda/kernels.h"
#include "backend/cuda/quant_chunks.h"

namespace pensieve::backend::cuda {
namespace {

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

// The product as tensor-core tiles: a block takes 16 weight rows and up to 16 activation rows (NT tiles of 8);
// its warps split the row's super-blocks and add their tiles in shared memory, in a fixed order. The sum over
// k does not care which k goes to which slot of the tile, so each lane decodes 64 elements of one super-block
// that sit together in the quantized bytes, for its two rows alike, and fetches the activations of those same
// columns: a pair of weights comes from bytes j and j + 2 of a word (one shift, one mask), and the matching
// activations are picked out of two loaded words with one byte permute. f16 products summed in f32 on the
// tensor cores: the same numbers as the GEMM path over the f16 copy, and no conversions per weight (the
// conversion pipe, not memory, bounded the earlier warp-per-row kernels at batch 1).

// Sixteen bytes from an address that is only 2-byte aligned (Q6_K super-blocks are 210 bytes), from aligned
// words. The last word read may lie past the sixteen bytes, never past the super-block.
__device__ __forceinline__ void load16_even(const uint8_t* p, uint32_t (&out)[4]) {
  const auto addr = reinterpret_cast<uintptr_t>(p);
  const auto* a = reinterpret_cast<const uint32_t*>(addr & ~uintptr_t{3});
  const auto shift = static_cast<uint32_t>(addr & 3) * 8;
  uint32_t r[5];
#pragma unroll
  for (int i = 0; i < 5; ++i) r[i] = a[i];
#pragma unroll
  for (int i = 0; i < 4; ++i) out[i] = __funnelshift_r(r[i], r[i + 1], shift);
}

// The activations of one lane's 64 columns, as 32 words of two halves (word k: columns 2k, 2k + 1 of the
// lane's list), for activation row `j` (zeros past the last row). `run` gives the first column of each
// 16-column run the lane covers.
template <typename Run>
__device__ __forceinline__ void load_x64(const __half* __restrict__ x, int j, int n, int cols, Run run,
                                         uint32_t (&out)[32]) {
  if (j >= n) {
#pragma unroll
    for (int i = 0; i < 32; ++i) out[i] = 0;
    return;
  }
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const auto* p = reinterpret_cast<const uint4*>(x + static_cast<size_t>(j) * cols + run(r));
    const uint4 u = p[0], v = p[1];
    out[8 * r + 0] = u.x, out[8 * r + 1] = u.y, out[8 * r + 2] = u.z, out[8 * r + 3] = u.w;
    out[8 * r + 4] = v.x, out[8 * r + 5] = v.y, out[8 * r + 6] = v.z, out[8 * r + 7] = v.w;
  }
}

// Activation words 2m and 2m + 1 of run r hold columns 4m .. 4m + 3 of the run; the weight pairs are
// (4m, 4m + 2) and (4m + 1, 4m + 3).
__device__ __forceinline__ void x_pairs(const uint32_t (&xw)[32], int r, int m, uint32_t& even, uint32_t& odd) {
  even = __byte_perm(xw[8 * r + 2 * m], xw[8 * r + 2 * m + 1], 0x5410);
  odd = __byte_perm(xw[8 * r + 2 * m], xw[8 * r + 2 * m + 1], 0x7632);
}

// One 16 x 16 slice of decoded weights times every activation tile, at words 2m, 2m + 1 of run r.
template <int NT>
__device__ __forceinline__ void multiply_tiles(float (&acc)[NT][4], const uint32_t (&a)[4],
                                               const uint32_t (&xw)[NT][32], int r, int m) {
#pragma unroll
  for (int j = 0; j < NT; ++j) {
    uint32_t even, odd;
    x_pairs(xw[j], r, m, even, odd);
    mma_16x8x16(acc[j], a, even, odd);
  }
}

// The warps' tiles added in warp order, and rows g, g + 8 of each activation tile written to y[j][rows].
template <int NT, int W>
__device__ __forceinline__ void store_tiles(float (&acc)[NT][4], int n, int rows, int row0, float* __restrict__ y) {
  __shared__ float part[W - 1][NT * 4][32];
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  if (warp > 0) {
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int i = 0; i < 4; ++i) part[warp - 1][4 * j + i][lane] = acc[j][i];
  }
  __syncthreads();
  if (warp != 0) return;
  const int g = lane / 4, t = lane % 4;
#pragma unroll
  for (int j = 0; j < NT; ++j) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float v = acc[j][i];
#pragma unroll
      for (int w = 0; w < W - 1; ++w) v += part[w][4 * j + i][lane];
      const int row = row0 + g + 8 * (i / 2), col = 8 * j + 2 * t + i % 2;
      if (row < rows && col < n) y[static_cast<size_t>(col) * rows + row] = v;
    }
  }
}

// k4_scale_min for packed bytes held in three words (bytes 0-3, 4-7, 8-11): a dynamic index into a local
// array would put it in local memory.
__device__ __forceinline__ void k4_scale_min_words(uint32_t w0, uint32_t w1, uint32_t w2, int group, int& scale,
                                                   int& min) {
  const int shift = 8 * (group % 4);
  const int b0 = static_cast<int>((w0 >> shift) & 0xff), b1 = static_cast<int>((w1 >> shift) & 0xff);
  if (group < 4) {
    scale = b0 & 63;
    min = b1 & 63;
  } else {
    const int b2 = static_cast<int>((w2 >> shift) & 0xff);
    scale = (b2 & 15) | ((b0 >> 6) << 4);
    min = (b2 >> 4) | ((b1 >> 6) << 4);
  }
}

// Q4_K: lane t takes quant bytes 16t .. 16t + 15 and 64 + 16t .. 64 + 16t + 15, so that one load instruction
// of the warp reads 64 contiguous bytes of each of its rows (lanes 32 bytes apart left half of every sector
// unread, and the L1 traffic, not DRAM, bounded the kernel). Byte j holds elements 64 (j / 32) + j % 32 (low
// nibble, sub-block 2 (j / 32)) and 32 further (high nibble, the next sub-block): the lane's four runs of 16
// columns. A warp loads its next super-block's bytes before it decodes the current one.
struct Q4kBytes {
  uint4 head, qa, qb;
  __device__ void load(const uint8_t* b, int t) {
    head = *reinterpret_cast<const uint4*>(b);
    qa = *reinterpret_cast<const uint4*>(b + 16 + 16 * t);
    qb = *reinterpret_cast<const uint4*>(b + 80 + 16 * t);
  }
};

// Run r of lane t: 0, 1 from qa (low, high nibbles), 2, 3 from qb.
__device__ __forceinline__ int q4k_run_column(int t, int r) {
  return 128 * (r / 2) + 64 * (t / 2) + 16 * (t % 2) + 32 * (r % 2);
}

template <int NT, int W>
__global__ void __launch_bounds__(W * 32)
    matvec_q4_k(const uint8_t* __restrict__ w, size_t row_bytes, int rows, int blocks_per_row,
                const __half* __restrict__ x, int n, int cols, float* __restrict__ y) {
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane / 4, t = lane % 4;
  const int row0 = static_cast<int>(blockIdx.x) * 16;
  const uint8_t* rows_at[2] = {w + static_cast<size_t>(min(row0 + g, rows - 1)) * row_bytes,
                               w + static_cast<size_t>(min(row0 + g + 8, rows - 1)) * row_bytes};
  float acc[NT][4] = {};
  Q4kBytes next[2];
  if (warp < blocks_per_row) {
    for (int r = 0; r < 2; ++r) next[r].load(rows_at[r] + static_cast<size_t>(warp) * 144, t);
  }

  for (int sb = warp; sb < blocks_per_row; sb += W) {
    const Q4kBytes cur[2] = {next[0], next[1]};
    if (sb + W < blocks_per_row) {
#pragma unroll
      for (int r = 0; r < 2; ++r) next[r].load(rows_at[r] + static_cast<size_t>(sb + W) * 144, t);
    }
    uint32_t xw[NT][32];
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      load_x64(x, 8 * j + g, n, cols, [&](int r) { return sb * 256 + q4k_run_column(t, r); }, xw[j]);
    }
    uint32_t q[2][8];
    Q4kHalfScale scale[2][4] = {{Q4kHalfScale(0, 0, 0, 0), Q4kHalfScale(0, 0, 0, 0), Q4kHalfScale(0, 0, 0, 0),
                                 Q4kHalfScale(0, 0, 0, 0)},
                                {Q4kHalfScale(0, 0, 0, 0), Q4kHalfScale(0, 0, 0, 0), Q4kHalfScale(0, 0, 0, 0),
                                 Q4kHalfScale(0, 0, 0, 0)}};
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const uint4 head = cur[r].head, qa = cur[r].qa, qb = cur[r].qb;
      q[r][0] = qa.x, q[r][1] = qa.y, q[r][2] = qa.z, q[r][3] = qa.w;
      q[r][4] = qb.x, q[r][5] = qb.y, q[r][6] = qb.z, q[r][7] = qb.w;
      const float d = half_bits_to_float(head.x & 0xffff), dmin = half_bits_to_float(head.x >> 16);
#pragma unroll
      for (int run = 0; run < 4; ++run) {
        int sc, m;
        k4_scale_min_words(head.y, head.z, head.w, 4 * (run / 2) + 2 * (t / 2) + run % 2, sc, m);
        scale[r][run] = Q4kHalfScale(d, dmin, sc, m);
      }
    }
#pragma unroll
    for (int run = 0; run < 4; ++run) {
      const int shift = 4 * (run % 2);
#pragma unroll
      for (int m = 0; m < 4; ++m) {
        uint32_t a[4];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const uint32_t word = q[r][4 * (run / 2) + m];
          a[r] = half2_bits(scale[r][run].weights((word >> shift) & 0x000f000fu));
          a[2 + r] = half2_bits(scale[r][run].weights((word >> (shift + 8)) & 0x000f000fu));
        }
        multiply_tiles<NT>(acc, a, xw, run, m);
      }
    }
  }
  store_tiles<NT, W>(acc, n, rows, row0, y);
}

// Q6_K: lane t takes half t / 2 of the super-block and in it l = 16 (t % 2) .. + 15 of each of the four
// 32-element quarters: low nibbles from ql[l] (quarters 0 and 2) and ql[l + 32] (1 and 3), two high bits from
// qh[l], one int8 scale per quarter.
template <int NT, int W>
__global__ void __launch_bounds__(W * 32)
    matvec_q6_k(const uint8_t* __restrict__ w, size_t row_bytes, int rows, int blocks_per_row,
                const __half* __restrict__ x, int n, int cols, float* __restrict__ y) {
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane / 4, t = lane % 4;
  const int half = t / 2, l0 = 16 * (t % 2);
  const int row0 = static_cast<int>(blockIdx.x) * 16;
  const uint8_t* rows_at[2] = {w + static_cast<size_t>(min(row0 + g, rows - 1)) * row_bytes,
                               w + static_cast<size_t>(min(row0 + g + 8, rows - 1)) * row_bytes};
  float acc[NT][4] = {};

#pragma unroll 2
  for (int sb = warp; sb < blocks_per_row; sb += W) {
    uint32_t ql_a[2][4], ql_b[2][4], qh[2][4];
    Q6kHalfScale scale[2][4] = {{Q6kHalfScale(0, 0), Q6kHalfScale(0, 0), Q6kHalfScale(0, 0), Q6kHalfScale(0, 0)},
                                {Q6kHalfScale(0, 0), Q6kHalfScale(0, 0), Q6kHalfScale(0, 0), Q6kHalfScale(0, 0)}};
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const uint8_t* b = rows_at[r] + static_cast<size_t>(sb) * 210;
      load16_even(b + 64 * half + l0, ql_a[r]);
      load16_even(b + 64 * half + 32 + l0, ql_b[r]);
      load16_even(b + 128 + 32 * half + l0, qh[r]);
      const float d = half_bits_to_float(*reinterpret_cast<const uint16_t*>(b + 208));
      const auto* sc = reinterpret_cast<const int8_t*>(b + 192 + 8 * half + (t % 2));
#pragma unroll
      for (int k = 0; k < 4; ++k) scale[r][k] = Q6kHalfScale(d, sc[2 * k]);
    }
    uint32_t xw[NT][32];
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      load_x64(x, 8 * j + g, n, cols, [&](int r) { return sb * 256 + 128 * half + 32 * r + l0; }, xw[j]);
    }
#pragma unroll
    for (int quarter = 0; quarter < 4; ++quarter) {
      const int low_shift = quarter < 2 ? 0 : 4, high_shift = 2 * quarter;
#pragma unroll
      for (int m = 0; m < 4; ++m) {
        uint32_t a[4];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const uint32_t low = quarter % 2 ? ql_b[r][m] : ql_a[r][m];
#pragma unroll
          for (int by = 0; by < 2; ++by) {
            const uint32_t bits = ((low >> (low_shift + 8 * by)) & 0x000f000fu) |
                                  (((qh[r][m] >> (high_shift + 8 * by)) << 4) & 0x00300030u);
            a[2 * by + r] = half2_bits(scale[r][quarter].weights(bits));
          }
        }
        multiply_tiles<NT>(acc, a, xw, quarter, m);
      }
    }
  }
  store_tiles<NT, W>(acc, n, rows, row0, y);
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

// Warps per 16-row tile: enough tiles in flight on every multiprocessor, with each warp's share of the row's
// super-blocks as short as that allows (few rows: K and V projections; many: gate and up).
template <typename Launch>
void with_tile_warps(int64_t rows, Launch&& launch) {
  const int64_t tiles = (rows + 15) / 16;
  if (tiles >= 512) launch.template operator()<4>();
  else if (tiles >= 128) launch.template operator()<8>();
  else launch.template operator()<16>();
}

bool matvec_kquant(uint32_t type, const void* w, size_t row_bytes, int64_t rows, int64_t cols, const uint16_t* x,
                   int n, float* y, cudaStream_t stream) {
  const bool q4 = type == static_cast<uint32_t>(QuantType::Q4_K);
  const bool q6 = type == static_cast<uint32_t>(QuantType::Q6_K);
  if (!q4 && !q6) return false;
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* xh = reinterpret_cast<const __half*>(x);
  const int blocks = static_cast<int>(cols / 256);
  const unsigned grid = static_cast<unsigned>((rows + 15) / 16);
  const int r = static_cast<int>(rows), c = static_cast<int>(cols);
  for (int j0 = 0; j0 < n; j0 += 16) {
    const int m = n - j0 < 16 ? n - j0 : 16;
    const __half* xj = xh + static_cast<size_t>(j0) * cols;
    float* yj = y + static_cast<size_t>(j0) * rows;
    with_tile_warps(rows, [&]<int W>() {
      constexpr unsigned threads = W * 32;
      if (q4) {
        if (m <= 8) matvec_q4_k<1, W><<<grid, threads, 0, stream>>>(wb, row_bytes, r, blocks, xj, m, c, yj);
        else matvec_q4_k<2, W><<<grid, threads, 0, stream>>>(wb, row_bytes, r, blocks, xj, m, c, yj);
      } else {
        if (m <= 8) matvec_q6_k<1, W><<<grid, threads, 0, stream>>>(wb, row_bytes, r, blocks, xj, m, c, yj);
        else matvec_q6_k<2, W><<<grid, threads, 0, stream>>>(wb, row_bytes, r, blocks, xj, m, c, yj);
      }
    });
  }
  return true;
}

}  // namespace pensieve::backend::cuda
