#include "cli/memory_plan.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <fstream>
#include <sstream>

#include "cli/command_registry.h"
#include "engine/serving_engine.h"
#include "model/tensor_split.h"

namespace pensieve::cli {
namespace {

// The serving engine's cap on the default pool's per-sequence context (kDefaultContextCap in
// serving_engine.cpp) and its fallback when the file gives no context length.
constexpr int kDefaultContextCap = 8192;
constexpr int kContextWhenUnknown = 4096;
constexpr uint64_t kGpuReserve = 1ull << 30;  // CUDA context, cuBLAS workspaces, allocator slack

int requested_context(const model::ModelConfig& c, int ctx_size) {
  const int model_ctx = c.context_length > 0 ? c.context_length : kContextWhenUnknown;
  return ctx_size > 0 ? std::min(ctx_size, model_ctx) : model_ctx;
}

}  // namespace

uint64_t file_weight_bytes(const gguf::GgufFile& file) {
  uint64_t total = 0;
  for (const gguf::TensorInfo& t : file.tensors()) total += t.n_bytes;
  return total;
}

uint64_t rank_weight_bytes(const gguf::GgufFile& file, int ranks) {
  if (ranks <= 1) return file_weight_bytes(file);
  const auto n = static_cast<uint64_t>(ranks);
  uint64_t total = 0;
  for (const gguf::TensorInfo& t : file.tensors()) {
    bool split = t.name == "output.weight";
    for (const char* part : {".attn_q.", ".attn_k.", ".attn_v.", ".attn_output.", ".ffn_gate.", ".ffn_up.", ".ffn_down."}) {
      split = split || t.name.find(part) != std::string::npos;
    }
    total += split ? (t.n_bytes + n - 1) / n : t.n_bytes;
    if (t.name == "token_embd.weight" && file.find_tensor("output.weight") == nullptr) total += (t.n_bytes + n - 1) / n;
  }
  return total;
}

model::ModelConfig rank_config(const model::ModelConfig& config, int ranks) {
  if (ranks <= 1) return config;
  try {
    return model::plan_shard(config, 0, ranks).local;
  } catch (const std::exception& e) {
    throw CommandError{e.what()};
  }
}

uint64_t kv_bytes_per_token(const model::ModelConfig& c, kv::KvType type) {
  return 2ull * static_cast<uint64_t>(c.n_layers) * kv::kv_row_bytes(type, c.kv_dim());
}

uint64_t scratch_bytes(const model::ModelConfig& c, int parallel) {
  const uint64_t rows = static_cast<uint64_t>(std::max(engine::EngineOptions{}.token_budget, parallel));
  const uint64_t per_row = static_cast<uint64_t>(c.dim) + static_cast<uint64_t>(std::max(c.dim, c.q_dim())) +
                           2ull * static_cast<uint64_t>(c.q_dim()) + 2ull * static_cast<uint64_t>(c.kv_dim()) +
                           2ull * static_cast<uint64_t>(c.ffn_dim) + static_cast<uint64_t>(c.n_rot);
  const uint64_t seqs = static_cast<uint64_t>(std::max(1, parallel));
  // Logits of every sequence, one raw row for sampling, and the final-norm rows selected for the output head.
  const uint64_t logits = (seqs + 1) * static_cast<uint64_t>(c.vocab) + seqs * static_cast<uint64_t>(c.dim);
  return (rows * per_row + logits) * sizeof(float);
}

uint64_t gpu_extra_scratch_bytes(const model::ModelConfig& c) {
  const uint64_t widest = std::max<uint64_t>({static_cast<uint64_t>(c.ffn_dim), static_cast<uint64_t>(c.vocab),
                                              static_cast<uint64_t>(c.q_dim())});
  return 2ull * widest * static_cast<uint64_t>(std::max(c.dim, c.ffn_dim));
}

uint64_t gpu_kv_bytes(uint64_t free_bytes, const model::ModelConfig& c, const PlanInputs& in, uint64_t cap) {
  const uint64_t scratch = scratch_bytes(c, in.parallel) + gpu_extra_scratch_bytes(c) + kGpuReserve;
  if (free_bytes <= scratch) return 0;
  uint64_t bytes = (free_bytes - scratch) / 10 * 9;
  const uint64_t wanted = static_cast<uint64_t>(std::max(1, in.parallel)) *
                          static_cast<uint64_t>(requested_context(c, in.ctx_size)) * kv_bytes_per_token(c, in.kv_type);
  bytes = std::min(bytes, wanted);
  if (cap > 0) bytes = std::min(bytes, cap);
  return bytes;
}

kv::KvType parse_kv_type_flag(const std::string& value, const std::string& flag) {
  if (const auto type = kv::parse_kv_type(value)) return *type;
  throw CommandError{flag + " must be f16, q8_0 or f32, not '" + value + "'"};
}

void require_kv_type_fits(kv::KvType type, const model::ModelConfig& config) {
  if (const std::string why = kv::kv_type_unsupported_reason(type, config.head_dim); !why.empty()) {
    throw CommandError{why};
  }
}

MemoryPlan plan_memory(const gguf::GgufFile& file, const model::ModelConfig& whole, const PlanInputs& in) {
  require_kv_type_fits(in.kv_type, whole);
  const model::ModelConfig c = rank_config(whole, in.tensor_parallel);
  MemoryPlan p;
  const int context = requested_context(c, in.ctx_size);
  const uint64_t per_token = kv_bytes_per_token(c, in.kv_type);
  const uint64_t block_bytes = per_token * kv::kBlockTokens;
  if (in.kv_memory > 0) {
    // --kv-memory sizes the whole pool; each rank holds its share of every block.
    const uint64_t whole_block = kv_bytes_per_token(whole, in.kv_type) * kv::kBlockTokens;
    p.kv_blocks = static_cast<int>(std::max<uint64_t>(1, in.kv_memory / whole_block));
  } else {
    // serve on a GPU gives every sequence its whole context when the card can hold it (gpu_kv_bytes).
    const int per_seq_context = in.gpu ? context : std::min(context, kDefaultContextCap);
    const int per_seq = (per_seq_context + kv::kBlockTokens - 1) / kv::kBlockTokens;
    p.kv_blocks = std::max(1, in.parallel) * per_seq;
  }
  p.context = std::min(context, p.kv_blocks * kv::kBlockTokens);
  p.weight_bytes = rank_weight_bytes(file, in.tensor_parallel);
  p.kv_bytes_per_token = per_token;
  p.kv_pool_bytes = block_bytes * static_cast<uint64_t>(p.kv_blocks);
  p.scratch_bytes = scratch_bytes(c, in.parallel) + (in.gpu ? gpu_extra_scratch_bytes(c) + kGpuReserve : 0);
  return p;
}

uint64_t parse_size(const std::string& text, const std::string& flag) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    throw CommandError{flag + ": '" + text + "' is not a size (e.g. 2G, 512M)"};
  }
  std::string unit = text.substr(used);
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();
  if (unit.size() > 1 && unit.back() == 'i') unit.pop_back();
  double scale = 1;
  if (unit.empty()) scale = 1;
  else if (unit == "K" || unit == "k") scale = 1024.0;
  else if (unit == "M" || unit == "m") scale = 1024.0 * 1024;
  else if (unit == "G" || unit == "g") scale = 1024.0 * 1024 * 1024;
  else if (unit == "T" || unit == "t") scale = 1024.0 * 1024 * 1024 * 1024;
  else throw CommandError{flag + ": unknown unit in '" + text + "' (use K, M, G or T)"};
  if (value <= 0) throw CommandError{flag + " must be positive"};
  return static_cast<uint64_t>(value * scale);
}

std::string format_bytes(uint64_t bytes) {
  char buf[64];
  const double b = static_cast<double>(bytes);
  if (bytes >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", b / (1ull << 30));
  else if (bytes >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.1f MiB", b / (1ull << 20));
  else if (bytes >= (1ull << 10)) std::snprintf(buf, sizeof buf, "%.1f KiB", b / (1ull << 10));
  else std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  return buf;
}

uint64_t available_memory() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string key;
    uint64_t kib = 0;
    if (fields >> key >> kib && key == "MemAvailable:") return kib * 1024;
  }
  throw CommandError{"cannot read MemAvailable from /proc/meminfo; pass a budget"};
}

}  // namespace pensieve::cli
