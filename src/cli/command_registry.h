#pragma once
// Subcommands register themselves at static-initialization time, so each lives in its own file and main()
// needs no list of them. A command sets up its flags on a CLI11 subcommand and returns the action to run.
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace pensieve::cli {

// Thrown by a command for a user-facing failure: main prints "pensieve: <message>" and exits with `code`.
struct CommandError {
  std::string message;
  int code = 1;
};

using Action = std::function<int()>;
using Setup = std::function<Action(CLI::App& sub)>;

struct CommandSpec {
  std::string name;
  std::string description;
  Setup setup;
};

std::vector<CommandSpec>& command_registry();

struct RegisterCommand {
  RegisterCommand(std::string name, std::string description, Setup setup) {
    command_registry().push_back({std::move(name), std::move(description), std::move(setup)});
  }
};

}  // namespace pensieve::cli
