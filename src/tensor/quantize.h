#pragma once
// Float -> block quantizers (reference, scalar): what `pensieve synth` and tests use to write weights.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "gguf/ggml_type.h"

namespace pensieve::tensor {

// True for F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K (and whatever else gets added).
bool can_quantize(gguf::GgmlType type);

// Quantizes `in` (a whole number of blocks) into `out`, which must be exactly bytes_for(type, in.size()).
// Throws std::invalid_argument on size mismatch or an unsupported type.
void quantize(gguf::GgmlType type, std::span<const float> in, std::span<std::byte> out);

// llama.cpp's Q4_K_M mix: which type a tensor gets when a model is quantized "Q4_K_M" (see quant_mix.cpp for
// the rule). `layer` is the tensor's block index (blk.N), -1 for tensors outside the blocks; `n_layers` the
// model's block count. This form decides from the name alone: tensors named like norms, biases or
// rope_freqs count as 1-D (F32), and the model is taken to have its own output.weight.
gguf::GgmlType q4_k_m_type_for(std::string_view tensor_name, int layer, int n_layers);

// The full form: `shape` in GGUF order (shape[0] innermost). 1-D tensors stay F32; a 2-D tensor whose rows
// are not a whole number of 256-element super-blocks falls back to Q8_0 (F16 when not even 32 divides them).
// `tied_embeddings`: the model has no output.weight and reuses token_embd as the output projection, which
// then gets the output projection's Q6_K.
gguf::GgmlType q4_k_m_type_for(std::string_view tensor_name, std::span<const uint64_t> shape, int layer,
                               int n_layers, bool tied_embeddings);

}  // namespace pensieve::tensor
