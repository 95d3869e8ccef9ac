// x86 int8 dot products for Q4_1, Q5_0, Q5_1 and the K-quants; included by kernels_x86.inl (after its
// helpers and in_groups, inside its anonymous namespace) so both instruction-set builds get a copy.
//
// Each kernel runs G activation rows per pass over one weight row: a 32-element chunk of weights is
// unpacked to bytes once and multiplied into every row of the group. Activation blocks carry their own
// scale, so the integer sums are turned into float once per 32 elements.
//
// Formats with one scale per 16 elements (Q2_K, Q3_K, Q6_K) apply it with madd_epi16 on the pairwise
// products, where the plain dot would multiply by ones: a [s0 x8 | s1 x8] vector weights each half of the
// 32 elements. That path is the same on AVX-512 (vpdpbusd sums four products, too coarse for the halves).
// Signed weights (Q3_K, Q6_K) move their sign onto the activation so maddubs sees |w| unsigned; that needs
// activations above -128, which quantize_q8 guarantees (it rounds into -127..127).

// Byte offsets inside the blocks of tensor/block_layouts.h (structs not dereferenced: no alignment promise).
constexpr size_t kQ4_1Bytes = 20, kQ5_0Bytes = 22, kQ5_1Bytes = 24;
constexpr size_t kQ2_KBytes = 84, kQ3_KBytes = 110, kQ4_KBytes = 144, kQ5_KBytes = 176, kQ6_KBytes = 210;
constexpr int kSuperActBlocks = 8;  // Q8Blocks per 256-element K-quant super-block

inline __m256i load_bytes(const std::byte* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline __m256i load_act(const Q8Block& a) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs)); }

inline uint32_t load_u32(const std::byte* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Sum of u*s over each 16-element half of 32 bytes, weighted by that half's int16 scale in `scales`.
inline __m256i dot_u8s8_scaled(__m256i u, __m256i s, __m256i scales) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scales);
}

// [s0 x8 | s1 x8] as int16: the scales of elements 0..15 and 16..31 in madd_epi16's pair order.
inline __m256i half_scales(int s0, int s1) {
  return _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(s1)), _mm_set1_epi16(static_cast<int16_t>(s0)));
}

// Bit i of `bits` as 0x10 in byte i (the fifth bit of Q5_0/Q5_1 element i).
inline __m256i fifth_bits(uint32_t bits) {
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(bits)),
      _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i select = _mm256_set1_epi64x(0x8040201008040201);
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, select), select), _mm256_set1_epi8(0x10));
}

// Q4_1 (x = d*q + m) and Q5_1 (the same with a fifth bit): sum(x*a) = d*sum(q*a) + m*sum(a).
template <int G, bool kFifthBit>
void q4_1_q5_1_group(const std::byte* w, const Q8Block* a0, size_t act_stride, int n_blocks, float* out,
                     size_t out_stride) {
  constexpr size_t kBytes = kFifthBit ? kQ5_1Bytes : kQ4_1Bytes;
  __m256 acc[G];
  float offset[G];
  for (int k = 0; k < G; ++k) {
    acc[k] = _mm256_setzero_ps();
    offset[k] = 0;
  }
  for (int b = 0; b < n_blocks; ++b) {
    const std::byte* wb = w + static_cast<size_t>(b) * kBytes;
    const float dw = half_to_float(wb), mw = half_to_float(wb + 2);
    __m256i qw = legacy_nibbles(wb + (kFifthBit ? 8 : 4));
    if constexpr (kFifthBit) qw = _mm256_or_si256(qw, fifth_bits(load_u32(wb + 4)));
#pragma GCC unroll 4
    for (int k = 0; k < G; ++k) {
      const Q8Block& a = a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(b)];
      acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_u8s8(qw, load_act(a))), _mm256_set1_ps(dw * a.d), acc[k]);
      offset[k] += mw * a.d * static_cast<float>(a.sum);
    }
  }
  for (int k = 0; k < G; ++k) out[static_cast<size_t>(k) * out_stride] = hsum256(acc[k]) + offset[k];
}

