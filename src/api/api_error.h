#pragma once
// A request that cannot be served, described once and rendered in each API's own error shape. Thrown by the
// adapters while they parse a body; the HTTP side catches it and writes openai_error_body / anthropic_error_body.
#include <stdexcept>
#include <string>

namespace pensieve::api {

enum class ErrorKind {
  InvalidRequest,    // 400
  Authentication,    // 401
  NotFound,          // 404 (unknown route or model)
  MethodNotAllowed,  // 405
  TooLarge,          // 413
  Overloaded,        // 429 with Retry-After: the waiting queue is full
  Unavailable,       // 503: still loading or shutting down
  Internal,          // 500
};

class ApiError : public std::runtime_error {
 public:
  ApiError(ErrorKind kind, const std::string& message, std::string param = {})
      : std::runtime_error(message), kind_(kind), param_(std::move(param)) {}
  ErrorKind kind() const { return kind_; }
  // The request field at fault ("messages[1].content"), empty when none is.
  const std::string& param() const { return param_; }

 private:
  ErrorKind kind_;
  std::string param_;
};

inline ApiError invalid_field(const std::string& field, const std::string& what) {
  return ApiError(ErrorKind::InvalidRequest, "'" + field + "' " + what, field);
}

int http_status(ErrorKind kind);
// Seconds a client should wait before retrying an Overloaded request.
constexpr int kRetryAfterSeconds = 1;

// {"error": {"message", "type", "param", "code"}}
std::string openai_error_body(const ApiError& e);
// {"type": "error", "error": {"type", "message"}}
std::string anthropic_error_body(const ApiError& e);

}  // namespace pensieve::api
