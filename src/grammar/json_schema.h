#pragma once
// JSON Schema lowered to GBNF text, so that a schema and a hand-written grammar go through one compiler.
// Supported: type (one or a list), properties, required, additionalProperties (false, or a schema for
// objects without properties), items, minItems, maxItems, enum, const, minLength, maxLength, minimum,
// maximum, exclusiveMinimum, exclusiveMaximum (any bounds for integers; whole, inclusive bounds for
// numbers, which then have no exponent), anyOf, oneOf
// (as anyOf), allOf with one member, $ref to "#" / "#/$defs/..." / "#/definitions/..." (recursion allowed),
// nullable, and annotations (title, description, default, examples, format, ...), which are ignored.
// Keywords that constrain values in ways the grammar does not express (pattern, minimum, ...) are an error
// naming the keyword, unless SchemaOptions::ignore_unsupported. Objects are written with their declared
// properties only, in declared order; numbers have at most 16 integer digits, 16 fraction digits and a
// two-digit exponent; whitespace between tokens is at most one space or a newline and 20 indent characters.
#include <map>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace pensieve::grammar {

using SchemaJson = nlohmann::ordered_json;

struct SchemaOptions {
  bool ignore_unsupported = false;  // best effort: drop keywords the grammar cannot enforce
};

// Collects the rules of one or more schemas (they share the JSON primitives) into one GBNF text.
class SchemaGrammarWriter {
 public:
  // The rule matching exactly the JSON texts the schema accepts (within the limits above). Throws GrammarError.
  std::string add_schema(const SchemaJson& schema, std::string_view hint = "schema", SchemaOptions options = {});
  // Any JSON object (response_format json_object).
  std::string any_object();
  // `root ::= body` plus every rule written so far.
  std::string text(std::string_view root_body) const;

  // A GBNF string literal matching exactly `bytes`.
  static std::string literal(std::string_view bytes);

 private:
  std::string visit(const SchemaJson& s, const std::string& path, int depth);
  std::string visit_typed(const SchemaJson& s, const std::string& type, const std::string& path, int depth);
  std::string object_rule(const SchemaJson& s, const std::string& path, int depth);
  std::string array_rule(const SchemaJson& s, const std::string& path, int depth);
  std::string string_rule(const SchemaJson& s, const std::string& path);
  std::string number_rule(const SchemaJson& s, bool integer, const std::string& path);
  std::string alternatives_of(const SchemaJson& list, const SchemaJson& parent, const char* keyword,
                              const std::string& path, int depth);
  std::string ref_rule(const std::string& ref, const std::string& path, int depth);
  std::string primitive(const std::string& name);
  std::string define(const std::string& hint, const std::string& body);
  std::string fresh_name(const std::string& hint);
  void check_keywords(const SchemaJson& s, const std::string& path) const;

  SchemaOptions options_;
  const SchemaJson* document_ = nullptr;  // for $ref within the schema being added
  std::map<std::string, std::string> rules_;  // name -> body
  std::set<std::string> names_{"root"};
  std::map<std::string, std::string> refs_;  // "#/$defs/x" of the current document -> rule
};

// A whole grammar (root rule included) for one schema, and for any JSON object.
std::string json_schema_to_gbnf(const SchemaJson& schema, SchemaOptions options = {});
std::string json_object_gbnf();

}  // namespace pensieve::grammar
