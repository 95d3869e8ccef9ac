#include "tokenizer/utf8.h"

#include <algorithm>

namespace pensieve::tokenizer {

namespace {
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
}

std::size_t utf8_char_length(std::string_view text, std::size_t pos) {
  std::size_t n = utf8_sequence_length(static_cast<uint8_t>(text[pos]));
  if (n == 0) return 1;
  return std::min(n, text.size() - pos);
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// The second byte of a sequence has a narrower range for some leads (no overlongs, surrogates, > U+10FFFF).
bool Utf8Assembler::continuation_ok(uint8_t byte) const {
  if ((byte & 0xC0) != 0x80) return false;
  if (have_ != 1) return true;
  switch (buf_[0]) {
    case 0xE0: return byte >= 0xA0;
    case 0xED: return byte < 0xA0;
    case 0xF0: return byte >= 0x90;
    case 0xF4: return byte < 0x90;
    default: return true;
  }
}

void Utf8Assembler::push(uint8_t byte, std::string& out) {
  if (have_ != 0) {
    if (continuation_ok(byte)) {
      buf_[have_++] = byte;
      if (have_ == need_) {
        out.append(reinterpret_cast<const char*>(buf_), have_);
        have_ = 0;
      }
      return;
    }
    // The pending sequence can never complete: reject it, then treat this byte afresh.
    for (std::size_t i = 0; i < have_; ++i) out.append(kReplacement);
    have_ = 0;
  }
  std::size_t n = utf8_sequence_length(byte);
  if (n == 0) {
    out.append(kReplacement);
  } else if (n == 1) {
    out.push_back(static_cast<char>(byte));
  } else {
    buf_[0] = byte;
    have_ = 1;
    need_ = n;
  }
}

void Utf8Assembler::finish(std::string& out) {
  for (std::size_t i = 0; i < have_; ++i) out.append(kReplacement);
  have_ = 0;
}

std::string to_valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  Utf8Assembler assembler;
  for (char c : text) assembler.push(static_cast<uint8_t>(c), out);
  assembler.finish(out);
  return out;
}

bool is_valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    auto lead = static_cast<uint8_t>(text[i]);
    std::size_t n = utf8_sequence_length(lead);
    if (n == 0 || i + n > text.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      auto b = static_cast<uint8_t>(text[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      if (k == 1 && ((lead == 0xE0 && b < 0xA0) || (lead == 0xED && b >= 0xA0) || (lead == 0xF0 && b < 0x90) ||
                     (lead == 0xF4 && b >= 0x90))) {
        return false;
      }
    }
    i += n;
  }
  return true;
}

}  // namespace pensieve::tokenizer
