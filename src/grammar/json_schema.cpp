#include "grammar/json_schema.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "grammar/gbnf.h"
#include "grammar/grammar_error.h"
#include "grammar/number_ranges.h"

namespace pensieve::grammar {
namespace {

constexpr int kMaxDepth = 64;

// Keywords that only describe; they never change which texts are valid.
constexpr std::array kAnnotations = {"title", "description", "default", "examples", "$schema", "$id", "$comment",
                                     "deprecated", "readOnly", "writeOnly", "format", "contentEncoding",
                                     "contentMediaType", "$anchor", "$defs", "definitions", "strict"};
// Keywords that constrain values in ways the grammar does not express.
constexpr std::array kUnsupported = {"pattern", "multipleOf", "minProperties", "maxProperties", "patternProperties",
                                     "propertyNames", "uniqueItems", "contains", "minContains", "maxContains",
                                     "prefixItems", "additionalItems", "not", "if", "then", "else",
                                     "dependentRequired", "dependentSchemas", "dependencies",
                                     "unevaluatedProperties", "unevaluatedItems"};
constexpr std::array kTypes = {"object", "array", "string", "number", "integer", "boolean", "null"};

template <size_t N>
bool contains(const std::array<const char*, N>& list, std::string_view key) {
  return std::find(list.begin(), list.end(), key) != list.end();
}

[[noreturn]] void fail(const std::string& path, const std::string& keyword, const std::string& what) {
  throw GrammarError("schema" + path + ": '" + keyword + "' " + what, keyword);
}

bool matches_type(const SchemaJson& v, const std::string& type) {
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "number") return v.is_number();
  if (type == "integer") {
    return v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
  }
  if (type == "boolean") return v.is_boolean();
  return v.is_null();
}

int bound(const SchemaJson& s, const char* key, const std::string& path, int fallback) {
  const auto it = s.find(key);
  if (it == s.end()) return fallback;
  if (!it->is_number_integer() && !it->is_number_unsigned()) fail(path, key, "must be a non-negative integer");
  const auto v = it->get<int64_t>();
  if (v < 0) fail(path, key, "must be a non-negative integer");
  if (v > kMaxRepetition) fail(path, key, "over " + std::to_string(kMaxRepetition) + " is not supported");
  return static_cast<int>(v);
}

std::string repeat_suffix(int min, int max) {
  if (max < 0) return min == 0 ? "*" : min == 1 ? "+" : "{" + std::to_string(min) + ",}";
  if (min == 0 && max == 1) return "?";
  if (min == max) return "{" + std::to_string(min) + "}";
  return "{" + std::to_string(min) + "," + std::to_string(max) + "}";
}

}  // namespace

std::string SchemaGrammarWriter::literal(std::string_view bytes) {
  static const char* hex = "0123456789ABCDEF";
  std::string out = "\"";
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += ch;  // UTF-8 passes through; the parser reads it as characters
    }
  }
  return out + "\"";
}

std::string SchemaGrammarWriter::fresh_name(const std::string& hint) {
  std::string base;
  for (char c : hint) base += (std::isalnum(static_cast<unsigned char>(c)) ? c : '-');
  if (base.empty()) base = "v";
  if (base.size() > 40) base.resize(40);
  std::string name = base;
  for (int n = 1; names_.contains(name); ++n) name = base + "-" + std::to_string(n);
  names_.insert(name);
  return name;
}

std::string SchemaGrammarWriter::define(const std::string& hint, const std::string& body) {
  const std::string name = fresh_name(hint);
  rules_[name] = body;
  return name;
}

