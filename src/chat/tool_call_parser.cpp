#include "chat/tool_call_parser.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include <nlohmann/json.hpp>

namespace pensieve::chat {

namespace {

using Json = nlohmann::ordered_json;

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string compact(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// The longest suffix of `text` that is a proper prefix of one of `markers`: it may yet become that marker.
size_t partial_marker_suffix(std::string_view text, const std::vector<std::string>& markers) {
  size_t best = 0;
  for (const std::string& m : markers) {
    for (size_t n = std::min(m.size() - 1, text.size()); n > best; --n) {
      if (text.substr(text.size() - n) == std::string_view(m).substr(0, n)) {
        best = n;
        break;
      }
    }
  }
  return best;
}

// Arguments of a call as compact JSON object text; false when they are not an object (or a string holding one).
bool arguments_text(const Json* args, std::string& out) {
  if (!args) {
    out = "{}";
    return true;
  }
  if (args->is_object()) {
    out = compact(*args);
    return true;
  }
  if (args->is_string()) {
    const Json inner = Json::parse(args->get<std::string>(), nullptr, /*allow_exceptions=*/false);
    if (inner.is_object()) {
      out = compact(inner);
      return true;
    }
  }
  return false;
}

const Json* member(const Json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

const std::string kDsCallBegin = "<\xEF\xBD\x9Ctool\xE2\x96\x81" "call\xE2\x96\x81" "begin\xEF\xBD\x9C>";
const std::string kDsCallEnd = "<\xEF\xBD\x9Ctool\xE2\x96\x81" "call\xE2\x96\x81" "end\xEF\xBD\x9C>";
const std::string kDsCallsBegin = "<\xEF\xBD\x9Ctool\xE2\x96\x81" "calls\xE2\x96\x81" "begin\xEF\xBD\x9C>";
const std::string kDsCallsEnd = "<\xEF\xBD\x9Ctool\xE2\x96\x81" "calls\xE2\x96\x81" "end\xEF\xBD\x9C>";
const std::string kDsSep = "<\xEF\xBD\x9Ctool\xE2\x96\x81" "sep\xEF\xBD\x9C>";

}  // namespace

size_t json_value_end(std::string_view s, size_t pos) {
  if (pos >= s.size() || (s[pos] != '{' && s[pos] != '[')) return std::string_view::npos;
  int depth = 0;
  bool in_string = false;
  for (size_t i = pos; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
    }
  }
  return std::string_view::npos;
}

ToolCallParser::ToolCallParser(ToolCallFormat format, std::vector<std::string> tool_names)
    : format_(format), tool_names_(std::move(tool_names)) {
  switch (format) {
    case ToolCallFormat::Hermes: regions_ = {{"<tool_call>", "</tool_call>"}}; break;
    case ToolCallFormat::Generic: regions_ = {{"<tool_call>", "</tool_call>"}}; break;
    case ToolCallFormat::Llama3: regions_ = {{"<|python_tag|>", ""}}; break;
    case ToolCallFormat::Mistral: regions_ = {{"[TOOL_CALLS]", ""}}; break;
    case ToolCallFormat::DeepSeek: regions_ = {{kDsCallsBegin, kDsCallsEnd}, {kDsCallBegin, kDsCallEnd}}; break;
  }
  leading_json_ = format == ToolCallFormat::Llama3 || format == ToolCallFormat::Generic;
}

void ToolCallParser::push(std::string_view text, std::vector<OutputPiece>& out) {
  pending_.append(text);
  scan(out, /*at_end=*/false);
}

void ToolCallParser::finish(std::vector<OutputPiece>& out) {
  scan(out, /*at_end=*/true);
  if (!after_call_ && !held_space_.empty()) out.push_back({OutputPiece::Kind::Text, std::move(held_space_), {}});
  held_space_.clear();
}

void ToolCallParser::scan(std::vector<OutputPiece>& out, bool at_end) {
  for (;;) {
    if (!open_) {
      scan_text(out, at_end);
      if (!open_) return;
    }
    // Search only what arrived since the last look (less a marker's length): a long call stays linear.
    const size_t from = searched_ > open_->close.size() ? searched_ - open_->close.size() : 0;
    const size_t close = open_->close.empty() ? std::string::npos : pending_.find(open_->close, from);
    searched_ = pending_.size();
    if (close != std::string::npos) {
      searched_ = 0;
      const std::string body = pending_.substr(0, close);
      const std::string seen = open_->close;
      pending_.erase(0, close + seen.size());
      end_region(body, seen, out);
      continue;
    }
    if (!at_end) return;
    const std::string body = std::move(pending_);
    pending_.clear();
    end_region(body, "", out);
    return;
  }
}

void ToolCallParser::scan_text(std::vector<OutputPiece>& out, bool at_end) {
  static const Region kLeadingJson{"", ""};
  if (!started_) {
    const size_t first = pending_.find_first_not_of(" \n\r\t");
    if (first == std::string::npos) {
      if (at_end) emit_text(std::exchange(pending_, {}), out);
      return;
    }
    started_ = true;
    if (leading_json_ && (pending_[first] == '{' || pending_[first] == '[')) {
      held_space_ += pending_.substr(0, first);
      pending_.erase(0, first);
      open_ = &kLeadingJson;
      searched_ = 0;
      return;
    }
  }
  size_t at = std::string::npos;
  const Region* region = nullptr;
  for (const Region& r : regions_) {
    const size_t p = pending_.find(r.open);
    if (p < at) {
      at = p;
      region = &r;
    }
  }
  if (region) {
    emit_text(pending_.substr(0, at), out);
    pending_.erase(0, at + region->open.size());
    open_ = region;
    searched_ = 0;
    return;
  }
  std::vector<std::string> opens;
  for (const Region& r : regions_) opens.push_back(r.open);
  const size_t hold = at_end ? 0 : partial_marker_suffix(pending_, opens);
  emit_text(pending_.substr(0, pending_.size() - hold), out);
  pending_.erase(0, pending_.size() - hold);
}

void ToolCallParser::emit_text(std::string text, std::vector<OutputPiece>& out) {
  if (after_call_) {
    const size_t first = text.find_first_not_of(" \n\r\t");
    if (first == std::string::npos) return;
    text.erase(0, first);
    after_call_ = false;
  }
  text.insert(0, held_space_);
  held_space_.clear();
  size_t keep = text.size();
  while (keep > 0 && is_space(text[keep - 1])) --keep;
  held_space_ = text.substr(keep);
  text.resize(keep);
  if (!text.empty()) out.push_back({OutputPiece::Kind::Text, std::move(text), {}});
}

void ToolCallParser::end_region(std::string_view body, std::string_view close_seen, std::vector<OutputPiece>& out) {
  const Region* region = open_;
  open_ = nullptr;
  std::vector<ToolCall> calls;
  if (parse_body(body, calls)) {
    held_space_.clear();
    for (ToolCall& c : calls) out.push_back({OutputPiece::Kind::ToolCall, {}, std::move(c)});
    after_call_ = true;
    return;
  }
  // Not a call after all: the model's words, verbatim.
  after_call_ = false;
  std::string raw = region->open;
  raw.append(body);
  raw.append(close_seen);
  emit_text(std::move(raw), out);
}

bool ToolCallParser::accept(std::string name, std::string arguments, std::vector<ToolCall>& calls) const {
  if (name.empty()) return false;
  if (!tool_names_.empty() && std::find(tool_names_.begin(), tool_names_.end(), name) == tool_names_.end()) {
    return false;
  }
  calls.push_back({std::move(name), std::move(arguments)});
  return true;
}

namespace {

// One or more JSON calls ({"name":…, "arguments"|"parameters":…} or arrays of them), separated by whitespace,
// ';' or ','. Anything else in `body` makes it not a call.
template <typename Accept>
bool parse_json_calls(std::string_view body, Accept&& accept) {
  size_t pos = 0;
  int count = 0;
  for (;;) {
    while (pos < body.size() && (is_space(body[pos]) || body[pos] == ';' || body[pos] == ',')) ++pos;
    if (pos == body.size()) break;
    const size_t end = json_value_end(body, pos);
    if (end == std::string_view::npos) return false;
    const Json value = Json::parse(body.substr(pos, end - pos), nullptr, /*allow_exceptions=*/false);
    pos = end;
    const auto one = [&](const Json& call) {
      if (!call.is_object()) return false;
      const Json* fn = member(call, "function");
      const Json& c = fn && fn->is_object() ? *fn : call;
      const Json* name = member(c, "name");
      if (!name || !name->is_string()) return false;
      const Json* args = member(c, "arguments");
      if (!args) args = member(c, "parameters");
      std::string text;
      return arguments_text(args, text) && accept(name->get<std::string>(), std::move(text));
    };
    if (value.is_object()) {
      if (!one(value)) return false;
    } else if (value.is_array() && !value.empty()) {
      for (const Json& v : value) {
        if (!one(v)) return false;
      }
    } else {
      return false;
    }
    ++count;
  }
  return count > 0;
}

// Splits `s` at every `marker`, dropping the markers.
std::vector<std::string_view> split(std::string_view s, std::string_view marker) {
  std::vector<std::string_view> parts;
  for (;;) {
    const size_t p = s.find(marker);
    parts.push_back(s.substr(0, p));
    if (p == std::string_view::npos) return parts;
    s.remove_prefix(p + marker.size());
  }
}

bool is_ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Llama 3.1's built-in tool syntax after <|python_tag|>: name.call(key="value", n=3, flag=True) -> the name and
// its keyword arguments as a JSON object. Values are string literals (double or single quotes, backslash
// escapes), numbers, True/False/None (or true/false/null).
bool python_call(std::string_view s, std::string& name, std::string& arguments) {
  size_t i = 0;
  while (i < s.size() && is_ident_char(s[i])) ++i;
  if (i == 0 || s.substr(i, 6) != ".call(" || s.back() != ')') return false;
  name = std::string(s.substr(0, i));
  std::string_view rest = trim(s.substr(i + 6, s.size() - i - 7));
  Json args = Json::object();
  while (!rest.empty()) {
    size_t k = 0;
    while (k < rest.size() && is_ident_char(rest[k])) ++k;
    const std::string key(rest.substr(0, k));
    rest = trim(rest.substr(k));
    if (key.empty() || rest.empty() || rest.front() != '=') return false;
    rest = trim(rest.substr(1));
    if (rest.empty()) return false;
    if (rest.front() == '"' || rest.front() == '\'') {
      const char quote = rest.front();
      std::string value;
      size_t j = 1;
      for (; j < rest.size() && rest[j] != quote; ++j) {
        if (rest[j] == '\\' && j + 1 < rest.size()) ++j;
        value.push_back(rest[j]);
      }
      if (j >= rest.size()) return false;
      args[key] = value;
      rest = trim(rest.substr(j + 1));
    } else {
      const size_t end = std::min(rest.find(','), rest.size());
      const std::string literal(trim(rest.substr(0, end)));
      Json value = Json::parse(literal == "True" ? "true" : literal == "False" ? "false" : literal == "None" ? "null" : literal,
                               nullptr, /*allow_exceptions=*/false);
      if (value.is_discarded() || value.is_object() || value.is_array()) return false;
      args[key] = std::move(value);
      rest = rest.substr(end);
    }
    if (!rest.empty()) {
      if (rest.front() != ',') return false;
      rest = trim(rest.substr(1));
    }
  }
  arguments = compact(args);
  return true;
}

}  // namespace

bool ToolCallParser::parse_body(std::string_view body, std::vector<ToolCall>& calls) const {
  const auto add = [&](std::string name, std::string args) { return accept(std::move(name), std::move(args), calls); };
  // `json` must be exactly one JSON object: the arguments of `name`.
  const auto add_json = [&](std::string name, std::string_view json) {
    if (json_value_end(json, 0) != json.size()) return false;
    std::string text;
    const Json parsed = Json::parse(json, nullptr, false);
    return arguments_text(&parsed, text) && add(std::move(name), std::move(text));
  };
  const std::string_view t = trim(body);
  if (format_ == ToolCallFormat::Mistral && !t.empty() && t.front() != '[' && t.front() != '{') {
    // v11+: name[ARGS]{…} or name[CALL_ID]id[ARGS]{…}, each call after its own [TOOL_CALLS].
    for (std::string_view part : split(t, "[TOOL_CALLS]")) {
      const size_t args = part.find("[ARGS]");
      if (args == std::string_view::npos) return false;
      std::string_view name = part.substr(0, std::min(args, part.find("[CALL_ID]")));
      if (!add_json(std::string(trim(name)), trim(part.substr(args + 6)))) return false;
    }
    return true;
  }
  if (format_ == ToolCallFormat::DeepSeek) {
    int count = 0;
    for (std::string_view part : split(t, kDsCallBegin)) {
      part = trim(part.substr(0, part.find(kDsCallEnd)));
      if (part.empty() || part == kDsCallsEnd) continue;
      const size_t sep = part.find(kDsSep);
      if (sep == std::string_view::npos) return false;
      std::string_view rest = part.substr(sep + kDsSep.size());
      const size_t nl = rest.find('\n');
      if (nl == std::string_view::npos) return false;
      const std::string name(trim(rest.substr(0, nl)));
      std::string_view json = trim(rest.substr(nl + 1));
      if (json.substr(0, 3) == "```") {
        json.remove_prefix(std::min(json.size(), json.find('\n') + 1));
        const size_t fence = json.rfind("```");
        if (fence == std::string_view::npos) return false;
        json = trim(json.substr(0, fence));
      }
      if (!add_json(name, json)) return false;
      ++count;
    }
    return count > 0;
  }
  if (format_ == ToolCallFormat::Llama3 && !t.empty() && t.front() != '{' && t.front() != '[') {
    std::string name, arguments;
    return python_call(t, name, arguments) && add(std::move(name), std::move(arguments));
  }
  return parse_json_calls(t, add);
}

std::vector<OutputPiece> parse_tool_calls(ToolCallFormat format, std::string_view text,
                                          const std::vector<std::string>& tool_names) {
  ToolCallParser parser(format, tool_names);
  std::vector<OutputPiece> out;
  parser.push(text, out);
  parser.finish(out);
  return out;
}

}  // namespace pensieve::chat
