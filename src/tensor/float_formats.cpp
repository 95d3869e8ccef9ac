// Plain floating-point tensors: F32 is copied, F16 and BF16 are widened element by element.
#include <cstdint>
#include <cstring>

#include "tensor/dequantize.h"
#include "tensor/format_kernels.h"

namespace pensieve::tensor::detail {

void dequantize_f32(ByteSpan blocks, FloatSpan out) { std::memcpy(out.data(), blocks.data(), out.size_bytes()); }

namespace {
template <float (*widen)(uint16_t)>
void widen_all(ByteSpan blocks, FloatSpan out) {
  for (size_t i = 0; i < out.size(); ++i) {
    uint16_t h;
    std::memcpy(&h, blocks.data() + 2 * i, 2);
    out[i] = widen(h);
  }
}
}  // namespace

void dequantize_f16(ByteSpan blocks, FloatSpan out) { widen_all<fp16_to_fp32>(blocks, out); }
void dequantize_bf16(ByteSpan blocks, FloatSpan out) { widen_all<bf16_to_fp32>(blocks, out); }

}  // namespace pensieve::tensor::detail
