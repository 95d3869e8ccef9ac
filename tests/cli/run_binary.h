#pragma once
// Runs the built `pensieve` binary the way a user would and captures what it prints.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace pensieve::cli_test {

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline std::filesystem::path scratch(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("pensieve-cli-test-" + std::to_string(::getpid()) + "-" + name);
}

// `program` defaults to the pensieve binary; args are quoted for the shell.
inline RunResult run(const std::vector<std::string>& args, const std::string& program = PENSIEVE_BIN) {
  static int counter = 0;
  const auto out_path = scratch("stdout-" + std::to_string(counter));
  const auto err_path = scratch("stderr-" + std::to_string(counter++));
  std::string command = shell_quote(program);
  for (const auto& a : args) {
    command += ' ';
    command += shell_quote(a);
  }
  // Appended piecewise: `"literal" + std::string&&` trips a GCC 12 -Wrestrict false positive.
  command += " >";
  command += shell_quote(out_path.string());
  command += " 2>";
  command += shell_quote(err_path.string());
  const int status = std::system(command.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  std::filesystem::remove(out_path);
  std::filesystem::remove(err_path);
  return r;
}

}  // namespace pensieve::cli_test
