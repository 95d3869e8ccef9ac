// Each CUDA op against a reference on random inputs: matrix products for every weight type (real tensors of
// llama.cpp-quantized files) against dequantize-then-dot in double, embedding lookups against the host
// dequantizer, the row ops and the paged KV store + attention against the CPU backend, for every KV type.
// Without a GPU (or a build without CUDA) every test reports itself skipped, with the reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "gguf/gguf_file.h"
#include "tensor/dequantize.h"
#include "tensor/quantize.h"

namespace pensieve::backend {
namespace {

const std::filesystem::path kFixtures = PENSIEVE_FIXTURES_DIR;

Backend* gpu() {
  static std::unique_ptr<Backend> be = [] {
    return cuda_unavailable_reason(0).empty() ? make_cuda_backend(0) : nullptr;
  }();
  return be.get();
}

// A CUDA backend made with the given PENSIEVE_CUDA_* settings in the environment (null without a GPU).
std::unique_ptr<Backend> gpu_with(std::initializer_list<std::pair<const char*, const char*>> settings) {
  if (!cuda_unavailable_reason(0).empty()) return nullptr;
  for (const auto& [name, value] : settings) setenv(name, value, 1);
  auto b = make_cuda_backend(0);
  for (const auto& [name, value] : settings) unsetenv(name);
  return b;
}

// A second backend whose products of up to 16 rows all take the in-place quantized kernels (the default sends
// batches of 2+ rows to cuBLAS when an f16 copy exists), so every kernel variant meets the reference.
Backend* gpu_in_place() {
  static std::unique_ptr<Backend> be = gpu_with({{"PENSIEVE_CUDA_MATVEC_ROWS", "16"}});
  return be.get();
}

// The same with products reading every matrix in its GGUF layout (no repacked copies: what a card whose
// memory is short for them runs).
Backend* gpu_gguf_layout() {
  static std::unique_ptr<Backend> be = gpu_with({{"PENSIEVE_CUDA_MATVEC_ROWS", "16"}, {"PENSIEVE_CUDA_REPACK", "0"}});
  return be.get();
}

#define REQUIRE_GPU()                                                       \
  if (gpu() == nullptr) GTEST_SKIP() << "no GPU: " << cuda_unavailable_reason(0)

Backend& cpu() {
  static std::unique_ptr<Backend> be = make_cpu_backend(2);
  return *be;
}

std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// A device buffer holding `values`, and the values of a device buffer.
Buffer to_device(std::span<const float> values) { return gpu()->upload(values); }
std::vector<float> to_host(const Buffer& b, size_t n) {
  std::vector<float> out(n);
  gpu()->read(out, b.floats());
  return out;
}

Weight weight_of(const gguf::GgufFile& f, const gguf::TensorInfo& t) {
  Weight w;
  w.name = t.name;
  w.type_id = t.type_id;
  w.cols = static_cast<int64_t>(t.shape[0]);
  w.rows = static_cast<int64_t>(t.shape[1]);
  w.row_bytes = static_cast<size_t>(*gguf::bytes_for(t.type_id, t.shape[0]));
  w.data = f.tensor_data(t);
  return w;
}

// Every operand of the GPU's products is rounded to f16 (or bf16) before the multiply, so each term carries a
// relative error of at most ~2^-10 (2^-7 for bf16); the sum's error is then bounded by that times sum |w x|.
void check_matmul(Backend& be, const gguf::GgufFile& f, const gguf::TensorInfo& t) {
  SCOPED_TRACE(t.name + " (" + std::string(gguf::type_name(t.type_id)) + ")");
  const Weight host = weight_of(f, t);
  Weight dev = host;
  be.prepare(dev, Backend::WeightUse::Matrix);
  ASSERT_NE(dev.data.data(), host.data.data());
  std::vector<float> dense(static_cast<size_t>(host.rows * host.cols));
  tensor::dequantize(t.type_id, host.data, dense);
  const double rel = t.type_id == static_cast<uint32_t>(gguf::GgmlType::BF16) ? 2e-2 : 3e-3;
  for (int n : {1, 3, 8, 13, 40}) {
    const auto x = random_floats(static_cast<size_t>(n * host.cols), 100 + n);
    Buffer xd = be.upload(x);
    Buffer yd = be.allocate(static_cast<size_t>(n * host.rows) * sizeof(float));
    be.matmul(dev, xd.floats(), n, yd.floats());
    std::vector<float> y(static_cast<size_t>(n * host.rows));
    be.read(y, yd.floats());
    for (int j = 0; j < n; ++j) {
      for (int64_t r = 0; r < host.rows; ++r) {
        double ref = 0, mag = 0;
        for (int64_t c = 0; c < host.cols; ++c) {
          const double p = static_cast<double>(dense[static_cast<size_t>(r * host.cols + c)]) *
                           x[static_cast<size_t>(j * host.cols + c)];
          ref += p;
          mag += std::fabs(p);
        }
        const double got = y[static_cast<size_t>(j * host.rows + r)];
        ASSERT_NEAR(got, ref, rel * mag + 1e-6) << "n " << n << " row " << r << " activation row " << j;
      }
    }
  }
}

TEST(CudaMatmul, EveryWeightTypeMatchesDequantizeThenDot) {
  REQUIRE_GPU();
  std::set<uint32_t> seen;
  auto run_file = [&](const std::filesystem::path& path) {
    const gguf::GgufFile f = gguf::GgufFile::open(path);
    for (const gguf::TensorInfo& t : f.tensors()) {
      if (t.shape.size() != 2 || seen.count(t.type_id)) continue;
      seen.insert(t.type_id);
      check_matmul(*gpu(), f, t);
      check_matmul(*gpu_in_place(), f, t);
    }
  };
  for (const char* q : {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "IQ4_NL",
                        "IQ4_XS"}) {
    run_file(kFixtures / "quant" / (std::string("llama3-tiny-") + q + ".gguf"));
  }
  for (const char* ty : {"f32", "f16", "bf16"}) {
    run_file(kFixtures / "models" / "llama-tiny" / (std::string("llama-tiny-") + ty + ".gguf"));
  }
  EXPECT_EQ(seen.size(), 15u) << "weight types covered";
}

// Rows as wide as real models' (the fixtures' are a few hundred columns), in matrices of a few tiles up to
// over a thousand, at every batch of 1..16 rows and each warps-per-tile choice. The Q4_K kernel copies one to
// a few activation rows into shared memory when they fit beside its own, so 2560, 3072 and 14336 columns
// cross that limit somewhere. A sequence's result must not depend on timing: the same product twice gives the same bits.
// Weights are random floats quantized here; the reference is dequantize-then-dot in double.
TEST(CudaMatmul, WideRowsAtEveryBatchUpToSixteen) {
  REQUIRE_GPU();
  // Q6_K twice: from the repacked copy, then from the GGUF bytes.
  for (const auto& [type, gguf_layout] : std::vector<std::pair<gguf::GgmlType, bool>>{
           {gguf::GgmlType::Q4_K, false}, {gguf::GgmlType::Q6_K, false}, {gguf::GgmlType::Q6_K, true},
           {gguf::GgmlType::F16, false}}) {
    Backend& be = gguf_layout ? *gpu_gguf_layout() : *gpu_in_place();
    for (const auto& [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{64, 2560}, {64, 3072}, {2048, 3072},
                                                                            {8192, 2560}, {64, 14336},
                                                                            {16400, 1280}}) {
      SCOPED_TRACE(std::string(gguf::type_name(static_cast<uint32_t>(type))) + (gguf_layout ? " (GGUF layout)" : "") +
                   " rows " + std::to_string(rows) + " cols " + std::to_string(cols));
      const auto values = random_floats(static_cast<size_t>(rows * cols), 11, 0.05f);
      const size_t row_bytes = *gguf::bytes_for(static_cast<uint32_t>(type), static_cast<uint64_t>(cols));
      std::vector<std::byte> bytes(row_bytes * static_cast<size_t>(rows));
      tensor::quantize(type, values, bytes);
      std::vector<float> dense(values.size());
      tensor::dequantize(static_cast<uint32_t>(type), bytes, dense);
      Weight w;
      w.name = "wide";
      w.type_id = static_cast<uint32_t>(type);
      w.rows = rows;
      w.cols = cols;
      w.row_bytes = row_bytes;
      w.data = bytes;
      be.prepare(w, Backend::WeightUse::Matrix);
      for (int n = 1; n <= 16; ++n) {
        const auto x = random_floats(static_cast<size_t>(n * cols), 200 + n);
        Buffer xd = be.upload(x);
        Buffer yd = be.allocate(static_cast<size_t>(n * rows) * sizeof(float));
        be.matmul(w, xd.floats(), n, yd.floats());
        std::vector<float> y(static_cast<size_t>(n * rows));
        be.read(y, yd.floats());
        for (int j = 0; j < n; ++j) {
          for (int64_t r = 0; r < rows; r += 7) {
            double ref = 0, mag = 0;
            for (int64_t c = 0; c < cols; ++c) {
              const double p = static_cast<double>(dense[static_cast<size_t>(r * cols + c)]) * x[static_cast<size_t>(j * cols + c)];
              ref += p;
              mag += std::fabs(p);
            }
            ASSERT_NEAR(y[static_cast<size_t>(j * rows + r)], ref, 3e-3 * mag + 1e-6) << "n " << n << " row " << r;
          }
        }
        if (n > 2) continue;
        be.matmul(w, xd.floats(), n, yd.floats());
        std::vector<float> again(y.size());
        be.read(again, yd.floats());
        ASSERT_EQ(std::memcmp(again.data(), y.data(), y.size() * sizeof(float)), 0) << "n " << n;
      }
    }
  }
}

Weight random_quant_weight(gguf::GgmlType type, int64_t rows, int64_t cols, uint32_t seed,
                           std::vector<std::byte>& bytes, std::vector<float>& dense) {
  const auto values = random_floats(static_cast<size_t>(rows * cols), seed, 0.05f);
  const size_t row_bytes = *gguf::bytes_for(static_cast<uint32_t>(type), static_cast<uint64_t>(cols));
  bytes.assign(row_bytes * static_cast<size_t>(rows), std::byte{0});
  tensor::quantize(type, values, bytes);
  dense.resize(values.size());
  tensor::dequantize(static_cast<uint32_t>(type), bytes, dense);
  Weight w;
  w.name = "quant-" + std::to_string(seed);
  w.type_id = static_cast<uint32_t>(type);
  w.rows = rows;
  w.cols = cols;
  w.row_bytes = row_bytes;
  w.data = bytes;
  return w;
}

Weight random_q4k_weight(int64_t rows, int64_t cols, uint32_t seed, std::vector<std::byte>& bytes,
                         std::vector<float>& dense) {
  return random_quant_weight(gguf::GgmlType::Q4_K, rows, cols, seed, bytes, dense);
}

// sum_c w[r][c] x[c] in double, and sum |w x| (the scale of the f16 rounding error).
std::pair<double, double> dot_and_magnitude(const std::vector<float>& dense, int64_t r, std::span<const float> x) {
  double dot = 0, mag = 0;
  for (size_t c = 0; c < x.size(); ++c) {
    const double p = static_cast<double>(dense[static_cast<size_t>(r) * x.size() + c]) * x[c];
    dot += p;
    mag += std::fabs(p);
  }
  return {dot, mag};
}

// gated_matmul gives silu(x W_gate^T) * (x W_up^T) (one kernel at up to 8 rows, the three ops above that), and
// the product that reads its output next finds the f16 copy of that output, not of its input. 8196 rows make
// over a thousand tiles, the last one partly filled; 14336 rows of one super-block take two-warp tiles. Q4_K
// and F16.
TEST(CudaMatmul, GatedProductsAreTheGateOfTwoProducts) {
  REQUIRE_GPU();
  Backend& be = *gpu_in_place();
  for (const auto type : {gguf::GgmlType::Q4_K, gguf::GgmlType::F16})
  for (const auto& [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{40, 512}, {1000, 2048}, {14336, 256}, {8196, 2560}}) {
    SCOPED_TRACE("rows " + std::to_string(rows) + " cols " + std::to_string(cols) + " " +
                 std::string(gguf::type_name(static_cast<uint32_t>(type))));
    std::vector<std::byte> gate_bytes, up_bytes, down_bytes;
    std::vector<float> gate_dense, up_dense, down_dense;
    Weight w_gate = random_quant_weight(type, rows, cols, 31, gate_bytes, gate_dense);
    Weight w_up = random_quant_weight(type, rows, cols, 32, up_bytes, up_dense);
    const int64_t down_rows = 24;
    const bool feeds_down = rows % 256 == 0;  // Q4_K rows come in super-blocks of 256
    Weight w_down = random_q4k_weight(down_rows, feeds_down ? rows : 256, 33, down_bytes, down_dense);
    for (Weight* w : {&w_gate, &w_up, &w_down}) be.prepare(*w, Backend::WeightUse::Matrix);
    for (int n : {1, 2, 5, 8, 9}) {
      SCOPED_TRACE("n " + std::to_string(n));
      const auto x = random_floats(static_cast<size_t>(n * cols), 300 + n);
      Buffer xd = be.upload(x);
      Buffer gd = be.allocate(static_cast<size_t>(n * rows) * sizeof(float));
      Buffer ud = be.allocate(static_cast<size_t>(n * rows) * sizeof(float));
      be.gated_matmul(w_gate, w_up, xd.floats(), n, gd.floats(), ud.floats());
      std::vector<float> gated(static_cast<size_t>(n * rows));
      be.read(gated, gd.floats());
      for (int j = 0; j < n; ++j) {
        const std::span<const float> xj(x.data() + j * cols, static_cast<size_t>(cols));
        for (int64_t r = 0; r < rows; r += 3) {
          const auto [g, g_mag] = dot_and_magnitude(gate_dense, r, xj);
          const auto [u, u_mag] = dot_and_magnitude(up_dense, r, xj);
          const double silu = g / (1.0 + std::exp(-g));
          // silu's slope stays within 1.1, so an error e in g moves the result by at most 1.1 |u| e.
          const double tol = 1.1 * std::fabs(u) * 3e-3 * g_mag + std::fabs(silu) * 3e-3 * u_mag + 1e-6;
          ASSERT_NEAR(gated[static_cast<size_t>(j * rows + r)], silu * u, tol) << "row " << r << " of " << j;
        }
      }
      if (!feeds_down) continue;
      Buffer yd = be.allocate(static_cast<size_t>(n * down_rows) * sizeof(float));
      be.matmul(w_down, gd.floats(), n, yd.floats());
      std::vector<float> y(static_cast<size_t>(n * down_rows));
      be.read(y, yd.floats());
      for (int j = 0; j < n; ++j) {
        const std::span<const float> gj(gated.data() + j * rows, static_cast<size_t>(rows));
        for (int64_t r = 0; r < down_rows; ++r) {
          const auto [ref, mag] = dot_and_magnitude(down_dense, r, gj);
          ASSERT_NEAR(y[static_cast<size_t>(j * down_rows + r)], ref, 3e-3 * mag + 1e-6) << "down row " << r;
        }
      }
    }
  }
}

// Q, K and V as one op: the Q4_K (or F16) matrices go through one launch (a block per tile of whichever
// matrix), a Q6_K one beside them through its own kernel; every output is its own product, whatever its
// neighbours' sizes (tile counts that do not divide evenly, a last tile partly filled).
TEST(CudaMatmul, ProductsOfOneInputAreEachTheirOwn) {
  REQUIRE_GPU();
  Backend& be = *gpu_in_place();
  const int64_t cols = 2048;
  struct Case {
    std::vector<std::pair<gguf::GgmlType, int64_t>> matrices;
  };
  const auto q4 = gguf::GgmlType::Q4_K, q6 = gguf::GgmlType::Q6_K, f16 = gguf::GgmlType::F16;
  for (const Case& c : {Case{{{q4, 512}, {q4, 128}, {q4, 136}}}, Case{{{q4, 2048}, {q4, 24}, {q6, 512}}},
                        Case{{{q6, 64}, {q4, 520}, {q4, 1000}}}, Case{{{f16, 512}, {f16, 128}, {f16, 136}}},
                        Case{{{f16, 2048}, {q6, 24}, {f16, 520}}}}) {
    const size_t count = c.matrices.size();
    std::vector<std::vector<std::byte>> bytes(count);
    std::vector<std::vector<float>> dense(count);
    std::vector<Weight> ws;
    for (size_t i = 0; i < count; ++i) {
      ws.push_back(random_quant_weight(c.matrices[i].first, c.matrices[i].second, cols, static_cast<uint32_t>(70 + i),
                                       bytes[i], dense[i]));
    }
    for (Weight& w : ws) be.prepare(w, Backend::WeightUse::Matrix);
    for (int n : {1, 3, 8, 9}) {
      SCOPED_TRACE("rows " + std::to_string(ws[0].rows) + " n " + std::to_string(n));
      const auto x = random_floats(static_cast<size_t>(n * cols), 400 + n);
      Buffer xd = be.upload(x);
      std::vector<Buffer> outs;
      std::vector<float*> ys;
      std::vector<const Weight*> wps;
      for (const Weight& w : ws) {
        outs.push_back(be.allocate(static_cast<size_t>(n * w.rows) * sizeof(float)));
        ys.push_back(outs.back().floats());
        wps.push_back(&w);
      }
      be.matmul_same_input(wps, xd.floats(), n, ys);
      for (size_t i = 0; i < count; ++i) {
        const int64_t rows = ws[i].rows;
        std::vector<float> y(static_cast<size_t>(n * rows));
        be.read(y, outs[i].floats());
        for (int j = 0; j < n; ++j) {
          const std::span<const float> xj(x.data() + j * cols, static_cast<size_t>(cols));
          for (int64_t r = 0; r < rows; r += 5) {
            const auto [ref, mag] = dot_and_magnitude(dense[i], r, xj);
            ASSERT_NEAR(y[static_cast<size_t>(j * rows + r)], ref, 3e-3 * mag + 1e-6) << "matrix " << i << " row " << r;
          }
          const auto [last, last_mag] = dot_and_magnitude(dense[i], rows - 1, xj);
          ASSERT_NEAR(y[static_cast<size_t>(j * rows + rows - 1)], last, 3e-3 * last_mag + 1e-6) << "matrix " << i;
        }
      }
    }
  }
}

// blk.0.ffn_down.weight of a fixture file: as in the file, prepared on the GPU, and decoded on the host.
struct FixtureMatrix {
  Weight host, dev;
  std::vector<float> dense;
};
FixtureMatrix ffn_down_of(const gguf::GgufFile& f) {
  const gguf::TensorInfo& t = *f.find_tensor("blk.0.ffn_down.weight");
  FixtureMatrix m{weight_of(f, t), {}, {}};
  m.dev = m.host;
  gpu()->prepare(m.dev, Backend::WeightUse::Matrix);
  m.dense.resize(static_cast<size_t>(m.host.rows * m.host.cols));
  tensor::dequantize(t.type_id, m.host.data, m.dense);
  return m;
}

// A sequence's rows must come out the same whichever path its batch takes (the in-place quantized product
// for small batches, f16 decode + cuBLAS for large ones): the same first rows of a 16-row and a 40-row
// product are compared, relative to sum |w x| of each output.
TEST(CudaMatmul, SmallAndLargeBatchPathsAgree) {
  REQUIRE_GPU();
  double worst = 0;
  std::vector<std::filesystem::path> files;
  for (const char* q : {"Q4_0", "Q8_0", "Q4_K_M", "Q6_K", "Q5_K_M", "Q2_K"}) {
    files.push_back(kFixtures / "quant" / (std::string("llama3-tiny-") + q + ".gguf"));
  }
  files.push_back(kFixtures / "models" / "llama-tiny" / "llama-tiny-f16.gguf");  // the F16 tile kernel
  for (const std::filesystem::path& file : files) {
    const std::string q = file.stem().string();
    const gguf::GgufFile f = gguf::GgufFile::open(file);
    const FixtureMatrix m = ffn_down_of(f);
    const Weight &host = m.host, &dev = m.dev;
    const std::vector<float>& dense = m.dense;
    const auto x = random_floats(static_cast<size_t>(40 * host.cols), 7);
    Buffer xd = to_device(x);
    Buffer large = gpu()->allocate(static_cast<size_t>(40 * host.rows) * 4);
    gpu()->matmul(dev, xd.floats(), 40, large.floats());
    const auto yl = to_host(large, static_cast<size_t>(40 * host.rows));
    Weight dev_in_place = host;
    gpu_in_place()->prepare(dev_in_place, Backend::WeightUse::Matrix);
    Buffer xi = gpu_in_place()->upload(x);
    Buffer small = gpu_in_place()->allocate(static_cast<size_t>(16 * host.rows) * 4);
    gpu_in_place()->matmul(dev_in_place, xi.floats(), 16, small.floats());
    std::vector<float> ys(static_cast<size_t>(16 * host.rows));
    gpu_in_place()->read(ys, small.floats());
    double worst_here = 0, worst_small_ref = 0, worst_large_ref = 0;
    for (int j = 0; j < 16; ++j) {
      for (int64_t r = 0; r < host.rows; ++r) {
        double mag = 0, ref = 0;
        for (int64_t c = 0; c < host.cols; ++c) {
          const double p = static_cast<double>(dense[static_cast<size_t>(r * host.cols + c)]) *
                           x[static_cast<size_t>(j * host.cols + c)];
          mag += std::fabs(p);
          ref += p;
        }
        const size_t i = static_cast<size_t>(j * host.rows + r);
        worst_here = std::max(worst_here, std::fabs(ys[i] - yl[i]) / mag);
        worst_small_ref = std::max(worst_small_ref, std::fabs(ys[i] - ref) / mag);
        worst_large_ref = std::max(worst_large_ref, std::fabs(yl[i] - ref) / mag);
      }
    }
    std::printf("[ %s %s ] |small - large| / sum|wx| <= %.2e; vs exact: small %.2e, large %.2e\n", q.c_str(),
                std::string(gguf::type_name(host.type_id)).c_str(), worst_here, worst_small_ref, worst_large_ref);
    worst = std::max(worst, worst_here);
  }
  EXPECT_LE(worst, 1e-5);
}

// Prefills above 64 rows go to cuBLAS in multiples of 64 rows (so that a few shapes serve every length):
// rows that are not a multiple must come out right, and nothing may be written past the caller's n rows.
TEST(CudaMatmul, ProductsOfAnyRowCountAboveSixtyFour) {
  REQUIRE_GPU();
  for (const std::filesystem::path& file : {kFixtures / "quant" / "llama3-tiny-Q4_K_M.gguf",
                                            kFixtures / "models" / "llama-tiny" / "llama-tiny-f16.gguf"}) {
    const gguf::GgufFile f = gguf::GgufFile::open(file);
    const FixtureMatrix m = ffn_down_of(f);
    const Weight &host = m.host, &dev = m.dev;
    const std::vector<float>& dense = m.dense;
    for (const int n : {65, 100, 128, 129}) {
      SCOPED_TRACE(file.filename().string() + " n " + std::to_string(n));
      const auto x = random_floats(static_cast<size_t>(n * host.cols), 300 + n);
      Buffer xd = to_device(x);
      const size_t out = static_cast<size_t>(n * host.rows), guard = 4096;
      const std::vector<float> sentinel(out + guard, -7.25f);
      Buffer yd = to_device(sentinel);
      gpu()->matmul(dev, xd.floats(), n, yd.floats());
      const auto y = to_host(yd, out + guard);
      for (size_t i = out; i < out + guard; ++i) ASSERT_EQ(y[i], -7.25f) << "written past row " << n << " at " << i;
      for (int j = 0; j < n; j += 7) {
        for (int64_t r = 0; r < host.rows; r += 5) {
          const auto [ref, mag] =
              dot_and_magnitude(dense, r, std::span(x).subspan(static_cast<size_t>(j * host.cols), host.cols));
          ASSERT_NEAR(y[static_cast<size_t>(j * host.rows + r)], ref, 3e-3 * mag + 1e-6) << "row " << j;
        }
      }
    }
  }
}

TEST(CudaEmbed, RowsMatchTheHostDequantizer) {
  REQUIRE_GPU();
  for (const char* q : {"Q4_K_M", "Q6_K", "Q8_0", "IQ4_XS", "Q2_K"}) {
    const gguf::GgufFile f = gguf::GgufFile::open(kFixtures / "quant" / (std::string("llama3-tiny-") + q + ".gguf"));
    const gguf::TensorInfo& t = *f.find_tensor("token_embd.weight");
    SCOPED_TRACE(std::string(q) + " " + std::string(gguf::type_name(t.type_id)));
    const Weight host = weight_of(f, t);
    Weight dev = host;
    gpu()->prepare(dev, Backend::WeightUse::Lookup);
    const std::vector<int32_t> tokens{0, 5, 511, 17, 5};
    const std::vector<int32_t> positions{0, 1, 2, 3, 4}, seqs(5, 0), table{0};
    const std::vector<std::span<const int32_t>> tables{table};
    StepTables step{positions, seqs, tables};
    step.tokens = tokens;
    gpu()->upload_step(step);
    Buffer out = gpu()->allocate(tokens.size() * static_cast<size_t>(host.cols) * sizeof(float));
    gpu()->embed(dev, step, out.floats());
    const auto got = to_host(out, tokens.size() * static_cast<size_t>(host.cols));
    std::vector<float> row(static_cast<size_t>(host.cols));
    for (size_t i = 0; i < tokens.size(); ++i) {
      tensor::dequantize(t.type_id, host.data.subspan(static_cast<size_t>(tokens[i]) * host.row_bytes, host.row_bytes), row);
      for (size_t c = 0; c < row.size(); ++c) {
        // The device may fuse a multiply and an add where the host rounds twice: a last-bit difference.
        ASSERT_NEAR(got[i * row.size() + c], row[c], 1e-6 * std::fabs(row[c]) + 1e-7) << "token " << tokens[i];
      }
    }
    const std::vector<int32_t> out_of_range{0, 1, 512, 3, 4};
    StepTables bad{positions, seqs, tables};
    bad.tokens = out_of_range;
    gpu()->upload_step(bad);
    EXPECT_THROW(gpu()->embed(dev, bad, out.floats()), std::out_of_range);
  }
}

// RMSNorm after a residual add (which the GPU does inside the norm's kernel) at the widths of real models and
// odd ones: runs of four elements across 32 to 256 threads, one to sixteen runs a thread, a last run partly
// past the threads, and the per-element kernel where the width is not a multiple of four or gamma is not
// 16-byte aligned.
TEST(CudaRowOps, RmsNormOfTheResidualSumAtEveryWidth) {
  REQUIRE_GPU();
  constexpr int kRows = 3;
  for (const int dim : {64, 96, 2048, 2052, 4096, 5120, 8192, 16384, 98, 4098}) {
    for (const bool shifted_gamma : {false, true}) {
      SCOPED_TRACE("dim " + std::to_string(dim) + (shifted_gamma ? " gamma at an odd address" : ""));
      const size_t n = static_cast<size_t>(kRows) * dim;
      const auto x = random_floats(n, 11), y = random_floats(n, 12), gamma = random_floats(dim + 1, 13);
      std::vector<float> sum = x;
      cpu().add(sum.data(), y.data(), n);
      std::vector<float> ref(n);
      const float* g_host = gamma.data() + (shifted_gamma ? 1 : 0);
      cpu().rmsnorm(sum.data(), g_host, kRows, dim, 1e-5f, ref.data());
      Buffer xd = to_device(x), yd = to_device(y), gd = to_device(gamma);
      Buffer out = gpu()->allocate(n * sizeof(float));
      gpu()->add(xd.floats(), yd.floats(), n);
      gpu()->rmsnorm(xd.floats(), gd.floats() + (shifted_gamma ? 1 : 0), kRows, dim, 1e-5f, out.floats());
      const std::vector<float> got = to_host(out, n), summed = to_host(xd, n);
      for (size_t i = 0; i < n; ++i) {
        ASSERT_NEAR(got[i], ref[i], 1e-5 * (1 + std::fabs(ref[i]))) << "element " << i;
        ASSERT_EQ(summed[i], sum[i]) << "the residual sum, element " << i;
      }
    }
  }
}

// Row ops against the CPU backend (same formulas; float sums on the GPU, double on the CPU for RMSNorm).
TEST(CudaRowOps, MatchTheCpuBackend) {
  REQUIRE_GPU();
  constexpr int kRows = 5, kDim = 96, kHeads = 3, kHeadDim = 32, kRot = 32;
  auto near = [](const std::vector<float>& a, const std::vector<float>& b, double tol, const char* what) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], tol * (1 + std::fabs(b[i]))) << what << " " << i;
  };
  const auto x = random_floats(kRows * kDim, 1), y = random_floats(kRows * kDim, 2), gamma = random_floats(kDim, 3);
  Buffer xd = to_device(x), yd = to_device(y), gd = to_device(gamma);

  std::vector<float> ref(x.size());
  cpu().rmsnorm(x.data(), gamma.data(), kRows, kDim, 1e-5f, ref.data());
  Buffer out = gpu()->allocate(x.size() * sizeof(float));
  gpu()->rmsnorm(xd.floats(), gd.floats(), kRows, kDim, 1e-5f, out.floats());
  near(to_host(out, x.size()), ref, 1e-5, "rmsnorm");

  std::vector<float> s = x;
  cpu().silu_mul(s.data(), y.data(), s.size());
  Buffer sd = to_device(x);
  gpu()->silu_mul(sd.floats(), yd.floats(), x.size());
  near(to_host(sd, x.size()), s, 1e-5, "silu_mul");

  std::vector<float> a = x;
  cpu().add(a.data(), y.data(), a.size());
  Buffer ad = to_device(x);
  gpu()->add(ad.floats(), yd.floats(), x.size());
  near(to_host(ad, x.size()), a, 0, "add");

  std::vector<float> b = x;
  cpu().add_rows(b.data(), gamma.data(), kRows, kDim);
  Buffer bd = to_device(x);
  gpu()->add_rows(bd.floats(), gd.floats(), kRows, kDim);
  near(to_host(bd, x.size()), b, 0, "add_rows");

  const std::vector<int32_t> positions{0, 7, 300, 4095, 12};
  const std::vector<int32_t> seq(kRows, 0);
  const std::vector<int32_t> table(256, 0);
  const std::vector<std::span<const int32_t>> tables{table};
  const std::vector<int32_t> logit_rows{4, 0, 2};
  std::vector<float> cos_sin(kRows * kRot);
  const std::vector<float> factors{1, 1, 1, 2, 2, 4, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8};
  fill_rope_table(positions, {500000.0f, kRot, factors}, cos_sin.data());
  for (bool neox : {false, true}) {
    StepTables step{positions, seq, tables};
    step.rope = cos_sin;
    step.logit_rows = logit_rows;
    std::vector<float> r = x;
    cpu().rope(r.data(), kHeads, kHeadDim, kRot, neox, step);
    Buffer rd = to_device(x);
    gpu()->upload_step(step);
    gpu()->rope(rd.floats(), kHeads, kHeadDim, kRot, neox, step);
    near(to_host(rd, x.size()), r, 1e-6, neox ? "rope neox" : "rope");

    std::vector<float> g(logit_rows.size() * kDim);
    cpu().gather_rows(x.data(), kDim, step, g.data());
    Buffer gdev = gpu()->allocate(g.size() * sizeof(float));
    gpu()->gather_rows(xd.floats(), kDim, step, gdev.floats());
    near(to_host(gdev, g.size()), g, 0, "gather_rows");
  }
}

