// NEON int8 dot products for Q4_1, Q5_0, Q5_1 and the K-quants; included by kernels_neon.inl (after its
// helpers and in_groups, inside its anonymous namespace) so both architecture-level builds get a copy.
//
// Each kernel unpacks a 32-element chunk of weights to signed bytes once (subtracting any fixed offset
// there, so every value fits int8) and multiplies it into each activation row of the group. Formats with
// one scale per 16 elements (Q2_K, Q3_K, Q6_K) keep the two halves' int32 dot products apart and weight
// them with their scales in int32 before the one conversion to float per activation block.

// Byte offsets inside the blocks of tensor/block_layouts.h (structs not dereferenced: no alignment promise).
constexpr size_t kQ4_1Bytes = 20, kQ5_0Bytes = 22, kQ5_1Bytes = 24;
constexpr size_t kQ2_KBytes = 84, kQ3_KBytes = 110, kQ4_KBytes = 144, kQ5_KBytes = 176, kQ6_KBytes = 210;
constexpr int kSuperActBlocks = 8;  // Q8Blocks per 256-element K-quant super-block

inline uint8x16_t load_u8x16(const std::byte* p) { return vld1q_u8(reinterpret_cast<const uint8_t*>(p)); }

inline uint32_t load_u32(const std::byte* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// 0x10 in byte i where bit i of `bits` is set (the fifth bit of Q5_0/Q5_1 element i).
inline int8x16_t fifth_bits16(uint32_t bits) {
  const uint8x16_t spread = vcombine_u8(vdup_n_u8(static_cast<uint8_t>(bits)), vdup_n_u8(static_cast<uint8_t>(bits >> 8)));
  const uint8x16_t select = vreinterpretq_u8_u64(vdupq_n_u64(0x8040201008040201ull));
  return vreinterpretq_s8_u8(vandq_u8(vtstq_u8(spread, select), vdupq_n_u8(0x10)));
}

inline Bytes32 with_fifth_bits(const Bytes32& nibbles, uint32_t qh) {
  return {vorrq_s8(nibbles.lo, fifth_bits16(qh)), vorrq_s8(nibbles.hi, fifth_bits16(qh >> 16))};
}

// Q4_1 (x = d*q + m) and Q5_1 (the same with a fifth bit): sum(x*a) = d*sum(q*a) + m*sum(a).
template <int G, bool kFifthBit>
void q4_1_q5_1_group(const std::byte* w, const Q8Block* a0, size_t act_stride, int n_blocks, float* out,
                     size_t out_stride) {
  constexpr size_t kBytes = kFifthBit ? kQ5_1Bytes : kQ4_1Bytes;
  float32x4_t acc[G];
  float offset[G];
  for (int k = 0; k < G; ++k) {
    acc[k] = vdupq_n_f32(0);
    offset[k] = 0;
  }
  for (int b = 0; b < n_blocks; ++b) {
    const std::byte* wb = w + static_cast<size_t>(b) * kBytes;
    const float dw = half_to_float(wb), mw = half_to_float(wb + 2);
    Bytes32 wq = legacy_nibbles(wb + (kFifthBit ? 8 : 4));
    if constexpr (kFifthBit) wq = with_fifth_bits(wq, load_u32(wb + 4));
#pragma GCC unroll 4
    for (int k = 0; k < G; ++k) {
      const Q8Block& a = a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(b)];
      acc[k] = vfmaq_n_f32(acc[k], vcvtq_f32_s32(dot32(wq, a)), dw * a.d);
      offset[k] += mw * a.d * static_cast<float>(a.sum);
    }
  }
  for (int k = 0; k < G; ++k) out[static_cast<size_t>(k) * out_stride] = vaddvq_f32(acc[k]) + offset[k];
}

