// Not a subcommand: the --device helpers shared by serve, run, generate, logits and the benchmarks.
#include "cli/device_option.h"

#include <cstdio>
#include <stdexcept>

#include "cli/command_registry.h"
#include "cli/memory_plan.h"

namespace pensieve::cli {

void add_device_option(CLI::App& sub, std::string& device) {
  sub.add_option("--device", device,
                 "Where the model runs: auto (the GPU when this build has CUDA and one is present), cpu, cuda, cuda:N "
                 "(default auto)");
}

std::unique_ptr<backend::Backend> open_backend(const std::string& device, int threads, http::LogFormat log_format) {
  backend::DeviceChoice choice;
  try {
    choice = backend::parse_device(device);
  } catch (const std::invalid_argument& e) {
    throw CommandError{e.what()};
  }
  std::string note;
  try {
    auto be = backend::make_backend(choice, threads, &note);
    if (!note.empty()) http::log_message(stderr, log_format, note);
    return be;
  } catch (const std::exception& e) {
    throw CommandError{std::string("--device ") + device + ": " + e.what()};
  }
}

bool device_is_gpu(const std::string& device) {
  backend::DeviceChoice choice;
  try {
    choice = backend::parse_device(device);
  } catch (const std::invalid_argument& e) {
    throw CommandError{e.what()};
  }
  if (choice.kind == backend::DeviceChoice::Kind::Cpu) return false;
  return choice.kind == backend::DeviceChoice::Kind::Cuda || backend::cuda_unavailable_reason(choice.index).empty();
}

std::string describe_device(const backend::Backend& be) {
  const backend::DeviceInfo d = be.device_info();
  if (d.kind == "cuda") {
    return "cuda:" + std::to_string(d.index) + " " + d.name + ", " + format_bytes(d.total_bytes) + " (" +
           format_bytes(d.free_bytes) + " free)";
  }
  return be.name() + " x " + std::to_string(be.threads()) + " threads";
}

}  // namespace pensieve::cli
