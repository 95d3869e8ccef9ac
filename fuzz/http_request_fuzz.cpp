// libFuzzer target: the HTTP request path. The input goes as raw bytes down a TCP connection into a live
// server (on 127.0.0.1, the stub engine behind it), the client half-closes and reads until the server closes.
// Any crash or sanitizer report in the server thread ends the run; after each input /health must still answer.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>  // before Asio: Boost 1.74 uses std::exchange without including it

#include <boost/asio.hpp>

#include "http/server.h"
#include "stub_engine.h"

namespace {

namespace asio = boost::asio;
using namespace pensieve;

struct LiveServer {
  std::unique_ptr<http::Server> server;
  std::thread loop;
  LiveServer() {
    http::ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.log = nullptr;
    o.max_body_bytes = 1u << 20;
    o.idle_timeout = std::chrono::milliseconds(200);
    o.write_timeout = std::chrono::milliseconds(500);
    o.request_timeout = std::chrono::milliseconds(2000);
    o.api_keys = {"fuzz-key"};
    server = std::make_unique<http::Server>(o);
    server->serve_models({&fuzzing::served().model});
    loop = std::thread([this] { server->run(); });
  }
  ~LiveServer() {
    server->stop();
    loop.join();
  }
};

LiveServer& live() {
  static LiveServer s;
  return s;
}

// (Not named `exchange`: with a std::string argument, lookup also finds std::exchange.)
// Sends `bytes`, half-closes, and returns everything the server answers before it closes.
std::string round_trip(uint16_t port, const std::string& bytes) {
  asio::io_context ioc;
  asio::ip::tcp::socket socket(ioc);
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  const timeval tv{5, 0};
  setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  boost::system::error_code ec;
  asio::write(socket, asio::buffer(bytes), ec);
  socket.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  std::string got;
  char buf[4096];
  for (;;) {
    const size_t n = socket.read_some(asio::buffer(buf), ec);
    if (ec) break;
    got.append(buf, n);
  }
  return got;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint16_t port = live().server->port();
  round_trip(port, std::string(reinterpret_cast<const char*>(data), size));
  // Three tries of 5 s each: on a starved machine (a fuzzer at nice 19 beside builds) one answer can take longer
  // than the receive timeout without anything being wrong; a server that stopped answering fails all three.
  for (int attempt = 0;; ++attempt) {
    const std::string health = round_trip(port, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    if (health.rfind("HTTP/1.1 200", 0) == 0) break;
    if (attempt == 2) __builtin_trap();  // the server stopped answering
  }
  return 0;
}
