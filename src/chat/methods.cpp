// Attribute and item access, slicing, `in`, and the Python methods of str, dict and list.
#include <algorithm>
#include <cctype>
#include <cstdint>

#include "chat/builtins.h"
#include "chat/template_error.h"

namespace pensieve::chat {

void fail_runtime(std::string_view kind, const std::string& message) {
  throw TemplateError(TemplateError::Kind::Runtime, std::string(kind) + ": " + message);
}

void fail_undefined(const Undefined& u) {
  if (u.hint.rfind("SecurityError: ", 0) == 0) throw TemplateError(TemplateError::Kind::Runtime, u.hint);
  fail_runtime("UndefinedError", u.hint.empty() ? "value is undefined" : u.hint);
}

namespace {

Value no_attribute(const Value& object, const std::string& name) {
  // Built by appending: GCC 12 reports a false -Wrestrict on the equivalent chain of operator+.
  std::string hint = "'";
  hint.append(type_name(object)).append(" object' has no attribute '").append(name).append("'");
  return Value(Undefined{std::move(hint)});
}

Value unsafe(const Value& object, const std::string& name) {
  return Value(Undefined{"SecurityError: access to attribute '" + name + "' of '" + type_name(object) +
                         "' object is unsafe."});
}

const std::string& require_string(const Value& v, std::string_view what) {
  if (!v.is_string()) fail_runtime("TypeError", std::string(what) + " must be str, not " + type_name(v));
  return v.str();
}

int64_t require_int(const Value& v, std::string_view what) {
  if (!v.is_int() && !v.is_bool()) fail_runtime("TypeError", std::string(what) + " must be an integer");
  return v.as_int();
}

std::optional<std::string> optional_string(const CallArgs& args, size_t pos, std::string_view name) {
  const Value* v = args.get(pos, name);
  if (!v || v->is_none()) return std::nullopt;
  return require_string(*v, name);
}

uint32_t decode(std::string_view ch) {
  unsigned char c = static_cast<unsigned char>(ch[0]);
  uint32_t cp = ch.size() == 1 ? c : ch.size() == 2 ? (c & 0x1f) : ch.size() == 3 ? (c & 0x0f) : (c & 0x07);
  for (size_t k = 1; k < ch.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(ch[k]) & 0x3f);
  return cp;
}

// Python's str.isspace() code points.
bool is_py_space(std::string_view ch) {
  uint32_t cp = decode(ch);
  return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
         cp == 0x3000;
}

// Code point index -> byte offset, clamped like Python's slice bounds.
size_t byte_offset(std::string_view s, int64_t index) {
  size_t len = utf8_length(s);
  if (index < 0) index = std::max<int64_t>(0, static_cast<int64_t>(len) + index);
  index = std::min<int64_t>(index, static_cast<int64_t>(len));
  size_t off = 0;
  for (int64_t n = 0; n < index; ++n) {
    ++off;
    while (off < s.size() && (static_cast<unsigned char>(s[off]) & 0xc0) == 0x80) ++off;
  }
  return off;
}

std::vector<Value> split(const std::string& s, const std::optional<std::string>& sep, int64_t maxsplit) {
  std::vector<Value> parts;
  if (!sep) {
    auto chars = utf8_chars(s);
    size_t i = 0;
    while (i < chars.size()) {
      while (i < chars.size() && is_py_space(chars[i])) ++i;
      if (i == chars.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
        std::string rest;
        for (size_t k = i; k < chars.size(); ++k) rest += chars[k];
        parts.emplace_back(std::move(rest));  // Python keeps the remainder as is
        return parts;
      }
      std::string word;
      while (i < chars.size() && !is_py_space(chars[i])) word += chars[i++];
      parts.emplace_back(std::move(word));
    }
    return parts;
  }
  if (sep->empty()) fail_runtime("ValueError", "empty separator");
  size_t start = 0;
  for (;;) {
    size_t hit = (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) ? std::string::npos
                                                                                     : s.find(*sep, start);
    if (hit == std::string::npos) {
      parts.emplace_back(s.substr(start));
      return parts;
    }
    parts.emplace_back(s.substr(start, hit - start));
    start = hit + sep->size();
  }
}

std::string replace(const std::string& s, const std::string& old, const std::string& with, int64_t count) {
  std::string out;
  if (old.empty()) {
    int64_t done = 0;
    for (auto ch : utf8_chars(s)) {
      if (count < 0 || done < count) {
        out += with;
        ++done;
      }
      out += ch;
    }
    if (count < 0 || done < count) out += with;
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  for (;;) {
    size_t hit = (count >= 0 && done >= count) ? std::string::npos : s.find(old, start);
    if (hit == std::string::npos) break;
    out.append(s, start, hit - start);
    out += with;
    start = hit + old.size();
    ++done;
  }
  out.append(s, start);
  return out;
}

std::string title_case(const std::string& s) {
  std::string out = s;
  bool previous_cased = false;
  for (char& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalpha(u)) {
      c = static_cast<char>(previous_cased ? std::tolower(u) : std::toupper(u));
      previous_cased = true;
    } else {
      previous_cased = false;
    }
  }
  return out;
}

// str.format with {} / {0} / {name} fields and {{ }} escapes; format specs are not supported.
std::string py_format(const std::string& fmt, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (c == '{') {
      size_t close = fmt.find('}', i);
      if (close == std::string::npos) fail_runtime("ValueError", "Single '{' encountered in format string");
      std::string field = fmt.substr(i + 1, close - i - 1);
      if (field.find_first_of(":!") != std::string::npos) {
        fail_runtime("ValueError", "format specs are not supported: {" + field + "}");
      }
      const Value* v = nullptr;
      if (field.empty()) {
        v = auto_index < args.positional.size() ? &args.positional[auto_index] : nullptr;
        ++auto_index;
      } else if (std::all_of(field.begin(), field.end(), [](char d) { return std::isdigit(static_cast<unsigned char>(d)); })) {
        size_t index = std::stoul(field);
        v = index < args.positional.size() ? &args.positional[index] : nullptr;
      } else {
        v = args.find_keyword(field);
      }
      if (!v) fail_runtime("IndexError", "Replacement index out of range for format field {" + field + "}");
      out += to_str(*v);
      i = close;
    } else if (c == '}') {
      fail_runtime("ValueError", "Single '}' encountered in format string");
    } else {
      out += c;
    }
  }
  return out;
}

bool matches_affix(const std::string& s, const Value& affix, bool at_start) {
  auto one = [&](const Value& v) {
    const std::string& a = require_string(v, at_start ? "startswith argument" : "endswith argument");
    if (a.size() > s.size()) return false;
    return at_start ? s.compare(0, a.size(), a) == 0 : s.compare(s.size() - a.size(), a.size(), a) == 0;
  };
  if (affix.is_list()) {
    return std::any_of(affix.list()->items.begin(), affix.list()->items.end(), one);
  }
  return one(affix);
}

Value string_method(const std::string& s, const std::string& name, const CallArgs& args) {
  auto arg = [&](size_t pos, std::string_view kw) -> const Value& {
    const Value* v = args.get(pos, kw);
    if (!v) fail_runtime("TypeError", "str." + name + "() missing argument '" + std::string(kw) + "'");
    return *v;
  };
  if (name == "strip") return Value(py_strip(s, optional_string(args, 0, "chars"), true, true));
  if (name == "lstrip") return Value(py_strip(s, optional_string(args, 0, "chars"), true, false));
  if (name == "rstrip") return Value(py_strip(s, optional_string(args, 0, "chars"), false, true));
  if (name == "upper") return Value(ascii_upper(s));
  if (name == "lower") return Value(ascii_lower(s));
  if (name == "title") return Value(title_case(s));
  if (name == "capitalize") {
    std::string out = ascii_lower(s);
    if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
    return Value(out);
  }
  if (name == "split" || name == "rsplit") {
    const Value* maxsplit = args.get(1, "maxsplit");
    int64_t limit = maxsplit ? require_int(*maxsplit, "maxsplit") : -1;
    if (name == "rsplit" && limit >= 0) fail_runtime("TypeError", "str.rsplit with maxsplit is not supported");
    return make_list(split(s, optional_string(args, 0, "sep"), limit));
  }
  if (name == "splitlines") {
    std::vector<Value> lines;
    size_t start = 0;
    while (start < s.size()) {
      size_t nl = s.find('\n', start);
      if (nl == std::string::npos) nl = s.size();
      lines.emplace_back(s.substr(start, nl - start));
      start = nl + 1;
    }
    return make_list(std::move(lines));
  }
  if (name == "startswith") return Value(matches_affix(s, arg(0, "prefix"), true));
  if (name == "endswith") return Value(matches_affix(s, arg(0, "suffix"), false));
  if (name == "replace") {
    const Value* count = args.get(2, "count");
    return Value(replace(s, require_string(arg(0, "old"), "old"), require_string(arg(1, "new"), "new"),
                         count ? require_int(*count, "count") : -1));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "count") {
    const std::string& sub = require_string(arg(0, "sub"), "sub");
    const Value* start_v = args.get(1, "start");
    const Value* end_v = args.get(2, "end");
    size_t lo = start_v && !start_v->is_none() ? byte_offset(s, require_int(*start_v, "start")) : 0;
    size_t hi = end_v && !end_v->is_none() ? byte_offset(s, require_int(*end_v, "end")) : s.size();
    std::string_view window = hi > lo ? std::string_view(s).substr(lo, hi - lo) : std::string_view();
    if (name == "count") {
      if (sub.empty()) return Value(static_cast<int64_t>(utf8_length(window) + 1));
      int64_t n = 0;
      for (size_t at = window.find(sub); at != std::string_view::npos; at = window.find(sub, at + sub.size())) ++n;
      return Value(n);
    }
    size_t at = name == "rfind" ? window.rfind(sub) : window.find(sub);
    if (at == std::string_view::npos) {
      if (name == "index") fail_runtime("ValueError", "substring not found");
      return Value(int64_t{-1});
    }
    return Value(static_cast<int64_t>(utf8_length(std::string_view(s).substr(0, lo + at))));
  }
  if (name == "format") return Value(py_format(s, args));
  if (name == "join") {
    std::string out;
    bool first = true;
    for (const Value& item : iterate(arg(0, "iterable"))) {
      if (!first) out += s;
      first = false;
      out += require_string(item, "sequence item");
    }
    return Value(out);
  }
  auto all_chars = [&](auto pred) {
    return Value(!s.empty() && std::all_of(s.begin(), s.end(), [&](char c) { return pred(static_cast<unsigned char>(c)); }));
  };
  if (name == "isdigit") return all_chars([](unsigned char c) { return std::isdigit(c) != 0; });
  if (name == "isalpha") return all_chars([](unsigned char c) { return std::isalpha(c) != 0; });
  if (name == "isalnum") return all_chars([](unsigned char c) { return std::isalnum(c) != 0; });
  if (name == "isspace") return all_chars([](unsigned char c) { return std::isspace(c) != 0; });
  if (name == "islower") return Value(ascii_lower(s) == s && ascii_upper(s) != s);
  if (name == "isupper") return Value(ascii_upper(s) == s && ascii_lower(s) != s);
  fail_runtime("TypeError", "str." + name + "() is not supported");
}

const std::vector<std::string_view> kStringMethods = {
    "strip", "lstrip", "rstrip", "upper", "lower", "title", "capitalize", "split", "rsplit", "splitlines",
    "startswith", "endswith", "replace", "find", "rfind", "index", "count", "format", "join", "isdigit",
    "isalpha", "isalnum", "isspace", "islower", "isupper"};
const std::vector<std::string_view> kMutatingListMethods = {"append", "extend", "insert", "pop", "remove",
                                                            "reverse", "sort", "clear"};
const std::vector<std::string_view> kMutatingDictMethods = {"clear", "pop", "popitem", "setdefault", "update"};

bool listed(const std::vector<std::string_view>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

Value bound_method(const Value& self, const std::string& name, std::function<Value(const Value&, CallArgs&)> fn) {
  return make_callable(name, [self, fn = std::move(fn)](CallArgs& args) { return fn(self, args); });
}

Value dict_method(const Value& self, const std::string& name) {
  if (name == "items") {
    return bound_method(self, name, [](const Value& d, CallArgs&) {
      std::vector<Value> pairs;
      for (const auto& [k, v] : d.dict()->entries) pairs.push_back(make_list({Value(k), v}, true));
      return make_list(std::move(pairs));
    });
  }
  if (name == "keys") {
    return bound_method(self, name, [](const Value& d, CallArgs&) { return make_list(iterate(d)); });
  }
  if (name == "values") {
    return bound_method(self, name, [](const Value& d, CallArgs&) {
      std::vector<Value> values;
      for (const auto& [k, v] : d.dict()->entries) values.push_back(v);
      return make_list(std::move(values));
    });
  }
  if (name == "get") {
    return bound_method(self, name, [](const Value& d, CallArgs& args) {
      const Value* key = args.get(0, "key");
      if (!key) fail_runtime("TypeError", "get expected at least 1 argument");
      const Value* fallback = args.get(1, "default");
      const Value* found = key->is_string() ? d.dict()->find(key->str()) : nullptr;
      if (found) return *found;
      return fallback ? *fallback : Value(None{});
    });
  }
  if (name == "copy") {
    return bound_method(self, name, [](const Value& d, CallArgs&) { return make_dict(*d.dict()); });
  }
  return Value();
}

}  // namespace

std::string ascii_upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string ascii_lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
  auto cps = utf8_chars(s);
  auto set = chars ? utf8_chars(*chars) : std::vector<std::string_view>{};
  auto strip_it = [&](std::string_view ch) {
    return chars ? std::find(set.begin(), set.end(), ch) != set.end() : is_py_space(ch);
  };
  size_t b = 0, e = cps.size();
  if (left) {
    while (b < e && strip_it(cps[b])) ++b;
  }
  if (right) {
    while (e > b && strip_it(cps[e - 1])) --e;
  }
  std::string out;
  for (size_t i = b; i < e; ++i) out += cps[i];
  return out;
}

