// NEON kernels over eight interleaved weight rows (interleaved_weights.h); included by kernels_neon.inl after
// its helpers and in_groups, inside its anonymous namespace, so the baseline and dot product builds each get
// a copy.
//
// Chunk c of a group block is 32 bytes: four consecutive weights of each of the eight rows. Its first 16
// bytes are rows 0..3, one row per 32-bit lane, its second 16 bytes rows 4..7. Against the matching four
// activation bytes, every lane collects one row's dot product, so a block ends with the eight rows' integer
// sums in two vectors, scaled by the eight fp16 scales at once, and nothing is summed across lanes.
//
// With the dot product extension, vdotq_laneq_s32 multiplies a 16-byte weight load by four activation bytes
// picked from a 16-byte activation load by lane index. Without it, the activation bytes are broadcast and
// the products widen through vmull_s8/vmlal_s8 into int16, each int16 lane holding one (row, position)
// pair; pairwise adds then fold the four positions of a row together.

constexpr size_t kX8ScaleBytes = 16;

// The eight rows' fp16 scales as float: rows 0..3 and 4..7.
struct X8Scales {
  float32x4_t lo, hi;
};

inline X8Scales x8_scales(const std::byte* group_block) {
  const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(reinterpret_cast<const uint16_t*>(group_block)));
  return {vcvt_f32_f16(vget_low_f16(h)), vcvt_high_f32_f16(h)};
}

inline int8x16_t x8_chunk_half(const std::byte* gb, int c, int half) {
  return vld1q_s8(reinterpret_cast<const int8_t*>(gb + kX8ScaleBytes + 32 * static_cast<size_t>(c) + 16 * static_cast<size_t>(half)));
}

// acc += dw * ad * isum, for rows 0..3 (lo) and 4..7 (hi).
inline void x8_accumulate(float32x4_t acc[2], int32x4_t isum_lo, int32x4_t isum_hi, const X8Scales& dw, float ad) {
  acc[0] = vfmaq_f32(acc[0], vcvtq_f32_s32(isum_lo), vmulq_n_f32(dw.lo, ad));
  acc[1] = vfmaq_f32(acc[1], vcvtq_f32_s32(isum_hi), vmulq_n_f32(dw.hi, ad));
}

#ifndef PENSIEVE_DOTPROD
// Four activation bytes in every 32-bit lane.
inline int8x16_t broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

// [row a: 2 lanes][row b: 2 lanes] x2 -> [row 0, row 1, row 2, row 3]: the last fold of the pair sums.
inline int32x4_t fold_rows(int32x4_t rows01, int32x4_t rows23) { return vpaddq_s32(rows01, rows23); }
#endif

// Q4_0: weights are stored +8 (0..15), so they stay unsigned and the +8 comes off as 8 * sum(a) per block.
template <int G>
void q4_0x8_group(const std::byte* w, const Q8Block* a0, size_t act_stride, int n_blocks, float* out,
                  size_t out_stride) {
  const uint8x16_t low4 = vdupq_n_u8(0x0F);
  float32x4_t acc[G][2];
  for (int k = 0; k < G; ++k) acc[k][0] = acc[k][1] = vdupq_n_f32(0);
  for (int b = 0; b < n_blocks; ++b) {
    const std::byte* gb = w + static_cast<size_t>(b) * kQ4_0x8GroupBlockBytes;
#ifdef PENSIEVE_DOTPROD
    int32x4_t isum[G][2];
    int8x16_t qa_lo[G], qa_hi[G];  // elements 0..15 (low nibbles' partners) and 16..31 (high nibbles')
    for (int k = 0; k < G; ++k) {
      const Q8Block& a = a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(b)];
      isum[k][0] = isum[k][1] = vdupq_n_s32(-8 * a.sum);
      qa_lo[k] = vld1q_s8(a.qs);
      qa_hi[k] = vld1q_s8(a.qs + 16);
    }
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
#pragma GCC unroll 2
      for (int half = 0; half < 2; ++half) {
        const uint8x16_t packed = vreinterpretq_u8_s8(x8_chunk_half(gb, c, half));
        const int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(packed, low4));
        const int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(packed, 4));
