#include "http/session.h"

#include <cctype>

#include "api/anthropic.h"
#include "api/api_error.h"
#include "api/ollama.h"
#include "api/openai.h"
#include "http/request_checks.h"
#include "http/web_page.h"

namespace pensieve::http {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using api::ApiError;
using api::ErrorKind;

namespace {
constexpr auto kRedirect = [](boost::system::error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); };

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// "%2F" -> "/": model ids such as "org/name" arrive escaped in a path.
std::string percent_decoded(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}
}  // namespace

void Wake::notify_here() {
  pending.store(true);
  timer.cancel();
}


Session::Session(Server::Impl& server, tcp::socket socket, std::string address)
    : server_(server), socket_(std::move(socket)), deadline_(socket_.get_executor()), address_(std::move(address)) {
  boost::system::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  peer_ = ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
  deadline_.expires_at(Clock::time_point::max());
}

void Session::arm(std::chrono::milliseconds timeout) { deadline_.expires_after(timeout); }
void Session::disarm() { deadline_.expires_at(Clock::time_point::max()); }

void Session::close_socket() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  deadline_.cancel();
}

void Session::on_shutdown() {
  keep_alive_ = false;
  if (idle_) close_socket();
}

void Session::force_end() {
  forced_ = true;
  if (handle_) handle_->cancel();
  if (wake_) wake_->notify_here();
  close_socket();
}

asio::awaitable<void> Session::watchdog([[maybe_unused]] std::shared_ptr<Session> self) {
  while (!closed_) {
    boost::system::error_code ec;
    co_await deadline_.async_wait(kRedirect(ec));
    if (closed_) break;
    if (deadline_.expiry() <= Clock::now()) {
      close_socket();
      break;
    }
  }
}

asio::awaitable<void> Session::run(std::shared_ptr<Session> self) {
  try {
    co_await serve(self);
  } catch (const std::exception& e) {
    // A bug, not a client's doing: this connection ends, the server goes on.
    log_message(server_.options.log, server_.options.log_format, peer_ + ": connection failed: " + e.what(), "error");
  }
  abandon_generation();
  close_socket();
  server_.session_ended(this);
}

void Session::abandon_generation() {
  if (!handle_) return;
  handle_->set_notify(nullptr);
  handle_->cancel();
  handle_.reset();
  wake_.reset();
  stop_watching_ = true;
  keep_alive_ = false;
  --server_.active_requests;
}

asio::awaitable<void> Session::serve(std::shared_ptr<Session> self) {
  asio::co_spawn(socket_.get_executor(), watchdog(self), asio::detached);
  const ServerOptions& opt = server_.options;
  while (!closed_ && keep_alive_ && !server_.stopping) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<uint32_t>(opt.max_header_bytes));
    parser.body_limit(opt.max_body_bytes);
    Exchange x;
    if (!co_await read_request(parser, x)) break;
    disarm();
    bhttp::request<bhttp::string_body> req = parser.release();
    if (!req.keep_alive()) keep_alive_ = false;
    co_await handle(req, x);
    lease_.reset();  // the request is answered: its model may be unloaded now
    ++served_;
    log(x);
  }
}

// Reads one request's head and body; false when the connection is to end (answered already if it must be).
asio::awaitable<bool> Session::read_request(bhttp::request_parser<bhttp::string_body>& parser, Exchange& x) {
  const ServerOptions& opt = server_.options;
  idle_ = true;
  arm(opt.idle_timeout);
  boost::system::error_code ec;
  co_await bhttp::async_read_header(socket_, buffer_, parser, kRedirect(ec));
  idle_ = false;
  if (!ec) {
    const auto& head = parser.get();
    x.method = std::string(head.method_string());
    x.target = std::string(head.target());
    const std::string path = x.target.substr(0, x.target.find('?'));
    x.route = route_label(path);
    const bool anthropic = path.rfind("/v1/messages", 0) == 0;
    // Refused before any body is read (or asked for with 100 Continue); the connection cannot go on.
    std::optional<ApiError> refusal;
    if (const std::string why = unsupported_framing(head); !why.empty()) {
      refusal = ApiError(ErrorKind::InvalidRequest, why);
    } else if (path.rfind("/v1/", 0) == 0 && !authorized(head, opt.api_keys)) {
      refusal = ApiError(ErrorKind::Authentication, "invalid or missing API key");
    }
    if (refusal && (refusal->kind() != ErrorKind::Authentication || head[bhttp::field::expect] == "100-continue")) {
      keep_alive_ = false;
      co_await send_error(*refusal, anthropic, x);
      log(x);
      co_return false;
    }
    if (head[bhttp::field::expect] == "100-continue") {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      co_await asio::async_write(socket_, asio::buffer(kContinue), kRedirect(ec));
    }
  }
  if (!ec && !parser.is_done()) co_await bhttp::async_read(socket_, buffer_, parser, kRedirect(ec));
  if (!ec) co_return true;
  if (closed_ || ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
      ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
    co_return false;
  }
  // A request we refuse to read further: answer once, then drop the connection.
  keep_alive_ = false;
  if (x.method.empty()) x.method = x.target = "?";
  x.route = "invalid";
  if (ec == bhttp::error::body_limit) {
    co_await send_error(ApiError(ErrorKind::TooLarge, "request body exceeds " + std::to_string(opt.max_body_bytes) + " bytes"), false, x);
  } else if (ec == bhttp::error::header_limit) {
    api::Reply r{431, R"({"error":{"message":"request headers too large","type":"invalid_request_error","param":null,"code":null}})"};
    co_await send(r, x);
  } else {
    co_await send_error(ApiError(ErrorKind::InvalidRequest, "malformed HTTP request: " + ec.message()), false, x);
  }
  co_return false;
}

