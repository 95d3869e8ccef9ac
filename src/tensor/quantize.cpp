// quantize(): size checks and the simple formats (plain floats, Q8_0, Q4_0). The K-quants, which need a
// search for their scales, live in k_quantize.cpp.
#include "tensor/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>

#include "tensor/block_layouts.h"
#include "tensor/dequantize.h"
#include "tensor/k_quantize.h"

namespace pensieve::tensor {

namespace {

using FloatIn = std::span<const float>;
using BytesOut = std::span<std::byte>;

template <typename Block, int kElements, typename Fn>
void for_each_output_block(FloatIn in, BytesOut out, Fn&& fn) {
  const size_t count = in.size() / kElements;
  for (size_t i = 0; i < count; ++i) {
    Block block{};
    fn(in.data() + i * kElements, block);
    std::memcpy(out.data() + i * sizeof(Block), &block, sizeof(Block));
  }
}

template <uint16_t (*narrow)(float)>
void narrow_all(FloatIn in, BytesOut out) {
  for (size_t i = 0; i < in.size(); ++i) {
    const uint16_t h = narrow(in[i]);
    std::memcpy(out.data() + 2 * i, &h, 2);
  }
}

// Symmetric 8-bit: the largest magnitude maps to +-127, so every element is within d/2 of its code.
void quantize_q8_0(FloatIn in, BytesOut out) {
  for_each_output_block<BlockQ8_0, kLegacyBlock>(in, out, [](const float* x, BlockQ8_0& b) {
    float amax = 0.0f;
    for (int j = 0; j < kLegacyBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float inverse = d > 0.0f ? 1.0f / d : 0.0f;
    b.d = fp32_to_fp16(d);
    for (int j = 0; j < kLegacyBlock; ++j) b.qs[j] = int8_t(std::lround(x[j] * inverse));
  });
}

// Symmetric 4-bit with 16 codes -8..7: the element of largest magnitude gets code -8 exactly (the scale
// takes its sign), which uses the extra negative code instead of wasting it.
void quantize_q4_0(FloatIn in, BytesOut out) {
  for_each_output_block<BlockQ4_0, kLegacyBlock>(in, out, [](const float* x, BlockQ4_0& b) {
    float extreme = 0.0f;
    for (int j = 0; j < kLegacyBlock; ++j) {
      if (std::fabs(x[j]) > std::fabs(extreme)) extreme = x[j];
    }
    const float d = extreme / -8.0f;
    const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
    b.d = fp32_to_fp16(d);
    auto code = [&](float v) { return uint8_t(std::clamp(std::lround(v * inverse) + 8, 0L, 15L)); };
    for (int j = 0; j < kLegacyBlock / 2; ++j) {
      b.qs[j] = uint8_t(code(x[j]) | (code(x[j + kLegacyBlock / 2]) << 4));
    }
  });
}

struct Writer {
  size_t block_elements;
  size_t block_bytes;
  void (*kernel)(FloatIn, BytesOut);
};

std::optional<Writer> writer_for(GgmlType type) {
  switch (type) {
    case GgmlType::F32:
      return Writer{1, 4, [](FloatIn in, BytesOut out) { std::memcpy(out.data(), in.data(), in.size_bytes()); }};
    case GgmlType::F16: return Writer{1, 2, narrow_all<fp32_to_fp16>};
    case GgmlType::BF16: return Writer{1, 2, narrow_all<fp32_to_bf16>};
    case GgmlType::Q8_0: return Writer{kLegacyBlock, sizeof(BlockQ8_0), quantize_q8_0};
    case GgmlType::Q4_0: return Writer{kLegacyBlock, sizeof(BlockQ4_0), quantize_q4_0};
    case GgmlType::Q4_K: return Writer{kSuperBlock, sizeof(BlockQ4_K), detail::quantize_q4_k};
    case GgmlType::Q6_K: return Writer{kSuperBlock, sizeof(BlockQ6_K), detail::quantize_q6_k};
    default: return std::nullopt;
  }
}

}  // namespace

bool can_quantize(GgmlType type) { return writer_for(type).has_value(); }

void quantize(GgmlType type, std::span<const float> in, std::span<std::byte> out) {
  const std::string name(gguf::type_name(static_cast<uint32_t>(type)));
  const std::optional<Writer> writer = writer_for(type);
  if (!writer) throw std::invalid_argument("pensieve cannot quantize to " + name);
  if (in.size() % writer->block_elements != 0) {
    throw std::invalid_argument("quantize " + name + ": " + std::to_string(in.size()) +
                                " elements is not a whole number of " + std::to_string(writer->block_elements) +
                                "-element blocks");
  }
  const size_t expected_bytes = in.size() / writer->block_elements * writer->block_bytes;
  if (out.size() != expected_bytes) {
    throw std::invalid_argument("quantize " + name + ": " + std::to_string(in.size()) + " elements need " +
                                std::to_string(expected_bytes) + " bytes, got " + std::to_string(out.size()));
  }
  writer->kernel(in, out);
}

}  // namespace pensieve::tensor
