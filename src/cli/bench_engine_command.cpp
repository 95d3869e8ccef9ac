// `pensieve bench-engine --model F --prompt 128 --gen 128 --batch 1,4,8 [--threads N] [--json]`: prefill and
// decode throughput of the model alone (no HTTP), beside the memory-bandwidth bound for decode.
// With --streams 1,4,8,20 it measures the serving engine instead (see bench_engine_serving.h).
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "backend/memory_bandwidth.h"
#include "cli/bench_engine_serving.h"
#include "cli/command_registry.h"
#include "cli/device_option.h"
#include "cli/memory_plan.h"
#include "model/model.h"

namespace pensieve::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchArgs {
  std::string model;
  int prompt = 128;
  int gen = 128;
  std::string batches = "1,4,8";
  std::string kv_type = "f16";
  int threads = 0;
  std::string device = "auto";
  bool json = false;
};

struct BenchResult {
  int batch = 0;
  double prefill_tok_s = 0;
  double decode_tok_s = 0;
  double decode_bound_tok_s = 0;
};

std::vector<int> parse_batches(const std::string& text) {
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
    if (v <= 0 || v > 1024) throw CommandError{"--batch: '" + item + "' is not a batch size (expected e.g. 1,4,8)"};
    out.push_back(v);
    start = comma + 1;
  }
  return out;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Prefill rows a step at most, as the serving engine's default token budget.
constexpr int kPrefillChunk = 512;

BenchResult bench_one(model::Model& m, kv::KvType kv_type, int batch, int prompt, int gen, double bandwidth) {
  const auto& c = m.config();
  const int per_seq_blocks = (prompt + gen) / kv::kBlockTokens + 1;
  auto pool = m.make_kv_pool(kv_type, batch * per_seq_blocks);
  std::vector<kv::BlockTable> tables(static_cast<size_t>(batch));
  for (auto& t : tables) t.reserve(pool, prompt + gen);
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> token(0, c.vocab - 1);
  std::vector<float> logits(static_cast<size_t>(batch) * static_cast<size_t>(c.vocab));
  // Decode brings back what the serving engine's greedy sampler reads: the whole rows from host memory, the
  // rows' heads from a device.
  const bool on_host = m.backend().host_memory();
  std::vector<backend::TopLogits> heads(static_cast<size_t>(batch));
  model::Batch b;

  BenchResult r;
  r.batch = batch;
  auto start = Clock::now();
  for (int s = 0; s < batch; ++s) {
    for (int p0 = 0; p0 < prompt; p0 += kPrefillChunk) {
      const int p1 = std::min(prompt, p0 + kPrefillChunk);
      b.clear();
      const int seq = b.add_sequence(tables[static_cast<size_t>(s)].blocks());
      for (int p = p0; p < p1; ++p) b.add_token(token(rng), p, seq, p + 1 == prompt);
      m.forward(b, pool, std::span<float>(logits).first(p1 == prompt ? static_cast<size_t>(c.vocab) : 0));
    }
  }
  r.prefill_tok_s = static_cast<double>(batch) * prompt / seconds_since(start);

  start = Clock::now();
  for (int step = 0; step < gen; ++step) {
    b.clear();
    for (int s = 0; s < batch; ++s) {
      const int seq = b.add_sequence(tables[static_cast<size_t>(s)].blocks());
      b.add_token(token(rng), prompt + step, seq, true);
    }
    if (on_host) {
      m.forward(b, pool, logits);
    } else {
      m.run(b, pool);
      m.read_top_logits(heads);
    }
  }
  r.decode_tok_s = static_cast<double>(batch) * gen / seconds_since(start);

  // Each decode step reads every weight once plus each sequence's KV so far (on average prompt + gen/2).
  const double kv_bytes_per_seq =
      (prompt + gen / 2.0) * c.n_layers * 2.0 * static_cast<double>(kv::kv_row_bytes(kv_type, c.kv_dim()));
  const double bytes_per_step = static_cast<double>(m.weight_bytes()) + batch * kv_bytes_per_seq;
  r.decode_bound_tok_s = bandwidth * batch / bytes_per_step;
  return r;
}

