#pragma once
// The serving mode of `pensieve bench-engine` (chosen by --streams): the serving engine under N concurrent
// streams submitted at once, no HTTP. Kept apart from the single-batch mode because it drives the scheduler
// (continuous batching, prefix cache) rather than model::forward directly.
#include <string>

namespace pensieve::cli {

struct ServingBenchArgs {
  std::string model;
  std::string streams = "1,4,8,20";
  int shared_prefix = 0;
  int prompt = 64;
  int gen = 64;
  std::string prefix_cache = "both";
  int token_budget = 512;
  std::string kv_type = "f16";  // f16, q8_0 or f32
  int threads = 0;
  std::string device = "auto";
  bool json = false;
};

// Prints a table (or JSON) of tok/s, TTFT and inter-token latency per stream count and prefix-cache mode.
int run_serving_bench(const ServingBenchArgs& args);

}  // namespace pensieve::cli
