// `pensieve serve --chat-template`: a file that is neither there nor a built-in name, or a template that does
// not parse, is a one-line error before anything is loaded or bound.
#include <gtest/gtest.h>

#include "run_binary.h"

namespace pensieve::cli_test {
namespace {

const std::string kModel = std::string(PENSIEVE_FIXTURES_DIR) + "/models/llama3-tiny/llama3-tiny-f32.gguf";

void expect_one_line_error(const RunResult& r, const std::string& mention) {
  EXPECT_NE(r.exit_code, 0);
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
  EXPECT_NE(r.err.find(mention), std::string::npos) << r.err;
}

TEST(ServeFlags, UnknownChatTemplateNamesTheBuiltIns) {
  const RunResult r = run({"serve", "--model", kModel, "--port", "0", "--chat-template", "no-such-template"});
  expect_one_line_error(r, "no-such-template");
  EXPECT_NE(r.err.find("chatml"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("listening"), std::string::npos) << "refused before listening: " << r.out;
}

TEST(ServeFlags, ChatTemplateThatDoesNotParse) {
  const auto file = scratch("broken.jinja");
  {
    std::ofstream out(file);
    out << "{% for m in messages %}{{ m.content }";
  }
  const RunResult r = run({"serve", "--model", kModel, "--port", "0", "--chat-template", file.string()});
  std::filesystem::remove(file);
  expect_one_line_error(r, file.string());
}

// --tensor-parallel / --devices: refused in one line before listening, for a world size the model's KV heads
// do not divide and for GPU lists that cannot name the ranks.
TEST(ServeFlags, TensorParallelThatCannotSplitTheModel) {
  const RunResult r = run({"serve", "--model", kModel, "--port", "0", "--device", "cpu", "--tensor-parallel", "4"});
  expect_one_line_error(r, "--tensor-parallel 4 does not divide the model's 2 KV heads");
  EXPECT_EQ(r.out.find("listening"), std::string::npos) << r.out;
  expect_one_line_error(run({"serve", "--model", kModel, "--tensor-parallel", "2", "--devices", "0,0", "--check"}),
                        "GPU 0 is given twice");
  expect_one_line_error(run({"serve", "--model", kModel, "--tensor-parallel", "2", "--devices", "0", "--check"}),
                        "--devices names 1 GPU(s) for --tensor-parallel 2");
  expect_one_line_error(run({"serve", "--model", kModel, "--tensor-parallel", "0", "--check"}),
                        "--tensor-parallel must be at least 1");
}

}  // namespace
}  // namespace pensieve::cli_test
