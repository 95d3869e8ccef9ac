#pragma once
// The chat-template fixtures (../shared/fixtures/templates/NAME/{template.jinja,cases.json}) for tests of
// several rooms.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace pensieve::testing {

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::filesystem::path fixture_templates_dir() {
  return std::filesystem::path(PENSIEVE_FIXTURES_DIR) / "templates";
}

// The template.jinja of fixture NAME.
inline std::string fixture_template(const std::string& name) {
  return read_file(fixture_templates_dir() / name / "template.jinja");
}

// Case `case_name` of fixture NAME: {"name", "context", "expected" or "error"}; a test failure when missing.
inline nlohmann::ordered_json fixture_case(const std::string& name, const std::string& case_name) {
  const auto cases = nlohmann::ordered_json::parse(read_file(fixture_templates_dir() / name / "cases.json"));
  for (const auto& c : cases["cases"]) {
    if (c["name"] == case_name) return c;
  }
  ADD_FAILURE() << "no case " << case_name << " in " << name;
  return {};
}

}  // namespace pensieve::testing
