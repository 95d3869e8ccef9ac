// The server's log lines: text stays as it was; JSON is one object a line with the request's facts.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "http/log_format.h"

namespace pensieve::http {
namespace {

RequestLog sample() {
  RequestLog r;
  r.client = "127.0.0.1:5555";
  r.method = "POST";
  r.target = "/v1/chat/completions";
  r.model = "demo";
  r.status = 200;
  r.prompt_tokens = 12;
  r.completion_tokens = 34;
  r.ttft_ms = 5.25;
  r.total_ms = 81.5;
  return r;
}

TEST(LogFormat, Names) {
  EXPECT_EQ(parse_log_format("text"), LogFormat::Text);
  EXPECT_EQ(parse_log_format("json"), LogFormat::Json);
  EXPECT_FALSE(parse_log_format("JSON"));
  EXPECT_FALSE(parse_log_format(""));
}

TEST(LogFormat, TextRequestLineIsTheFamiliarOne) {
  EXPECT_EQ(request_log_line(sample(), LogFormat::Text),
            "127.0.0.1:5555 POST /v1/chat/completions 200 81.5ms prompt=12 gen=34");
  RequestLog r = sample();
  r.prompt_tokens = r.completion_tokens = 0;
  r.cancelled = true;
  EXPECT_EQ(request_log_line(r, LogFormat::Text), "127.0.0.1:5555 POST /v1/chat/completions 200 81.5ms cancelled");
  EXPECT_EQ(message_log_line("ready", LogFormat::Text), "pensieve: ready");
}

TEST(LogFormat, JsonRequestLineCarriesEveryField) {
  const std::string line = request_log_line(sample(), LogFormat::Json);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["event"], "request");
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["client"], "127.0.0.1:5555");
  EXPECT_EQ(j["method"], "POST");
  EXPECT_EQ(j["path"], "/v1/chat/completions");
  EXPECT_EQ(j["model"], "demo");
  EXPECT_EQ(j["status"], 200);
  EXPECT_EQ(j["prompt_tokens"], 12);
  EXPECT_EQ(j["completion_tokens"], 34);
  EXPECT_DOUBLE_EQ(j["ttft_ms"].get<double>(), 5.25);
  EXPECT_DOUBLE_EQ(j["total_ms"].get<double>(), 81.5);
  EXPECT_EQ(j["cancelled"], false);
  // RFC 3339 UTC with milliseconds, e.g. 2026-12-01T12:34:56.789Z.
  const std::string time = j["time"];
  ASSERT_EQ(time.size(), 24u) << time;
  EXPECT_EQ(time[10], 'T');
  EXPECT_EQ(time[19], '.');
  EXPECT_EQ(time.back(), 'Z');
  EXPECT_EQ(line.rfind("{\"time\":", 0), 0u) << "time comes first: " << line;
}

TEST(LogFormat, JsonWithoutModelOrFirstTokenSaysNull) {
  RequestLog r = sample();
  r.model.clear();
  r.ttft_ms.reset();
  const auto j = nlohmann::json::parse(request_log_line(r, LogFormat::Json));
  EXPECT_TRUE(j["model"].is_null());
  EXPECT_TRUE(j["ttft_ms"].is_null());
}

TEST(LogFormat, JsonSurvivesHostileTargets) {
  RequestLog r = sample();
  r.target = std::string("/v1/\"x\"\n\xff\xfe") + std::string(500, 'a');
  const std::string line = request_log_line(r, LogFormat::Json);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const auto j = nlohmann::json::parse(line);  // valid JSON although the bytes were not UTF-8
  EXPECT_EQ(j["path"].get<std::string>().rfind("/v1/\"x\"\n", 0), 0u);
  EXPECT_LT(j["path"].get<std::string>().size(), 220u) << "cut to about 200 bytes";
}

TEST(LogFormat, JsonMessage) {
  const auto j = nlohmann::json::parse(message_log_line("cannot \"x\"", LogFormat::Json, "error"));
  EXPECT_EQ(j["event"], "message");
  EXPECT_EQ(j["level"], "error");
  EXPECT_EQ(j["message"], "cannot \"x\"");
}

}  // namespace
}  // namespace pensieve::http
