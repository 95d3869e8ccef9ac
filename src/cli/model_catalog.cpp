#include "cli/model_catalog.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "backend/backend.h"
#include "chat/chat_template.h"
#include "cli/command_registry.h"
#include "cli/device_option.h"
#include "engine/serving_engine.h"
#include "gguf/ggml_type.h"
#include "gguf/gguf_file.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace pensieve::cli {

namespace fs = std::filesystem;

namespace {

// A loaded model and everything it stands on, destroyed in reverse: the engine stops before the weights go.
class OwnedModel : public registry::LoadedModel {
 public:
  ~OwnedModel() override {
    if (engine) engine->shutdown();
  }
  const api::ServedModel& served() const override { return *served_model; }

  std::vector<std::unique_ptr<backend::Backend>> backends;  // one per tensor-parallel rank
  std::unique_ptr<model::Model> model;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<api::ServedModel> served_model;
};

std::pair<std::string, std::string> split_name(const std::string& text) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos) return {"", text};
  return {text.substr(0, eq), text.substr(eq + 1)};
}

// The tensor type holding most of the weights' bytes, as Ollama's quantization_level spells it ("Q8_0").
std::string dominant_type(const gguf::GgufFile& file) {
  std::map<uint32_t, uint64_t> bytes;
  for (const gguf::TensorInfo& t : file.tensors()) bytes[t.type_id] += t.n_bytes;
  const auto most = std::max_element(bytes.begin(), bytes.end(),
                                     [](const auto& a, const auto& b) { return a.second < b.second; });
  if (most == bytes.end()) return "unknown";
  std::string name(gguf::type_name(most->first));
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

}  // namespace

api::ModelFacts read_model_facts(const std::string& path, const PlanInputs& plan) {
  api::ModelFacts f;
  try {
    gguf::GgufFile file = gguf::GgufFile::open(path);
    model::ModelConfig config = model::read_model_config(file);
    if (const gguf::TensorInfo* embd = file.find_tensor("token_embd.weight"); embd && embd->shape.size() == 2) {
      config.vocab = static_cast<int>(embd->shape[1]);
    }
    const MemoryPlan p = plan_memory(file, config, plan);
    f.file_bytes = file.file_size();
    f.memory_bytes = p.total_bytes();
    f.architecture = config.arch_name;
    for (const gguf::TensorInfo& t : file.tensors()) f.parameter_count += t.elements();
    f.quantization = dominant_type(file);
    f.context_length = p.context;
    std::optional<std::string> own = file.get_string("tokenizer.chat_template");
    if (own && own->empty()) own.reset();
    f.chat_template = chat::choose_template(own).source;  // ChatML when the file has none, as ServedModel does
  } catch (const CommandError&) {
    throw;
  } catch (const std::exception& e) {
    throw CommandError{path + ": " + e.what()};
  }
  const auto mtime = fs::last_write_time(path);
  f.modified_unix = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::file_clock::to_sys(mtime).time_since_epoch())
                        .count();
  return f;
}

std::vector<registry::ModelSpec> collect_models(const CatalogFlags& flags, const PlanInputs& plan) {
  std::vector<registry::ModelSpec> specs;
  for (const std::string& m : flags.models) {
    auto [name, path] = split_name(m);
    if (!fs::is_regular_file(path)) throw CommandError{"--model: no such file: " + path};
    specs.push_back({name.empty() ? fs::path(path).stem().string() : name, {}, path, {}});
  }
  if (!flags.models_dir.empty()) {
    if (!fs::is_directory(flags.models_dir)) throw CommandError{"--models-dir: no such directory: " + flags.models_dir};
    std::vector<fs::path> files;
    for (const fs::directory_entry& e : fs::directory_iterator(flags.models_dir)) {
      if (e.is_regular_file() && e.path().extension() == ".gguf") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) throw CommandError{"--models-dir: no .gguf file in " + flags.models_dir};
    for (const fs::path& p : files) specs.push_back({p.stem().string(), {}, p.string(), {}});
  }
  if (specs.empty()) throw CommandError{"give a model: --model FILE.gguf (repeatable) or --models-dir DIR"};
  // The first plain --alias replaces the first model's file-name id (as with one model); NAME= named it already.
  bool first_renamed = flags.models.empty() || !split_name(flags.models.front()).first.empty();
  for (const std::string& a : flags.aliases) {
    auto [name, alias] = split_name(a);
    if (alias.empty()) throw CommandError{"--alias: empty name in '" + a + "'"};
    if (name.empty()) {
      // A plain --alias names the first model; the first such alias becomes its id, as with one model.
      registry::ModelSpec& first = specs.front();
      if (!first_renamed) first.name = alias;
      else first.aliases.push_back(alias);
      first_renamed = true;
      continue;
    }
    auto it = std::find_if(specs.begin(), specs.end(), [&](const registry::ModelSpec& s) { return s.name == name; });
    if (it == specs.end()) throw CommandError{"--alias " + a + ": no model is named '" + name + "'"};
    it->aliases.push_back(alias);
  }
  std::map<std::string, std::string> owner;
  for (const registry::ModelSpec& s : specs) {
    std::vector<std::string> names = s.aliases;
    names.push_back(s.name);
    for (const std::string& n : names) {
      if (auto [it, fresh] = owner.emplace(n, s.path); !fresh) {
        throw CommandError{"the model name '" + n + "' is given to both " + it->second + " and " + s.path +
                           " (name one with --model NAME=PATH)"};
      }
    }
  }
  for (registry::ModelSpec& s : specs) s.facts = read_model_facts(s.path, plan);
  return specs;
}

