#pragma once
// Reading the shared tokenizer fixtures (see ../shared/fixtures/README.md).
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace pensieve::tokenizer::testing {

inline std::filesystem::path fixtures_dir() { return PENSIEVE_FIXTURES_DIR; }

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("missing fixture " + path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct TokenizerCase {
  std::string text;
  std::vector<int32_t> ids;
};

// llama.cpp's vocab test layout: every string in .inp is followed by "\n__ggml_vocab_test__\n"; .out holds one
// line of space-separated ids per string.
inline std::vector<TokenizerCase> read_vocab_cases(const std::filesystem::path& gguf) {
  std::string inp = read_file(gguf.string() + ".inp");
  std::string out = read_file(gguf.string() + ".out");
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<TokenizerCase> cases;
  std::size_t pos = 0;
  while (pos < inp.size()) {
    std::size_t end = inp.find(separator, pos);
    if (end == std::string::npos) throw std::runtime_error(gguf.string() + ".inp: text after the last separator");
    cases.push_back({inp.substr(pos, end - pos), {}});
    pos = end + separator.size();
  }
  std::istringstream lines(out);
  std::string line;
  std::size_t index = 0;
  while (std::getline(lines, line)) {
    if (index >= cases.size()) throw std::runtime_error(gguf.string() + ".out has more lines than .inp has strings");
    std::istringstream ids(line);
    int32_t id;
    while (ids >> id) cases[index].ids.push_back(id);
    ++index;
  }
  if (index != cases.size()) throw std::runtime_error(gguf.string() + ".out has fewer lines than .inp has strings");
  return cases;
}

}  // namespace pensieve::tokenizer::testing
