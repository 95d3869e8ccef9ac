#include "chat/lexer.h"

#include <cctype>

#include "chat/template_error.h"

namespace pensieve::chat {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// jinja2 (like Python's splitlines) turns \r\n and \r into \n, and drops one trailing newline.
std::string normalize_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

class Lexer {
 public:
  Lexer(std::string source, const LexerOptions& options) : src_(std::move(source)), options_(options) {}

  std::vector<Token> run() {
    size_t pos = 0;
    while (pos <= src_.size()) {
      size_t tag = find_tag_start(pos);
      std::string text = src_.substr(pos, (tag == std::string::npos ? src_.size() : tag) - pos);
      apply_pending_strip(text);
      if (tag == std::string::npos) {
        emit_text(std::move(text), pos);
        break;
      }
      char kind = src_[tag + 1];
      size_t p = tag + 2;
      char modifier = p < src_.size() && (src_[p] == '-' || src_[p] == '+') ? src_[p] : 0;
      if (modifier) ++p;
      if (modifier == '-') {
        rstrip(text);
      } else if (kind != '{' && modifier != '+' && options_.lstrip_blocks) {
        strip_line_indent(text, pos, tag);
      }
      emit_text(std::move(text), pos);
      if (kind == '#') {
        pos = skip_comment(p);
      } else {
        pos = lex_tag(kind, p, tag);
      }
    }
    tokens_.push_back(Token{TokenType::End, "", 0, 0, line_at(src_.size())});
    return std::move(tokens_);
  }

 private:
  enum class After { Nothing, StripAll, TrimNewline };

  size_t find_tag_start(size_t from) const {
    size_t i = src_.find('{', from);
    while (i != std::string::npos && i + 1 < src_.size()) {
      char c = src_[i + 1];
      if (c == '{' || c == '%' || c == '#') return i;
      i = src_.find('{', i + 1);
    }
    return std::string::npos;
  }

  void apply_pending_strip(std::string& text) {
    if (after_ == After::StripAll) {
      size_t i = 0;
      while (i < text.size() && is_space(text[i])) ++i;
      text.erase(0, i);
    } else if (after_ == After::TrimNewline && !text.empty() && text[0] == '\n') {
      text.erase(0, 1);
    }
    after_ = After::Nothing;
  }

  static void rstrip(std::string& text) {
    while (!text.empty() && is_space(text.back())) text.pop_back();
  }

  // lstrip_blocks: spaces and tabs between the start of a line and a block/comment tag go away.
  void strip_line_indent(std::string& text, size_t text_start, size_t tag) const {
    size_t i = tag;
    while (i > text_start && (src_[i - 1] == ' ' || src_[i - 1] == '\t')) --i;
    if (i != 0 && src_[i - 1] != '\n') return;
    size_t n = std::min(text.size(), tag - i);
    text.resize(text.size() - n);
  }

  void emit_text(std::string text, size_t pos) {
    if (text.empty()) return;
    if (!tokens_.empty() && tokens_.back().type == TokenType::Text) {
      tokens_.back().text += text;
      return;
    }
    tokens_.push_back(Token{TokenType::Text, std::move(text), 0, 0, line_at(pos)});
  }

  size_t skip_comment(size_t p) {
    size_t end = src_.find("#}", p);
    if (end == std::string::npos) fail(p, "unterminated comment");
    bool strip = end > p && src_[end - 1] == '-';
    after_ = strip ? After::StripAll : options_.trim_blocks ? After::TrimNewline : After::Nothing;
    return end + 2;
  }