Value get_attribute(const Value& object, const std::string& name) {
  if (object.is_string()) {
    if (!listed(kStringMethods, name)) return no_attribute(object, name);
    return bound_method(object, name, [name](const Value& self, CallArgs& args) {
      return string_method(self.str(), name, args);
    });
  }
  if (object.is_dict()) {
    // jinja2 tries Python attributes before keys, so `d.items` is the method even when "items" is a key.
    Value method = dict_method(object, name);
    if (!method.is_undefined()) return method;
    if (listed(kMutatingDictMethods, name)) return unsafe(object, name);
    if (const Value* v = object.dict()->find(name)) return *v;
    return no_attribute(object, name);
  }
  if (object.is_list()) {
    if (name == "index" || name == "count") {
      return bound_method(object, name, [name](const Value& self, CallArgs& args) {
        const Value* x = args.get(0, "value");
        if (!x) fail_runtime("TypeError", "list." + name + "() takes exactly one argument");
        const auto& items = self.list()->items;
        int64_t n = 0;
        for (size_t i = 0; i < items.size(); ++i) {
          if (!equals(items[i], *x)) continue;
          if (name == "index") return Value(static_cast<int64_t>(i));
          ++n;
        }
        if (name == "index") fail_runtime("ValueError", to_repr(*x) + " is not in list");
        return Value(n);
      });
    }
    if (listed(kMutatingListMethods, name)) return unsafe(object, name);
    return no_attribute(object, name);
  }
  if (object.is_namespace()) {
    if (const Value* v = object.ns()->attributes.find(name)) return *v;
    return no_attribute(object, name);
  }
  return no_attribute(object, name);
}

