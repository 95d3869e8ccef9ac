#include "cli/load_generator.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <limits>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

namespace pensieve::cli {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

// Common English words that BPE vocabularies keep whole with their leading space, so one word is about one
// token whatever the server's tokenizer.
constexpr std::array<const char*, 64> kWords = {
    "the",   "of",    "and",   "to",    "in",    "is",    "that",  "for",   "it",    "as",    "was",
    "with",  "be",    "by",    "on",    "not",   "he",    "this",  "are",   "or",    "his",   "from",
    "at",    "which", "but",   "have",  "an",    "had",   "they",  "you",   "were",  "their", "one",
    "all",   "we",    "can",   "her",   "has",   "there", "been",  "if",    "more",  "when",  "will",
    "would", "who",   "so",    "no",    "time",  "water", "house", "city",  "world", "light", "music",
    "river", "story", "table", "green", "small", "night", "paper", "stone", "garden"};

// The fewest output tokens a stream needs for its own tok/s to count (see run_level).
constexpr uint64_t kMinTokensForStreamRate = 4;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

Percentiles percentiles_of(std::vector<double> v) {
  Percentiles p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  // Linear interpolation between closest ranks.
  const auto at = [&](double q) {
    const double pos = q * static_cast<double>(v.size() - 1);
    const auto lo = static_cast<size_t>(pos);
    const size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
  };
  p.p50 = at(0.50);
  p.p95 = at(0.95);
  p.p99 = at(0.99);
  return p;
}

std::string request_body(const LoadConfig& c, int index) {
  const std::string prompt = make_prompt(c.shared_prefix, c.prompt_tokens, index);
  Json body;
  if (!c.model.empty()) body["model"] = c.model;
  body["max_tokens"] = c.max_tokens;
  body["stream"] = true;
  body["temperature"] = 0;
  body["ignore_eos"] = true;
  if (c.api == ApiKind::openai) {
    body["prompt"] = prompt;
    body["stream_options"] = {{"include_usage", true}};
  } else {
    body["messages"] = Json::array({{{"role", "user"}, {"content", prompt}}});
  }
  return body.dump();
}

// Reads one server-sent event stream, a chunk at a time, and keeps the score.
class StreamScorer {
 public:
  StreamScorer(ApiKind api, Clock::time_point sent, RequestSample& sample) : api_(api), sent_(sent), s_(sample) {}

  void feed(std::string_view bytes) {
    pending_.append(bytes);
    for (;;) {
      size_t end = pending_.find("\n\n");
      size_t sep = 2;
      const size_t crlf = pending_.find("\r\n\r\n");
      if (crlf != std::string::npos && (end == std::string::npos || crlf < end)) {
        end = crlf;
        sep = 4;
      }
      if (end == std::string::npos) return;
      event(pending_.substr(0, end));
      pending_.erase(0, end + sep);
    }
  }

  uint64_t content_events() const { return content_events_; }
  uint64_t reported_output() const { return reported_output_; }
  const std::string& error() const { return error_; }

 private:
  void event(const std::string& text) {
    std::string data;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t eol = text.find('\n', pos);
      if (eol == std::string::npos) eol = text.size();
      std::string_view line(text.data() + pos, eol - pos);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.starts_with("data:")) {
        line.remove_prefix(5);
        if (line.starts_with(' ')) line.remove_prefix(1);
        if (!data.empty()) data += '\n';
        data += line;
      }
      pos = eol + 1;
    }
    if (data.empty() || data == "[DONE]") return;
    Json j = Json::parse(data, nullptr, false);
    if (j.is_discarded()) {
      if (error_.empty()) error_ = "unparseable event: " + data.substr(0, 120);
      return;
    }
    if (j.contains("error") && !j["error"].is_null()) {
      const Json& e = j["error"];
      if (error_.empty()) error_ = e.is_object() && e.contains("message") ? e["message"].dump() : e.dump();
      return;
    }
    std::string content;
    if (api_ == ApiKind::openai) {
      if (j.contains("choices") && j["choices"].is_array() && !j["choices"].empty()) {
        const Json& choice = j["choices"][0];
        if (choice.contains("text") && choice["text"].is_string()) content = choice["text"];
        else if (choice.contains("delta") && choice["delta"].contains("content") &&
                 choice["delta"]["content"].is_string())
          content = choice["delta"]["content"];
      }
      if (j.contains("usage") && j["usage"].is_object()) {
        reported_output_ = j["usage"].value("completion_tokens", uint64_t{0});
        s_.prompt_tokens = j["usage"].value("prompt_tokens", uint64_t{0});
      }
    } else {
      const std::string type = j.value("type", "");
      if (type == "content_block_delta" && j["delta"].contains("text")) content = j["delta"]["text"];
      else if (type == "message_start") s_.prompt_tokens = j["message"]["usage"].value("input_tokens", uint64_t{0});
      else if (type == "message_delta" && j.contains("usage"))
        reported_output_ = j["usage"].value("output_tokens", uint64_t{0});
    }
    // An empty text (a finish chunk) is not a token arriving.
    if (content.empty()) return;
    const double now = seconds_since(sent_);
    if (content_events_ == 0) s_.ttft = now;
    else s_.gaps.push_back(now - last_);
    last_ = now;
    ++content_events_;
  }

  ApiKind api_;
  Clock::time_point sent_;
  RequestSample& s_;
  std::string pending_;
  uint64_t content_events_ = 0;
  uint64_t reported_output_ = 0;
  double last_ = 0;
  std::string error_;
};

