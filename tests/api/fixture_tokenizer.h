#pragma once
// The tokenizer of the tiny Llama 3 fixture model, loaded once, for the API and HTTP tests.
#include <string>

#include "tokenizer/tokenizer.h"

namespace pensieve::testing {

inline std::string fixture_model_path() {
  return std::string(PENSIEVE_FIXTURES_DIR) + "/models/llama3-tiny/llama3-tiny-f32.gguf";
}

inline const tokenizer::Tokenizer& fixture_tokenizer() {
  static const tokenizer::Tokenizer tok = tokenizer::Tokenizer::load(fixture_model_path());
  return tok;
}

}  // namespace pensieve::testing
