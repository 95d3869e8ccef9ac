#include "chat/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "chat/template_error.h"

namespace pensieve::chat {

namespace {

[[noreturn]] void type_error(const std::string& message) {
  throw TemplateError(TemplateError::Kind::Runtime, "TypeError: " + message);
}

}  // namespace

const Value* DictObject::find(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k == key) return &v;
  }
  return nullptr;
}

Value* DictObject::find(std::string_view key) {
  for (auto& [k, v] : entries) {
    if (k == key) return &v;
  }
  return nullptr;
}

void DictObject::set(std::string key, Value value) {
  if (Value* existing = find(key)) {
    *existing = std::move(value);
  } else {
    entries.emplace_back(std::move(key), std::move(value));
  }
}

const Value* CallArgs::find_keyword(std::string_view name) const {
  for (const auto& [k, v] : keyword) {
    if (k == name) return &v;
  }
  return nullptr;
}

const Value* CallArgs::get(size_t position, std::string_view name) const {
  if (position < positional.size()) return &positional[position];
  return find_keyword(name);
}

int64_t Value::as_int() const {
  if (is_bool()) return std::get<bool>(data) ? 1 : 0;
  return std::get<int64_t>(data);
}

double Value::as_double() const {
  if (is_float()) return std::get<double>(data);
  return static_cast<double>(as_int());
}

Value make_list(std::vector<Value> items, bool is_tuple) {
  auto list = std::make_shared<ListObject>();
  list->items = std::move(items);
  list->is_tuple = is_tuple;
  return Value(std::move(list));
}

Value make_dict(DictObject dict) { return Value(std::make_shared<DictObject>(std::move(dict))); }

Value make_callable(std::string name, std::function<Value(CallArgs&)> call) {
  return Value(std::make_shared<Callable>(Callable{std::move(name), std::move(call)}));
}

std::string type_name(const Value& v) {
  struct Namer {
    std::string operator()(const Undefined&) const { return "Undefined"; }
    std::string operator()(const None&) const { return "NoneType"; }
    std::string operator()(bool) const { return "bool"; }
    std::string operator()(int64_t) const { return "int"; }
    std::string operator()(double) const { return "float"; }
    std::string operator()(const std::string&) const { return "str"; }
    std::string operator()(const ListPtr& l) const { return l->is_tuple ? "tuple" : "list"; }
    std::string operator()(const DictPtr&) const { return "dict"; }
    std::string operator()(const NamespacePtr&) const { return "Namespace"; }
    std::string operator()(const CallablePtr&) const { return "function"; }
  };
  return std::visit(Namer{}, v.data);
}

bool truthy(const Value& v) {
  struct Truth {
    bool operator()(const Undefined&) const { return false; }
    bool operator()(const None&) const { return false; }
    bool operator()(bool b) const { return b; }
    bool operator()(int64_t i) const { return i != 0; }
    bool operator()(double d) const { return d != 0.0; }
    bool operator()(const std::string& s) const { return !s.empty(); }
    bool operator()(const ListPtr& l) const { return !l->items.empty(); }
    bool operator()(const DictPtr& d) const { return !d->entries.empty(); }
    bool operator()(const NamespacePtr&) const { return true; }
    bool operator()(const CallablePtr&) const { return true; }
  };
  return std::visit(Truth{}, v.data);
}

bool equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.data.index() != b.data.index()) return false;
  if (a.is_undefined() || a.is_none()) return true;
  if (a.is_string()) return a.str() == b.str();
  if (a.is_list()) {
    const auto& x = a.list()->items;
    const auto& y = b.list()->items;
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i) {
      if (!equals(x[i], y[i])) return false;
    }
    return true;
  }
  if (a.is_dict()) {
    const auto& x = a.dict()->entries;
    if (x.size() != b.dict()->entries.size()) return false;
    for (const auto& [k, v] : x) {
      const Value* other = b.dict()->find(k);
      if (!other || !equals(v, *other)) return false;
    }
    return true;
  }
  if (a.is_namespace()) return a.ns() == b.ns();
  if (a.is_callable()) return a.callable() == b.callable();
  return false;
}