// Shared JSON building blocks, written once per grammar.
std::string SchemaGrammarWriter::primitive(const std::string& name) {
  static const std::map<std::string, std::string> bodies = {
      {"ws", R"(( " " | "\n" [ \t]{0,20} )?)"},
      {"json-char", R"([^"\\\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" ( [0-9a-cA-Ce-fE-F] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2} ) ))"},
      {"json-string", R"("\"" json-char* "\"")"},
      {"json-integer", R"("-"? ( "0" | [1-9] [0-9]{0,15} ))"},
      {"json-number", R"(json-integer ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,2} )?)"},
      {"json-boolean", R"("true" | "false")"},
      {"json-null", R"("null")"},
      {"json-value", R"(json-object | json-array | json-string | json-number | json-boolean | json-null)"},
      {"json-member", R"(json-string ws ":" ws json-value)"},
      {"json-object", R"("{" ws ( json-member ( ws "," ws json-member )* ws )? "}")"},
      {"json-array", R"("[" ws ( json-value ( ws "," ws json-value )* ws )? "]")"},
  };
  static const std::map<std::string, std::vector<std::string>> needs = {
      {"json-string", {"json-char"}}, {"json-number", {"json-integer"}},
      {"json-value", {"json-object", "json-array", "json-string", "json-number", "json-boolean", "json-null"}},
      {"json-member", {"json-string", "ws", "json-value"}}, {"json-object", {"ws", "json-member"}},
      {"json-array", {"ws", "json-value"}}};
  if (!rules_.contains(name)) {
    rules_[name] = bodies.at(name);
    names_.insert(name);
    if (auto it = needs.find(name); it != needs.end()) {
      for (const auto& n : it->second) primitive(n);
    }
  }
  return name;
}

std::string SchemaGrammarWriter::add_schema(const SchemaJson& schema, std::string_view hint, SchemaOptions options) {
  options_ = options;
  document_ = &schema;
  refs_.clear();
  const std::string body = visit(schema, "", 0);
  document_ = nullptr;
  return define(std::string(hint), body);
}

std::string SchemaGrammarWriter::any_object() { return primitive("json-object"); }

std::string json_schema_to_gbnf(const SchemaJson& schema, SchemaOptions options) {
  SchemaGrammarWriter w;
  const std::string value = w.add_schema(schema, "schema", options);
  return w.text(value);
}

std::string json_object_gbnf() {
  SchemaGrammarWriter w;
  const std::string value = w.any_object();
  return w.text(value);
}

std::string SchemaGrammarWriter::text(std::string_view root_body) const {
  std::string out = "root ::= " + std::string(root_body) + "\n";
  for (const auto& [name, body] : rules_) out += name + " ::= " + body + "\n";
  return out;
}

void SchemaGrammarWriter::check_keywords(const SchemaJson& s, const std::string& path) const {
  for (const auto& [key, value] : s.items()) {
    if (contains(kUnsupported, key) && !options_.ignore_unsupported) fail(path, key, "is not supported");
  }
}

// A GBNF expression for the values `s` accepts.
std::string SchemaGrammarWriter::visit(const SchemaJson& s, const std::string& path, int depth) {
  if (depth > kMaxDepth) fail(path, "$ref", "nests deeper than 64 levels");
  if (s.is_boolean()) {
    if (!s.get<bool>()) fail(path, "false", "accepts no value");
    return primitive("json-value");
  }
  if (!s.is_object()) throw GrammarError("schema" + path + " must be an object or a boolean", "schema");
  check_keywords(s, path);

  if (const auto it = s.find("$ref"); it != s.end()) {
    if (!it->is_string()) fail(path, "$ref", "must be a string");
    for (const auto& [key, value] : s.items()) {
      if (key != "$ref" && !contains(kAnnotations, key)) fail(path, "$ref", "beside '" + key + "' is not supported");
    }
    return ref_rule(it->get<std::string>(), path, depth);
  }
  if (const auto it = s.find("allOf"); it != s.end()) {
    if (!it->is_array() || it->size() != 1) fail(path, "allOf", "is supported with exactly one schema only");
    SchemaJson merged = s;
    merged.erase("allOf");
    for (const auto& [key, value] : (*it)[0].items()) {
      if (merged.contains(key) && !contains(kAnnotations, key)) fail(path, "allOf", "repeats '" + key + "'");
      merged[key] = value;
    }
    return visit(merged, path + ".allOf[0]", depth + 1);
  }
  for (const char* keyword : {"anyOf", "oneOf"}) {
    if (const auto it = s.find(keyword); it != s.end()) return alternatives_of(*it, s, keyword, path, depth);
  }

  std::string expr;
  if (const auto it = s.find("const"); it != s.end()) {
    expr = literal(it->dump());
  } else if (const auto it = s.find("enum"); it != s.end()) {
    if (!it->is_array()) fail(path, "enum", "must be an array");
    std::vector<std::string> types;
    if (const auto t = s.find("type"); t != s.end()) {
      if (t->is_string()) types.push_back(t->get<std::string>());
      else if (t->is_array()) for (const auto& x : *t) if (x.is_string()) types.push_back(x.get<std::string>());
    }
    for (const auto& v : *it) {
      const bool typed = types.empty() ||
                         std::any_of(types.begin(), types.end(), [&](const std::string& t) { return matches_type(v, t); });
      if (typed) expr += (expr.empty() ? "" : " | ") + literal(v.dump());
    }
    if (expr.empty()) fail(path, "enum", "has no value (of the given type)");
  } else {
    std::vector<std::string> types;
    if (const auto t = s.find("type"); t != s.end()) {
      if (t->is_string()) {
        types.push_back(t->get<std::string>());
      } else if (t->is_array()) {
        for (const auto& x : *t) {
          if (!x.is_string()) fail(path, "type", "must hold type names");
          types.push_back(x.get<std::string>());
        }
        if (types.empty()) fail(path, "type", "is an empty list: no value is allowed");
      } else {
        fail(path, "type", "must be a string or an array of strings");
      }
    } else if (s.contains("properties") || s.contains("required") || s.contains("additionalProperties")) {
      types.push_back("object");
    } else if (s.contains("items") || s.contains("minItems") || s.contains("maxItems")) {
      types.push_back("array");
    } else if (s.contains("minLength") || s.contains("maxLength")) {
      types.push_back("string");
    } else {
      return primitive("json-value");  // no type-specific keyword: any value (null included)
    }
    for (const auto& t : types) {
      if (!contains(kTypes, t)) fail(path, "type", "'" + t + "' is not a JSON Schema type");
      expr += (expr.empty() ? "" : " | ") + visit_typed(s, t, path, depth);
    }
  }
  if (s.value("nullable", false)) expr += " | " + primitive("json-null");
  return "( " + expr + " )";
}