  // Lexes one {{ }} or {% %} tag starting after its opening (and modifier); returns the position after it.
  size_t lex_tag(char kind, size_t p, size_t tag_start) {
    const bool is_block = kind == '%';
    const char closer = is_block ? '%' : '}';
    tokens_.push_back(Token{is_block ? TokenType::BlockBegin : TokenType::VariableBegin, "", 0, 0, line_at(tag_start)});
    const size_t first_token = tokens_.size();
    int open_brackets = 0;  // like jinja2, `}}` inside an open (, [ or { is not the end of the tag
    for (;;) {
      while (p < src_.size() && is_space(src_[p])) ++p;
      if (p >= src_.size()) fail(tag_start, is_block ? "unterminated '{%' tag" : "unterminated '{{' tag");
      if (open_brackets > 0) {
        p = lex_expression_token(p);
        const std::string& op = tokens_.back().type == TokenType::Operator ? tokens_.back().text : std::string();
        if (op == "(" || op == "[" || op == "{") ++open_brackets;
        if (op == ")" || op == "]" || op == "}") --open_brackets;
        continue;
      }
      char modifier = 0;
      size_t close = p;
      if ((src_[p] == '-' || src_[p] == '+') && p + 2 < src_.size() + 1 && src_.compare(p + 1, 2, std::string{closer, '}'}) == 0) {
        modifier = src_[p];
        close = p + 1;
      }
      if (src_.compare(close, 2, std::string{closer, '}'}) == 0) {
        p = close + 2;
        tokens_.push_back(Token{is_block ? TokenType::BlockEnd : TokenType::VariableEnd, "", 0, 0, line_at(close)});
        if (modifier == '-') {
          after_ = After::StripAll;
        } else if (is_block && modifier != '+' && options_.trim_blocks) {
          after_ = After::TrimNewline;
        }
        break;
      }
      p = lex_expression_token(p);
      const Token& last = tokens_.back();
      if (last.type == TokenType::Operator && (last.text == "(" || last.text == "[" || last.text == "{")) ++open_brackets;
    }
    if (is_block && tokens_.size() == first_token + 2 && tokens_[first_token].type == TokenType::Name &&
        tokens_[first_token].text == "raw") {
      tokens_.resize(first_token - 1);
      return lex_raw_body(p);
    }
    return p;
  }

