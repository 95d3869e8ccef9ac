// `pensieve bench --url http://127.0.0.1:8080 --concurrency 1,4,16,20`: a load generator for any
// OpenAI-compatible (or Anthropic-compatible) server. Every request streams; per concurrency level it reports
// aggregate and per-stream output tok/s, time to first token, inter-token and end-to-end latency percentiles.
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/command_registry.h"
#include "cli/load_generator.h"
#include "cli/svg_chart.h"

namespace pensieve::cli {
namespace {

struct BenchArgs {
  std::string url;
  std::string api = "openai";
  std::string model;
  std::string concurrency = "1,4,16,20";
  int prompt_tokens = 128;
  int max_tokens = 256;
  int shared_prefix = 0;
  int requests = 0;
  int rounds = 2;
  std::string json_path;
  std::string svg_path;
  std::string api_key;
};

std::vector<int> parse_levels(const std::string& text) {
  std::vector<int> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    int v = 0;
    try {
      v = std::stoi(item);
    } catch (const std::exception&) {
    }
    if (v <= 0 || v > 256) throw CommandError{"--concurrency: '" + item + "' is not a stream count (e.g. 1,4,16)"};
    out.push_back(v);
    start = comma + 1;
  }
  return out;
}

double ms(double seconds) { return seconds * 1000; }

nlohmann::json percentiles_json(const Percentiles& p) {
  return {{"p50", ms(p.p50)}, {"p95", ms(p.p95)}, {"p99", ms(p.p99)}};
}

nlohmann::json level_json(const LevelResult& r) {
  return {{"concurrency", r.concurrency},
          {"requests", r.requests},
          {"completed", r.completed},
          {"errors", r.errors},
          {"error_samples", r.error_samples},
          {"seconds", r.seconds},
          {"output_tokens", r.output_tokens},
          {"mean_prompt_tokens", r.mean_prompt_tokens},
          {"aggregate_output_tok_s", r.aggregate_tok_s},
          {"per_stream_output_tok_s", r.per_stream_tok_s},
          {"per_stream_output_tok_s_p5", r.per_stream_tok_s_p5},
          {"ttft_ms", percentiles_json(r.ttft)},
          {"itl_ms", percentiles_json(r.itl)},
          {"e2e_ms", percentiles_json(r.e2e)}};
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw CommandError{"cannot write " + path};
}

// "2026-12-01 12:34 UTC": when the figures were taken, for the chart's title.
std::string utc_minute_now() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M UTC", &utc);
  return text;
}

// Four panels, each on its own axis: aggregate tok/s grows with concurrency while per-stream tok/s falls, and on
// one axis the smaller of the two would lie flat along the bottom.
std::string svg_for(const BenchArgs& a, const LoadConfig& c, const std::vector<LevelResult>& results) {
  Chart chart;
  chart.title = fmt::format("pensieve bench: {} at {}, {}", c.model.empty() ? "(default model)" : c.model, a.url,
                            utc_minute_now());
  chart.subtitle = fmt::format("{} API, streamed; prompt {} words + {} shared; {} output tokens a request", a.api,
                               a.prompt_tokens, a.shared_prefix, a.max_tokens);
  ChartPanel aggregate{"Aggregate output throughput", "tokens / s (all streams)", {{"all streams", "#1f77b4", {}}}};
  ChartPanel per_stream{"Per-stream output speed",
                        "tokens / s (one stream)",
                        {{"median stream", "#ff7f0e", {}}, {"5th percentile (slow streams)", "#8c564b", {}}}};
  ChartPanel itl{"Inter-token latency", "ms", {{"p50", "#9467bd", {}}, {"p95", "#e377c2", {}}}};
  ChartPanel ttft{"Time to first token", "ms", {{"p50", "#2ca02c", {}}, {"p95", "#d62728", {}}}};
  for (const auto& r : results) {
    chart.x_labels.push_back(std::to_string(r.concurrency));
    aggregate.series[0].values.push_back(r.aggregate_tok_s);
    per_stream.series[0].values.push_back(r.per_stream_tok_s);
    per_stream.series[1].values.push_back(r.per_stream_tok_s_p5);
    itl.series[0].values.push_back(ms(r.itl.p50));
    itl.series[1].values.push_back(ms(r.itl.p95));
    ttft.series[0].values.push_back(ms(r.ttft.p50));
    ttft.series[1].values.push_back(ms(r.ttft.p95));
  }
  chart.panels = {aggregate, per_stream, itl, ttft};
  return render_svg_chart(chart);
}

