#pragma once
// The HTTP front: one Asio io_context on one thread, a C++20 coroutine per connection, so hundreds of open
// streams cost no threads. Routes the OpenAI and Anthropic endpoints to api/, writes SSE, checks the API key,
// enforces limits, serves /health, /metrics and /v1/status, logs one line per request and shuts down
// gracefully. The model(s) may be attached after the server is listening: /health says 503 until then.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "api/json_limits.h"
#include "api/served_model.h"
#include "http/log_format.h"
#include "registry/model_registry.h"

namespace pensieve::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;                      // 0: any free port (see Server::port)
  std::vector<std::string> api_keys;         // empty: no authentication; otherwise any one of them opens /v1/
  size_t max_body_bytes = 16u << 20;
  size_t max_header_bytes = 16u << 10;
  api::JsonLimits json_limits;               // nesting and keys per object of a request body
  // Open connections. At the cap, an idle keep-alive connection is closed to make room; if none is idle the
  // newcomer gets a 503 and is closed. 0: no cap.
  size_t max_connections = 1024;
  size_t max_connections_per_address = 512;
  std::chrono::milliseconds request_timeout{std::chrono::minutes(10)};  // one generation, start to end; 0: none
  size_t max_response_bytes = 32u << 20;     // a non-streamed response, approximately; stream for more
  int worker_threads = 2;                    // parse, render and tokenize requests off the event loop
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)};   // waiting for (the rest of) a request
  std::chrono::milliseconds write_timeout{std::chrono::seconds(60)};  // a client that stops reading
  std::chrono::milliseconds shutdown_grace{std::chrono::seconds(10)}; // in-flight requests may finish within it
  bool handle_signals = false;               // SIGINT / SIGTERM start a graceful shutdown
  std::FILE* log = stderr;                   // one line per request; nullptr: quiet
  LogFormat log_format = LogFormat::Text;
};

class Server {
 public:
  // Binds and listens at once (throws std::runtime_error with one line on failure); serves once run() is called.
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint16_t port() const;

  // Attach the served models (thread-safe; they must outlive the server) and report ready on /health.
  void serve_models(std::vector<const api::ServedModel*> models);
  // Or a registry that loads models on demand (serve --model A --model B, --models-dir); it must outlive the server.
  void serve_registry(registry::ModelRegistry& registry);

  // Runs the event loop on the calling thread until shut down.
  void run();
  // Graceful shutdown, from any thread: stop accepting, stop the engines admitting, let in-flight requests
  // finish within shutdown_grace, then cancel them and close every connection; run() then returns.
  void stop();

  struct Impl;  // the loop's state, shared with the connections (server_state.h)

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace pensieve::http
