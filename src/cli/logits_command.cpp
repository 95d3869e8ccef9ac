// `pensieve logits --model F --tokens 1,2,3 --out F.f32`: float32 logits at every position of the prompt
// (row-major [tokens][vocab], little-endian), for comparing the engine with a reference implementation.
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

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

int run_logits(const std::string& model_path, const std::string& tokens_text, const std::string& out_path,
               const std::string& kv_name, int threads, const std::string& device) {
  const std::vector<int32_t> tokens = parse_tokens(tokens_text);
  const kv::KvType kv_type = parse_kv_type_flag(kv_name, "--kv");
  auto be = open_backend(device, threads);
  auto model = model::Model::load(model_path, *be);
  require_kv_type_fits(kv_type, model->config());
  const auto logits = model::all_position_logits(*model, tokens, kv_type);
  std::ofstream out(out_path, std::ios::binary);
  if (!out) throw CommandError{"cannot write " + out_path};
  out.write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.size() * sizeof(float)));
  if (!out) throw CommandError{"failed writing " + out_path};
  std::fprintf(stderr, "wrote %zu x %d logits to %s\n", tokens.size(), model->config().vocab, out_path.c_str());
  return 0;
}

const RegisterCommand kLogits{
    "logits", "Write float32 logits for every position of a token sequence", [](CLI::App& sub) -> Action {
      auto model = std::make_shared<std::string>();
      auto tokens = std::make_shared<std::string>();
      auto out = std::make_shared<std::string>();
      auto kv = std::make_shared<std::string>("f32");
      auto threads = std::make_shared<int>(0);
      sub.add_option("--model", *model, "GGUF model file")->required();
      sub.add_option("--tokens", *tokens, "Comma-separated token ids, fed as is (no BOS added)")->required();
      sub.add_option("--out", *out, "Output file: float32 [tokens][vocab], row-major")->required();
      sub.add_option("--kv", *kv, "KV cache precision: f32 (default, exact), f16 or q8_0");
      sub.add_option("--threads", *threads, "Worker threads (default: physical cores)");
      auto device = std::make_shared<std::string>("auto");
      add_device_option(sub, *device);
      return [=] { return run_logits(*model, *tokens, *out, *kv, *threads, *device); };
    }};

}  // namespace
}  // namespace pensieve::cli
