#include "synth/weight_types.h"

#include <algorithm>
#include <cctype>
#include <string>

#include "tensor/quantize.h"

namespace pensieve::synth {

using gguf::GgmlType;

std::optional<OutputType> output_type_from_name(std::string_view name) {
  std::string upper(name);
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  if (upper == "F32") return OutputType::F32;
  if (upper == "F16") return OutputType::F16;
  if (upper == "BF16") return OutputType::BF16;
  if (upper == "Q8_0") return OutputType::Q8_0;
  if (upper == "Q4_0") return OutputType::Q4_0;
  if (upper == "Q4_K_M") return OutputType::Q4_K_M;
  return std::nullopt;
}

std::string_view output_type_name(OutputType type) {
  switch (type) {
    case OutputType::F32: return "F32";
    case OutputType::F16: return "F16";
    case OutputType::BF16: return "BF16";
    case OutputType::Q8_0: return "Q8_0";
    case OutputType::Q4_0: return "Q4_0";
    case OutputType::Q4_K_M: return "Q4_K_M";
  }
  return "?";
}

uint32_t llama_file_type(OutputType type) {
  switch (type) {
    case OutputType::F32: return 0;     // LLAMA_FTYPE_ALL_F32
    case OutputType::F16: return 1;     // LLAMA_FTYPE_MOSTLY_F16
    case OutputType::Q4_0: return 2;    // LLAMA_FTYPE_MOSTLY_Q4_0
    case OutputType::Q8_0: return 7;    // LLAMA_FTYPE_MOSTLY_Q8_0
    case OutputType::Q4_K_M: return 15; // LLAMA_FTYPE_MOSTLY_Q4_K_M
    case OutputType::BF16: return 32;   // LLAMA_FTYPE_MOSTLY_BF16
  }
  return 0;
}

namespace {

constexpr uint64_t kSuperBlock = 256;  // QK_K

// The tensor that plays the output projection: output.weight, or token_embd.weight when tied.
bool is_output_projection(const TensorPlan& t, const ModelShape& shape) {
  return t.name == "output.weight" || (shape.tied_embeddings && t.name == "token_embd.weight");
}

}  // namespace

GgmlType tensor_type_for(OutputType type, const TensorPlan& t, const ModelShape& shape) {
  if (t.shape.size() < 2 || type == OutputType::F32) return GgmlType::F32;  // norms, biases, rope_freqs
  const uint64_t row = t.shape[0];
  switch (type) {
    case OutputType::F32: return GgmlType::F32;
    case OutputType::F16: return GgmlType::F16;
    case OutputType::BF16: return GgmlType::BF16;
    case OutputType::Q8_0: return row % 32 == 0 ? GgmlType::Q8_0 : GgmlType::F16;
    case OutputType::Q4_0:
      if (is_output_projection(t, shape)) return row % kSuperBlock == 0 ? GgmlType::Q6_K : GgmlType::Q8_0;
      return row % 32 == 0 ? GgmlType::Q4_0 : GgmlType::F16;
    case OutputType::Q4_K_M:
      // Rows that are not whole 256-element super-blocks fall back to Q8_0 (llama.cpp: Q5_0 for Q4_K rows;
      // pensieve has no Q5_0 writer, so those get more bits, never fewer).
      return tensor::q4_k_m_type_for(t.name, t.shape, t.layer, static_cast<int>(shape.layers),
                                     shape.tied_embeddings);
  }
  return GgmlType::F32;
}

}  // namespace pensieve::synth
