// jinja2's filters and tests, with HF's tojson (ensure_ascii off, Python json.dumps separators).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <unordered_map>

#include "chat/builtins.h"
#include "chat/template_error.h"

namespace pensieve::chat {

namespace {

using Filter = Value (*)(const Value& input, const CallArgs& args);
using Test = bool (*)(const Value& input, const CallArgs& args);

const Value* arg(const CallArgs& args, size_t pos, std::string_view name) { return args.get(pos, name); }

bool flag(const CallArgs& args, size_t pos, std::string_view name, bool fallback) {
  const Value* v = arg(args, pos, name);
  return v ? truthy(*v) : fallback;
}

int64_t int_arg(const CallArgs& args, size_t pos, std::string_view name, int64_t fallback) {
  const Value* v = arg(args, pos, name);
  if (!v || v->is_none()) return fallback;
  if (!v->is_int() && !v->is_bool()) fail_runtime("TypeError", std::string(name) + " must be an integer");
  return v->as_int();
}

std::string string_arg(const CallArgs& args, size_t pos, std::string_view name, std::string fallback) {
  const Value* v = arg(args, pos, name);
  return v ? to_str(*v) : fallback;
}

const Value& required(const CallArgs& args, size_t pos, std::string_view name, std::string_view filter) {
  const Value* v = arg(args, pos, name);
  if (!v) fail_runtime("TypeError", std::string(filter) + " is missing argument '" + std::string(name) + "'");
  return *v;
}

// jinja2 walks "a.b.0" with item access first, then attributes.
Value lookup_attribute(const Value& item, const std::string& path) {
  Value current = item;
  size_t start = 0;
  while (start <= path.size()) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (current.is_undefined()) return current;
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    current = numeric ? get_item(current, Value(static_cast<int64_t>(std::stoll(part)))) : get_item(current, Value(part));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return current;
}

// Lower-cases strings so that sort/unique/dictsort compare case-insensitively, as jinja2 does by default.
Value fold_case(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value(ascii_lower(v.str()));
  return v;
}

std::vector<Value> items_of(const Value& v) {
  std::vector<Value> pairs;
  for (const auto& [k, val] : v.dict()->entries) pairs.push_back(make_list({Value(k), val}, true));
  return pairs;
}

CallArgs rest_args(const CallArgs& args, size_t skip) {
  CallArgs rest;
  for (size_t i = skip; i < args.positional.size(); ++i) rest.positional.push_back(args.positional[i]);
  rest.keyword = args.keyword;
  return rest;
}

// select/reject/selectattr/rejectattr share this: keep items whose (attribute's) test result equals `keep`.
Value select_items(const Value& input, const CallArgs& args, bool by_attribute, bool keep) {
  size_t next = 0;
  std::string attribute;
  if (by_attribute) attribute = to_str(required(args, next++, "attribute", "selectattr"));
  const Value* test_name = next < args.positional.size() ? &args.positional[next] : nullptr;
  CallArgs test_args = rest_args(args, next + 1);
  std::vector<Value> out;
  for (const Value& item : iterate(input)) {
    Value subject = by_attribute ? lookup_attribute(item, attribute) : item;
    bool passed = test_name ? apply_test(to_str(*test_name), subject, test_args) : truthy(subject);
    if (passed == keep) out.push_back(item);
  }
  return make_list(std::move(out));
}

std::vector<Value> sorted(std::vector<Value> items, bool reverse, bool case_sensitive, const std::string& attribute) {
  auto key = [&](const Value& v) { return fold_case(attribute.empty() ? v : lookup_attribute(v, attribute), case_sensitive); };
  std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
    return reverse ? less_than(key(b), key(a)) : less_than(key(a), key(b));
  });
  return items;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Value filter_tojson(const Value& input, const CallArgs& args) {
  // HF's signature: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
  JsonDumpOptions o;
  o.ensure_ascii = flag(args, 0, "ensure_ascii", false);
  o.indent = static_cast<int>(int_arg(args, 1, "indent", -1));
  if (o.indent >= 0) o.item_separator = ",";
  if (const Value* seps = arg(args, 2, "separators"); seps && !seps->is_none()) {
    auto parts = iterate(*seps);
    if (parts.size() != 2) fail_runtime("ValueError", "separators must be a pair of strings");
    o.item_separator = to_str(parts[0]);
    o.key_separator = to_str(parts[1]);
  }
  o.sort_keys = flag(args, 3, "sort_keys", false);
  return Value(to_json(input, o));
}

Value filter_default(const Value& input, const CallArgs& args) {
  bool use_default = input.is_undefined() || (flag(args, 1, "boolean", false) && !truthy(input));
  if (!use_default) return input;
  const Value* d = arg(args, 0, "default_value");
  return d ? *d : Value("");
}

Value filter_length(const Value& input, const CallArgs&) {
  if (input.is_string()) return Value(static_cast<int64_t>(utf8_length(input.str())));
  if (input.is_list()) return Value(static_cast<int64_t>(input.list()->items.size()));
  if (input.is_dict()) return Value(static_cast<int64_t>(input.dict()->entries.size()));
  if (input.is_undefined()) return Value(int64_t{0});
  fail_runtime("TypeError", "object of type '" + type_name(input) + "' has no len()");
}

Value filter_join(const Value& input, const CallArgs& args) {
  std::string sep = string_arg(args, 0, "d", "");
  const Value* attribute = arg(args, 1, "attribute");
  std::string out;
  bool first = true;
  for (const Value& item : iterate(input)) {
    if (!first) out += sep;
    first = false;
    out += to_str(attribute ? lookup_attribute(item, to_str(*attribute)) : item);
  }
  return Value(out);
}

Value filter_map(const Value& input, const CallArgs& args) {
  std::vector<Value> out;
  if (const Value* attribute = args.find_keyword("attribute")) {
    const Value* fallback = args.find_keyword("default");
    for (const Value& item : iterate(input)) {
      Value v = lookup_attribute(item, to_str(*attribute));
      out.push_back(v.is_undefined() && fallback ? *fallback : v);
    }
    return make_list(std::move(out));
  }
  std::string filter = to_str(required(args, 0, "filter", "map"));
  CallArgs filter_args = rest_args(args, 1);
  for (const Value& item : iterate(input)) out.push_back(apply_filter(filter, item, filter_args));
  return make_list(std::move(out));
}

Value filter_first(const Value& input, const CallArgs&) {
  auto items = iterate(input);
  if (items.empty()) return Value(Undefined{"No first item, sequence was empty."});
  return items.front();
}

Value filter_last(const Value& input, const CallArgs&) {
  auto items = iterate(input);
  if (items.empty()) return Value(Undefined{"No last item, sequence was empty."});
  return items.back();
}

Value filter_int(const Value& input, const CallArgs& args) {
  const Value fallback = Value(int_arg(args, 0, "default", 0));
  if (input.is_int() || input.is_bool()) return Value(input.as_int());
  if (input.is_float()) return Value(static_cast<int64_t>(input.as_double()));
  if (input.is_string()) {
    std::string s = py_strip(input.str(), std::nullopt, true, true);
    char* end = nullptr;
    long long i = std::strtoll(s.c_str(), &end, static_cast<int>(int_arg(args, 1, "base", 10)));
    if (!s.empty() && end == s.c_str() + s.size()) return Value(static_cast<int64_t>(i));
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size()) return Value(static_cast<int64_t>(d));
  }
  return fallback;
}

