#pragma once
// Server-side counters and latency histograms, rendered with the engines' gauges in Prometheus text format.
// Touched only from the server's event loop thread, so nothing here locks.
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/serving_engine.h"

namespace pensieve::http {

// A Prometheus label value: backslashes, quotes and newlines escaped.
std::string escape_label(const std::string& s);

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // Appends the _bucket / _sum / _count lines of `name`.
  void render(std::string& out, const std::string& name, const std::string& help) const;
  uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> buckets_;  // per bound, not cumulative
  double sum_ = 0;
  uint64_t count_ = 0;
};

struct ModelGauges {
  std::string model;
  engine::EngineStats stats;
  int max_parallel = 0;
};

class Metrics {
 public:
  Metrics();
  void count_request(const std::string& route, int status);
  void add_tokens(int prompt, int generated);
  void observe_ttft(double seconds) { ttft_.observe(seconds); }
  void observe_inter_token(double seconds) { inter_token_.observe(seconds); }
  void observe_duration(double seconds) { duration_.observe(seconds); }

  std::string render(const std::vector<ModelGauges>& models, int open_connections, int active_requests) const;

  uint64_t prompt_tokens() const { return prompt_tokens_; }
  uint64_t generated_tokens() const { return generated_tokens_; }
  uint64_t requests() const;

 private:
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  uint64_t prompt_tokens_ = 0;
  uint64_t generated_tokens_ = 0;
  Histogram ttft_;
  Histogram inter_token_;
  Histogram duration_;
};

}  // namespace pensieve::http
