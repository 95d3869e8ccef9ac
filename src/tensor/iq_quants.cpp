// The non-linear 4-bit formats: each 4-bit code indexes a fixed 16-entry codebook (kIq4NlValues) that
// spends more levels near zero, where weights concentrate, than a uniform grid does.
#include <cstdint>

#include "tensor/block_layouts.h"
#include "tensor/dequantize.h"
#include "tensor/format_kernels.h"

namespace pensieve::tensor::detail {

namespace {
// 32 codes in 16 bytes: element j in the low nibble of qs[j], element j+16 in the high nibble.
void decode_32(const uint8_t* qs, float scale, float* y) {
  for (int j = 0; j < 16; ++j) {
    y[j] = scale * float(kIq4NlValues[qs[j] & 15]);
    y[j + 16] = scale * float(kIq4NlValues[qs[j] >> 4]);
  }
}
}  // namespace

void dequantize_iq4_nl(ByteSpan blocks, FloatSpan out) {
  for_each_block<BlockIQ4_NL, kLegacyBlock>(
      blocks, out, [](const BlockIQ4_NL& b, float* y) { decode_32(b.qs, fp16_to_fp32(b.d), y); });
}

void dequantize_iq4_xs(ByteSpan blocks, FloatSpan out) {
  for_each_block<BlockIQ4_XS, kSuperBlock>(blocks, out, [](const BlockIQ4_XS& b, float* y) {
    const float d = fp16_to_fp32(b.d);
    for (int g = 0; g < kSuperBlock / 32; ++g) {
      // 6-bit group scale, stored offset by 32: low nibble from scales_l, top two bits from scales_h.
      const int low = (b.scales_l[g / 2] >> (4 * (g % 2))) & 15;
      const int high = (b.scales_h >> (2 * g)) & 3;
      decode_32(b.qs + 16 * g, d * float((low | (high << 4)) - 32), y + 32 * g);
    }
  });
}

}  // namespace pensieve::tensor::detail