Value filter_float(const Value& input, const CallArgs& args) {
  const Value* fallback = arg(args, 0, "default");
  if (input.is_number()) return Value(input.as_double());
  if (input.is_string()) {
    std::string s = py_strip(input.str(), std::nullopt, true, true);
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size()) return Value(d);
  }
  return fallback ? *fallback : Value(0.0);
}

Value filter_round(const Value& input, const CallArgs& args) {
  if (!input.is_number()) fail_runtime("TypeError", "round needs a number, got " + type_name(input));
  int64_t precision = int_arg(args, 0, "precision", 0);
  std::string method = string_arg(args, 1, "method", "common");
  if (method == "common" && precision >= 0 && precision < 100) {
    // Python's round(): the exact binary value rounded half-to-even, which glibc's printf also does.
    char buf[512];
    std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(precision), input.as_double());
    return Value(std::strtod(buf, nullptr));
  }
  double scale = std::pow(10.0, static_cast<double>(precision));
  double x = input.as_double() * scale;
  double r = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::nearbyint(x);
  return Value(r / scale);
}

Value filter_indent(const Value& input, const CallArgs& args) {
  const Value* width = arg(args, 0, "width");
  std::string indention = width && width->is_string() ? width->str() : std::string(static_cast<size_t>(width ? width->as_int() : 4), ' ');
  bool first = flag(args, 1, "first", false);
  bool blank = flag(args, 2, "blank", false);
  std::string s = to_str(input) + "\n";
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < s.size()) {
    size_t nl = s.find('\n', start);
    lines.push_back(s.substr(start, nl - start));
    start = nl + 1;
  }
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) out += "\n";
    if (i == 0 || (!blank && lines[i].empty())) {
      out += lines[i];
    } else {
      out += indention + lines[i];
    }
  }
  return Value(first ? indention + out : out);
}

