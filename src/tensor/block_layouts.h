#pragma once
// In-memory layouts of the GGML quantized blocks pensieve reads and writes. Each struct is the exact byte
// image of one block in a GGUF file (little-endian, no padding): the static_asserts pin the sizes the file
// format fixes, so a layout mistake fails to compile instead of silently shifting every later block.
//
// Scales called `d`/`dmin` are IEEE half precision stored as raw bits (see fp16_to_fp32).
#include <cstddef>
#include <cstdint>

namespace pensieve::tensor {

inline constexpr int kLegacyBlock = 32;  // elements per block of Q4_0 .. Q8_0 and IQ4_NL
inline constexpr int kSuperBlock = 256;  // elements per block of the K-quants and IQ4_XS

// x = d * (q - 8), q in 0..15. Element j is the low nibble of qs[j], element j+16 the high nibble.
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kLegacyBlock / 2];
};

// x = d * q + m, q in 0..15; same nibble order as Q4_0.
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kLegacyBlock / 2];
};

// x = d * (q - 16), q in 0..31: low four bits as Q4_0, bit 4 of element j is bit j of the 32-bit qh.
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kLegacyBlock / 2];
};

// x = d * q + m, q in 0..31; bits as Q5_0.
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kLegacyBlock / 2];
};

// x = d * q, q a signed byte.
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kLegacyBlock];
};

// 16 groups of 16: x = d * (scales[g] & 15) * q - dmin * (scales[g] >> 4), q in 0..3 (2 bits).
struct BlockQ2_K {
  uint8_t scales[kSuperBlock / 16];
  uint8_t qs[kSuperBlock / 4];
  uint16_t d;
  uint16_t dmin;
};

// 16 groups of 16: x = d * (s[g] - 32) * (q - 4 * !high_bit), q 2 low bits in qs, 1 high bit in hmask;
// the sixteen 6-bit group scales s[g] are packed into 12 bytes.
struct BlockQ3_K {
  uint8_t hmask[kSuperBlock / 8];
  uint8_t qs[kSuperBlock / 4];
  uint8_t scales[12];
  uint16_t d;
};

// 8 groups of 32: x = d * sc[g] * q - dmin * m[g], q in 0..15; the 6-bit sc/m pairs packed into 12 bytes.
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[kSuperBlock / 2];
};

// As Q4_K with a fifth bit per element in qh.
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kSuperBlock / 8];
  uint8_t qs[kSuperBlock / 2];
};

// 16 groups of 16: x = d * scales[g] * (q - 32), q in 0..63: 4 low bits in ql, 2 high bits in qh.
struct BlockQ6_K {
  uint8_t ql[kSuperBlock / 2];
  uint8_t qh[kSuperBlock / 4];
  int8_t scales[kSuperBlock / 16];
  uint16_t d;
};

// x = d * kIq4NlValues[q], q in 0..15; nibble order as Q4_0.
struct BlockIQ4_NL {
  uint16_t d;
  uint8_t qs[kLegacyBlock / 2];
};

// 8 groups of 32 with 6-bit group scales (low 4 bits in scales_l, high 2 in scales_h), values as IQ4_NL.
struct BlockIQ4_XS {
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[kSuperBlock / 64];
  uint8_t qs[kSuperBlock / 2];
};

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockIQ4_NL) == 18);
static_assert(sizeof(BlockIQ4_XS) == 136);

// The non-uniform 16-level codebook of IQ4_NL / IQ4_XS (values are multiplied by the block scale).
inline constexpr int8_t kIq4NlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

// The K-quants' 12-byte packing of eight 6-bit scales and eight 6-bit mins (Q4_K, Q5_K): groups 0..3 keep
// their low six bits in bytes 0..3 (scale) and 4..7 (min); groups 4..7 keep their low nibbles in bytes
// 8..11 and their top two bits in the spare top bits of bytes 0..7.
struct ScaleMin {
  uint8_t scale;
  uint8_t min;
};
inline ScaleMin unpack_k4_scale_min(const uint8_t* packed, int group) {
  if (group < 4) return {uint8_t(packed[group] & 63), uint8_t(packed[group + 4] & 63)};
  const uint8_t low = packed[group + 4];
  return {uint8_t((low & 15) | ((packed[group - 4] >> 6) << 4)), uint8_t((low >> 4) | ((packed[group] >> 6) << 4))};
}

}  // namespace pensieve::tensor
