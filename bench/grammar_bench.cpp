// Constrained-decoding cost per token with the Llama 3 vocabulary (128,256 tokens) from the shared fixtures.
// Each stream does what the serving engine does per generated token: look up (or build) the grammar mask of
// its state, apply it to a logits row, pick the best allowed token, advance its cursor. Streams share one
// compiled grammar, as concurrent requests with one schema do. Logits are random rows, so the walk visits
// many grammar states (a worst case for the mask cache compared with a trained model's habits).
// Prints microseconds per token (mask + pick + advance) for 1 and 20 streams, greedy and sampled: cold (a
// fresh grammar: every new state walks the token trie) and warm (the same grammar again, other random rows),
// beside the same pick without a grammar, plus the cost of one trie walk.
// With `--model FILE.gguf` it then runs the serving engine on that model (2 threads) with 1 and 20 streams,
// free and constrained, and prints the engine's time per step both ways.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "engine/sampler.h"
#include "engine/serving_engine.h"
#include "grammar/gbnf.h"
#include "grammar/json_schema.h"
#include "grammar/token_constraint.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace {

using namespace pensieve;
using Clock = std::chrono::steady_clock;

double micros_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

constexpr const char* kSchema = R"({"type":"object","properties":{
  "name":{"type":"string","maxLength":24},"age":{"type":"integer"},"email":{"type":"string","maxLength":40},
  "role":{"enum":["admin","editor","viewer"]},"active":{"type":"boolean"},
  "tags":{"type":"array","items":{"type":"string","maxLength":12},"maxItems":4},
  "address":{"type":"object","properties":{"city":{"type":"string","maxLength":20},"zip":{"type":"string","maxLength":8}},
             "required":["city"]}},
  "required":["name","role","active"],"additionalProperties":false})";

struct Result {
  double us_per_token = 0;
  long tokens = 0;
  size_t masks = 0;
};

// Runs `streams` cursors for `tokens_per_stream` tokens each, round-robin like the engine's decode steps.
Result run(const std::shared_ptr<grammar::TokenConstraint>& c, int streams, int tokens_per_stream, uint32_t seed,
           const std::vector<std::vector<float>>& rows, float temperature) {
  const size_t vocab = rows[0].size();
  engine::Sampler sampler(static_cast<int>(vocab));
  engine::SamplingParams params;
  params.temperature = temperature;
  engine::SequenceRng rng(seed);
  std::mt19937 pick(seed);
  std::vector<grammar::GrammarCursor> cursors;
  for (int s = 0; s < streams; ++s) cursors.emplace_back(c);
  std::vector<float> row(vocab);
  Result r;
  double total = 0;
  for (int step = 0; step < tokens_per_stream; ++step) {
    for (int s = 0; s < streams; ++s) {
      const auto& src = rows[pick() % rows.size()];
      std::copy(src.begin(), src.end(), row.begin());  // the model's logits: not counted
      // Timed: the mask (looked up or built), the pick under it, and the cursor's advance; the same pick
      // without a grammar is timed apart (free_pick_us) for comparison.
      const auto t0 = Clock::now();
      const grammar::TokenMask& mask = cursors[static_cast<size_t>(s)].allowed();
      const int32_t token = sampler.sample(row, params, {}, 0, rng, {mask.bits, mask.ids});
      const bool ok = c->vocabulary().is_end(token) || cursors[static_cast<size_t>(s)].advance(token);
      const bool restart = !ok || c->vocabulary().is_end(token) || cursors[static_cast<size_t>(s)].finished();
      total += micros_since(t0);
      if (restart) cursors[static_cast<size_t>(s)] = grammar::GrammarCursor(c);  // a new request
      ++r.tokens;
    }
  }
  r.us_per_token = total / static_cast<double>(r.tokens);
  r.masks = c->cached_masks();
  return r;
}

// The sampler's own time per token without a grammar, over the same rows.
double free_pick_us(const std::vector<std::vector<float>>& rows, float temperature) {
  engine::Sampler sampler(static_cast<int>(rows[0].size()));
  engine::SamplingParams params;
  params.temperature = temperature;
  engine::SequenceRng rng(1);
  std::vector<float> row(rows[0].size());
  double total = 0;
  const int n = 400;
  for (int i = 0; i < n; ++i) {
    const auto& src = rows[static_cast<size_t>(i) % rows.size()];
    std::copy(src.begin(), src.end(), row.begin());
    const auto t0 = Clock::now();
    sampler.sample(row, params, {}, 0, rng);
    total += micros_since(t0);
  }
  return total / n;
}

// Milliseconds per engine step while `streams` requests of 64 tokens each run, with or without `grammar`.
double engine_step_ms(engine::Engine& e, int streams, const std::shared_ptr<grammar::TokenConstraint>& grammar,
                      int32_t vocab, float temperature) {
  std::mt19937 gen(static_cast<uint32_t>(streams));
  std::vector<std::shared_ptr<engine::RequestHandle>> handles;
  const uint64_t steps_before = e.stats().steps;
  const auto t0 = Clock::now();
  for (int i = 0; i < streams; ++i) {
    engine::GenerationRequest r;
    for (int k = 0; k < 32; ++k) r.prompt.push_back(static_cast<int32_t>(gen() % static_cast<uint32_t>(vocab)));
    r.sampling.seed = static_cast<uint64_t>(i);
    r.sampling.temperature = temperature;
    r.stop.max_tokens = 64;
    r.stop.ignore_eos = true;
    r.grammar = grammar;
    handles.push_back(std::get<std::shared_ptr<engine::RequestHandle>>(e.submit(std::move(r))));
  }
  std::vector<engine::GenerationEvent> events;
  for (auto& h : handles) {
    while (h->drain(events)) h->wait(std::chrono::milliseconds(20));
  }
  return micros_since(t0) / 1000 / static_cast<double>(e.stats().steps - steps_before);
}

