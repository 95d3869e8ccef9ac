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
#include "backend/cuda/overlapped_launch.cuh"
#include "backend/cuda/quant_chunks.h"
#include "backend/cuda/tile_mma.cuh"

namespace pensieve::backend::cuda {
namespace {

using tiles::add_chains;
using tiles::bits_to_half2;
using tiles::half2_bits;
using tiles::MatrixParts;
using tiles::mma_16x8x16;
using tiles::store_gated_tiles;
using tiles::store_tiles;

// Two small unsigned values at bits 0.. and 16.. of `bits` (the rest zero) as halves, minus `offset`:
// 0x6400 is 1024 in f16, whose last mantissa bit is worth 1, so OR-ing in v gives 1024 + v exactly.
__device__ __forceinline__ __half2 small_ints_to_half2(uint32_t bits, __half2 offset) {
  return __hsub2(bits_to_half2(bits | 0x64006400u), offset);
}

// (a & Mask) | c in one LOP3. Written in C++ it becomes two: a LOP3 holds one 32-bit immediate, and the
// compiler keeps both constants as immediates instead of one in a register; at one per weight pair that was
// a seventh of the tile kernels' instructions.
template <uint32_t Mask>
__device__ __forceinline__ uint32_t and_or(uint32_t a, uint32_t c) {
  uint32_t d;
  asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(d) : "r"(a), "n"(Mask), "r"(c));
  return d;
}
constexpr uint32_t kHalf1024Pair = 0x64006400u;

// (v, v) in f16, exactly, for the byte of `word` that `selector` picks (half_pair_selector): the byte and
// 0x64 put side by side make 1024 + v. Scales are made from these with one f16 multiply, no conversion
// instruction: the conversion pipe runs at an eighth of the integer and f16 rate, and turning each sub-block's
// scale and min into f32 and back once bounded the tile kernels as much as the weights did.
__device__ __forceinline__ uint32_t half_pair_selector(uint32_t byte) { return 0x4040u | (byte << 8) | byte; }
__device__ __forceinline__ __half2 byte_to_half2(uint32_t word, uint32_t selector) {
  return __hsub2(bits_to_half2(__byte_perm(word, 0x64u, selector)), __half2half2(__ushort_as_half(0x6400)));
}

// Q4_K: the f16 weights of a sub-block are fma(scale, q, -min) in f16 with both rounded to f16 first. The
// product of two f16 values rounded once is what rounding the exact f32 product gives, so the two
// constructors agree bit for bit.
struct Q4kHalfScale {
  __half2 scale, neg_min;
  Q4kHalfScale() = default;
  __device__ Q4kHalfScale(float d, float dmin, int sc, int m)
      : scale(__half2half2(__float2half_rn(d * static_cast<float>(sc)))),
        neg_min(__half2half2(__float2half_rn(-(dmin * static_cast<float>(m))))) {}
  // d2 = (d, d), neg_dmin2 = (-dmin, -dmin); the 6-bit scale and min are bytes of the two words.
  __device__ Q4kHalfScale(__half2 d2, __half2 neg_dmin2, uint32_t scales, uint32_t mins, uint32_t selector)
      : scale(__hmul2(byte_to_half2(scales, selector), d2)),
        neg_min(__hmul2(byte_to_half2(mins, selector), neg_dmin2)) {}
  // Two 4-bit values at bits 0..3 and 16..19 (the rest of `pair` zero).
  __device__ __half2 weights(uint32_t pair) const {
    return __hfma2(scale, small_ints_to_half2(pair, __half2half2(__ushort_as_half(0x6400))), neg_min);
  }
  // The low nibbles of bytes 0 and 2 of `word`; `magic` holds kHalf1024Pair.
  __device__ __half2 low_weights(uint32_t word, uint32_t magic) const {
    const __half2 q = __hsub2(bits_to_half2(and_or<0x000f000fu>(word, magic)), __half2half2(__ushort_as_half(0x6400)));
    return __hfma2(scale, q, neg_min);
  }
  // The high nibbles of bytes 0 and 2: OR-ed in at bit 4 they make 1024 + 16 q, and q = that / 16 - 64
  // exactly (no shift needed).
  __device__ __half2 high_weights(uint32_t word, uint32_t magic) const {
    const __half2 q = __hfma2(bits_to_half2(and_or<0x00f000f0u>(word, magic)),
                              __half2half2(__ushort_as_half(0x2c00)),   // 1/16
                              __half2half2(__ushort_as_half(0xd400)));  // -64
    return __hfma2(scale, q, neg_min);
  }
};

// Q6_K: scale * (q - 32), the scale (d times the int8 sub-scale) rounded to f16 first.
struct Q6kHalfScale {
  __half2 scale;
  Q6kHalfScale() = default;
  __device__ Q6kHalfScale(float d, int sc) : scale(__half2half2(__float2half_rn(d * static_cast<float>(sc)))) {}
  // The int8 sub-scale is a byte of `biased` (the scales with 0x80 added to each byte: v + 128 unsigned), and
  // 128 (0x5800) comes off exactly.
  __device__ Q6kHalfScale(__half2 d2, uint32_t biased, uint32_t selector)
      : scale(__hmul2(__hsub2(byte_to_half2(biased, selector), __half2half2(__ushort_as_half(0x5800))), d2)) {}
  // Two 6-bit values at bits 0..5 and 16..21.
  __device__ __half2 weights(uint32_t pair) const {
    return __hmul2(scale, small_ints_to_half2(pair, __half2half2(__ushort_as_half(0x6420))));  // 1024 + 32
  }
  // The same with kHalf1024Pair already OR-ed in.
  __device__ __half2 weights_of_halves(uint32_t halves) const {
    return __hmul2(scale, __hsub2(bits_to_half2(halves), __half2half2(__ushort_as_half(0x6420))));
  }
};

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

// Eight bytes from a 2-byte aligned address, from aligned words: a third word only where the address is not
// 4-byte aligned, so nothing past the eight bytes' own word is read.
__device__ __forceinline__ void load8_even(const uint8_t* p, uint32_t (&out)[2]) {
  const auto addr = reinterpret_cast<uintptr_t>(p);
  const auto* a = reinterpret_cast<const uint32_t*>(addr & ~uintptr_t{3});
  const auto shift = static_cast<uint32_t>(addr & 3) * 8;
  const uint32_t r0 = a[0], r1 = a[1], r2 = shift ? a[2] : 0u;
  out[0] = __funnelshift_r(r0, r1, shift);
  out[1] = __funnelshift_r(r1, r2, shift);
}

__device__ __forceinline__ uint16_t load_u16_even(const uint8_t* p) { return *reinterpret_cast<const uint16_t*>(p); }

// The activations of one lane's 64 columns, as 32 words of two halves (word k: columns 2k, 2k + 1 of the
// lane's list), for activation row `j`; past the last row, the last row again: those tile columns are never
// stored, and loading something costs less than zeroing registers each step. `run` gives the first column of
// each 16-column run the lane covers.
template <typename Run>
__device__ __forceinline__ void load_x64(const __half* __restrict__ x, int j, int n, int cols, Run run,
                                         uint32_t (&out)[32]) {
  const int row = min(j, n - 1);
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const auto* p = reinterpret_cast<const uint4*>(x + static_cast<size_t>(row) * cols + run(r));
    const uint4 u = p[0], v = p[1];
    out[8 * r + 0] = u.x, out[8 * r + 1] = u.y, out[8 * r + 2] = u.z, out[8 * r + 3] = u.w;
    out[8 * r + 4] = v.x, out[8 * r + 5] = v.y, out[8 * r + 6] = v.z, out[8 * r + 7] = v.w;
  }
}