// The model's last ops: the residual add, every row gathered in order (a decoding step), the final norm in
// place on the gathered rows. The GPU runs them as one kernel; the result, and the residual stream, are the
// CPU's. A read between the gather and the norm (or rows not all in order) gets the plain gather.
TEST(CudaRowOps, FinalRowsGatheredIntoTheNormMatchTheCpuBackend) {
  REQUIRE_GPU();
  constexpr int kRows = 3, kDim = 256;
  const auto x = random_floats(kRows * kDim, 4), y = random_floats(kRows * kDim, 5), gamma = random_floats(kDim, 6);
  const std::vector<int32_t> positions{5, 9, 2}, seq{0, 1, 2};
  const std::vector<int32_t> table{0};
  const std::vector<std::span<const int32_t>> tables{table, table, table};
  for (const std::vector<int32_t>& logit_rows : {std::vector<int32_t>{0, 1, 2}, std::vector<int32_t>{2, 0}}) {
    for (bool read_between : {false, true}) {
      SCOPED_TRACE(std::string(logit_rows.size() == kRows ? "every row" : "some rows") +
                   (read_between ? ", read between" : ""));
      StepTables step{positions, seq, tables};
      step.logit_rows = logit_rows;
      const size_t n_out = logit_rows.size();
      std::vector<float> cx = x, sel(n_out * kDim);
      cpu().add(cx.data(), y.data(), cx.size());
      cpu().gather_rows(cx.data(), kDim, step, sel.data());
      std::vector<float> gathered = sel;
      cpu().rmsnorm(sel.data(), gamma.data(), static_cast<int>(n_out), kDim, 1e-5f, sel.data());

      Buffer xd = to_device(x), yd = to_device(y), gd = to_device(gamma);
      Buffer sd = gpu()->allocate(sel.size() * sizeof(float));
      gpu()->upload_step(step);
      gpu()->add(xd.floats(), yd.floats(), x.size());
      gpu()->gather_rows(xd.floats(), kDim, step, sd.floats());
      if (read_between) {
        const auto got = to_host(sd, gathered.size());
        for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], gathered[i]) << "gathered " << i;
      }
      gpu()->rmsnorm(sd.floats(), gd.floats(), static_cast<int>(n_out), kDim, 1e-5f, sd.floats());
      const auto got = to_host(sd, sel.size());
      for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], sel[i], 1e-5 * (1 + std::fabs(sel[i]))) << i;
      const auto stream = to_host(xd, cx.size());
      for (size_t i = 0; i < stream.size(); ++i) ASSERT_EQ(stream[i], cx[i]) << "residual stream " << i;
    }
  }
}

