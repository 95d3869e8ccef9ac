#pragma once
// What an API adapter hands the HTTP side: either a finished reply, or a request the engine accepted together
// with the shaper that turns its events into that API's bytes (SSE chunks, or one JSON body at the end).
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "engine/serving_engine.h"

namespace pensieve::api {

struct Reply {
  Reply() = default;
  Reply(int s, std::string b, std::string type = "application/json",
        std::vector<std::pair<std::string, std::string>> h = {})
      : status(s), body(std::move(b)), content_type(std::move(type)), headers(std::move(h)) {}
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

class Generation {
 public:
  Generation(std::shared_ptr<engine::RequestHandle> handle, bool streaming, std::string model_id = {})
      : handle_(std::move(handle)), streaming_(streaming), model_id_(std::move(model_id)) {}
  virtual ~Generation() = default;

  engine::RequestHandle& handle() const { return *handle_; }
  const std::shared_ptr<engine::RequestHandle>& shared_handle() const { return handle_; }
  bool streaming() const { return streaming_; }
  // The served model's id (its first name), for the request log and per-model statistics.
  const std::string& model_id() const { return model_id_; }

  // Streaming: the media type (SSE unless the API streams otherwise, e.g. Ollama's NDJSON), the bytes to send
  // before any event, for each batch of events, and after the last one.
  virtual std::string stream_content_type() const { return "text/event-stream"; }
  virtual std::string stream_open() = 0;
  virtual std::string stream_events(std::span<const engine::GenerationEvent> events) = 0;
  virtual std::string stream_close() = 0;

  // Not streaming: events are collected, then the whole response.
  virtual void collect(std::span<const engine::GenerationEvent> events) = 0;
  virtual Reply reply() = 0;

 private:
  std::shared_ptr<engine::RequestHandle> handle_;
  bool streaming_;
  std::string model_id_;
};

using Outcome = std::variant<Reply, std::unique_ptr<Generation>>;

// Submits to the engine; a refusal becomes the matching ApiError (QueueFull -> Overloaded, ...).
std::shared_ptr<engine::RequestHandle> submit_or_throw(engine::Engine& engine, engine::GenerationRequest request,
                                                       const std::string& prompt_field);

// A fresh id for a response: prefix + 24 random hex digits.
std::string make_response_id(const std::string& prefix);
int64_t unix_seconds_now();

// The first error text among ended choices, if an event carried one.
const char* finish_error_text(const engine::GenerationEvent& e);

}  // namespace pensieve::api