// ---- routing ----

asio::awaitable<void> Session::handle(bhttp::request<bhttp::string_body>& req, Exchange& x) {
  x.method = std::string(req.method_string());
  x.target = std::string(req.target());
  const std::string path = x.target.substr(0, x.target.find('?'));
  const bool anthropic = path.rfind("/v1/messages", 0) == 0;
  const bool is_get = req.method() == bhttp::verb::get || req.method() == bhttp::verb::head;
  const bool is_post = req.method() == bhttp::verb::post;
  x.route = route_label(path);
  std::optional<ApiError> error;
  ollama_ = is_ollama_route(path, req.method());
  if (ollama_) {
    co_await handle_ollama(req, x, path);
    co_return;
  }
  try {
    if (path == "/health") {
      if (!is_get) throw ApiError(ErrorKind::MethodNotAllowed, "use GET " + path);
      const bool ready = server_.ready;
      co_await send(api::Reply{ready ? 200 : 503, ready ? R"({"status":"ok"})" : R"({"status":"loading"})"}, x);
      co_return;
    }
    if (path == "/metrics") {
      if (!is_get) throw ApiError(ErrorKind::MethodNotAllowed, "use GET " + path);
      co_await send(api::Reply{200, server_.metrics_text(), "text/plain; version=0.0.4; charset=utf-8"}, x);
      co_return;
    }
    const auto if_none_match = req[bhttp::field::if_none_match];
    if (auto page = web_page_reply(path, std::string_view(if_none_match.data(), if_none_match.size()))) {
      if (!is_get) throw ApiError(ErrorKind::MethodNotAllowed, "use GET " + path);
      x.route = path == "/" ? "/" : "/assets/{file}";
      co_await send(*page, x);
      co_return;
    }
    if (path.rfind("/v1/", 0) != 0) throw ApiError(ErrorKind::NotFound, "no route for " + x.method + " " + path);
    // Everything under /v1/ needs a key when any is set: "Authorization: Bearer KEY" or "x-api-key: KEY".
    if (!authorized(req, server_.options.api_keys)) throw ApiError(ErrorKind::Authentication, "invalid or missing API key");
    if (path == "/v1/status") {
      if (!is_get) throw ApiError(ErrorKind::MethodNotAllowed, "use GET " + path);
      co_await send(api::Reply{200, server_.status_json()}, x);
      co_return;
    }
    if (path == "/v1/stats") {
      if (!is_get) throw ApiError(ErrorKind::MethodNotAllowed, "use GET " + path);
      api::Reply stats{200, server_.stats_json()};
      stats.headers.emplace_back("Cache-Control", "no-store");
      co_await send(stats, x);
      co_return;
    }
    if (!server_.ready) {
      throw ApiError(ErrorKind::Unavailable, server_.stopping ? "the server is shutting down" : "the model is still loading");
    }
    api::Outcome outcome;
    if (path == "/v1/models") {
      if (!is_get) throw ApiError(ErrorKind::MethodNotAllowed, "use GET " + path);
      outcome = api::openai_models(server_.registry->listing());
    } else if (path.rfind("/v1/models/", 0) == 0 && path.size() > 11) {
      if (!is_get) throw ApiError(ErrorKind::MethodNotAllowed, "use GET " + path);
      x.route = "/v1/models/{id}";
      outcome = api::openai_model(server_.registry->listing(), percent_decoded(path.substr(11)));
    } else if (path == "/v1/chat/completions" || path == "/v1/completions" || path == "/v1/messages" ||
               path == "/v1/messages/count_tokens") {
      if (!is_post) throw ApiError(ErrorKind::MethodNotAllowed, "use POST " + path);
      outcome = co_await run_adapter(path, req.body());
    } else {
      throw ApiError(ErrorKind::NotFound, "no route for " + x.method + " " + path);
    }
    co_await deliver(outcome, x);
    co_return;
  } catch (const ApiError& e) {
    error = e;
  } catch (const std::exception& e) {
    error = ApiError(ErrorKind::Internal, std::string("internal error: ") + e.what());
  }
  co_await fail(*error, anthropic, x);
}

