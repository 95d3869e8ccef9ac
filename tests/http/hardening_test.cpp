// Hostile and broken clients (issue 13): each test is a way one client could crash, stall or exhaust the
// server before the hardening, and checks that it no longer does and that the server goes on serving.
#include <atomic>
#include <future>

#include "http/request_checks.h"
#include "test_client.h"

namespace pensieve::testing {
namespace {

using namespace std::chrono_literals;

json chat_body(bool stream) {
  return {{"model", "tiny"}, {"stream", stream}, {"messages", {{{"role", "user"}, {"content", "Hi"}}}}};
}

int status_of(const std::string& raw_response) {
  if (raw_response.rfind("HTTP/1.1 ", 0) != 0) return 0;
  return std::stoi(raw_response.substr(9, 3));
}

json status_json(ServerHarness& h) { return h.request("GET", "/v1/status").body_json(); }

TEST(Hardening, DeeplyNestedBodyIs400AndTheServerLives) {
  ServerHarness h;
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::string body = R"({"model":"tiny","messages":[{"role":"user","content":"hi","x":)" + deep + "}]}";
  auto r = h.request("POST", "/v1/chat/completions", body);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("nested deeper"), std::string::npos) << r.body;
  auto t = h.request("POST", "/v1/messages/count_tokens",
                     R"({"model":"tiny","messages":[{"role":"user","content":"hi"}],"tools":[)" + deep + "]}");
  EXPECT_EQ(t.status, 400);
  EXPECT_EQ(t.body_json()["type"], "error");  // Anthropic's shape on an Anthropic route
  EXPECT_EQ(h.request("GET", "/health").status, 200);
}

TEST(Hardening, ConfiguredDepthAndKeyLimitsApply) {
  http::ServerOptions o;
  o.json_limits = {6, 8};
  ServerHarness h(o);
  json ok = chat_body(false);
  EXPECT_EQ(h.post("/v1/chat/completions", ok).status, 200);
  json deep = ok;
  deep["messages"][0]["x"] = json::array({json::array({json::array({json::array({1})})})});
  EXPECT_EQ(h.post("/v1/chat/completions", deep).status, 400);
  json wide = ok;
  for (int i = 0; i < 10; ++i) wide["messages"][0]["k" + std::to_string(i)] = i;
  EXPECT_EQ(h.post("/v1/chat/completions", wide).status, 400);
}

TEST(Hardening, NumberBeyondDoubleIs400) {
  ServerHarness h;
  auto r = h.request("POST", "/v1/chat/completions",
                     R"({"model":"tiny","temperature":1e400,"messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(h.request("POST", "/v1/messages", R"({"model":"tiny","max_tokens":1e400})").status, 400);
}

TEST(Hardening, HealthAnswersWhileACostlyBodyIsParsed) {
  http::ServerOptions o;
  o.json_limits = {64, 60000};  // loose on purpose: an object whose ordered insertion costs seconds
  ServerHarness h(o);
  std::string body = R"({"model":"tiny","messages":[{"role":"user","content":"hi"}],"metadata_blob":{)";
  for (int i = 0; i < 50000; ++i) body += (i ? ",\"" : "\"") + std::to_string(i * 7919) + "key\":0";
  body += "}}";
  auto slow = std::async(std::launch::async, [&] { return h.request("POST", "/v1/chat/completions", body).status; });
  std::this_thread::sleep_for(100ms);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(h.request("GET", "/health").status, 200);
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(waited, 500ms) << "/health waited for another request's parsing";
  EXPECT_EQ(slow.get(), 200);
}

TEST(Hardening, MetricsLabelsDoNotGrowWithRequestedPaths) {
  http::ServerOptions o;
  o.api_keys = {"k"};
  ServerHarness h(o);
  Connection c(h.port());
  for (int i = 0; i < 200; ++i) {
    c.request("GET", "/v1/probe" + std::to_string(i));
    c.request("GET", "/nothing" + std::to_string(i));
  }
  const std::string metrics = c.request("GET", "/metrics").body;
  EXPECT_EQ(metrics.find("probe"), std::string::npos);
  EXPECT_EQ(metrics.find("nothing"), std::string::npos);
  EXPECT_NE(metrics.find(R"(route="other",status="401")"), std::string::npos) << metrics;
  EXPECT_LT(metrics.size(), 20000u);
}

TEST(Hardening, TransferEncodingOtherThanChunkedIsRefused) {
  ServerHarness h;
  Connection c(h.port());
  // Before: the gzip body was taken as empty and then parsed as a second request ("GET /health").
  const std::string smuggled = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
  asio::write(c.socket(), asio::buffer("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n" +
                                       smuggled));
  const std::string got = read_until_closed(c.socket());
  EXPECT_EQ(status_of(got), 400) << got;
  EXPECT_NE(got.find("Transfer-Encoding"), std::string::npos);
  EXPECT_EQ(got.find("HTTP/1.1", 5), std::string::npos) << "a second response: the body was read as a request";
}

TEST(Hardening, ChunkedBodiesStillWork) {
  ServerHarness h;
  Connection c(h.port());
  const std::string body = chat_body(false).dump();
  std::string chunk_size(16, '\0');
  chunk_size.resize(static_cast<size_t>(std::snprintf(chunk_size.data(), chunk_size.size(), "%zx", body.size())));
  asio::write(c.socket(), asio::buffer("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                       "Transfer-Encoding: chunked\r\n\r\n" + chunk_size + "\r\n" + body + "\r\n0\r\n\r\n"));
  EXPECT_EQ(status_of(read_until_closed(c.socket())), 200);
}

TEST(Hardening, SeveralApiKeysAndConstantTimeComparison) {
  EXPECT_TRUE(http::constant_time_equals("secret", "secret"));
  EXPECT_FALSE(http::constant_time_equals("secret", "secreT"));
  EXPECT_FALSE(http::constant_time_equals("secret", "secret2"));
  EXPECT_FALSE(http::constant_time_equals("", "x"));
  http::ServerOptions o;
  o.api_keys = {"first", "second"};
  ServerHarness h(o);
  EXPECT_EQ(h.post("/v1/chat/completions", chat_body(false), {{"Authorization", "Bearer first"}}).status, 200);
  EXPECT_EQ(h.post("/v1/chat/completions", chat_body(false), {{"x-api-key", "second"}}).status, 200);
  EXPECT_EQ(h.post("/v1/chat/completions", chat_body(false), {{"x-api-key", "third"}}).status, 401);
  EXPECT_EQ(h.post("/v1/chat/completions", chat_body(false), {{"Authorization", "Bearer firs"}}).status, 401);
}

TEST(Hardening, AuthenticationComesBefore100Continue) {
  http::ServerOptions o;
  o.api_keys = {"k"};
  ServerHarness h(o);
  Connection c(h.port());
  asio::write(c.socket(), asio::buffer(std::string("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                                                   "Content-Length: 100000\r\nExpect: 100-continue\r\n\r\n")));
  const std::string got = read_until_closed(c.socket());
  EXPECT_EQ(status_of(got), 401) << got;  // not "100 Continue": the body is never asked for
}

TEST(Hardening, ExtraByteThenDisconnectStillCancels) {
  for (const bool stream : {false, true}) {
    ServerHarness h;
    h.engine.script = std::vector<std::string>(100000, "tok ");
    h.engine.step = 5ms;
    {
      Connection c(h.port());
      asio::write(c.socket(), asio::buffer(raw_request("/v1/chat/completions", chat_body(stream).dump())));
      ASSERT_TRUE(eventually([&] { return h.engine.running() == 1; }));
      std::this_thread::sleep_for(50ms);
      asio::write(c.socket(), asio::buffer(std::string("G")));  // the start of a pipelined request
      std::this_thread::sleep_for(50ms);
    }  // and gone
    EXPECT_TRUE(eventually([&] { return h.engine.cancelled_count() == 1; }, 8000ms))
        << (stream ? "streaming" : "non-streaming") << " request kept generating for a client that left";
  }
}

TEST(Hardening, HalfClosedClientGetsItsAnswer) {
  for (const bool stream : {false, true}) {
    ServerHarness h;
    Connection c(h.port());
    asio::write(c.socket(), asio::buffer(raw_request("/v1/chat/completions", chat_body(stream).dump())));
    c.socket().shutdown(asio::ip::tcp::socket::shutdown_send);
    const std::string got = read_until_closed(c.socket());
    EXPECT_NE(got.find("HTTP/1.1 200 OK"), std::string::npos) << got;
    EXPECT_NE(got.find(stream ? "[DONE]" : "Hello, world! How are you?"), std::string::npos) << got;
    EXPECT_EQ(h.engine.cancelled_count(), 0);
  }
}

TEST(Hardening, ConnectionCapAnswers503AndEvictsIdleKeepAlives) {
  http::ServerOptions o;
  o.max_connections = 2;
  ServerHarness h(o);
  {
    // Two connections stuck mid-request fill the cap: a third is refused.
    Connection a(h.port()), b(h.port());
    asio::write(a.socket(), asio::buffer(std::string("GET /health HTTP/1.1\r\n")));
    asio::write(b.socket(), asio::buffer(std::string("GET /health HTTP/1.1\r\n")));
    std::this_thread::sleep_for(100ms);  // both accepted
    Connection c(h.port());
    EXPECT_EQ(status_of(read_until_closed(c.socket(), 2000ms)), 503);
  }
  ASSERT_TRUE(eventually([&] {
    Connection probe(h.port());
    return probe.request("GET", "/health").status == 200;
  }));
  // Two idle keep-alive connections do not lock a newcomer out: one of them yields.
  Connection a(h.port()), b(h.port());
  EXPECT_EQ(a.request("GET", "/health").status, 200);
  EXPECT_EQ(b.request("GET", "/health").status, 200);
  Connection c(h.port());
  EXPECT_EQ(c.request("GET", "/health").status, 200);
}

TEST(Hardening, ConnectionCapPerAddress) {
  http::ServerOptions o;
  o.max_connections_per_address = 1;
  ServerHarness h(o);
  Connection a(h.port());
  asio::write(a.socket(), asio::buffer(std::string("GET /health HTTP/1.1\r\n")));
  std::this_thread::sleep_for(50ms);
  Connection b(h.port());
  EXPECT_EQ(status_of(read_until_closed(b.socket(), 2000ms)), 503);
}

TEST(Hardening, RequestTimeLimitEndsAGeneration) {
  http::ServerOptions o;
  o.request_timeout = 300ms;
  ServerHarness h(o);
  h.engine.script = std::vector<std::string>(100000, "tok ");
  h.engine.step = 5ms;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = h.post("/v1/chat/completions", chat_body(false));
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  auto s = h.post("/v1/chat/completions", chat_body(true));
  EXPECT_EQ(s.status, 200);
  EXPECT_NE(s.body.find("\"error\""), std::string::npos);
  EXPECT_EQ(sse_data(s.body).back(), "[DONE]");  // the stream still closes properly
  EXPECT_TRUE(eventually([&] { return h.engine.cancelled_count() == 2; }));
}

TEST(Hardening, NonStreamedResponseSizeIsBounded) {
  http::ServerOptions o;
  o.max_response_bytes = 4000;
  ServerHarness h(o);
  h.engine.script = std::vector<std::string>(100000, "tok ");
  json b = chat_body(false);
  b["logprobs"] = true;
  b["top_logprobs"] = 20;
  b["n"] = 4;
  auto r = h.post("/v1/chat/completions", b);
  EXPECT_EQ(r.status, 400) << r.body.substr(0, 300);
  EXPECT_NE(r.body.find("stream"), std::string::npos);
  EXPECT_TRUE(eventually([&] { return h.engine.running() == 0; }));
}

TEST(Hardening, AnExceptionMidGenerationEndsOnlyThatConnection) {
  ServerHarness h;
  h.engine.drain_throws = true;
  {
    Connection c(h.port());
    asio::write(c.socket(), asio::buffer(raw_request("/v1/chat/completions", chat_body(true).dump())));
    read_until_closed(c.socket());  // the server closes it
  }
  h.engine.drain_throws = false;
  EXPECT_TRUE(eventually([&] { return status_json(h)["http"]["active_requests"] == 0; }));
  EXPECT_TRUE(eventually([&] { return h.engine.cancelled_count() == 1; }));
  EXPECT_EQ(h.post("/v1/chat/completions", chat_body(false)).status, 200);
}

TEST(Hardening, MaxTokensHasADefaultAndALimit) {
  api::RequestPolicy policy;
  policy.default_max_tokens = 5;
  policy.max_tokens_limit = 7;
  ServerHarness h({}, true, policy);
  ASSERT_EQ(h.post("/v1/chat/completions", chat_body(false)).status, 200);
  EXPECT_EQ(h.engine.last()->request.stop.max_tokens, 5);
  json b = chat_body(false);
  b["max_tokens"] = 1000;
  ASSERT_EQ(h.post("/v1/chat/completions", b).status, 200);
  EXPECT_EQ(h.engine.last()->request.stop.max_tokens, 7);
}

}  // namespace
}  // namespace pensieve::testing
