#pragma once
// Reproducible normally distributed test inputs for the backend tests.
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace pensieve::backend::cpu::test_inputs {

inline std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

}  // namespace pensieve::backend::cpu::test_inputs
