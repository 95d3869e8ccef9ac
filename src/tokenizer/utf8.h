#pragma once
// Small UTF-8 helpers shared by the tokenizers and the streaming detokenizer.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pensieve::tokenizer {

// Length of the UTF-8 sequence a lead byte announces: 1..4, or 0 for a byte that cannot start one.
constexpr std::size_t utf8_sequence_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xC2) return 0;  // continuation byte or overlong lead
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF5) return 4;
  return 0;
}

// Length of the character at text[pos], clamped to the text; a stray byte counts as one.
std::size_t utf8_char_length(std::string_view text, std::size_t pos);

void append_utf8(std::string& out, uint32_t codepoint);

// Whether `text` is entirely well-formed UTF-8 (no overlongs, surrogates or values above U+10FFFF).
bool is_valid_utf8(std::string_view text);

// Feeds bytes one at a time and releases only well-formed characters. A byte that cannot belong to a
// well-formed character becomes U+FFFD (one per rejected byte, so the rule is local and streaming-safe).
class Utf8Assembler {
 public:
  // Appends to `out` whatever became complete with this byte.
  void push(uint8_t byte, std::string& out);
  // End of stream: an unfinished sequence becomes U+FFFD per byte.
  void finish(std::string& out);
  bool pending() const { return have_ != 0; }

 private:
  bool continuation_ok(uint8_t byte) const;
  uint8_t buf_[4] = {};
  std::size_t have_ = 0;
  std::size_t need_ = 0;
};

// `text` with every byte that is not part of a well-formed character replaced by U+FFFD, by the same rule
// as Utf8Assembler.
std::string to_valid_utf8(std::string_view text);

}  // namespace pensieve::tokenizer