// store_kv then attention, on the CPU backend and on the GPU, each into its own cache: the outputs agree. Both
// read the same cached values (f16/q8_0 conversions are exact functions of the inputs), so only the order of
// float sums differs.
void store_and_attend_on_both(const KvLayerView& cpu_view, const KvLayerView& gpu_view, StepTables& step,
                              int heads, float scale, std::span<const float> k, std::span<const float> v,
                              std::span<const float> q) {
  std::vector<float> ref(q.size());
  cpu().store_kv(cpu_view, k.data(), v.data(), step);
  cpu().attention(q.data(), heads, cpu_view, step, scale, ref.data());
  Buffer kd = to_device(k), vd = to_device(v), qd = to_device(q), od = gpu()->allocate(ref.size() * 4);
  gpu()->upload_step(step);
  gpu()->store_kv(gpu_view, kd.floats(), vd.floats(), step);
  gpu()->attention(qd.floats(), heads, gpu_view, step, scale, od.floats());
  const auto got = to_host(od, ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    ASSERT_NEAR(got[i], ref[i], 1e-4 * (1 + std::fabs(ref[i]))) << "element " << i;
  }
}

// A mixed batch: a prefill chunk of one sequence (continuing a cached prefix) beside decodes of others, with
// scattered blocks; GQA ratios 1, 4 and 7; head sizes 48, 64, 128; every KV type. Both backends store the
// same rows and answer the same queries.
TEST(CudaAttention, MixedBatchMatchesTheCpuBackend) {
  REQUIRE_GPU();
  struct Shape {
    int heads, kv_heads, head_dim;
  };
  for (const Shape sh : {Shape{4, 4, 64}, Shape{8, 2, 128}, Shape{14, 2, 64}, Shape{6, 2, 48}}) {
    for (KvElement elem : {KvElement::F32, KvElement::F16, KvElement::Q8_0}) {
      if (elem == KvElement::Q8_0 && sh.head_dim % 32 != 0) continue;
      SCOPED_TRACE("heads " + std::to_string(sh.heads) + "/" + std::to_string(sh.kv_heads) + " head_dim " +
                   std::to_string(sh.head_dim) + " kv " + std::to_string(static_cast<int>(elem)));
      KvLayerView view{nullptr, nullptr, 0, 16, elem, sh.kv_heads, sh.head_dim};
      view.block_bytes = 16 * view.row_bytes();
      constexpr int kBlocks = 24;
      std::vector<std::byte> hk(view.block_bytes * kBlocks), hv(view.block_bytes * kBlocks);
      Buffer dk = gpu()->allocate(hk.size()), dv = gpu()->allocate(hv.size());
      KvLayerView cpu_view = view, gpu_view = view;
      cpu_view.k = hk.data();
      cpu_view.v = hv.data();
      gpu_view.k = dk.data();
      gpu_view.v = dv.data();

      const std::vector<int32_t> t0{9, 3, 17, 1, 22, 5, 12, 13, 15, 16, 18, 19, 20, 21}, t1{2, 11}, t2{0, 14, 7};
      const std::vector<std::span<const int32_t>> tables{t0, t1, t2};
      const int width = sh.kv_heads * sh.head_dim, q_width = sh.heads * sh.head_dim;
      // Step 1 fills history: sequence 0 positions 0..189, sequence 1 0..20, sequence 2 0..40.
      // Step 2: sequence 0 prefills 190..209 (long enough for its keys to be split across blocks), sequences 1
      // and 2 decode one token each.
      const int lengths[3] = {190, 21, 41};
      for (int step_no = 0; step_no < 2; ++step_no) {
        std::vector<int32_t> pos, seq;
        if (step_no == 0) {
          for (int s = 0; s < 3; ++s) {
            for (int p = 0; p < lengths[s]; ++p) pos.push_back(p), seq.push_back(s);
          }
        } else {
          for (int p = 190; p < 210; ++p) pos.push_back(p), seq.push_back(0);
          pos.push_back(21), seq.push_back(1);
          pos.push_back(41), seq.push_back(2);
        }
        const size_t n = pos.size();
        const auto k = random_floats(n * width, 10 + step_no), v = random_floats(n * width, 20 + step_no);
        const auto q = random_floats(n * q_width, 30 + step_no);
        StepTables step{pos, seq, tables};
        const float scale = 1.0f / std::sqrt(static_cast<float>(sh.head_dim));
        SCOPED_TRACE("step " + std::to_string(step_no));
        store_and_attend_on_both(cpu_view, gpu_view, step, sh.heads, scale, k, v, q);
      }
      // The stored cache bytes agree with the CPU's too (a wrong slot would hide behind a wrong read).
      std::vector<std::byte> back(hk.size());
      gpu()->read(back, dk.data());
      size_t differing = 0;
      for (size_t i = 0; i < back.size(); ++i) differing += back[i] != hk[i];
      // Q8_0 rounds x * (1/d) where x / d ties can fall either way under a fused multiply: allow a few codes.
      EXPECT_LE(differing, elem == KvElement::Q8_0 ? back.size() / 200 : 0u);
    }
  }
}

