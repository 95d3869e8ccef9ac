#include "api/api_error.h"

#include <nlohmann/json.hpp>

namespace pensieve::api {

int http_status(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::InvalidRequest: return 400;
    case ErrorKind::Authentication: return 401;
    case ErrorKind::NotFound: return 404;
    case ErrorKind::MethodNotAllowed: return 405;
    case ErrorKind::TooLarge: return 413;
    case ErrorKind::Overloaded: return 429;
    case ErrorKind::Unavailable: return 503;
    case ErrorKind::Internal: return 500;
  }
  return 500;
}

namespace {

const char* openai_type(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::InvalidRequest:
    case ErrorKind::NotFound:
    case ErrorKind::MethodNotAllowed:
    case ErrorKind::TooLarge: return "invalid_request_error";
    case ErrorKind::Authentication: return "authentication_error";
    case ErrorKind::Overloaded: return "rate_limit_error";
    case ErrorKind::Unavailable: return "service_unavailable";
    case ErrorKind::Internal: return "server_error";
  }
  return "server_error";
}

nlohmann::json openai_code(const ApiError& e) {
  switch (e.kind()) {
    case ErrorKind::Authentication: return "invalid_api_key";
    case ErrorKind::NotFound: return e.param() == "model" ? "model_not_found" : "not_found";
    case ErrorKind::Overloaded: return "rate_limit_exceeded";
    default: return nullptr;
  }
}

const char* anthropic_type(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::InvalidRequest:
    case ErrorKind::MethodNotAllowed: return "invalid_request_error";
    case ErrorKind::Authentication: return "authentication_error";
    case ErrorKind::NotFound: return "not_found_error";
    case ErrorKind::TooLarge: return "request_too_large";
    case ErrorKind::Overloaded: return "overloaded_error";
    case ErrorKind::Unavailable: return "overloaded_error";
    case ErrorKind::Internal: return "api_error";
  }
  return "api_error";
}

}  // namespace

std::string openai_error_body(const ApiError& e) {
  nlohmann::json err = {{"message", e.what()},
                        {"type", openai_type(e.kind())},
                        {"param", e.param().empty() ? nlohmann::json(nullptr) : nlohmann::json(e.param())},
                        {"code", openai_code(e)}};
  return nlohmann::json{{"error", err}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string anthropic_error_body(const ApiError& e) {
  nlohmann::json j = {{"type", "error"}, {"error", {{"type", anthropic_type(e.kind())}, {"message", e.what()}}}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace pensieve::api
