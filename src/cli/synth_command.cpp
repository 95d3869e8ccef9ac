// `pensieve synth`: writes a random-weight model shaped like a real one, with a real tokenizer, laid out the
// way llama.cpp's converter lays it out, so both engines can load the same benchmark file.
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "cli/command_registry.h"
#include "gguf/gguf_file.h"
#include "synth/preset.h"
#include "synth/synthesize.h"
#include "synth/tokenizer_import.h"
#include "synth/weight_types.h"

namespace pensieve::cli {
namespace {

struct SynthArgs {
  std::string preset;
  std::string vocab_from;
  std::string type = "F16";
  std::string out;
  uint64_t seed = 0;
  unsigned threads = 2;
  bool zero_output_norm = false;
  synth::ShapeOverrides shape;
};

int run_synth(const SynthArgs& args) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  synth::SynthOptions options;
  try {
    options.shape = synth::apply_overrides(synth::find_preset(args.preset), args.shape);
  } catch (const std::invalid_argument& e) {
    throw CommandError{e.what()};
  }
  const auto type = synth::output_type_from_name(args.type);
  if (!type) throw CommandError{"unknown --type '" + args.type + "' (F32, F16, BF16, Q8_0, Q4_0, Q4_K_M)"};
  options.type = *type;
  options.seed = args.seed;
  options.threads = args.threads;
  options.zero_output_norm = args.zero_output_norm;

  try {
    const synth::ImportedTokenizer tokenizer = synth::import_tokenizer(args.vocab_from, options.shape);
    const synth::SynthSummary summary = synth::synthesize(options, tokenizer, args.out);
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    fmt::print("wrote {}: {} ({}), {}, {} tensors, {} parameters, {:.1f} MiB of weights, vocab {}, seed {}, {:.1f} s\n",
               args.out, options.shape.preset, synth::arch_name(options.shape.arch), synth::output_type_name(options.type),
               summary.n_tensors, synth::size_label(summary.n_parameters),
               static_cast<double>(summary.weight_bytes) / (1 << 20), summary.n_vocab, options.seed, seconds);
    return 0;
  } catch (const synth::TokenizerImportError& e) {
    throw CommandError{e.what()};
  } catch (const gguf::GgufError& e) {
    throw CommandError{e.what()};
  }
}

const RegisterCommand kSynth{
    "synth", "Write a random-weight model with a real tokenizer (benchmark and demo models)", [](CLI::App& sub) {
      auto args = std::make_shared<SynthArgs>();
      sub.add_option("--preset", args->preset, "Model shape: " + synth::preset_names())->required();
      sub.add_option("--vocab-from", args->vocab_from, "Tokenizer source: a GGUF, or a HF tokenizer.json")->required();
      sub.add_option("--type", args->type, "Weight type: F32, F16, BF16, Q8_0, Q4_0, Q4_K_M")->capture_default_str();
      sub.add_option("-o,--output", args->out, "Output GGUF path")->required();
      sub.add_option("--seed", args->seed, "Random seed (same seed, same file)")->capture_default_str();
      sub.add_option("--threads", args->threads, "Threads filling and quantizing weights")->capture_default_str();
      sub.add_flag("--zero-output-norm", args->zero_output_norm,
                   "All-zero final norm: every logit is 0 and greedy output repeats token 0 at full cost per step "
                   "(for benchmarking servers that reject random text)");
      auto shape_flag = [&](const char* name, std::optional<uint32_t>& target, const char* help) {
        sub.add_option_function<uint32_t>(name, [&target](const uint32_t& v) { target = v; }, help);
      };
      shape_flag("--layers", args->shape.layers, "Override: number of blocks");
      shape_flag("--hidden", args->shape.hidden, "Override: embedding width");
      shape_flag("--heads", args->shape.heads, "Override: attention heads");
      shape_flag("--kv-heads", args->shape.kv_heads, "Override: key/value heads");
      shape_flag("--ffn", args->shape.ffn, "Override: feed-forward width");
      shape_flag("--head-dim", args->shape.head_dim, "Override: per-head dimension");
      shape_flag("--context", args->shape.context, "Override: context length");
      return [args] { return run_synth(*args); };
    }};

}  // namespace
}  // namespace pensieve::cli