// An F16 cache of four sequences on both backends: sequence s holds lengths[s] tokens and room for `room`
// more, its blocks lying in the pool in reverse order.
struct FourSequenceCache {
  KvLayerView cpu_view, gpu_view;
  std::vector<std::vector<int32_t>> table_storage = std::vector<std::vector<int32_t>>(4);
  std::vector<std::span<const int32_t>> tables;
  std::vector<std::byte> hk, hv;
  Buffer dk, dv;

  FourSequenceCache(int kv_heads, int head_dim, const int (&lengths)[4], int room) {
    KvLayerView view{nullptr, nullptr, 0, 16, KvElement::F16, kv_heads, head_dim};
    view.block_bytes = 16 * view.row_bytes();
    int next_block = 0;
    for (int s = 0; s < 4; ++s) {
      std::vector<int32_t>& table = table_storage[static_cast<size_t>(s)];
      for (int b = 0; b < (lengths[s] + room + 15) / 16; ++b) table.push_back(next_block++);
      std::reverse(table.begin(), table.end());
    }
    tables.assign(table_storage.begin(), table_storage.end());
    hk.resize(view.block_bytes * static_cast<size_t>(next_block));
    hv.resize(hk.size());
    dk = gpu()->allocate(hk.size());
    dv = gpu()->allocate(hv.size());
    cpu_view = gpu_view = view;
    cpu_view.k = hk.data(), cpu_view.v = hv.data();
    gpu_view.k = dk.data(), gpu_view.v = dv.data();
  }
};

