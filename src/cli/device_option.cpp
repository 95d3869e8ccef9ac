// Not a subcommand: the --device helpers shared by serve, run, generate, logits and the benchmarks.
#include "cli/device_option.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <sstream>
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

void add_parallel_options(CLI::App& sub, ParallelFlags& flags) {
  sub.add_option("--tensor-parallel", flags.tensor_parallel,
                 "Split the model over N ranks (GPUs over NCCL; on the CPU, in-process ranks) (default 1)");
  sub.add_option("--devices", flags.devices, "GPUs of the ranks with --tensor-parallel, e.g. 0,1,2,3 (default 0..N-1)");
}

std::vector<int> rank_devices(const ParallelFlags& flags) {
  const int n = flags.tensor_parallel;
  if (n < 1) throw CommandError{"--tensor-parallel must be at least 1"};
  std::vector<int> out;
  if (flags.devices.empty()) {
    for (int r = 0; r < n; ++r) out.push_back(r);
    return out;
  }
  std::istringstream in(flags.devices);
  std::string item;
  std::set<int> seen;
  while (std::getline(in, item, ',')) {
    if (item.empty() || item.size() > 3 || !std::all_of(item.begin(), item.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      throw CommandError{"--devices: expected GPU numbers separated by commas (e.g. 0,1), got '" + flags.devices + "'"};
    }
    const int d = std::stoi(item);
    if (!seen.insert(d).second) throw CommandError{"--devices: GPU " + item + " is given twice"};
    out.push_back(d);
  }
  if (static_cast<int>(out.size()) != n) {
    throw CommandError{"--devices names " + std::to_string(out.size()) + " GPU(s) for --tensor-parallel " + std::to_string(n)};
  }
  return out;
}

std::vector<std::unique_ptr<backend::Backend>> open_rank_backends(const std::string& device, const ParallelFlags& flags,
                                                                  int threads, http::LogFormat log_format) {
  const std::vector<int> devices = rank_devices(flags);
  const int n = flags.tensor_parallel;
  std::vector<std::unique_ptr<backend::Backend>> out;
  if (n == 1 && flags.devices.empty()) {
    out.push_back(open_backend(device, threads, log_format));
    return out;
  }
  if (!device_is_gpu(device)) {
    if (device == "auto") http::log_message(stderr, log_format, "the GPU is not used: " + backend::cuda_unavailable_reason(0));
    const int per_rank = std::max(1, (threads > 0 ? threads : backend::physical_cores()) / n);
    for (int r = 0; r < n; ++r) out.push_back(backend::make_cpu_backend(per_rank));
    return out;
  }
  for (int d : devices) {
    try {
      out.push_back(backend::make_cuda_backend(d));
    } catch (const std::exception& e) {
      throw CommandError{"--devices: cuda:" + std::to_string(d) + ": " + e.what()};
    }
  }
  return out;
}

std::vector<backend::Backend*> pointers(const std::vector<std::unique_ptr<backend::Backend>>& backends) {
  std::vector<backend::Backend*> out;
  for (const auto& b : backends) out.push_back(b.get());
  return out;
}

}  // namespace pensieve::cli
