// The part of a connection that serves one engine request: streamed as SSE over chunked transfer encoding, or
// collected into one body. Engine events arrive through the handle's notify (posted onto the loop); a watcher
// reading the socket turns a client's disconnect into a cancel.
#include <fmt/format.h>

#include "api/api_error.h"
#include "http/session.h"

namespace pensieve::http {

using Clock = std::chrono::steady_clock;

namespace {
auto redirect(boost::system::error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }
}  // namespace


asio::awaitable<void> Session::watch_disconnect([[maybe_unused]] std::shared_ptr<Session> self, std::shared_ptr<Wake> wake) {
  std::array<char, 4096> scratch;
  boost::system::error_code ec;
  const size_t n = co_await socket_.async_read_some(asio::buffer(scratch), redirect(ec));
  if (!ec) {
    stash_.append(scratch.data(), n);  // a pipelined next request, not a disconnect
  } else if (ec != asio::error::operation_aborted) {
    client_gone_ = true;
  }
  watching_ = false;
  wake->notify_here();
}

asio::awaitable<bool> Session::write_chunk(const std::string& bytes) {
  if (bytes.empty() || closed_) co_return !closed_;
  arm(server_.options.write_timeout);
  boost::system::error_code ec;
  co_await asio::async_write(socket_, bhttp::make_chunk(asio::buffer(bytes)), redirect(ec));
  disarm();
  co_return !ec;
}

void Session::observe_token_times(std::span<const engine::GenerationEvent> events, const Exchange& x,
                                  std::optional<Clock::time_point>& last_token) {
  for (const auto& e : events) {
    if (e.tokens.empty()) continue;
    const auto now = Clock::now();
    if (!last_token) {
      server_.metrics.observe_ttft(std::chrono::duration<double>(now - x.start).count());
    } else {
      const double gap = std::chrono::duration<double>(now - *last_token).count() / double(e.tokens.size());
      for (size_t i = 0; i < e.tokens.size(); ++i) server_.metrics.observe_inter_token(gap);
    }
    last_token = now;
  }
}

asio::awaitable<void> Session::serve_generation(api::Generation& gen, Exchange& x) {
  ++server_.active_requests;
  handle_ = gen.shared_handle();
  auto wake = std::make_shared<Wake>(socket_.get_executor());
  wake_ = wake;
  client_gone_ = false;
  watching_ = true;
  asio::co_spawn(socket_.get_executor(), watch_disconnect(shared_from_this(), wake), asio::detached);
  gen.handle().set_notify([wake] {
    wake->pending.store(true);
    asio::post(wake->executor, [wake] { wake->timer.cancel(); });
  });

  bool ok = true;
  if (gen.streaming()) {
    bhttp::response<bhttp::empty_body> res{bhttp::status::ok, 11};
    res.set(bhttp::field::server, "pensieve");
    res.set(bhttp::field::content_type, "text/event-stream");
    res.set(bhttp::field::cache_control, "no-cache");
    res.keep_alive(keep_alive_ && !server_.stopping);
    res.chunked(true);
    bhttp::response_serializer<bhttp::empty_body> sr{res};
    arm(server_.options.write_timeout);
    boost::system::error_code ec;
    co_await bhttp::async_write_header(socket_, sr, redirect(ec));
    disarm();
    x.status = 200;
    ok = !ec && co_await write_chunk(gen.stream_open());
  }

  std::vector<engine::GenerationEvent> events;
  std::optional<Clock::time_point> last_token;
  bool ended = false;
  while (ok && !forced_) {
    // Cleared before draining: a notify that lands after this point leaves `pending` set, so no wake is lost.
    wake->pending.store(false);
    events.clear();
    const bool more = gen.handle().drain(events);
    if (!events.empty()) {
      observe_token_times(events, x, last_token);
      if (gen.streaming()) {
        ok = co_await write_chunk(gen.stream_events(events));
      } else {
        gen.collect(events);
      }
    }
    if (!more) {
      ended = true;
      break;
    }
    if (client_gone_) break;
    if (!events.empty()) continue;  // more may already be queued (drain also returns true on the last batch)
    if (!wake->pending.load()) {
      wake->timer.expires_at(Clock::time_point::max());
      boost::system::error_code ec;
      co_await wake->timer.async_wait(redirect(ec));
    }
  }

  if (!ended) {
    // The client went away, a write failed, or the shutdown grace ran out: free the sequence now.
    gen.handle().cancel();
    x.cancelled = true;
    keep_alive_ = false;
  }
  gen.handle().set_notify(nullptr);
  if (ended) {
    if (gen.streaming()) {
      std::string tail = gen.stream_close();
      if (co_await write_chunk(tail)) {
        arm(server_.options.write_timeout);
        boost::system::error_code ec;
        co_await asio::async_write(socket_, bhttp::make_chunk_last(), redirect(ec));
        disarm();
        if (ec) keep_alive_ = false;
      }
    } else {
      api::Reply reply = gen.reply();
      co_await send(reply, x);
    }
  }
  // Stop the watcher before the connection reads its next request from the same socket.
  while (watching_) {
    boost::system::error_code ignored;
    socket_.cancel(ignored);
    wake->timer.expires_at(Clock::time_point::max());
    boost::system::error_code ec;
    if (watching_) co_await wake->timer.async_wait(redirect(ec));
  }
  if (!stash_.empty()) {
    auto dest = buffer_.prepare(stash_.size());
    asio::buffer_copy(dest, asio::buffer(stash_));
    buffer_.commit(stash_.size());
    stash_.clear();
  }
  const engine::Usage usage = gen.handle().usage();
  x.prompt_tokens = usage.prompt_tokens;
  x.generated_tokens = usage.completion_tokens;
  server_.metrics.add_tokens(usage.prompt_tokens, usage.completion_tokens);
  handle_.reset();
  wake_.reset();
  --server_.active_requests;
}

}  // namespace pensieve::http
