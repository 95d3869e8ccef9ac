#include "grammar/gbnf.h"

#include <map>

#include "grammar/grammar_error.h"
#include "grammar/utf8_ranges.h"
#include "tokenizer/utf8.h"

namespace pensieve::grammar {
namespace {

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Grammar parse(std::string_view root) {
    if (s_.size() > kMaxGrammarText) throw GrammarError("the grammar text is over 1 MiB", "grammar");
    skip_space();
    while (pos_ < s_.size()) {
      const std::string name = parse_name();
      skip_space();
      if (s_.substr(pos_, 3) != "::=") fail("expected '::=' after rule name '" + name + "'");
      pos_ += 3;
      const uint32_t r = b_.rule(name);
      if (b_.defined(r)) fail("rule '" + name + "' is defined twice");
      parse_alternatives(r);
      if (pos_ < s_.size() && s_[pos_] == ')') fail("unbalanced ')'");
    }
    return b_.finish(root);
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    size_t line = 1;
    for (size_t i = 0; i < pos_ && i < s_.size(); ++i) line += s_[i] == '\n';
    throw GrammarError("grammar line " + std::to_string(line) + ": " + what, "grammar");
  }

  void skip_space() {
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (c == '#') {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++pos_;
      } else {
        break;
      }
    }
  }

  std::string parse_name() {
    const size_t start = pos_;
    while (pos_ < s_.size() && is_name_char(s_[pos_])) ++pos_;
    if (pos_ == start) fail("expected a rule name");
    return std::string(s_.substr(start, pos_ - start));
  }

  // At a name followed by '::=' (the start of the next rule)?
  bool at_rule_start() const {
    size_t p = pos_;
    while (p < s_.size() && is_name_char(s_[p])) ++p;
    if (p == pos_) return false;
    while (p < s_.size() && (s_[p] == ' ' || s_[p] == '\t' || s_[p] == '\n' || s_[p] == '\r')) ++p;
    return s_.substr(p, 3) == "::=";
  }

  void parse_alternatives(uint32_t rule) {
    if (++depth_ > 64) fail("groups nested deeper than 64");
    for (;;) {
      b_.add_alternative(rule, parse_sequence());
      skip_space();
      if (pos_ < s_.size() && s_[pos_] == '|') {
        ++pos_;
        continue;
      }
      break;
    }
    --depth_;
  }