RequestSample run_request(const LoadConfig& c, tcp::socket& socket, beast::flat_buffer& buffer, int index) {
  RequestSample s;
  const std::string target = c.endpoint.base_path + (c.api == ApiKind::openai ? "/v1/completions" : "/v1/messages");
  http::request<http::string_body> req{http::verb::post, target, 11};
  req.set(http::field::host, c.endpoint.host + ":" + c.endpoint.port);
  req.set(http::field::content_type, "application/json");
  req.set(http::field::accept, "text/event-stream");
  if (!c.api_key.empty()) {
    req.set(http::field::authorization, "Bearer " + c.api_key);
    req.set("x-api-key", c.api_key);
  }
  if (c.api == ApiKind::anthropic) req.set("anthropic-version", "2023-06-01");
  req.keep_alive(true);
  req.body() = request_body(c, index);
  req.prepare_payload();

  const auto sent = Clock::now();
  http::write(socket, req);
  http::response_parser<http::buffer_body> parser;
  // Not boost::none: Boost 1.74 compares Content-Length against the empty optional and rejects every body.
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  http::read_header(socket, buffer, parser);
  const unsigned status = parser.get().result_int();
  StreamScorer scorer(c.api, sent, s);
  std::string error_body;
  std::array<char, 16384> chunk{};
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    beast::error_code ec;
    http::read_some(socket, buffer, parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) throw beast::system_error(ec);
    const std::string_view got(chunk.data(), chunk.size() - parser.get().body().size);
    if (status == 200) scorer.feed(got);
    else if (error_body.size() < 300) error_body.append(got);
  }
  s.e2e = seconds_since(sent);
  if (!parser.get().keep_alive()) {
    beast::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }
  if (status != 200) {
    std::replace(error_body.begin(), error_body.end(), '\n', ' ');
    s.error = "HTTP " + std::to_string(status) + ": " + error_body.substr(0, 200);
    return s;
  }
  if (!scorer.error().empty()) {
    s.error = scorer.error();
    return s;
  }
  // Prefer the server's count: one event can carry several tokens.
  s.output_tokens = scorer.reported_output() > 0 ? scorer.reported_output() : scorer.content_events();
  s.ok = true;
  return s;
}

void connect(tcp::socket& socket, const Endpoint& e) {
  tcp::resolver resolver(socket.get_executor());
  asio::connect(socket, resolver.resolve(e.host, e.port));
  socket.set_option(tcp::no_delay(true));
}

}  // namespace

Endpoint parse_endpoint(const std::string& url) {
  constexpr std::string_view scheme = "http://";
  if (!std::string_view(url).starts_with(scheme))
    throw std::invalid_argument("--url: '" + url + "' is not an http:// URL (https is not supported)");
  std::string rest = url.substr(scheme.size());
  Endpoint e;
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    e.base_path = rest.substr(slash);
    rest.resize(slash);
    while (!e.base_path.empty() && e.base_path.back() == '/') e.base_path.pop_back();
    // Users paste the API root ("http://host:8080/v1"); the paths below add /v1 themselves.
    if (e.base_path.ends_with("/v1")) e.base_path.resize(e.base_path.size() - 3);
  }
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos) {
    e.host = rest;
    e.port = "80";
  } else {
    e.host = rest.substr(0, colon);
    e.port = rest.substr(colon + 1);
  }
  if (e.host.size() > 2 && e.host.front() == '[' && e.host.back() == ']') e.host = e.host.substr(1, e.host.size() - 2);
  const bool numeric_port = !e.port.empty() && e.port.size() <= 5 &&
                            std::all_of(e.port.begin(), e.port.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
  if (e.host.empty() || !numeric_port || std::stoi(e.port) > 65535)
    throw std::invalid_argument("--url: '" + url + "' has no usable host:port");
  return e;
}

void check_reachable(const Endpoint& endpoint) {
  asio::io_context io;
  tcp::socket socket(io);
  try {
    connect(socket, endpoint);
  } catch (const std::exception& ex) {
    throw std::runtime_error("cannot connect to " + endpoint.host + ":" + endpoint.port + ": " + ex.what());
  }
}