#pragma GCC unroll 4
        for (int k = 0; k < G; ++k) {
          // vdotq_laneq_s32 takes its lane as a literal; unrolled, c is known and the switch folds away.
          switch (c) {
            case 0: isum[k][half] = vdotq_laneq_s32(vdotq_laneq_s32(isum[k][half], lo, qa_lo[k], 0), hi, qa_hi[k], 0); break;
            case 1: isum[k][half] = vdotq_laneq_s32(vdotq_laneq_s32(isum[k][half], lo, qa_lo[k], 1), hi, qa_hi[k], 1); break;
            case 2: isum[k][half] = vdotq_laneq_s32(vdotq_laneq_s32(isum[k][half], lo, qa_lo[k], 2), hi, qa_hi[k], 2); break;
            default: isum[k][half] = vdotq_laneq_s32(vdotq_laneq_s32(isum[k][half], lo, qa_lo[k], 3), hi, qa_hi[k], 3); break;
          }
        }
      }
    }
    const X8Scales dw = x8_scales(gb);
#pragma GCC unroll 4
    for (int k = 0; k < G; ++k) {
      x8_accumulate(acc[k], isum[k][0], isum[k][1], dw, a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(b)].d);
    }
#else
    // int16 lane (row pair p, position) sums eight products of a block, at most 8 * 15 * 127 = 15240.
    int16x8_t pairs[G][4];  // rows 0-1, 2-3, 4-5, 6-7
    for (int k = 0; k < G; ++k) pairs[k][0] = pairs[k][1] = pairs[k][2] = pairs[k][3] = vdupq_n_s16(0);
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
#pragma GCC unroll 2
      for (int half = 0; half < 2; ++half) {
        const uint8x16_t packed = vreinterpretq_u8_s8(x8_chunk_half(gb, c, half));
        const int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(packed, low4));
        const int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(packed, 4));
#pragma GCC unroll 4
        for (int k = 0; k < G; ++k) {
          const int8_t* qa = a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(b)].qs;
          const int8x16_t alo = broadcast4(qa + 4 * c), ahi = broadcast4(qa + 16 + 4 * c);
          int16x8_t& p01 = pairs[k][2 * half];
          int16x8_t& p23 = pairs[k][2 * half + 1];
          p01 = vmlal_s8(vmlal_s8(p01, vget_low_s8(lo), vget_low_s8(alo)), vget_low_s8(hi), vget_low_s8(ahi));
          p23 = vmlal_high_s8(vmlal_high_s8(p23, lo, alo), hi, ahi);
        }
      }
    }
    const X8Scales dw = x8_scales(gb);
#pragma GCC unroll 4
    for (int k = 0; k < G; ++k) {
      const Q8Block& a = a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(b)];
      const int32x4_t offset = vdupq_n_s32(-8 * a.sum);
      const int32x4_t rows_lo = fold_rows(vpaddlq_s16(pairs[k][0]), vpaddlq_s16(pairs[k][1]));
      const int32x4_t rows_hi = fold_rows(vpaddlq_s16(pairs[k][2]), vpaddlq_s16(pairs[k][3]));
      x8_accumulate(acc[k], vaddq_s32(rows_lo, offset), vaddq_s32(rows_hi, offset), dw, a.d);
    }
#endif
  }
  for (int k = 0; k < G; ++k) {
    vst1q_f32(out + static_cast<size_t>(k) * out_stride, acc[k][0]);
    vst1q_f32(out + static_cast<size_t>(k) * out_stride + 4, acc[k][1]);
  }
}