// At one activation row (a decode step of one stream) the block copies the row into shared memory first: the
// loop then reads it there each step, where reading it from L1 or L2 each step put that latency on the
// path of every super-block (the weights are fetched a step ahead; the activations were not). Returns where
// the kernel reads its activations. The F16 kernel, whose loads are all a round ahead, reached twice the
// bandwidth of these until they did this.
template <bool kStaged>
__device__ __forceinline__ const __half* stage_activations(const __half* __restrict__ x, int n, int cols) {
  if constexpr (!kStaged) {
    return x;
  } else {
    extern __shared__ uint4 staged_x[];
    const int words = n * cols / 8;
    const auto* src = reinterpret_cast<const uint4*>(x);
    // Each four columns c0 c1 c2 c3 are kept as c0 c2 c1 c3: the two words a weight pair's mma.sync takes
    // (x_pairs) are then one 8-byte load, with no byte permutes.
    for (int i = static_cast<int>(threadIdx.x); i < words; i += static_cast<int>(blockDim.x)) {
      const uint4 v = src[i];
      staged_x[i] = make_uint4(__byte_perm(v.x, v.y, 0x5410), __byte_perm(v.x, v.y, 0x7632),
                               __byte_perm(v.z, v.w, 0x5410), __byte_perm(v.z, v.w, 0x7632));
    }
    __syncthreads();
    return reinterpret_cast<const __half*>(staged_x);
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

// One super-block of the lane's two rows (cur[0], cur[1]: tile rows g and g + 8) times its activations, added
// to acc. kStaged: one activation row, in shared memory in the paired order stage_activations writes.
template <int NT, bool kStaged>
__device__ __forceinline__ void multiply_q4k_superblock(float (&acc)[2][NT][4], const Q4kBytes (&cur)[2],
                                                        const uint32_t (&select)[2], const __half* __restrict__ x,
                                                        int n, int cols, int sb, int g, int t) {
  uint32_t xw[kStaged ? 1 : NT][32];
  if constexpr (!kStaged) {
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      load_x64(x, 8 * j + g, n, cols, [&](int r) { return sb * 256 + q4k_run_column(t, r); }, xw[j]);
    }
  }
  const uint32_t magic = kHalf1024Pair;
  uint32_t q[2][8];
  Q4kHalfScale scale[2][4];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const uint4 head = cur[r].head, qa = cur[r].qa, qb = cur[r].qb;
    q[r][0] = qa.x, q[r][1] = qa.y, q[r][2] = qa.z, q[r][3] = qa.w;
    q[r][4] = qb.x, q[r][5] = qb.y, q[r][6] = qb.z, q[r][7] = qb.w;
    // The eight 6-bit (scale, min) pairs unpacked four at a time, one per byte (see k4_scale_min).
    const uint32_t scales_low = head.y & 0x3f3f3f3fu, mins_low = head.z & 0x3f3f3f3fu;
    const uint32_t scales_high = (head.w & 0x0f0f0f0fu) | ((head.y >> 2) & 0x30303030u);
    const uint32_t mins_high = ((head.w >> 4) & 0x0f0f0f0fu) | ((head.z >> 2) & 0x30303030u);
    const __half2 d2 = bits_to_half2(__byte_perm(head.x, 0, 0x1010));
    const __half2 neg_dmin2 = bits_to_half2(__byte_perm(head.x, 0, 0x3232) ^ 0x80008000u);
    scale[r][0] = Q4kHalfScale(d2, neg_dmin2, scales_low, mins_low, select[0]);
    scale[r][1] = Q4kHalfScale(d2, neg_dmin2, scales_low, mins_low, select[1]);
    scale[r][2] = Q4kHalfScale(d2, neg_dmin2, scales_high, mins_high, select[0]);
    scale[r][3] = Q4kHalfScale(d2, neg_dmin2, scales_high, mins_high, select[1]);
  }
  const __half* row_x = x + static_cast<size_t>(min(g, n - 1)) * cols + sb * 256;
  // Runs 2p (low nibbles) and 2p + 1 (high nibbles) come from the same words: one shift serves both.
#pragma unroll
  for (int p = 0; p < 2; ++p) {
#pragma unroll
    for (int m = 0; m < 4; ++m) {
      uint32_t low[4], high[4];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const uint32_t word = q[r][4 * p + m], next = word >> 8;
        low[r] = half2_bits(scale[r][2 * p].low_weights(word, magic));
        low[2 + r] = half2_bits(scale[r][2 * p].low_weights(next, magic));
        high[r] = half2_bits(scale[r][2 * p + 1].high_weights(word, magic));
        high[2 + r] = half2_bits(scale[r][2 * p + 1].high_weights(next, magic));
      }
      if constexpr (kStaged) {
        // The pair's four columns, already in mma.sync's order: one 8-byte load each.
        const uint2 xl = *reinterpret_cast<const uint2*>(row_x + q4k_run_column(t, 2 * p) + 4 * m);
        const uint2 xh = *reinterpret_cast<const uint2*>(row_x + q4k_run_column(t, 2 * p + 1) + 4 * m);
        mma_16x8x16(acc[0][0], low, xl.x, xl.y);
        mma_16x8x16(acc[1][0], high, xh.x, xh.y);
      } else {
        multiply_tiles<NT>(acc[0], low, xw, 2 * p, m);
        multiply_tiles<NT>(acc[1], high, xw, 2 * p + 1, m);
      }
    }
  }
}

