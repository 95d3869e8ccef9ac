#pragma once
// What serving a model costs in memory: the mapped weights, the KV pool the serving engine allocates, and the
// scratch its forward passes grow to. `pensieve plan` prints it; `pensieve serve` logs it at startup, so the
// two can be compared.
#include <cstdint>
#include <string>

#include "gguf/gguf_file.h"
#include "kv/kv_cache.h"
#include "model/model_config.h"

namespace pensieve::cli {

struct PlanInputs {
  int parallel = 20;
  int ctx_size = 0;          // 0: the model's
  uint64_t kv_memory = 0;    // 0: parallel x min(context, the engine's default cap)
  kv::KvType kv_type = kv::KvType::F16;
  bool gpu = false;          // the CUDA backend's scratch and reserve count too
  int tensor_parallel = 1;   // > 1: the plan is per rank (GPU); kv_memory stays the whole pool's
};

// Figures per rank when the model is split over several (MemoryPlan and the functions below take the rank's
// config where they size activations or the KV cache).
struct MemoryPlan {
  int context = 0;               // tokens per sequence the engine will allow
  int kv_blocks = 0;
  uint64_t weight_bytes = 0;     // every tensor of the file (mapped)
  uint64_t kv_bytes_per_token = 0;
  uint64_t kv_pool_bytes = 0;
  uint64_t scratch_bytes = 0;    // activations for one full token-budget step plus the logits of every sequence
  uint64_t total_bytes() const { return weight_bytes + kv_pool_bytes + scratch_bytes; }
};

uint64_t file_weight_bytes(const gguf::GgufFile& file);
// What one of `ranks` ranks holds of the file's weights (src/model/tensor_split.h): the attention, FFN and
// output matrices split, the rest (norms, the embedding every rank looks up) whole, and with a tied
// embedding the rank's slice of the output product beside it.
uint64_t rank_weight_bytes(const gguf::GgufFile& file, int ranks);
// The shape one rank computes with (heads, KV heads, FFN width and vocabulary divided); a one-line
// CommandError when `ranks` does not divide the model.
model::ModelConfig rank_config(const model::ModelConfig& config, int ranks);
uint64_t kv_bytes_per_token(const model::ModelConfig& config, kv::KvType type);
// Activation and logits buffers of the engine and model at `parallel` sequences (the engine's token budget).
uint64_t scratch_bytes(const model::ModelConfig& config, int parallel);
// Sizes the KV pool the way make_serving_engine does for the same options.
MemoryPlan plan_memory(const gguf::GgufFile& file, const model::ModelConfig& config, const PlanInputs& in);

// On a GPU the KV pool takes what the card has free after the weights are loaded, less the scratch a full
// step needs and a reserve for cuBLAS and the CUDA context, up to what `parallel` sequences of the whole
// context can use; `cap` (--kv-memory, 0 for none) caps it further. 0 when nothing is left.
uint64_t gpu_kv_bytes(uint64_t free_bytes, const model::ModelConfig& config, const PlanInputs& in, uint64_t cap);
// Bytes the CUDA backend adds to scratch_bytes: a whole weight matrix decoded to f16 for large batches.
uint64_t gpu_extra_scratch_bytes(const model::ModelConfig& config);

// "f16", "q8_0", "f32" -> the KV type; throws a one-line CommandError naming `flag` for anything else.
kv::KvType parse_kv_type_flag(const std::string& value, const std::string& flag);
// Throws CommandError when the model's heads cannot be held in `type` (q8_0 needs head_dim % 32 == 0).
void require_kv_type_fits(kv::KvType type, const model::ModelConfig& config);

// "512M", "2G", "1.5GiB", "1000000" -> bytes; throws CommandError naming `flag`.
uint64_t parse_size(const std::string& text, const std::string& flag);
std::string format_bytes(uint64_t bytes);
// MemAvailable from /proc/meminfo: what can be allocated without swapping. Throws CommandError when unreadable.
uint64_t available_memory();  // "1.50 GiB", "12.0 MiB", "900 B"

}  // namespace pensieve::cli
