// The K-quants: 256-element super-blocks split into groups of 16 or 32 elements, each group with its own
// scale (and min) quantized against one or two fp16 super-block scales.
//
// Element positions are written as formulas of the element index e, which reads closer to the format's
// definition than the interleaved loops of an optimized kernel:
//   Q2_K/Q3_K: the 2-bit fields of byte qs[32*(e/128) + e%32] hold elements e at bit 2*((e%128)/32).
//   Q4_K/Q5_K: byte qs[32*(e/64) + e%32] holds e in its low nibble when (e%64) < 32, else its high nibble.
//   Q6_K:      the low nibble comes from ql[64*(e/128) + 32*(((e%128)/32)&1) + e%32] (high nibble when
//              (e%128)/32 >= 2), the top two bits from qh[32*(e/128) + e%32] at bit 2*((e%128)/32).
#include <cstdint>

#include "tensor/block_layouts.h"
#include "tensor/dequantize.h"
#include "tensor/format_kernels.h"

namespace pensieve::tensor::detail {

namespace {

// Q3_K packs sixteen 6-bit scales into 12 bytes: the low nibble of scale g is in byte g%8 (low nibble for
// g < 8, high for g >= 8); its top two bits are in byte 8 + g%4, at bit 2*(g/4).
int q3_k_scale(const uint8_t (&packed)[12], int group) {
  const int low = group < 8 ? (packed[group] & 15) : (packed[group - 8] >> 4);
  const int high = (packed[8 + group % 4] >> (2 * (group / 4))) & 3;
  return (low | (high << 4)) - 32;
}

int two_bit_field(const uint8_t* qs, int e) { return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3; }

int k4_nibble(const uint8_t* qs, int e) {
  const uint8_t byte = qs[32 * (e / 64) + e % 32];
  return (e % 64) < 32 ? (byte & 15) : (byte >> 4);
}

}  // namespace

void dequantize_q2_k(ByteSpan blocks, FloatSpan out) {
  for_each_block<BlockQ2_K, kSuperBlock>(blocks, out, [](const BlockQ2_K& b, float* y) {
    const float d = fp16_to_fp32(b.d);
    const float dmin = fp16_to_fp32(b.dmin);
    for (int e = 0; e < kSuperBlock; ++e) {
      const uint8_t sc = b.scales[e / 16];
      y[e] = d * float(sc & 15) * float(two_bit_field(b.qs, e)) - dmin * float(sc >> 4);
    }
  });
}

void dequantize_q3_k(ByteSpan blocks, FloatSpan out) {
  for_each_block<BlockQ3_K, kSuperBlock>(blocks, out, [](const BlockQ3_K& b, float* y) {
    const float d = fp16_to_fp32(b.d);
    for (int e = 0; e < kSuperBlock; ++e) {
      // A clear high bit means "subtract 4": the 3-bit value is stored offset by 4.
      const bool high = (b.hmask[e % 32] >> (4 * (e / 128) + (e % 128) / 32)) & 1;
      const int q = two_bit_field(b.qs, e) - (high ? 0 : 4);
      y[e] = d * float(q3_k_scale(b.scales, e / 16)) * float(q);
    }
  });
}

void dequantize_q4_k(ByteSpan blocks, FloatSpan out) {
  for_each_block<BlockQ4_K, kSuperBlock>(blocks, out, [](const BlockQ4_K& b, float* y) {
    const float d = fp16_to_fp32(b.d);
    const float dmin = fp16_to_fp32(b.dmin);
    for (int g = 0; g < kSuperBlock / 32; ++g) {
      const ScaleMin sm = unpack_k4_scale_min(b.scales, g);
      const float scale = d * float(sm.scale);
      const float min = dmin * float(sm.min);
      for (int e = 32 * g; e < 32 * (g + 1); ++e) y[e] = scale * float(k4_nibble(b.qs, e)) - min;
    }
  });
}

void dequantize_q5_k(ByteSpan blocks, FloatSpan out) {
  for_each_block<BlockQ5_K, kSuperBlock>(blocks, out, [](const BlockQ5_K& b, float* y) {
    const float d = fp16_to_fp32(b.d);
    const float dmin = fp16_to_fp32(b.dmin);
    for (int g = 0; g < kSuperBlock / 32; ++g) {
      const ScaleMin sm = unpack_k4_scale_min(b.scales, g);
      const float scale = d * float(sm.scale);
      const float min = dmin * float(sm.min);
      for (int e = 32 * g; e < 32 * (g + 1); ++e) {
        const int fifth_bit = (b.qh[e % 32] >> g) & 1;  // bit g of qh[e%32] belongs to group g
        y[e] = scale * float(k4_nibble(b.qs, e) | (fifth_bit << 4)) - min;
      }
    }
  });
}

void dequantize_q6_k(ByteSpan blocks, FloatSpan out) {
  for_each_block<BlockQ6_K, kSuperBlock>(blocks, out, [](const BlockQ6_K& b, float* y) {
    const float d = fp16_to_fp32(b.d);
    for (int e = 0; e < kSuperBlock; ++e) {
      const int half = e / 128;
      const int quarter = (e % 128) / 32;
      const uint8_t low_byte = b.ql[64 * half + 32 * (quarter & 1) + e % 32];
      const int low = quarter < 2 ? (low_byte & 15) : (low_byte >> 4);
      const int high = (b.qh[32 * half + e % 32] >> (2 * quarter)) & 3;
      y[e] = d * float(b.scales[e / 16]) * float((low | (high << 4)) - 32);
    }
  });
}

}  // namespace pensieve::tensor::detail