// Q8_0: signed weights against signed activations.
template <int G>
void q8_0x8_group(const std::byte* w, const Q8Block* a0, size_t act_stride, int n_blocks, float* out,
                  size_t out_stride) {
  float32x4_t acc[G][2];
  for (int k = 0; k < G; ++k) acc[k][0] = acc[k][1] = vdupq_n_f32(0);
  for (int b = 0; b < n_blocks; ++b) {
    const std::byte* gb = w + static_cast<size_t>(b) * kQ8_0x8GroupBlockBytes;
#ifdef PENSIEVE_DOTPROD
    int32x4_t isum[G][2];
    int8x16_t qa[G][2];  // elements 0..15 (chunks 0..3) and 16..31 (chunks 4..7)
    for (int k = 0; k < G; ++k) {
      const int8_t* q = a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(b)].qs;
      isum[k][0] = isum[k][1] = vdupq_n_s32(0);
      qa[k][0] = vld1q_s8(q);
      qa[k][1] = vld1q_s8(q + 16);
    }
#pragma GCC unroll 8
    for (int c = 0; c < 8; ++c) {
#pragma GCC unroll 2
      for (int half = 0; half < 2; ++half) {
        const int8x16_t qw = x8_chunk_half(gb, c, half);
#pragma GCC unroll 4
        for (int k = 0; k < G; ++k) {
          const int8x16_t& a = qa[k][c / 4];
          switch (c % 4) {
            case 0: isum[k][half] = vdotq_laneq_s32(isum[k][half], qw, a, 0); break;
            case 1: isum[k][half] = vdotq_laneq_s32(isum[k][half], qw, a, 1); break;
            case 2: isum[k][half] = vdotq_laneq_s32(isum[k][half], qw, a, 2); break;
            default: isum[k][half] = vdotq_laneq_s32(isum[k][half], qw, a, 3); break;
          }
        }
      }
    }
    const X8Scales dw = x8_scales(gb);
#pragma GCC unroll 4
    for (int k = 0; k < G; ++k) {
      x8_accumulate(acc[k], isum[k][0], isum[k][1], dw, a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(b)].d);
    }
#else
    // Two chunks' products share an int16 lane (|w| <= 128, |a| <= 127: at most 32512), then widen.
    int32x4_t pairs[G][4];  // rows 0-1, 2-3, 4-5, 6-7, two lanes per row
    for (int k = 0; k < G; ++k) pairs[k][0] = pairs[k][1] = pairs[k][2] = pairs[k][3] = vdupq_n_s32(0);
#pragma GCC unroll 4
    for (int c = 0; c < 8; c += 2) {
#pragma GCC unroll 2
      for (int half = 0; half < 2; ++half) {
        const int8x16_t w0 = x8_chunk_half(gb, c, half), w1 = x8_chunk_half(gb, c + 1, half);
#pragma GCC unroll 4
        for (int k = 0; k < G; ++k) {
          const int8_t* qa = a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(b)].qs;
          const int8x16_t a0c = broadcast4(qa + 4 * c), a1c = broadcast4(qa + 4 * c + 4);
          const int16x8_t p01 = vmlal_s8(vmull_s8(vget_low_s8(w0), vget_low_s8(a0c)), vget_low_s8(w1), vget_low_s8(a1c));
          const int16x8_t p23 = vmlal_high_s8(vmull_high_s8(w0, a0c), w1, a1c);
          pairs[k][2 * half] = vpadalq_s16(pairs[k][2 * half], p01);
          pairs[k][2 * half + 1] = vpadalq_s16(pairs[k][2 * half + 1], p23);
        }
      }
    }
    const X8Scales dw = x8_scales(gb);
#pragma GCC unroll 4
    for (int k = 0; k < G; ++k) {
      x8_accumulate(acc[k], fold_rows(pairs[k][0], pairs[k][1]), fold_rows(pairs[k][2], pairs[k][3]), dw,
                    a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(b)].d);
    }
#endif
  }
  for (int k = 0; k < G; ++k) {
    vst1q_f32(out + static_cast<size_t>(k) * out_stride, acc[k][0]);
    vst1q_f32(out + static_cast<size_t>(k) * out_stride + 4, acc[k][1]);
  }
}

// Q4_K: x = d * sc[g] * q - dmin * m[g] for the 32-element group g of a 256-element super-block, so
// sum(x * a) = d * sc[g] * sum(q * a) - dmin * m[g] * sum(a) per group. The eight rows' 6-bit scales and mins
// are unpacked once per super-block into float lanes (d * sc and dmin * m, rows 0..3 and 4..7); each group is
// then eight chunks of integer sums, one conversion and two multiply-adds per four rows. Group 2p sits in
// the low nibbles of chunks 8p..8p+7 and group 2p+1 in their high nibbles; weights are 0..15, no offset.
constexpr size_t kK4MinScaleBytes = 16;   // 8 x fp16 dmin, after the 8 x fp16 d
constexpr size_t kK4PackedScaleBytes = 32;  // 12 runs of 8 bytes: packed byte j of each row
constexpr size_t kK4QuantBytes = 128;