std::string SchemaGrammarWriter::visit_typed(const SchemaJson& s, const std::string& type, const std::string& path,
                                             int depth) {
  if (type == "object") return object_rule(s, path, depth);
  if (type == "array") return array_rule(s, path, depth);
  if (type == "string") return string_rule(s, path);
  if (type == "number" || type == "integer") return number_rule(s, type == "integer", path);
  if (type == "boolean") return primitive("json-boolean");
  return primitive("json-null");
}

std::string SchemaGrammarWriter::alternatives_of(const SchemaJson& list, const SchemaJson& parent, const char* keyword,
                                                 const std::string& path, int depth) {
  if (!list.is_array() || list.empty()) fail(path, keyword, "must be a non-empty array of schemas");
  // Keywords beside anyOf apply to every branch: merge them in (a branch repeating one is not supported).
  SchemaJson shared = parent;
  shared.erase(keyword);
  std::string expr;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string branch_path = path + "." + keyword + "[" + std::to_string(i) + "]";
    SchemaJson branch = list[i];
    if (branch.is_object()) {
      for (const auto& [key, value] : shared.items()) {
        if (contains(kAnnotations, key)) continue;
        if (branch.contains(key)) fail(path, keyword, "with '" + key + "' both beside it and in a branch is not supported");
        branch[key] = value;
      }
    }
    expr += (expr.empty() ? "" : " | ") + define("alt", visit(branch, branch_path, depth + 1));
  }
  return "( " + expr + " )";
}

std::string SchemaGrammarWriter::ref_rule(const std::string& ref, const std::string& path, int depth) {
  if (auto it = refs_.find(ref); it != refs_.end()) return it->second;
  if (ref.empty() || ref[0] != '#') fail(path, "$ref", "'" + ref + "' is not a local reference (#/...)");
  // JSON Pointer within the document being added.
  const SchemaJson* target = document_;
  size_t pos = 1;
  while (pos < ref.size()) {
    if (ref[pos] != '/') fail(path, "$ref", "'" + ref + "' is not a JSON Pointer");
    const size_t end = std::min(ref.find('/', pos + 1), ref.size());
    std::string token;  // unescaped: ~1 is '/', ~0 is '~'
    for (size_t k = pos + 1; k < end; ++k) {
      if (ref[k] == '~' && k + 1 < end && (ref[k + 1] == '0' || ref[k + 1] == '1')) {
        token += ref[++k] == '1' ? '/' : '~';
      } else {
        token += ref[k];
      }
    }
    if (target->is_object() && target->contains(token)) {
      target = &(*target)[token];
    } else if (target->is_array() && !token.empty() && std::all_of(token.begin(), token.end(), ::isdigit) &&
               std::stoul(token) < target->size()) {
      target = &(*target)[std::stoul(token)];
    } else {
      fail(path, "$ref", "'" + ref + "' points to nothing");
    }
    pos = end;
  }
  // Name the rule before visiting so that recursive references find it.
  const std::string name = fresh_name("ref-" + ref.substr(ref.rfind('/') + 1));
  refs_[ref] = name;
  rules_[name] = "";
  rules_[name] = visit(*target, path + "($ref " + ref + ")", depth + 1);
  return name;
}