// Q6_K super-blocks are 210 bytes, so in GGUF rows most of them start on an address that is only 2-byte
// aligned: a lane's 16 bytes take five 4-byte loads, and each load instruction of the warp touches eight rows.
// That kept the L1 busier than the memory (19 load instructions a row and super-block). The repacked rows
// hold the same bytes cut into aligned parts: each row's 192 quant bytes (ql, then qh) of every super-block,
// then their 16 int8 scales, then their f16 d, the row padded to 16 bytes. Three 16-byte loads, one 8-byte
// and one 2-byte load then fetch what the 19 did.
size_t q6k_repacked_row_bytes(int64_t cols) { return (static_cast<size_t>(cols / 256) * 210 + 15) / 16 * 16; }

__global__ void repack_q6k_kernel(const uint8_t* __restrict__ w, size_t row_bytes, int64_t rows, int blocks_per_row,
                                  uint8_t* __restrict__ out, size_t out_row_bytes) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= rows * blocks_per_row) return;
  const int64_t row = idx / blocks_per_row;
  const int sb = static_cast<int>(idx % blocks_per_row);
  const uint8_t* src = w + static_cast<size_t>(row) * row_bytes + static_cast<size_t>(sb) * 210;
  uint8_t* dst = out + static_cast<size_t>(row) * out_row_bytes;
  for (int i = 0; i < 192; ++i) dst[static_cast<size_t>(sb) * 192 + i] = src[i];
  for (int i = 0; i < 16; ++i) dst[static_cast<size_t>(blocks_per_row) * 192 + sb * 16 + i] = src[192 + i];
  for (int i = 0; i < 2; ++i) dst[static_cast<size_t>(blocks_per_row) * 208 + sb * 2 + i] = src[208 + i];
}