int run_bench(const BenchArgs& a) {
  if (a.prompt <= 0 || a.gen <= 0) throw CommandError{"--prompt and --gen must be positive"};
  const std::vector<int> batches = parse_batches(a.batches);
  const kv::KvType kv_type = parse_kv_type_flag(a.kv_type, "--kv-type");
  auto be = open_backend(a.device, a.threads);
  auto m = model::Model::load(a.model, *be);
  require_kv_type_fits(kv_type, m->config());
  const double bandwidth = be->measure_bandwidth();
  {  // Fault the mapped weights in, and let a GPU load its kernels and libraries, before timing anything: a
     // prefill of the timed prefills' length (on a GPU cuBLAS chooses an algorithm for each product shape on
     // first use: an 8B model's first 128-row prefill took 20 ms, the next 8), its logits the output product.
    const int warm_tokens = std::min(a.prompt, kPrefillChunk);
    auto pool = m->make_kv_pool(kv_type, warm_tokens / kv::kBlockTokens + 1);
    kv::BlockTable t;
    t.reserve(pool, warm_tokens);
    model::Batch b;
    const int seq = b.add_sequence(t.blocks());
    for (int i = 0; i < warm_tokens; ++i) b.add_token(i % m->config().vocab, i, seq, i + 1 == warm_tokens);
    std::vector<float> warm_logits(static_cast<size_t>(m->config().vocab));
    m->forward(b, pool, warm_logits);
  }
  std::vector<BenchResult> results;
  for (int batch : batches) results.push_back(bench_one(*m, kv_type, batch, a.prompt, a.gen, bandwidth));

  if (a.json) {
    nlohmann::json j;
    j["model"] = a.model;
    j["backend"] = be->name();
    j["threads"] = be->threads();
    j["kv_type"] = kv::kv_type_name(kv_type);
    j["weight_bytes"] = m->weight_bytes();
    j["read_bandwidth_gb_s"] = bandwidth / 1e9;
    j["prompt"] = a.prompt;
    j["gen"] = a.gen;
    j["results"] = nlohmann::json::array();
    for (const auto& r : results) {
      j["results"].push_back({{"batch", r.batch},
                              {"prefill_tok_s", r.prefill_tok_s},
                              {"decode_tok_s", r.decode_tok_s},
                              {"decode_bound_tok_s", r.decode_bound_tok_s}});
    }
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("%s\n", fmt::format("model {}  backend {}  weights {:.1f} MB  read bandwidth {:.1f} GB/s",
                                  a.model, describe_device(*be), m->weight_bytes() / 1e6, bandwidth / 1e9)
                          .c_str());
  std::printf("prompt %d, gen %d per sequence, KV %s\n", a.prompt, a.gen, kv::kv_type_name(kv_type));
  std::printf("%6s %14s %14s %20s\n", "batch", "prefill tok/s", "decode tok/s", "decode bound tok/s");
  for (const auto& r : results) {
    std::printf("%6d %14.1f %14.1f %20.1f\n", r.batch, r.prefill_tok_s, r.decode_tok_s, r.decode_bound_tok_s);
  }
  return 0;
}

const RegisterCommand kBenchEngine{
    "bench-engine",
    "Measure prefill and decode throughput beside the memory-bandwidth bound; with --streams, the serving engine",
    [](CLI::App& sub) -> Action {
      auto a = std::make_shared<BenchArgs>();
      auto s = std::make_shared<ServingBenchArgs>();
      sub.add_option("--model", a->model, "GGUF model file")->required();
      auto* prompt = sub.add_option("--prompt", a->prompt,
                                    "Prompt tokens per sequence (default 128; with --streams: each stream's own, 64)");
      auto* gen = sub.add_option("--gen", a->gen, "Generated tokens per sequence (default 128; with --streams 64)");
      auto* batch = sub.add_option("--batch", a->batches, "Comma-separated batch sizes (default 1,4,8)");
      sub.add_option("--threads", a->threads, "Worker threads (default: physical cores)");
      add_device_option(sub, a->device);
      sub.add_option("--kv-type", a->kv_type, "KV cache precision: f16 (default), q8_0 or f32");
      sub.add_flag("--json", a->json, "Print the results as JSON");
      auto* streams = sub.add_option("--streams", s->streams,
                                     "Serving mode: comma-separated concurrent stream counts, e.g. 1,4,8,20");
      streams->excludes(batch);
      sub.add_option("--shared-prefix", s->shared_prefix, "Serving mode: prompt tokens every stream shares (default 0)")
          ->needs(streams);
      sub.add_option("--prefix-cache", s->prefix_cache, "Serving mode: on, off or both (default both)")->needs(streams);
      sub.add_option("--token-budget", s->token_budget, "Serving mode: rows per engine step (default 512)")
          ->needs(streams);
      return [a, s, streams, prompt, gen] {
        if (streams->count() == 0) return run_bench(*a);
        s->model = a->model;
        s->threads = a->threads;
        s->device = a->device;
        s->kv_type = a->kv_type;
        s->json = a->json;
        if (prompt->count() > 0) s->prompt = a->prompt;
        if (gen->count() > 0) s->gen = a->gen;
        return run_serving_bench(*s);
      };
    }};

}  // namespace
}  // namespace pensieve::cli
