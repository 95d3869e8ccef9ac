#pragma once
// The --device flag every command that runs a model takes, and the line that says what was picked.
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "backend/backend.h"
#include "http/log_format.h"

namespace pensieve::cli {

void add_device_option(CLI::App& sub, std::string& device);
// Whether `device` (a --device value) means a GPU here: cuda[:N], or auto where one can be used. Opens nothing
// and prints nothing (a throw for a value --device does not take).
bool device_is_gpu(const std::string& device);
// Makes the backend --device names (auto: CUDA when built in and a GPU is present). When auto falls back to
// the CPU, one line on stderr says why. A bad value or an explicit cuda that cannot be served throws a
// one-line CommandError.
std::unique_ptr<backend::Backend> open_backend(const std::string& device, int threads,
                                               http::LogFormat log_format = http::LogFormat::Text);
// "cuda:0 NVIDIA H200, 139.8 GiB (131.0 GiB free)" or "cpu-avx2 x 2 threads".
std::string describe_device(const backend::Backend& be);

// --tensor-parallel N and --devices 0,1,...: the flags of the commands that can split a model over ranks.
struct ParallelFlags {
  int tensor_parallel = 1;
  std::string devices;  // "0,1,2,3": the GPUs of the ranks, in rank order (default 0..N-1)
};
void add_parallel_options(CLI::App& sub, ParallelFlags& flags);
// The checked GPU indices of the ranks; a one-line CommandError for N < 1, a bad list, a repeated GPU, or a
// list whose length is not N.
std::vector<int> rank_devices(const ParallelFlags& flags);
// One backend per rank. One rank: open_backend. Several, where --device resolves to the CPU: CPU backends of
// threads / N threads each, joined in-process (this proves the split; one CPU does not run faster for it).
// Several on GPUs: the CUDA backend on each of rank_devices() (joined over NCCL when the model loads).
std::vector<std::unique_ptr<backend::Backend>> open_rank_backends(const std::string& device, const ParallelFlags& flags,
                                                                  int threads,
                                                                  http::LogFormat log_format = http::LogFormat::Text);
std::vector<backend::Backend*> pointers(const std::vector<std::unique_ptr<backend::Backend>>& backends);

}  // namespace pensieve::cli