// minimum / maximum / exclusiveMinimum / exclusiveMaximum (a number, or draft 4's boolean beside minimum).
std::string SchemaGrammarWriter::number_rule(const SchemaJson& s, bool integer, const std::string& path) {
  struct Bound {
    std::optional<double> value;
    bool exclusive = false;
    const char* keyword = "";
  };
  // Both forms may be given; the tighter one holds.
  const auto read = [&](const char* inclusive, const char* exclusive, bool lower) {
    Bound b;
    if (const auto it = s.find(inclusive); it != s.end()) {
      if (!it->is_number()) fail(path, inclusive, "must be a number");
      b = {it->get<double>(), false, inclusive};
    }
    if (const auto it = s.find(exclusive); it != s.end()) {
      if (it->is_boolean()) {
        b.exclusive = it->get<bool>() && b.value;
      } else if (it->is_number()) {
        const double v = it->get<double>();
        if (!b.value || (lower ? v >= *b.value : v <= *b.value)) {
          b = {v, true, exclusive};
        }
      } else {
        fail(path, exclusive, "must be a number");
      }
    }
    return b;
  };
  const Bound lo = read("minimum", "exclusiveMinimum", true), hi = read("maximum", "exclusiveMaximum", false);
  if (!lo.value && !hi.value) return primitive(integer ? "json-integer" : "json-number");
  const auto limit = static_cast<double>(kMaxJsonInteger);
  std::optional<int64_t> a, b;
  if (integer) {
    if (lo.value) a = static_cast<int64_t>(std::max(-limit, lo.exclusive ? std::floor(*lo.value) + 1 : std::ceil(*lo.value)));
    if (hi.value) b = static_cast<int64_t>(std::min(limit, hi.exclusive ? std::ceil(*hi.value) - 1 : std::floor(*hi.value)));
  } else {
    // Decimal numbers between whole bounds; anything finer is beyond this grammar.
    for (const Bound* bound : {&lo, &hi}) {
      if (!bound->value) continue;
      const bool whole = std::floor(*bound->value) == *bound->value && std::fabs(*bound->value) <= limit;
      if (bound->exclusive || !whole) {
        if (options_.ignore_unsupported) return primitive("json-number");
        fail(path, bound->keyword, bound->exclusive ? "is not supported for numbers (integers only)"
                                                    : "is supported for numbers with whole values only");
      }
    }
    if (lo.value) a = static_cast<int64_t>(*lo.value);
    if (hi.value) b = static_cast<int64_t>(*hi.value);
  }
  if ((a && *a > static_cast<int64_t>(limit)) || (b && *b < -static_cast<int64_t>(limit)) || (a && b && *a > *b)) {
    fail(path, lo.value ? lo.keyword : hi.keyword, "leaves no value within the bounds");
  }
  if (integer) return integer_range_gbnf(a, b);
  return number_range_gbnf(a, b, "( \".\" [0-9]{1,16} )?");
}

std::string SchemaGrammarWriter::string_rule(const SchemaJson& s, const std::string& path) {
  const int min = bound(s, "minLength", path, 0);
  const int max = bound(s, "maxLength", path, -1);
  if (max >= 0 && min > max) fail(path, "minLength", "is larger than maxLength");
  primitive("json-string");
  if (min == 0 && max < 0) return "json-string";
  return "\"\\\"\" json-char" + repeat_suffix(min, max) + " \"\\\"\"";
}

