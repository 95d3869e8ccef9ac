#include "api/generation.h"

#include <chrono>
#include <random>

#include "api/api_error.h"

namespace pensieve::api {

std::shared_ptr<engine::RequestHandle> submit_or_throw(engine::Engine& engine, engine::GenerationRequest request,
                                                       const std::string& prompt_field) {
  if (request.prompt.empty()) throw invalid_field(prompt_field, "gives an empty prompt");
  const int ctx = engine.context_length();
  if (static_cast<int>(request.prompt.size()) >= ctx) {
    throw invalid_field(prompt_field, "is " + std::to_string(request.prompt.size()) +
                                          " tokens; this model's context holds " + std::to_string(ctx));
  }
  auto result = engine.submit(std::move(request));
  if (auto* handle = std::get_if<std::shared_ptr<engine::RequestHandle>>(&result)) return std::move(*handle);
  const auto& refused = std::get<engine::SubmitRefused>(result);
  switch (refused.why) {
    case engine::SubmitRefused::Why::QueueFull:
      throw ApiError(ErrorKind::Overloaded, "the server is busy (waiting queue full): " + refused.message);
    case engine::SubmitRefused::Why::PromptTooLong:
      throw ApiError(ErrorKind::InvalidRequest, refused.message, prompt_field);
    case engine::SubmitRefused::Why::InvalidRequest:
      throw ApiError(ErrorKind::InvalidRequest, refused.message);
    case engine::SubmitRefused::Why::ShuttingDown:
      throw ApiError(ErrorKind::Unavailable, "the server is shutting down");
  }
  throw ApiError(ErrorKind::Internal, "engine refused the request");
}

std::string make_response_id(const std::string& prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id.push_back(kHex[rng() & 15]);
  return id;
}

int64_t unix_seconds_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const char* finish_error_text(const engine::GenerationEvent& e) {
  if (!e.finish) return nullptr;
  if (*e.finish == engine::FinishReason::Error) return e.error.empty() ? "generation failed" : e.error.c_str();
  if (*e.finish == engine::FinishReason::Cancelled) return "the request was cancelled (server shutting down, or past its time limit)";
  return nullptr;
}

}  // namespace pensieve::api