// Decode steps of one to four rows (the layout the kernel takes for a few rows: eight warps a block, every
// value row of a tile loaded with its key) at contexts short and long enough to be split across blocks, with
// the F16 cache and head sizes it serves, beside the CPU backend.
TEST(CudaAttention, FewDecodeRowsMatchTheCpuBackend) {
  REQUIRE_GPU();
  struct Shape {
    int heads, kv_heads, head_dim;
  };
  for (const Shape sh : {Shape{32, 8, 64}, Shape{32, 8, 128}, Shape{28, 4, 128}, Shape{8, 8, 128}, Shape{16, 2, 256}}) {
    SCOPED_TRACE("heads " + std::to_string(sh.heads) + "/" + std::to_string(sh.kv_heads) + " head_dim " +
                 std::to_string(sh.head_dim));
    const int lengths[4] = {1, 33, 257, 1400};
    FourSequenceCache cache(sh.kv_heads, sh.head_dim, lengths, 4);
    const int width = sh.kv_heads * sh.head_dim, q_width = sh.heads * sh.head_dim;
    const float scale = 1.0f / std::sqrt(static_cast<float>(sh.head_dim));
    // The history, one step, then decode steps of 1, 2, 3 and 4 rows (sequences 0 .. rows - 1, each one token
    // further than before).
    int filled[4] = {0, 0, 0, 0};
    for (int rows = 0; rows <= 4; ++rows) {
      std::vector<int32_t> pos, seq;
      if (rows == 0) {
        for (int s = 0; s < 4; ++s) {
          for (int p = 0; p < lengths[s]; ++p) pos.push_back(p), seq.push_back(s);
          filled[s] = lengths[s];
        }
      } else {
        for (int s = 0; s < rows; ++s) pos.push_back(filled[s]++), seq.push_back(s);
      }
      const size_t n = pos.size();
      const auto k = random_floats(n * width, 40 + rows), v = random_floats(n * width, 50 + rows);
      const auto q = random_floats(n * q_width, 60 + rows, 3.0f);  // peaked enough for the softmax to matter
      StepTables step{pos, seq, cache.tables};
      SCOPED_TRACE("rows " + std::to_string(rows));
      store_and_attend_on_both(cache.cpu_view, cache.gpu_view, step, sh.heads, scale, k, v, q);
    }
  }
}

