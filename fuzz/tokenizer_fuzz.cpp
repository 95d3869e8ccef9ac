// libFuzzer target: the tokenizers. Text goes to ids and back for each vocabulary of the fixtures (byte-level
// BPE and SentencePiece): no crash, ids within the vocabulary, and without special-token parsing the text
// comes back byte for byte (the SentencePiece one modulo the leading space its dummy prefix adds).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

using pensieve::tokenizer::Tokenizer;

namespace {

std::vector<std::unique_ptr<Tokenizer>>& tokenizers() {
  static std::vector<std::unique_ptr<Tokenizer>> all = [] {
    std::vector<std::unique_ptr<Tokenizer>> out;
    const char* dir = std::getenv("PENSIEVE_FIXTURES_DIR");
    const std::string root = dir ? dir : PENSIEVE_FIXTURES_DIR;
    for (const char* model : {"/models/llama3-tiny/llama3-tiny-f32.gguf", "/vocab/ggml-vocab-llama-spm.gguf"}) {
      out.push_back(std::make_unique<Tokenizer>(Tokenizer::load(root + model)));
    }
    return out;
  }();
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (const auto& tok : tokenizers()) {
    for (const bool special : {false, true}) {
      std::vector<int32_t> ids;
      try {
        ids = tok->encode(text, special, special);
      } catch (const pensieve::tokenizer::TokenizerError&) {
        continue;  // a refusal (e.g. text the vocabulary cannot spell) is allowed; a crash is not
      }
      for (int32_t id : ids) {
        if (id < 0 || id >= tok->vocab_size()) __builtin_trap();
      }
      const std::string back = tok->decode(ids, special);
      if (!special && !tok->strips_leading_space() && !tok->unk_id() && back != text) __builtin_trap();
    }
  }
  return 0;
}
