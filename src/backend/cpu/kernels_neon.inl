// AArch64 NEON kernels, compiled twice: once for baseline Armv8.0 NEON (kernels_neon.cpp), where int8 dot
// products widen through vmull_s8 and pairwise-accumulate into int32, and once for Armv8.2 with the dot
// product extension (kernels_neon_dotprod.cpp, PENSIEVE_DOTPROD defined), where vdotq_s32 does that in one
// instruction. Everything has internal linkage so the two copies, built for different architecture levels,
// can never be merged by the linker.
#include <arm_neon.h>

#include <cmath>
#include <cstring>

#include "backend/cpu/interleaved_weights.h"
#include "backend/cpu/kernels.h"

namespace {

using pensieve::backend::cpu::kQ8BlockElements;
using pensieve::backend::cpu::Q8Block;
using pensieve::backend::cpu::kQ4_0x8GroupBlockBytes;
using pensieve::backend::cpu::kQ8_0x8GroupBlockBytes;
using pensieve::backend::cpu::kQ4_Kx8GroupBlockBytes;
using pensieve::backend::cpu::kQ6_Kx8GroupBlockBytes;

inline float half_to_float(const std::byte* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

// Adds the products of 16 signed bytes w and a to four int32 lanes. Every weight format here is unpacked
// to signed bytes (|q| <= 128) and activations are in -127..127, so no product overflows int16.
inline int32x4_t dot16(int32x4_t acc, int8x16_t w, int8x16_t a) {
#ifdef PENSIEVE_DOTPROD
  return vdotq_s32(acc, w, a);
#else
  acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(w), vget_low_s8(a)));
  return vpadalq_s16(acc, vmull_high_s8(w, a));
#endif
}

// 32 weights of one activation block's span, as signed bytes in element order.
struct Bytes32 {
  int8x16_t lo, hi;  // elements 0..15, 16..31
};

inline int32x4_t dot32(const Bytes32& w, const Q8Block& a) {
  return dot16(dot16(vdupq_n_s32(0), w.lo, vld1q_s8(a.qs)), w.hi, vld1q_s8(a.qs + 16));
}

float dot_f32(const float* a, const float* b, int n) {
  float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
    s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
  }
  for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
  float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void scale_f32(float a, float* y, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_n_f32(vld1q_f32(y + i), a));
  for (; i < n; ++i) y[i] *= a;
}

// The conversions run their tails through a padded four-lane buffer, so every element takes the same
// (IEEE, round-to-nearest-even) vector instruction.
void f16_to_f32(const uint16_t* in, float* out, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(out + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(in + i))));
  if (i < n) {
    uint16_t h[4] = {};
    float f[4];
    std::memcpy(h, in + i, sizeof(uint16_t) * static_cast<size_t>(n - i));
    vst1q_f32(f, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h))));
    std::memcpy(out + i, f, sizeof(float) * static_cast<size_t>(n - i));
  }
}

void f32_to_f16(const float* in, uint16_t* out, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) vst1_u16(out + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(in + i))));
  if (i < n) {
    float f[4] = {};
    uint16_t h[4];
    std::memcpy(f, in + i, sizeof(float) * static_cast<size_t>(n - i));
    vst1_u16(h, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(f))));
    std::memcpy(out + i, h, sizeof(uint16_t) * static_cast<size_t>(n - i));
  }
}

void bf16_to_f32(const uint16_t* in, float* out, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) vst1q_u32(reinterpret_cast<uint32_t*>(out + i), vshll_n_u16(vld1_u16(in + i), 16));
  for (; i < n; ++i) {
    const uint32_t bits = static_cast<uint32_t>(in[i]) << 16;
    std::memcpy(out + i, &bits, 4);
  }
}

