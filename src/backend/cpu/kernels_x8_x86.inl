// x86 kernels over eight interleaved weight rows (interleaved_weights.h); included by kernels_x86.inl after
// its helpers, inside its anonymous namespace, so the AVX2 and AVX-512 builds each get a copy.
//
// Per block, chunk c of the group holds four consecutive weights of each of the eight rows, one row per
// 32-bit lane. The matching four activation bytes are broadcast to every lane, so a u8 x s8 dot product
// leaves each row's partial sum in its own lane: after the block's chunks the eight lanes are the eight
// rows' integer dot products, scaled by the rows' eight fp16 scales as one vector.

constexpr size_t kX8ScaleBytes = 16;

inline __m256i broadcast_u32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

inline __m256 x8_scales(const std::byte* group_block) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(group_block)));
}

// Q4_0: weights are stored +8 in 0..15, so they are already unsigned for maddubs/dpbusd; the +8 comes off
// as 8 * sum(a) per block. Without VNNI the 16-bit pair sums of a whole block are added before widening:
// eight of them reach at most 8 * 2 * 15 * 127 = 30480, inside int16.
template <int G>
void q4_0x8_group(const std::byte* w, const Q8Block* a0, size_t act_stride, int n_blocks, float* out,
                  size_t out_stride) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  __m256 acc[G];
  for (int k = 0; k < G; ++k) acc[k] = _mm256_setzero_ps();
  for (int b = 0; b < n_blocks; ++b) {
    const std::byte* gb = w + static_cast<size_t>(b) * kQ4_0x8GroupBlockBytes;
    __m256i isum[G];
    for (int k = 0; k < G; ++k) isum[k] = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const __m256i packed = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(gb + kX8ScaleBytes + 32 * c));
      const __m256i lo = _mm256_and_si256(packed, low4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low4);
#pragma GCC unroll 4
      for (int k = 0; k < G; ++k) {
        const int8_t* qa = a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(b)].qs;
        const __m256i alo = broadcast_u32(qa + 4 * c), ahi = broadcast_u32(qa + 16 + 4 * c);
#ifdef PENSIEVE_AVX512
        isum[k] = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(isum[k], lo, alo), hi, ahi);
#else
        isum[k] = _mm256_add_epi16(isum[k], _mm256_add_epi16(_mm256_maddubs_epi16(lo, alo), _mm256_maddubs_epi16(hi, ahi)));
#endif
      }
    }
    const __m256 dw = x8_scales(gb);
#pragma GCC unroll 4
    for (int k = 0; k < G; ++k) {
      const Q8Block& a = a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(b)];
#ifdef PENSIEVE_AVX512
      const __m256i dot = isum[k];
#else
      const __m256i dot = _mm256_madd_epi16(isum[k], _mm256_set1_epi16(1));
#endif
      const __m256i centred = _mm256_sub_epi32(dot, _mm256_set1_epi32(8 * a.sum));
      acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(centred), _mm256_mul_ps(dw, _mm256_set1_ps(a.d)), acc[k]);
    }
  }
  for (int k = 0; k < G; ++k) _mm256_storeu_ps(out + static_cast<size_t>(k) * out_stride, acc[k]);
}

// Q8_0: signed weights, so each chunk's sign moves onto the activations (|w| unsigned for maddubs/dpbusd).
// Without VNNI a pair sum can reach 2 * 127 * 127, so every chunk widens to int32 on its own.
template <int G>
void q8_0x8_group(const std::byte* w, const Q8Block* a0, size_t act_stride, int n_blocks, float* out,
                  size_t out_stride) {
  __m256 acc[G];
  for (int k = 0; k < G; ++k) acc[k] = _mm256_setzero_ps();
  for (int b = 0; b < n_blocks; ++b) {
    const std::byte* gb = w + static_cast<size_t>(b) * kQ8_0x8GroupBlockBytes;
    __m256i isum[G];
    for (int k = 0; k < G; ++k) isum[k] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int c = 0; c < 8; ++c) {
      const __m256i qw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(gb + kX8ScaleBytes + 32 * c));
      const __m256i aw = _mm256_sign_epi8(qw, qw);
#pragma GCC unroll 4
      for (int k = 0; k < G; ++k) {
        const int8_t* qa = a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(b)].qs;
        const __m256i sa = _mm256_sign_epi8(broadcast_u32(qa + 4 * c), qw);
#ifdef PENSIEVE_AVX512
        isum[k] = _mm256_dpbusd_epi32(isum[k], aw, sa);
#else
        isum[k] = _mm256_add_epi32(isum[k], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sa), _mm256_set1_epi16(1)));
#endif
      }
    }
    const __m256 dw = x8_scales(gb);
#pragma GCC unroll 4
    for (int k = 0; k < G; ++k) {
      const float ad = a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(b)].d;
      acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[k]), _mm256_mul_ps(dw, _mm256_set1_ps(ad)), acc[k]);
    }
  }
  for (int k = 0; k < G; ++k) _mm256_storeu_ps(out + static_cast<size_t>(k) * out_stride, acc[k]);
}