// Q5_0: x = d*(q - 16), so sum(x*a) = d*(sum(q*a) - 16*sum(a)).
template <int G>
void q5_0_group(const std::byte* w, const Q8Block* a0, size_t act_stride, int n_blocks, float* out,
                size_t out_stride) {
  __m256 acc[G];
  float offset[G];
  for (int k = 0; k < G; ++k) {
    acc[k] = _mm256_setzero_ps();
    offset[k] = 0;
  }
  for (int b = 0; b < n_blocks; ++b) {
    const std::byte* wb = w + static_cast<size_t>(b) * kQ5_0Bytes;
    const float dw = half_to_float(wb);
    const __m256i qw = _mm256_or_si256(legacy_nibbles(wb + 6), fifth_bits(load_u32(wb + 2)));
#pragma GCC unroll 4
    for (int k = 0; k < G; ++k) {
      const Q8Block& a = a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(b)];
      const float scale = dw * a.d;
      acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_u8s8(qw, load_act(a))), _mm256_set1_ps(scale), acc[k]);
      offset[k] += scale * static_cast<float>(a.sum);
    }
  }
  for (int k = 0; k < G; ++k) out[static_cast<size_t>(k) * out_stride] = hsum256(acc[k]) - 16.0f * offset[k];
}

// Q4_K/Q5_K scales and mins: eight 6-bit pairs in 12 bytes (see unpack_k4_scale_min), unpacked four at a
// time as bytes of 32-bit words. Groups 0..3 keep their low six bits in bytes 0..3 (scales) and 4..7
// (mins); groups 4..7 their low nibbles in bytes 8..11 and their top two bits above those of groups 0..3.
struct K4Scales {
  uint8_t scale[8];
  uint8_t min[8];
};
inline K4Scales unpack_k4_scales(const std::byte* packed) {
  const uint32_t lo_scales = load_u32(packed), lo_mins = load_u32(packed + 4), nibbles = load_u32(packed + 8);
  const uint32_t words[4] = {
      lo_scales & 0x3F3F3F3Fu,
      (nibbles & 0x0F0F0F0Fu) | (((lo_scales >> 6) & 0x03030303u) << 4),
      lo_mins & 0x3F3F3F3Fu,
      ((nibbles >> 4) & 0x0F0F0F0Fu) | (((lo_mins >> 6) & 0x03030303u) << 4),
  };
  K4Scales s;
  std::memcpy(&s, words, sizeof s);
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
  const __m256i low4 = _mm256_set1_epi8(0x0F), bit4 = _mm256_set1_epi8(0x10);
  __m256 acc[G];
  float mins[G];
  for (int k = 0; k < G; ++k) {
    acc[k] = _mm256_setzero_ps();
    mins[k] = 0;
  }
  for (int sb = 0; sb < n_blocks / kSuperActBlocks; ++sb) {
    const std::byte* wb = w + static_cast<size_t>(sb) * kBytes;
    const float d = half_to_float(wb), dmin = half_to_float(wb + 2);
    const K4Scales sm = unpack_k4_scales(wb + 4);
    __m256i qh = kFifthBit ? load_bytes(wb + 16) : _mm256_setzero_si256();
    const Q8Block* ab = a0 + static_cast<size_t>(sb) * kSuperActBlocks;
    for (int c = 0; c < 4; ++c) {
      const __m256i packed = load_bytes(wb + kQsOffset + 32 * static_cast<size_t>(c));
      __m256i q_lo = _mm256_and_si256(packed, low4);
      __m256i q_hi = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low4);
      if constexpr (kFifthBit) {  // qh is shifted right by 2c: the bits of groups 2c, 2c+1 are now bits 0, 1
        q_lo = _mm256_or_si256(q_lo, _mm256_and_si256(_mm256_slli_epi16(qh, 4), bit4));
        q_hi = _mm256_or_si256(q_hi, _mm256_and_si256(_mm256_slli_epi16(qh, 3), bit4));
        qh = _mm256_srli_epi16(qh, 2);
      }
      const float scale_lo = d * sm.scale[2 * c], scale_hi = d * sm.scale[2 * c + 1];
      const float min_lo = dmin * sm.min[2 * c], min_hi = dmin * sm.min[2 * c + 1];
#pragma GCC unroll 4
      for (int k = 0; k < G; ++k) {
        const Q8Block* a = ab + static_cast<size_t>(k) * act_stride + 2 * static_cast<size_t>(c);
        acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_u8s8(q_lo, load_act(a[0]))), _mm256_set1_ps(scale_lo * a[0].d), acc[k]);
        acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_u8s8(q_hi, load_act(a[1]))), _mm256_set1_ps(scale_hi * a[1].d), acc[k]);
        mins[k] += min_lo * a[0].d * static_cast<float>(a[0].sum) + min_hi * a[1].d * static_cast<float>(a[1].sum);
      }
    }
  }
  for (int k = 0; k < G; ++k) out[static_cast<size_t>(k) * out_stride] = hsum256(acc[k]) - mins[k];
}