Value filter_unique(const Value& input, const CallArgs& args) {
  bool case_sensitive = flag(args, 0, "case_sensitive", false);
  const Value* attribute = arg(args, 1, "attribute");
  std::vector<Value> out, seen;
  for (const Value& item : iterate(input)) {
    Value key = fold_case(attribute ? lookup_attribute(item, to_str(*attribute)) : item, case_sensitive);
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, key); })) continue;
    seen.push_back(key);
    out.push_back(item);
  }
  return make_list(std::move(out));
}

Value filter_sort(const Value& input, const CallArgs& args) {
  const Value* attribute = arg(args, 2, "attribute");
  return make_list(sorted(iterate(input), flag(args, 0, "reverse", false), flag(args, 1, "case_sensitive", false),
                          attribute ? to_str(*attribute) : ""));
}

Value filter_dictsort(const Value& input, const CallArgs& args) {
  if (!input.is_dict()) fail_runtime("TypeError", "dictsort needs a dict");
  bool case_sensitive = flag(args, 0, "case_sensitive", false);
  std::string by = string_arg(args, 1, "by", "key");
  bool reverse = flag(args, 2, "reverse", false);
  return make_list(sorted(items_of(input), reverse, case_sensitive, by == "value" ? "1" : "0"));
}

Value filter_reverse(const Value& input, const CallArgs&) {
  if (input.is_string()) {
    auto chars = utf8_chars(input.str());
    std::string out;
    for (auto it = chars.rbegin(); it != chars.rend(); ++it) out += *it;
    return Value(out);
  }
  auto items = iterate(input);
  std::reverse(items.begin(), items.end());
  return make_list(std::move(items));
}

Value filter_items(const Value& input, const CallArgs&) {
  if (input.is_undefined()) return make_list();
  if (!input.is_dict()) fail_runtime("TypeError", "Can only get item pairs from a mapping.");
  return make_list(items_of(input));
}

Value filter_batch(const Value& input, const CallArgs& args) {
  int64_t size = int_arg(args, 0, "linecount", 1);
  if (size <= 0) fail_runtime("ValueError", "batch size must be positive");
  const Value* fill = arg(args, 1, "fill_with");
  std::vector<Value> batches, current;
  for (const Value& item : iterate(input)) {
    current.push_back(item);
    if (static_cast<int64_t>(current.size()) == size) batches.push_back(make_list(std::exchange(current, {})));
  }
  if (!current.empty()) {
    while (fill && !fill->is_none() && static_cast<int64_t>(current.size()) < size) current.push_back(*fill);
    batches.push_back(make_list(std::move(current)));
  }
  return make_list(std::move(batches));
}

Value filter_sum(const Value& input, const CallArgs& args) {
  const Value* attribute = arg(args, 0, "attribute");
  Value total = arg(args, 1, "start") ? *arg(args, 1, "start") : Value(int64_t{0});
  for (const Value& item : iterate(input)) {
    Value v = attribute ? lookup_attribute(item, to_str(*attribute)) : item;
    if (!v.is_number() || !total.is_number()) fail_runtime("TypeError", "sum needs numbers");
    total = (v.is_float() || total.is_float()) ? Value(total.as_double() + v.as_double()) : Value(total.as_int() + v.as_int());
  }
  return total;
}

Value extreme(const Value& input, const CallArgs& args, bool want_max) {
  auto items = sorted(iterate(input), false, flag(args, 0, "case_sensitive", false),
                      arg(args, 1, "attribute") ? to_str(*arg(args, 1, "attribute")) : "");
  if (items.empty()) return Value(Undefined{"No aggregated item, sequence was empty."});
  return want_max ? items.back() : items.front();
}

Value filter_center(const Value& input, const CallArgs& args) {
  std::string s = to_str(input);
  int64_t width = int_arg(args, 0, "width", 80);
  int64_t len = static_cast<int64_t>(utf8_length(s));
  if (width <= len) return Value(s);
  // Python's str.center puts the odd extra space on the right unless the width is odd and the text even.
  int64_t total = width - len;
  int64_t left = total / 2 + (total & width & 1);
  return Value(std::string(static_cast<size_t>(left), ' ') + s + std::string(static_cast<size_t>(total - left), ' '));
}

Value filter_wordcount(const Value& input, const CallArgs&) {
  CallArgs none;
  return Value(static_cast<int64_t>(get_attribute(Value(to_str(input)), "split").callable()->call(none).list()->items.size()));
}

