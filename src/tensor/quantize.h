#pragma once
// Float -> block quantizers (reference, scalar): what `pensieve synth` and tests use to write weights.
#include <cstddef>
#include <cstdint>
#include <span>

#include "gguf/ggml_type.h"

namespace pensieve::tensor {

// True for F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K (and whatever else gets added).
bool can_quantize(gguf::GgmlType type);

// Quantizes `in` (a whole number of blocks) into `out`, which must be exactly bytes_for(type, in.size()).
// Throws std::invalid_argument on size mismatch or an unsupported type.
void quantize(gguf::GgmlType type, std::span<const float> in, std::span<std::byte> out);

}  // namespace pensieve::tensor