struct K4RowScales {
  float32x4_t dsc[8][2];  // [group][rows 0..3, rows 4..7]: d * scale
  float32x4_t dmn[8][2];  // [group][rows 0..3, rows 4..7]: dmin * min
};

inline void k4_to_rows(uint8x8_t v, const X8Scales& d, float32x4_t out[2]) {
  const uint16x8_t wide = vmovl_u8(v);
  out[0] = vmulq_f32(d.lo, vcvtq_f32_u32(vmovl_u16(vget_low_u16(wide))));
  out[1] = vmulq_f32(d.hi, vcvtq_f32_u32(vmovl_high_u16(wide)));
}

inline void unpack_k4_row_scales(const std::byte* group_block, K4RowScales& out) {
  const X8Scales d = x8_scales(group_block), dmin = x8_scales(group_block + kK4MinScaleBytes);
  uint8x8_t p[12];  // packed byte j of the eight rows, one row per lane
  for (int j = 0; j < 12; ++j) {
    p[j] = vld1_u8(reinterpret_cast<const uint8_t*>(group_block + kK4PackedScaleBytes + 8 * static_cast<size_t>(j)));
  }
  const uint8x8_t six = vdup_n_u8(63), four = vdup_n_u8(15);
  for (int g = 0; g < 8; ++g) {
    uint8x8_t sc, mn;
    if (g < 4) {
      sc = vand_u8(p[g], six);
      mn = vand_u8(p[g + 4], six);
    } else {
      sc = vorr_u8(vand_u8(p[g + 4], four), vshl_n_u8(vshr_n_u8(p[g - 4], 6), 4));
      mn = vorr_u8(vshr_n_u8(p[g + 4], 4), vshl_n_u8(vshr_n_u8(p[g], 6), 4));
    }
    k4_to_rows(sc, d, out.dsc[g]);
    k4_to_rows(mn, dmin, out.dmn[g]);
  }
}

// The low (kHigh false) or high nibbles of 16 bytes: one group's four weights of four rows.
template <bool kHigh>
inline int8x16_t k4_nibbles(const std::byte* p) {
  const uint8x16_t packed = vld1q_u8(reinterpret_cast<const uint8_t*>(p));
  return vreinterpretq_s8_u8(kHigh ? vshrq_n_u8(packed, 4) : vandq_u8(packed, vdupq_n_u8(0x0F)));
}

// One group's integer dot products against G activation blocks (block k at a + k * act_stride): rows 0..3
// in isum[k][0], rows 4..7 in isum[k][1]. `chunks` is the first of the group's eight chunks.
template <int G, bool kHigh>
inline void q4_k_group_sums(const std::byte* chunks, const Q8Block* a, size_t act_stride, int32x4_t isum[][2]) {
#ifdef PENSIEVE_DOTPROD
  int8x16_t qa[G][2];  // elements 0..15 (chunks 0..3) and 16..31 (chunks 4..7)
  for (int k = 0; k < G; ++k) {
    const int8_t* q = a[static_cast<size_t>(k) * act_stride].qs;
    isum[k][0] = isum[k][1] = vdupq_n_s32(0);
    qa[k][0] = vld1q_s8(q);
    qa[k][1] = vld1q_s8(q + 16);
  }
#pragma GCC unroll 8
  for (int v = 0; v < 8; ++v) {
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      const int8x16_t qw = k4_nibbles<kHigh>(chunks + 32 * static_cast<size_t>(v) + 16 * static_cast<size_t>(half));
#pragma GCC unroll 4
      for (int k = 0; k < G; ++k) {
        const int8x16_t& av = qa[k][v / 4];
        switch (v % 4) {
          case 0: isum[k][half] = vdotq_laneq_s32(isum[k][half], qw, av, 0); break;
          case 1: isum[k][half] = vdotq_laneq_s32(isum[k][half], qw, av, 1); break;
          case 2: isum[k][half] = vdotq_laneq_s32(isum[k][half], qw, av, 2); break;
          default: isum[k][half] = vdotq_laneq_s32(isum[k][half], qw, av, 3); break;
        }
      }
    }
  }
