#pragma once
// Internal: the K-quant quantizers behind quantize(). Both take whole 256-element super-blocks (in.size()
// a multiple of 256, out.size() exactly the matching number of blocks), checked by quantize().
#include <cstddef>
#include <span>

namespace pensieve::tensor::detail {

void quantize_q4_k(std::span<const float> in, std::span<std::byte> out);
void quantize_q6_k(std::span<const float> in, std::span<std::byte> out);

}  // namespace pensieve::tensor::detail
