// `pensieve run`: one-shot answers are deterministic at temperature 0, the interactive chat keeps the
// conversation and quits on EOF or on Ctrl-C twice at the prompt, and a bad model is a one-line error.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <thread>

#include "run_binary.h"

namespace pensieve::cli_test {
namespace {

namespace fs = std::filesystem;

const fs::path kModel = fs::path(PENSIEVE_FIXTURES_DIR) / "models" / "llama3-tiny" / "llama3-tiny-f32.gguf";

RunResult one_shot(const std::string& prompt) {
  return run({"run", "--model", kModel.string(), "--prompt", prompt, "--max-tokens", "8", "--temperature", "0"});
}

TEST(Run, OneShotAtTemperatureZeroPrintsTheSameAnswerTwice) {
  const RunResult a = one_shot("Hello there");
  const RunResult b = one_shot("Hello there");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_FALSE(a.out.empty());
  EXPECT_EQ(a.out.back(), '\n');
  EXPECT_EQ(a.out, b.out);
  const RunResult other = one_shot("Something else entirely, quite different");
  ASSERT_EQ(other.exit_code, 0) << other.err;
}

TEST(Run, InteractiveChatAnswersEachLineAndQuitsAtEof) {
  const fs::path in_path = scratch("run-stdin");
  std::ofstream(in_path, std::ios::binary) << "Hello there\nAnd a second question\n";
  std::string command = shell_quote(PENSIEVE_BIN);
  for (const std::string& a :
       {std::string("run"), std::string("--model"), kModel.string(), std::string("--max-tokens"), std::string("8"),
        std::string("--temperature"), std::string("0")}) {
    command += ' ';
    command += shell_quote(a);
  }
  const fs::path out_path = scratch("run-stdout");
  const fs::path err_path = scratch("run-stderr");
  command += " <";
  command += shell_quote(in_path.string());
  command += " >";
  command += shell_quote(out_path.string());
  command += " 2>";
  command += shell_quote(err_path.string());
  const int status = std::system(command.c_str());
  const std::string out = slurp(out_path), err = slurp(err_path);
  for (const auto& p : {in_path, out_path, err_path}) fs::remove(p);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << err;
  // Each answer ends with a newline, and the first turn is the one-shot answer to the same message.
  EXPECT_GE(std::count(out.begin(), out.end(), '\n'), 2) << out;
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back(), '\n');
  const RunResult first = one_shot("Hello there");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(out.substr(0, first.out.size()), first.out) << "first turn differs from the one-shot answer";
  EXPECT_GT(out.size(), first.out.size()) << "no second answer";
}

TEST(Run, CtrlCTwiceAtThePromptQuits) {
  // The answer to "Hello" may itself hold newlines: count them, so as to know when it is complete.
  const RunResult expected =
      run({"run", "--model", kModel.string(), "--prompt", "Hello", "--max-tokens", "4", "--temperature", "0"});
  ASSERT_EQ(expected.exit_code, 0) << expected.err;
  const auto lines = std::count(expected.out.begin(), expected.out.end(), '\n');
  // stdin is a pipe kept open, so only the signals can end the chat.
  int in_fds[2], out_fds[2];
  ASSERT_EQ(::pipe(in_fds), 0);
  ASSERT_EQ(::pipe(out_fds), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in_fds[0], STDIN_FILENO);
    ::dup2(out_fds[1], STDOUT_FILENO);
    ::close(in_fds[1]);
    ::close(out_fds[0]);
    const int null_fd = ::open("/dev/null", O_WRONLY);
    ::dup2(null_fd, STDERR_FILENO);
    std::string bin = PENSIEVE_BIN, sub = "run", flag = "--model", model = kModel.string(), mt = "--max-tokens",
                n = "4", t = "--temperature", zero = "0";
    char* argv[] = {bin.data(), sub.data(), flag.data(), model.data(), mt.data(), n.data(), t.data(), zero.data(),
                    nullptr};
    ::execv(argv[0], argv);
    ::_exit(127);
  }
  ::close(in_fds[0]);
  ::close(out_fds[1]);
  // One answered message proves the model is loaded and the Ctrl-C handler installed.
  ASSERT_EQ(::write(in_fds[1], "Hello\n", 6), 6);
  std::string answered;
  char c = 0;
  while (std::count(answered.begin(), answered.end(), '\n') < lines && ::read(out_fds[0], &c, 1) == 1) answered += c;
  ASSERT_EQ(answered, expected.out) << "no answer before the pipe closed";
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // back at the prompt
  ::kill(pid, SIGINT);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, WNOHANG), 0) << "one Ctrl-C at the prompt must not quit";
  ::kill(pid, SIGINT);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  pid_t done = 0;
  while (done == 0 && std::chrono::steady_clock::now() < deadline) {
    done = ::waitpid(pid, &status, WNOHANG);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::close(in_fds[1]);
  ::close(out_fds[0]);
  if (done == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    FAIL() << "still running after a second Ctrl-C";
  }
  ASSERT_TRUE(WIFEXITED(status)) << "killed by a signal instead of quitting";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(Run, BadModelPathIsAOneLineError) {
  const RunResult r = run({"run", "--model", "/no/such/model.gguf", "--prompt", "hi"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(r.out.empty()) << r.out;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
  EXPECT_NE(r.err.find("/no/such/model.gguf"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace pensieve::cli_test
