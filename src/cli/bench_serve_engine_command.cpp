// `pensieve bench-engine --model F --streams 1,4,8,20 --shared-prefix 2000 --prompt 64 --gen 64`: the serving
// engine under N concurrent streams submitted at once (no HTTP): aggregate generated tok/s, time to first token
// and inter-token latency percentiles, with prefix caching on and off.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "cli/bench_engine_serving.h"
#include "cli/command_registry.h"
#include "cli/device_option.h"
#include "cli/memory_plan.h"
#include "engine/serving_engine.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace pensieve::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct ServingResult {
  int streams = 0;
  bool prefix_cache = false;
  double seconds = 0;
  uint64_t generated = 0;
  double tok_s = 0;
  double ttft_p50 = 0, ttft_p95 = 0;  // seconds
  double itl_p50 = 0, itl_p95 = 0;
  uint64_t cached_prompt_tokens = 0;
  uint64_t preemptions = 0;
};

std::vector<int> parse_list(const std::string& text) {
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
    if (v <= 0 || v > 1024) throw CommandError{"--streams: '" + item + "' is not a stream count (e.g. 1,4,8,20)"};
    out.push_back(v);
    start = comma + 1;
  }
  return out;
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5)];
}

// Token arrival times of one stream, written by the engine thread through the handle's notify callback.
struct StreamClock {
  std::mutex mutex;
  std::vector<Clock::time_point> arrivals;
};

ServingResult bench_one(model::Model& m, const tokenizer::Tokenizer& tok, const ServingBenchArgs& a,
                        kv::KvType kv_type, int streams, bool caching) {
  const int per_stream = a.shared_prefix + a.prompt + a.gen;
  engine::EngineOptions o;
  o.kv_type = kv_type;
  o.parallel = streams;
  o.kv_blocks = streams * (per_stream / kv::kBlockTokens + 2);
  o.token_budget = a.token_budget;
  o.queue_limit = streams;
  o.prefix_caching = caching;
  o.context_length = per_stream + kv::kBlockTokens;
  auto e = engine::make_serving_engine(m, tok, o);

  std::mt19937 rng(77);
  std::uniform_int_distribution<int32_t> token(0, std::min(m.config().vocab, tok.vocab_size()) - 1);
  const auto draw = [&](int n) {
    std::vector<int32_t> v(static_cast<size_t>(n));
    for (auto& t : v) t = token(rng);
    return v;
  };
  const std::vector<int32_t> prefix = draw(a.shared_prefix);
  std::vector<engine::GenerationRequest> requests;
  for (int s = 0; s < streams; ++s) {
    engine::GenerationRequest r;
    r.prompt = prefix;
    const auto own = draw(a.prompt);
    r.prompt.insert(r.prompt.end(), own.begin(), own.end());
    r.sampling.temperature = 0;
    r.stop.max_tokens = a.gen;
    r.stop.ignore_eos = true;
    requests.push_back(std::move(r));
  }

  std::vector<std::unique_ptr<StreamClock>> clocks;
  std::vector<std::shared_ptr<engine::RequestHandle>> handles;
  const auto start = Clock::now();
  for (auto& r : requests) {
    auto result = e->submit(std::move(r));
    if (auto* refused = std::get_if<engine::SubmitRefused>(&result)) throw CommandError{refused->message};
    clocks.push_back(std::make_unique<StreamClock>());
    StreamClock* c = clocks.back().get();
    handles.push_back(std::get<std::shared_ptr<engine::RequestHandle>>(result));
    handles.back()->set_notify([c] {
      std::lock_guard lock(c->mutex);
      c->arrivals.push_back(Clock::now());
    });
  }
  uint64_t generated = 0;
  std::vector<size_t> token_events(handles.size(), 0);
  std::vector<engine::GenerationEvent> events;
  for (size_t i = 0; i < handles.size(); ++i) {
    auto& h = handles[i];
    for (;;) {
      events.clear();
      const bool more = h->drain(events);
      for (const auto& ev : events) {
        generated += ev.tokens.size();
        token_events[i] += ev.tokens.empty() ? 0 : 1;
      }
      if (!more) break;
      h->wait(std::chrono::milliseconds(100));
    }
  }
  const auto end = Clock::now();
  const auto st = e->stats();
  // The engine thread may still be inside a notify callback (the one after the last event): stop it before
  // reading the clocks it writes.
  e->shutdown();

  ServingResult r;
  r.streams = streams;
  r.prefix_cache = caching;
  r.seconds = std::chrono::duration<double>(end - start).count();
  r.generated = generated;
  r.tok_s = static_cast<double>(generated) / r.seconds;
  std::vector<double> ttft, itl;
  for (size_t i = 0; i < clocks.size(); ++i) {
    StreamClock& c = *clocks[i];
    std::lock_guard lock(c.mutex);
    // One notification per token event, then one more when the request closes: drop that one.
    if (c.arrivals.size() > token_events[i]) c.arrivals.resize(token_events[i]);
    if (c.arrivals.empty()) continue;
    ttft.push_back(std::chrono::duration<double>(c.arrivals.front() - start).count());
    for (size_t k = 1; k < c.arrivals.size(); ++k) {
      itl.push_back(std::chrono::duration<double>(c.arrivals[k] - c.arrivals[k - 1]).count());
    }
  }
  r.ttft_p50 = percentile(ttft, 0.5);
  r.ttft_p95 = percentile(ttft, 0.95);
  r.itl_p50 = percentile(itl, 0.5);
  r.itl_p95 = percentile(itl, 0.95);
  r.cached_prompt_tokens = st.prompt_tokens_cached;
  r.preemptions = st.preemptions;
  return r;
}

}  // namespace