// The model's order of ops, rope (queries, keys), store_kv, attention, on both backends: at decoding steps of
// one to four rows of their own sequences the GPU's attention rotates the queries and this step's keys and
// stores the keys itself; a step with two rows of one sequence, and the history, take the separate kernel.
// Contexts up to past kOneHeadMaxContext, NeoX and adjacent pairs, a partial rotation.
TEST(CudaAttention, DecodeRowsRotatedByAttentionMatchTheCpuBackend) {
  REQUIRE_GPU();
  struct Shape {
    int heads, kv_heads, head_dim, n_rot;
    bool neox;
  };
  for (const Shape sh : {Shape{32, 8, 64, 64, false}, Shape{32, 8, 128, 128, true}, Shape{28, 4, 128, 64, false}}) {
    SCOPED_TRACE("heads " + std::to_string(sh.heads) + "/" + std::to_string(sh.kv_heads) + " head_dim " +
                 std::to_string(sh.head_dim) + " n_rot " + std::to_string(sh.n_rot) + (sh.neox ? " neox" : ""));
    const int lengths[4] = {1, 40, 300, 1030};
    FourSequenceCache cache(sh.kv_heads, sh.head_dim, lengths, 8);
    const int width = sh.kv_heads * sh.head_dim, q_width = sh.heads * sh.head_dim;
    const float scale = 1.0f / std::sqrt(static_cast<float>(sh.head_dim));
    int filled[4] = {0, 0, 0, 0};
    // Step 0: the history; 1-4: decodes of sequences 0 .. rows - 1; 5: two rows of sequence 1; 6: one decode.
    for (int step_no = 0; step_no <= 6; ++step_no) {
      std::vector<int32_t> pos, seq;
      if (step_no == 0) {
        for (int s = 0; s < 4; ++s) {
          for (int p = 0; p < lengths[s]; ++p) pos.push_back(p), seq.push_back(s);
          filled[s] = lengths[s];
        }
      } else if (step_no == 5) {
        for (int i = 0; i < 2; ++i) pos.push_back(filled[1]++), seq.push_back(1);
      } else {
        const int rows = step_no == 6 ? 1 : step_no;
        for (int s = 0; s < rows; ++s) pos.push_back(filled[s]++), seq.push_back(s);
      }
      const size_t n = pos.size();
      std::vector<float> cos_sin(n * static_cast<size_t>(sh.n_rot));
      fill_rope_table(pos, {10000.0f, sh.n_rot, {}}, cos_sin.data());
      StepTables step{pos, seq, cache.tables};
      step.rope = cos_sin;
      auto k = random_floats(n * width, 70 + step_no), v = random_floats(n * width, 80 + step_no);
      auto q = random_floats(n * q_width, 90 + step_no, 3.0f);
      Buffer kd = to_device(k), vd = to_device(v), qd = to_device(q), od = gpu()->allocate(n * q_width * 4);
      std::vector<float> ref(q.size());
      cpu().rope(q.data(), sh.heads, sh.head_dim, sh.n_rot, sh.neox, step);
      cpu().rope(k.data(), sh.kv_heads, sh.head_dim, sh.n_rot, sh.neox, step);
      cpu().store_kv(cache.cpu_view, k.data(), v.data(), step);
      cpu().attention(q.data(), sh.heads, cache.cpu_view, step, scale, ref.data());
      gpu()->upload_step(step);
      gpu()->rope(qd.floats(), sh.heads, sh.head_dim, sh.n_rot, sh.neox, step);
      gpu()->rope(kd.floats(), sh.kv_heads, sh.head_dim, sh.n_rot, sh.neox, step);
      gpu()->store_kv(cache.gpu_view, kd.floats(), vd.floats(), step);
      gpu()->attention(qd.floats(), sh.heads, cache.gpu_view, step, scale, od.floats());
      const auto got = to_host(od, ref.size());
      SCOPED_TRACE("step " + std::to_string(step_no));
      // Looser than the tests above: a rotated key's f16 may round the other way on the two backends (a fused
      // multiply-add on the GPU), and these peaked queries carry that into the weights. A key left out, taken
      // from the wrong slot or not rotated moves the short rows' outputs by far more.
      for (size_t i = 0; i < ref.size(); ++i) {
        ASSERT_NEAR(got[i], ref[i], 2e-3 * (1 + std::fabs(ref[i]))) << "element " << i;
      }
    }
    // Every stored key and value, the fresh ones among them, as the CPU stored them (a rotation's last bit
    // may round the f16 the other way).
    for (auto [host, dev] : {std::pair{&cache.hk, &cache.dk}, std::pair{&cache.hv, &cache.dv}}) {
      std::vector<std::byte> back(host->size());
      gpu()->read(back, dev->data());
      for (size_t i = 0; i + 1 < back.size(); i += 2) {
        uint16_t a = 0, b = 0;
        std::memcpy(&a, &back[i], 2);
        std::memcpy(&b, &(*host)[i], 2);
        const float fa = tensor::fp16_to_fp32(a), fb = tensor::fp16_to_fp32(b);
        ASSERT_NEAR(fa, fb, 1e-3 * (1 + std::fabs(fb))) << (host == &cache.hk ? "key" : "value") << " half " << i / 2;
      }
    }
  }
}

