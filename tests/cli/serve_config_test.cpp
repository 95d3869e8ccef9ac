// `pensieve serve --config FILE` and PENSIEVE_API_KEY, through `--check` (validates, loads nothing, binds
// nothing): every key is a flag, the command line wins over the environment, which wins over the file; a bad
// file or key is one line naming it and a non-zero exit.
#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>

#include "run_binary.h"

namespace pensieve::cli_test {
namespace {

const std::string kModel = std::string(PENSIEVE_FIXTURES_DIR) + "/models/llama3-tiny/llama3-tiny-f32.gguf";

class ServeConfig : public ::testing::Test {
 protected:
  void TearDown() override {
    std::filesystem::remove(file_);
    unsetenv("PENSIEVE_API_KEY");
  }
  std::string write(const std::string& json) {
    std::ofstream(file_) << json;
    return file_.string();
  }
  RunResult check(const std::string& json, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"serve", "--config", write(json), "--check"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run(args);
  }
  std::filesystem::path file_ = scratch("config.json");
};

void expect_ok(const RunResult& r, const std::string& mention) {
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("configuration OK"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(mention), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("listening"), std::string::npos) << "--check must not serve: " << r.out;
}

void expect_one_line_error(const RunResult& r, const std::vector<std::string>& mentions) {
  EXPECT_NE(r.exit_code, 0);
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
  for (const auto& m : mentions) EXPECT_NE(r.err.find(m), std::string::npos) << "wanted '" << m << "' in: " << r.err;
}

TEST_F(ServeConfig, EveryKindOfValueBecomesItsFlag) {
  // A string, a number, an array for a repeatable flag, a switch, and a size given as a string.
  const RunResult r = check(R"({"model": ")" + kModel + R"(", "port": 9123, "host": "127.0.0.2", "parallel": 3,
                               "alias": ["a", "b"], "quiet": true, "kv-memory": "64M", "api-key": ["k1", "k2"],
                               "log-format": "json", "request-timeout": 2.5})");
  expect_ok(r, "http://127.0.0.2:9123, 3 parallel, 2 API key(s), log json");
}

TEST_F(ServeConfig, TheCommandLineOverridesTheFile) {
  const std::string json = R"({"model": "/no/such/model.gguf", "port": 9123, "parallel": 0})";
  expect_one_line_error(check(json), {"--parallel"});  // the file alone is refused...
  expect_ok(check(json, {"--model", kModel, "--parallel", "5"}), ":9123, 5 parallel");  // ...the flags win
}

TEST_F(ServeConfig, ModelIsRequiredSomewhere) {
  expect_one_line_error(check(R"({"port": 9123})"), {"--model"});
}

TEST_F(ServeConfig, UnknownKeyIsNamed) {
  expect_one_line_error(check(R"({"model": "m.gguf", "prot": 8080})"), {"'prot'", "config.json"});
  expect_one_line_error(check(R"({"--port": 8080})"), {"'--port'"});
}

TEST_F(ServeConfig, CommandLineOnlyKeysAreRefused) {
  expect_one_line_error(check(R"({"config": "other.json"})"), {"'config'"});
  expect_one_line_error(check(R"({"check": true})"), {"'check'"});
}

TEST_F(ServeConfig, WrongTypesAreNamed) {
  const std::string m = R"("model": ")" + kModel + R"(", )";
  expect_one_line_error(check("{" + m + R"("port": "eighty"})"), {"'port'"});
  expect_one_line_error(check("{" + m + R"("port": true})"), {"'port'", "boolean"});
  expect_one_line_error(check("{" + m + R"("port": [8080, 8081]})"), {"'port'", "array"});
  expect_one_line_error(check("{" + m + R"("quiet": "yes"})"), {"'quiet'", "true or false"});
  expect_one_line_error(check("{" + m + R"("alias": {"name": "x"}})"), {"'alias'", "object"});
  expect_one_line_error(check("{" + m + R"("alias": [null]})"), {"'alias'", "null"});
  expect_one_line_error(check("{" + m + R"("log-format": "xml"})"), {"--log-format", "xml"});
}

TEST_F(ServeConfig, BadFilesAreOneLine) {
  expect_one_line_error(check(R"({"model": )"), {"config.json", "not valid JSON"});
  expect_one_line_error(check(R"(["model", "m.gguf"])"), {"config.json", "JSON object"});
  expect_one_line_error(run({"serve", "--config", "/no/such/dir/pensieve.json", "--check"}),
                        {"/no/such/dir/pensieve.json", "cannot read"});
}

TEST_F(ServeConfig, ApiKeysFromTheEnvironment) {
  const std::string json = R"({"model": ")" + kModel + R"(", "api-key": "from-file"})";
  setenv("PENSIEVE_API_KEY", "k1,k2, k3", 1);
  expect_ok(check(json), "3 API key(s)");                                         // env over the file
  expect_ok(check(json, {"--api-key", "cli"}), "1 API key(s)");                   // the command line over env
  setenv("PENSIEVE_API_KEY", "", 1);
  expect_ok(check(json), "1 API key(s)");                                         // empty: the file's key
  unsetenv("PENSIEVE_API_KEY");
  expect_ok(run({"serve", "--model", kModel, "--check"}), "0 API key(s)");
}

TEST_F(ServeConfig, CheckLooksIntoTheModelFile) {
  const auto not_gguf = scratch("not-a-model.gguf");
  std::ofstream(not_gguf) << "hello";
  const RunResult r = run({"serve", "--model", not_gguf.string(), "--check"});
  std::filesystem::remove(not_gguf);
  expect_one_line_error(r, {not_gguf.string()});
  expect_ok(run({"serve", "--model", kModel, "--check"}), "(llama)");
}

}  // namespace
}  // namespace pensieve::cli_test