std::string SchemaGrammarWriter::array_rule(const SchemaJson& s, const std::string& path, int depth) {
  const int min = bound(s, "minItems", path, 0);
  const int max = bound(s, "maxItems", path, -1);
  if (max >= 0 && min > max) fail(path, "minItems", "is larger than maxItems");
  const auto items = s.find("items");
  if (items != s.end() && items->is_array()) fail(path, "items", "as an array (tuple form) is not supported");
  const std::string ws = primitive("ws");
  if (max == 0) return "\"[\" " + ws + " \"]\"";
  const std::string item =
      items == s.end() ? primitive("json-value") : define("item", visit(*items, path + ".items", depth + 1));
  const std::string more = "( " + ws + " \",\" " + ws + " " + item + " )" +
                           repeat_suffix(std::max(0, min - 1), max < 0 ? -1 : max - 1);
  const std::string list = item + " " + more + " " + ws;
  if (min == 0) return "\"[\" " + ws + " ( " + list + " )? \"]\"";
  return "\"[\" " + ws + " " + list + " \"]\"";
}

std::string SchemaGrammarWriter::object_rule(const SchemaJson& s, const std::string& path, int depth) {
  const std::string ws = primitive("ws");
  SchemaJson properties = SchemaJson::object();
  if (const auto it = s.find("properties"); it != s.end()) {
    if (!it->is_object()) fail(path, "properties", "must be an object");
    properties = *it;
  }
  const SchemaJson* additional = nullptr;
  if (const auto it = s.find("additionalProperties"); it != s.end()) additional = &*it;
  const bool closed = additional && additional->is_boolean() && !additional->get<bool>();
  std::set<std::string> required;
  if (const auto it = s.find("required"); it != s.end()) {
    if (!it->is_array()) fail(path, "required", "must be an array of names");
    for (const auto& name : *it) {
      if (!name.is_string()) fail(path, "required", "must be an array of names");
      const std::string n = name.get<std::string>();
      required.insert(n);
      if (!properties.contains(n)) {
        if (closed) fail(path, "required", "names '" + n + "', which additionalProperties false forbids");
        properties[n] = additional && additional->is_object() ? *additional : SchemaJson(true);
      }
    }
  }
  if (properties.empty()) {
    if (!additional || (additional->is_boolean() && additional->get<bool>())) return primitive("json-object");
    if (closed) return "\"{\" " + ws + " \"}\"";
    const std::string value = define("additional", visit(*additional, path + ".additionalProperties", depth + 1));
    const std::string member = primitive("json-string") + " " + ws + " \":\" " + ws + " " + value;
    return "\"{\" " + ws + " ( " + member + " ( " + ws + " \",\" " + ws + " " + member + " )* " + ws + " )? \"}\"";
  }
  // first[i]: the first member written is property i or a later one; after[i]: members from i on, each after a comma.
  const size_t n = properties.size();
  std::vector<std::string> member(n), optional(n);
  size_t i = 0;
  for (const auto& [name, sub] : properties.items()) {
    const std::string value = define("prop-" + name, visit(sub, path + ".properties." + name, depth + 1));
    member[i] = literal(SchemaJson(name).dump()) + " " + ws + " \":\" " + ws + " " + value;
    optional[i] = required.contains(name) ? "" : "y";
    ++i;
  }
  const std::string base = fresh_name("obj");
  std::vector<std::string> after(n + 1), first(n);
  after[n] = "";
  for (size_t k = n; k-- > 0;) {
    const std::string tail = after[k + 1].empty() ? "" : " " + after[k + 1];
    const std::string with = ws + " \",\" " + ws + " " + member[k] + tail;
    const std::string body = optional[k].empty() ? with : "( " + with + " )" + (tail.empty() ? "?" : " |" + tail);
    after[k] = define(base + "-after", body);
  }
  for (size_t k = n; k-- > 0;) {
    const std::string tail = after[k + 1].empty() ? "" : " " + after[k + 1];
    std::string body = member[k] + tail;
    if (!optional[k].empty() && k + 1 < n) body += " | " + first[k + 1];
    first[k] = define(base + "-first", body);
  }
  const bool all_optional = std::none_of(optional.begin(), optional.end(), [](const std::string& o) { return o.empty(); });
  std::string expr = "\"{\" " + ws + " " + first[0] + " " + ws + " \"}\"";
  if (all_optional) expr = "( " + expr + " | \"{\" " + ws + " \"}\" )";
  return expr;
}

}  // namespace pensieve::grammar