// Q5_0: x = d*(q - 16), the offset taken off the bytes.
template <int G>
void q5_0_group(const std::byte* w, const Q8Block* a0, size_t act_stride, int n_blocks, float* out,
                size_t out_stride) {
  float32x4_t acc[G];
  for (int k = 0; k < G; ++k) acc[k] = vdupq_n_f32(0);
  for (int b = 0; b < n_blocks; ++b) {
    const std::byte* wb = w + static_cast<size_t>(b) * kQ5_0Bytes;
    const float dw = half_to_float(wb);
    const Bytes32 wq = sub_bytes(with_fifth_bits(legacy_nibbles(wb + 6), load_u32(wb + 2)), 16);
#pragma GCC unroll 4
    for (int k = 0; k < G; ++k) {
      const Q8Block& a = a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(b)];
      acc[k] = vfmaq_n_f32(acc[k], vcvtq_f32_s32(dot32(wq, a)), dw * a.d);
    }
  }
  for (int k = 0; k < G; ++k) out[static_cast<size_t>(k) * out_stride] = vaddvq_f32(acc[k]);
}

// Q4_K/Q5_K's eight 6-bit scales and mins from their 12-byte packing: groups 0..3 keep their low six bits
// in bytes 0..3 (scales) and 4..7 (mins); groups 4..7 their low nibbles in bytes 8..11 and their top two
// bits in the spare top bits of bytes 0..7.
struct K4Scales {
  int scale[8];
  int min[8];
};
inline K4Scales unpack_k4_scales(const std::byte* packed) {
  uint8_t p[12];
  std::memcpy(p, packed, 12);
  K4Scales s;
  for (int g = 0; g < 4; ++g) {
    s.scale[g] = p[g] & 63;
    s.min[g] = p[g + 4] & 63;
    s.scale[g + 4] = (p[g + 8] & 15) | ((p[g] >> 6) << 4);
    s.min[g + 4] = (p[g + 8] >> 4) | ((p[g + 4] >> 6) << 4);
  }
  return s;
}

// Q4_K (kFifthBit false) and Q5_K: x = d*sc[g]*q - dmin*m[g] for 32-element group g, so
// sum(x*a) = d*sc[g]*sum(q*a) - dmin*m[g]*sum(a). Bytes 32c..32c+31 of qs hold group 2c in their low
// nibbles and group 2c+1 in their high ones; Q5_K's fifth bit of group g is bit g of qh[element % 32].
template <int G, bool kFifthBit>
void q4_k_q5_k_group(const std::byte* w, const Q8Block* a0, size_t act_stride, int n_blocks, float* out,
                     size_t out_stride) {
  constexpr size_t kBytes = kFifthBit ? kQ5_KBytes : kQ4_KBytes;
  constexpr size_t kQsOffset = kFifthBit ? 48 : 16;
  const uint8x16_t low4 = vdupq_n_u8(0x0F), bit4 = vdupq_n_u8(0x10);
  float32x4_t acc[G];
  float mins[G];
  for (int k = 0; k < G; ++k) {
    acc[k] = vdupq_n_f32(0);
    mins[k] = 0;
  }
  for (int sb = 0; sb < n_blocks / kSuperActBlocks; ++sb) {
    const std::byte* wb = w + static_cast<size_t>(sb) * kBytes;
    const float d = half_to_float(wb), dmin = half_to_float(wb + 2);
    const K4Scales sm = unpack_k4_scales(wb + 4);
    // Q5_K: shifted right by 2 per chunk, so bits 0 and 1 are the current chunk's two groups.
    uint8x16_t qh[2] = {vdupq_n_u8(0), vdupq_n_u8(0)};
    if constexpr (kFifthBit) qh[0] = load_u8x16(wb + 16), qh[1] = load_u8x16(wb + 32);
    const Q8Block* ab = a0 + static_cast<size_t>(sb) * kSuperActBlocks;
    for (int c = 0; c < 4; ++c) {
      Bytes32 q_lo, q_hi;  // groups 2c and 2c+1
      uint8x16_t lo[2], hi[2];
      for (int half = 0; half < 2; ++half) {
        const uint8x16_t packed = load_u8x16(wb + kQsOffset + 32 * static_cast<size_t>(c) + 16 * static_cast<size_t>(half));
        lo[half] = vandq_u8(packed, low4);
        hi[half] = vshrq_n_u8(packed, 4);
        if constexpr (kFifthBit) {
          lo[half] = vorrq_u8(lo[half], vandq_u8(vshlq_n_u8(qh[half], 4), bit4));
          hi[half] = vorrq_u8(hi[half], vandq_u8(vshlq_n_u8(qh[half], 3), bit4));
          qh[half] = vshrq_n_u8(qh[half], 2);
        }
      }
      q_lo = {vreinterpretq_s8_u8(lo[0]), vreinterpretq_s8_u8(lo[1])};
      q_hi = {vreinterpretq_s8_u8(hi[0]), vreinterpretq_s8_u8(hi[1])};
      const float scale_lo = d * static_cast<float>(sm.scale[2 * c]), scale_hi = d * static_cast<float>(sm.scale[2 * c + 1]);
      const float min_lo = dmin * static_cast<float>(sm.min[2 * c]), min_hi = dmin * static_cast<float>(sm.min[2 * c + 1]);
#pragma GCC unroll 4
      for (int k = 0; k < G; ++k) {
        const Q8Block* a = ab + static_cast<size_t>(k) * act_stride + 2 * static_cast<size_t>(c);
        acc[k] = vfmaq_n_f32(acc[k], vcvtq_f32_s32(dot32(q_lo, a[0])), scale_lo * a[0].d);
        acc[k] = vfmaq_n_f32(acc[k], vcvtq_f32_s32(dot32(q_hi, a[1])), scale_hi * a[1].d);
        mins[k] += min_lo * a[0].d * static_cast<float>(a[0].sum) + min_hi * a[1].d * static_cast<float>(a[1].sum);
      }
    }
  }
  for (int k = 0; k < G; ++k) out[static_cast<size_t>(k) * out_stride] = vaddvq_f32(acc[k]) - mins[k];
}

