// `pensieve generate --model F --tokens 1,2,3 --max-tokens N [--temperature 0] [--json]`: continue a token
// sequence with the engine (greedy at temperature 0) and print the new token ids.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "cli/command_registry.h"
#include "cli/device_option.h"
#include "cli/memory_plan.h"
#include "model/generate.h"
#include "model/model.h"

namespace pensieve::cli {
namespace {

std::vector<int32_t> parse_tokens(const std::string& text) {
  std::vector<int32_t> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    try {
      size_t used = 0;
      const long v = std::stol(item, &used);
      if (used != item.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument(item);
      out.push_back(static_cast<int32_t>(v));
    } catch (const std::exception&) {
      throw CommandError{"--tokens: '" + item + "' is not a token id (expected e.g. 1,2,3)"};
    }
    start = comma + 1;
  }
  return out;
}

struct GenerateArgs {
  std::string model;
  std::string tokens;
  int max_tokens = 16;
  float temperature = 0.0f;
  uint64_t seed = 0;
  bool stop_at_eos = false;
  std::string kv = "f16";
  int threads = 0;
  std::string device = "auto";
  bool json = false;
};

int run_generate(const GenerateArgs& a) {
  const std::vector<int32_t> prompt = parse_tokens(a.tokens);
  if (a.max_tokens < 0) throw CommandError{"--max-tokens must not be negative"};
  const kv::KvType kv_type = parse_kv_type_flag(a.kv, "--kv");
  auto be = open_backend(a.device, a.threads);
  auto model = model::Model::load(a.model, *be);
  require_kv_type_fits(kv_type, model->config());
  for (int32_t t : prompt) {
    if (t >= model->config().vocab) {
      throw CommandError{"token id " + std::to_string(t) + " is outside the vocabulary of " +
                         std::to_string(model->config().vocab)};
    }
  }
  model::GenerateOptions o;
  o.max_tokens = a.max_tokens;
  o.temperature = a.temperature;
  o.seed = a.seed;
  o.kv_type = kv_type;
  if (a.stop_at_eos) {
    if (auto eos = model->file().get_int("tokenizer.ggml.eos_token_id")) o.stop_token = static_cast<int32_t>(*eos);
  }
  const model::Generation g = model::generate(*model, prompt, o);
  if (a.json) {
    nlohmann::json j;
    j["tokens"] = g.tokens;
    j["prompt_tokens"] = prompt.size();
    j["prefill_seconds"] = g.prefill_seconds;
    j["decode_seconds"] = g.decode_seconds;
    std::printf("%s\n", j.dump().c_str());
  } else {
    for (size_t i = 0; i < g.tokens.size(); ++i) std::printf("%s%d", i ? " " : "", g.tokens[i]);
    std::printf("\n");
  }
  return 0;
}

const RegisterCommand kGenerate{
    "generate", "Continue a token sequence and print the generated token ids", [](CLI::App& sub) -> Action {
      auto a = std::make_shared<GenerateArgs>();
      sub.add_option("--model", a->model, "GGUF model file")->required();
      sub.add_option("--tokens", a->tokens, "Comma-separated prompt token ids, fed as is (no BOS added)")->required();
      sub.add_option("--max-tokens", a->max_tokens, "Tokens to generate (default 16)");
      sub.add_option("--temperature", a->temperature, "0 (default) picks the most likely token");
      sub.add_option("--seed", a->seed, "Sampling seed when temperature > 0");
      sub.add_flag("--stop-at-eos", a->stop_at_eos, "Stop after the model's end-of-sequence token");
      sub.add_option("--kv", a->kv, "KV cache precision: f16 (default), q8_0 or f32");
      sub.add_option("--threads", a->threads, "Worker threads (default: physical cores)");
      add_device_option(sub, a->device);
      sub.add_flag("--json", a->json, "Print {\"tokens\": [...], ...} instead of space-separated ids");
      return [a] { return run_generate(*a); };
    }};

}  // namespace
}  // namespace pensieve::cli
