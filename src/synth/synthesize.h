#pragma once
// Writes a random-weight model: converter-compatible metadata and tensor layout, a real tokenizer, weights
// drawn from normal(0, 0.02) (norms 1.0), quantized to the requested type while streaming to disk.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "gguf/gguf_file.h"
#include "synth/preset.h"
#include "synth/tokenizer_import.h"
#include "synth/weight_types.h"

namespace pensieve::synth {

constexpr float kWeightStddev = 0.02f;

struct SynthOptions {
  ModelShape shape;
  OutputType type = OutputType::F16;
  uint64_t seed = 0;
  unsigned threads = 2;
  // output_norm.weight all zeros: every logit is 0, so greedy decoding repeats token 0 while each step costs
  // what it always does (servers whose output parsers reject random text can then be benchmarked over HTTP).
  bool zero_output_norm = false;
};

struct SynthSummary {
  uint64_t n_tensors = 0;
  uint64_t n_parameters = 0;
  uint64_t weight_bytes = 0;
  uint64_t n_vocab = 0;
};

// Every metadata key of the output file, in the converter's order (tokenizer keys last).
std::vector<gguf::MetadataEntry> model_metadata(const SynthOptions& options, const ImportedTokenizer& tokenizer,
                                                uint64_t n_parameters);

// gguf-py's size label: "476K", "1.4M", "1.2B".
std::string size_label(uint64_t n_parameters);

SynthSummary synthesize(const SynthOptions& options, const ImportedTokenizer& tokenizer,
                        const std::filesystem::path& out);

}  // namespace pensieve::synth
