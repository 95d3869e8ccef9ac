#include "http/server.h"

#include <algorithm>
#include <csignal>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "http/server_state.h"
#include "http/model_status.h"
#include "http/session.h"

namespace pensieve::http {

namespace {

// Completion of a detached connection coroutine: an exception that escaped it ends that connection only.
auto log_escaped_exception(std::FILE* log, LogFormat format, const char* what) {
  return [log, format, what](const std::exception_ptr& e) {
    if (!e || !log) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log_message(log, format, std::string(what) + " ended by an exception: " + ex.what(), "error");
    } catch (...) {
      log_message(log, format, std::string(what) + " ended by an unknown exception", "error");
    }
  };
}

// Over the connection caps: a short 503, written without waiting (the socket's buffer is empty), then close.
void refuse_connection(asio::ip::tcp::socket& socket) {
  static const std::string kBody =
      R"({"error":{"message":"too many open connections","type":"service_unavailable","param":null,"code":null}})";
  static const std::string kBusy =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
      "Connection: close\r\nContent-Length: " + std::to_string(kBody.size()) + "\r\n\r\n" + kBody;
  boost::system::error_code ec;
  socket.non_blocking(true, ec);
  socket.write_some(asio::buffer(kBusy), ec);
  socket.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

}  // namespace

Server::Impl::Impl(ServerOptions o)
    : options(std::move(o)), workers(static_cast<size_t>(std::max(1, options.worker_threads))) {}

Server::Server(ServerOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {
  namespace ip = asio::ip;
  boost::system::error_code ec;
  const ip::address address = ip::make_address(impl_->options.host, ec);
  if (ec) throw std::runtime_error("--host '" + impl_->options.host + "' is not an IP address");
  const ip::tcp::endpoint endpoint(address, impl_->options.port);
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error("cannot listen on " + impl_->options.host + ":" + std::to_string(impl_->options.port) +
                             ": " + ec.message());
  }
}

Server::~Server() = default;

uint16_t Server::port() const { return impl_->acceptor.local_endpoint().port(); }

void Server::serve_models(std::vector<const api::ServedModel*> models) {
  asio::post(impl_->ioc, [impl = impl_, owned = registry::ModelRegistry::of_resident(std::move(models))]() mutable {
    impl->owned_registry = std::move(owned);
    impl->registry = impl->owned_registry.get();
    impl->ready = !impl->stopping;
  });
}

void Server::serve_registry(registry::ModelRegistry& registry) {
  asio::post(impl_->ioc, [impl = impl_, r = &registry] {
    impl->registry = r;
    impl->ready = !impl->stopping;
  });
}

void Server::run() {
  auto impl = impl_;
  if (impl->options.handle_signals) {
    impl->signals.add(SIGINT);
    impl->signals.add(SIGTERM);
    impl->signals.async_wait([impl](const boost::system::error_code& ec, int) {
      if (!ec) impl->begin_shutdown();
    });
  }
  asio::co_spawn(impl->ioc, impl->accept_loop(),
                 log_escaped_exception(impl->options.log, impl->options.log_format, "accept loop"));
  impl->ioc.run();
  impl->workers.join();
}

void Server::stop() {
  asio::post(impl_->ioc, [impl = impl_] { impl->begin_shutdown(); });
}

asio::awaitable<void> Server::Impl::accept_loop() {
  auto self = shared_from_this();
  asio::steady_timer backoff(ioc);
  while (!stopping) {
    boost::system::error_code ec;
    asio::ip::tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (stopping) break;
    if (ec) {
      // Out of file descriptors and the like: wait a little instead of spinning.
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    const auto remote = socket.remote_endpoint(ec);
    const std::string address = ec ? "?" : remote.address().to_string();
    if (!admit_connection(address)) {
      refuse_connection(socket);
      continue;
    }
    socket.set_option(asio::ip::tcp::no_delay(true), ec);
    auto session = std::make_shared<Session>(*this, std::move(socket), address);
    sessions.insert(session.get());
    ++per_address[address];
    asio::co_spawn(ioc, session->run(session), log_escaped_exception(options.log, options.log_format, "connection"));
  }
}

bool Server::Impl::admit_connection(const std::string& address) {
  const auto it = per_address.find(address);
  const size_t from_address = it == per_address.end() ? 0 : it->second;
  if (options.max_connections_per_address && from_address >= options.max_connections_per_address) return false;
  if (!options.max_connections || sessions.size() < options.max_connections) return true;
  // Full: an idle keep-alive connection (waiting for a next request that may never come) yields its place.
  for (Session* s : sessions) {
    if (s->evictable()) {
      s->on_shutdown();
      return true;  // it leaves the set once its coroutine ends; the cap may be passed by one meanwhile
    }
  }
  return false;
}

void Server::Impl::begin_shutdown() {
  if (stopping) return;
  stopping = true;
  ready = false;
  boost::system::error_code ignored;
  acceptor.close(ignored);
  signals.cancel(ignored);
  if (registry) registry->stop_admitting();
  for (Session* s : std::vector<Session*>(sessions.begin(), sessions.end())) s->on_shutdown();
  if (sessions.empty()) return;
  grace_timer.expires_after(options.shutdown_grace);
  grace_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec) return;
    for (Session* s : std::vector<Session*>(self->sessions.begin(), self->sessions.end())) s->force_end();
  });
}

void Server::Impl::session_ended(Session* s) {
  sessions.erase(s);
  if (auto it = per_address.find(s->address()); it != per_address.end() && --it->second == 0) per_address.erase(it);
  if (stopping && sessions.empty()) grace_timer.cancel();
}

std::string Server::Impl::metrics_text() const {
  const std::vector<registry::ModelStatus> status = registry ? registry->status() : std::vector<registry::ModelStatus>{};
  std::vector<ModelGauges> gauges;
  for (const registry::ModelStatus& m : status) {
    if (m.engine) gauges.push_back({m.listing.name, *m.engine, m.max_parallel});
  }
  return metrics.render(gauges, static_cast<int>(sessions.size()), active_requests) + registry_metrics(status);
}

std::string Server::Impl::status_json() const {
  using nlohmann::json;
  const double uptime =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const std::vector<registry::ModelStatus> status = registry ? registry->status() : std::vector<registry::ModelStatus>{};
  json models_json = json::array();
  for (const registry::ModelStatus& m : status) models_json.push_back(model_status_json(m));
  json j = {{"status", ready ? "ok" : (stopping ? "stopping" : "loading")},
            {"model", status.empty() ? json(nullptr) : json(status.front().listing.name)},
            {"models", std::move(models_json)},
            {"memory", {{"budget_bytes", registry ? registry->memory_budget() : 0},
                        {"resident_bytes", registry ? registry->resident_bytes() : 0}}},
            {"uptime_seconds", uptime},
            {"http", {{"open_connections", sessions.size()}, {"active_requests", active_requests},
                      {"requests_total", metrics.requests()}}}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace pensieve::http
