#pragma once
// Test helpers: run bytes through a compiled grammar's automaton.
#include <string_view>

#include "grammar/automaton.h"
#include "grammar/gbnf.h"
#include "grammar/json_schema.h"

namespace pensieve::grammar::testing {

// Whether `text` is a whole sentence of the grammar.
inline bool matches(Automaton& a, std::string_view text) {
  const int32_t s = a.step(a.start(), text);
  return s != Automaton::kDead && a.accepting(s);
}

// Whether `text` can still be continued into a sentence.
inline bool viable_prefix(Automaton& a, std::string_view text) { return a.step(a.start(), text) != Automaton::kDead; }

inline Automaton gbnf(std::string_view text) { return Automaton(parse_gbnf(text)); }
inline Automaton schema(std::string_view json) { return Automaton(parse_gbnf(json_schema_to_gbnf(SchemaJson::parse(json)))); }

}  // namespace pensieve::grammar::testing
