#pragma once
// A context-free grammar over bytes, in the flat form the matcher walks: every rule is a list of alternatives,
// every alternative a run of symbols (a byte-set terminal or a reference to a rule) closed by an End symbol.
// Code points never appear here: text grammars and schemas are lowered to UTF-8 byte sequences first, so the
// matcher advances one byte at a time and token pieces that end inside a character need no special care.
#include <array>
#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pensieve::grammar {

using ByteSet = std::bitset<256>;

struct Symbol {
  enum class Kind : uint8_t { Terminal, Rule, End };
  Kind kind = Kind::End;
  uint32_t index = 0;  // into Grammar::sets (Terminal) or Grammar::rules (Rule)
};

struct Grammar {
  struct Rule {
    std::string name;
    std::vector<uint32_t> alternatives;  // start positions in `symbols`
  };
  std::vector<ByteSet> sets;
  std::vector<Symbol> symbols;
  std::vector<Rule> rules;
  uint32_t root = 0;
};

// Builds a Grammar rule by rule, then checks it. Limits bound what a client's grammar may cost.
class GrammarBuilder {
 public:
  static constexpr size_t kMaxSymbols = 1'000'000;

  // The id of rule `name`, created (undefined) on first use so that rules may be referenced before they are defined.
  uint32_t rule(std::string_view name);
  // A fresh rule named after `base` ("base-1", "base-2", ...).
  uint32_t fresh_rule(std::string_view base);
  bool defined(uint32_t rule) const { return defined_[rule]; }
  void add_alternative(uint32_t rule, const std::vector<Symbol>& symbols);
  Symbol terminal(const ByteSet& set);
  static Symbol ref(uint32_t rule) { return {Symbol::Kind::Rule, rule}; }

  // Checks that every referenced rule is defined, drops alternatives that can never complete, and refuses left
  // recursion (the matcher would grow its stacks without consuming input). Throws GrammarError.
  Grammar finish(std::string_view root_name);

 private:
  Grammar g_;
  std::vector<bool> defined_;
  std::vector<std::vector<Symbol>> alternatives_;  // flat per (rule, alternative) until finish()
  std::vector<uint32_t> alternative_rule_;
  std::unordered_map<std::string, uint32_t> by_name_;
  std::unordered_map<std::string, uint32_t> set_ids_;
  size_t n_symbols_ = 0;
};

}  // namespace pensieve::grammar
