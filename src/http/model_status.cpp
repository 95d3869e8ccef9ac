#include "http/model_status.h"

#include <fmt/format.h>

#include "http/metrics.h"

namespace pensieve::http {

namespace {

const char* state_name(const api::ListedModel& m) { return m.loaded ? "loaded" : m.loading ? "loading" : "available"; }

// Generated tokens per second since the model was loaded (0 before it is).
double tokens_per_second(const registry::ModelStatus& m) {
  if (!m.engine || m.loaded_seconds <= 0) return 0;
  return double(m.engine->generated_tokens) / m.loaded_seconds;
}

}  // namespace

nlohmann::json model_status_json(const registry::ModelStatus& m) {
  using nlohmann::json;
  json j = {{"id", m.listing.name},
            {"aliases", m.listing.aliases},
            {"state", state_name(m.listing)},
            {"path", m.listing.path},
            {"memory_bytes", m.listing.facts.memory_bytes},
            {"resident_bytes", m.listing.resident_bytes},
            {"requests", m.requests},
            {"in_flight", m.in_flight},
            {"loads", m.loads},
            {"unloads", m.unloads},
            {"last_load_seconds", m.last_load_seconds},
            {"generated_tokens_per_second", tokens_per_second(m)}};
  if (!m.engine) return j;
  const engine::EngineStats& s = *m.engine;
  j["context_length"] = m.context_length;
  j["slots"] = {{"max_parallel", m.max_parallel}, {"running", s.running}};
  j["queue"] = {{"waiting", s.waiting}};
  j["kv"] = {{"blocks_total", s.kv_blocks_total}, {"blocks_used", s.kv_blocks_used}};
  j["prefix_cache"] = {{"queries", s.prefix_cache_queries}, {"hits", s.prefix_cache_hits}};
  j["tokens"] = {{"prompt", s.prompt_tokens}, {"prompt_cached", s.prompt_tokens_cached}, {"generated", s.generated_tokens}};
  j["device"] = {{"name", s.device},
                 {"memory_allocated_bytes", s.device_memory_allocated},
                 {"memory_total_bytes", s.device_memory_total},
                 {"memory_free_bytes", s.device_memory_free}};
  j["steps"] = s.steps;
  j["preemptions"] = s.preemptions;
  return j;
}

std::string registry_metrics(const std::vector<registry::ModelStatus>& models) {
  struct Row {
    const char* name;
    const char* type;
    const char* help;
    double (*get)(const registry::ModelStatus&);
  };
  static const Row rows[] = {
      {"pensieve_model_loaded", "gauge", "1 while the model is resident, 0 otherwise.",
       [](const registry::ModelStatus& m) { return m.listing.loaded ? 1.0 : 0.0; }},
      {"pensieve_model_memory_bytes", "gauge", "Memory the model takes while resident (weights, KV pool, scratch).",
       [](const registry::ModelStatus& m) { return double(m.listing.resident_bytes); }},
      {"pensieve_model_requests_total", "counter", "Requests routed to the model.",
       [](const registry::ModelStatus& m) { return double(m.requests); }},
      {"pensieve_model_requests_in_flight", "gauge", "Requests holding the model resident now.",
       [](const registry::ModelStatus& m) { return double(m.in_flight); }},
      {"pensieve_model_loads_total", "counter", "Times the model was loaded.",
       [](const registry::ModelStatus& m) { return double(m.loads); }},
      {"pensieve_model_unloads_total", "counter", "Times the model was unloaded.",
       [](const registry::ModelStatus& m) { return double(m.unloads); }},
      {"pensieve_model_last_load_seconds", "gauge", "How long the model's last load took.",
       [](const registry::ModelStatus& m) { return m.last_load_seconds; }},
      {"pensieve_model_generated_tokens_per_second", "gauge", "Generated tokens per second since the model loaded.",
       [](const registry::ModelStatus& m) { return tokens_per_second(m); }},
  };
  std::string out;
  for (const Row& row : rows) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", row.name, row.help, row.name, row.type);
    for (const registry::ModelStatus& m : models) {
      out += fmt::format("{}{{model=\"{}\"}} {}\n", row.name, escape_label(m.listing.name), row.get(m));
    }
  }
  return out;
}

}  // namespace pensieve::http
