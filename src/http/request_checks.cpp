#include "http/request_checks.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace pensieve::http {

bool constant_time_equals(std::string_view a, std::string_view b) {
  // Walk the longer length so that a short guess costs as long as a long one.
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

bool authorized(const boost::beast::http::fields& headers, std::span<const std::string> keys) {
  if (keys.empty()) return true;
  const auto as_std = [](boost::beast::string_view v) { return std::string_view(v.data(), v.size()); };
  const std::string_view authorization = as_std(headers[boost::beast::http::field::authorization]);
  constexpr std::string_view kBearer = "Bearer ";
  const bool has_bearer = authorization.substr(0, kBearer.size()) == kBearer;
  const std::string_view bearer = has_bearer ? authorization.substr(kBearer.size()) : std::string_view{};
  const std::string_view x_api_key = as_std(headers["x-api-key"]);
  bool ok = false;
  for (const std::string& key : keys) {
    // Both forms, every key, no early exit.
    const bool by_bearer = has_bearer && constant_time_equals(bearer, key);
    const bool by_header = !x_api_key.empty() && constant_time_equals(x_api_key, key);
    ok |= by_bearer | by_header;
  }
  return ok;
}

std::string unsupported_framing(const boost::beast::http::fields& headers) {
  const auto te = headers.find(boost::beast::http::field::transfer_encoding);
  if (te == headers.end()) return {};
  std::string value(te->value());
  for (char& c : value) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(value.begin());
  if (value == "chunked" && headers.count(boost::beast::http::field::transfer_encoding) == 1) return {};
  return "Transfer-Encoding '" + std::string(te->value()).substr(0, 100) + "' is not supported; send a " +
         "Content-Length or 'Transfer-Encoding: chunked' alone";
}

std::string route_label(std::string_view path) {
  static constexpr std::array<std::string_view, 10> kRoutes = {
      "/health", "/metrics", "/v1/status", "/v1/stats", "/v1/models", "/v1/chat/completions", "/v1/completions",
      "/v1/messages", "/v1/messages/count_tokens", "invalid"};
  for (std::string_view r : kRoutes) {
    if (r == path) return std::string(r);
  }
  static constexpr std::array<std::string_view, 6> kOllamaRoutes = {"/api/chat", "/api/generate", "/api/tags",
                                                                    "/api/show", "/api/ps", "/api/version"};
  for (std::string_view r : kOllamaRoutes) {
    if (r == path) return std::string(r);
  }
  return "other";
}

}  // namespace pensieve::http
