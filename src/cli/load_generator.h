#pragma once
// The load generator behind `pensieve bench`: N client threads, each with its own blocking HTTP/1.1
// connection, stream completions from an OpenAI- or Anthropic-compatible server and time every token.
// Threads are fine here: concurrency is at most a few dozen streams, and a blocking client is easy to trust.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace pensieve::cli {

enum class ApiKind { openai, anthropic };

// "http://host:port[/prefix]" split up; throws std::invalid_argument with one line of text when it is not one.
struct Endpoint {
  std::string host;
  std::string port;
  std::string base_path;  // without a trailing slash, e.g. "" or "/proxy"
};
Endpoint parse_endpoint(const std::string& url);

struct LoadConfig {
  Endpoint endpoint;
  ApiKind api = ApiKind::openai;
  std::string model;
  std::string api_key;
  int prompt_tokens = 128;   // each request's own words, after the shared prefix
  int shared_prefix = 0;     // words every request starts with
  int max_tokens = 256;
};

// What one streamed request saw; times are seconds from the moment it was sent.
struct RequestSample {
  bool ok = false;
  std::string error;
  double ttft = 0;
  double e2e = 0;
  std::vector<double> gaps;  // between consecutive content events
  uint64_t output_tokens = 0;
  uint64_t prompt_tokens = 0;  // as the server reported it (0 when it did not)
};

struct Percentiles {
  double p50 = 0, p95 = 0, p99 = 0;
};

struct LevelResult {
  int concurrency = 0;
  int requests = 0;
  int completed = 0;
  int errors = 0;
  std::vector<std::string> error_samples;  // the first few, verbatim
  double seconds = 0;
  uint64_t output_tokens = 0;
  double mean_prompt_tokens = 0;
  double aggregate_tok_s = 0;      // all output tokens over the level's wall time
  // Over requests with at least 4 output tokens, of (tokens - 1) / (last - first token): the median, and the
  // speed 95% of those streams reached or beat (from the 95th percentile of their time per token).
  double per_stream_tok_s = 0;
  double per_stream_tok_s_p5 = 0;
  Percentiles ttft, itl, e2e;      // seconds
};

// Throws std::runtime_error with one line when the server cannot be reached at all.
void check_reachable(const Endpoint& endpoint);

// Polls /health while it answers 503 (the model is loading), for at most `patience`; throws when it gives up.
void wait_until_ready(const Endpoint& endpoint, std::chrono::seconds patience);

// The first id GET /v1/models lists, or "" when the server does not say.
std::string first_served_model(const Endpoint& endpoint, const std::string& api_key);

// Runs `requests` streamed requests with `concurrency` of them in flight at a time.
LevelResult run_level(const LoadConfig& config, int concurrency, int requests);

// The prompt of request `index`: `shared` words common to all requests, then `own` words of its own.
std::string make_prompt(int shared, int own, int index);

}  // namespace pensieve::cli