TEST(CudaStep, PositionsWithoutABlockAreRefused) {
  REQUIRE_GPU();
  const std::vector<int32_t> pos{16}, seq{0}, table{3};
  const std::vector<std::span<const int32_t>> tables{table};
  StepTables step{pos, seq, tables};
  EXPECT_THROW(gpu()->upload_step(step), std::out_of_range);
}

// The head of each logits row against the host's compute_top_logits: random rows at real vocabulary widths,
// rows where every rank is a tie, and all-zero rows (a zero-norm model's logits), one kernel for all rows.
TEST(CudaTopLogits, MatchTheHostReference) {
  REQUIRE_GPU();
  struct Case {
    int rows, vocab;
    const char* kind;
  };
  for (const Case c : {Case{1, 128256, "random"}, Case{64, 151936, "random"}, Case{3, 640, "random"},
                       Case{2, 40, "random"}, Case{5, 30000, "ties"}, Case{4, 128256, "zeros"}}) {
    std::vector<float> rows = random_floats(static_cast<size_t>(c.rows) * static_cast<size_t>(c.vocab), 17, 4.0f);
    if (std::string(c.kind) == "ties") {
      for (float& x : rows) x = std::round(x);
    } else if (std::string(c.kind) == "zeros") {
      for (size_t i = 0; i < rows.size(); ++i) rows[i] = i % 3 == 0 ? -0.0f : 0.0f;
    }
    Buffer in = to_device(rows);
    Buffer out = gpu()->allocate(static_cast<size_t>(c.rows) * sizeof(TopLogits));
    gpu()->top_logits(in.floats(), c.rows, c.vocab, reinterpret_cast<TopLogits*>(out.data()));
    std::vector<TopLogits> got(static_cast<size_t>(c.rows));
    gpu()->read(std::as_writable_bytes(std::span(got)), out.data());
    for (int r = 0; r < c.rows; ++r) {
      TopLogits want{};
      compute_top_logits(std::span<const float>(rows).subspan(static_cast<size_t>(r) * c.vocab, c.vocab), want);
      const TopLogits& g = got[static_cast<size_t>(r)];
      ASSERT_EQ(g.count, want.count) << c.kind << " vocab " << c.vocab << " row " << r;
      for (int i = 0; i < want.count; ++i) {
        ASSERT_EQ(g.ids[i], want.ids[i]) << c.kind << " vocab " << c.vocab << " row " << r << " rank " << i;
        ASSERT_EQ(g.logits[i], want.logits[i]);
      }
      EXPECT_NEAR(g.log_sum_exp, want.log_sum_exp, 1e-4f * std::max(1.0f, std::fabs(want.log_sum_exp)));
    }
  }
}

TEST(CudaDevice, ReportsItsMemory) {
  REQUIRE_GPU();
  const DeviceInfo d = gpu()->device_info();
  EXPECT_EQ(d.kind, "cuda");
  EXPECT_FALSE(d.name.empty());
  EXPECT_GT(d.total_bytes, 0u);
  EXPECT_LE(d.free_bytes, d.total_bytes);
  const uint64_t before = d.allocated_bytes;
  {
    Buffer b = gpu()->allocate(1 << 20);
    EXPECT_GE(gpu()->device_info().allocated_bytes, before + (1 << 20));
  }
  EXPECT_EQ(gpu()->device_info().allocated_bytes, before);
}

}  // namespace
}  // namespace pensieve::backend