// Q6_K: lane t takes half t / 2 of the super-block and in it l = 16 (t % 2) .. + 15 of each of the four
// 32-element quarters: low nibbles from ql[l] (quarters 0 and 2) and ql[l + 32] (1 and 3), two high bits from
// qh[l], one int8 scale per quarter. kRepacked: the rows are in the layout above, `row_bytes` apart.
// (The repacked loads are cheap enough that the compiler hoists two super-blocks' worth: without a bound it
// took 156 registers, one block a multiprocessor. 16 warps a multiprocessor caps it at 128; with two
// activation tiles that cap spilled, so those go unbounded.)
template <int NT, int W, bool kRepacked>
__device__ __forceinline__ void q6k_tile(const uint8_t* __restrict__ w, size_t row_bytes, int rows, int row0,
                                         int blocks_per_row, const __half* __restrict__ x, int n, int cols,
                                         float* __restrict__ y) {
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane / 4, t = lane % 4;
  const int half = t / 2, l0 = 16 * (t % 2);
  const uint32_t select[2] = {half_pair_selector(t % 2), half_pair_selector(2 + t % 2)};
  const uint8_t* rows_at[2] = {w + static_cast<size_t>(min(row0 + g, rows - 1)) * row_bytes,
                               w + static_cast<size_t>(min(row0 + g + 8, rows - 1)) * row_bytes};
  float acc[2][NT][4] = {};  // two chains of mma.sync, as in matvec_q4_k
  // The warp's first super-block of its two rows on its way to L2 while the kernel before finishes.
  if (warp < blocks_per_row) {
#pragma unroll
    for (int r = 0; r < 2; ++r) prefetch_l2(rows_at[r] + static_cast<size_t>(warp) * (kRepacked ? 192 : 210) + 64 * t);
  }
  wait_for_prior_kernels();

  const uint32_t magic = kHalf1024Pair;
#pragma unroll 2
  for (int sb = warp; sb < blocks_per_row; sb += W) {
    uint32_t ql_a[2][4], ql_b[2][4], qh[2][4];
    Q6kHalfScale scale[2][4];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      // The half's eight int8 scales (bytes 2k + t % 2 are the lane's), made unsigned, and d as (d, d).
      uint32_t sc[2];
      uint16_t d;
      if constexpr (kRepacked) {
        const uint8_t* q = rows_at[r] + static_cast<size_t>(sb) * 192;
        const auto words = [](uint4 v, uint32_t(&out)[4]) { out[0] = v.x, out[1] = v.y, out[2] = v.z, out[3] = v.w; };
        words(*reinterpret_cast<const uint4*>(q + 64 * half + l0), ql_a[r]);
        words(*reinterpret_cast<const uint4*>(q + 64 * half + 32 + l0), ql_b[r]);
        words(*reinterpret_cast<const uint4*>(q + 128 + 32 * half + l0), qh[r]);
        const uint2 s = *reinterpret_cast<const uint2*>(rows_at[r] + static_cast<size_t>(blocks_per_row) * 192 +
                                                        sb * 16 + 8 * half);
        sc[0] = s.x, sc[1] = s.y;
        d = load_u16_even(rows_at[r] + static_cast<size_t>(blocks_per_row) * 208 + sb * 2);
      } else {
        const uint8_t* b = rows_at[r] + static_cast<size_t>(sb) * 210;
        load16_even(b + 64 * half + l0, ql_a[r]);
        load16_even(b + 64 * half + 32 + l0, ql_b[r]);
        load16_even(b + 128 + 32 * half + l0, qh[r]);
        load8_even(b + 192 + 8 * half, sc);
        d = load_u16_even(b + 208);
      }
      sc[0] ^= 0x80808080u, sc[1] ^= 0x80808080u;
      const __half2 d2 = bits_to_half2(__byte_perm(static_cast<uint32_t>(d), 0, 0x1010));
#pragma unroll
      for (int k = 0; k < 4; ++k) scale[r][k] = Q6kHalfScale(d2, sc[k / 2], select[k % 2]);
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
            const int hs = high_shift + 8 * by;  // the two high bits go to bits 4, 5 of each half
            const uint32_t high_bits = hs >= 4 ? qh[r][m] >> (hs - 4) : qh[r][m] << (4 - hs);
            const uint32_t halves = and_or<0x000f000fu>(low >> (low_shift + 8 * by),
                                                        and_or<0x00300030u>(high_bits, magic));
            a[2 * by + r] = half2_bits(scale[r][quarter].weights_of_halves(halves));
          }
        }
        multiply_tiles<NT>(acc[m % 2], a, xw, quarter, m);
      }
    }
  }
  add_chains<NT>(acc);
  store_tiles<NT, W>(acc[0], n, rows, row0, y);
}