PENSIEVE_GROUP(Q4_0x8Group, (q4_0x8_group<G>(w, a, s, nb, o, os)))
PENSIEVE_GROUP(Q8_0x8Group, (q8_0x8_group<G>(w, a, s, nb, o, os)))

PENSIEVE_VEC(x8_q4_0, Q4_0x8Group)

PENSIEVE_VEC(x8_q8_0, Q8_0x8Group)

// Q4_K: x = d * sc[g] * q - dmin * m[g] for the 32-element group g of a 256-element super-block, so
// sum(x * a) = d * sc[g] * sum(q * a) - dmin * m[g] * sum(a) per group. The eight rows' 6-bit scales and mins
// are unpacked once per super-block into float lanes (d * sc and dmin * m, row r in lane r); each group is
// then eight broadcast chunks of int16 pair sums (at most 8 * 2 * 15 * 127 = 30480), one widening, one
// conversion and two multiply-adds for all eight rows.
struct K4RowScales {
  alignas(32) float dsc[8][8];  // [group][row]: d * scale
  alignas(32) float dmn[8][8];  // [group][row]: dmin * min
};

inline void unpack_k4_row_scales(const std::byte* group_block, K4RowScales& out) {
  const __m256 d = x8_scales(group_block), dmin = x8_scales(group_block + 16);
  __m256i p[12];  // packed byte j of the eight rows, one row per 32-bit lane
  for (int j = 0; j < 12; ++j) {
    p[j] = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(group_block + 32 + 8 * j)));
  }
  const __m256i six = _mm256_set1_epi32(63), four = _mm256_set1_epi32(15);
  for (int g = 0; g < 8; ++g) {
    __m256i sc, mn;
    if (g < 4) {
      sc = _mm256_and_si256(p[g], six);
      mn = _mm256_and_si256(p[g + 4], six);
    } else {
      sc = _mm256_or_si256(_mm256_and_si256(p[g + 4], four), _mm256_slli_epi32(_mm256_srli_epi32(p[g - 4], 6), 4));
      mn = _mm256_or_si256(_mm256_srli_epi32(p[g + 4], 4), _mm256_slli_epi32(_mm256_srli_epi32(p[g], 6), 4));
    }
    _mm256_store_ps(out.dsc[g], _mm256_mul_ps(d, _mm256_cvtepi32_ps(sc)));
    _mm256_store_ps(out.dmn[g], _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(mn)));
  }
}

template <int G>
void q4_kx8_group(const std::byte* w, const Q8Block* a0, size_t act_stride, int n_blocks, float* out,
                  size_t out_stride) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  __m256 acc[G];
  for (int k = 0; k < G; ++k) acc[k] = _mm256_setzero_ps();
  K4RowScales rs;
  for (int sb = 0; sb < n_blocks / 8; ++sb) {
    const std::byte* gb = w + static_cast<size_t>(sb) * kQ4_Kx8GroupBlockBytes;
    unpack_k4_row_scales(gb, rs);
    const std::byte* quants = gb + 128;
    for (int g = 0; g < 8; ++g) {
      // Group g's weights: the low (even g) or high nibbles of chunks 8 * (g / 2) .. + 7.
      const std::byte* chunks = quants + 32 * 8 * static_cast<size_t>(g / 2);
      const int shift = (g % 2) * 4;
      __m256i isum[G];
      for (int k = 0; k < G; ++k) isum[k] = _mm256_setzero_si256();
#pragma GCC unroll 8
      for (int v = 0; v < 8; ++v) {
        const __m256i packed = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(chunks + 32 * v));
        const __m256i q = _mm256_and_si256(_mm256_srli_epi16(packed, shift), low4);
#pragma GCC unroll 4
        for (int k = 0; k < G; ++k) {
          const int8_t* qa = a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(sb) * 8 + static_cast<size_t>(g)].qs;
#ifdef PENSIEVE_AVX512
          isum[k] = _mm256_dpbusd_epi32(isum[k], q, broadcast_u32(qa + 4 * v));
#else
          isum[k] = _mm256_add_epi16(isum[k], _mm256_maddubs_epi16(q, broadcast_u32(qa + 4 * v)));
#endif
        }
      }
      const __m256 dsc = _mm256_load_ps(rs.dsc[g]), dmn = _mm256_load_ps(rs.dmn[g]);
#pragma GCC unroll 4
      for (int k = 0; k < G; ++k) {
        const Q8Block& a = a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(sb) * 8 + static_cast<size_t>(g)];
#ifdef PENSIEVE_AVX512
        const __m256i dot = isum[k];
#else
        const __m256i dot = _mm256_madd_epi16(isum[k], _mm256_set1_epi16(1));
#endif
        acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(dsc, _mm256_set1_ps(a.d)), acc[k]);
        acc[k] = _mm256_fnmadd_ps(dmn, _mm256_set1_ps(a.d * static_cast<float>(a.sum)), acc[k]);
      }
    }
  }
  for (int k = 0; k < G; ++k) _mm256_storeu_ps(out + static_cast<size_t>(k) * out_stride, acc[k]);
}

