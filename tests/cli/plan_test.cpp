// `pensieve plan`: its figures from first principles (the fixture's config.json), agreement with what
// `pensieve serve` allocates for the same flags, and the budget verdict.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "run_binary.h"

namespace pensieve::cli_test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const fs::path kModelDir = fs::path(PENSIEVE_FIXTURES_DIR) / "models" / "llama3-tiny";
const fs::path kModel = kModelDir / "llama3-tiny-f32.gguf";
const fs::path kQwen3 = fs::path(PENSIEVE_FIXTURES_DIR) / "models" / "qwen3-tiny" / "qwen3-tiny-f32.gguf";

json config() {
  std::ifstream in(kModelDir / "config.json");
  if (!in) ADD_FAILURE() << "missing fixture " << kModelDir / "config.json";
  return json::parse(in);
}

json plan_json(std::vector<std::string> args) {
  args.insert(args.begin(), {"plan", "--model", kModel.string(), "--json"});
  const RunResult r = run(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  try {
    return json::parse(r.out);
  } catch (const json::exception& e) {
    ADD_FAILURE() << "not JSON: " << e.what() << "\n" << r.out;
    return json::object();
  }
}

struct ServeMemory {
  double weights = 0, kv = 0, scratch = 0, total = 0;
  std::string kv_type;
};

// Starts `pensieve serve --port 0 ARGS`, reads the memory line it logs once the model is loaded, stops it.
ServeMemory serve_memory(const std::vector<std::string>& args) {
  const fs::path err_path = scratch("serve-stderr");
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, STDERR_FILENO);
    const int null_fd = ::open("/dev/null", O_WRONLY);
    ::dup2(null_fd, STDOUT_FILENO);
    std::vector<std::string> argv_s = {PENSIEVE_BIN, "serve", "--model", kModel.string(), "--port", "0", "--quiet"};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : argv_s) argv.push_back(s.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  const std::regex line(R"(memory: weights (\d+) B, KV pool (\d+) B, scratch (\d+) B, total (\d+) B \(KV (\w+)\))");
  std::smatch m;
  std::string err;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    err = slurp(err_path);
    if (std::regex_search(err, m, line)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  fs::remove(err_path);
  ServeMemory s;
  if (m.empty()) {
    ADD_FAILURE() << "serve logged no memory line:\n" << err;
    return s;
  }
  s.weights = std::stod(m[1]);
  s.kv = std::stod(m[2]);
  s.scratch = std::stod(m[3]);
  s.total = std::stod(m[4]);
  s.kv_type = m[5];
  return s;
}

void expect_within_5_percent(double plan, double serve, const char* what) {
  EXPECT_GT(serve, 0) << what;
  EXPECT_LE(std::abs(plan - serve), 0.05 * serve) << what << ": plan " << plan << " vs serve " << serve;
}

TEST(Plan, FiguresFollowFromTheModelShapes) {
  const json c = config();
  const int64_t dim = c["hidden_size"], ffn = c["intermediate_size"], layers = c["num_hidden_layers"];
  const int64_t heads = c["num_attention_heads"], kv_heads = c["num_key_value_heads"], head_dim = c["head_dim"];
  const int64_t vocab = c["vocab_size"];
  const int64_t per_layer = dim * heads * head_dim * 2 + dim * kv_heads * head_dim * 2 + 3 * dim * ffn + 2 * dim;
  // Untied embedding and output head, the final norm, and llama3's rope frequency factors (one per pair).
  const int64_t params = layers * per_layer + 2 * vocab * dim + dim + head_dim / 2;
  const json p = plan_json({"--parallel", "3", "--ctx-size", "100"});
  EXPECT_EQ(p["weight_bytes"], params * 4) << "an f32 file holds 4 bytes per parameter";
  const int64_t per_token = 2 * layers * kv_heads * head_dim * 2;  // K and V, f16
  EXPECT_EQ(p["kv_bytes_per_token"], per_token);
  EXPECT_EQ(p["context"], 100);
  EXPECT_EQ(p["kv_blocks"], 3 * 7) << "100 tokens round up to 7 blocks of 16, per sequence";
  EXPECT_EQ(p["kv_pool_bytes"], 3 * 112 * per_token);
  EXPECT_GT(p["scratch_bytes"].get<int64_t>(), 0);
  EXPECT_EQ(p["total_bytes"], p["weight_bytes"].get<int64_t>() + p["kv_pool_bytes"].get<int64_t>() +
                                  p["scratch_bytes"].get<int64_t>());
  // The default context is the model's, capped at 8192 tokens per sequence for the pool.
  const json d = plan_json({});
  EXPECT_EQ(d["parallel"], 20);
  EXPECT_EQ(d["kv_blocks"], 20 * 8192 / 16);
  EXPECT_EQ(plan_json({"--kv-type", "f32", "--ctx-size", "100"})["kv_bytes_per_token"], 2 * per_token);
  // q8_0: every 32 elements of a token's K (or V) row take 34 bytes (an fp16 scale and 32 int8).
  const json q8 = plan_json({"--kv-type", "q8_0", "--parallel", "3", "--ctx-size", "100"});
  EXPECT_EQ(q8["kv_bytes_per_token"], 2 * layers * (kv_heads * head_dim / 32) * 34);
  EXPECT_EQ(q8["kv_blocks"], 3 * 7);
  EXPECT_EQ(q8["kv_type"], "q8_0");
}

// Split over ranks, every figure is one rank's: its halves of the split matrices and of the KV heads, the
// replicated norms and embedding (looked up whole on every rank).
TEST(Plan, TensorParallelFiguresArePerRank) {
  const json c = config();
  const int64_t dim = c["hidden_size"], ffn = c["intermediate_size"], layers = c["num_hidden_layers"];
  const int64_t heads = c["num_attention_heads"], kv_heads = c["num_key_value_heads"], head_dim = c["head_dim"];
  const int64_t vocab = c["vocab_size"];
  const int64_t split_per_layer = dim * heads * head_dim * 2 + dim * kv_heads * head_dim * 2 + 3 * dim * ffn;
  const int64_t params = layers * (split_per_layer / 2 + 2 * dim) + vocab * dim + vocab * dim / 2 + dim + head_dim / 2;
  const json one = plan_json({"--parallel", "3", "--ctx-size", "100"});
  const json two = plan_json({"--parallel", "3", "--ctx-size", "100", "--tensor-parallel", "2"});
  EXPECT_EQ(two["tensor_parallel"], 2);
  EXPECT_EQ(two["weight_bytes"], params * 4);
  EXPECT_EQ(two["kv_bytes_per_token"], one["kv_bytes_per_token"].get<int64_t>() / 2);
  EXPECT_EQ(two["kv_blocks"], one["kv_blocks"]) << "one pool of blocks, each rank holding its heads of every block";
  EXPECT_EQ(two["kv_pool_bytes"], one["kv_pool_bytes"].get<int64_t>() / 2);
  EXPECT_LT(two["scratch_bytes"].get<int64_t>(), one["scratch_bytes"].get<int64_t>());
  const RunResult r = run({"plan", "--model", kModel.string(), "--tensor-parallel", "4"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.err, "pensieve: --tensor-parallel 4 does not divide the model's 2 KV heads\n");
}

TEST(Plan, AgreesWithWhatServeAllocates) {
  for (const std::vector<std::string>& flags :
       {std::vector<std::string>{"--parallel", "4", "--ctx-size", "300"}, std::vector<std::string>{},
        std::vector<std::string>{"--parallel", "2", "--kv-memory", "3M"},
        std::vector<std::string>{"--kv-type", "q8_0", "--parallel", "4", "--ctx-size", "300"},
        std::vector<std::string>{"--kv-type", "q8_0", "--parallel", "2", "--kv-memory", "3M"},
        std::vector<std::string>{"--kv-type", "f32", "--parallel", "2", "--kv-memory", "3M"}}) {
    SCOPED_TRACE(::testing::PrintToString(flags));
    const json p = plan_json(flags);
    const ServeMemory s = serve_memory(flags);
    EXPECT_EQ(s.kv_type, p["kv_type"].get<std::string>()) << "serve logs the KV type it allocated";
    expect_within_5_percent(p["weight_bytes"].get<double>(), s.weights, "weights");
    expect_within_5_percent(p["kv_pool_bytes"].get<double>(), s.kv, "KV pool");
    expect_within_5_percent(p["scratch_bytes"].get<double>(), s.scratch, "scratch");
    expect_within_5_percent(p["total_bytes"].get<double>(), s.total, "total");
  }
}

TEST(Plan, TooSmallABudgetSaysSoAndNamesTheLargestParallelThatFits) {
  const json p20 = plan_json({"--parallel", "20"});
  const json p5 = plan_json({"--parallel", "5"});
  const json p6 = plan_json({"--parallel", "6"});
  // A budget between what 5 and 6 sequences need: 5 is the answer.
  const int64_t budget = (p5["total_bytes"].get<int64_t>() + p6["total_bytes"].get<int64_t>()) / 2;
  const json verdict = plan_json({"--parallel", "20", "--budget", std::to_string(budget)});
  EXPECT_EQ(verdict["fits"], false);
  EXPECT_EQ(verdict["max_parallel"], 5);
  EXPECT_EQ(verdict["total_bytes"], p20["total_bytes"]);
  const RunResult text = run({"plan", "--model", kModel.string(), "--budget", std::to_string(budget)});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("NO"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("max parallel 5"), std::string::npos) << text.out;
  const json roomy = plan_json({"--parallel", "5", "--budget", std::to_string(budget)});
  EXPECT_EQ(roomy["fits"], true);
  const json none = plan_json({"--budget", "1K"});
  EXPECT_EQ(none["fits"], false);
  EXPECT_EQ(none["max_parallel"], 0);
}

TEST(Plan, DefaultBudgetIsTheAvailableMemory) {
  const json p = plan_json({});
  EXPECT_EQ(p["budget_source"], "MemAvailable");
  EXPECT_GT(p["budget_bytes"].get<int64_t>(), 0);
}

TEST(Plan, RefusesWhatItCannotPlanWithOneLine) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"plan", "--model", kModel.string(), "--kv-type", "q4_0"},
        // qwen3-tiny's heads are 48 wide: q8_0 blocks of 32 would straddle them.
        std::vector<std::string>{"plan", "--model", kQwen3.string(), "--kv-type", "q8_0"},
        std::vector<std::string>{"plan", "--model", "/no/such/model.gguf"},
        std::vector<std::string>{"plan", "--model", kModel.string(), "--budget", "lots"}}) {
    SCOPED_TRACE(::testing::PrintToString(args));
    const RunResult r = run(args);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_TRUE(r.out.empty()) << r.out;
    ASSERT_FALSE(r.err.empty());
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
  }
  EXPECT_NE(run({"plan", "--model", kModel.string(), "--kv-type", "q4_0"}).err.find("q8_0"), std::string::npos);
  EXPECT_NE(run({"plan", "--model", kQwen3.string(), "--kv-type", "q8_0"}).err.find("48"), std::string::npos);
}

}  // namespace
}  // namespace pensieve::cli_test