#else
  // int16 lane (row pair, position) sums the group's eight products, at most 8 * 15 * 128 = 15360.
  int16x8_t pairs[G][4];  // rows 0-1, 2-3, 4-5, 6-7
  for (int k = 0; k < G; ++k) pairs[k][0] = pairs[k][1] = pairs[k][2] = pairs[k][3] = vdupq_n_s16(0);
#pragma GCC unroll 8
  for (int v = 0; v < 8; ++v) {
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      const int8x16_t qw = k4_nibbles<kHigh>(chunks + 32 * static_cast<size_t>(v) + 16 * static_cast<size_t>(half));
#pragma GCC unroll 4
      for (int k = 0; k < G; ++k) {
        const int8x16_t av = broadcast4(a[static_cast<size_t>(k) * act_stride].qs + 4 * v);
        pairs[k][2 * half] = vmlal_s8(pairs[k][2 * half], vget_low_s8(qw), vget_low_s8(av));
        pairs[k][2 * half + 1] = vmlal_high_s8(pairs[k][2 * half + 1], qw, av);
      }
    }
  }
  for (int k = 0; k < G; ++k) {
    isum[k][0] = fold_rows(vpaddlq_s16(pairs[k][0]), vpaddlq_s16(pairs[k][1]));
    isum[k][1] = fold_rows(vpaddlq_s16(pairs[k][2]), vpaddlq_s16(pairs[k][3]));
  }
#endif
}

// acc += a.d * (dsc * isum - dmn * a.sum) for group g, rows 0..3 and 4..7.
template <int G>
inline void k4_accumulate(float32x4_t acc[][2], int32x4_t isum[][2], const K4RowScales& rs, int g, const Q8Block* a,
                          size_t act_stride) {
#pragma GCC unroll 4
  for (int k = 0; k < G; ++k) {
    const Q8Block& ak = a[static_cast<size_t>(k) * act_stride];
    const float32x4_t min_weight = vdupq_n_f32(ak.d * static_cast<float>(ak.sum));
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      acc[k][h] = vfmaq_f32(acc[k][h], vcvtq_f32_s32(isum[k][h]), vmulq_n_f32(rs.dsc[g][h], ak.d));
      acc[k][h] = vfmsq_f32(acc[k][h], rs.dmn[g][h], min_weight);
    }
  }
}

template <int G>
void q4_kx8_group(const std::byte* w, const Q8Block* a0, size_t act_stride, int n_blocks, float* out,
                  size_t out_stride) {
  float32x4_t acc[G][2];
  for (int k = 0; k < G; ++k) acc[k][0] = acc[k][1] = vdupq_n_f32(0);
  K4RowScales rs;
  int32x4_t isum[G][2];
  for (int sb = 0; sb < n_blocks / 8; ++sb) {
    const std::byte* gb = w + static_cast<size_t>(sb) * kQ4_Kx8GroupBlockBytes;
    unpack_k4_row_scales(gb, rs);
    for (int pair = 0; pair < 4; ++pair) {
      const std::byte* chunks = gb + kK4QuantBytes + 32 * 8 * static_cast<size_t>(pair);
      const Q8Block* even = a0 + static_cast<size_t>(sb) * 8 + 2 * static_cast<size_t>(pair);
      q4_k_group_sums<G, false>(chunks, even, act_stride, isum);
      k4_accumulate<G>(acc, isum, rs, 2 * pair, even, act_stride);
      // Without this barrier GCC shares the chunk loads between the two groups and keeps all of them live
      // at once, spilling most to the stack (in the G = 4 baseline, three times the stack traffic); reading
      // the chunks again from L1 costs loads only, where a spill costs a store and a load.
      asm volatile("" ::: "memory");
      q4_k_group_sums<G, true>(chunks, even + 1, act_stride, isum);
      k4_accumulate<G>(acc, isum, rs, 2 * pair + 1, even + 1, act_stride);
    }
  }
  for (int k = 0; k < G; ++k) {
    vst1q_f32(out + static_cast<size_t>(k) * out_stride, acc[k][0]);
    vst1q_f32(out + static_cast<size_t>(k) * out_stride + 4, acc[k][1]);
  }
}