PENSIEVE_GROUP(Q4_Kx8Group, (q4_kx8_group<G>(w, a, s, nb, o, os)))

PENSIEVE_VEC(x8_q4_k, Q4_Kx8Group)

// Q6_K: x = d * sc[e / 16] * (q - 32) with q six bits (low nibble from ql, top two bits from qh), so per
// 16-element half sum(x * a) = d * sc * (sum(q * a) - 32 * sum(a)). q is unsigned 0..63 for maddubs/dpbusd; a
// pair of chunks' 16-bit sums reaches at most 2 * 2 * 63 * 127 = 32004, inside int16. The rows' d * sc are
// unpacked once per super-block into float lanes.
template <int G>
void q6_kx8_group(const std::byte* w, const Q8Block* a0, size_t act_stride, int n_blocks, float* out,
                  size_t out_stride) {
  const __m256i low4 = _mm256_set1_epi8(0x0F), two = _mm256_set1_epi8(0x03);
  __m256 acc[G];
  for (int k = 0; k < G; ++k) acc[k] = _mm256_setzero_ps();
  alignas(32) float dsc[16][8];  // [16-element half][row]: d * scale
  for (int sb = 0; sb < n_blocks / 8; ++sb) {
    const std::byte* gb = w + static_cast<size_t>(sb) * kQ6_Kx8GroupBlockBytes;
    const __m256 d = x8_scales(gb);
    for (int j = 0; j < 16; ++j) {
      const __m256i sc = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(gb + 16 + 8 * j)));
      _mm256_store_ps(dsc[j], _mm256_mul_ps(d, _mm256_cvtepi32_ps(sc)));
    }
    const std::byte* ql = gb + 144;
    const std::byte* qh = ql + 32 * 32;
    for (int g = 0; g < 8; ++g) {
      const int half = g / 4, quarter = g % 4;
      const std::byte* ql_chunks = ql + 32 * static_cast<size_t>(16 * half + 8 * (quarter & 1));
      const std::byte* qh_chunks = qh + 32 * static_cast<size_t>(8 * half);
      const int low_shift = quarter < 2 ? 0 : 4, high_shift = 2 * quarter;
      __m256i isum[2][G];  // per 16-element half of the group
      for (int k = 0; k < G; ++k) isum[0][k] = isum[1][k] = _mm256_setzero_si256();
#pragma GCC unroll 4
      for (int pair = 0; pair < 4; ++pair) {
        __m256i q[2];
        for (int t = 0; t < 2; ++t) {
          const int v = 2 * pair + t;
          const __m256i l = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql_chunks + 32 * v));
          const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh_chunks + 32 * v));
          q[t] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l, low_shift), low4),
                                 _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, high_shift), two), 4));
        }
#pragma GCC unroll 4
        for (int k = 0; k < G; ++k) {
          const int8_t* qa = a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(sb) * 8 + static_cast<size_t>(g)].qs;
          const __m256i a_first = broadcast_u32(qa + 8 * pair), a_second = broadcast_u32(qa + 8 * pair + 4);
#ifdef PENSIEVE_AVX512
          isum[pair / 2][k] = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(isum[pair / 2][k], q[0], a_first), q[1], a_second);
#else
          const __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(q[0], a_first), _mm256_maddubs_epi16(q[1], a_second));
          isum[pair / 2][k] = _mm256_add_epi32(isum[pair / 2][k], _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
#endif
        }
      }
#pragma GCC unroll 4
      for (int k = 0; k < G; ++k) {
        const Q8Block& a = a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(sb) * 8 + static_cast<size_t>(g)];
        // sum(a) over the first 16 elements; the second half's is the block sum minus it.
        const __m128i first = _mm_madd_epi16(_mm_maddubs_epi16(_mm_set1_epi8(1), _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.qs))),
                                             _mm_set1_epi16(1));
        const __m128i s2 = _mm_add_epi32(first, _mm_shuffle_epi32(first, 0x4E));
        const int sum_first = _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0xB1)));
        const int sums[2] = {sum_first, a.sum - sum_first};
        const __m256 ad = _mm256_set1_ps(a.d);
        for (int hh = 0; hh < 2; ++hh) {
          const __m256i centred = _mm256_sub_epi32(isum[hh][k], _mm256_set1_epi32(32 * sums[hh]));
          acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(centred), _mm256_mul_ps(_mm256_load_ps(dsc[2 * g + hh]), ad), acc[k]);
        }
      }
    }
  }
  for (int k = 0; k < G; ++k) _mm256_storeu_ps(out + static_cast<size_t>(k) * out_stride, acc[k]);
}

PENSIEVE_GROUP(Q6_Kx8Group, (q6_kx8_group<G>(w, a, s, nb, o, os)))

PENSIEVE_VEC(x8_q6_k, Q6_Kx8Group)
