#pragma once
// The pre-tokenizer families that GGUF files name in `tokenizer.ggml.pre`, with the settings that go with
// each family in the reference implementation (llama.cpp).
#include <string>
#include <string_view>
#include <vector>

namespace pensieve::tokenizer {

struct PreTokenizerFamily {
  std::vector<std::string> regexes;
  bool ignore_merges = false;  // a piece that is itself a token is emitted whole
  bool add_bos = false;        // default when the file has no tokenizer.ggml.add_bos_token
  bool known = true;           // false: the name was not recognised and the default family was used
};

PreTokenizerFamily pre_tokenizer_family(std::string_view name);

// GPT-2's own pattern, also what HF's ByteLevel pre-tokenizer uses when use_regex is on.
extern const char* const kGpt2Regex;

}  // namespace pensieve::tokenizer