void quantize_q8(const float* x, Q8Block* out, int n) {
  for (int b = 0; b < n / kQ8BlockElements; ++b) {
    const float* xb = x + b * kQ8BlockElements;
    float32x4_t v[8];
    float32x4_t amax = vdupq_n_f32(0);
    for (int k = 0; k < 8; ++k) {
      v[k] = vld1q_f32(xb + 4 * k);
      amax = vmaxq_f32(amax, vabsq_f32(v[k]));
    }
    const float d = vmaxvq_f32(amax) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int32x4_t q[8];
    int32x4_t sum = vdupq_n_s32(0);
    for (int k = 0; k < 8; ++k) {
      q[k] = vcvtnq_s32_f32(vmulq_n_f32(v[k], id));  // rounds to nearest even, as nearbyint does
      sum = vaddq_s32(sum, q[k]);
    }
    // |x * id| <= 127 (plus rounding), so the narrowing never saturates.
    int16x8_t h[4];
    for (int k = 0; k < 4; ++k) h[k] = vcombine_s16(vmovn_s32(q[2 * k]), vmovn_s32(q[2 * k + 1]));
    vst1q_s8(out[b].qs, vcombine_s8(vmovn_s16(h[0]), vmovn_s16(h[1])));
    vst1q_s8(out[b].qs + 16, vcombine_s8(vmovn_s16(h[2]), vmovn_s16(h[3])));
    out[b].d = d;
    out[b].sum = vaddvq_s32(sum);
  }
}

// BF16 weights: eight at a time widened to float (a 16-bit shift) and multiplied into G activation rows, two
// accumulators per row so consecutive FMAs do not wait on each other.
template <int G>
void bf16_group(const uint16_t* w, const float* a0, size_t act_stride, int n, float* out, size_t out_stride) {
  float32x4_t acc[G][2];
  for (int k = 0; k < G; ++k) acc[k][0] = acc[k][1] = vdupq_n_f32(0);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint16x8_t h = vld1q_u16(w + i);
    const float32x4_t lo = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16));
    const float32x4_t hi = vreinterpretq_f32_u32(vshll_high_n_u16(h, 16));
#pragma GCC unroll 4
    for (int k = 0; k < G; ++k) {
      const float* a = a0 + static_cast<size_t>(k) * act_stride + static_cast<size_t>(i);
      acc[k][0] = vfmaq_f32(acc[k][0], lo, vld1q_f32(a));
      acc[k][1] = vfmaq_f32(acc[k][1], hi, vld1q_f32(a + 4));
    }
  }
  for (int k = 0; k < G; ++k) {
    float s = vaddvq_f32(vaddq_f32(acc[k][0], acc[k][1]));
    const float* a = a0 + static_cast<size_t>(k) * act_stride;
    for (int t = i; t < n; ++t) {
      const uint32_t bits = static_cast<uint32_t>(w[t]) << 16;
      float wf;
      std::memcpy(&wf, &bits, 4);
      s += wf * a[t];
    }
    out[static_cast<size_t>(k) * out_stride] = s;
  }
}

void vec_bf16(const uint16_t* w, const float* act, size_t act_stride, int n_act, int n, float* out, size_t out_stride) {
  constexpr int kRows = 4;
  int j = 0;
  for (; j + kRows <= n_act; j += kRows) {
    bf16_group<kRows>(w, act + static_cast<size_t>(j) * act_stride, act_stride, n, out + static_cast<size_t>(j) * out_stride, out_stride);
  }
  const float* a = act + static_cast<size_t>(j) * act_stride;
  float* o = out + static_cast<size_t>(j) * out_stride;
  switch (n_act - j) {
    case 3: bf16_group<3>(w, a, act_stride, n, o, out_stride); break;
    case 2: bf16_group<2>(w, a, act_stride, n, o, out_stride); break;
    case 1: bf16_group<1>(w, a, act_stride, n, o, out_stride); break;
    default: break;
  }
}

// The 32 nibbles of a legacy block in element order (low nibbles are elements 0..15), as bytes 0..15.
inline Bytes32 legacy_nibbles(const std::byte* qs) {
  const uint8x16_t packed = vld1q_u8(reinterpret_cast<const uint8_t*>(qs));
  return {vreinterpretq_s8_u8(vandq_u8(packed, vdupq_n_u8(0x0F))), vreinterpretq_s8_u8(vshrq_n_u8(packed, 4))};
}

inline Bytes32 sub_bytes(const Bytes32& w, int8_t offset) {
  return {vsubq_s8(w.lo, vdupq_n_s8(offset)), vsubq_s8(w.hi, vdupq_n_s8(offset))};
}

constexpr size_t kQ8_0Bytes = 34;
constexpr size_t kQ4_0Bytes = 18;
constexpr int kActGroup = 4;  // activation rows sharing one pass over the weight row

