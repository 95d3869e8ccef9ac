#pragma once
// Scalar reference dequantizers for every weight format pensieve reads. SIMD kernels in backend/ are
// tested against these.
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>

#include "gguf/ggml_type.h"
#include "gguf/gguf_file.h"

namespace pensieve::tensor {

using gguf::GgmlType;

class UnsupportedTypeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// True for F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS.
bool can_dequantize(uint32_t type_id);

// Dequantizes `out.size()` elements (a whole number of blocks) from `blocks`. Throws std::invalid_argument
// when sizes do not match and UnsupportedTypeError for a type we cannot read.
void dequantize(uint32_t type_id, std::span<const std::byte> blocks, std::span<float> out);

// Throws UnsupportedTypeError("tensor 'NAME' has type T, which pensieve cannot read") for such a tensor.
void require_supported(const gguf::TensorInfo& tensor);

float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);  // round to nearest even
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);  // round to nearest even, NaN kept NaN

}  // namespace pensieve::tensor
