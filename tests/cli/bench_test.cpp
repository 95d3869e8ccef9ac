// `pensieve bench` against a real `pensieve serve` on the tiny fixture model: the counts it reports must match
// what was asked for (ignore_eos makes every request produce exactly --max-tokens), and its files must be whole.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "run_binary.h"

namespace pensieve::cli_test {
namespace {

// `pensieve serve` in a child process; the destructor always stops it.
class Server {
 public:
  explicit Server(const std::string& model) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      ::close(fds[0]);
      ::close(fds[1]);
      ::execl(PENSIEVE_BIN, PENSIEVE_BIN, "serve", "--model", model.c_str(), "--port", "0", "--quiet",
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    out_ = fds[0];
    // The first line names the port; give the server a generous while to print it.
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, 1000) <= 0) continue;
      char c = 0;
      if (::read(out_, &c, 1) != 1) break;
      line += c;
    }
    const std::string marker = "listening on http://";
    const size_t at = line.find(marker);
    if (at == std::string::npos) throw std::runtime_error("serve did not say where it listens: " + line);
    url_ = "http://" + line.substr(at + marker.size());
    while (!url_.empty() && (url_.back() == '\n' || url_.back() == '\r')) url_.pop_back();
  }
  ~Server() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    if (out_ >= 0) ::close(out_);
  }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  const std::string& url() const { return url_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string url_;
};

const std::string kModel = std::string(PENSIEVE_FIXTURES_DIR) + "/models/llama3-tiny/llama3-tiny-f32.gguf";

TEST(Bench, ReportsEveryRequestAndTokenAgainstPensieveServe) {
  ASSERT_TRUE(std::filesystem::exists(kModel)) << kModel;
  Server server(kModel);
  const auto json_path = scratch("bench.json");
  const auto svg_path = scratch("bench.svg");
  constexpr int kRequests = 6, kMaxTokens = 5;
  const RunResult r = run({"bench", "--url", server.url(), "--concurrency", "1,4", "--requests",
                           std::to_string(kRequests), "--prompt-tokens", "12", "--shared-prefix", "8",
                           "--max-tokens", std::to_string(kMaxTokens), "--json", json_path.string(), "--svg",
                           svg_path.string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("ttft"), std::string::npos) << r.out;

  const auto doc = nlohmann::json::parse(slurp(json_path));
  EXPECT_EQ(doc["max_tokens"], kMaxTokens);
  ASSERT_EQ(doc["levels"].size(), 2u);
  const int expected_concurrency[] = {1, 4};
  for (size_t i = 0; i < 2; ++i) {
    const auto& level = doc["levels"][i];
    SCOPED_TRACE(level.dump());
    EXPECT_EQ(level["concurrency"], expected_concurrency[i]);
    EXPECT_EQ(level["requests"], kRequests);
    EXPECT_EQ(level["completed"], kRequests);
    EXPECT_EQ(level["errors"], 0);
    EXPECT_EQ(level["output_tokens"], kRequests * kMaxTokens);
    // 20 words of prompt: at least a token each, and at most one per byte (7 bytes a word with its space, + BOS).
    // (The tiny fixture's small vocabulary splits words; a real Llama 3 vocabulary keeps them whole.)
    EXPECT_GE(level["mean_prompt_tokens"].get<double>(), 20);
    EXPECT_LE(level["mean_prompt_tokens"].get<double>(), 20 * 7 + 1);
    EXPECT_GT(level["aggregate_output_tok_s"].get<double>(), 0);
    EXPECT_GT(level["per_stream_output_tok_s"].get<double>(), 0);
    // The 5th percentile of the streams' speeds is no faster than their median.
    EXPECT_GT(level["per_stream_output_tok_s_p5"].get<double>(), 0);
    EXPECT_LE(level["per_stream_output_tok_s_p5"].get<double>(), level["per_stream_output_tok_s"].get<double>() * 1.0001);
    for (const char* metric : {"ttft_ms", "itl_ms", "e2e_ms"}) {
      const auto& p = level[metric];
      EXPECT_GE(p["p50"].get<double>(), 0) << metric;
      EXPECT_LE(p["p50"].get<double>(), p["p95"].get<double>()) << metric;
      EXPECT_LE(p["p95"].get<double>(), p["p99"].get<double>()) << metric;
    }
    // The first token cannot arrive after the last one.
    EXPECT_LE(level["ttft_ms"]["p50"].get<double>(), level["e2e_ms"]["p99"].get<double>());
  }

  const std::string svg = slurp(svg_path);
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("<polyline"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  // Four panels, each with its own axis: aggregate tok/s, per-stream tok/s, inter-token latency, TTFT; one line
  // per series (1 + 2 + 2 + 2), and a title naming the server.
  for (const char* panel : {"Aggregate output throughput", "Per-stream output speed", "Inter-token latency",
                            "Time to first token"}) {
    EXPECT_NE(svg.find(std::string(">") + panel + "<"), std::string::npos) << panel;
  }
  size_t polylines = 0;
  for (size_t at = svg.find("<polyline"); at != std::string::npos; at = svg.find("<polyline", at + 1)) ++polylines;
  EXPECT_EQ(polylines, 7u);
  EXPECT_NE(svg.find(server.url()), std::string::npos) << "the title names the server";
  std::filesystem::remove(json_path);
  std::filesystem::remove(svg_path);
}

// pensieve's /v1/messages does not take ignore_eos, so the tiny model may stop early: the bound is max_tokens.
TEST(Bench, AnthropicApiStreamsAndCountsWithinMaxTokens) {
  ASSERT_TRUE(std::filesystem::exists(kModel)) << kModel;
  Server server(kModel);
  const auto json_path = scratch("bench-anthropic.json");
  const RunResult r = run({"bench", "--url", server.url(), "--api", "anthropic", "--concurrency", "2",
                           "--requests", "2", "--prompt-tokens", "8", "--max-tokens", "4", "--json",
                           json_path.string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto doc = nlohmann::json::parse(slurp(json_path));
  EXPECT_EQ(doc["levels"][0]["completed"], 2);
  EXPECT_EQ(doc["levels"][0]["errors"], 0);
  EXPECT_LE(doc["levels"][0]["output_tokens"].get<int>(), 8);
  std::filesystem::remove(json_path);
}

TEST(Bench, UnreachableUrlIsOneLineErrorAndNonZeroExit) {
  // Port 1 on loopback: nothing listens there on a test machine.
  const RunResult r = run({"bench", "--url", "http://127.0.0.1:1", "--concurrency", "1"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("cannot connect"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
}

TEST(Bench, MalformedUrlIsOneLineErrorAndNonZeroExit) {
  const RunResult r = run({"bench", "--url", "localhost-no-scheme", "--concurrency", "1"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--url"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
}

}  // namespace
}  // namespace pensieve::cli_test
