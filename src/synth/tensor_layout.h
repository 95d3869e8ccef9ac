#pragma once
// The tensors of a model, named, shaped and ordered exactly as llama.cpp's convert_hf_to_gguf.py writes them.
//
// Order: the converter first yields generated tensors (rope_freqs), then walks the HF checkpoint, whose
// safetensors header lists tensors sorted by their HF name (so "lm_head" precedes "model.*", and layer 10
// precedes layer 2). We reproduce that by sorting on the HF name. Multi-shard checkpoints are walked shard by
// shard; we write the single-shard order, which llama.cpp does not depend on.
//
// The `llama` architecture's converter permutes the rows of q_proj/k_proj (HF's rotate-half RoPE layout to
// GGML's interleaved one). For random weights a row permutation of i.i.d. values is again i.i.d., so nothing
// needs doing here; a converter of real weights must apply it.
#include <cstdint>
#include <string>
#include <vector>

#include "synth/preset.h"

namespace pensieve::synth {

enum class TensorRole {
  Matrix,     // a 2-D weight: random normal(0, 0.02)
  Bias,       // a 1-D bias: random normal(0, 0.02)
  Norm,       // an RMS-norm weight: all 1.0
  RopeFreqs,  // Llama 3 rope scaling factors, computed
};

struct TensorPlan {
  std::string name;              // GGUF name: "blk.3.attn_q.weight"
  std::string hf_name;           // the HF checkpoint name it comes from (defines the order)
  std::vector<uint64_t> shape;   // GGUF order: shape[0] is the row length
  TensorRole role = TensorRole::Matrix;
  int layer = -1;                // block index, -1 outside blocks
};

std::vector<TensorPlan> tensor_layout(const ModelShape& shape, uint64_t n_vocab);

// rope_freqs values for Llama 3 scaling, computed in float32 as the converter does. Empty when the shape has
// no such scaling.
std::vector<float> llama3_rope_factors(const ModelShape& shape);

}  // namespace pensieve::synth
