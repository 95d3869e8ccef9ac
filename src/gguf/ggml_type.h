#pragma once
// The tensor element types a GGUF file can name, with their block geometry. This is part of the file
// format (the reader needs it to bound-check tensor data), so it lives here; dequantizers live in tensor/.
#include <cstdint>
#include <optional>
#include <string_view>

namespace pensieve::gguf {

enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

struct TypeTraits {
  std::string_view name;   // as GGML names it: "Q4_K"
  uint32_t block_elements; // elements per block (1 for plain floats)
  uint32_t block_bytes;    // bytes per block
};

// Traits of a type id; nullopt when the id is not a GGML type we know the geometry of.
std::optional<TypeTraits> type_traits(uint32_t type_id);
std::optional<GgmlType> type_from_name(std::string_view name);
std::string_view type_name(uint32_t type_id);  // "type(99)"-like text for unknown ids is not returned: "unknown"

// Bytes of `elements` elements of `type`; nullopt when the type is unknown, elements is not a whole number
// of blocks, or the result overflows.
std::optional<uint64_t> bytes_for(uint32_t type_id, uint64_t elements);

}  // namespace pensieve::gguf