  // After {% raw %}: everything up to {% endraw %} is text, verbatim.
  size_t lex_raw_body(size_t p) {
    size_t search = p;
    for (;;) {
      size_t open = src_.find("{%", search);
      if (open == std::string::npos) fail(p, "missing '{% endraw %}'");
      size_t q = open + 2;
      bool strip_before = q < src_.size() && src_[q] == '-';
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) ++q;
      while (q < src_.size() && is_space(src_[q])) ++q;
      if (src_.compare(q, 6, "endraw") != 0) {
        search = open + 2;
        continue;
      }
      q += 6;
      while (q < src_.size() && is_space(src_[q])) ++q;
      char modifier = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) modifier = src_[q++];
      if (src_.compare(q, 2, "%}") != 0) {
        search = open + 2;
        continue;
      }
      std::string text = src_.substr(p, open - p);
      apply_pending_strip(text);
      if (strip_before) rstrip(text);
      emit_text(std::move(text), p);
      after_ = modifier == '-' ? After::StripAll
               : (modifier != '+' && options_.trim_blocks) ? After::TrimNewline : After::Nothing;
      return q + 2;
    }
  }

  size_t lex_expression_token(size_t p) {
    const int line = line_at(p);
    char c = src_[p];
    if (is_name_start(c)) {
      size_t e = p;
      while (e < src_.size() && is_name_char(src_[e])) ++e;
      tokens_.push_back(Token{TokenType::Name, src_.substr(p, e - p), 0, 0, line});
      return e;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) return lex_number(p, line);
    if (c == '\'' || c == '"') return lex_string(p, line);
    static const char* const two_char_ops[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const char* op : two_char_ops) {
      if (src_.compare(p, 2, op) == 0) {
        tokens_.push_back(Token{TokenType::Operator, op, 0, 0, line});
        return p + 2;
      }
    }
    static const std::string_view single_ops = "+-*/%~<>=()[]{},.:|";
    if (single_ops.find(c) != std::string_view::npos) {
      tokens_.push_back(Token{TokenType::Operator, std::string(1, c), 0, 0, line});
      return p + 1;
    }
    fail(p, std::string("unexpected character '") + c + "'");
  }

  size_t lex_number(size_t p, int line) {
    std::string digits;
    size_t e = p;
    auto take_digits = [&] {
      while (e < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) {
        if (src_[e] != '_') digits += src_[e];
        ++e;
      }
    };
    take_digits();
    bool is_float = false;
    if (e + 1 < src_.size() && src_[e] == '.' && std::isdigit(static_cast<unsigned char>(src_[e + 1]))) {
      is_float = true;
      digits += '.';
      ++e;
      take_digits();
    }
    if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
      size_t q = e + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < src_.size() && std::isdigit(static_cast<unsigned char>(src_[q]))) {
        is_float = true;
        digits += src_.substr(e, q - e);
        e = q;
        take_digits();
      }
    }
    Token token{is_float ? TokenType::Float : TokenType::Integer, digits, 0, 0, line};
    try {
      if (is_float) {
        token.float_value = std::stod(digits);
      } else {
        token.int_value = std::stoll(digits);
      }
    } catch (const std::exception&) {
      fail(p, "number out of range: " + digits);
    }
    tokens_.push_back(std::move(token));
    return e;
  }

  size_t lex_string(size_t p, int line) {
    const char quote = src_[p];
    std::string value;
    size_t i = p + 1;
    for (;;) {
      if (i >= src_.size()) fail(p, "unterminated string literal");
      char c = src_[i];
      if (c == quote) break;
      if (c != '\\' || i + 1 >= src_.size()) {
        value += c;
        ++i;
        continue;
      }
      char e = src_[i + 1];
      i += 2;
      switch (e) {
        case 'n': value += '\n'; break;
        case 't': value += '\t'; break;
        case 'r': value += '\r'; break;
        case 'b': value += '\b'; break;
        case 'f': value += '\f'; break;
        case 'v': value += '\v'; break;
        case 'a': value += '\a'; break;
        case '0': value += '\0'; break;
        case '\\': value += '\\'; break;
        case '\'': value += '\''; break;
        case '"': value += '"'; break;
        case '\n': break;  // backslash-newline continues the line
        case 'x': case 'u': case 'U': {
          size_t width = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (i + width > src_.size()) fail(p, "truncated escape in string literal");
          uint32_t cp = 0;
          for (size_t k = i; k < i + width; ++k) {
            const char h = src_[k];
            const int digit = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
            if (digit < 0) fail(p, "invalid \\" + std::string(1, e) + " escape in string literal");
            cp = cp * 16 + static_cast<uint32_t>(digit);
          }
          if (cp > 0x10FFFF) fail(p, "escape beyond U+10FFFF in string literal");
          append_utf8(cp, value);
          i += width;
          break;
        }
        default:  // Python keeps unknown escapes as written
          value += '\\';
          value += e;
      }
    }
    tokens_.push_back(Token{TokenType::String, std::move(value), 0, 0, line});
    return i + 1;
  }

  int line_at(size_t pos) {
    pos = std::min(pos, src_.size());
    if (pos < line_cursor_) {
      line_cursor_ = 0;
      line_ = 1;
    }
    for (; line_cursor_ < pos; ++line_cursor_) {
      if (src_[line_cursor_] == '\n') ++line_;
    }
    return line_;
  }

  [[noreturn]] void fail(size_t pos, const std::string& message) {
    throw TemplateError(TemplateError::Kind::Syntax,
                        "TemplateSyntaxError: " + message + " (line " + std::to_string(line_at(pos)) + ")");
  }

  std::string src_;
  LexerOptions options_;
  std::vector<Token> tokens_;
  After after_ = After::Nothing;
  size_t line_cursor_ = 0;
  int line_ = 1;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const LexerOptions& options) {
  return Lexer(normalize_newlines(source), options).run();
}

}  // namespace pensieve::chat