// G activation rows per pass over the weight row; G is a compile-time constant so the accumulators stay
// in registers.
template <int G>
void q8_0_group(const std::byte* w, const Q8Block* a0, size_t act_stride, int n_blocks, float* out,
                size_t out_stride) {
  float32x4_t acc[G];
  for (int k = 0; k < G; ++k) acc[k] = vdupq_n_f32(0);
  for (int b = 0; b < n_blocks; ++b) {
    const std::byte* wb = w + static_cast<size_t>(b) * kQ8_0Bytes;
    const float dw = half_to_float(wb);
    const auto* qw = reinterpret_cast<const int8_t*>(wb + 2);
    const Bytes32 wq{vld1q_s8(qw), vld1q_s8(qw + 16)};
#pragma GCC unroll 4
    for (int k = 0; k < G; ++k) {
      const Q8Block& a = a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(b)];
      acc[k] = vfmaq_n_f32(acc[k], vcvtq_f32_s32(dot32(wq, a)), dw * a.d);
    }
  }
  for (int k = 0; k < G; ++k) out[static_cast<size_t>(k) * out_stride] = vaddvq_f32(acc[k]);
}

// Q4_0: x = d*(q - 8); the offset is taken off the bytes, so no activation sum is needed.
template <int G>
void q4_0_group(const std::byte* w, const Q8Block* a0, size_t act_stride, int n_blocks, float* out,
                size_t out_stride) {
  float32x4_t acc[G];
  for (int k = 0; k < G; ++k) acc[k] = vdupq_n_f32(0);
  for (int b = 0; b < n_blocks; ++b) {
    const std::byte* wb = w + static_cast<size_t>(b) * kQ4_0Bytes;
    const float dw = half_to_float(wb);
    const Bytes32 wq = sub_bytes(legacy_nibbles(wb + 2), 8);
#pragma GCC unroll 4
    for (int k = 0; k < G; ++k) {
      const Q8Block& a = a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(b)];
      acc[k] = vfmaq_n_f32(acc[k], vcvtq_f32_s32(dot32(wq, a)), dw * a.d);
    }
  }
  for (int k = 0; k < G; ++k) out[static_cast<size_t>(k) * out_stride] = vaddvq_f32(acc[k]);
}

// Runs Group<G> over the activation rows in groups of kActGroup, then the remainder.
template <template <int> class Group>
void in_groups(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
               size_t out_stride) {
  int j = 0;
  for (; j + kActGroup <= n_act; j += kActGroup) {
    Group<kActGroup>::run(w, act + static_cast<size_t>(j) * act_stride, act_stride, n_blocks,
                          out + static_cast<size_t>(j) * out_stride, out_stride);
  }
  const Q8Block* a = act + static_cast<size_t>(j) * act_stride;
  float* o = out + static_cast<size_t>(j) * out_stride;
  switch (n_act - j) {
    case 3: Group<3>::run(w, a, act_stride, n_blocks, o, out_stride); break;
    case 2: Group<2>::run(w, a, act_stride, n_blocks, o, out_stride); break;
    case 1: Group<1>::run(w, a, act_stride, n_blocks, o, out_stride); break;
    default: break;
  }
}

#define PENSIEVE_GROUP(Name, call)                                                                           \
  template <int G>                                                                                           \
  struct Name {                                                                                              \
    static void run(const std::byte* w, const Q8Block* a, size_t s, int nb, float* o, size_t os) { call; } \
  };
#define PENSIEVE_VEC(name, Group)                                                                                \
  void name(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,      \
            size_t out_stride) {                                                                                 \
    in_groups<Group>(w, act, act_stride, n_act, n_blocks, out, out_stride);                                      \
  }
PENSIEVE_GROUP(Q8_0Group, (q8_0_group<G>(w, a, s, nb, o, os)))
PENSIEVE_GROUP(Q4_0Group, (q4_0_group<G>(w, a, s, nb, o, os)))
PENSIEVE_VEC(vec_q8_0, Q8_0Group)
PENSIEVE_VEC(vec_q4_0, Q4_0Group)