// Q6_K: x = d * sc[j] * (q - 32) for the 16-element sub-block j of a 256-element super-block, q six bits (low
// nibble from ql, top two bits from qh). NEON multiplies signed by signed, so q - 32 (-32..31) goes into the
// products directly and no activation sums are needed. The eight rows' d * sc are unpacked once per
// super-block into float lanes; each sub-block is then four chunks of integer sums and one multiply-add per
// four rows. Sub-block j lies in group g = j / 2 (half g / 4, quarter g % 4, as in the GGUF block): its low
// nibbles are the low (quarter < 2) or high ones of ql chunks 16 * half + 8 * (quarter & 1) + 4 * (j & 1) on,
// its top bits are bits 2 * quarter, 2 * quarter + 1 of qh chunks 8 * half + 4 * (j & 1) on.
constexpr size_t kK6ScaleBytes = 16;                 // 8 x fp16 d
constexpr size_t kK6LowBytes = kK6ScaleBytes + 128;  // after the 16 runs of 8 int8 scales
constexpr size_t kK6HighBytes = kK6LowBytes + 32 * 32;

struct K6RowScales {
  float32x4_t dsc[16][2];  // [sub-block][rows 0..3, rows 4..7]: d * scale
};

inline void unpack_k6_row_scales(const std::byte* group_block, K6RowScales& out) {
  const X8Scales d = x8_scales(group_block);
  for (int j = 0; j < 16; ++j) {
    const int16x8_t sc = vmovl_s8(vld1_s8(reinterpret_cast<const int8_t*>(group_block + kK6ScaleBytes + 8 * static_cast<size_t>(j))));
    out.dsc[j][0] = vmulq_f32(d.lo, vcvtq_f32_s32(vmovl_s16(vget_low_s16(sc))));
    out.dsc[j][1] = vmulq_f32(d.hi, vcvtq_f32_s32(vmovl_high_s16(sc)));
  }
}

// q - 32 for four weights of four rows: `low` 16 ql bytes, `high` the matching 16 qh bytes; the shifts are
// negative (right) counts bringing the sub-block's nibble and bit pair to the bottom.
inline int8x16_t k6_weights(const std::byte* low, const std::byte* high, int8x16_t low_shift, int8x16_t high_shift) {
  const uint8x16_t l = vshlq_u8(vld1q_u8(reinterpret_cast<const uint8_t*>(low)), low_shift);
  const uint8x16_t h = vandq_u8(vshlq_u8(vld1q_u8(reinterpret_cast<const uint8_t*>(high)), high_shift), vdupq_n_u8(3));
  // Shift-left-insert keeps l's low four bits under h << 4: the 6-bit q without masking l.
  return vsubq_s8(vreinterpretq_s8_u8(vsliq_n_u8(l, h, 4)), vdupq_n_s8(32));
}

