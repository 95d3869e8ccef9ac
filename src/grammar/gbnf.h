#pragma once
// A GBNF-style text grammar (the notation llama.cpp made common) compiled to a byte Grammar:
//   rule-name ::= alternative | alternative      # comment
// with "literals" (escapes \n \r \t \\ \" \xHH \uHHHH \UHHHHHHHH), [classes] ([^...] negates, a-z ranges),
// `.` (any character), (groups), rule references, and the postfix operators * + ? {m} {m,} {m,n}.
// Whitespace and newlines separate items; a rule ends where the next `name ::=` begins.
#include <string_view>

#include "grammar/grammar.h"

namespace pensieve::grammar {

inline constexpr size_t kMaxGrammarText = 1 << 20;  // bytes
inline constexpr int kMaxRepetition = 10'000;       // largest n in {m,n}

// Throws GrammarError naming the line and what is wrong.
Grammar parse_gbnf(std::string_view text, std::string_view root = "root");

}  // namespace pensieve::grammar
