#include "backend/backend.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <cstdlib>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "backend/cpu/cpu_backend.h"

namespace pensieve::backend {

void fill_rope_table(std::span<const int32_t> positions, const RopeTableParams& p, float* cos_sin) {
  const int half = p.n_rot / 2;
  if (!p.freq_factors.empty() && static_cast<int>(p.freq_factors.size()) < half) {
    throw std::invalid_argument("rope frequency factors: " + std::to_string(p.freq_factors.size()) +
                                " values for " + std::to_string(half) + " frequencies");
  }
  for (size_t t = 0; t < positions.size(); ++t) {
    for (int i = 0; i < half; ++i) {
      double inv_freq = std::pow(static_cast<double>(p.theta), -2.0 * i / p.n_rot);
      if (!p.freq_factors.empty()) inv_freq /= p.freq_factors[static_cast<size_t>(i)];
      const double angle = positions[t] * inv_freq;
      cos_sin[(t * static_cast<size_t>(half) + static_cast<size_t>(i)) * 2] = static_cast<float>(std::cos(angle));
      cos_sin[(t * static_cast<size_t>(half) + static_cast<size_t>(i)) * 2 + 1] = static_cast<float>(std::sin(angle));
    }
  }
}

void compute_top_logits(std::span<const float> row, TopLogits& out) {
  // A min-heap of the best so far (worst on top) keeps the scan at O(vocab log k) with no allocation.
  struct Entry {
    float logit;
    int32_t id;
  };
  const auto better = [](const Entry& a, const Entry& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); };
  std::array<Entry, kTopLogits> heap;
  size_t size = 0;
  const size_t k = std::min(row.size(), static_cast<size_t>(kTopLogits));
  float top = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < row.size(); ++i) {
    const Entry e{row[i], static_cast<int32_t>(i)};
    top = std::max(top, e.logit);
    if (size < k) {
      heap[size++] = e;
      std::push_heap(heap.begin(), heap.begin() + static_cast<std::ptrdiff_t>(size), better);
    } else if (k > 0 && better(e, heap[0])) {
      std::pop_heap(heap.begin(), heap.begin() + static_cast<std::ptrdiff_t>(size), better);
      heap[size - 1] = e;
      std::push_heap(heap.begin(), heap.begin() + static_cast<std::ptrdiff_t>(size), better);
    }
  }
  std::sort_heap(heap.begin(), heap.begin() + static_cast<std::ptrdiff_t>(size), better);
  for (size_t i = 0; i < size; ++i) {
    out.ids[i] = heap[i].id;
    out.logits[i] = heap[i].logit;
  }
  double sum = 0;
  for (float l : row) sum += std::exp(static_cast<double>(l) - top);
  out.log_sum_exp = row.empty() ? 0.0f : static_cast<float>(top + std::log(sum));
  out.count = static_cast<int32_t>(size);
}

int physical_cores() {
  // Distinct (package, core) pairs; SMT siblings share a core and add little to bandwidth-bound work.
  std::set<std::pair<std::string, std::string>> cores;
  const unsigned logical = std::thread::hardware_concurrency();
  for (unsigned cpu = 0; cpu < logical; ++cpu) {
    const std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream core(dir + "core_id"), package(dir + "physical_package_id");
    std::string c, pk;
    if (!(core >> c) || !(package >> pk)) return logical > 0 ? static_cast<int>(logical) : 1;
    cores.emplace(pk, c);
  }
  return cores.empty() ? 1 : static_cast<int>(cores.size());
}

Buffer Backend::upload(std::span<const float> values) {
  Buffer b = allocate(values.size_bytes());
  write(b, 0, std::as_bytes(values));
  return b;
}

DeviceChoice parse_device(std::string_view text) {
  if (text == "auto") return {DeviceChoice::Kind::Auto, 0};
  if (text == "cpu") return {DeviceChoice::Kind::Cpu, 0};
  if (text == "cuda") return {DeviceChoice::Kind::Cuda, 0};
  if (text.starts_with("cuda:") && text.size() > 5 && text.size() <= 8) {
    int index = 0;
    for (char ch : text.substr(5)) {
      if (ch < '0' || ch > '9') throw std::invalid_argument("--device: expected auto, cpu, cuda or cuda:N, got '" + std::string(text) + "'");
      index = index * 10 + (ch - '0');
    }
    return {DeviceChoice::Kind::Cuda, index};
  }
  throw std::invalid_argument("--device: expected auto, cpu, cuda or cuda:N, got '" + std::string(text) + "'");
}

std::unique_ptr<Backend> make_backend(const DeviceChoice& choice, int threads, std::string* note) {
  if (note) note->clear();
  if (choice.kind == DeviceChoice::Kind::Cpu) return make_cpu_backend(threads);
  if (choice.kind == DeviceChoice::Kind::Cuda) return make_cuda_backend(choice.index);
  const std::string why = cuda_unavailable_reason(choice.index);
  if (why.empty()) return make_cuda_backend(choice.index);
  if (note) *note = "the GPU is not used: " + why;
  return make_cpu_backend(threads);
}

std::unique_ptr<Backend> make_cpu_backend(int threads, bool interleave) {
  if (threads <= 0) threads = physical_cores();
  const char* env = std::getenv("PENSIEVE_INTERLEAVE");
  if (env != nullptr && std::string_view(env) == "0") interleave = false;
  return std::make_unique<cpu::CpuBackend>(threads, cpu::pick_kernels(), interleave);
}

}  // namespace pensieve::backend
