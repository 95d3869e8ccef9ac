// The original 32-element block formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0. In the 4/5-bit ones, byte j of qs
// carries element j in its low nibble and element j+16 in its high nibble.
#include <cstdint>
#include <cstring>

#include "tensor/block_layouts.h"
#include "tensor/dequantize.h"
#include "tensor/format_kernels.h"

namespace pensieve::tensor::detail {

namespace {
constexpr int kHalf = kLegacyBlock / 2;

uint32_t high_bits(const uint8_t (&qh)[4]) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  return bits;  // little-endian host assumed throughout (GGUF is little-endian)
}
}  // namespace

void dequantize_q4_0(ByteSpan blocks, FloatSpan out) {
  for_each_block<BlockQ4_0, kLegacyBlock>(blocks, out, [](const BlockQ4_0& b, float* y) {
    const float d = fp16_to_fp32(b.d);
    for (int j = 0; j < kHalf; ++j) {
      y[j] = float((b.qs[j] & 15) - 8) * d;
      y[j + kHalf] = float((b.qs[j] >> 4) - 8) * d;
    }
  });
}

void dequantize_q4_1(ByteSpan blocks, FloatSpan out) {
  for_each_block<BlockQ4_1, kLegacyBlock>(blocks, out, [](const BlockQ4_1& b, float* y) {
    const float d = fp16_to_fp32(b.d);
    const float m = fp16_to_fp32(b.m);
    for (int j = 0; j < kHalf; ++j) {
      y[j] = float(b.qs[j] & 15) * d + m;
      y[j + kHalf] = float(b.qs[j] >> 4) * d + m;
    }
  });
}

void dequantize_q5_0(ByteSpan blocks, FloatSpan out) {
  for_each_block<BlockQ5_0, kLegacyBlock>(blocks, out, [](const BlockQ5_0& b, float* y) {
    const float d = fp16_to_fp32(b.d);
    const uint32_t qh = high_bits(b.qh);
    for (int j = 0; j < kHalf; ++j) {
      const int low = int((b.qs[j] & 15) | (((qh >> j) & 1) << 4));
      const int high = int((b.qs[j] >> 4) | (((qh >> (j + kHalf)) & 1) << 4));
      y[j] = float(low - 16) * d;
      y[j + kHalf] = float(high - 16) * d;
    }
  });
}

void dequantize_q5_1(ByteSpan blocks, FloatSpan out) {
  for_each_block<BlockQ5_1, kLegacyBlock>(blocks, out, [](const BlockQ5_1& b, float* y) {
    const float d = fp16_to_fp32(b.d);
    const float m = fp16_to_fp32(b.m);
    const uint32_t qh = high_bits(b.qh);
    for (int j = 0; j < kHalf; ++j) {
      const int low = int((b.qs[j] & 15) | (((qh >> j) & 1) << 4));
      const int high = int((b.qs[j] >> 4) | (((qh >> (j + kHalf)) & 1) << 4));
      y[j] = float(low) * d + m;
      y[j + kHalf] = float(high) * d + m;
    }
  });
}

void dequantize_q8_0(ByteSpan blocks, FloatSpan out) {
  for_each_block<BlockQ8_0, kLegacyBlock>(blocks, out, [](const BlockQ8_0& b, float* y) {
    const float d = fp16_to_fp32(b.d);
    for (int j = 0; j < kLegacyBlock; ++j) y[j] = float(b.qs[j]) * d;
  });
}

}  // namespace pensieve::tensor::detail
