#pragma once
// Keeps clients from writing the model's control tokens. A chat prompt is the template's markup around
// client text; only the markup may produce control tokens. Before rendering, every control-token spelling in
// client strings (message text, names, tool schemas, object keys) is swapped for a marker carrying a
// per-render secret; after rendering, the prompt is tokenized with special tokens parsed between markers and
// each marked spelling tokenized as plain text. A client cannot forge a marker: it does not know the secret.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "api/json_fields.h"
#include "tokenizer/tokenizer.h"

namespace pensieve::api {

class SpecialTextGuard {
 public:
  explicit SpecialTextGuard(const tokenizer::Tokenizer& tokenizer);

  // A fresh secret for one render.
  std::string new_secret() const;
  // Replaces control-token spellings in every string and key of `data`, in place (iteratively: `data` may be
  // as deep as the request limits allow).
  void mask(Json& data, const std::string& secret) const;
  // Tokenizes a rendered prompt: control tokens parsed in the markup, marked spellings as plain text.
  std::vector<int32_t> encode(std::string_view rendered, const std::string& secret) const;

 private:
  std::string masked(const std::string& text, const std::string& secret, bool& changed) const;
  std::string marker_prefix(const std::string& secret) const;

  const tokenizer::Tokenizer& tokenizer_;
  std::vector<std::string> spellings_;                    // control and unknown tokens' texts
  std::unordered_map<std::string_view, size_t> index_;     // spelling -> position in spellings_
  std::vector<size_t> lengths_;                           // the distinct spelling lengths, longest first
  bool first_byte_[256] = {};
};

}  // namespace pensieve::api
