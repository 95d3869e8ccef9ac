#include "api/special_text.h"

#include <algorithm>
#include <random>

namespace pensieve::api {

SpecialTextGuard::SpecialTextGuard(const tokenizer::Tokenizer& tokenizer) : tokenizer_(tokenizer) {
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    const tokenizer::TokenKind kind = tokenizer.token_kind(id);
    if (kind != tokenizer::TokenKind::Control && kind != tokenizer::TokenKind::Unknown) continue;
    const std::string_view piece = tokenizer.token_piece(id);
    if (!piece.empty()) spellings_.emplace_back(piece);
  }
  std::sort(spellings_.begin(), spellings_.end());
  spellings_.erase(std::unique(spellings_.begin(), spellings_.end()), spellings_.end());
  for (size_t i = 0; i < spellings_.size(); ++i) {
    index_.emplace(spellings_[i], i);
    first_byte_[static_cast<unsigned char>(spellings_[i][0])] = true;
    lengths_.push_back(spellings_[i].size());
  }
  std::sort(lengths_.begin(), lengths_.end(), std::greater<>());
  lengths_.erase(std::unique(lengths_.begin(), lengths_.end()), lengths_.end());
}

std::string SpecialTextGuard::new_secret() const {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 24; ++i) s.push_back(kHex[rng() & 15]);
  return s;
}

std::string SpecialTextGuard::marker_prefix(const std::string& secret) const { return "[[pensieve:" + secret + ":"; }

std::string SpecialTextGuard::masked(const std::string& text, const std::string& secret, bool& changed) const {
  changed = false;
  if (spellings_.empty()) return {};
  std::string out;
  size_t copied = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (!first_byte_[static_cast<unsigned char>(text[i])]) continue;
    for (size_t len : lengths_) {  // longest spelling first, as the tokenizer's matcher
      if (i + len > text.size()) continue;
      const auto it = index_.find(std::string_view(text).substr(i, len));
      if (it == index_.end()) continue;
      if (!changed) out.reserve(text.size() + 64);
      changed = true;
      out.append(text, copied, i - copied);
      out += marker_prefix(secret) + std::to_string(it->second) + "]]";
      copied = i + len;
      i = copied - 1;
      break;
    }
  }
  if (changed) out.append(text, copied, std::string::npos);
  return out;
}

void SpecialTextGuard::mask(Json& data, const std::string& secret) const {
  if (spellings_.empty()) return;
  std::vector<Json*> todo = {&data};
  while (!todo.empty()) {
    Json* j = todo.back();
    todo.pop_back();
    bool changed = false;
    if (j->is_string()) {
      std::string m = masked(j->get_ref<const std::string&>(), secret, changed);
      if (changed) *j = std::move(m);
    } else if (j->is_array()) {
      for (auto& e : *j) todo.push_back(&e);
    } else if (j->is_object()) {
      bool any_key = false;
      for (auto it = j->begin(); it != j->end() && !any_key; ++it) masked(it.key(), secret, any_key);
      if (any_key) {  // keys cannot be edited in place: rebuild the object in the same order
        Json rebuilt = Json::object();
        for (auto it = j->begin(); it != j->end(); ++it) {
          std::string key = masked(it.key(), secret, changed);
          rebuilt[changed ? key : it.key()] = std::move(it.value());
        }
        *j = std::move(rebuilt);
      }
      for (auto it = j->begin(); it != j->end(); ++it) todo.push_back(&it.value());
    }
  }
}

std::vector<int32_t> SpecialTextGuard::encode(std::string_view rendered, const std::string& secret) const {
  std::vector<int32_t> ids;
  const std::string prefix = marker_prefix(secret);
  size_t pos = 0;
  while (pos < rendered.size()) {
    const size_t at = rendered.find(prefix, pos);
    const size_t digits = at == std::string_view::npos ? at : at + prefix.size();
    const size_t close = digits == std::string_view::npos ? digits : rendered.find("]]", digits);
    size_t index = spellings_.size();
    if (close != std::string_view::npos) {
      index = 0;
      for (size_t k = digits; k < close && index < spellings_.size(); ++k) {
        const char c = rendered[k];
        index = (c >= '0' && c <= '9') ? index * 10 + static_cast<size_t>(c - '0') : spellings_.size();
      }
      if (close == digits) index = spellings_.size();
    }
    if (at == std::string_view::npos) {  // no marker left: the rest is markup
      tokenizer_.encode_append(rendered.substr(pos), /*parse_special=*/true, /*add_special=*/false, ids);
      break;
    }
    if (index >= spellings_.size()) {  // a marker the template mangled: markup up to and past its prefix
      tokenizer_.encode_append(rendered.substr(pos, digits - pos), /*parse_special=*/true, /*add_special=*/false, ids);
      pos = digits;
      continue;
    }
    tokenizer_.encode_append(rendered.substr(pos, at - pos), /*parse_special=*/true, /*add_special=*/false, ids);
    tokenizer_.encode_append(spellings_[index], /*parse_special=*/false, /*add_special=*/false, ids);
    pos = close + 2;
  }
  return ids;
}

}  // namespace pensieve::api
