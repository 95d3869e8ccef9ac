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
// Speed matters (the synth command quantizes whole models), so the inner loops are written over fixed
// lane arrays that compilers vectorize without needing -ffast-math to reorder float sums, and rounding is
// done as truncation of (v + 0.5) on values known to be non-negative, which vectorizes where lround() does
// not.
#include "tensor/k_quantize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "tensor/block_layouts.h"
#include "tensor/dequantize.h"

namespace pensieve::tensor::detail {

namespace {

constexpr int kLanes = 8;

// ---------------------------------------------------------------------------------------------------------
// Q4_K: groups of 32, x ~= scale * q - min, q in 0..15, scale >= 0, min >= 0.

constexpr int kQ4Group = 32;
constexpr int kQ4Levels = 15;
// How far the grid is stretched (in codes) around mapping [lowest, highest] onto [0, 15]. Measured on
// Gaussian data: this fan gets within a fraction of a percent of the error of a dense 41-point fan.
constexpr float kQ4Stretch[] = {-1.0f, -0.8f, -0.6f, -0.4f, -0.2f, 0.0f, 0.2f, 0.4f, 0.6f, 0.8f, 1.0f};

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
AffineFit fit_q4_codes(const float* x, float offset, float inverse_scale, const GroupStats& stats) {
  float lane_l[kLanes] = {}, lane_l2[kLanes] = {}, lane_xl[kLanes] = {};
  for (int i = 0; i < kQ4Group; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      // Negative arguments truncate towards zero, which the clamp below turns into code 0 as rounding would.
      const float v = (x[i + j] - offset) * inverse_scale + 0.5f;
      const float l = float(std::min(std::max(int(v), 0), kQ4Levels));
      lane_l[j] += l;
      lane_l2[j] += l * l;
      lane_xl[j] += x[i + j] * l;
    }
  }
  float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
  for (int j = 0; j < kLanes; ++j) {
    sum_l += lane_l[j];
    sum_l2 += lane_l2[j];
    sum_xl += lane_xl[j];
  }
  const float n = float(kQ4Group);
  AffineFit fit;
  const float det = n * sum_l2 - sum_l * sum_l;
  if (det <= 0.0f) return fit;  // all codes equal: this rounding carries no scale information
  fit.scale = (n * sum_xl - sum_l * stats.sum_x) / det;
  fit.offset = (stats.sum_x - fit.scale * sum_l) / n;
  if (fit.offset > 0.0f) {  // the format cannot add: refit with the offset pinned at zero
    fit.offset = 0.0f;
    fit.scale = sum_xl / sum_l2;
  }
  const float a = fit.scale, b = fit.offset;
  fit.error = stats.sum_x2 - 2 * a * sum_xl - 2 * b * stats.sum_x + a * a * sum_l2 + 2 * a * b * sum_l + n * b * b;
  return fit;
}

AffineFit search_q4_group(const float* x) {
  GroupStats stats;
  float lowest = 0.0f, highest = x[0];
  for (int i = 0; i < kQ4Group; ++i) {
    stats.sum_x += x[i];
    stats.sum_x2 += x[i] * x[i];
    lowest = std::min(lowest, x[i]);
    highest = std::max(highest, x[i]);
  }
  AffineFit best;
  if (!(highest > lowest)) {  // all zero (lowest is clamped to 0, so a constant group has highest > lowest)
    best.offset = lowest;
    return best;
  }
  for (const float stretch : kQ4Stretch) {
    const AffineFit fit = fit_q4_codes(x, lowest, (kQ4Levels + stretch) / (highest - lowest), stats);
    if (fit.error < best.error) best = fit;
  }
  if (best.scale > 0.0f) {
    const AffineFit polished = fit_q4_codes(x, best.offset, 1.0f / best.scale, stats);
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
    for (int i = kQ4Group * g; i < kQ4Group * (g + 1); ++i) {
      codes[i] = uint8_t(std::min(std::max(int((x[i] + min) * inverse + 0.5f), 0), kQ4Levels));
    }
  }
  // Byte 32*c + l holds element 64*c + l (low nibble) and element 64*c + 32 + l (high nibble).
  for (int c = 0; c < kSuperBlock / 64; ++c) {
    for (int l = 0; l < 32; ++l) block.qs[32 * c + l] = uint8_t(codes[64 * c + l] | (codes[64 * c + 32 + l] << 4));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Q6_K: groups of 16, x ~= scale * q, q in -32..31 (stored as q + 32), scale a signed 8-bit multiple of d.

constexpr int kQ6Group = 16;
constexpr int kQ6Candidates = 11;  // grid stretches -0.5 .. +0.5 codes in steps of 0.1

// Least-squares symmetric scale for one group. The scale may be negative: then the element of largest
// magnitude lands on code -32, the one code without a positive twin, whatever its sign.
float search_q6_group(const float* x) {
  float extreme = 0.0f;
  for (int i = 0; i < kQ6Group; ++i) {
    if (std::fabs(x[i]) > std::fabs(extreme)) extreme = x[i];
  }
  if (extreme == 0.0f) return 0.0f;
  float best_scale = 0.0f, best_gain = -1.0f;
  for (int k = 0; k < kQ6Candidates; ++k) {
    const float stretch = 0.1f * float(k - kQ6Candidates / 2);
    const float inverse_scale = -(32.0f + stretch) / extreme;
    float lane_xq[kLanes] = {}, lane_q2[kLanes] = {};
    for (int i = 0; i < kQ6Group; i += kLanes) {
      for (int j = 0; j < kLanes; ++j) {
        // +32.5 makes the argument non-negative wherever the clamp does not decide the code anyway.
        const int code = std::min(std::max(int(x[i + j] * inverse_scale + 32.5f), 0), 63);
        const float q = float(code - 32);
        lane_xq[j] += x[i + j] * q;
        lane_q2[j] += q * q;
      }
    }
    float sum_xq = 0.0f, sum_q2 = 0.0f;
    for (int j = 0; j < kLanes; ++j) {
      sum_xq += lane_xq[j];
      sum_q2 += lane_q2[j];
    }
    // With the best scale sum_xq/sum_q2, the squared error is sum_x2 - sum_xq^2/sum_q2: maximize the gain.
    if (sum_q2 > 0.0f && sum_xq * sum_xq / sum_q2 > best_gain) {
      best_gain = sum_xq * sum_xq / sum_q2;
      best_scale = sum_xq / sum_q2;
    }
  }
  return best_scale;
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
    for (int i = kQ6Group * g; i < kQ6Group * (g + 1); ++i) {
      codes[i] = uint8_t(std::min(std::max(int(x[i] * inverse + 32.5f), 0), 63));
    }
  }
  // Element e of each 128-element half h: low nibble into ql[64h + 32*((e%128)/32 & 1) + e%32] (high
  // nibble of that byte for the upper 64), top two bits into qh[32h + e%32] at bit 2*((e%128)/32).
  std::memset(block.ql, 0, sizeof(block.ql));
  std::memset(block.qh, 0, sizeof(block.qh));
  for (int e = 0; e < kSuperBlock; ++e) {
    const int half = e / 128, quarter = (e % 128) / 32, lane = e % 32;
    block.ql[64 * half + 32 * (quarter & 1) + lane] |= uint8_t((codes[e] & 15) << (quarter < 2 ? 0 : 4));
    block.qh[32 * half + lane] |= uint8_t((codes[e] >> 4) << (2 * quarter));
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
