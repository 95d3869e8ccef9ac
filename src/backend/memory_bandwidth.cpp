#include "backend/memory_bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

namespace pensieve::backend {

namespace {

// Eight independent sums so the loop is limited by loads, not by an add chain; the result is returned so the
// reads cannot be optimized away.
uint64_t sum_range(const uint64_t* p, size_t n) {
  uint64_t s[8] = {};
  for (size_t i = 0; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) s[k] += p[i + static_cast<size_t>(k)];
  }
  return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

}  // namespace

double measure_read_bandwidth(int threads) {
  threads = std::max(1, threads);
  constexpr size_t kBytes = size_t{512} << 20;
  const size_t n = kBytes / sizeof(uint64_t);
  std::vector<uint64_t> buffer(n);
  for (size_t i = 0; i < n; i += 512) buffer[i] = i;  // touch every page before timing
  double best = 0;
  volatile uint64_t sink = 0;
  for (int pass = 0; pass < 4; ++pass) {
    std::vector<uint64_t> sums(static_cast<size_t>(threads));
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        const size_t begin = n / static_cast<size_t>(threads) * static_cast<size_t>(t);
        const size_t end = t + 1 == threads ? n : n / static_cast<size_t>(threads) * static_cast<size_t>(t + 1);
        sums[static_cast<size_t>(t)] = sum_range(buffer.data() + begin, end - begin);
      });
    }
    for (auto& w : workers) w.join();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (uint64_t s : sums) sink = sink + s;
    best = std::max(best, static_cast<double>(kBytes) / secs);
  }
  return best;
}

}  // namespace pensieve::backend
