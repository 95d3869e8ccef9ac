#pragma once
// A fast seeded normal generator for random weights. Every row of every tensor gets its own stream derived
// from (seed, tensor index, row), so the values do not depend on how rows are spread over threads.
#include <cstdint>
#include <span>

namespace pensieve::synth {

class NormalGenerator {
 public:
  NormalGenerator(uint64_t seed, uint64_t tensor_index, uint64_t row);

  // Fills `out` with independent normal(0, stddev) samples.
  void fill(std::span<float> out, float stddev);

 private:
  uint64_t next();       // xoshiro256++
  double next_uniform();  // in (-1, 1)
  uint64_t state_[4];
};

}  // namespace pensieve::synth
