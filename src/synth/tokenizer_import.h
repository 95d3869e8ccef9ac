#pragma once
// Imports a real tokenizer as the `tokenizer.*` GGUF keys llama.cpp's converter would write for it:
// - from a GGUF: every tokenizer.* key, copied in file order;
// - from a HF tokenizer.json (+ tokenizer_config.json beside it): byte-level BPE only ("gpt2").
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "gguf/gguf_file.h"
#include "synth/preset.h"

namespace pensieve::synth {

class TokenizerImportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ImportedTokenizer {
  std::vector<gguf::MetadataEntry> entries;  // tokenizer.* keys, in the converter's order
  uint64_t n_vocab = 0;                      // length of tokenizer.ggml.tokens (rows of token_embd)
};

// A GGUF is recognised by its magic; anything else is read as tokenizer.json. `shape` supplies what the
// converter reads from config.json: the padded vocab_size (used when the tokenizer is of the model's own
// family) and fallback bos/eos ids.
ImportedTokenizer import_tokenizer(const std::filesystem::path& from, const ModelShape& shape);

// The tokenizer.ggml.pre name for a byte-level BPE pre-tokenizer regex; empty when not recognised.
std::string pre_tokenizer_name_for_regex(const std::string& regex);

}  // namespace pensieve::synth