void attn_scores(const float* q, const float* rows, size_t stride, int n_rows, int n, float scale, float* out) {
  int s = 0;
  if (n % 4 == 0) {
    // Four positions at once: four independent FMA chains, one pairwise reduction for all four.
    for (; s + 4 <= n_rows; s += 4) {
      const float* r = rows + static_cast<size_t>(s) * stride;
      float32x4_t acc[4];
      for (int k = 0; k < 4; ++k) acc[k] = vdupq_n_f32(0);
      for (int i = 0; i < n; i += 4) {
        const float32x4_t qv = vld1q_f32(q + i);
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) {
          acc[k] = vfmaq_f32(acc[k], qv, vld1q_f32(r + static_cast<size_t>(k) * stride + static_cast<size_t>(i)));
        }
      }
      const float32x4_t sums = vpaddq_f32(vpaddq_f32(acc[0], acc[1]), vpaddq_f32(acc[2], acc[3]));
      vst1q_f32(out + s, vmulq_n_f32(sums, scale));
    }
  }
  for (; s < n_rows; ++s) out[s] = scale * dot_f32(q, rows + static_cast<size_t>(s) * stride, n);
}

// exp(x) to ~2 ulp for x <= 88 (Cephes' expf polynomial); below -87.3 it is 0, NaN stays NaN.
inline float32x4_t exp4(float32x4_t x) {
  const float32x4_t lo = vdupq_n_f32(-87.3f);
  const uint32x4_t underflow = vcltq_f32(x, lo);
  x = vminq_f32(vdupq_n_f32(88.0f), vmaxq_f32(lo, x));  // NEON min/max propagate a NaN x
  const float32x4_t fx = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
  float32x4_t r = vfmsq_n_f32(x, fx, 0.693359375f);
  r = vfmsq_n_f32(r, fx, -2.12194440e-4f);
  float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
  p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
  p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
  const float32x4_t y = vaddq_f32(vfmaq_f32(r, p, vmulq_f32(r, r)), vdupq_n_f32(1.0f));
  const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(fx), vdupq_n_s32(127)), 23);
  const float32x4_t result = vmulq_f32(y, vreinterpretq_f32_s32(e));
  return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(result), underflow));
}

float exp_shifted_sum(float* x, float shift, int n) {
  const float32x4_t vshift = vdupq_n_f32(shift);
  float32x4_t sum = vdupq_n_f32(0);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t e = exp4(vsubq_f32(vld1q_f32(x + i), vshift));
    vst1q_f32(x + i, e);
    sum = vaddq_f32(sum, e);
  }
  if (i < n) {
    // The tail through a padded vector: -inf pads exponentiate to 0 and add nothing.
    float tail[4];
    for (int k = 0; k < 4; ++k) tail[k] = i + k < n ? x[i + k] : -INFINITY;
    const float32x4_t e = exp4(vsubq_f32(vld1q_f32(tail), vshift));
    vst1q_f32(tail, e);
    sum = vaddq_f32(sum, e);
    for (int k = 0; i + k < n; ++k) x[i + k] = tail[k];
  }
  return vaddvq_f32(sum);
}

void attn_accumulate(const float* w, const float* rows, size_t stride, int n_rows, int n, float y_scale, float* y) {
  int i = 0;
  // 16 outputs stay in registers across all the positions.
  for (; i + 16 <= n; i += 16) {
    float32x4_t a[4];
    for (int k = 0; k < 4; ++k) a[k] = vmulq_n_f32(vld1q_f32(y + i + 4 * k), y_scale);
    for (int s = 0; s < n_rows; ++s) {
      const float* r = rows + static_cast<size_t>(s) * stride + static_cast<size_t>(i);
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) a[k] = vfmaq_n_f32(a[k], vld1q_f32(r + 4 * k), w[s]);
    }
    for (int k = 0; k < 4; ++k) vst1q_f32(y + i + 4 * k, a[k]);
  }
  for (; i + 4 <= n; i += 4) {
    float32x4_t a = vmulq_n_f32(vld1q_f32(y + i), y_scale);
    for (int s = 0; s < n_rows; ++s) {
      a = vfmaq_n_f32(a, vld1q_f32(rows + static_cast<size_t>(s) * stride + static_cast<size_t>(i)), w[s]);
    }
    vst1q_f32(y + i, a);
  }
  for (; i < n; ++i) {
    float acc = y_scale * y[i];
    for (int s = 0; s < n_rows; ++s) acc += w[s] * rows[static_cast<size_t>(s) * stride + static_cast<size_t>(i)];
    y[i] = acc;
  }
}

