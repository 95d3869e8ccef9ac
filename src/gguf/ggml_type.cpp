#include "gguf/ggml_type.h"

#include <array>
#include <cctype>

namespace pensieve::gguf {
namespace {

// Indexed by type id. Ids that ggml retired (4, 5, 31-33, 36-38) keep an empty name: unknown geometry.
// Block sizes follow the block structs of ggml's quant formats: e.g. Q4_K = fp16 d + fp16 dmin + 12 bytes of
// 6-bit scales + 128 bytes of nibbles = 144 bytes per 256 elements.
constexpr std::array<TypeTraits, 40> kTraits = [] {
  std::array<TypeTraits, 40> t{};
  auto set = [&t](GgmlType type, std::string_view name, uint32_t elements, uint32_t bytes) {
    t[static_cast<uint32_t>(type)] = TypeTraits{name, elements, bytes};
  };
  set(GgmlType::F32, "F32", 1, 4);
  set(GgmlType::F16, "F16", 1, 2);
  set(GgmlType::Q4_0, "Q4_0", 32, 18);
  set(GgmlType::Q4_1, "Q4_1", 32, 20);
  set(GgmlType::Q5_0, "Q5_0", 32, 22);
  set(GgmlType::Q5_1, "Q5_1", 32, 24);
  set(GgmlType::Q8_0, "Q8_0", 32, 34);
  set(GgmlType::Q8_1, "Q8_1", 32, 36);
  set(GgmlType::Q2_K, "Q2_K", 256, 84);
  set(GgmlType::Q3_K, "Q3_K", 256, 110);
  set(GgmlType::Q4_K, "Q4_K", 256, 144);
  set(GgmlType::Q5_K, "Q5_K", 256, 176);
  set(GgmlType::Q6_K, "Q6_K", 256, 210);
  set(GgmlType::Q8_K, "Q8_K", 256, 292);
  set(GgmlType::IQ2_XXS, "IQ2_XXS", 256, 66);
  set(GgmlType::IQ2_XS, "IQ2_XS", 256, 74);
  set(GgmlType::IQ3_XXS, "IQ3_XXS", 256, 98);
  set(GgmlType::IQ1_S, "IQ1_S", 256, 50);
  set(GgmlType::IQ4_NL, "IQ4_NL", 32, 18);
  set(GgmlType::IQ3_S, "IQ3_S", 256, 110);
  set(GgmlType::IQ2_S, "IQ2_S", 256, 82);
  set(GgmlType::IQ4_XS, "IQ4_XS", 256, 136);
  set(GgmlType::I8, "I8", 1, 1);
  set(GgmlType::I16, "I16", 1, 2);
  set(GgmlType::I32, "I32", 1, 4);
  set(GgmlType::I64, "I64", 1, 8);
  set(GgmlType::F64, "F64", 1, 8);
  set(GgmlType::IQ1_M, "IQ1_M", 256, 56);
  set(GgmlType::BF16, "BF16", 1, 2);
  set(GgmlType::TQ1_0, "TQ1_0", 256, 54);
  set(GgmlType::TQ2_0, "TQ2_0", 256, 66);
  set(GgmlType::MXFP4, "MXFP4", 32, 17);
  return t;
}();

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::optional<TypeTraits> type_traits(uint32_t type_id) {
  if (type_id >= kTraits.size() || kTraits[type_id].name.empty()) return std::nullopt;
  return kTraits[type_id];
}

std::optional<GgmlType> type_from_name(std::string_view name) {
  for (uint32_t id = 0; id < kTraits.size(); ++id) {
    if (!kTraits[id].name.empty() && equals_ignoring_case(kTraits[id].name, name)) {
      return static_cast<GgmlType>(id);
    }
  }
  return std::nullopt;
}

std::string_view type_name(uint32_t type_id) {
  auto traits = type_traits(type_id);
  return traits ? traits->name : std::string_view("unknown");
}

std::optional<uint64_t> bytes_for(uint32_t type_id, uint64_t elements) {
  auto traits = type_traits(type_id);
  if (!traits || elements % traits->block_elements != 0) return std::nullopt;
  uint64_t blocks = elements / traits->block_elements;
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(blocks, uint64_t{traits->block_bytes}, &bytes)) return std::nullopt;
  return bytes;
}

}  // namespace pensieve::gguf
