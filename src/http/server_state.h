#pragma once
// Internal to the http room: the state the server and its connections share. Everything here is touched only
// on the event loop thread.
#include <chrono>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <boost/asio.hpp>

#include "api/served_model.h"
#include "http/live_stats.h"
#include "http/metrics.h"
#include "registry/model_registry.h"
#include "http/server.h"

namespace pensieve::http {

namespace asio = boost::asio;
class Session;

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  explicit Impl(ServerOptions o);

  ServerOptions options;
  registry::ModelRegistry* registry = nullptr;             // set with the models; every route asks it
  std::unique_ptr<registry::ModelRegistry> owned_registry;  // serve_models' resident models
  bool ready = false;
  bool stopping = false;
  std::unordered_set<Session*> sessions;
  std::unordered_map<std::string, size_t> per_address;  // open connections by client address
  int active_requests = 0;
  Metrics metrics;
  LiveStats live;  // windows for the dashboard (GET /v1/stats)
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  // Declared after the state above so that handlers it still holds at destruction find that state alive.
  asio::io_context ioc{1};
  asio::ip::tcp::acceptor acceptor{ioc};
  asio::signal_set signals{ioc};
  asio::steady_timer grace_timer{ioc};
  // Request parsing, template rendering and tokenizing run here, so a costly body never stalls the loop.
  // After ioc: joined before the loop's handlers are destroyed.
  asio::thread_pool workers;

  asio::awaitable<void> accept_loop();
  // Whether a connection from `address` may be opened now; may close an idle one to make room.
  bool admit_connection(const std::string& address);
  void begin_shutdown();
  void session_ended(Session* s);

  std::string metrics_text() const;
  std::string status_json() const;
  std::string stats_json();  // stats_json.cpp
};

}  // namespace pensieve::http
