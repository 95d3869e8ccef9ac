// Ollama's model routes over the registry's listing: /api/tags, /api/ps, /api/show, /api/version, and the
// pieces every Ollama route shares (the error body, keep_alive).
#include <cctype>
#include <cstdio>
#include <ctime>

#include "api/json_fields.h"
#include "api/ollama.h"

namespace pensieve::api {

namespace {

// Ollama's "8.0B" / "135M".
std::string parameter_size(uint64_t n) {
  char text[32];
  if (n >= 1'000'000'000) std::snprintf(text, sizeof text, "%.1fB", double(n) / 1e9);
  else if (n >= 1'000'000) std::snprintf(text, sizeof text, "%.0fM", double(n) / 1e6);
  else std::snprintf(text, sizeof text, "%.0fK", double(n) / 1e3);
  return text;
}

// RFC 3339 in UTC, as Go's time.Time marshals.
std::string rfc3339(int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[40];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// Ollama names carry a tag ("llama3:latest"); ours are plain, so ":latest" is added where clients expect it.
std::string tagged(const std::string& name) { return name.find(':') == std::string::npos ? name + ":latest" : name; }

// A stand-in digest (Ollama's is the blob's sha256): stable per name, path and size, 64 hex digits.
std::string digest_of(const ListedModel& m) {
  uint64_t h = 1469598103934665603ull;
  const std::string key = m.name + "\n" + m.path + "\n" + std::to_string(m.facts.file_bytes);
  std::string out;
  for (int round = 0; round < 4; ++round) {
    for (char c : key) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    h ^= static_cast<uint64_t>(round);
    char part[17];
    std::snprintf(part, sizeof part, "%016llx", static_cast<unsigned long long>(h));
    out += part;
  }
  return out;
}

Json details(const ListedModel& m) {
  return {{"parent_model", ""},
          {"format", "gguf"},
          {"family", m.facts.architecture},
          {"families", Json::array({m.facts.architecture})},
          {"parameter_size", parameter_size(m.facts.parameter_count)},
          {"quantization_level", m.facts.quantization}};
}

Json entry(const ListedModel& m, const std::string& name) {
  return {{"name", tagged(name)},
          {"model", tagged(name)},
          {"modified_at", rfc3339(m.facts.modified_unix)},
          {"size", m.facts.file_bytes},
          {"digest", digest_of(m)},
          {"details", details(m)}};
}

bool named(const ListedModel& m, std::string name) {
  const auto matches = [&](const std::string& n) { return n == name || tagged(n) == name; };
  if (matches(m.name)) return true;
  for (const std::string& a : m.aliases) {
    if (matches(a)) return true;
  }
  return false;
}

// Go's time.ParseDuration for the units keep_alive uses: "300ms", "5m", "1h30m", "0", "-1m".
std::optional<double> go_duration_seconds(const std::string& text) {
  if (text.empty()) return std::nullopt;
  size_t i = 0;
  double sign = 1;
  if (text[0] == '-' || text[0] == '+') sign = text[i++] == '-' ? -1 : 1;
  if (text.substr(i) == "0") return 0.0;
  double total = 0;
  bool any = false;
  while (i < text.size()) {
    size_t used = 0;
    double value = 0;
    try {
      value = std::stod(text.substr(i), &used);
    } catch (const std::exception&) {
      return std::nullopt;
    }
    i += used;
    size_t unit_end = i;
    while (unit_end < text.size() && std::isalpha(static_cast<unsigned char>(text[unit_end]))) ++unit_end;
    const std::string unit = text.substr(i, unit_end - i);
    i = unit_end;
    if (unit == "h") total += value * 3600;
    else if (unit == "m") total += value * 60;
    else if (unit == "s") total += value;
    else if (unit == "ms") total += value / 1e3;
    else if (unit == "us" || unit == "µs") total += value / 1e6;
    else if (unit == "ns") total += value / 1e9;
    else return std::nullopt;
    any = true;
  }
  if (!any) return std::nullopt;
  return sign * total;
}

}  // namespace

Reply ollama_tags(std::span<const ListedModel> models) {
  Json list = Json::array();
  for (const ListedModel& m : models) {
    list.push_back(entry(m, m.name));
    for (const std::string& alias : m.aliases) list.push_back(entry(m, alias));
  }
  return Reply{200, dump_json(Json{{"models", std::move(list)}})};
}

Reply ollama_ps(std::span<const ListedModel> models) {
  Json list = Json::array();
  for (const ListedModel& m : models) {
    if (!m.loaded) continue;
    Json e = entry(m, m.name);
    e.erase("modified_at");
    e["size"] = m.resident_bytes;
    // Kept until the budget needs room: Ollama has no "never", so a date far ahead says it.
    e["expires_at"] = rfc3339(m.expires_unix.value_or(int64_t{253402300799}));  // 9999-12-31
    e["size_vram"] = 0;
    list.push_back(std::move(e));
  }
  return Reply{200, dump_json(Json{{"models", std::move(list)}})};
}

Reply ollama_show(std::span<const ListedModel> models, std::string_view text) {
  const Json body_json = parse_body(text);
  const Fields body(body_json, "");
  // "model" is the field now; older clients send "name".
  std::optional<std::string> name = body.string("model");
  if (!name) name = body.string("name");
  if (!name) throw invalid_field("model", "is required");
  for (const ListedModel& m : models) {
    if (!named(m, *name)) continue;
    const std::string arch = m.facts.architecture;
    Json info = {{"general.architecture", arch},
                 {"general.parameter_count", m.facts.parameter_count},
                 {arch + ".context_length", m.facts.context_length}};
    Json capabilities = Json::array({"completion"});
    if (m.facts.chat_template.find("tools") != std::string::npos) capabilities.push_back("tools");
    Json out = {{"license", ""},
                {"modelfile", "# Modelfile generated by pensieve\nFROM " + m.path + "\n"},
                {"parameters", ""},
                {"template", m.facts.chat_template},
                {"details", details(m)},
                {"model_info", std::move(info)},
                {"capabilities", std::move(capabilities)},
                {"modified_at", rfc3339(m.facts.modified_unix)}};
    return Reply{200, dump_json(out)};
  }
  throw ApiError(ErrorKind::NotFound, "model '" + *name + "' not found", "model");
}

Reply ollama_version() { return Reply{200, R"({"version":"0.6.0"})"}; }

std::string ollama_error_body(const ApiError& e) { return dump_json(Json{{"error", e.what()}}); }

std::optional<std::optional<std::chrono::milliseconds>> ollama_keep_alive(std::string_view text) {
  Json body_json;
  try {
    body_json = parse_body(text);
  } catch (const ApiError&) {
    return std::nullopt;  // the route reports the body's fault
  }
  const auto it = body_json.find("keep_alive");
  if (it == body_json.end() || it->is_null()) return std::nullopt;
  std::optional<double> seconds;
  if (it->is_number()) seconds = it->get<double>();
  else if (it->is_string()) seconds = go_duration_seconds(it->get<std::string>());
  if (!seconds) throw invalid_field("keep_alive", "must be a number of seconds or a duration such as \"5m\"");
  if (*seconds < 0) return std::optional<std::chrono::milliseconds>();
  return std::optional<std::chrono::milliseconds>(std::chrono::milliseconds(static_cast<int64_t>(*seconds * 1000)));
}

}  // namespace pensieve::api
