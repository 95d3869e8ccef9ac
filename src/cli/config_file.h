#pragma once
// Settings from outside the command line, fed into a command's own CLI11 options so that every flag (and every
// flag added later) works there without extra code:
//  - a JSON config file (`serve --config FILE`): an object whose keys are the long flags without the dashes,
//    arrays for repeatable flags, booleans for switches;
//  - an environment variable holding a list (`PENSIEVE_API_KEY=k1,k2`), so that secrets stay out of `ps`.
// Each only fills options the command line left unset, so flags on the command line always win.
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

namespace pensieve::cli {

// Parses the JSON object in `path` and gives each key's value to the option `--key` of `app` unless the command
// line set it. Throws CommandError with one line naming the file and the key for an unreadable file, bad JSON,
// an unknown key, a key in `command_line_only`, or a value of the wrong type for its option.
void apply_json_config(CLI::App& app, const std::string& path, const std::vector<std::string>& command_line_only);

// The entries of a list in an environment variable: split at commas, spaces and newlines, empty entries dropped.
std::vector<std::string> split_env_list(std::string_view value);

// Sets `option` (a repeatable option of `app`) from the list in environment variable `name` when the variable is
// set and non-empty and the command line left the option unset. Returns whether it did.
bool apply_env_list(CLI::App& app, const std::string& option, const char* name);

}  // namespace pensieve::cli