// Adds sum(w*a) * scale16 (per 16-element half) for signed 32-byte weights w, times `factor`, to acc.
inline __m256 signed_scaled_fmadd(__m256i abs_w, __m256i w, __m256i scales, const Q8Block& a, float factor,
                                  __m256 acc) {
  const __m256i p = dot_u8s8_scaled(abs_w, _mm256_sign_epi8(load_act(a), w), scales);
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(factor * a.d), acc);
}

// Q6_K: x = d*sc[e/16]*(q - 32), q six bits. For half h (128 elements) and quarter r, group 4h+r takes its
// low nibbles from ql[64h + 32(r&1) ...] (high nibbles when r >= 2) and its top bits from bits 2r, 2r+1 of
// qh[32h ...].
template <int G>
void q6_k_group(const std::byte* w, const Q8Block* a0, size_t act_stride, int n_blocks, float* out,
                size_t out_stride) {
  const __m256i low4 = _mm256_set1_epi8(0x0F), bits45 = _mm256_set1_epi8(0x30), offset = _mm256_set1_epi8(32);
  __m256 acc[G];
  for (int k = 0; k < G; ++k) acc[k] = _mm256_setzero_ps();
  for (int sb = 0; sb < n_blocks / kSuperActBlocks; ++sb) {
    const std::byte* wb = w + static_cast<size_t>(sb) * kQ6_KBytes;
    const auto* scales = reinterpret_cast<const int8_t*>(wb + 192);
    const float d = half_to_float(wb + 208);
    const Q8Block* ab = a0 + static_cast<size_t>(sb) * kSuperActBlocks;
    for (int h = 0; h < 2; ++h) {
      const __m256i l0 = load_bytes(wb + 64 * h), l1 = load_bytes(wb + 64 * h + 32);
      const __m256i hq = load_bytes(wb + 128 + 32 * h);
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_and_si256(_mm256_slli_epi16(hq, 4), bits45)),
          _mm256_or_si256(_mm256_and_si256(l1, low4), _mm256_and_si256(_mm256_slli_epi16(hq, 2), bits45)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4), _mm256_and_si256(hq, bits45)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4), _mm256_and_si256(_mm256_srli_epi16(hq, 2), bits45)),
      };
      for (int r = 0; r < 4; ++r) {
        const int g = 4 * h + r;
        const __m256i wq = _mm256_sub_epi8(q[r], offset);
        const __m256i abs_w = _mm256_sign_epi8(wq, wq);
        const __m256i sc = half_scales(scales[2 * g], scales[2 * g + 1]);
#pragma GCC unroll 4
        for (int k = 0; k < G; ++k) {
          acc[k] = signed_scaled_fmadd(abs_w, wq, sc, ab[static_cast<size_t>(k) * act_stride + static_cast<size_t>(g)], d, acc[k]);
        }
      }
    }
  }
  for (int k = 0; k < G; ++k) out[static_cast<size_t>(k) * out_stride] = hsum256(acc[k]);
}

// Q3_K's sixteen 6-bit scales, minus their offset of 32, as bytes. Low nibbles: bytes 0..7 (groups 0..7
// in their low halves, groups 8..15 in their high halves); top two bits of group g: byte 8 + g%4, bit
// 2*(g/4). Four groups at a time as the bytes of a 32-bit word.
inline __m128i unpack_q3_k_scales(const std::byte* packed) {
  uint64_t lows;
  std::memcpy(&lows, packed, 8);
  const uint32_t highs = load_u32(packed + 8);
  int words[4];
  for (int j = 0; j < 4; ++j) {
    const uint32_t low = static_cast<uint32_t>((j < 2 ? lows : lows >> 4) >> (32 * (j & 1))) & 0x0F0F0F0Fu;
    words[j] = static_cast<int>(low | (((highs >> (2 * j)) & 0x03030303u) << 4));
  }
  return _mm_sub_epi8(_mm_setr_epi32(words[0], words[1], words[2], words[3]), _mm_set1_epi8(32));
}