  std::vector<Symbol> parse_sequence() {
    std::vector<Symbol> seq;
    for (;;) {
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] == '|' || s_[pos_] == ')' || at_rule_start()) return seq;
      std::vector<Symbol> item = parse_primary();
      apply_postfix(item);
      seq.insert(seq.end(), item.begin(), item.end());
    }
  }

  std::vector<Symbol> parse_primary() {
    const char c = s_[pos_];
    if (c == '"') return parse_literal();
    if (c == '[') return {class_symbol(parse_class())};
    if (c == '.') {
      ++pos_;
      return {class_symbol(complement({}))};
    }
    if (c == '(') {
      ++pos_;
      const uint32_t r = b_.fresh_rule("group");
      parse_alternatives(r);
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != ')') fail("missing ')'");
      ++pos_;
      return {GrammarBuilder::ref(r)};
    }
    if (is_name_char(c)) return {GrammarBuilder::ref(b_.rule(parse_name()))};
    fail(std::string("unexpected character '") + c + "'");
  }

  uint32_t parse_escape() {
    if (pos_ >= s_.size()) fail("unfinished escape");
    const char e = s_[pos_++];
    switch (e) {
      case 'n': return '\n';
      case 'r': return '\r';
      case 't': return '\t';
      case '\\': return '\\';
      case '"': return '"';
      case '\'': return '\'';
      case '[': return '[';
      case ']': return ']';
      case '-': return '-';
      case '^': return '^';
      case 'x': return parse_hex(2);
      case 'u': return parse_hex(4);
      case 'U': return parse_hex(8);
      default: fail(std::string("unknown escape '\\") + e + "'");
    }
  }

  uint32_t parse_hex(int digits) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      if (pos_ >= s_.size()) fail("unfinished hex escape");
      const char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<uint32_t>(c - 'A' + 10);
      else fail("bad hex digit in escape");
    }
    if (v > 0x10FFFF) fail("escape beyond U+10FFFF");
    return v;
  }

  // One code point of a literal or class: an escape, or a (UTF-8 encoded) character of the text.
  uint32_t parse_char() {
    const auto c = static_cast<unsigned char>(s_[pos_++]);
    if (c == '\\') return parse_escape();
    if (c < 0x80) return c;
    const int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : -1;
    if (extra < 0 || pos_ + static_cast<size_t>(extra) > s_.size()) fail("invalid UTF-8 in the grammar");
    uint32_t cp = c & (0x3F >> extra);
    for (int i = 0; i < extra; ++i) {
      const auto n = static_cast<unsigned char>(s_[pos_++]);
      if ((n & 0xC0) != 0x80) fail("invalid UTF-8 in the grammar");
      cp = (cp << 6) | (n & 0x3F);
    }
    return cp;
  }

  std::vector<Symbol> parse_literal() {
    ++pos_;  // opening quote
    std::string bytes;
    while (true) {
      if (pos_ >= s_.size()) fail("unterminated string literal");
      if (s_[pos_] == '"') {
        ++pos_;
        break;
      }
      const bool escaped = s_[pos_] == '\\' && pos_ + 1 < s_.size() && s_[pos_ + 1] == 'x';
      const uint32_t cp = parse_char();
      if (escaped) {
        bytes += static_cast<char>(cp);  // \xHH is a raw byte
      } else {
        tokenizer::append_utf8(bytes, cp);
      }
    }
    std::vector<Symbol> seq;
    for (unsigned char byte : bytes) {
      ByteSet set;
      set.set(byte);
      seq.push_back(b_.terminal(set));
    }
    return seq;
  }

  std::vector<CodePointRange> parse_class() {
    ++pos_;  // '['
    bool negated = false;
    if (pos_ < s_.size() && s_[pos_] == '^') {
      negated = true;
      ++pos_;
    }
    std::vector<CodePointRange> ranges;
    while (true) {
      if (pos_ >= s_.size()) fail("unterminated character class");
      if (s_[pos_] == ']') {
        ++pos_;
        break;
      }
      const uint32_t lo = parse_char();
      uint32_t hi = lo;
      if (pos_ + 1 < s_.size() && s_[pos_] == '-' && s_[pos_ + 1] != ']') {
        ++pos_;
        hi = parse_char();
        if (hi < lo) fail("character range with its end before its start");
      }
      ranges.push_back({lo, hi});
    }
    return negated ? complement(std::move(ranges)) : ranges;
  }

  // A class becomes one terminal when it is pure ASCII, else a rule of UTF-8 byte runs (shared per class).
  Symbol class_symbol(const std::vector<CodePointRange>& ranges) {
    auto seqs = utf8_sequences(ranges);
    if (seqs.empty()) return GrammarBuilder::ref(never_rule());
    if (seqs.size() == 1 && seqs[0].size() == 1) return b_.terminal(seqs[0][0]);
    std::string key;
    for (const auto& [lo, hi] : ranges) key += std::to_string(lo) + "-" + std::to_string(hi) + ",";
    if (auto it = class_rules_.find(key); it != class_rules_.end()) return GrammarBuilder::ref(it->second);
    const uint32_t r = b_.fresh_rule("char");
    for (const auto& seq : seqs) {
      std::vector<Symbol> alt;
      for (const ByteSet& set : seq) alt.push_back(b_.terminal(set));
      b_.add_alternative(r, alt);
    }
    class_rules_.emplace(key, r);
    return GrammarBuilder::ref(r);
  }

  // A rule that matches nothing (an empty class); finish() drops the alternatives that use it.
  uint32_t never_rule() {
    const uint32_t r = b_.rule("never-");
    if (!b_.defined(r)) b_.add_alternative(r, {GrammarBuilder::ref(r)});
    return r;
  }

  int parse_count() {
    const size_t start = pos_;
    long v = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      v = v * 10 + (s_[pos_++] - '0');
      if (v > kMaxRepetition) fail("repetition count over " + std::to_string(kMaxRepetition));
    }
    if (pos_ == start) fail("expected a number in {m,n}");
    return static_cast<int>(v);
  }

  // Rewrites `item` under a postfix operator as references to helper rules.
  void apply_postfix(std::vector<Symbol>& item) {
    if (pos_ >= s_.size()) return;
    const char op = s_[pos_];
    if (op != '*' && op != '+' && op != '?' && op != '{') return;
    ++pos_;
    int min = 0, max = -1;  // -1: unbounded
    if (op == '+') min = 1;
    if (op == '?') max = 1;
    if (op == '{') {
      skip_space();
      min = parse_count();
      skip_space();
      max = min;
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        skip_space();
        max = pos_ < s_.size() && s_[pos_] == '}' ? -1 : parse_count();
        skip_space();
      }
      if (pos_ >= s_.size() || s_[pos_] != '}') fail("expected '}'");
      ++pos_;
      if (max >= 0 && max < min) fail("{m,n} with n < m");
    }
    item = repeat(as_one_symbol(item), min, max);
  }

  Symbol as_one_symbol(const std::vector<Symbol>& seq) {
    if (seq.size() == 1) return seq[0];
    const uint32_t r = b_.fresh_rule("seq");
    b_.add_alternative(r, seq);
    return GrammarBuilder::ref(r);
  }

  std::vector<Symbol> repeat(Symbol x, int min, int max) {
    std::vector<Symbol> out(static_cast<size_t>(min), x);
    if (max < 0) {
      const uint32_t star = b_.fresh_rule("star");  // star ::= x star | ""
      b_.add_alternative(star, {x, GrammarBuilder::ref(star)});
      b_.add_alternative(star, {});
      out.push_back(GrammarBuilder::ref(star));
      return out;
    }
    // Up to (max - min) more: opt_k ::= x opt_{k-1} | "".
    uint32_t prev = 0;
    bool have_prev = false;
    for (int k = 0; k < max - min; ++k) {
      const uint32_t opt = b_.fresh_rule("opt");
      std::vector<Symbol> alt{x};
      if (have_prev) alt.push_back(GrammarBuilder::ref(prev));
      b_.add_alternative(opt, alt);
      b_.add_alternative(opt, {});
      prev = opt;
      have_prev = true;
    }
    if (have_prev) out.push_back(GrammarBuilder::ref(prev));
    return out;
  }

  std::string_view s_;
  size_t pos_ = 0;
  int depth_ = 0;
  GrammarBuilder b_;
  std::map<std::string, uint32_t> class_rules_;
};

}  // namespace

Grammar parse_gbnf(std::string_view text, std::string_view root) { return Parser(text).parse(root); }

}  // namespace pensieve::grammar