namespace {

http::response<http::string_body> http_get(const Endpoint& endpoint, const std::string& path, const std::string& api_key) {
  asio::io_context io;
  tcp::socket socket(io);
  connect(socket, endpoint);
  http::request<http::empty_body> req{http::verb::get, endpoint.base_path + path, 11};
  req.set(http::field::host, endpoint.host + ":" + endpoint.port);
  if (!api_key.empty()) {
    req.set(http::field::authorization, "Bearer " + api_key);
    req.set("x-api-key", api_key);
  }
  http::write(socket, req);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  http::read(socket, buffer, parser);
  return parser.release();
}

}  // namespace

void wait_until_ready(const Endpoint& endpoint, std::chrono::seconds patience) {
  const auto deadline = Clock::now() + patience;
  // Only 503 means "loading"; any other answer (even 404 from a server without /health) means go ahead.
  while (http_get(endpoint, "/health", "").result_int() == 503) {
    if (Clock::now() > deadline)
      throw std::runtime_error("the server at " + endpoint.host + ":" + endpoint.port + " is still loading after " +
                               std::to_string(patience.count()) + " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

std::string first_served_model(const Endpoint& endpoint, const std::string& api_key) {
  try {
    const auto res = http_get(endpoint, "/v1/models", api_key);
    if (res.result_int() != 200) return "";
    const Json j = Json::parse(res.body(), nullptr, false);
    if (j.is_object() && j.contains("data") && j["data"].is_array() && !j["data"].empty() &&
        j["data"][0].contains("id") && j["data"][0]["id"].is_string())
      return j["data"][0]["id"];
  } catch (const std::exception&) {
  }
  return "";
}

std::string make_prompt(int shared, int own, int index) {
  std::string out;
  std::mt19937 common(12345);
  std::mt19937 distinct(static_cast<uint32_t>(index) * 2654435761u + 1);
  std::uniform_int_distribution<size_t> pick(0, kWords.size() - 1);
  for (int i = 0; i < shared + own; ++i) {
    if (i > 0) out += ' ';
    out += kWords[pick(i < shared ? common : distinct)];
  }
  return out;
}

LevelResult run_level(const LoadConfig& config, int concurrency, int requests) {
  std::vector<RequestSample> samples(static_cast<size_t>(requests));
  std::atomic<int> next{0};
  const auto start = Clock::now();
  std::vector<std::jthread> workers;
  for (int w = 0; w < std::min(concurrency, requests); ++w) {
    workers.emplace_back([&] {
      asio::io_context io;
      tcp::socket socket(io);
      beast::flat_buffer buffer;
      for (int i = next++; i < requests; i = next++) {
        RequestSample& s = samples[static_cast<size_t>(i)];
        try {
          if (!socket.is_open()) {
            buffer.clear();
            connect(socket, config.endpoint);
          }
          s = run_request(config, socket, buffer, i);
        } catch (const std::exception& ex) {
          s.ok = false;
          s.error = ex.what();
          beast::error_code ignored;
          socket.close(ignored);
        }
      }
    });
  }
  workers.clear();  // joins

  LevelResult r;
  r.concurrency = concurrency;
  r.requests = requests;
  r.seconds = seconds_since(start);
  std::vector<double> ttft, itl, e2e, per_stream_token_seconds;
  double prompt_sum = 0;
  for (const auto& s : samples) {
    if (!s.ok) {
      ++r.errors;
      if (r.error_samples.size() < 3) r.error_samples.push_back(s.error);
      continue;
    }
    ++r.completed;
    r.output_tokens += s.output_tokens;
    prompt_sum += static_cast<double>(s.prompt_tokens);
    ttft.push_back(s.ttft);
    e2e.push_back(s.e2e);
    itl.insert(itl.end(), s.gaps.begin(), s.gaps.end());
    double decode = 0;
    for (double g : s.gaps) decode += g;
    // A stream's rate is taken over several tokens: two tokens that arrive in one burst would say "thousands of
    // tok/s" and drag the median up.
    if (decode > 0 && s.output_tokens >= kMinTokensForStreamRate) {
      per_stream_token_seconds.push_back(decode / static_cast<double>(s.output_tokens - 1));
    }
  }
  if (r.completed > 0) r.mean_prompt_tokens = prompt_sum / r.completed;
  r.aggregate_tok_s = r.seconds > 0 ? static_cast<double>(r.output_tokens) / r.seconds : 0;
  const Percentiles token_seconds = percentiles_of(per_stream_token_seconds);
  r.per_stream_tok_s = token_seconds.p50 > 0 ? 1 / token_seconds.p50 : 0;
  r.per_stream_tok_s_p5 = token_seconds.p95 > 0 ? 1 / token_seconds.p95 : 0;
  r.ttft = percentiles_of(ttft);
  r.itl = percentiles_of(itl);
  r.e2e = percentiles_of(e2e);
  return r;
}

}  // namespace pensieve::cli
