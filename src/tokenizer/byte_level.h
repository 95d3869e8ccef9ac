#pragma once
// GPT-2's byte-level alphabet: each byte is written as one printable Unicode character so that vocabularies
// can be stored as text. Printable Latin-1 bytes stand for themselves; the rest are shifted to U+0100 and up.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pensieve::tokenizer {

// The UTF-8 text of the character that stands for `byte`.
std::string_view byte_level_char(uint8_t byte);

// Appends the byte-level text of raw bytes.
void byte_level_encode(std::string_view bytes, std::string& out);

// Raw bytes of byte-level text; nullopt when it holds a character outside the alphabet.
std::optional<std::string> byte_level_decode(std::string_view text);

}  // namespace pensieve::tokenizer