// Q3_K: x = d*sc[e/16]*q, q = (2-bit field) - 4 unless bit g of hmask[e%32] is set. Group 4h+r's 2-bit
// fields sit at bit 2r of qs[32h ...].
template <int G>
void q3_k_group(const std::byte* w, const Q8Block* a0, size_t act_stride, int n_blocks, float* out,
                size_t out_stride) {
  const __m256i two_bits = _mm256_set1_epi8(3), bit2 = _mm256_set1_epi8(4);
  __m256 acc[G];
  for (int k = 0; k < G; ++k) acc[k] = _mm256_setzero_ps();
  for (int sb = 0; sb < n_blocks / kSuperActBlocks; ++sb) {
    const std::byte* wb = w + static_cast<size_t>(sb) * kQ3_KBytes;
    const float d = half_to_float(wb + 108);
    alignas(16) int8_t scales[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(scales), unpack_q3_k_scales(wb + 96));
    __m256i hmask = load_bytes(wb);  // shifted right once per group: bit 0 is the current group's
    const Q8Block* ab = a0 + static_cast<size_t>(sb) * kSuperActBlocks;
    for (int h = 0; h < 2; ++h) {
      __m256i qs = load_bytes(wb + 32 + 32 * h);  // shifted right by 2 per group
      for (int r = 0; r < 4; ++r) {
        const int g = 4 * h + r;
        const __m256i high = _mm256_and_si256(_mm256_slli_epi16(hmask, 2), bit2);
        const __m256i wq = _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(qs, two_bits), high), bit2);
        hmask = _mm256_srli_epi16(hmask, 1);
        qs = _mm256_srli_epi16(qs, 2);
        const __m256i abs_w = _mm256_sign_epi8(wq, wq);
        const __m256i sc = half_scales(scales[2 * g], scales[2 * g + 1]);
#pragma GCC unroll 4
        for (int k = 0; k < G; ++k) {
          acc[k] = signed_scaled_fmadd(abs_w, wq, sc, ab[static_cast<size_t>(k) * act_stride + static_cast<size_t>(g)], d, acc[k]);
        }
      }
    }
  }
  for (int k = 0; k < G; ++k) out[static_cast<size_t>(k) * out_stride] = hsum256(acc[k]);
}

// Q2_K: x = d*(s & 15)*q - dmin*(s >> 4) with s = scales[e/16], q the 2-bit field as in Q3_K. The mins
// weight each 16-element half of the activations separately, so their sum is taken as a dot product too.
template <int G>
void q2_k_group(const std::byte* w, const Q8Block* a0, size_t act_stride, int n_blocks, float* out,
                size_t out_stride) {
  const __m256i two_bits = _mm256_set1_epi8(3);
  const __m128i low4 = _mm_set1_epi8(0x0F);
  __m256 acc[G];
  for (int k = 0; k < G; ++k) acc[k] = _mm256_setzero_ps();
  for (int sb = 0; sb < n_blocks / kSuperActBlocks; ++sb) {
    const std::byte* wb = w + static_cast<size_t>(sb) * kQ2_KBytes;
    // Unpacked for the whole super-block at once: per-group byte fiddling made GCC spill through the stack.
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(wb));
    alignas(32) int16_t scales[16];
    alignas(16) uint8_t group_mins[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(scales), _mm256_cvtepu8_epi16(_mm_and_si128(packed, low4)));
    _mm_store_si128(reinterpret_cast<__m128i*>(group_mins), _mm_and_si128(_mm_srli_epi16(packed, 4), low4));
    const float d = half_to_float(wb + 80), neg_dmin = -half_to_float(wb + 82);
    const Q8Block* ab = a0 + static_cast<size_t>(sb) * kSuperActBlocks;
    for (int h = 0; h < 2; ++h) {
      __m256i qs = load_bytes(wb + 16 + 32 * h);  // shifted right by 2 per group
      for (int r = 0; r < 4; ++r) {
        const int g = 4 * h + r;
        const __m256i q = _mm256_and_si256(qs, two_bits);
        qs = _mm256_srli_epi16(qs, 2);
        const __m256i sc = half_scales(scales[2 * g], scales[2 * g + 1]);
        const __m256i mins = _mm256_set_m128i(_mm_set1_epi8(static_cast<char>(group_mins[2 * g + 1])),
                                              _mm_set1_epi8(static_cast<char>(group_mins[2 * g])));
#pragma GCC unroll 4
        for (int k = 0; k < G; ++k) {
          const Q8Block& a = ab[static_cast<size_t>(k) * act_stride + static_cast<size_t>(g)];
          const __m256i qa = load_act(a);
          acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_u8s8_scaled(q, qa, sc)), _mm256_set1_ps(d * a.d), acc[k]);
          acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_u8s8(mins, qa)), _mm256_set1_ps(neg_dmin * a.d), acc[k]);
        }
      }
    }
  }
  for (int k = 0; k < G; ++k) out[static_cast<size_t>(k) * out_stride] = hsum256(acc[k]);
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