bool less_than(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() < b.as_double();
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string()) return a.str() < b.str();  // UTF-8 byte order == code point order
  if (a.is_list() && b.is_list()) {
    const auto& x = a.list()->items;
    const auto& y = b.list()->items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (less_than(x[i], y[i])) return true;
      if (less_than(y[i], x[i])) return false;
    }
    return x.size() < y.size();
  }
  type_error("'<' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) + "'");
}

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0.0) return std::signbit(d) ? "-0.0" : "0.0";
  // Shortest round-trip digits, then laid out the way Python's repr does: plain notation for exponents in
  // [-4, 16), scientific with a signed two-digit exponent otherwise.
  char buf[64];
  auto result = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, result.ptr);
  std::string sign;
  if (sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  size_t e_pos = sci.find('e');
  std::string mantissa = sci.substr(0, e_pos);
  int exponent = std::stoi(sci.substr(e_pos + 1));
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits += c;
  }
  if (exponent >= -4 && exponent < 16) {
    std::string out;
    if (exponent < 0) {
      out = "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
    } else if (static_cast<size_t>(exponent) + 1 >= digits.size()) {
      out = digits + std::string(static_cast<size_t>(exponent) + 1 - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, static_cast<size_t>(exponent) + 1) + "." + digits.substr(static_cast<size_t>(exponent) + 1);
    }
    return sign + out;
  }
  std::string out = digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  return sign + out + exp_buf;
}

namespace {

std::string string_repr(const std::string& s) {
  char quote = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
  std::string out(1, quote);
  for (unsigned char c : s) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c == static_cast<unsigned char>(quote)) {
          out += '\\';
          out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
          char hex[8];
          std::snprintf(hex, sizeof hex, "\\x%02x", c);
          out += hex;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += quote;
  return out;
}

std::string sequence_repr(const ListObject& list) {
  std::string out = list.is_tuple ? "(" : "[";
  for (size_t i = 0; i < list.items.size(); ++i) {
    if (i) out += ", ";
    out += to_repr(list.items[i]);
  }
  if (list.is_tuple && list.items.size() == 1) out += ",";
  out += list.is_tuple ? ")" : "]";
  return out;
}

std::string dict_repr(const DictObject& dict) {
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : dict.entries) {
    if (!first) out += ", ";
    first = false;
    out += string_repr(k) + ": " + to_repr(v);
  }
  return out + "}";
}

}  // namespace

std::string to_str(const Value& v) {
  if (v.is_undefined()) return "";
  if (v.is_string()) return v.str();
  return to_repr(v);
}

std::string to_repr(const Value& v) {
  struct Repr {
    std::string operator()(const Undefined&) const { return ""; }
    std::string operator()(const None&) const { return "None"; }
    std::string operator()(bool b) const { return b ? "True" : "False"; }
    std::string operator()(int64_t i) const { return std::to_string(i); }
    std::string operator()(double d) const { return float_repr(d); }
    std::string operator()(const std::string& s) const { return string_repr(s); }
    std::string operator()(const ListPtr& l) const { return sequence_repr(*l); }
    std::string operator()(const DictPtr& d) const { return dict_repr(*d); }
    std::string operator()(const NamespacePtr& n) const { return "<Namespace " + dict_repr(n->attributes) + ">"; }
    std::string operator()(const CallablePtr& c) const { return "<function " + c->name + ">"; }
  };
  return std::visit(Repr{}, v.data);
}

std::vector<std::string_view> utf8_chars(std::string_view s) {
  std::vector<std::string_view> chars;
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 1;
    len = std::min(len, s.size() - i);
    chars.push_back(s.substr(i, len));
    i += len;
  }
  return chars;
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xc0) != 0x80) ++n;
  }
  return n;
}

std::vector<Value> iterate(const Value& v) {
  if (v.is_undefined()) return {};
  if (v.is_list()) return v.list()->items;
  if (v.is_dict()) {
    std::vector<Value> keys;
    keys.reserve(v.dict()->entries.size());
    for (const auto& [k, _] : v.dict()->entries) keys.emplace_back(k);
    return keys;
  }
  if (v.is_string()) {
    std::vector<Value> chars;
    for (auto c : utf8_chars(v.str())) chars.emplace_back(c);
    return chars;
  }
  type_error("'" + type_name(v) + "' object is not iterable");
}