namespace pensieve::cli_test {
namespace {

// `plan --model A --model B --memory-budget X`: the sum of what each model alone takes, and which fit together.
TEST(PlanTogether, SaysWhatFitsTogetherUnderTheBudget) {
  const auto alone = [](const fs::path& m) {
    const RunResult r = run({"plan", "--model", m.string(), "--parallel", "4", "--ctx-size", "256", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out)["total_bytes"].get<uint64_t>();
  };
  const uint64_t a = alone(kModel), b = alone(kQwen3);
  const auto together = [&](uint64_t budget) {
    const RunResult r = run({"plan", "--model", "llama=" + kModel.string(), "--model", kQwen3.string(), "--parallel",
                             "4", "--ctx-size", "256", "--memory-budget", std::to_string(budget), "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out);
  };
  const json roomy = together(a + b);
  EXPECT_EQ(roomy["total_bytes"].get<uint64_t>(), a + b);
  EXPECT_EQ(roomy["fits"], true);
  EXPECT_EQ(roomy["resident_together"], json::array({"llama", "qwen3-tiny-f32"}));
  const json tight = together(a + b - 1);
  EXPECT_EQ(tight["fits"], false);
  EXPECT_EQ(tight["resident_together"], json::array({"llama"}));
  EXPECT_EQ(tight["loaded_on_demand"], json::array({"qwen3-tiny-f32"}));
  EXPECT_EQ(tight["models"][1]["fits_alone"], true);
  const RunResult text = run({"plan", "--model", kModel.string(), "--model", kQwen3.string(), "--memory-budget", "1K"});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("can never load"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("fits         NO"), std::string::npos) << text.out;
}

}  // namespace
}  // namespace pensieve::cli_test