registry::LoadFunction make_model_loader(LoadSettings settings) {
  return [settings](const registry::ModelSpec& spec) -> std::unique_ptr<registry::LoadedModel> {
    auto m = std::make_unique<OwnedModel>();
    try {
      m->backends = open_rank_backends(settings.device, settings.parallel, settings.threads, settings.log_format);
      m->model = model::Model::load(spec.path, pointers(m->backends));
      backend::Backend& first = *m->backends.front();
      const int ranks = m->model->tensor_parallel();
      m->tokenizer = std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::from_gguf(m->model->file()));
      require_kv_type_fits(settings.plan.kv_type, m->model->config());
      engine::EngineOptions eo;
      eo.kv_type = settings.plan.kv_type;
      eo.parallel = settings.plan.parallel;
      eo.context_length = settings.plan.ctx_size;
      eo.queue_limit = settings.queue;
      eo.max_queued_events = settings.max_queued_events;
      eo.kv_bytes = settings.plan.kv_memory;
      if (!first.host_memory()) {
        // On a GPU the pool is sized from the card's free memory, now that the weights are on it; beside other
        // models it is no more than plan counted for it. Split over ranks, each GPU holds its share of every
        // block: the GPU with the least free memory decides, and the pool is that share times the ranks.
        PlanInputs in = settings.plan;
        in.gpu = true;
        in.tensor_parallel = ranks;
        uint64_t cap = eo.kv_bytes / static_cast<uint64_t>(ranks);
        if (settings.size_kv_to_plan && cap == 0) cap = plan_memory(m->model->file(), m->model->config(), in).kv_pool_bytes;
        uint64_t free = first.device_info().free_bytes;
        for (int r = 1; r < ranks; ++r) free = std::min(free, m->model->rank_backend(r).device_info().free_bytes);
        eo.kv_bytes = gpu_kv_bytes(free, rank_config(m->model->config(), ranks), in, cap) * static_cast<uint64_t>(ranks);
        if (eo.kv_bytes == 0) throw CommandError{"the GPU has no memory left for a KV cache after loading the model"};
      }
      m->engine = engine::make_serving_engine(*m->model, *m->tokenizer, eo);
      m->served_model = std::make_unique<api::ServedModel>(spec.name, *m->engine, *m->tokenizer,
                                                           settings.chat_template, settings.policy);
      for (const std::string& alias : spec.aliases) m->served_model->add_alias(alias);
      // The pool's real size (the engine chose its blocks), in the terms `pensieve plan` predicts.
      const model::ModelConfig& config = m->model->config();
      const model::ModelConfig rank = rank_config(config, ranks);
      const uint64_t kv = kv_bytes_per_token(rank, eo.kv_type) * kv::kBlockTokens *
                          static_cast<uint64_t>(m->engine->stats().kv_blocks_total);
      const uint64_t weights = rank_weight_bytes(m->model->file(), ranks);
      const uint64_t scratch = scratch_bytes(rank, m->engine->max_parallel());
      http::log_message(stderr, settings.log_format,
                        fmt::format("memory{}: weights {} B, KV pool {} B, scratch {} B, total {} B (KV {})",
                                    ranks > 1 ? " per rank" : "", weights, kv, scratch, weights + kv + scratch,
                                    kv::kv_type_name(eo.kv_type)));
      std::string where = describe_device(first);
      for (int r = 1; r < ranks; ++r) where += "; " + describe_device(m->model->rank_backend(r));
      if (ranks > 1) where = fmt::format("{} ranks, tensor parallel: {}", ranks, where);
      http::log_message(stderr, settings.log_format, fmt::format("'{}' runs on {}", spec.name, where));
      if (spec.name == settings.default_model) m->served_model->answer_every_name();
    } catch (const CommandError& e) {
      throw std::runtime_error(e.message);
    }
    return m;
  };
}

uint64_t machine_memory(const std::string& device, int threads) {
  if (device_is_gpu(device)) {
    // Quietly: the loader says why a GPU is not used, once.
    std::unique_ptr<backend::Backend> be = backend::make_backend(backend::parse_device(device), threads);
    if (!be->host_memory()) return be->device_info().free_bytes;
  }
  return available_memory();
}

}  // namespace pensieve::cli