template <int NT, int W, bool kRepacked>
__global__ void __launch_bounds__(W * 32, kRepacked && NT == 1 ? 16 / W : 1)
    matvec_q6_k(const uint8_t* __restrict__ w, size_t row_bytes, int rows, int blocks_per_row,
                const __half* __restrict__ x, int n, int cols, float* __restrict__ y) {
  q6k_tile<NT, W, kRepacked>(w, row_bytes, rows, static_cast<int>(blockIdx.x) * 16, blocks_per_row, x, n, cols, y);
}

// kGated: the two products of a gated feed-forward layer and their SiLU gate in one kernel (see
// store_gated_tiles); the block's 16 tile rows are rows row0 .. row0 + 7 of the gate matrix `w` (tile rows
// g) and the same rows of the up matrix `w_up` (tile rows g + 8), so each lane ends up holding a gate sum and
// its up sum side by side. The weights come a super-block ahead, through registers.
// The largest matrices at one to eight rows (four warps a tile, activations staged) are held to five blocks a
// multiprocessor, 96 registers, where the compiler took 117 for four: 8B Q4_K_M at one stream went from 395
// to 404-410 tok/s. Six blocks (80 registers) spilled and measured 368, as did three for eight-warp tiles.
// kWithQ6: some of the parts are repacked Q6_K matrices, whose blocks take q6k_tile (held to 16 warps a
// multiprocessor, as its own kernel is): V on the half of a Q4_K_M file's layers that give it more bits, which
// was a launch of its own. At one stream 8B went from 428-430 to 434-440 tok/s, 1B from 1402-1417 to
// 1438-1465.
template <int NT, int W, bool kStaged, bool kGated, bool kWithQ6 = false>
__global__ void __launch_bounds__(W * 32, kWithQ6 ? 16 / W : (W <= 4 && kStaged ? 20 / W : 1))
    matvec_q4_k(MatrixParts parts, const uint8_t* __restrict__ w_up, int blocks_per_row,
                const __half* __restrict__ x_global, int n, int cols, __half* __restrict__ y_f16) {
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane / 4, t = lane % 4;
  const MatrixParts::Part part = parts.of_block(static_cast<int>(blockIdx.x));
  if constexpr (kWithQ6) {
    if (part.q6k) {  // the whole block's branch
      q6k_tile<NT, W, true>(part.w, part.row_bytes, part.rows, part.tile * 16, blocks_per_row, x_global, n, cols,
                            part.y);
      return;
    }
  }
  const uint8_t* __restrict__ w = part.w;
  float* __restrict__ y = part.y;
  const size_t row_bytes = part.row_bytes;
  const int rows = part.rows;
  const int row0 = part.tile * (kGated ? 8 : 16);
  const uint8_t* rows_at[2] = {
      w + static_cast<size_t>(min(row0 + g, rows - 1)) * row_bytes,
      kGated ? w_up + static_cast<size_t>(min(row0 + g, rows - 1)) * row_bytes
             : w + static_cast<size_t>(min(row0 + g + 8, rows - 1)) * row_bytes};
  // Two accumulators, for the low- and high-nibble runs: each mma.sync waits for the one before it on the same
  // accumulator, and one chain of sixteen per super-block kept the tensor pipe's latency in the way.
  float acc[2][NT][4] = {};
  // The lane's sub-blocks are 2 (t / 2) and the next, and 4 further: bytes 2 (t / 2) and 2 (t / 2) + 1 of
  // the unpacked words.
  const uint32_t select[2] = {half_pair_selector(2 * (t / 2)), half_pair_selector(2 * (t / 2) + 1)};
  Q4kBytes next[2];
  if (warp < blocks_per_row) {
    for (int r = 0; r < 2; ++r) next[r].load(rows_at[r] + static_cast<size_t>(warp) * 144, t);
  }
  wait_for_prior_kernels();  // the weights are in flight; the activations are the kernel before's output
  const __half* __restrict__ x = stage_activations<kStaged>(x_global, n, cols);

  for (int sb = warp; sb < blocks_per_row; sb += W) {
    const Q4kBytes cur[2] = {next[0], next[1]};
    if (sb + W < blocks_per_row) {
#pragma unroll
      for (int r = 0; r < 2; ++r) next[r].load(rows_at[r] + static_cast<size_t>(sb + W) * 144, t);
    }
    multiply_q4k_superblock<NT, kStaged>(acc, cur, select, x, n, cols, sb, g, t);
  }
  add_chains<NT>(acc);
  if constexpr (kGated) {
    store_gated_tiles<NT, W>(acc[0], n, rows, row0, y, y_f16);
  } else {
    store_tiles<NT, W>(acc[0], n, rows, row0, y);
  }
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

constexpr size_t kMaxSharedBytes = 48 * 1024;  // a block's shared memory without opting in to more

// The Q4_K kernel's shared memory for its activations (see stage_activations): 0 where n rows of `cols` do not
// fit the default 48 KB beside its own (store_tiles) for W warps, or for more than one activation tile.
size_t staged_activation_bytes(int n, int64_t cols, int warps) {
  const size_t bytes = static_cast<size_t>(n) * static_cast<size_t>(cols) * 2;
  return n <= 8 && bytes + tiles::store_tiles_bytes(1, warps) <= kMaxSharedBytes ? bytes : 0;
}

size_t kquant_repacked_row_bytes(uint32_t type, int64_t cols) {
  return type == static_cast<uint32_t>(QuantType::Q6_K) ? q6k_repacked_row_bytes(cols) : 0;
}

void repack_kquant(uint32_t type, const void* w, size_t row_bytes, int64_t rows, int64_t cols, void* out,
                   cudaStream_t stream) {
  if (type != static_cast<uint32_t>(QuantType::Q6_K)) return;
  const int bpr = static_cast<int>(cols / 256);
  const int64_t threads = rows * bpr;
  repack_q6k_kernel<<<static_cast<unsigned>((threads + 255) / 256), 256, 0, stream>>>(
      static_cast<const uint8_t*>(w), row_bytes, rows, bpr, static_cast<uint8_t*>(out), q6k_repacked_row_bytes(cols));
}

bool matvec_kquant(uint32_t type, const void* w, size_t row_bytes, int64_t rows, int64_t cols, const uint16_t* x,
                   int n, float* y, const void* repacked, cudaStream_t stream) {
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
    // Q4_K activations go through shared memory where they fit the default 48 KB beside the kernel's own
    // (store_tiles) shared memory: a row of up to 20k columns. Q6_K's kernel, which fetches no weights ahead,
    // measured slower with them there.
    tiles::with_tile_warps<true>(rows, [&]<int W>() {
      constexpr unsigned threads = W * 32;
      const size_t smem = q4 ? staged_activation_bytes(m, cols, W) : 0;
      const bool staged = smem != 0;
      if (q4) {
        const auto kernel = staged   ? matvec_q4_k<1, W, true, false>
                            : m <= 8 ? matvec_q4_k<1, W, false, false>
                                     : matvec_q4_k<2, W, false, false>;
        launch_overlapped(kernel, grid, threads, smem, stream, MatrixParts::one(wb, row_bytes, yj, r), wb, blocks, xj,
                          m, c, static_cast<__half*>(nullptr));
      } else {
        if (repacked != nullptr) {
          const auto kernel = m <= 8 ? matvec_q6_k<1, W, true> : matvec_q6_k<2, W, true>;
          launch_overlapped(kernel, grid, threads, 0, stream, static_cast<const uint8_t*>(repacked),
                            q6k_repacked_row_bytes(cols), r, blocks, xj, m, c, yj);
        } else {
          const auto kernel = m <= 8 ? matvec_q6_k<1, W, false> : matvec_q6_k<2, W, false>;
          launch_overlapped(kernel, grid, threads, 0, stream, wb, row_bytes, r, blocks, xj, m, c, yj);
        }
      }
    }, blocks);
  }
  return true;
}

