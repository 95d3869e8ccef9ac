#include "http/log_format.h"

#include <chrono>
#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace pensieve::http {
namespace {

using json = nlohmann::ordered_json;  // keys in the order written: time first

// UTC with milliseconds, e.g. 2026-12-01T12:34:56.789Z: sorts as text and every collector reads it.
std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  return fmt::format("{}.{:03d}Z", text, static_cast<int>(ms));
}

// Client text (a path) may hold any bytes: invalid UTF-8 becomes U+FFFD instead of an exception.
std::string dump_line(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

double rounded(double ms) { return static_cast<double>(static_cast<int64_t>(ms * 1000.0 + 0.5)) / 1000.0; }

}  // namespace

std::optional<LogFormat> parse_log_format(std::string_view name) {
  if (name == "text") return LogFormat::Text;
  if (name == "json") return LogFormat::Json;
  return std::nullopt;
}

std::string request_log_line(const RequestLog& r, LogFormat format) {
  const std::string target = r.target.substr(0, 200);
  if (format == LogFormat::Text) {
    std::string line = fmt::format("{} {} {} {} {:.1f}ms", r.client, r.method, target, r.status, r.total_ms);
    if (r.prompt_tokens || r.completion_tokens) {
      line += fmt::format(" prompt={} gen={}", r.prompt_tokens, r.completion_tokens);
    }
    if (r.cancelled) line += " cancelled";
    return line;
  }
  json j = {{"time", utc_now()},
            {"level", "info"},
            {"event", "request"},
            {"client", r.client},
            {"method", r.method},
            {"path", target},
            {"model", r.model.empty() ? json(nullptr) : json(r.model)},
            {"status", r.status},
            {"prompt_tokens", r.prompt_tokens},
            {"completion_tokens", r.completion_tokens},
            {"ttft_ms", r.ttft_ms ? json(rounded(*r.ttft_ms)) : json(nullptr)},
            {"total_ms", rounded(r.total_ms)},
            {"cancelled", r.cancelled}};
  return dump_line(j);
}

std::string message_log_line(std::string_view message, LogFormat format, std::string_view level) {
  if (format == LogFormat::Text) return "pensieve: " + std::string(message);
  return dump_line(json{{"time", utc_now()}, {"level", level}, {"event", "message"}, {"message", message}});
}

void write_log_line(std::FILE* out, const std::string& line) {
  if (!out) return;
  std::fprintf(out, "%s\n", line.c_str());
  std::fflush(out);
}

}  // namespace pensieve::http
