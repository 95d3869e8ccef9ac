#pragma once
// Splits template source into text and the tokens inside {{ }} / {% %}, applying whitespace control the way
// jinja2 does with HF's settings: `-` strips all whitespace on that side, trim_blocks drops the newline after a
// block or comment tag, lstrip_blocks drops spaces and tabs before one at the start of a line, and a single
// trailing newline of the source is dropped. Comments vanish; {% raw %} bodies come out as text.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pensieve::chat {

enum class TokenType {
  Text,
  VariableBegin,  // {{
  VariableEnd,    // }}
  BlockBegin,     // {%
  BlockEnd,       // %}
  Name,
  String,   // text holds the unescaped value
  Integer,
  Float,
  Operator,  // text holds the operator: "+", "//", "==", "(", ...
  End,
};

struct Token {
  TokenType type = TokenType::End;
  std::string text;
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;
};

struct LexerOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
};

// Throws TemplateError (Syntax) on unterminated tags, strings or comments.
std::vector<Token> tokenize(std::string_view source, const LexerOptions& options);

}  // namespace pensieve::chat