namespace {

void json_string(const std::string& s, bool ensure_ascii, std::string& out) {
  out += '"';
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || (ensure_ascii && c == 0x7f)) {
          char hex[8];
          std::snprintf(hex, sizeof hex, "\\u%04x", c);
          out += hex;
        } else if (ensure_ascii && c >= 0x80) {
          // Decode one code point and write it as \uXXXX (a surrogate pair above the BMP), as Python does.
          auto chars = utf8_chars(std::string_view(s).substr(i));
          std::string_view ch = chars.front();
          uint32_t cp = ch.size() == 1 ? c : ch.size() == 2 ? (c & 0x1f) : ch.size() == 3 ? (c & 0x0f) : (c & 0x07);
          for (size_t k = 1; k < ch.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(ch[k]) & 0x3f);
          char hex[16];
          if (cp >= 0x10000) {
            cp -= 0x10000;
            std::snprintf(hex, sizeof hex, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
          } else {
            std::snprintf(hex, sizeof hex, "\\u%04x", cp);
          }
          out += hex;
          i += ch.size() - 1;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void json_dump(const Value& v, const JsonDumpOptions& o, int depth, std::string& out) {
  auto newline = [&](int level) {
    if (o.indent < 0) return;
    out += '\n';
    out.append(static_cast<size_t>(o.indent * level), ' ');
  };
  // A list a template appended to itself would recurse forever.
  if (depth > kMaxJsonDepth) type_error("value nested too deeply for tojson (or it contains itself)");
  if (v.is_none()) {
    out += "null";
  } else if (v.is_bool()) {
    out += std::get<bool>(v.data) ? "true" : "false";
  } else if (v.is_int()) {
    out += std::to_string(v.as_int());
  } else if (v.is_float()) {
    double d = v.as_double();
    out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d > 0 ? "Infinity" : "-Infinity") : float_repr(d);
  } else if (v.is_string()) {
    json_string(v.str(), o.ensure_ascii, out);
  } else if (v.is_list()) {
    const auto& items = v.list()->items;
    if (items.empty()) {
      out += "[]";
      return;
    }
    out += '[';
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) out += o.item_separator;
      newline(depth + 1);
      json_dump(items[i], o, depth + 1, out);
    }
    newline(depth);
    out += ']';
  } else if (v.is_dict() || v.is_namespace()) {
    const DictObject& dict = v.is_dict() ? *v.dict() : v.ns()->attributes;
    if (dict.entries.empty()) {
      out += "{}";
      return;
    }
    std::vector<const std::pair<std::string, Value>*> entries;
    for (const auto& e : dict.entries) entries.push_back(&e);
    if (o.sort_keys) {
      std::stable_sort(entries.begin(), entries.end(), [](auto* a, auto* b) { return a->first < b->first; });
    }
    out += '{';
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i) out += o.item_separator;
      newline(depth + 1);
      json_string(entries[i]->first, o.ensure_ascii, out);
      out += o.key_separator;
      json_dump(entries[i]->second, o, depth + 1, out);
    }
    newline(depth);
    out += '}';
  } else {
    type_error("Object of type " + type_name(v) + " is not JSON serializable");
  }
}

// Depth-bounded: request data reaches here, and every later walk over the Value (tojson, repr, ==) recurses
// as deep as the Value is, so a bound here bounds them all.
template <typename Json>
Value convert_json(const Json& j, int depth) {
  if (depth > kMaxJsonDepth) {
    type_error("JSON value nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value(None{});
    case nlohmann::json::value_t::boolean: return Value(j.template get<bool>());
    case nlohmann::json::value_t::number_integer: return Value(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      auto u = j.template get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<int64_t>(u));
      return Value(static_cast<double>(u));
    }
    case nlohmann::json::value_t::number_float: return Value(j.template get<double>());
    case nlohmann::json::value_t::string: return Value(j.template get<std::string>());
    case nlohmann::json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(convert_json(e, depth + 1));
      return make_list(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      DictObject dict;
      for (auto it = j.begin(); it != j.end(); ++it) dict.entries.emplace_back(it.key(), convert_json(it.value(), depth + 1));
      return make_dict(std::move(dict));
    }
    default: return Value(None{});
  }
}

}  // namespace

std::string to_json(const Value& v, const JsonDumpOptions& options) {
  std::string out;
  json_dump(v, options, 0, out);
  return out;
}

Value from_json(const nlohmann::ordered_json& j) { return convert_json(j, 0); }
Value from_json(const nlohmann::json& j) { return convert_json(j, 0); }

}  // namespace pensieve::chat
