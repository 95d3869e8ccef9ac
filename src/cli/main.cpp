// pensieve: one binary, many subcommands (serve, inspect, synth, tokenize, ...).
#include <algorithm>
#include <cstdio>
#include <exception>
#include <map>

#include <CLI/CLI.hpp>

#include "cli/command_registry.h"

namespace pensieve::cli {
std::vector<CommandSpec>& command_registry() {
  static std::vector<CommandSpec> registry;
  return registry;
}
}  // namespace pensieve::cli

int main(int argc, char** argv) {
  using namespace pensieve::cli;
  CLI::App app{"pensieve: a local LLM inference server"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "pensieve 0.1.0");

  auto& specs = command_registry();
  std::sort(specs.begin(), specs.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  std::map<CLI::App*, Action> actions;
  for (auto& spec : specs) {
    CLI::App* sub = app.add_subcommand(spec.name, spec.description);
    actions[sub] = spec.setup(*sub);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    for (auto& [sub, action] : actions) {
      if (sub->parsed()) return action();
    }
  } catch (const CommandError& e) {
    std::fprintf(stderr, "pensieve: %s\n", e.message.c_str());
    return e.code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pensieve: %s\n", e.what());
    return 1;
  }
  return 1;
}
