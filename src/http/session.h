#pragma once
// One client connection: a coroutine that reads requests (keep-alive), routes them and writes the responses,
// streaming SSE for generations. While a generation runs, a second coroutine watches the socket so that a
// client that goes away cancels its request at once, and a deadline closes connections that stall.
#include <atomic>
#include <chrono>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange
#include <memory>
#include <optional>
#include <string>

#include <boost/asio.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "api/api_error.h"
#include "api/generation.h"
#include "http/server_state.h"

namespace pensieve::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

// Wakes a coroutine waiting for engine events; notify() may run on any thread.
struct Wake {
  explicit Wake(asio::any_io_executor ex) : executor(ex), timer(ex) {}
  void notify_here();  // on the loop thread
  asio::any_io_executor executor;
  asio::steady_timer timer;
  std::atomic<bool> pending{false};
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Server::Impl& server, tcp::socket socket, std::string address);
  asio::awaitable<void> run(std::shared_ptr<Session> self);
  void on_shutdown();  // close if idle between requests
  void force_end();    // the shutdown grace is over: cancel the generation, end the connection
  const std::string& address() const { return address_; }
  // Kept alive after a request and waiting for the next: may be closed to make room for a new connection.
  bool evictable() const { return idle_ && served_ > 0 && !closed_; }

 private:
  // One request/response: what the log line and the metrics need.
  struct Exchange {
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    std::string method;
    std::string target;
    std::string route;
    int status = 0;
    int prompt_tokens = 0;
    int generated_tokens = 0;
    std::string model;              // of a generation
    std::optional<double> ttft_ms;  // of a generation that produced a token
    bool cancelled = false;
  };

  asio::awaitable<void> watchdog([[maybe_unused]] std::shared_ptr<Session> self);
  asio::awaitable<void> watch_disconnect([[maybe_unused]] std::shared_ptr<Session> self, std::shared_ptr<Wake> wake);
  asio::awaitable<void> serve(std::shared_ptr<Session> self);
  asio::awaitable<bool> read_request(bhttp::request_parser<bhttp::string_body>& parser, Exchange& x);
  asio::awaitable<void> handle(bhttp::request<bhttp::string_body>& req, Exchange& x);
  // /api/* and HEAD /: the Ollama API, with its own error shape (session_ollama.cpp).
  static bool is_ollama_route(const std::string& path, bhttp::verb method);
  asio::awaitable<void> handle_ollama(bhttp::request<bhttp::string_body>& req, Exchange& x, const std::string& path);
  asio::awaitable<api::Outcome> run_adapter(const std::string& path, const std::string& body);
  // The body's "model" (checked against the JSON limits first, on a worker), then a lease on that model, loaded
  // if need be (session_models.cpp).
  asio::awaitable<std::string> requested_model(const std::string& body);
  asio::awaitable<std::shared_ptr<registry::Lease>> acquire_model(const std::string& name);
  asio::awaitable<void> send_interim();
  asio::awaitable<void> send(const api::Reply& reply, Exchange& x);
  asio::awaitable<void> send_error(const api::ApiError& e, bool anthropic, Exchange& x);
  // A route's answer: the reply, or the generation served to its end.
  asio::awaitable<void> deliver(api::Outcome& outcome, Exchange& x);
  // A route's error: its body in the API's shape, or, once a generation has started, the connection's end.
  asio::awaitable<void> fail(const api::ApiError& error, bool anthropic, Exchange& x);
  bool ollama_ = false;  // the current request is an Ollama one: its errors are {"error": "..."}
  asio::awaitable<void> serve_generation(api::Generation& gen, Exchange& x);
  asio::awaitable<bool> write_chunk(const std::string& bytes);
  void observe_token_times(std::span<const engine::GenerationEvent> events, Exchange& x, const std::string& model,
                           std::optional<std::chrono::steady_clock::time_point>& last_token);
  void abandon_generation();  // a generation that failed half-way: cancel it and forget it
  void log(const Exchange& x);
  void arm(std::chrono::milliseconds timeout);
  void disarm();
  void close_socket();

  Server::Impl& server_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
  asio::steady_timer deadline_;
  std::string address_;
  std::string peer_;
  int served_ = 0;  // requests answered on this connection
  bool closed_ = false;
  bool idle_ = true;
  bool keep_alive_ = true;
  bool forced_ = false;
  // While a generation runs:
  std::shared_ptr<engine::RequestHandle> handle_;
  std::shared_ptr<Wake> wake_;
  bool watching_ = false;
  bool client_gone_ = false;
  bool stop_watching_ = false;
  bool half_closed_ = false;  // the client shut its sending side: answer, then close
  std::string stash_;  // bytes the watcher read that belong to the next request
  std::shared_ptr<registry::Lease> lease_;  // the model the current request uses stays resident
};

}  // namespace pensieve::http
