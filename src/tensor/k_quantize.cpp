// Q4_K and Q6_K quantizers.
//
// Both formats store, per group, a scale (Q4_K also a min) that is itself quantized against one fp16
// super-block scale. The quality comes from choosing each group's scale well: rounding with the plain
// "largest value maps to the last code" scale wastes much of the grid on outliers. So for each group we try
// a small fan of grid stretches around that plain choice, round the group with each, and for every
// rounding solve the least-squares scale (and offset) that best reproduces the group from those codes; the
// candidate with the smallest squared error wins. Q4_K then polishes with one more round-and-refit step.
// Error is unweighted squared error: without an importance matrix, that is what reconstruction is judged by.
//
// Speed matters (the synth command quantizes whole models), so the inner loops run on 4-lane vectors
// (float4.h).
#include "tensor/k_quantize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "tensor/block_layouts.h"
#include "tensor/dequantize.h"
#include "tensor/float4.h"

namespace pensieve::tensor::detail {

namespace {

// codes[i] = round(x[i] * scale + shift) clamped to 0..top, for n (a multiple of 4) elements.
void store_codes(const float* x, int n, float scale, float shift, float top, uint8_t* codes) {
  for (int i = 0; i < n; i += 4) {
    const Float4 code = round_clamped4(load4(x + i) * splat4(scale) + splat4(shift), top);
    for (int j = 0; j < 4; ++j) codes[i + j] = uint8_t(code[j]);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Q4_K: groups of 32, x ~= scale * q - min, q in 0..15, scale >= 0, min >= 0.

constexpr int kQ4Group = 32;
constexpr int kQ4Levels = 15;
// How far the grid is stretched (in codes) around mapping [lowest, highest] onto [0, 15]. Measured on
// Gaussian data (relative RMSE): 7 points give 0.0711, 11 points 0.0711, a 21-point fan twice as wide
// 0.0709, while the time grows with the count; plain min/max rounding without the search gives about 0.08.
constexpr float kQ4Stretch[] = {-0.9f, -0.6f, -0.3f, 0.0f, 0.3f, 0.6f, 0.9f};

struct AffineFit {
  float scale = 0.0f;
  float offset = 0.0f;  // <= 0: the format subtracts a non-negative min
  float error = std::numeric_limits<float>::infinity();
};

struct GroupStats {
  float sum_x = 0.0f;
  float sum_x2 = 0.0f;
};

// Codes of x on the grid offset + q / inverse_scale, rounded to nearest and clamped to 0..15, and the
// least-squares (scale, offset <= 0) for those codes.
AffineFit fit_q4_codes(const Float4 (&x)[kQ4Group / 4], float offset, float inverse_scale,
                        const GroupStats& stats) {
  const Float4 scale4 = splat4(inverse_scale), shift4 = splat4(-offset * inverse_scale);
  Float4 acc_l{}, acc_l2{}, acc_xl{};
  for (const Float4& v : x) {
    const Float4 l = round_clamped4(v * scale4 + shift4, float(kQ4Levels));
    acc_l += l;
    acc_l2 += l * l;
    acc_xl += v * l;
  }
  const float sum_l = sum4(acc_l), sum_l2 = sum4(acc_l2), sum_xl = sum4(acc_xl);
  const float n = float(kQ4Group);
  AffineFit fit;
  const float det = n * sum_l2 - sum_l * sum_l;
  if (!(sum_l2 > 0.0f)) return fit;  // every code 0: this rounding carries no scale information
  if (det > 0.0f) {
    fit.scale = (n * sum_xl - sum_l * stats.sum_x) / det;
    fit.offset = (stats.sum_x - fit.scale * sum_l) / n;
  }
  // The format cannot add an offset; and when all codes are equal (det == 0, a constant positive group)
  // only the scale can be fitted. Either way: refit with the offset pinned at zero.
  if (det <= 0.0f || fit.offset > 0.0f) {
    fit.offset = 0.0f;
    fit.scale = sum_xl / sum_l2;
  }
  const float a = fit.scale, b = fit.offset;
  fit.error = stats.sum_x2 - 2 * a * sum_xl - 2 * b * stats.sum_x + a * a * sum_l2 + 2 * a * b * sum_l + n * b * b;
  return fit;
}

AffineFit search_q4_group(const float* x) {
  Float4 lanes[kQ4Group / 4];
  for (int i = 0; i < kQ4Group / 4; ++i) lanes[i] = load4(x + 4 * i);
  GroupStats stats;
  float lowest = 0.0f, highest = x[0];
  for (int i = 0; i < kQ4Group; ++i) {
    stats.sum_x += x[i];
    stats.sum_x2 += x[i] * x[i];
    lowest = std::min(lowest, x[i]);
    highest = std::max(highest, x[i]);
  }
  AffineFit best;
  if (!(highest > lowest)) {  // all values equal and <= 0 (lowest is clamped to 0): the min alone holds them
    best.offset = lowest;
    return best;
  }
  const float inverse_range = 1.0f / (highest - lowest);
  for (const float stretch : kQ4Stretch) {
    const AffineFit fit = fit_q4_codes(lanes, lowest, (kQ4Levels + stretch) * inverse_range, stats);
    if (fit.error < best.error) best = fit;
  }
  if (best.scale > 0.0f) {
    const AffineFit polished = fit_q4_codes(lanes, best.offset, 1.0f / best.scale, stats);
    if (polished.error < best.error) best = polished;
  }
  if (!(best.error < std::numeric_limits<float>::infinity())) best = {0.0f, lowest, 0.0f};
  return best;
}

uint8_t quantize_6bit(float value, float step) {
  if (!(step > 0.0f)) return 0;
  return uint8_t(std::clamp(std::lround(value / step), 0L, 63L));
}

// The inverse of unpack_k4_scale_min (see block_layouts.h for the packing).
void pack_k4_scales(const uint8_t (&scale)[8], const uint8_t (&min)[8], uint8_t (&packed)[12]) {
  for (int g = 0; g < 4; ++g) {
    packed[g] = uint8_t(scale[g] | ((scale[g + 4] >> 4) << 6));
    packed[g + 4] = uint8_t(min[g] | ((min[g + 4] >> 4) << 6));
    packed[g + 8] = uint8_t((scale[g + 4] & 15) | ((min[g + 4] & 15) << 4));
  }
}

void quantize_q4_k_block(const float* x, BlockQ4_K& block) {
  constexpr int kGroups = kSuperBlock / kQ4Group;
  float scales[kGroups], mins[kGroups];
  float max_scale = 0.0f, max_min = 0.0f;
  for (int g = 0; g < kGroups; ++g) {
    const AffineFit fit = search_q4_group(x + kQ4Group * g);
    scales[g] = fit.scale;
    mins[g] = -fit.offset;
    max_scale = std::max(max_scale, scales[g]);
    max_min = std::max(max_min, mins[g]);
  }
  block.d = fp32_to_fp16(max_scale / 63.0f);
  block.dmin = fp32_to_fp16(max_min / 63.0f);
  const float d = fp16_to_fp32(block.d);
  const float dmin = fp16_to_fp32(block.dmin);

  uint8_t scale_codes[kGroups], min_codes[kGroups];
  for (int g = 0; g < kGroups; ++g) {
    scale_codes[g] = quantize_6bit(scales[g], d);
    min_codes[g] = quantize_6bit(mins[g], dmin);
  }
  pack_k4_scales(scale_codes, min_codes, block.scales);

  // Round every element against the scale and min the file will actually hold.
  uint8_t codes[kSuperBlock];
  for (int g = 0; g < kGroups; ++g) {
    const float scale = d * float(scale_codes[g]);
    const float min = dmin * float(min_codes[g]);
    const float inverse = scale > 0.0f ? 1.0f / scale : 0.0f;
    store_codes(x + kQ4Group * g, kQ4Group, inverse, min * inverse, float(kQ4Levels), codes + kQ4Group * g);
  }
  // Byte 32*c + l holds element 64*c + l (low nibble) and element 64*c + 32 + l (high nibble).
  for (int c = 0; c < kSuperBlock / 64; ++c) {
    for (int l = 0; l < 32; ++l) block.qs[32 * c + l] = uint8_t(codes[64 * c + l] | (codes[64 * c + 32 + l] << 4));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Q6_K: groups of 16, x ~= scale * q, q in -32..31 (stored as q + 32), scale a signed 8-bit multiple of d.

constexpr int kQ6Group = 16;
// Grid stretches (in codes) around mapping the largest magnitude onto code -32. Shrinking by whole codes
// matters twice: clipping the extreme a little pays off (relative RMSE on Gaussian data 0.0166 with this
// set, 0.0173 with -1..+0.5 in tenths), and data already on a Q6_K grid whose extreme sits on code 27..31
// (small group scales round coarsely) is then recovered exactly, so re-quantizing is stable.
constexpr float kQ6Stretch[] = {-5.0f, -4.0f, -3.0f, -2.0f, -1.0f, -0.5f, 0.0f, 0.5f};

// Least-squares symmetric scale for one group. The scale may be negative: then the element of largest
// magnitude lands on code -32, the one code without a positive twin, whatever its sign.
float search_q6_group(const float* x) {
  float extreme = 0.0f;
  for (int i = 0; i < kQ6Group; ++i) {
    if (std::fabs(x[i]) > std::fabs(extreme)) extreme = x[i];
  }
  if (extreme == 0.0f) return 0.0f;
  Float4 lanes[kQ6Group / 4];
  for (int i = 0; i < kQ6Group / 4; ++i) lanes[i] = load4(x + 4 * i);
  const float inverse_extreme = -1.0f / extreme;
  float best_xq = 0.0f, best_q2 = 1.0f;  // the best candidate so far, as its sums
  for (const float stretch : kQ6Stretch) {
    const float inverse_scale = (32.0f + stretch) * inverse_extreme;
    const Float4 scale4 = splat4(inverse_scale);
    Float4 acc_xq{}, acc_q2{};
    for (const Float4& v : lanes) {
      const Float4 q = round_clamped4(v * scale4 + splat4(32.0f), 63.0f) - splat4(32.0f);
      acc_xq += v * q;
      acc_q2 += q * q;
    }
    const float sum_xq = sum4(acc_xq), sum_q2 = sum4(acc_q2);
    // With the best scale sum_xq/sum_q2, the squared error is sum_x2 - sum_xq^2/sum_q2: the candidate with
    // the larger sum_xq^2/sum_q2 wins (compared cross-multiplied; both sums of squares are positive).
    if (sum_q2 > 0.0f && sum_xq * sum_xq * best_q2 > best_xq * best_xq * sum_q2) {
      best_xq = sum_xq;
      best_q2 = sum_q2;
    }
  }
  return best_xq / best_q2;
}

void quantize_q6_k_block(const float* x, BlockQ6_K& block) {
  constexpr int kGroups = kSuperBlock / kQ6Group;
  float scales[kGroups];
  float extreme = 0.0f;
  for (int g = 0; g < kGroups; ++g) {
    scales[g] = search_q6_group(x + kQ6Group * g);
    if (std::fabs(scales[g]) > std::fabs(extreme)) extreme = scales[g];
  }
  // Same trick one level up: the largest group scale takes the 8-bit code -128.
  block.d = fp32_to_fp16(extreme / -128.0f);
  const float d = fp16_to_fp32(block.d);

  uint8_t codes[kSuperBlock];
  for (int g = 0; g < kGroups; ++g) {
    const long scale_code = d != 0.0f ? std::clamp(std::lround(scales[g] / d), -128L, 127L) : 0L;
    block.scales[g] = int8_t(scale_code);
    const float scale = d * float(scale_code);
    const float inverse = scale != 0.0f ? 1.0f / scale : 0.0f;
    store_codes(x + kQ6Group * g, kQ6Group, inverse, 32.0f, 63.0f, codes + kQ6Group * g);
  }
  // Each 128-element half h is four runs of 32: byte ql[64h + l] holds runs 0 and 2 at position l (low and
  // high nibble), ql[64h + 32 + l] runs 1 and 3, and qh[32h + l] the top two bits of runs 0..3 at bits 0, 2,
  // 4, 6.
  for (int half = 0; half < 2; ++half) {
    const uint8_t* c = codes + 128 * half;
    for (int l = 0; l < 32; ++l) {
      block.ql[64 * half + l] = uint8_t((c[l] & 15) | ((c[l + 64] & 15) << 4));
      block.ql[64 * half + 32 + l] = uint8_t((c[l + 32] & 15) | ((c[l + 96] & 15) << 4));
      block.qh[32 * half + l] =
          uint8_t((c[l] >> 4) | ((c[l + 32] >> 4) << 2) | ((c[l + 64] >> 4) << 4) | ((c[l + 96] >> 4) << 6));
    }
  }
}

template <typename Block, void (*quantize_block)(const float*, Block&)>
void quantize_blocks(std::span<const float> in, std::span<std::byte> out) {
  const size_t count = in.size() / kSuperBlock;
  for (size_t i = 0; i < count; ++i) {
    Block block{};
    quantize_block(in.data() + i * kSuperBlock, block);
    std::memcpy(out.data() + i * sizeof(Block), &block, sizeof(Block));
  }
}

}  // namespace

void quantize_q4_k(std::span<const float> in, std::span<std::byte> out) {
  quantize_blocks<BlockQ4_K, quantize_q4_k_block>(in, out);
}

void quantize_q6_k(std::span<const float> in, std::span<std::byte> out) {
  quantize_blocks<BlockQ6_K, quantize_q6_k_block>(in, out);
}

}  // namespace pensieve::tensor::detail
