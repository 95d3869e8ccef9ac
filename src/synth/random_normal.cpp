#include "synth/random_normal.h"

#include <cmath>

namespace pensieve::synth {

namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

NormalGenerator::NormalGenerator(uint64_t seed, uint64_t tensor_index, uint64_t row) {
  uint64_t mix = seed;
  mix = splitmix64(mix) ^ (tensor_index * 0xd1b54a32d192ed03ULL);
  mix = splitmix64(mix) ^ (row * 0x8cb92ba72f3d8dd7ULL);
  for (auto& word : state_) word = splitmix64(mix);
}

uint64_t NormalGenerator::next() {
  const uint64_t result = rotl(state_[0] + state_[3], 23) + state_[0];
  const uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = rotl(state_[3], 45);
  return result;
}

double NormalGenerator::next_uniform() {
  // 53 random bits mapped to [-1, 1).
  return static_cast<double>(next() >> 11) * 0x1.0p-52 - 1.0;
}

void NormalGenerator::fill(std::span<float> out, float stddev) {
  // Marsaglia's polar method: two normals per accepted pair, no trigonometry.
  size_t i = 0;
  while (i < out.size()) {
    double u, v, s;
    do {
      u = next_uniform();
      v = next_uniform();
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double m = std::sqrt(-2.0 * std::log(s) / s) * stddev;
    out[i++] = static_cast<float>(u * m);
    if (i < out.size()) out[i++] = static_cast<float>(v * m);
  }
}

}  // namespace pensieve::synth
