#pragma once
// Which GGML type each tensor gets for a requested output type, the way llama.cpp's converter (F32, F16,
// BF16, Q8_0) and llama-quantize (Q4_0, Q4_K_M) choose them.
#include <cstdint>
#include <optional>
#include <string_view>

#include "gguf/ggml_type.h"
#include "synth/preset.h"
#include "synth/tensor_layout.h"

namespace pensieve::synth {

enum class OutputType { F32, F16, BF16, Q8_0, Q4_0, Q4_K_M };

std::optional<OutputType> output_type_from_name(std::string_view name);  // "Q4_K_M", case-insensitive
std::string_view output_type_name(OutputType type);
uint32_t llama_file_type(OutputType type);  // general.file_type: LLAMA_FTYPE numbering

gguf::GgmlType tensor_type_for(OutputType type, const TensorPlan& tensor, const ModelShape& shape);

}  // namespace pensieve::synth