int run_bench(const BenchArgs& a) {
  LoadConfig c;
  try {
    c.endpoint = parse_endpoint(a.url);
  } catch (const std::exception& e) {
    throw CommandError{e.what()};
  }
  if (a.api == "openai") c.api = ApiKind::openai;
  else if (a.api == "anthropic") c.api = ApiKind::anthropic;
  else throw CommandError{"--api must be openai or anthropic"};
  if (a.prompt_tokens < 1) throw CommandError{"--prompt-tokens must be at least 1"};
  if (a.max_tokens < 1) throw CommandError{"--max-tokens must be at least 1"};
  if (a.shared_prefix < 0) throw CommandError{"--shared-prefix must not be negative"};
  if (a.requests < 0) throw CommandError{"--requests must not be negative"};
  if (a.rounds < 1) throw CommandError{"--rounds must be at least 1"};
  c.model = a.model;
  c.api_key = a.api_key;
  c.prompt_tokens = a.prompt_tokens;
  c.shared_prefix = a.shared_prefix;
  c.max_tokens = a.max_tokens;
  const std::vector<int> levels = parse_levels(a.concurrency);
  try {
    check_reachable(c.endpoint);
    wait_until_ready(c.endpoint, std::chrono::seconds(300));
    if (c.model.empty()) c.model = first_served_model(c.endpoint, c.api_key);
  } catch (const std::exception& e) {
    throw CommandError{e.what()};
  }

  std::printf("%5s %5s %5s %4s %9s %10s %8s %8s %8s %7s %7s %7s %8s %8s\n", "conc", "reqs", "done", "err",
              "agg tok/s", "strm tok/s", "ttft p50", "ttft p95", "ttft p99", "itl p50", "itl p95", "itl p99",
              "e2e p50", "e2e p99");
  std::fflush(stdout);
  std::vector<LevelResult> results;
  for (int level : levels) {
    const int requests = a.requests > 0 ? a.requests : a.rounds * level;
    LevelResult r = run_level(c, level, requests);
    std::printf("%5d %5d %5d %4d %9.1f %10.1f %8.1f %8.1f %8.1f %7.1f %7.1f %7.1f %8.0f %8.0f\n", r.concurrency,
                r.requests, r.completed, r.errors, r.aggregate_tok_s, r.per_stream_tok_s, ms(r.ttft.p50),
                ms(r.ttft.p95), ms(r.ttft.p99), ms(r.itl.p50), ms(r.itl.p95), ms(r.itl.p99), ms(r.e2e.p50),
                ms(r.e2e.p99));
    for (const auto& e : r.error_samples) std::printf("      error: %s\n", e.c_str());
    std::fflush(stdout);
    results.push_back(std::move(r));
  }
  std::printf("(latencies in ms; tok/s counts output tokens)\n");

  if (!a.json_path.empty()) {
    nlohmann::json doc{{"url", a.url},
                       {"api", a.api},
                       {"endpoint", c.api == ApiKind::openai ? "/v1/completions" : "/v1/messages"},
                       {"model", c.model},
                       {"prompt_tokens", a.prompt_tokens},
                       {"shared_prefix", a.shared_prefix},
                       {"max_tokens", a.max_tokens},
                       {"levels", nlohmann::json::array()}};
    for (const auto& r : results) doc["levels"].push_back(level_json(r));
    write_file(a.json_path, doc.dump(2) + "\n");
  }
  if (!a.svg_path.empty()) write_file(a.svg_path, svg_for(a, c, results));

  int errors = 0;
  for (const auto& r : results) errors += r.errors;
  return errors == 0 ? 0 : 2;
}

const RegisterCommand registration{
    "bench", "Load-test an OpenAI- or Anthropic-compatible server with concurrent streamed requests",
    [](CLI::App& sub) -> Action {
      auto a = std::make_shared<BenchArgs>();
      sub.add_option("--url", a->url, "Server root, e.g. http://127.0.0.1:8080")->required();
      sub.add_option("--api", a->api, "openai (/v1/completions) or anthropic (/v1/messages); default openai");
      sub.add_option("--model", a->model, "Model name to send (default: the first one GET /v1/models lists)");
      sub.add_option("--concurrency", a->concurrency, "Comma-separated concurrent stream counts (default 1,4,16,20)");
      sub.add_option("--prompt-tokens", a->prompt_tokens, "Words of each request's own prompt, ~1 token each (default 128)");
      sub.add_option("--max-tokens", a->max_tokens, "Output tokens per request, sent with ignore_eos (default 256)");
      sub.add_option("--shared-prefix", a->shared_prefix, "Words every request's prompt starts with (default 0)");
      sub.add_option("--requests", a->requests, "Requests per concurrency level (default: --rounds x concurrency)");
      sub.add_option("--rounds", a->rounds, "Without --requests: requests each stream sends per level (default 2)");
      sub.add_option("--json", a->json_path, "Write the results as JSON to this file");
      sub.add_option("--svg", a->svg_path,
                     "Write a chart to this SVG file: aggregate and per-stream tok/s, inter-token latency, TTFT");
      sub.add_option("--api-key", a->api_key, "Sent as Authorization: Bearer and x-api-key");
      return [a] { return run_bench(*a); };
    }};

}  // namespace
}  // namespace pensieve::cli
