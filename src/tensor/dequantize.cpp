// dequantize(): checks sizes and hands the bytes to the format's scalar kernel.
#include "tensor/dequantize.h"

#include <optional>
#include <string>

#include "tensor/block_layouts.h"
#include "tensor/format_kernels.h"

namespace pensieve::tensor {

namespace {

struct Reader {
  size_t block_elements;
  size_t block_bytes;
  void (*kernel)(detail::ByteSpan, detail::FloatSpan);
};

std::optional<Reader> reader_for(uint32_t type_id) {
  using namespace detail;
  switch (static_cast<GgmlType>(type_id)) {
    case GgmlType::F32: return Reader{1, 4, dequantize_f32};
    case GgmlType::F16: return Reader{1, 2, dequantize_f16};
    case GgmlType::BF16: return Reader{1, 2, dequantize_bf16};
    case GgmlType::Q4_0: return Reader{kLegacyBlock, sizeof(BlockQ4_0), dequantize_q4_0};
    case GgmlType::Q4_1: return Reader{kLegacyBlock, sizeof(BlockQ4_1), dequantize_q4_1};
    case GgmlType::Q5_0: return Reader{kLegacyBlock, sizeof(BlockQ5_0), dequantize_q5_0};
    case GgmlType::Q5_1: return Reader{kLegacyBlock, sizeof(BlockQ5_1), dequantize_q5_1};
    case GgmlType::Q8_0: return Reader{kLegacyBlock, sizeof(BlockQ8_0), dequantize_q8_0};
    case GgmlType::Q2_K: return Reader{kSuperBlock, sizeof(BlockQ2_K), dequantize_q2_k};
    case GgmlType::Q3_K: return Reader{kSuperBlock, sizeof(BlockQ3_K), dequantize_q3_k};
    case GgmlType::Q4_K: return Reader{kSuperBlock, sizeof(BlockQ4_K), dequantize_q4_k};
    case GgmlType::Q5_K: return Reader{kSuperBlock, sizeof(BlockQ5_K), dequantize_q5_k};
    case GgmlType::Q6_K: return Reader{kSuperBlock, sizeof(BlockQ6_K), dequantize_q6_k};
    case GgmlType::IQ4_NL: return Reader{kLegacyBlock, sizeof(BlockIQ4_NL), dequantize_iq4_nl};
    case GgmlType::IQ4_XS: return Reader{kSuperBlock, sizeof(BlockIQ4_XS), dequantize_iq4_xs};
    default: return std::nullopt;
  }
}

std::string describe_type(uint32_t type_id) {
  const std::string_view name = gguf::type_name(type_id);
  if (name == "unknown") return "unknown type id " + std::to_string(type_id);
  return std::string(name);
}

}  // namespace

bool can_dequantize(uint32_t type_id) { return reader_for(type_id).has_value(); }

void dequantize(uint32_t type_id, std::span<const std::byte> blocks, std::span<float> out) {
  const std::optional<Reader> reader = reader_for(type_id);
  if (!reader) throw UnsupportedTypeError("cannot dequantize " + describe_type(type_id));
  if (out.size() % reader->block_elements != 0) {
    throw std::invalid_argument("dequantize " + describe_type(type_id) + ": " + std::to_string(out.size()) +
                                " elements is not a whole number of " + std::to_string(reader->block_elements) +
                                "-element blocks");
  }
  const size_t expected_bytes = out.size() / reader->block_elements * reader->block_bytes;
  if (blocks.size() != expected_bytes) {
    throw std::invalid_argument("dequantize " + describe_type(type_id) + ": " + std::to_string(out.size()) +
                                " elements need " + std::to_string(expected_bytes) + " bytes, got " +
                                std::to_string(blocks.size()));
  }
  reader->kernel(blocks, out);
}

void require_supported(const gguf::TensorInfo& tensor) {
  if (can_dequantize(tensor.type_id)) return;
  throw UnsupportedTypeError("tensor '" + tensor.name + "' has type " + describe_type(tensor.type_id) +
                             ", which pensieve cannot read");
}

}  // namespace pensieve::tensor
