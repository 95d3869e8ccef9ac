// How a connection finds the model a request names: the name is read off the body on a worker thread, then the
// registry leases the model, loading it first when it is not resident. The wait for a load is asynchronous: the
// event loop serves every other connection meanwhile.
#include "http/session.h"

namespace pensieve::http {

asio::awaitable<std::string> Session::requested_model(const std::string& body) {
  auto work = [limits = server_.options.json_limits, &body]() -> asio::awaitable<std::string> {
    api::check_json_limits(body, limits);  // before the parser or any recursive walk sees the body
    co_return api::requested_model(body);
  };
  co_return co_await asio::co_spawn(server_.workers, std::move(work), asio::use_awaitable);
}

asio::awaitable<std::shared_ptr<registry::Lease>> Session::acquire_model(const std::string& name) {
  auto executor = co_await asio::this_coro::executor;
  struct Waiting {
    explicit Waiting(asio::any_io_executor ex) : timer(ex, std::chrono::steady_clock::time_point::max()) {}
    asio::steady_timer timer;
    std::optional<registry::Acquired> answer;
  };
  auto waiting = std::make_shared<Waiting>(executor);
  // The answer may come on the registry's thread: it is handed to the loop before the wait ends.
  server_.registry->acquire(name, [waiting, executor](registry::Acquired a) {
    asio::post(executor, [waiting, a = std::move(a)]() mutable {
      waiting->answer = std::move(a);
      waiting->timer.cancel();
    });
  });
  while (!waiting->answer) {
    boost::system::error_code ec;
    co_await waiting->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (waiting->answer->error) throw *waiting->answer->error;
  co_return std::move(waiting->answer->lease);
}

}  // namespace pensieve::http
