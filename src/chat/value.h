#pragma once
// The values a template computes with, modelled on the Python objects jinja2 handles: Undefined, None, bool,
// int, float, str, list/tuple, dict (insertion ordered), namespace and callables. Lists, dicts and namespaces
// are shared by reference, as in Python, so `ns.x = ...` is seen by everyone holding the namespace.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace pensieve::chat {

struct Value;

// jinja2's default Undefined: prints as "", iterates as empty, is falsy, but fails on attribute access,
// calls and arithmetic. `hint` says why it is undefined, for the error message.
struct Undefined {
  std::string hint;
};
struct None {};

struct ListObject {
  std::vector<Value> items;
  bool is_tuple = false;  // only changes how it prints
};

struct DictObject {
  std::vector<std::pair<std::string, Value>> entries;  // insertion order, keys unique

  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  void set(std::string key, Value value);
};

// namespace(): the one object a template may assign attributes on.
struct NamespaceObject {
  DictObject attributes;
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;

  const Value* find_keyword(std::string_view name) const;
  // Argument by position or by keyword name; nullptr when absent.
  const Value* get(size_t position, std::string_view name) const;
};

struct Callable {
  std::string name;
  std::function<Value(CallArgs&)> call;
};

using ListPtr = std::shared_ptr<ListObject>;
using DictPtr = std::shared_ptr<DictObject>;
using NamespacePtr = std::shared_ptr<NamespaceObject>;
using CallablePtr = std::shared_ptr<Callable>;

struct Value {
  using Storage = std::variant<Undefined, None, bool, int64_t, double, std::string, ListPtr, DictPtr, NamespacePtr,
                               CallablePtr>;
  Storage data;

  Value() : data(Undefined{}) {}
  Value(None) : data(None{}) {}
  Value(Undefined u) : data(std::move(u)) {}
  Value(bool b) : data(b) {}
  Value(int i) : data(int64_t{i}) {}
  Value(int64_t i) : data(i) {}
  Value(double d) : data(d) {}
  Value(std::string s) : data(std::move(s)) {}
  Value(const char* s) : data(std::string(s)) {}
  Value(std::string_view s) : data(std::string(s)) {}
  Value(ListPtr l) : data(std::move(l)) {}
  Value(DictPtr d) : data(std::move(d)) {}
  Value(NamespacePtr n) : data(std::move(n)) {}
  Value(CallablePtr c) : data(std::move(c)) {}

  bool is_undefined() const { return std::holds_alternative<Undefined>(data); }
  bool is_none() const { return std::holds_alternative<None>(data); }
  bool is_bool() const { return std::holds_alternative<bool>(data); }
  bool is_int() const { return std::holds_alternative<int64_t>(data); }
  bool is_float() const { return std::holds_alternative<double>(data); }
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  bool is_string() const { return std::holds_alternative<std::string>(data); }
  bool is_list() const { return std::holds_alternative<ListPtr>(data); }
  bool is_dict() const { return std::holds_alternative<DictPtr>(data); }
  bool is_namespace() const { return std::holds_alternative<NamespacePtr>(data); }
  bool is_callable() const { return std::holds_alternative<CallablePtr>(data); }

  const std::string& str() const { return std::get<std::string>(data); }
  const ListPtr& list() const { return std::get<ListPtr>(data); }
  const DictPtr& dict() const { return std::get<DictPtr>(data); }
  const NamespacePtr& ns() const { return std::get<NamespacePtr>(data); }
  const CallablePtr& callable() const { return std::get<CallablePtr>(data); }
  int64_t as_int() const;     // bool or int (callers check is_int()/is_bool() first)
  double as_double() const;   // bool, int or float
};

Value make_list(std::vector<Value> items = {}, bool is_tuple = false);
Value make_dict(DictObject dict = {});
Value make_callable(std::string name, std::function<Value(CallArgs&)> call);

// Python's type name, as error messages use it: "str", "list", "dict", "NoneType", ...
std::string type_name(const Value& v);

bool truthy(const Value& v);                          // Python truthiness; Undefined is false
bool equals(const Value& a, const Value& b);          // Python ==
// Python <, for numbers, strings and lists; throws TemplateError for other pairs.
bool less_than(const Value& a, const Value& b);

std::string to_str(const Value& v);   // Python str(); Undefined prints as ""
std::string to_repr(const Value& v);  // Python repr()
std::string float_repr(double d);     // Python's shortest round-trip float repr: 1.0, 0.1, 1e+16

// The elements a `for` loop visits: list items, dict keys, string characters; Undefined gives none.
std::vector<Value> iterate(const Value& v);

struct JsonDumpOptions {
  int indent = -1;  // < 0: single line
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
  bool ensure_ascii = false;
};
// Python json.dumps with the given options; throws TemplateError for values JSON cannot hold.
std::string to_json(const Value& v, const JsonDumpOptions& options);

// The deepest JSON from_json converts; deeper is a TemplateError (Runtime), not a stack overflow.
constexpr int kMaxJsonDepth = 1000;
Value from_json(const nlohmann::ordered_json& j);
Value from_json(const nlohmann::json& j);

// UTF-8 helpers: Python strings count code points, not bytes.
std::vector<std::string_view> utf8_chars(std::string_view s);
size_t utf8_length(std::string_view s);

}  // namespace pensieve::chat