Value get_item(const Value& object, const Value& key) {
  if (object.is_dict()) {
    if (key.is_string()) {
      if (const Value* v = object.dict()->find(key.str())) return *v;
      Value method = dict_method(object, key.str());
      if (!method.is_undefined()) return method;
    }
    return Value(Undefined{"'dict object' has no attribute " + to_repr(key)});
  }
  if ((object.is_list() || object.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t i = key.as_int();
    if (object.is_list()) {
      const auto& items = object.list()->items;
      int64_t n = static_cast<int64_t>(items.size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value(Undefined{type_name(object) + " index out of range"});
      return items[static_cast<size_t>(i)];
    }
    auto chars = utf8_chars(object.str());
    int64_t n = static_cast<int64_t>(chars.size());
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value(Undefined{"string index out of range"});
    return Value(chars[static_cast<size_t>(i)]);
  }
  if (key.is_string()) return get_attribute(object, key.str());
  std::string hint = "'";
  hint.append(type_name(object)).append(" object' has no attribute ").append(to_repr(key));
  return Value(Undefined{std::move(hint)});
}

Value slice(const Value& object, const Value& start_v, const Value& stop_v, const Value& step_v) {
  auto bound = [](const Value& v) -> std::optional<int64_t> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    return require_int(v, "slice indices");
  };
  std::optional<int64_t> start = bound(start_v), stop = bound(stop_v), step_o = bound(step_v);
  int64_t step = step_o.value_or(1);
  if (step == 0) fail_runtime("ValueError", "slice step cannot be zero");

  std::vector<std::string_view> chars;
  int64_t n;
  if (object.is_list()) {
    n = static_cast<int64_t>(object.list()->items.size());
  } else if (object.is_string()) {
    chars = utf8_chars(object.str());
    n = static_cast<int64_t>(chars.size());
  } else {
    fail_runtime("TypeError", "'" + type_name(object) + "' object is not subscriptable");
  }
  // Python's slice index adjustment.
  auto adjust = [&](std::optional<int64_t> v, int64_t fallback) {
    if (!v) return fallback;
    int64_t i = *v;
    if (i < 0) {
      i += n;
      if (i < 0) i = step < 0 ? -1 : 0;
    } else if (i >= n) {
      i = step < 0 ? n - 1 : n;
    }
    return i;
  };
  int64_t lo = adjust(start, step < 0 ? n - 1 : 0);
  int64_t hi = adjust(stop, step < 0 ? -1 : n);
  std::vector<int64_t> picks;
  for (int64_t i = lo; step > 0 ? i < hi : i > hi; i += step) picks.push_back(i);

  if (object.is_list()) {
    std::vector<Value> out;
    for (int64_t i : picks) out.push_back(object.list()->items[static_cast<size_t>(i)]);
    return make_list(std::move(out), object.list()->is_tuple);
  }
  std::string out;
  for (int64_t i : picks) out += chars[static_cast<size_t>(i)];
  return Value(out);
}

bool contains(const Value& container, const Value& item) {
  if (container.is_string()) {
    if (!item.is_string()) {
      fail_runtime("TypeError", "'in <string>' requires string as left operand, not " + type_name(item));
    }
    return container.str().find(item.str()) != std::string::npos;
  }
  if (container.is_list()) {
    const auto& items = container.list()->items;
    return std::any_of(items.begin(), items.end(), [&](const Value& v) { return equals(v, item); });
  }
  if (container.is_dict()) return item.is_string() && container.dict()->find(item.str()) != nullptr;
  if (container.is_undefined()) return false;
  fail_runtime("TypeError", "argument of type '" + type_name(container) + "' is not iterable");
}

}  // namespace pensieve::chat