asio::awaitable<void> Session::deliver(api::Outcome& outcome, Exchange& x) {
  if (auto* reply = std::get_if<api::Reply>(&outcome)) {
    co_await send(*reply, x);
  } else {
    co_await serve_generation(*std::get<std::unique_ptr<api::Generation>>(outcome), x);
  }
}

asio::awaitable<void> Session::fail(const ApiError& error, bool anthropic, Exchange& x) {
  if (handle_) {
    // Failed in the middle of a generation: part of a response may be out, so no error can follow it. Free the
    // sequence and end the connection.
    abandon_generation();
    close_socket();
    x.status = 500;
    co_return;
  }
  co_await send_error(error, anthropic, x);
}

// The adapter runs on a worker thread: parsing, template rendering and tokenizing cost time in proportion to
// the body, and the event loop must stay free for every other connection (and /health).
asio::awaitable<api::Outcome> Session::run_adapter(const std::string& path, const std::string& body) {
  std::vector<const api::ServedModel*> models;
  if (const std::string name = co_await requested_model(body); !name.empty()) {
    lease_ = co_await acquire_model(name);
    models.push_back(&lease_->served());
  }  // else the adapter says what is wrong with the body
  auto work = [&models, &path, &body]() -> asio::awaitable<api::Outcome> {
    const std::span<const api::ServedModel* const> m(models);
    if (path == "/v1/chat/completions") co_return api::openai_chat_completions(m, body);
    if (path == "/v1/completions") co_return api::openai_completions(m, body);
    if (path == "/v1/messages") co_return api::anthropic_messages(m, body);
    co_return api::anthropic_count_tokens(m, body);
  };
  co_return co_await asio::co_spawn(server_.workers, std::move(work), asio::use_awaitable);
}

// ---- plain responses ----

asio::awaitable<void> Session::send(const api::Reply& reply, Exchange& x) {
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(reply.status), 11};
  res.set(bhttp::field::server, "pensieve");
  res.set(bhttp::field::content_type, reply.content_type);
  for (const auto& [name, value] : reply.headers) res.set(name, value);
  res.keep_alive(keep_alive_ && !server_.stopping);
  res.body() = reply.body;
  if (x.method == "HEAD") res.body().clear();
  res.prepare_payload();
  x.status = reply.status;
  arm(server_.options.write_timeout);
  boost::system::error_code ec;
  co_await bhttp::async_write(socket_, res, kRedirect(ec));
  disarm();
  if (ec) close_socket();
}

asio::awaitable<void> Session::send_error(const ApiError& e, bool anthropic, Exchange& x) {
  api::Reply r{api::http_status(e.kind()), ollama_ ? api::ollama_error_body(e)
                                           : anthropic ? api::anthropic_error_body(e) : api::openai_error_body(e)};
  if (e.kind() == ErrorKind::Overloaded) r.headers.emplace_back("Retry-After", std::to_string(api::kRetryAfterSeconds));
  if (e.kind() == ErrorKind::Authentication) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  co_await send(r, x);
}

void Session::log(const Exchange& x) {
  server_.metrics.count_request(x.route, x.status);
  const double seconds = seconds_since(x.start);
  server_.metrics.observe_duration(seconds);
  if (!server_.options.log) return;
  const RequestLog entry{peer_,           x.method,           x.target,  x.model,       x.status,
                         x.prompt_tokens, x.generated_tokens, x.ttft_ms, seconds * 1e3, x.cancelled};
  write_log_line(server_.options.log, request_log_line(entry, server_.options.log_format));
}

}  // namespace pensieve::http