int run_serving_bench(const ServingBenchArgs& a) {
  if (a.prompt <= 0 || a.gen <= 0 || a.shared_prefix < 0) {
    throw CommandError{"--prompt and --gen must be positive, --shared-prefix not negative"};
  }
  std::vector<bool> modes;
  if (a.prefix_cache == "on" || a.prefix_cache == "both") modes.push_back(true);
  if (a.prefix_cache == "off" || a.prefix_cache == "both") modes.push_back(false);
  if (modes.empty()) throw CommandError{"--prefix-cache: expected on, off or both"};
  const std::vector<int> stream_counts = parse_list(a.streams);
  const kv::KvType kv_type = parse_kv_type_flag(a.kv_type, "--kv-type");

  auto be = open_backend(a.device, a.threads);
  auto m = model::Model::load(a.model, *be);
  require_kv_type_fits(kv_type, m->config());
  const auto tok = tokenizer::Tokenizer::from_gguf(m->file());
  {  // Fault the mapped weights in before timing anything.
    auto pool = m->make_kv_pool(kv_type, 1);
    kv::BlockTable t;
    t.reserve(pool, 1);
    model::Batch b;
    b.add_token(0, 0, b.add_sequence(t.blocks()), false);
    m->forward(b, pool, {});
  }
  std::vector<ServingResult> results;
  for (int n : stream_counts) {
    for (bool caching : modes) results.push_back(bench_one(*m, tok, a, kv_type, n, caching));
  }

  if (a.json) {
    nlohmann::json j;
    j["model"] = a.model;
    j["backend"] = be->name();
    j["threads"] = be->threads();
    j["kv_type"] = kv::kv_type_name(kv_type);
    j["shared_prefix"] = a.shared_prefix;
    j["prompt"] = a.prompt;
    j["gen"] = a.gen;
    j["token_budget"] = a.token_budget;
    j["results"] = nlohmann::json::array();
    for (const auto& r : results) {
      j["results"].push_back({{"streams", r.streams},
                              {"prefix_cache", r.prefix_cache},
                              {"seconds", r.seconds},
                              {"generated_tokens", r.generated},
                              {"tok_s", r.tok_s},
                              {"ttft_p50_s", r.ttft_p50},
                              {"ttft_p95_s", r.ttft_p95},
                              {"itl_p50_s", r.itl_p50},
                              {"itl_p95_s", r.itl_p95},
                              {"cached_prompt_tokens", r.cached_prompt_tokens},
                              {"preemptions", r.preemptions}});
    }
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("%s\n", fmt::format("model {}  backend {}  threads {}  weights {:.1f} MB", a.model, be->name(),
                                  be->threads(), m->weight_bytes() / 1e6)
                          .c_str());
  std::printf("per stream: shared prefix %d + own prompt %d tokens, %d generated (greedy); token budget %d; KV %s\n",
              a.shared_prefix, a.prompt, a.gen, a.token_budget, kv::kv_type_name(kv_type));
  std::printf("%7s %6s %9s %10s %10s %10s %10s %10s %12s\n", "streams", "cache", "tok/s", "TTFT p50", "TTFT p95",
              "ITL p50", "ITL p95", "wall s", "cached tok");
  for (const auto& r : results) {
    std::printf("%7d %6s %9.1f %8.0fms %8.0fms %8.1fms %8.1fms %10.2f %12llu\n", r.streams,
                r.prefix_cache ? "on" : "off", r.tok_s, r.ttft_p50 * 1e3, r.ttft_p95 * 1e3, r.itl_p50 * 1e3,
                r.itl_p95 * 1e3, r.seconds, static_cast<unsigned long long>(r.cached_prompt_tokens));
  }
  return 0;
}

}  // namespace pensieve::cli
