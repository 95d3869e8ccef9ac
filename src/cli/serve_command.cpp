// `pensieve serve --model F.gguf [...]`: the HTTP server with the OpenAI, Anthropic and Ollama APIs in front of
// the model registry (one serving engine per loaded model). It listens at once (/health says 503 while the model loads) and shuts down gracefully on
// SIGINT / SIGTERM.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>

#include <fmt/format.h>

#include "api/served_model.h"
#include "chat/builtin_templates.h"
#include "backend/backend.h"
#include "cli/command_registry.h"
#include "cli/config_file.h"
#include "cli/device_option.h"
#include "cli/memory_plan.h"
#include "cli/model_catalog.h"
#include "engine/serving_engine.h"
#include "gguf/gguf_file.h"
#include "http/log_format.h"
#include "http/server.h"
#include "model/model.h"
#include "model/model_config.h"
#include "tokenizer/tokenizer.h"

namespace pensieve::cli {
namespace {

struct ServeArgs {
  CatalogFlags catalog;  // --model (repeatable), --models-dir, --alias
  std::string memory_budget;
  std::string default_model;
  std::string chat_template;
  std::string host = "127.0.0.1";
  int port = 8080;
  int parallel = 20;
  int ctx_size = 0;
  std::string kv_memory;
  std::string kv_type = "f16";
  int threads = 0;
  std::string device = "auto";
  ParallelFlags parallel_flags;  // --tensor-parallel, --devices
  std::vector<std::string> api_keys;
  int queue = 256;
  // Hardening limits (docs/configuration.md, "Limits").
  size_t max_connections = 1024;
  size_t max_connections_per_address = 512;
  std::string max_body = "16M";
  size_t max_header_bytes = 16u << 10;
  int json_max_depth = 64;
  size_t json_max_keys = 1024;
  double request_timeout = 600;
  std::string max_response = "32M";
  int default_max_tokens = 4096;
  int max_tokens_limit = 0;
  int max_queued_events = 64;
  int http_workers = 2;
  bool special_tokens_in_messages = false;
  double shutdown_grace = 10;
  bool quiet = false;
  std::string log_format = "text";
  std::string config;  // --config FILE, applied before run_serve (see config_file.h)
  bool check = false;
};

// --chat-template: a built-in template's name, or a file holding a Jinja template (checked before loading).
std::optional<std::string> read_chat_template(const std::string& value) {
  if (value.empty()) return std::nullopt;
  if (auto builtin = chat::builtin_template(value)) return std::string(*builtin);
  std::ifstream in(value, std::ios::binary);
  if (!in) {
    std::string names;
    for (const auto& n : chat::builtin_template_names()) names += (names.empty() ? "" : ", ") + n;
    throw CommandError{"--chat-template: '" + value + "' is neither a file nor a built-in template (" + names + ")"};
  }
  std::ostringstream text;
  text << in.rdbuf();
  try {
    chat::ChatTemplate check(text.str());
  } catch (const std::exception& e) {
    throw CommandError{"--chat-template " + value + ": " + e.what()};
  }
  return text.str();
}

// The registry over `specs` under --memory-budget, with the first model loaded (so that /health turns ready as
// it did with one model); the others load on the first request naming them.
std::unique_ptr<registry::ModelRegistry> start_registry(const ServeArgs& a, const std::vector<registry::ModelSpec>& specs,
                                                        const PlanInputs& plan,
                                                        const std::optional<std::string>& chat_template,
                                                        http::LogFormat log_format) {
  LoadSettings load;
  load.device = a.device;
  load.parallel = a.parallel_flags;
  load.threads = a.threads;
  load.plan = plan;
  load.queue = a.queue;
  load.max_queued_events = a.max_queued_events;
  load.chat_template = chat_template;
  load.policy.default_max_tokens = a.default_max_tokens;
  load.policy.max_tokens_limit = a.max_tokens_limit;
  load.policy.special_tokens_in_messages = a.special_tokens_in_messages;
  load.log_format = log_format;
  // One model without a budget takes the GPU's free memory for its KV pool, as it always has.
  load.size_kv_to_plan = specs.size() > 1 || !a.memory_budget.empty();
  registry::RegistryOptions ro;
  ro.memory_budget = a.memory_budget.empty() ? machine_memory(a.device, 1) : parse_size(a.memory_budget, "--memory-budget");
  if (!a.default_model.empty()) {
    for (const registry::ModelSpec& s : specs) {
      if (s.name == a.default_model || std::find(s.aliases.begin(), s.aliases.end(), a.default_model) != s.aliases.end()) {
        ro.default_model = load.default_model = s.name;
      }
    }
    if (ro.default_model.empty()) throw CommandError{"--default-model '" + a.default_model + "' is none of the served models"};
  }
  ro.log = [log_format](const std::string& line) { http::log_message(stderr, log_format, line); };
  uint64_t all = 0;
  for (const registry::ModelSpec& s : specs) all += s.facts.memory_bytes;
  http::log_message(stderr, log_format,
                    fmt::format("{} model(s), {} together; memory budget {}{}", specs.size(), format_bytes(all),
                                format_bytes(ro.memory_budget),
                                a.memory_budget.empty() ? " (what the machine has free)" : ""));
  auto models = std::make_unique<registry::ModelRegistry>(specs, make_model_loader(load), ro);
  const auto t0 = std::chrono::steady_clock::now();
  std::shared_ptr<registry::Lease> first;
  try {
    first = models->preload(specs.front().name);
  } catch (const std::exception& e) {
    throw CommandError{std::string("cannot load the model: ") + e.what()};
  }
  const api::ServedModel& served = first->served();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const engine::EngineStats stats = served.engine().stats();
  http::log_message(stderr, log_format,
                    fmt::format("ready in {:.1f}s: model '{}', context {} tokens, {} parallel, KV pool {} blocks, {}{}",
                                seconds, served.id(), served.engine().context_length(), served.engine().max_parallel(),
                                stats.kv_blocks_total, stats.device,
                                served.template_is_fallback() ? " (no chat template in the file: using ChatML)" : ""));
  return models;
}

// Room for the connection cap plus the files the server itself holds, as far as the hard limit allows, so that
// the cap (answered with a 503) is reached before accept() runs out of descriptors.
void raise_open_file_limit(size_t max_connections) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  const rlim_t want = static_cast<rlim_t>(max_connections) + 256;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < want) {
    limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? want : std::min(want, limit.rlim_max);
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

// Checks every setting that can be checked without loading the model, and turns them into the server's options.
http::ServerOptions checked_server_options(const ServeArgs& a) {
  if (a.port < 0 || a.port > 65535) throw CommandError{"--port must be between 0 and 65535"};
  if (a.parallel < 1) throw CommandError{"--parallel must be at least 1"};
  if (a.queue < 0) throw CommandError{"--queue must not be negative"};
  parse_kv_type_flag(a.kv_type, "--kv-type");
  rank_devices(a.parallel_flags);

  if (a.json_max_depth < 1 || a.json_max_depth > api::JsonLimits::kCeilingDepth) {
    throw CommandError{"--json-max-depth must be between 1 and " + std::to_string(api::JsonLimits::kCeilingDepth)};
  }
  if (a.json_max_keys < 1 || a.json_max_keys > api::JsonLimits::kCeilingObjectKeys) {
    throw CommandError{"--json-max-keys must be between 1 and " + std::to_string(api::JsonLimits::kCeilingObjectKeys)};
  }
  if (a.default_max_tokens < 0 || a.max_tokens_limit < 0) throw CommandError{"max-tokens flags must not be negative"};
  if (a.max_queued_events < 1) throw CommandError{"--max-queued-events must be at least 1"};
  if (a.http_workers < 1) throw CommandError{"--http-workers must be at least 1"};
  if (a.request_timeout < 0) throw CommandError{"--request-timeout must not be negative"};
  for (const std::string& key : a.api_keys) {
    if (key.empty()) throw CommandError{"--api-key must not be empty"};
  }
  if (!a.kv_memory.empty()) parse_size(a.kv_memory, "--kv-memory");
  if (!a.memory_budget.empty()) parse_size(a.memory_budget, "--memory-budget");
  http::ServerOptions so;
  so.host = a.host;
  so.port = static_cast<uint16_t>(a.port);
  so.api_keys = a.api_keys;
  so.max_connections = a.max_connections;
  so.max_connections_per_address = a.max_connections_per_address;
  so.max_body_bytes = parse_size(a.max_body, "--max-body");
  so.max_header_bytes = a.max_header_bytes;
  so.json_limits = {a.json_max_depth, a.json_max_keys};
  so.request_timeout = std::chrono::milliseconds(static_cast<int64_t>(a.request_timeout * 1000));
  so.max_response_bytes = parse_size(a.max_response, "--max-response");
  so.worker_threads = a.http_workers;
  so.handle_signals = true;
  so.shutdown_grace = std::chrono::milliseconds(static_cast<int64_t>(a.shutdown_grace * 1000));
  so.log = a.quiet ? nullptr : stderr;
  const auto log_format = http::parse_log_format(a.log_format);
  if (!log_format) throw CommandError{"--log-format must be text or json, not '" + a.log_format + "'"};
  so.log_format = *log_format;
  return so;
}

// What plan computes each model's memory from, and the models named by --model / --models-dir / --alias
// with the facts read from their files (nothing is loaded).
struct ModelsToServe {
  PlanInputs plan;
  std::vector<registry::ModelSpec> specs;
};

ModelsToServe models_to_serve(const ServeArgs& a, const std::optional<std::string>& chat_template) {
  ModelsToServe m;
  m.plan.parallel = a.parallel;
  m.plan.ctx_size = a.ctx_size;
  m.plan.kv_type = parse_kv_type_flag(a.kv_type, "--kv-type");
  if (!a.kv_memory.empty()) m.plan.kv_memory = parse_size(a.kv_memory, "--kv-memory");
  m.plan.gpu = device_is_gpu(a.device);
  // On GPUs every figure is per GPU, as the budget (a GPU's free memory) is; CPU ranks share one memory.
  if (m.plan.gpu) m.plan.tensor_parallel = a.parallel_flags.tensor_parallel;
  m.specs = collect_models(a.catalog, m.plan);
  if (chat_template) {
    for (registry::ModelSpec& s : m.specs) s.facts.chat_template = *chat_template;
  }
  return m;
}

// Throws a one-line CommandError when --tensor-parallel does not divide a model's heads, KV heads or FFN width
// (before the server listens: each model's header is all it takes).
void require_models_split(const std::vector<registry::ModelSpec>& specs, int ranks) {
  if (ranks <= 1) return;
  for (const registry::ModelSpec& spec : specs) {
    model::ModelConfig config;
    try {
      const gguf::GgufFile file = gguf::GgufFile::open(spec.path);
      config = model::read_model_config(file);
      if (const gguf::TensorInfo* embd = file.find_tensor("token_embd.weight"); embd && embd->shape.size() == 2) {
        config.vocab = static_cast<int>(embd->shape[1]);
      }
    } catch (const std::exception& e) {
      throw CommandError{"--model " + spec.path + ": " + e.what()};
    }
    rank_config(config, ranks);
  }
}

// --check: the settings are valid and each model file is a GGUF of a known architecture; nothing is loaded.
int check_serve(const ServeArgs& a) {
  const http::ServerOptions so = checked_server_options(a);
  const ModelsToServe models = models_to_serve(a, read_chat_template(a.chat_template));
  require_models_split(models.specs, a.parallel_flags.tensor_parallel);
  std::string described;
  for (const registry::ModelSpec& spec : models.specs) {
    try {
      const gguf::GgufFile file = gguf::GgufFile::open(spec.path);
      require_kv_type_fits(models.plan.kv_type, model::read_model_config(file));
      described += fmt::format("{}model {} ({})", described.empty() ? "" : ", ", spec.path,
                               file.get_string("general.architecture").value_or("?"));
    } catch (const CommandError&) {
      throw;
    } catch (const std::exception& e) {
      throw CommandError{"--model " + spec.path + ": " + e.what()};
    }
  }
  std::printf("pensieve: configuration OK: %s, http://%s:%u, %d parallel, %zu API key(s), log %s\n", described.c_str(),
              so.host.c_str(), so.port, a.parallel, so.api_keys.size(), a.log_format.c_str());
  return 0;
}

int run_serve(const ServeArgs& a) {
  const http::ServerOptions so = checked_server_options(a);
  const std::optional<std::string> chat_template = read_chat_template(a.chat_template);
  const ModelsToServe models_to = models_to_serve(a, chat_template);
  require_models_split(models_to.specs, a.parallel_flags.tensor_parallel);
  raise_open_file_limit(a.max_connections);
  std::unique_ptr<http::Server> server;
  try {
    server = std::make_unique<http::Server>(so);
  } catch (const std::exception& e) {
    throw CommandError{e.what()};
  }
  // Scripts read this line to learn the port (useful with --port 0), so it stays plain text in either format;
  // the JSON log gets its own copy.
  const http::LogFormat log_format = so.log_format;
  const std::string listening = fmt::format("listening on http://{}:{}", a.host, server->port());
  http::log_message(stdout, http::LogFormat::Text, listening);
  if (log_format == http::LogFormat::Json) http::log_message(stderr, log_format, listening);
  std::thread loop([&] { server->run(); });

  std::unique_ptr<registry::ModelRegistry> models;
  try {
    models = start_registry(a, models_to.specs, models_to.plan, chat_template, log_format);
  } catch (...) {
    server->stop();
    loop.join();
    throw;
  }
  server->serve_registry(*models);
  loop.join();  // returns after SIGINT / SIGTERM and the graceful drain
  server.reset();  // with whatever the loop still held (a lease among them)
  models.reset();  // every engine shuts down, every model unloads
  http::log_message(stderr, log_format, "stopped");
  return 0;
}

const RegisterCommand kServe{
    "serve", "Serve models over HTTP (OpenAI, Anthropic and Ollama APIs)", [](CLI::App& sub) -> Action {
      auto a = std::make_shared<ServeArgs>();
      sub.add_option("--config", a->config,
                     "JSON file of settings: keys are these flags without '--' (e.g. {\"model\": \"m.gguf\", "
                     "\"port\": 8080}); flags on the command line override it");
      sub.add_flag("--check", a->check, "Check the settings and the model file, then exit without serving");
      sub.add_option("--model", a->catalog.models,
                     "GGUF model file, or NAME=FILE; repeat it for more models (the first loads at startup; "
                     "required here, in --config, or as --models-dir)");
      sub.add_option("--models-dir", a->catalog.models_dir,
                     "Serve every .gguf file in DIR, each named by its file name without .gguf");
      sub.add_option("--alias", a->catalog.aliases,
                     "More names: MODEL=NAME, or NAME for the first --model (the first such replaces its file name)");
      sub.add_option("--memory-budget", a->memory_budget,
                     "Resident models at most, e.g. 24G; least recently used ones unload (default: free memory)");
      sub.add_option("--default-model", a->default_model,
                     "The model that answers requests naming a model not served (default: none, a 404)");
      sub.add_option("--chat-template", a->chat_template,
                     "Chat template: a Jinja file, or built-in chatml, llama3, gemma (default: the model's own)");
      sub.add_option("--host", a->host, "Address to bind (default 127.0.0.1)");
      sub.add_option("--port", a->port, "Port (default 8080; 0 picks a free one)");
      sub.add_option("--parallel", a->parallel, "Sequences generated at once (default 20)");
      sub.add_option("--ctx-size", a->ctx_size, "Longest prompt + completion per sequence (default: the model's)");
      sub.add_option("--kv-memory", a->kv_memory,
                     "KV cache pool size, e.g. 2G (default: CPU parallel x min(context, 8192) tokens; GPU its free "
                     "memory)");
      sub.add_option("--kv-type", a->kv_type, "KV cache precision: f16 (default), q8_0 (head size a multiple of 32) or f32");
      sub.add_option("--threads", a->threads, "Compute threads (default: physical cores)");
      add_device_option(sub, a->device);
      add_parallel_options(sub, a->parallel_flags);
      sub.add_option("--api-key", a->api_keys,
                     "Require a key (Authorization: Bearer KEY or x-api-key: KEY); repeat for several keys. Also "
                     "from PENSIEVE_API_KEY (keys separated by commas), which the config file's api-key yields to");
      sub.add_option("--queue", a->queue, "Requests that may wait for a slot before 429 (default 256)");
      sub.add_option("--shutdown-grace", a->shutdown_grace, "Seconds in-flight requests get on shutdown (default 10)");
      sub.add_flag("--quiet", a->quiet, "No per-request log lines");
      sub.add_option("--log-format", a->log_format,
                     "Log lines as text (default) or json (one object a line, one per request with its timings)");
      sub.add_option("--max-connections", a->max_connections, "Open connections at most; 0: no cap (default 1024)");
      sub.add_option("--max-connections-per-address", a->max_connections_per_address,
                     "Open connections from one client address at most; 0: no cap (default 512)");
      sub.add_option("--max-body", a->max_body, "Largest request body, e.g. 16M (default 16M)");
      sub.add_option("--max-header-bytes", a->max_header_bytes, "Largest request head in bytes (default 16384)");
      sub.add_option("--json-max-depth", a->json_max_depth, "Deepest nesting of a request body (default 64)");
      sub.add_option("--json-max-keys", a->json_max_keys, "Most keys in one JSON object of a request (default 1024)");
      sub.add_option("--request-timeout", a->request_timeout,
                     "Seconds one generation may run before it is cancelled; 0: none (default 600)");
      sub.add_option("--max-response", a->max_response, "Largest non-streamed response, e.g. 32M (default 32M)");
      sub.add_option("--default-max-tokens", a->default_max_tokens,
                     "max_tokens of a request that names none; 0: the rest of the context (default 4096)");
      sub.add_option("--max-tokens-limit", a->max_tokens_limit,
                     "The most tokens one request may generate; larger asks are clamped; 0: the context (default 0)");
      sub.add_option("--max-queued-events", a->max_queued_events,
                     "Undelivered events per request before its sequence pauses for a slow reader (default 64)");
      sub.add_option("--http-workers", a->http_workers, "Threads that parse, render and tokenize requests (default 2)");
      sub.add_flag("--special-tokens-in-messages", a->special_tokens_in_messages,
                   "Let control-token spellings in message text become control tokens (default: plain text)");
      return [a, &sub] {
        // Precedence: the command line, then PENSIEVE_API_KEY, then the config file (each fills what is unset).
        apply_env_list(sub, "--api-key", "PENSIEVE_API_KEY");
        if (!a->config.empty()) apply_json_config(sub, a->config, {"config", "check", "help"});
        return a->check ? check_serve(*a) : run_serve(*a);
      };
    }};

}  // namespace
}  // namespace pensieve::cli