bool gated_matvec_kquant(uint32_t type, const void* w_gate, const void* w_up, size_t row_bytes, int64_t rows,
                         int64_t cols, const uint16_t* x, int n, float* gate, uint16_t* gate_f16,
                         cudaStream_t stream) {
  if (type != static_cast<uint32_t>(QuantType::Q4_K) || n < 1 || n > 8) return false;
  const unsigned grid = static_cast<unsigned>((rows + 7) / 8);
  tiles::with_tile_warps<true>(2 * rows, [&]<int W>() {
    const size_t smem = staged_activation_bytes(n, cols, W);
    const bool staged = smem != 0;
    const auto kernel = staged ? matvec_q4_k<1, W, true, true> : matvec_q4_k<1, W, false, true>;
    launch_overlapped(kernel, grid, W * 32, smem, stream,
                      MatrixParts::one(w_gate, row_bytes, gate, rows), static_cast<const uint8_t*>(w_up),
                      static_cast<int>(cols / 256),
                      reinterpret_cast<const __half*>(x), n, static_cast<int>(cols),
                      reinterpret_cast<__half*>(gate_f16));
  }, cols / 256);
  return true;
}

bool matvec_kquant_same_input(std::span<const SameInputProduct> products, int64_t cols, const uint16_t* x, int n,
                              cudaStream_t stream) {
  if (n < 1 || n > 8 || products.empty() || products.size() > MatrixParts::kMax) return false;
  const auto parts = MatrixParts::of(products);
  const int tiles = parts.tiles();
  tiles::with_tile_warps(static_cast<int64_t>(tiles) * 16, [&]<int W>() {
    const size_t smem = staged_activation_bytes(n, cols, W);
    const bool staged = smem != 0;
    const auto kernel = parts.any_q6k() ? (staged ? matvec_q4_k<1, W, true, false, true>
                                                  : matvec_q4_k<1, W, false, false, true>)
                                        : (staged ? matvec_q4_k<1, W, true, false> : matvec_q4_k<1, W, false, false>);
    launch_overlapped(kernel, static_cast<unsigned>(tiles), W * 32, smem, stream, parts, parts.w[0],
                      static_cast<int>(cols / 256), reinterpret_cast<const __half*>(x), n, static_cast<int>(cols),
                      static_cast<__half*>(nullptr));
  });
  return true;
}

}  // namespace pensieve::backend::cuda
