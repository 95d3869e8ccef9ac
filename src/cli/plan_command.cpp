// `pensieve plan --model F [--parallel 20] [--ctx-size N] [--kv-type f16|q8_0|f32] [--budget SIZE] [--json]`: what
// `pensieve serve` with the same flags will need in memory, whether that fits, and the most parallel sequences
// that would.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/command_registry.h"
#include "cli/device_option.h"
#include "cli/memory_plan.h"
#include "cli/model_catalog.h"
#include "gguf/gguf_file.h"
#include "model/model_config.h"

namespace pensieve::cli {
namespace {

struct PlanArgs {
  std::vector<std::string> models;
  int parallel = 20;
  int ctx_size = 0;
  std::string kv_type = "f16";
  std::string kv_memory;
  std::string budget;
  std::string device = "cpu";
  ParallelFlags parallel_flags;
  bool json = false;
};

// The largest parallel whose plan fits, 0 when not even one sequence does. Totals grow with parallel.
int largest_parallel(const gguf::GgufFile& file, const model::ModelConfig& config, PlanInputs in, uint64_t budget) {
  const auto fits = [&](int p) {
    in.parallel = p;
    return plan_memory(file, config, in).total_bytes() <= budget;
  };
  if (!fits(1)) return 0;
  int lo = 1, hi = 2;
  while (hi < (1 << 24) && fits(hi)) lo = hi, hi *= 2;
  if (fits(hi)) return hi;
  while (hi - lo > 1) {
    const int mid = lo + (hi - lo) / 2;
    (fits(mid) ? lo : hi) = mid;
  }
  return lo;
}

// Several models as `serve --model A --model B --memory-budget X` would hold them: each one's total, all of them
// together, and which of them (in the order given) are resident at once within the budget.
int plan_together(const PlanArgs& a, const PlanInputs& in, uint64_t budget, const std::string& budget_source) {
  std::vector<registry::ModelSpec> specs = collect_models(CatalogFlags{a.models, "", {}}, in);
  uint64_t all = 0, resident = 0;
  std::vector<std::string> together, waiting;
  for (const registry::ModelSpec& s : specs) {
    all += s.facts.memory_bytes;
    if (resident + s.facts.memory_bytes <= budget) {
      resident += s.facts.memory_bytes;
      together.push_back(s.name);
    } else {
      waiting.push_back(s.name);
    }
  }
  const auto names = [](const std::vector<std::string>& v) {
    std::string out;
    for (const std::string& n : v) out += (out.empty() ? "" : ", ") + n;
    return out.empty() ? std::string("none") : out;
  };
  if (a.json) {
    nlohmann::ordered_json j;
    j["models"] = nlohmann::ordered_json::array();
    for (const registry::ModelSpec& s : specs) {
      j["models"].push_back({{"name", s.name}, {"path", s.path}, {"total_bytes", s.facts.memory_bytes},
                             {"fits_alone", s.facts.memory_bytes <= budget}});
    }
    j["total_bytes"] = all;
    j["budget_bytes"] = budget;
    j["budget_source"] = budget_source;
    j["fits"] = all <= budget;
    j["resident_together"] = together;
    j["loaded_on_demand"] = waiting;
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  for (const registry::ModelSpec& s : specs) {
    std::printf("model        %s (%s): %s%s\n", s.name.c_str(), s.path.c_str(), format_bytes(s.facts.memory_bytes).c_str(),
                s.facts.memory_bytes > budget ? " - more than the whole budget: it can never load" : "");
  }
  std::printf("together     %s\n", format_bytes(all).c_str());
  std::printf("budget       %s (%s)\n", format_bytes(budget).c_str(), budget_source.c_str());
  if (all <= budget) {
    std::printf("fits         yes: all %zu models resident at once\n", specs.size());
  } else {
    std::printf("fits         NO: %s over; resident together: %s; the rest load on demand, unloading the least "
                "recently used: %s\n",
                format_bytes(all - budget).c_str(), names(together).c_str(), names(waiting).c_str());
  }
  return 0;
}

int run_plan(const PlanArgs& a) {
  if (a.parallel < 1) throw CommandError{"--parallel must be at least 1"};
  if (a.ctx_size < 0) throw CommandError{"--ctx-size must not be negative"};
  PlanInputs in;
  in.parallel = a.parallel;
  in.ctx_size = a.ctx_size;
  in.kv_type = parse_kv_type_flag(a.kv_type, "--kv-type");
  if (!a.kv_memory.empty()) in.kv_memory = parse_size(a.kv_memory, "--kv-memory");
  const std::vector<int> devices = rank_devices(a.parallel_flags);
  in.tensor_parallel = a.parallel_flags.tensor_parallel;
  const bool budget_given = !a.budget.empty();
  std::string budget_source = budget_given ? "--budget" : "MemAvailable";
  uint64_t budget = budget_given ? parse_size(a.budget, "--budget") : 0;
  if (a.device != "cpu") {
    // Plan for the GPU serve would use: its free memory is the budget, its scratch counts.
    std::unique_ptr<backend::Backend> be = open_backend(a.device, 1);
    in.gpu = !be->host_memory();
    if (!budget_given && in.gpu) {
      budget = be->device_info().free_bytes;
      budget_source = "free memory of " + describe_device(*be);
      // Split over GPUs: each must hold its rank's share, so the GPU with the least free memory decides.
      if (in.tensor_parallel > 1 || !a.parallel_flags.devices.empty()) {
        budget = UINT64_MAX;
        for (const int d : devices) {
          std::unique_ptr<backend::Backend> rank = open_backend("cuda:" + std::to_string(d), 1);
          if (rank->device_info().free_bytes < budget) {
            budget = rank->device_info().free_bytes;
            budget_source = "free memory of " + describe_device(*rank) + ", the least of the ranks' GPUs";
          }
        }
      }
    }
  }
  if (budget == 0) budget = available_memory();
  if (a.models.size() > 1) return plan_together(a, in, budget, budget_source);
  const std::string& model_path = a.models.front();
  if (!std::filesystem::exists(model_path)) throw CommandError{"--model: no such file: " + model_path};

  gguf::GgufFile file = [&] {
    try {
      return gguf::GgufFile::open(model_path);
    } catch (const std::exception& e) {
      throw CommandError{e.what()};
    }
  }();
  model::ModelConfig config;
  try {
    config = model::read_model_config(file);
    // Model::load takes the vocabulary from the embedding's rows; so must the logits estimate.
    if (const gguf::TensorInfo* embd = file.find_tensor("token_embd.weight"); embd && embd->shape.size() == 2) {
      config.vocab = static_cast<int>(embd->shape[1]);
    }
  } catch (const std::exception& e) {
    throw CommandError{e.what()};
  }
  const MemoryPlan p = plan_memory(file, config, in);
  const bool fits = p.total_bytes() <= budget;
  const int best = largest_parallel(file, config, in, budget);
  const bool pool_fixed = in.kv_memory > 0;

  if (a.json) {
    nlohmann::ordered_json j;
    j["model"] = model_path;
    j["parallel"] = a.parallel;
    j["context"] = p.context;
    j["kv_type"] = a.kv_type;
    j["weight_bytes"] = p.weight_bytes;
    j["kv_bytes_per_token"] = p.kv_bytes_per_token;
    j["kv_blocks"] = p.kv_blocks;
    j["kv_pool_bytes"] = p.kv_pool_bytes;
    j["scratch_bytes"] = p.scratch_bytes;
    j["total_bytes"] = p.total_bytes();
    j["budget_bytes"] = budget;
    j["budget_source"] = budget_source;
    j["device"] = in.gpu ? "cuda" : "cpu";
    j["tensor_parallel"] = in.tensor_parallel;
    j["fits"] = fits;
    j["max_parallel"] = best;
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("model        %s (%s, %d layers, %d KV heads x %d)\n", model_path.c_str(), config.arch_name.c_str(),
              config.n_layers, config.n_kv_heads, config.head_dim);
  if (in.tensor_parallel > 1) {
    std::printf("split        %d ranks (tensor parallel): every figure below is one rank's (one GPU's)\n",
                in.tensor_parallel);
  }
  std::printf("weights      %s (%s)\n", format_bytes(p.weight_bytes).c_str(),
              in.tensor_parallel > 1 ? "this rank's slices, and the replicated norms and embedding" : "mapped from the file");
  std::printf("KV cache     %s per token (%s); pool %d blocks of %d tokens = %s\n",
              format_bytes(p.kv_bytes_per_token).c_str(), a.kv_type.c_str(), p.kv_blocks, kv::kBlockTokens,
              format_bytes(p.kv_pool_bytes).c_str());
  std::printf("             %d parallel x %d tokens of context\n", a.parallel, p.context);
  std::printf("scratch      %s (activations and logits)\n", format_bytes(p.scratch_bytes).c_str());
  std::printf("total        %s\n", format_bytes(p.total_bytes()).c_str());
  std::printf("budget       %s (%s)\n", format_bytes(budget).c_str(),
              budget_given ? "--budget" : in.gpu ? budget_source.c_str() : "available memory");
  if (fits) std::printf("fits         yes\n");
  else std::printf("fits         NO: %s over\n", format_bytes(p.total_bytes() - budget).c_str());
  if (best == 0) {
    std::printf("max parallel none: even --parallel 1 does not fit; try a smaller --ctx-size%s\n",
                pool_fixed ? " or --kv-memory" : "");
  } else {
    std::printf("max parallel %d (largest --parallel that fits%s)\n", best,
                pool_fixed ? " with this --kv-memory" : "");
  }
  return 0;
}

const RegisterCommand kPlan{
    "plan", "Show the memory `serve` will need and the most parallel sequences that fit", [](CLI::App& sub) -> Action {
      auto a = std::make_shared<PlanArgs>();
      sub.add_option("--model", a->models, "GGUF model file (NAME=FILE too); several: what fits together")->required();
      sub.add_option("--parallel", a->parallel, "Sequences generated at once (default 20, as serve)");
      sub.add_option("--ctx-size", a->ctx_size, "Longest prompt + completion per sequence (default: the model's)");
      sub.add_option("--kv-type", a->kv_type, "KV cache precision, as serve --kv-type: f16 (default), q8_0 or f32");
      sub.add_option("--kv-memory", a->kv_memory, "KV pool size as serve --kv-memory (default as serve: CPU parallel x min(context, 8192) tokens)");
      sub.add_option("--budget,--memory-budget", a->budget, "Memory to fit in, e.g. 16G (default: MemAvailable, or the GPU's free memory)");
      sub.add_option("--device", a->device, "Plan for cpu (default) or for cuda / cuda:N as serve --device would use it");
      add_parallel_options(sub, a->parallel_flags);
      sub.add_flag("--json", a->json, "Print one JSON object");
      return [a] { return run_plan(*a); };
    }};

}  // namespace
}  // namespace pensieve::cli