// sum(w*a) over each 16-element half, weighted by that half's integer scale, as four int32 lanes.
inline int32x4_t dot32_half_scaled(const Bytes32& w, const Q8Block& a, int scale_lo, int scale_hi) {
  const int32x4_t lo = dot16(vdupq_n_s32(0), w.lo, vld1q_s8(a.qs));
  const int32x4_t hi = dot16(vdupq_n_s32(0), w.hi, vld1q_s8(a.qs + 16));
  return vmlaq_n_s32(vmulq_n_s32(lo, scale_lo), hi, scale_hi);
}

// Q6_K: x = d*sc[e/16]*(q - 32), q six bits. For half h (128 elements) and quarter r, group 4h+r takes its
// low nibbles from ql[64h + 32(r&1) ...] (high nibbles when r >= 2) and its top bits from bits 2r, 2r+1 of
// qh[32h ...].
template <int G>
void q6_k_group(const std::byte* w, const Q8Block* a0, size_t act_stride, int n_blocks, float* out,
                size_t out_stride) {
  const uint8x16_t low4 = vdupq_n_u8(0x0F), bits45 = vdupq_n_u8(0x30);
  float32x4_t acc[G];
  for (int k = 0; k < G; ++k) acc[k] = vdupq_n_f32(0);
  for (int sb = 0; sb < n_blocks / kSuperActBlocks; ++sb) {
    const std::byte* wb = w + static_cast<size_t>(sb) * kQ6_KBytes;
    const auto* scales = reinterpret_cast<const int8_t*>(wb + 192);
    const float d = half_to_float(wb + 208);
    const Q8Block* ab = a0 + static_cast<size_t>(sb) * kSuperActBlocks;
    for (int h = 0; h < 2; ++h) {
      int8x16_t q[4][2];  // [quarter][16-byte half]
      for (int half = 0; half < 2; ++half) {
        const uint8x16_t l0 = load_u8x16(wb + 64 * h + 16 * half), l1 = load_u8x16(wb + 64 * h + 32 + 16 * half);
        const uint8x16_t hq = load_u8x16(wb + 128 + 32 * h + 16 * half);
        const uint8x16_t six[4] = {
            vorrq_u8(vandq_u8(l0, low4), vandq_u8(vshlq_n_u8(hq, 4), bits45)),
            vorrq_u8(vandq_u8(l1, low4), vandq_u8(vshlq_n_u8(hq, 2), bits45)),
            vorrq_u8(vshrq_n_u8(l0, 4), vandq_u8(hq, bits45)),
            vorrq_u8(vshrq_n_u8(l1, 4), vandq_u8(vshrq_n_u8(hq, 2), bits45)),
        };
        for (int r = 0; r < 4; ++r) q[r][half] = vsubq_s8(vreinterpretq_s8_u8(six[r]), vdupq_n_s8(32));
      }
      for (int r = 0; r < 4; ++r) {
        const int g = 4 * h + r;
        const Bytes32 wq{q[r][0], q[r][1]};
#pragma GCC unroll 4
        for (int k = 0; k < G; ++k) {
          const Q8Block& a = ab[static_cast<size_t>(k) * act_stride + static_cast<size_t>(g)];
          acc[k] = vfmaq_n_f32(acc[k], vcvtq_f32_s32(dot32_half_scaled(wq, a, scales[2 * g], scales[2 * g + 1])), d * a.d);
        }
      }
    }
  }
  for (int k = 0; k < G; ++k) out[static_cast<size_t>(k) * out_stride] = vaddvq_f32(acc[k]);
}

