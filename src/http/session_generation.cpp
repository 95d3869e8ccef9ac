// The part of a connection that serves one engine request: streamed as SSE over chunked transfer encoding, or
// collected into one body. Engine events arrive through the handle's notify (posted onto the loop); a watcher
// reading the socket turns a client's disconnect into a cancel.
#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "api/api_error.h"
#include "http/session.h"

namespace pensieve::http {

using Clock = std::chrono::steady_clock;
using api::ApiError;
using api::ErrorKind;

namespace {
auto redirect(boost::system::error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

constexpr size_t kStashLimit = 64u << 10;  // pipelined bytes kept while a generation runs
// After a half-close, how often a non-streamed request checks that the client still reads (see send_interim).
constexpr auto kProbeInterval = std::chrono::seconds(1);

// What a batch of events adds to a collected response, roughly as its JSON will weigh: text plus an entry per
// logprob and alternative.
size_t estimated_bytes(std::span<const engine::GenerationEvent> events) {
  size_t n = 0;
  for (const auto& e : events) {
    n += e.text.size() + 16;
    size_t entries = e.logprobs.size();
    for (const auto& top : e.top_logprobs) entries += top.size();
    n += entries * 96;
  }
  return n;
}
}  // namespace


// Reads the socket for as long as the generation runs. Bytes that arrive are a pipelined next request, kept
// up to a bound (beyond it the connection closes after this answer) while the watch goes on; an error is a
// client gone; an orderly end (FIN) is a half-close: the client may still read, so the answer goes out.
asio::awaitable<void> Session::watch_disconnect([[maybe_unused]] std::shared_ptr<Session> self, std::shared_ptr<Wake> wake) {
  std::array<char, 4096> scratch;
  while (!stop_watching_) {
    boost::system::error_code ec;
    const size_t n = co_await socket_.async_read_some(asio::buffer(scratch), redirect(ec));
    if (ec == asio::error::eof) {
      half_closed_ = true;
      keep_alive_ = false;
      break;
    }
    if (ec) {
      if (ec != asio::error::operation_aborted) client_gone_ = true;
      break;
    }
    if (stash_.size() + n <= kStashLimit) {
      stash_.append(scratch.data(), n);
    } else {
      keep_alive_ = false;  // more than one request can hold: not kept, and the connection ends after this one
    }
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

// Timed per drained batch, not per event: the events of one batch arrive together, so timing them one by one
// would count gaps of a few microseconds. The batch's gap is shared by the engine steps it spans (the most
// tokens any one choice got in it).
void Session::observe_token_times(std::span<const engine::GenerationEvent> events, Exchange& x,
                                  const std::string& model, std::optional<Clock::time_point>& last_token) {
  std::map<int, size_t> per_choice;
  size_t tokens = 0;
  for (const auto& e : events) {
    per_choice[e.choice] += e.tokens.size();
    tokens += e.tokens.size();
  }
  if (tokens == 0) return;
  size_t steps = 0;
  for (const auto& [choice, n] : per_choice) steps = std::max(steps, n);
  const auto now = Clock::now();
  if (!last_token) {
    const double ttft = std::chrono::duration<double>(now - x.start).count();
    server_.metrics.observe_ttft(ttft);
    x.ttft_ms = ttft * 1e3;
    server_.live.observe_first(model, tokens, ttft, now);
  } else {
    const double gap = std::chrono::duration<double>(now - *last_token).count() / double(steps);
    for (size_t i = 0; i < steps; ++i) server_.metrics.observe_inter_token(gap);
    server_.live.observe_next(model, tokens, steps, gap, now);
  }
  last_token = now;
}

// After the client half-closed, a write is the only way to learn whether it still reads (a closed peer answers
// it with a reset, and the next write fails). A 1xx interim response is what HTTP/1.1 allows before the final
// one, and clients must skip it.
asio::awaitable<void> Session::send_interim() {
  static const std::string kProcessing = "HTTP/1.1 102 Processing\r\n\r\n";
  arm(server_.options.write_timeout);
  boost::system::error_code ec;
  co_await asio::async_write(socket_, asio::buffer(kProcessing), redirect(ec));
  disarm();
  if (ec) client_gone_ = true;
}

asio::awaitable<void> Session::serve_generation(api::Generation& gen, Exchange& x) {
  ++server_.active_requests;
  x.model = gen.model_id();
  handle_ = gen.shared_handle();
  auto wake = std::make_shared<Wake>(socket_.get_executor());
  wake_ = wake;
  client_gone_ = false;
  stop_watching_ = false;
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
    res.set(bhttp::field::content_type, gen.stream_content_type());
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
  const ServerOptions& opt = server_.options;
  const auto deadline = opt.request_timeout.count() > 0 ? x.start + opt.request_timeout : Clock::time_point::max();
  std::optional<ApiError> failure;  // the request was stopped here: the reply says why
  size_t collected = 0;
  auto next_probe = Clock::now() + kProbeInterval;
  while (ok && !forced_) {
    // Cleared before draining: a notify that lands after this point leaves `pending` set, so no wake is lost.
    wake->pending.store(false);
    events.clear();
    const bool more = gen.handle().drain(events);
    if (!events.empty()) {
      observe_token_times(events, x, gen.model_id(), last_token);
      if (gen.streaming()) {
        ok = co_await write_chunk(gen.stream_events(events));
      } else if (!failure) {
        collected += estimated_bytes(events);
        if (collected > opt.max_response_bytes) {
          failure = ApiError(ErrorKind::InvalidRequest, "the response would exceed " + std::to_string(opt.max_response_bytes) +
                                 " bytes; stream it (\"stream\": true) or ask for fewer tokens, choices or logprobs");
          gen.handle().cancel();
        } else {
          gen.collect(events);
        }
      }
    }
    if (!more) {
      ended = true;
      break;
    }
    if (client_gone_) break;
    const auto now = Clock::now();
    if (now >= deadline && !failure) {
      // The engine ends the request; what it sends until then still goes out, so a stream closes properly.
      failure = ApiError(ErrorKind::Unavailable, "the request ran longer than the server's limit of " +
                                                     std::to_string(opt.request_timeout.count() / 1000) + " s");
      gen.handle().cancel();
    }
    if (!events.empty()) continue;  // more may already be queued (drain also returns true on the last batch)
    const bool probing = half_closed_ && !gen.streaming();
    if (probing && now >= next_probe) {
      co_await send_interim();
      next_probe = now + kProbeInterval;
      continue;
    }
    if (!wake->pending.load()) {
      wake->timer.expires_at(std::min(failure ? Clock::time_point::max() : deadline,
                                      probing ? next_probe : Clock::time_point::max()));
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
    } else if (failure) {
      co_await send_error(*failure, x.route.rfind("/v1/messages", 0) == 0, x);
    } else {
      api::Reply reply = gen.reply();
      co_await send(reply, x);
    }
  }
  // Stop the watcher before the connection reads its next request from the same socket.
  stop_watching_ = true;
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
