#include "http/metrics.h"

#include <fmt/format.h>

namespace pensieve::http {

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), buckets_(bounds_.size(), 0) {}

void Histogram::observe(double value) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (value <= bounds_[i]) {
      ++buckets_[i];
      break;
    }
  }
  sum_ += value;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += buckets_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cumulative);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, count_, name, sum_, name, count_);
}

namespace {

std::vector<double> latency_bounds() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

void gauge_header(std::string& out, const char* name, const char* type, const char* help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

std::string escape_label(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

Metrics::Metrics()
    : ttft_(latency_bounds()),
      inter_token_({0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5}),
      duration_(latency_bounds()) {}

void Metrics::count_request(const std::string& route, int status) { ++requests_[{route, status}]; }

void Metrics::add_tokens(int prompt, int generated) {
  prompt_tokens_ += static_cast<uint64_t>(std::max(prompt, 0));
  generated_tokens_ += static_cast<uint64_t>(std::max(generated, 0));
}

uint64_t Metrics::requests() const {
  uint64_t n = 0;
  for (const auto& [key, count] : requests_) n += count;
  return n;
}

std::string Metrics::render(const std::vector<ModelGauges>& models, int open_connections, int active_requests) const {
  std::string out;
  gauge_header(out, "pensieve_http_requests_total", "counter", "HTTP requests by route and status code.");
  for (const auto& [key, count] : requests_) {
    out += fmt::format("pensieve_http_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", escape_label(key.first),
                       key.second, count);
  }
  gauge_header(out, "pensieve_prompt_tokens_total", "counter", "Prompt tokens of finished requests.");
  out += fmt::format("pensieve_prompt_tokens_total {}\n", prompt_tokens_);
  gauge_header(out, "pensieve_generated_tokens_total", "counter", "Generated tokens of finished requests.");
  out += fmt::format("pensieve_generated_tokens_total {}\n", generated_tokens_);
  ttft_.render(out, "pensieve_time_to_first_token_seconds", "From request received to the first generated token.");
  inter_token_.render(out, "pensieve_inter_token_latency_seconds", "Time between successive generated tokens.");
  duration_.render(out, "pensieve_request_duration_seconds", "From request received to the last byte written.");
  gauge_header(out, "pensieve_http_open_connections", "gauge", "Open client connections.");
  out += fmt::format("pensieve_http_open_connections {}\n", open_connections);
  gauge_header(out, "pensieve_http_active_requests", "gauge", "Generation requests being served.");
  out += fmt::format("pensieve_http_active_requests {}\n", active_requests);

  struct Row {
    const char* name;
    const char* type;
    const char* help;
    double (*get)(const ModelGauges&);
  };
  static const Row rows[] = {
      {"pensieve_queue_length", "gauge", "Requests waiting for admission.",
       [](const ModelGauges& m) { return double(m.stats.waiting); }},
      {"pensieve_running_sequences", "gauge", "Sequences in the running batch.",
       [](const ModelGauges& m) { return double(m.stats.running); }},
      {"pensieve_max_parallel", "gauge", "Most sequences the engine runs at once.",
       [](const ModelGauges& m) { return double(m.max_parallel); }},
      {"pensieve_kv_blocks_used", "gauge", "KV cache blocks in use.",
       [](const ModelGauges& m) { return double(m.stats.kv_blocks_used); }},
      {"pensieve_kv_blocks_total", "gauge", "KV cache blocks in the pool.",
       [](const ModelGauges& m) { return double(m.stats.kv_blocks_total); }},
      {"pensieve_prefix_cache_queries_total", "counter", "Full prompt blocks looked up in the prefix cache.",
       [](const ModelGauges& m) { return double(m.stats.prefix_cache_queries); }},
      {"pensieve_prefix_cache_hits_total", "counter", "Prompt blocks served from the prefix cache.",
       [](const ModelGauges& m) { return double(m.stats.prefix_cache_hits); }},
      {"pensieve_engine_prompt_tokens_total", "counter", "Prompt tokens admitted by the engine.",
       [](const ModelGauges& m) { return double(m.stats.prompt_tokens); }},
      {"pensieve_engine_prompt_tokens_cached_total", "counter", "Admitted prompt tokens served from the prefix cache.",
       [](const ModelGauges& m) { return double(m.stats.prompt_tokens_cached); }},
      {"pensieve_engine_generated_tokens_total", "counter", "Tokens generated by the engine.",
       [](const ModelGauges& m) { return double(m.stats.generated_tokens); }},
      {"pensieve_engine_steps_total", "counter", "Engine steps run.",
       [](const ModelGauges& m) { return double(m.stats.steps); }},
      {"pensieve_preemptions_total", "counter", "Sequences preempted for lack of KV blocks.",
       [](const ModelGauges& m) { return double(m.stats.preemptions); }},
      {"pensieve_recorded_steps_total", "counter", "Engine steps recorded as CUDA graphs (0 on the CPU).",
       [](const ModelGauges& m) { return double(m.stats.recorded_steps); }},
      {"pensieve_replayed_steps_total", "counter", "Engine steps launched from a recorded CUDA graph.",
       [](const ModelGauges& m) { return double(m.stats.replayed_steps); }},
      {"pensieve_device_memory_allocated_bytes", "gauge", "Memory the model's backend holds (weights, KV pool, scratch).",
       [](const ModelGauges& m) { return double(m.stats.device_memory_allocated); }},
      {"pensieve_device_memory_total_bytes", "gauge", "The GPU's memory (0 on the CPU).",
       [](const ModelGauges& m) { return double(m.stats.device_memory_total); }},
  };
  for (const Row& row : rows) {
    gauge_header(out, row.name, row.type, row.help);
    for (const ModelGauges& m : models) {
      out += fmt::format("{}{{model=\"{}\"}} {}\n", row.name, escape_label(m.model), row.get(m));
    }
  }
  gauge_header(out, "pensieve_device_info", "gauge", "Where each model runs (always 1; the device is a label).");
  for (const ModelGauges& m : models) {
    out += fmt::format("pensieve_device_info{{model=\"{}\",device=\"{}\"}} 1\n", escape_label(m.model),
                       escape_label(m.stats.device));
  }
  return out;
}

}  // namespace pensieve::http
