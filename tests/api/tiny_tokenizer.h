#pragma once
// The fixture model's tokenizer (llama3-tiny, 512 tokens), loaded once for the API tests.
#include <string>

#include "tokenizer/tokenizer.h"

namespace pensieve::testing {

inline const tokenizer::Tokenizer& tok() {
  static const tokenizer::Tokenizer t =
      tokenizer::Tokenizer::load(std::string(PENSIEVE_FIXTURES_DIR) + "/models/llama3-tiny/llama3-tiny-f32.gguf");
  return t;
}

}  // namespace pensieve::testing
