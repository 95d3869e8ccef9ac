// Not a subcommand: config files and environment lists turned into the values the flags would give (see
// config_file.h). Everything goes through the option's own parser, so a value is checked exactly as on the
// command line.
#include "cli/config_file.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "cli/command_registry.h"

namespace pensieve::cli {
namespace {

using nlohmann::json;

bool takes_a_list(const CLI::Option& opt) {
  return opt.get_expected_max() > 1 || opt.get_items_expected_max() > 1;
}

// As CLI11 itself tells a flag from an option when it reads a config file.
bool is_switch(const CLI::Option& opt) { return opt.get_expected_min() == 0; }

// One scalar as the text a flag would carry; nullopt for booleans, null, arrays and objects (a boolean given to
// a number would otherwise pass: CLI11 reads "true" as 1).
std::optional<std::string> scalar_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number()) return v.dump();
  return std::nullopt;
}

const char* json_type_name(const json& v) {
  if (v.is_boolean()) return "a boolean";
  if (v.is_null()) return "null";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "a string or number";
}

// The option's results for one key of the file; throws a one-line message (without the file's name).
std::vector<std::string> values_for(const CLI::Option& opt, const json& v) {
  if (is_switch(opt)) {
    if (!v.is_boolean()) {
      throw std::invalid_argument(std::string("is a switch: expected true or false, got ") + json_type_name(v));
    }
    return {v.get<bool>() ? "true" : "false"};
  }
  if (v.is_array()) {
    if (!takes_a_list(opt)) throw std::invalid_argument("takes one value, not an array");
    std::vector<std::string> out;
    for (const json& item : v) {
      auto text = scalar_text(item);
      if (!text) {
        throw std::invalid_argument(std::string("expected an array of strings or numbers, got ") +
                                    json_type_name(item) + " in it");
      }
      out.push_back(std::move(*text));
    }
    return out;
  }
  auto text = scalar_text(v);
  if (!text) {
    throw std::invalid_argument(std::string("expected ") +
                                (takes_a_list(opt) ? "a string, number or array" : "a string or number") + ", got " +
                                json_type_name(v));
  }
  return {std::move(*text)};
}

// Gives `values` to an option the command line left unset, through the option's own conversion.
void set_option(CLI::Option& opt, const std::vector<std::string>& values) {
  opt.add_result(values);
  opt.run_callback();
}

}  // namespace

void apply_json_config(CLI::App& app, const std::string& path, const std::vector<std::string>& command_line_only) {
  const std::string where = "--config " + path;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CommandError{where + ": cannot read the file"};
  std::ostringstream text;
  text << in.rdbuf();
  json doc;
  try {
    doc = json::parse(text.str());
  } catch (const json::parse_error& e) {
    throw CommandError{where + ": not valid JSON: " + e.what()};
  }
  if (!doc.is_object()) throw CommandError{where + ": expected a JSON object of flags, e.g. {\"model\": \"m.gguf\"}"};
  for (const auto& [key, value] : doc.items()) {
    const std::string named = where + ": key '" + key + "'";
    CLI::Option* opt = key.empty() || key[0] == '-' ? nullptr : app.get_option_no_throw("--" + key);
    const bool refused = std::find(command_line_only.begin(), command_line_only.end(), key) != command_line_only.end();
    if (!opt || !opt->get_configurable()) {
      throw CommandError{named + ": no such flag of '" + app.get_name() + "' (keys are the long flags without '--')"};
    }
    if (refused) throw CommandError{named + ": only on the command line"};
    std::vector<std::string> values;
    try {
      values = values_for(*opt, value);
    } catch (const std::invalid_argument& why) {
      throw CommandError{named + ": " + why.what()};
    }
    if (opt->count() > 0) continue;  // the command line wins
    try {
      set_option(*opt, values);
    } catch (const CLI::Error& e) {
      throw CommandError{named + ": " + e.what()};
    }
  }
}

std::vector<std::string> split_env_list(std::string_view value) {
  std::vector<std::string> out;
  std::string current;
  for (const char c : value) {
    if (c == ',' || c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      if (!current.empty()) out.push_back(std::move(current));
      current.clear();
    } else {
      current += c;
    }
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

bool apply_env_list(CLI::App& app, const std::string& option, const char* name) {
  const char* value = std::getenv(name);
  if (!value) return false;
  CLI::Option* opt = app.get_option(option);
  const std::vector<std::string> entries = split_env_list(value);
  if (entries.empty() || opt->count() > 0) return false;
  try {
    set_option(*opt, entries);
  } catch (const CLI::Error& e) {
    throw CommandError{std::string(name) + ": " + e.what()};
  }
  return true;
}

}  // namespace pensieve::cli
