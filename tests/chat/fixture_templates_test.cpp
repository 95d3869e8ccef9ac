// Renders every case of ../shared/fixtures/templates/*/cases.json (goldens from Python jinja2 with HF's
// settings) and demands the exact string, or a failure where the reference failed -- with the template's own
// message when the template called raise_exception.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "chat/chat_template.h"

namespace fs = std::filesystem;
using pensieve::chat::ChatTemplate;
using pensieve::chat::RenderOptions;
using pensieve::chat::TemplateError;

namespace {

const fs::path kTemplatesDir = fs::path(PENSIEVE_FIXTURES_DIR) / "templates";

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + p.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> template_names() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(kTemplatesDir, ec)) {
    if (entry.is_directory()) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The clock the fixtures were rendered with: 2026-01-15 09:30:00 (a Thursday).
RenderOptions pinned_clock() {
  std::tm t{};
  t.tm_year = 2026 - 1900;
  t.tm_mon = 0;
  t.tm_mday = 15;
  t.tm_hour = 9;
  t.tm_min = 30;
  t.tm_wday = 4;
  t.tm_yday = 14;
  RenderOptions o;
  o.now = t;
  return o;
}

std::string visible(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else out += c;
  }
  return out;
}

// Where two renderings part, with some context on each side.
std::string describe_difference(const std::string& expected, const std::string& actual) {
  size_t i = 0;
  while (i < expected.size() && i < actual.size() && expected[i] == actual[i]) ++i;
  size_t from = i > 60 ? i - 60 : 0;
  std::ostringstream out;
  out << "first difference at byte " << i << " (expected " << expected.size() << " bytes, got " << actual.size()
      << ")\n  common:   ..." << visible(std::string_view(expected).substr(from, i - from))
      << "\n  expected: " << visible(std::string_view(expected).substr(i, 80))
      << "\n  actual:   " << visible(std::string_view(actual).substr(std::min(i, actual.size()), 80));
  return out.str();
}

class FixtureTemplate : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureTemplate, RendersEveryCaseLikeJinja2) {
  const fs::path dir = kTemplatesDir / GetParam();
  const auto cases = nlohmann::ordered_json::parse(read_file(dir / "cases.json"));
  ASSERT_TRUE(cases.contains("cases"));
  ASSERT_FALSE(cases["cases"].empty());
  const ChatTemplate tmpl(read_file(dir / "template.jinja"));
  const RenderOptions options = pinned_clock();

  for (const auto& c : cases["cases"]) {
    const std::string name = c.at("name").get<std::string>();
    SCOPED_TRACE(GetParam() + " / " + name);
    if (c.contains("expected")) {
      const std::string expected = c["expected"].get<std::string>();
      try {
        const std::string actual = tmpl.render(c.at("context"), options);
        EXPECT_EQ(actual, expected) << describe_difference(expected, actual);
      } catch (const TemplateError& e) {
        ADD_FAILURE() << "render failed: " << e.what();
      }
      continue;
    }
    const std::string error = c.at("error").get<std::string>();
    const std::string raised_prefix = "TemplateError: ";
    try {
      const std::string actual = tmpl.render(c.at("context"), options);
      ADD_FAILURE() << "expected failure '" << error << "', rendered:\n" << actual;
    } catch (const TemplateError& e) {
      if (error.rfind(raised_prefix, 0) == 0) {
        EXPECT_TRUE(e.raised_by_template()) << e.what();
        EXPECT_EQ(std::string(e.what()), error.substr(raised_prefix.size()));
      } else {
        EXPECT_FALSE(e.raised_by_template()) << "reference failed with '" << error << "', we raised: " << e.what();
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureTemplate, ::testing::ValuesIn(template_names()),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace_if(n.begin(), n.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
                           return n;
                         });

// A missing or empty fixture folder must fail, not silently instantiate nothing above.
TEST(FixtureTemplates, FixturesArePresent) {
  ASSERT_TRUE(fs::is_directory(kTemplatesDir)) << kTemplatesDir;
  EXPECT_GE(template_names().size(), 12u);
}

}  // namespace
