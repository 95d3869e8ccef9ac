#pragma once
// A small blocking HTTP client for the server tests, plus a harness that runs a Server on a free port of
// 127.0.0.1 with the FakeEngine behind it and always stops it.
#include <array>
#include <chrono>
#include <map>
#include <utility>  // before Asio: Boost 1.74 uses std::exchange without including it
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../api/fake_engine.h"
#include "../api/fixture_tokenizer.h"
#include "api/served_model.h"
#include "http/server.h"
#include "tokenizer/tokenizer.h"

namespace pensieve::testing {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using nlohmann::json;

struct HttpResult {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  json body_json() const { return json::parse(body); }
};

inline HttpResult to_result(bhttp::response<bhttp::string_body>& res) {
  HttpResult r;
  r.status = static_cast<int>(res.result_int());
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = std::string(f.value());
  }
  r.body = res.body();
  return r;
}

// One connection that may carry several requests.
class Connection {
 public:
  explicit Connection(uint16_t port) : socket_(ioc_) {
    socket_.connect({asio::ip::make_address("127.0.0.1"), port});
  }
  HttpResult request(const std::string& method, const std::string& target, const std::string& body = {},
                     const std::map<std::string, std::string>& headers = {}) {
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
    req.set(bhttp::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) req.set(k, v);
    if (!body.empty()) req.set(bhttp::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    bhttp::write(socket_, req);
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64u << 20);
    bhttp::read(socket_, buffer_, parser);
    auto res = parser.release();
    return to_result(res);
  }
  asio::ip::tcp::socket& socket() { return socket_; }

 private:
  asio::io_context ioc_;
  asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
};

class ServerHarness {
 public:
  explicit ServerHarness(http::ServerOptions o = {}, bool attach_models = true, api::RequestPolicy policy = {}) {
    o.host = "127.0.0.1";
    o.port = 0;
    o.log = nullptr;
    model_ = std::make_unique<api::ServedModel>("tiny", engine, fixture_tokenizer(), std::nullopt, policy);
    server_ = std::make_unique<http::Server>(o);
    if (attach_models) attach();
    thread_ = std::thread([this] { server_->run(); });
  }
  ~ServerHarness() { stop(); }

  void attach() { server_->serve_models({model_.get()}); }
  void stop() {
    if (!thread_.joinable()) return;
    server_->stop();
    thread_.join();
  }
  bool stopped() const { return !thread_.joinable(); }
  uint16_t port() const { return server_->port(); }
  HttpResult request(const std::string& method, const std::string& target, const std::string& body = {},
                     const std::map<std::string, std::string>& headers = {}) {
    Connection c(port());
    return c.request(method, target, body, headers);
  }
  HttpResult post(const std::string& target, const json& body, const std::map<std::string, std::string>& headers = {}) {
    return request("POST", target, body.dump(), headers);
  }
  std::thread& thread() { return thread_; }

  FakeEngine engine;

 private:
  std::unique_ptr<api::ServedModel> model_;
  std::unique_ptr<http::Server> server_;
  std::thread thread_;
};

template <class Pred>
bool eventually(Pred p, std::chrono::milliseconds limit = std::chrono::milliseconds(3000)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (p()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return p();
}

inline std::string raw_request(const std::string& path, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Everything the server sends until it closes the connection (or `limit` passes).
inline std::string read_until_closed(asio::ip::tcp::socket& s, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  std::string got;
  std::array<char, 4096> buf;
  const auto end = std::chrono::steady_clock::now() + limit;
  s.non_blocking(true);
  while (std::chrono::steady_clock::now() < end) {
    boost::system::error_code ec;
    const size_t n = s.read_some(asio::buffer(buf), ec);
    if (ec == asio::error::would_block) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    if (ec) break;
    got.append(buf.data(), n);
  }
  s.non_blocking(false);
  return got;
}

// "data: ..." payloads of an SSE body, in order.
inline std::vector<std::string> sse_data(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    const size_t end = body.find("\n\n", pos);
    out.push_back(body.substr(pos + 6, end - pos - 6));
    pos = end;
  }
  return out;
}

// "event: ..." names of an SSE body, in order.
inline std::vector<std::string> sse_events(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = body.find("event: ", pos)) != std::string::npos) {
    const size_t end = body.find('\n', pos);
    out.push_back(body.substr(pos + 7, end - pos - 7));
    pos = end;
  }
  return out;
}

}  // namespace pensieve::testing