const std::unordered_map<std::string_view, Filter>& filters() {
  static const std::unordered_map<std::string_view, Filter> table = {
      {"tojson", filter_tojson},
      {"default", filter_default},
      {"d", filter_default},
      {"length", filter_length},
      {"count", filter_length},
      {"join", filter_join},
      {"map", filter_map},
      {"select", [](const Value& in, const CallArgs& a) { return select_items(in, a, false, true); }},
      {"reject", [](const Value& in, const CallArgs& a) { return select_items(in, a, false, false); }},
      {"selectattr", [](const Value& in, const CallArgs& a) { return select_items(in, a, true, true); }},
      {"rejectattr", [](const Value& in, const CallArgs& a) { return select_items(in, a, true, false); }},
      {"first", filter_first},
      {"last", filter_last},
      {"list", [](const Value& in, const CallArgs&) { return make_list(iterate(in)); }},
      {"string", [](const Value& in, const CallArgs&) { return Value(to_str(in)); }},
      {"safe", [](const Value& in, const CallArgs&) { return in; }},
      {"escape", [](const Value& in, const CallArgs&) { return Value(html_escape(to_str(in))); }},
      {"e", [](const Value& in, const CallArgs&) { return Value(html_escape(to_str(in))); }},
      {"trim", [](const Value& in, const CallArgs& a) {
         const Value* chars = arg(a, 0, "chars");
         return Value(py_strip(to_str(in), chars && !chars->is_none() ? std::optional(to_str(*chars)) : std::nullopt, true, true));
       }},
      {"upper", [](const Value& in, const CallArgs&) { return Value(ascii_upper(to_str(in))); }},
      {"lower", [](const Value& in, const CallArgs&) { return Value(ascii_lower(to_str(in))); }},
      {"capitalize", [](const Value& in, const CallArgs& a) {
         CallArgs r = a;
         return get_attribute(Value(to_str(in)), "capitalize").callable()->call(r);
       }},
      {"title", [](const Value& in, const CallArgs& a) {
         CallArgs r = a;
         return get_attribute(Value(to_str(in)), "title").callable()->call(r);
       }},
      {"replace", [](const Value& in, const CallArgs& a) {
         CallArgs r = a;
         return get_attribute(Value(to_str(in)), "replace").callable()->call(r);
       }},
      {"int", filter_int},
      {"float", filter_float},
      {"abs", [](const Value& in, const CallArgs&) {
         if (in.is_float()) return Value(std::fabs(in.as_double()));
         if (in.is_int() || in.is_bool()) return Value(static_cast<int64_t>(std::llabs(in.as_int())));
         fail_runtime("TypeError", "bad operand type for abs(): '" + type_name(in) + "'");
       }},
      {"round", filter_round},
      {"indent", filter_indent},
      {"unique", filter_unique},
      {"sort", filter_sort},
      {"dictsort", filter_dictsort},
      {"reverse", filter_reverse},
      {"items", filter_items},
      {"batch", filter_batch},
      {"sum", filter_sum},
      {"max", [](const Value& in, const CallArgs& a) { return extreme(in, a, true); }},
      {"min", [](const Value& in, const CallArgs& a) { return extreme(in, a, false); }},
      {"center", filter_center},
      {"wordcount", filter_wordcount},
      {"attr", [](const Value& in, const CallArgs& a) {
         if (in.is_undefined()) fail_undefined(std::get<Undefined>(in.data));
         return get_attribute(in, to_str(required(a, 0, "name", "attr")));
       }},
  };
  return table;
}

bool is_integer(const Value& v) { return v.is_int(); }

int64_t require_integer(const Value& v, std::string_view test) {
  if (v.is_undefined()) fail_undefined(std::get<Undefined>(v.data));
  if (!v.is_int() && !v.is_bool()) fail_runtime("TypeError", std::string(test) + " test needs an integer");
  return v.as_int();
}

bool same_object(const Value& a, const Value& b) {
  if (a.data.index() != b.data.index()) return false;
  if (a.is_list()) return a.list() == b.list();
  if (a.is_dict()) return a.dict() == b.dict();
  return equals(a, b);
}

