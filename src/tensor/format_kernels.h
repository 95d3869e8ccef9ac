#pragma once
// Internal: one scalar dequantizer per format, called by dequantize() once it has checked that `blocks`
// holds exactly out.size() / block_elements whole blocks. Not part of the room's public API.
#include <cstddef>
#include <cstring>
#include <span>

namespace pensieve::tensor::detail {

using ByteSpan = std::span<const std::byte>;
using FloatSpan = std::span<float>;

void dequantize_f32(ByteSpan blocks, FloatSpan out);
void dequantize_f16(ByteSpan blocks, FloatSpan out);
void dequantize_bf16(ByteSpan blocks, FloatSpan out);

void dequantize_q4_0(ByteSpan blocks, FloatSpan out);
void dequantize_q4_1(ByteSpan blocks, FloatSpan out);
void dequantize_q5_0(ByteSpan blocks, FloatSpan out);
void dequantize_q5_1(ByteSpan blocks, FloatSpan out);
void dequantize_q8_0(ByteSpan blocks, FloatSpan out);

void dequantize_q2_k(ByteSpan blocks, FloatSpan out);
void dequantize_q3_k(ByteSpan blocks, FloatSpan out);
void dequantize_q4_k(ByteSpan blocks, FloatSpan out);
void dequantize_q5_k(ByteSpan blocks, FloatSpan out);
void dequantize_q6_k(ByteSpan blocks, FloatSpan out);

void dequantize_iq4_nl(ByteSpan blocks, FloatSpan out);
void dequantize_iq4_xs(ByteSpan blocks, FloatSpan out);

// Calls fn(block, destination) for each block. Blocks are copied out because tensor data inside a GGUF
// mapping carries no alignment promise for these structs, and a copy keeps the access well-defined.
template <typename Block, int kElements, typename Fn>
void for_each_block(ByteSpan blocks, FloatSpan out, Fn&& fn) {
  const size_t count = blocks.size() / sizeof(Block);
  for (size_t i = 0; i < count; ++i) {
    Block block;
    std::memcpy(&block, blocks.data() + i * sizeof(Block), sizeof(Block));
    fn(block, out.data() + i * kElements);
  }
}

}  // namespace pensieve::tensor::detail