// Q3_K's sixteen 6-bit scales less their offset of 32: low nibble of scale g in byte g%8 (high nibble of
// it for g >= 8), top two bits in byte 8 + g%4 at bit 2*(g/4).
inline void unpack_q3_k_scales(const std::byte* packed, int (&scales)[16]) {
  uint8_t p[12];
  std::memcpy(p, packed, 12);
  for (int g = 0; g < 16; ++g) {
    const int low = g < 8 ? (p[g] & 15) : (p[g - 8] >> 4);
    const int high = (p[8 + g % 4] >> (2 * (g / 4))) & 3;
    scales[g] = (low | (high << 4)) - 32;
  }
}

// Q3_K: x = d*sc[e/16]*q, q = (2-bit field) - 4 unless bit g of hmask[e%32] is set. Group 4h+r's 2-bit
// fields sit at bit 2r of qs[32h ...].
template <int G>
void q3_k_group(const std::byte* w, const Q8Block* a0, size_t act_stride, int n_blocks, float* out,
                size_t out_stride) {
  const uint8x16_t two_bits = vdupq_n_u8(3), bit2 = vdupq_n_u8(4);
  float32x4_t acc[G];
  for (int k = 0; k < G; ++k) acc[k] = vdupq_n_f32(0);
  for (int sb = 0; sb < n_blocks / kSuperActBlocks; ++sb) {
    const std::byte* wb = w + static_cast<size_t>(sb) * kQ3_KBytes;
    const float d = half_to_float(wb + 108);
    int scales[16];
    unpack_q3_k_scales(wb + 96, scales);
    uint8x16_t hmask[2] = {load_u8x16(wb), load_u8x16(wb + 16)};  // shifted right once per group
    const Q8Block* ab = a0 + static_cast<size_t>(sb) * kSuperActBlocks;
    for (int h = 0; h < 2; ++h) {
      uint8x16_t qs[2] = {load_u8x16(wb + 32 + 32 * h), load_u8x16(wb + 48 + 32 * h)};  // shifted by 2 per group
      for (int r = 0; r < 4; ++r) {
        const int g = 4 * h + r;
        int8x16_t wq[2];
        for (int half = 0; half < 2; ++half) {
          const uint8x16_t high = vandq_u8(vshlq_n_u8(hmask[half], 2), bit2);
          wq[half] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(qs[half], two_bits), high)), vreinterpretq_s8_u8(bit2));
          hmask[half] = vshrq_n_u8(hmask[half], 1);
          qs[half] = vshrq_n_u8(qs[half], 2);
        }
        const Bytes32 w32{wq[0], wq[1]};
#pragma GCC unroll 4
        for (int k = 0; k < G; ++k) {
          const Q8Block& a = ab[static_cast<size_t>(k) * act_stride + static_cast<size_t>(g)];
          acc[k] = vfmaq_n_f32(acc[k], vcvtq_f32_s32(dot32_half_scaled(w32, a, scales[2 * g], scales[2 * g + 1])), d * a.d);
        }
      }
    }
  }
  for (int k = 0; k < G; ++k) out[static_cast<size_t>(k) * out_stride] = vaddvq_f32(acc[k]);
}

