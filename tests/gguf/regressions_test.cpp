// Inputs kept in tests/gguf/regressions/: hand-made hostile files and any input the fuzzer ever crashed on.
// The name's extension says the expected outcome: .error must throw GgufError, .ok must parse, anything else
// (raw fuzzer finds) must do either without crashing.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "gguf/gguf_file.h"

namespace fs = std::filesystem;
using pensieve::gguf::GgufError;
using pensieve::gguf::GgufFile;

namespace {

TEST(Regressions, EachKeptInputEndsAsItsNameSays) {
  const fs::path dir = fs::path(PENSIEVE_SOURCE_DIR) / "tests/gguf/regressions";
  size_t checked = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const fs::path& path = entry.path();
    SCOPED_TRACE(path.filename().string());
    std::ifstream in(path, std::ios::binary);
    std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::byte> bytes(chars.size());
    std::memcpy(bytes.data(), chars.data(), chars.size());
    std::string outcome = "ok";
    try {
      GgufFile f = GgufFile::parse(bytes, path.filename().string());
      for (const auto& t : f.tensors()) EXPECT_EQ(f.tensor_data(t).size(), t.n_bytes);
    } catch (const GgufError& e) {
      outcome = "error";
      std::string_view m = e.what();
      EXPECT_EQ(m.substr(0, path.filename().string().size() + 2), path.filename().string() + ": ") << m;
      EXPECT_EQ(m.find('\n'), std::string_view::npos) << m;
    }
    const std::string ext = path.extension().string();
    if (ext == ".error" || ext == ".ok") {
      EXPECT_EQ("." + outcome, ext);
    }
    ++checked;
  }
  EXPECT_GE(checked, 10u);  // the hand-made set is there
}

}  // namespace