void compare_engine(const std::string& model_path, const std::string& schema_gbnf_body_rule_text) {
  auto be = backend::make_cpu_backend(2);
  auto m = model::Model::load(model_path, *be);
  const auto tok = tokenizer::Tokenizer::from_gguf(m->file());
  auto vocab = std::make_shared<const grammar::TokenVocabulary>(tok);
  engine::EngineOptions o;
  o.parallel = 20;
  auto e = engine::make_serving_engine(*m, tok, o);
  std::printf("\nserving engine on %s (2 threads), 64 tokens per stream, ms per step:\n", model_path.c_str());
  for (float temperature : {0.0f, 1.0f}) {
    for (int streams : {1, 20}) {
      // A fresh grammar (cold: its trie walks are paid during the run), then the same one again (warm).
      auto g = std::make_shared<grammar::TokenConstraint>(grammar::parse_gbnf(schema_gbnf_body_rule_text), vocab);
      const double free_ms = engine_step_ms(*e, streams, nullptr, tok.vocab_size(), temperature);
      const double cold_ms = engine_step_ms(*e, streams, g, tok.vocab_size(), temperature);
      const double warm_ms = engine_step_ms(*e, streams, g, tok.vocab_size(), temperature);
      std::printf("  temperature %.0f, %2d streams: free %6.2f ms   constrained cold %6.2f ms (%+7.1f us/token)"
                  "   warm %6.2f ms (%+7.1f us/token)\n", temperature, streams, free_ms, cold_ms,
                  (cold_ms - free_ms) * 1000 / streams, warm_ms, (warm_ms - free_ms) * 1000 / streams);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = std::string(PENSIEVE_FIXTURES_DIR) + "/tokenizers/llama3/tokenizer.json";
  std::string model_path;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--model" && i + 1 < argc) {
      model_path = argv[++i];
    } else {
      path = argv[i];
    }
  }
  const auto tok = tokenizer::Tokenizer::load(path);
  auto t0 = Clock::now();
  const auto vocab = std::make_shared<const grammar::TokenVocabulary>(tok);
  std::printf("vocabulary: %d tokens, %zu trie nodes, built in %.1f ms\n", vocab->size(), vocab->trie().size(),
              micros_since(t0) / 1000);

  std::mt19937 gen(1);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<std::vector<float>> rows(32, std::vector<float>(static_cast<size_t>(vocab->size())));
  for (auto& row : rows) for (auto& x : row) x = normal(gen);

  const std::string schema_gbnf = grammar::json_schema_to_gbnf(grammar::SchemaJson::parse(kSchema));
  const std::string any_gbnf = grammar::json_object_gbnf();
  for (const auto& [name, text] : {std::pair{"schema (7 properties, nested)", schema_gbnf},
                                   std::pair{"json_object (any object)", any_gbnf}}) {
    t0 = Clock::now();
    auto probe = std::make_shared<grammar::TokenConstraint>(grammar::parse_gbnf(text), vocab);
    const double compile_us = micros_since(t0);
    t0 = Clock::now();
    probe->mask(probe->start());
    std::printf("\n%s: compiled in %.0f us; one trie walk (first mask) %.0f us\n", name, compile_us, micros_since(t0));
    {
      // The mask of a state inside a string allows nearly every token: the longest walk.
      grammar::GrammarCursor in_string(probe);
      for (int32_t t : tok.encode(std::string(name).starts_with("schema") ? "{\"name\": \"" : "{\"")) in_string.advance(t);
      t0 = Clock::now();
      const auto& m = in_string.allowed();
      std::printf("  inside a string: %zu tokens allowed, walk %.0f us\n", m.allowed, micros_since(t0));
    }
    for (float temperature : {0.0f, 1.0f}) {
      for (int streams : {1, 20}) {
        auto c = std::make_shared<grammar::TokenConstraint>(grammar::parse_gbnf(text), vocab);
        const int per_stream = 2000 / streams + 100;
        const Result cold = run(c, streams, per_stream, 7, rows, temperature);
        const Result warm = run(c, streams, per_stream, 8, rows, temperature);
        std::printf("  %s, %2d streams: cold %7.1f us/token (%ld tokens, %zu masks)   warm %6.1f us/token (%zu masks)\n",
                    temperature > 0 ? "sampled" : "greedy ", streams, cold.us_per_token, cold.tokens, cold.masks,
                    warm.us_per_token, warm.masks);
      }
    }
  }
  std::printf("\nthe same pick without a grammar: greedy %.1f us/token, sampled %.1f us/token\n",
              free_pick_us(rows, 0.0f), free_pick_us(rows, 1.0f));
  if (!model_path.empty()) {
    // Documents one after another, so the grammar never ends a stream before its 64 tokens.
    grammar::SchemaGrammarWriter w;
    const std::string person = w.add_schema(grammar::SchemaJson::parse(kSchema));
    compare_engine(model_path, w.text("( " + person + " \"\\n\" )+"));
  }
  return 0;
}
