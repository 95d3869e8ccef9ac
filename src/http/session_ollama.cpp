// The Ollama routes of a connection. Generation requests go through the same model lease, worker thread and
// generation loop as the OpenAI ones; the model routes read the registry's listing. keep_alive sets how long
// the model stays resident once idle (0: unload after this request).
#include "api/ollama.h"
#include "http/request_checks.h"
#include "http/session.h"

namespace pensieve::http {

using api::ApiError;
using api::ErrorKind;

bool Session::is_ollama_route(const std::string& path, bhttp::verb method) {
  return path.rfind("/api/", 0) == 0 || (path == "/" && method == bhttp::verb::head);
}

asio::awaitable<void> Session::handle_ollama(bhttp::request<bhttp::string_body>& req, Exchange& x,
                                             const std::string& path) {
  const bool is_get = req.method() == bhttp::verb::get || req.method() == bhttp::verb::head;
  const bool is_post = req.method() == bhttp::verb::post;
  std::optional<ApiError> error;
  try {
    if (path == "/") {
      co_await send(api::Reply{200, "Ollama is running", "text/plain; charset=utf-8"}, x);  // HEAD: no body
      co_return;
    }
    if (!authorized(req, server_.options.api_keys)) throw ApiError(ErrorKind::Authentication, "unauthorized");
    if (path == "/api/version") {
      if (!is_get) throw ApiError(ErrorKind::MethodNotAllowed, "use GET " + path);
      co_await send(api::ollama_version(), x);
      co_return;
    }
    if (!server_.ready) {
      throw ApiError(ErrorKind::Unavailable, server_.stopping ? "the server is shutting down" : "the model is still loading");
    }
    api::Outcome outcome;
    if (path == "/api/tags" || path == "/api/ps") {
      if (!is_get) throw ApiError(ErrorKind::MethodNotAllowed, "use GET " + path);
      const auto listing = server_.registry->listing();
      outcome = path == "/api/tags" ? api::ollama_tags(listing) : api::ollama_ps(listing);
    } else if (path == "/api/show") {
      if (!is_post) throw ApiError(ErrorKind::MethodNotAllowed, "use POST " + path);
      api::check_json_limits(req.body(), server_.options.json_limits);
      outcome = api::ollama_show(server_.registry->listing(), req.body());
    } else if (path == "/api/chat" || path == "/api/generate") {
      if (!is_post) throw ApiError(ErrorKind::MethodNotAllowed, "use POST " + path);
      const std::string& body = req.body();
      std::vector<const api::ServedModel*> models;
      if (const std::string name = co_await requested_model(body); !name.empty()) {
        lease_ = co_await acquire_model(name);
        models.push_back(&lease_->served());
      }
      auto work = [&models, &path, &body, registry = server_.registry]() -> asio::awaitable<api::Outcome> {
        const std::span<const api::ServedModel* const> m(models);
        // Per request, as Ollama does it: without keep_alive the model stays (our default) until the budget
        // needs its room.
        const auto keep_alive = api::ollama_keep_alive(body);
        if (!models.empty()) registry->set_keep_alive(models.front()->id(), keep_alive ? *keep_alive : std::nullopt);
        if (path == "/api/chat") co_return api::ollama_chat(m, body);
        co_return api::ollama_generate(m, body);
      };
      outcome = co_await asio::co_spawn(server_.workers, std::move(work), asio::use_awaitable);
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
  co_await fail(*error, false, x);
}

}  // namespace pensieve::http
