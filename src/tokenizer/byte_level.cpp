#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/utf8.h"

namespace pensieve::tokenizer {

namespace {

struct ByteLevelTables {
  std::array<std::string, 256> char_of_byte;
  std::array<int16_t, 512> byte_of_codepoint;  // -1 where the codepoint is not in the alphabet

  ByteLevelTables() {
    byte_of_codepoint.fill(-1);
    uint32_t next_shifted = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      bool stands_for_itself = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      uint32_t cp = stands_for_itself ? b : next_shifted++;
      append_utf8(char_of_byte[b], cp);
      byte_of_codepoint[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteLevelTables& tables() {
  static const ByteLevelTables t;
  return t;
}

}  // namespace

std::string_view byte_level_char(uint8_t byte) { return tables().char_of_byte[byte]; }

void byte_level_encode(std::string_view bytes, std::string& out) {
  const auto& t = tables();
  for (char c : bytes) out += t.char_of_byte[static_cast<uint8_t>(c)];
}

std::optional<std::string> byte_level_decode(std::string_view text) {
  const auto& t = tables();
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    auto lead = static_cast<uint8_t>(text[i]);
    uint32_t cp;
    if (lead < 0x80) {
      cp = lead;
      i += 1;
    } else if ((lead & 0xE0) == 0xC0 && i + 1 < text.size()) {
      cp = ((lead & 0x1Fu) << 6) | (static_cast<uint8_t>(text[i + 1]) & 0x3Fu);
      i += 2;
    } else {
      return std::nullopt;  // every character of the alphabet is below U+0800
    }
    if (cp >= t.byte_of_codepoint.size() || t.byte_of_codepoint[cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(t.byte_of_codepoint[cp]));
  }
  return out;
}

}  // namespace pensieve::tokenizer