// Four Q4_0 weight rows against G activation rows. Per block and activation row the four rows' int32 dot
// products are reduced together (two pairwise adds) into one vector [row0 row1 row2 row3], so the
// conversion and the scaling by the four weight scales are one vector op each.
template <int G>
void q4_0_rows4_group(const std::byte* w, size_t row_bytes, const Q8Block* a0, size_t act_stride, int n_blocks,
                      float* out, size_t out_stride) {
  float32x4_t acc[G];
  for (int k = 0; k < G; ++k) acc[k] = vdupq_n_f32(0);
  for (int b = 0; b < n_blocks; ++b) {
    Bytes32 qw[4];
    uint16_t scales[4];
    for (int r = 0; r < 4; ++r) {
      const std::byte* wb = w + static_cast<size_t>(r) * row_bytes + static_cast<size_t>(b) * kQ4_0Bytes;
      std::memcpy(&scales[r], wb, 2);
      qw[r] = sub_bytes(legacy_nibbles(wb + 2), 8);
    }
    const float32x4_t dw = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(scales)));
#pragma GCC unroll 4
    for (int k = 0; k < G; ++k) {
      const Q8Block& a = a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(b)];
      const int32x4_t sums = vpaddq_s32(vpaddq_s32(dot32(qw[0], a), dot32(qw[1], a)),
                                        vpaddq_s32(dot32(qw[2], a), dot32(qw[3], a)));
      acc[k] = vfmaq_f32(acc[k], vcvtq_f32_s32(sums), vmulq_n_f32(dw, a.d));
    }
  }
  for (int k = 0; k < G; ++k) vst1q_f32(out + static_cast<size_t>(k) * out_stride, acc[k]);
}

void rows4_q4_0(const std::byte* w, size_t row_bytes, const Q8Block* act, size_t act_stride, int n_act,
                int n_blocks, float* out, size_t out_stride) {
  int j = 0;
  for (; j + kActGroup <= n_act; j += kActGroup) {
    q4_0_rows4_group<kActGroup>(w, row_bytes, act + static_cast<size_t>(j) * act_stride, act_stride, n_blocks,
                                out + static_cast<size_t>(j) * out_stride, out_stride);
  }
  const Q8Block* a = act + static_cast<size_t>(j) * act_stride;
  float* o = out + static_cast<size_t>(j) * out_stride;
  switch (n_act - j) {
    case 3: q4_0_rows4_group<3>(w, row_bytes, a, act_stride, n_blocks, o, out_stride); break;
    case 2: q4_0_rows4_group<2>(w, row_bytes, a, act_stride, n_blocks, o, out_stride); break;
    case 1: q4_0_rows4_group<1>(w, row_bytes, a, act_stride, n_blocks, o, out_stride); break;
    default: break;
  }
}

#include "backend/cpu/kernels_quant_neon.inl"
#include "backend/cpu/kernels_x8_neon.inl"

#undef PENSIEVE_GROUP
#undef PENSIEVE_VEC

// Designated, so members the table does not name (kernels this file has not written yet) are nullptr,
// which the backend reads as "not provided" and falls back for.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
const pensieve::backend::cpu::KernelTable kTable{
#ifdef PENSIEVE_DOTPROD
    .name = "neon-dotprod",
#else
    .name = "neon",
#endif
    .dot_f32 = dot_f32,
    .scale_f32 = scale_f32,
    .f16_to_f32 = f16_to_f32,
    .f32_to_f16 = f32_to_f16,
    .bf16_to_f32 = bf16_to_f32,
    .quantize_q8 = quantize_q8,
    .vec_q8_0 = vec_q8_0,
    .vec_q4_0 = vec_q4_0,
    .vec_q4_1 = vec_q4_1,
    .vec_q5_0 = vec_q5_0,
    .vec_q5_1 = vec_q5_1,
    .vec_q2_k = vec_q2_k,
    .vec_q3_k = vec_q3_k,
    .vec_q4_k = vec_q4_k,
    .vec_q5_k = vec_q5_k,
    .vec_q6_k = vec_q6_k,
    .attn_scores = attn_scores,
    .exp_shifted_sum = exp_shifted_sum,
    .attn_accumulate = attn_accumulate,
    .rows4_q4_0 = rows4_q4_0,
    .x8_q4_0 = x8_q4_0,
    .x8_q8_0 = x8_q8_0,
    .vec_bf16 = vec_bf16,
    .x8_q4_k = x8_q4_k,
    .x8_q6_k = x8_q6_k,
};
#pragma GCC diagnostic pop

}  // namespace