// Q2_K: x = d*(s & 15)*q - dmin*(s >> 4) with s = scales[e/16], q the 2-bit field as in Q3_K. The mins
// weight each 16-element half of the activations, so those halves' sums are taken separately.
template <int G>
void q2_k_group(const std::byte* w, const Q8Block* a0, size_t act_stride, int n_blocks, float* out,
                size_t out_stride) {
  const uint8x16_t two_bits = vdupq_n_u8(3);
  float32x4_t acc[G];
  float mins[G];
  for (int k = 0; k < G; ++k) {
    acc[k] = vdupq_n_f32(0);
    mins[k] = 0;
  }
  for (int sb = 0; sb < n_blocks / kSuperActBlocks; ++sb) {
    const std::byte* wb = w + static_cast<size_t>(sb) * kQ2_KBytes;
    uint8_t packed_scales[16];
    std::memcpy(packed_scales, wb, 16);
    const float d = half_to_float(wb + 80), dmin = half_to_float(wb + 82);
    const Q8Block* ab = a0 + static_cast<size_t>(sb) * kSuperActBlocks;
    for (int h = 0; h < 2; ++h) {
      uint8x16_t qs[2] = {load_u8x16(wb + 16 + 32 * h), load_u8x16(wb + 32 + 32 * h)};  // shifted by 2 per group
      for (int r = 0; r < 4; ++r) {
        const int g = 4 * h + r;
        const Bytes32 q{vreinterpretq_s8_u8(vandq_u8(qs[0], two_bits)), vreinterpretq_s8_u8(vandq_u8(qs[1], two_bits))};
        qs[0] = vshrq_n_u8(qs[0], 2);
        qs[1] = vshrq_n_u8(qs[1], 2);
        const uint8_t s_lo = packed_scales[2 * g], s_hi = packed_scales[2 * g + 1];
#pragma GCC unroll 4
        for (int k = 0; k < G; ++k) {
          const Q8Block& a = ab[static_cast<size_t>(k) * act_stride + static_cast<size_t>(g)];
          acc[k] = vfmaq_n_f32(acc[k], vcvtq_f32_s32(dot32_half_scaled(q, a, s_lo & 15, s_hi & 15)), d * a.d);
          const int min_sum = (s_lo >> 4) * vaddlvq_s8(vld1q_s8(a.qs)) + (s_hi >> 4) * vaddlvq_s8(vld1q_s8(a.qs + 16));
          mins[k] += dmin * a.d * static_cast<float>(min_sum);
        }
      }
    }
  }
  for (int k = 0; k < G; ++k) out[static_cast<size_t>(k) * out_stride] = vaddvq_f32(acc[k]) - mins[k];
}

PENSIEVE_GROUP(Q4_1Group, (q4_1_q5_1_group<G, false>(w, a, s, nb, o, os)))
PENSIEVE_GROUP(Q5_1Group, (q4_1_q5_1_group<G, true>(w, a, s, nb, o, os)))
PENSIEVE_GROUP(Q5_0Group, (q5_0_group<G>(w, a, s, nb, o, os)))
PENSIEVE_GROUP(Q2_KGroup, (q2_k_group<G>(w, a, s, nb, o, os)))
PENSIEVE_GROUP(Q3_KGroup, (q3_k_group<G>(w, a, s, nb, o, os)))
PENSIEVE_GROUP(Q4_KGroup, (q4_k_q5_k_group<G, false>(w, a, s, nb, o, os)))
PENSIEVE_GROUP(Q5_KGroup, (q4_k_q5_k_group<G, true>(w, a, s, nb, o, os)))
PENSIEVE_GROUP(Q6_KGroup, (q6_k_group<G>(w, a, s, nb, o, os)))
PENSIEVE_VEC(vec_q4_1, Q4_1Group)
PENSIEVE_VEC(vec_q5_0, Q5_0Group)
PENSIEVE_VEC(vec_q5_1, Q5_1Group)
PENSIEVE_VEC(vec_q2_k, Q2_KGroup)
PENSIEVE_VEC(vec_q3_k, Q3_KGroup)
PENSIEVE_VEC(vec_q4_k, Q4_KGroup)
PENSIEVE_VEC(vec_q5_k, Q5_KGroup)
PENSIEVE_VEC(vec_q6_k, Q6_KGroup)
