#pragma once
// The models `pensieve serve` can answer for, from --model (PATH or NAME=PATH, repeatable), --models-dir and
// --alias, each with the facts the registry budgets by (read from its GGUF header, sized as `plan` sizes it),
// and the loader that builds one (backend, weights, tokenizer, serving engine) when the registry asks.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "api/served_model.h"
#include "cli/device_option.h"
#include "cli/memory_plan.h"
#include "registry/model_registry.h"
#include "http/log_format.h"

namespace pensieve::cli {

struct CatalogFlags {
  std::vector<std::string> models;   // --model: PATH or NAME=PATH
  std::string models_dir;            // --models-dir: every *.gguf in it, named by file name
  std::vector<std::string> aliases;  // --alias: NAME=ALIAS, or a plain ALIAS for the first --model
};

// Throws CommandError naming the flag for a missing file, an empty directory or a name used twice.
std::vector<registry::ModelSpec> collect_models(const CatalogFlags& flags, const PlanInputs& plan);

// The GGUF facts of `path` and what serving it takes under `plan`.
api::ModelFacts read_model_facts(const std::string& path, const PlanInputs& plan);

struct LoadSettings {
  std::string device = "auto";
  ParallelFlags parallel;           // --tensor-parallel, --devices
  int threads = 0;
  PlanInputs plan;                  // parallel, ctx_size, kv_type, kv_memory
  int queue = 256;
  int max_queued_events = 64;
  bool size_kv_to_plan = true;      // on a GPU: the pool is what plan says, not all the free memory
  std::optional<std::string> chat_template;
  api::RequestPolicy policy;
  std::string default_model;        // this one answers for unknown names
  http::LogFormat log_format = http::LogFormat::Text;
};

registry::LoadFunction make_model_loader(LoadSettings settings);

// What the machine can give: the GPU's free memory for `device` when it is one, else MemAvailable.
uint64_t machine_memory(const std::string& device, int threads);

}  // namespace pensieve::cli
