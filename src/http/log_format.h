#pragma once
// The server's log lines, as text for people (the default) or as one JSON object a line for log collectors
// (`serve --log-format json`). Every line the server writes goes through here, so both forms carry the same facts.
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace pensieve::http {

enum class LogFormat { Text, Json };

// "text" or "json"; nullopt for anything else.
std::optional<LogFormat> parse_log_format(std::string_view name);

// What one finished request leaves in the log.
struct RequestLog {
  std::string client;  // "address:port"
  std::string method;
  std::string target;  // path and query as sent (cut to 200 bytes)
  std::string model;   // the served model's name; empty when the request reached none
  int status = 0;
  int prompt_tokens = 0;
  int completion_tokens = 0;
  std::optional<double> ttft_ms;  // request start to the first generated token
  double total_ms = 0;
  bool cancelled = false;
};

// Text: "ADDR METHOD TARGET STATUS 12.3ms [prompt=P gen=G] [cancelled]". JSON: {"time", "level":"info",
// "event":"request", "client", "method", "path", "model", "status", "prompt_tokens", "completion_tokens",
// "ttft_ms", "total_ms", "cancelled"}.
std::string request_log_line(const RequestLog& r, LogFormat format);

// Text: "pensieve: MESSAGE". JSON: {"time", "level", "event":"message", "message"}.
std::string message_log_line(std::string_view message, LogFormat format, std::string_view level = "info");

// Writes `line` and a newline to `out` (nothing when `out` is null) and flushes it.
void write_log_line(std::FILE* out, const std::string& line);

// The two above in one call.
inline void log_message(std::FILE* out, LogFormat format, std::string_view message, std::string_view level = "info") {
  write_log_line(out, message_log_line(message, format, level));
}

}  // namespace pensieve::http