const std::unordered_map<std::string_view, Test>& tests() {
  static const std::unordered_map<std::string_view, Test> table = {
      {"defined", [](const Value& v, const CallArgs&) { return !v.is_undefined(); }},
      {"undefined", [](const Value& v, const CallArgs&) { return v.is_undefined(); }},
      {"none", [](const Value& v, const CallArgs&) { return v.is_none(); }},
      {"boolean", [](const Value& v, const CallArgs&) { return v.is_bool(); }},
      {"true", [](const Value& v, const CallArgs&) { return v.is_bool() && std::get<bool>(v.data); }},
      {"false", [](const Value& v, const CallArgs&) { return v.is_bool() && !std::get<bool>(v.data); }},
      {"integer", [](const Value& v, const CallArgs&) { return is_integer(v); }},
      {"float", [](const Value& v, const CallArgs&) { return v.is_float(); }},
      {"number", [](const Value& v, const CallArgs&) { return v.is_number(); }},
      {"string", [](const Value& v, const CallArgs&) { return v.is_string(); }},
      {"mapping", [](const Value& v, const CallArgs&) { return v.is_dict(); }},
      {"iterable", [](const Value& v, const CallArgs&) { return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined(); }},
      {"sequence", [](const Value& v, const CallArgs&) { return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined(); }},
      {"callable", [](const Value& v, const CallArgs&) { return v.is_callable(); }},
      {"odd", [](const Value& v, const CallArgs&) { return require_integer(v, "odd") % 2 != 0; }},
      {"even", [](const Value& v, const CallArgs&) { return require_integer(v, "even") % 2 == 0; }},
      {"divisibleby", [](const Value& v, const CallArgs& a) {
         int64_t d = require_integer(required(a, 0, "num", "divisibleby"), "divisibleby");
         if (d == 0) fail_runtime("ZeroDivisionError", "integer division or modulo by zero");
         return require_integer(v, "divisibleby") % d == 0;
       }},
      {"eq", [](const Value& v, const CallArgs& a) { return equals(v, required(a, 0, "other", "eq")); }},
      {"equalto", [](const Value& v, const CallArgs& a) { return equals(v, required(a, 0, "other", "equalto")); }},
      {"==", [](const Value& v, const CallArgs& a) { return equals(v, required(a, 0, "other", "==")); }},
      {"ne", [](const Value& v, const CallArgs& a) { return !equals(v, required(a, 0, "other", "ne")); }},
      {"!=", [](const Value& v, const CallArgs& a) { return !equals(v, required(a, 0, "other", "!=")); }},
      {"lt", [](const Value& v, const CallArgs& a) { return less_than(v, required(a, 0, "other", "lt")); }},
      {"<", [](const Value& v, const CallArgs& a) { return less_than(v, required(a, 0, "other", "<")); }},
      {"gt", [](const Value& v, const CallArgs& a) { return less_than(required(a, 0, "other", "gt"), v); }},
      {">", [](const Value& v, const CallArgs& a) { return less_than(required(a, 0, "other", ">"), v); }},
      {"le", [](const Value& v, const CallArgs& a) { return !less_than(required(a, 0, "other", "le"), v); }},
      {"<=", [](const Value& v, const CallArgs& a) { return !less_than(required(a, 0, "other", "<="), v); }},
      {"ge", [](const Value& v, const CallArgs& a) { return !less_than(v, required(a, 0, "other", "ge")); }},
      {">=", [](const Value& v, const CallArgs& a) { return !less_than(v, required(a, 0, "other", ">=")); }},
      {"in", [](const Value& v, const CallArgs& a) { return contains(required(a, 0, "seq", "in"), v); }},
      {"sameas", [](const Value& v, const CallArgs& a) { return same_object(v, required(a, 0, "other", "sameas")); }},
      {"lower", [](const Value& v, const CallArgs&) {
         std::string s = to_str(v);
         return ascii_lower(s) == s && ascii_upper(s) != s;
       }},
      {"upper", [](const Value& v, const CallArgs&) {
         std::string s = to_str(v);
         return ascii_upper(s) == s && ascii_lower(s) != s;
       }},
      {"escaped", [](const Value&, const CallArgs&) { return false; }},
      {"filter", [](const Value& v, const CallArgs&) { return v.is_string() && filters().count(v.str()) != 0; }},
      {"test", [](const Value& v, const CallArgs&) { return v.is_string() && tests().count(v.str()) != 0; }},
  };
  return table;
}

}  // namespace

Value apply_filter(std::string_view name, const Value& input, const CallArgs& args) {
  auto it = filters().find(name);
  if (it == filters().end()) fail_runtime("TemplateAssertionError", "No filter named '" + std::string(name) + "'.");
  return it->second(input, args);
}

bool apply_test(std::string_view name, const Value& input, const CallArgs& args) {
  auto it = tests().find(name);
  if (it == tests().end()) fail_runtime("TemplateAssertionError", "No test named '" + std::string(name) + "'.");
  return it->second(input, args);
}

}  // namespace pensieve::chat