template <int G>
void q6_kx8_group(const std::byte* w, const Q8Block* a0, size_t act_stride, int n_blocks, float* out,
                  size_t out_stride) {
  float32x4_t acc[G][2];
  for (int k = 0; k < G; ++k) acc[k][0] = acc[k][1] = vdupq_n_f32(0);
  K6RowScales rs;
  for (int sb = 0; sb < n_blocks / 8; ++sb) {
    const std::byte* gb = w + static_cast<size_t>(sb) * kQ6_Kx8GroupBlockBytes;
    unpack_k6_row_scales(gb, rs);
    for (int j = 0; j < 16; ++j) {
      const int g = j / 2, half = g / 4, quarter = g % 4, second = j % 2;
      const std::byte* low = gb + kK6LowBytes + 32 * static_cast<size_t>(16 * half + 8 * (quarter & 1) + 4 * second);
      const std::byte* high = gb + kK6HighBytes + 32 * static_cast<size_t>(8 * half + 4 * second);
      const int8x16_t low_shift = vdupq_n_s8(static_cast<int8_t>(quarter < 2 ? 0 : -4));
      const int8x16_t high_shift = vdupq_n_s8(static_cast<int8_t>(-2 * quarter));
      const Q8Block* a = a0 + static_cast<size_t>(sb) * 8 + static_cast<size_t>(g);
      int32x4_t isum[G][2];  // rows 0..3, rows 4..7
#ifdef PENSIEVE_DOTPROD
      int8x16_t qa[G];  // the sub-block's 16 activation bytes
      for (int k = 0; k < G; ++k) {
        isum[k][0] = isum[k][1] = vdupq_n_s32(0);
        qa[k] = vld1q_s8(a[static_cast<size_t>(k) * act_stride].qs + 16 * second);
      }
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) {
#pragma GCC unroll 2
        for (int rows = 0; rows < 2; ++rows) {
          const size_t at = 32 * static_cast<size_t>(v) + 16 * static_cast<size_t>(rows);
          const int8x16_t qw = k6_weights(low + at, high + at, low_shift, high_shift);
#pragma GCC unroll 4
          for (int k = 0; k < G; ++k) {
            switch (v) {
              case 0: isum[k][rows] = vdotq_laneq_s32(isum[k][rows], qw, qa[k], 0); break;
              case 1: isum[k][rows] = vdotq_laneq_s32(isum[k][rows], qw, qa[k], 1); break;
              case 2: isum[k][rows] = vdotq_laneq_s32(isum[k][rows], qw, qa[k], 2); break;
              default: isum[k][rows] = vdotq_laneq_s32(isum[k][rows], qw, qa[k], 3); break;
            }
          }
        }
      }
#else
      // int16 lane (row pair, position) sums the sub-block's four products, at most 4 * 32 * 128 = 16384.
      int16x8_t pairs[G][4];  // rows 0-1, 2-3, 4-5, 6-7
      for (int k = 0; k < G; ++k) pairs[k][0] = pairs[k][1] = pairs[k][2] = pairs[k][3] = vdupq_n_s16(0);
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) {
#pragma GCC unroll 2
        for (int rows = 0; rows < 2; ++rows) {
          const size_t at = 32 * static_cast<size_t>(v) + 16 * static_cast<size_t>(rows);
          const int8x16_t qw = k6_weights(low + at, high + at, low_shift, high_shift);
#pragma GCC unroll 4
          for (int k = 0; k < G; ++k) {
            const int8x16_t av = broadcast4(a[static_cast<size_t>(k) * act_stride].qs + 16 * second + 4 * v);
            pairs[k][2 * rows] = vmlal_s8(pairs[k][2 * rows], vget_low_s8(qw), vget_low_s8(av));
            pairs[k][2 * rows + 1] = vmlal_high_s8(pairs[k][2 * rows + 1], qw, av);
          }
        }
      }
      for (int k = 0; k < G; ++k) {
        isum[k][0] = fold_rows(vpaddlq_s16(pairs[k][0]), vpaddlq_s16(pairs[k][1]));
        isum[k][1] = fold_rows(vpaddlq_s16(pairs[k][2]), vpaddlq_s16(pairs[k][3]));
      }
#endif
#pragma GCC unroll 4
      for (int k = 0; k < G; ++k) {
        const float ad = a[static_cast<size_t>(k) * act_stride].d;
#pragma GCC unroll 2
        for (int rows = 0; rows < 2; ++rows) {
          acc[k][rows] = vfmaq_f32(acc[k][rows], vcvtq_f32_s32(isum[k][rows]), vmulq_n_f32(rs.dsc[j][rows], ad));
        }
      }
    }
  }
  for (int k = 0; k < G; ++k) {
    vst1q_f32(out + static_cast<size_t>(k) * out_stride, acc[k][0]);
    vst1q_f32(out + static_cast<size_t>(k) * out_stride + 4, acc[k][1]);
  }
}

PENSIEVE_GROUP(Q4_0x8Group, (q4_0x8_group<G>(w, a, s, nb, o, os)))
PENSIEVE_GROUP(Q8_0x8Group, (q8_0x8_group<G>(w, a, s, nb, o, os)))
PENSIEVE_GROUP(Q4_Kx8Group, (q4_kx8_group<G>(w, a, s, nb, o, os)))
PENSIEVE_GROUP(Q6_Kx8Group, (q6_kx8_group<G>(w, a, s, nb, o, os)))
PENSIEVE_VEC(x8_q4_0, Q4_0x8Group)
PENSIEVE_VEC(x8_q8_0, Q8_0x8Group)
PENSIEVE_VEC(x8_q4_k, Q4_Kx8Group)
PENSIEVE_VEC(x8_q6_k, Q6_Kx8Group)
