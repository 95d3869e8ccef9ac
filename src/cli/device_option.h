#pragma once
// The --device flag every command that runs a model takes, and the line that says what was picked.
#include <memory>
#include <string>

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

}  // namespace pensieve::cli
