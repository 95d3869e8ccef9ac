#include "backend/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "backend/cpu/interleaved_weights.h"
#include "backend/memory_bandwidth.h"
#include "backend/rope_pair.h"
#include "gguf/ggml_type.h"
#include "tensor/dequantize.h"
#include "tensor/quantize.h"

namespace pensieve::backend::cpu {

namespace {

using gguf::GgmlType;

constexpr int64_t kRowGrain = 16;    // output rows handed to a thread at a time (keeps writes off shared lines)
constexpr int kActTile = 64;         // activation rows kept hot in cache while a weight range streams by
constexpr size_t kParallelElementwise = 1 << 16;


bool is(uint32_t type_id, GgmlType t) { return type_id == static_cast<uint32_t>(t); }

// The types prepare() may interleave, the layout each gets and the table's kernel over it (when the table
// has none, the type stays in GGUF order).
struct InterleavedFormat {
  GgmlType type;
  WeightLayout layout;
  VecDotQ8 KernelTable::*kernel;
};
constexpr InterleavedFormat kInterleavedFormats[] = {
    {GgmlType::Q4_0, WeightLayout::Q4_0Interleaved8, &KernelTable::x8_q4_0},
    {GgmlType::Q8_0, WeightLayout::Q8_0Interleaved8, &KernelTable::x8_q8_0},
    {GgmlType::Q4_K, WeightLayout::Q4_KInterleaved8, &KernelTable::x8_q4_k},
    {GgmlType::Q6_K, WeightLayout::Q6_KInterleaved8, &KernelTable::x8_q6_k},
};

}  // namespace

CpuBackend::CpuBackend(int threads, const KernelTable& kernels, bool interleave)
    : kernels_(kernels), interleave_(interleave), pool_(threads), scratch_(static_cast<size_t>(std::max(1, threads))) {}

std::string CpuBackend::name() const { return std::string("cpu-") + kernels_.name; }

void CpuBackend::ensure_thread_scratch(size_t floats) {
  for (auto& s : scratch_) {
    if (s.size() < floats) s.resize(floats);
  }
}

DeviceInfo CpuBackend::device_info() const {
  DeviceInfo d;
  d.kind = "cpu";
  d.name = name();
  d.allocated_bytes = allocated_bytes_->load();
  return d;
}

double CpuBackend::measure_bandwidth() { return measure_read_bandwidth(threads()); }

Buffer CpuBackend::allocate(size_t bytes) {
  // 64-byte alignment keeps SIMD loads and cache lines whole; zero-filled as the interface promises.
  constexpr size_t kAlign = 64;
  const size_t rounded = (std::max<size_t>(bytes, 1) + kAlign - 1) / kAlign * kAlign;
  void* p = ::operator new(rounded, std::align_val_t(kAlign));
  std::memset(p, 0, rounded);
  *allocated_bytes_ += rounded;
  // The counter outlives the backend if a buffer does.
  std::shared_ptr<std::atomic<uint64_t>> counter = allocated_bytes_;
  return Buffer{std::shared_ptr<std::byte>(static_cast<std::byte*>(p),
                                           [counter, rounded](std::byte* q) {
                                             ::operator delete(q, std::align_val_t(kAlign));
                                             *counter -= rounded;
                                           }),
                bytes};
}

void CpuBackend::write(const Buffer& dst, size_t offset, std::span<const std::byte> src) {
  if (offset > dst.bytes || src.size() > dst.bytes - offset) throw std::out_of_range("write past the end of a buffer");
  if (!src.empty()) std::memcpy(dst.data() + offset, src.data(), src.size());
}

void CpuBackend::read(std::span<std::byte> dst, const std::byte* src) {
  if (!dst.empty()) std::memcpy(dst.data(), src, dst.size());
}

void CpuBackend::gather_rows(const float* x, int dim, const StepTables& step, float* out) {
  const size_t d = static_cast<size_t>(dim);
  for (size_t i = 0; i < step.logit_rows.size(); ++i) {
    std::memcpy(out + i * d, x + static_cast<size_t>(step.logit_rows[i]) * d, d * sizeof(float));
  }
}

void CpuBackend::top_logits(const float* logits, int n_rows, int vocab, TopLogits* out) {
  const size_t v = static_cast<size_t>(vocab);
  split(static_cast<double>(n_rows) * vocab * 8, n_rows, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) compute_top_logits({logits + static_cast<size_t>(r) * v, v}, out[r]);
  });
}

void CpuBackend::prepare(Weight& w, WeightUse use) {
  // A lookup table reads one row per token: re-laying it out buys nothing (a tied embedding is prepared as
  // the output matrix it also is).
  if (use != WeightUse::Matrix) return;
  if (!interleave_ || w.layout != 0 || !can_interleave(w.type_id, w.rows)) return;
  for (const InterleavedFormat& f : kInterleavedFormats) {
    if (!is(w.type_id, f.type) || kernels_.*f.kernel == nullptr) continue;
    auto packed = std::make_shared<const std::vector<std::byte>>(interleave_rows(w.type_id, w.data, w.rows, w.row_bytes));
    w.data = {packed->data(), packed->size()};
    w.owner = std::move(packed);
    w.layout = static_cast<int>(f.layout);
    return;
  }
}

void CpuBackend::matmul(const Weight& w, const float* x, int n, float* y) {
  if (n <= 0) return;
  if (w.layout != 0) {
    for (const InterleavedFormat& f : kInterleavedFormats) {
      if (w.layout == static_cast<int>(f.layout)) return matmul_interleaved(w, kernels_.*f.kernel, x, n, y);
    }
    throw std::invalid_argument(w.name + ": weight layout " + std::to_string(w.layout) + " is not this backend's");
  }
  if (is(w.type_id, GgmlType::F32)) return matmul_f32(w, x, n, y);
  if (is(w.type_id, GgmlType::BF16) && kernels_.vec_bf16 != nullptr) return matmul_bf16(w, x, n, y);
  if (is(w.type_id, GgmlType::Q8_0)) return matmul_int8(w, kernels_.vec_q8_0, x, n, y);
  if (is(w.type_id, GgmlType::Q4_0)) return matmul_int8(w, kernels_.vec_q4_0, x, n, y, kernels_.rows4_q4_0);
  if (is(w.type_id, GgmlType::Q4_K)) return matmul_int8(w, kernels_.vec_q4_k, x, n, y);
  if (is(w.type_id, GgmlType::Q6_K)) return matmul_int8(w, kernels_.vec_q6_k, x, n, y);
  if (is(w.type_id, GgmlType::Q5_K)) return matmul_int8(w, kernels_.vec_q5_k, x, n, y);
  if (is(w.type_id, GgmlType::Q3_K)) return matmul_int8(w, kernels_.vec_q3_k, x, n, y);
  if (is(w.type_id, GgmlType::Q2_K)) return matmul_int8(w, kernels_.vec_q2_k, x, n, y);
  if (is(w.type_id, GgmlType::Q4_1)) return matmul_int8(w, kernels_.vec_q4_1, x, n, y);
  if (is(w.type_id, GgmlType::Q5_0)) return matmul_int8(w, kernels_.vec_q5_0, x, n, y);
  if (is(w.type_id, GgmlType::Q5_1)) return matmul_int8(w, kernels_.vec_q5_1, x, n, y);
  matmul_dequantized(w, x, n, y);
}

void CpuBackend::matmul_f32(const Weight& w, const float* x, int n, float* y) {
  const int cols = static_cast<int>(w.cols);
  const size_t rows = static_cast<size_t>(w.rows);
  split(static_cast<double>(w.rows) * static_cast<double>(w.cols) * n, w.rows, kRowGrain, [&](int64_t r0, int64_t r1, int) {
    for (int j0 = 0; j0 < n; j0 += kActTile) {
      const int j1 = std::min(n, j0 + kActTile);
      for (int64_t r = r0; r < r1; ++r) {
        const auto* wr = reinterpret_cast<const float*>(w.data.data() + static_cast<size_t>(r) * w.row_bytes);
        for (int j = j0; j < j1; ++j) {
          y[static_cast<size_t>(j) * rows + static_cast<size_t>(r)] =
              kernels_.dot_f32(x + static_cast<size_t>(j) * static_cast<size_t>(cols), wr, cols);
        }
      }
    }
  });
}

void CpuBackend::matmul_bf16(const Weight& w, const float* x, int n, float* y) {
  const int cols = static_cast<int>(w.cols);
  const size_t rows = static_cast<size_t>(w.rows);
  // Where the table multiplies BF16 pairs, the activations are rounded to BF16 once for every weight row.
  const bool pairs = kernels_.vec_bf16_pairs != nullptr;
  if (pairs) {
    const size_t act_floats = static_cast<size_t>(n) * static_cast<size_t>(cols);
    if (act_bf16_.size() < act_floats) act_bf16_.resize(act_floats);
    kernels_.round_to_bf16(x, act_bf16_.data(), static_cast<int>(act_floats));
  }
  split(static_cast<double>(w.rows) * static_cast<double>(w.cols) * n, w.rows, kRowGrain, [&](int64_t r0, int64_t r1, int) {
    for (int j0 = 0; j0 < n; j0 += kActTile) {
      const int count = std::min(n - j0, kActTile);
      const size_t act_offset = static_cast<size_t>(j0) * static_cast<size_t>(cols);
      for (int64_t r = r0; r < r1; ++r) {
        const auto* wr = reinterpret_cast<const uint16_t*>(w.data.data() + static_cast<size_t>(r) * w.row_bytes);
        float* yr = y + static_cast<size_t>(j0) * rows + static_cast<size_t>(r);
        if (pairs) {
          kernels_.vec_bf16_pairs(wr, act_bf16_.data() + act_offset, static_cast<size_t>(cols), count, cols, yr, rows);
        } else {
          kernels_.vec_bf16(wr, x + act_offset, static_cast<size_t>(cols), count, cols, yr, rows);
        }
      }
    }
  });
}

Q8Block* CpuBackend::quantize_activations(const float* x, int n, int cols) {
  const size_t act_stride = static_cast<size_t>(cols / kQ8BlockElements);
  if (act_q8_.size() < act_stride * static_cast<size_t>(n)) act_q8_.resize(act_stride * static_cast<size_t>(n));
  Q8Block* act = act_q8_.data();
  split(static_cast<double>(n) * cols, n, 1, [&](int64_t j0, int64_t j1, int) {
    for (int64_t j = j0; j < j1; ++j) {
      kernels_.quantize_q8(x + static_cast<size_t>(j) * static_cast<size_t>(cols), act + static_cast<size_t>(j) * act_stride,
                           cols);
    }
  });
  return act;
}

void CpuBackend::matmul_interleaved(const Weight& w, VecDotQ8 x8, const float* x, int n, float* y) {
  const int cols = static_cast<int>(w.cols);
  const int n_blocks = cols / kQ8BlockElements;
  const size_t act_stride = static_cast<size_t>(n_blocks);
  const size_t rows = static_cast<size_t>(w.rows);
  const size_t group_bytes = kInterleavedRows * w.row_bytes;
  const Q8Block* act = quantize_activations(x, n, cols);
  const int64_t groups = w.rows / kInterleavedRows;
  split(static_cast<double>(w.rows) * static_cast<double>(w.cols) * n, groups, kRowGrain / kInterleavedRows,
        [&](int64_t g0, int64_t g1, int) {
          for (int j0 = 0; j0 < n; j0 += kActTile) {
            const int count = std::min(n - j0, kActTile);
            for (int64_t g = g0; g < g1; ++g) {
              x8(w.data.data() + static_cast<size_t>(g) * group_bytes, act + static_cast<size_t>(j0) * act_stride, act_stride,
                 count, n_blocks, y + static_cast<size_t>(j0) * rows + static_cast<size_t>(g) * kInterleavedRows, rows);
            }
          }
        });
}

void CpuBackend::matmul_int8(const Weight& w, VecDotQ8 vec, const float* x, int n, float* y, VecDotQ8Rows4 rows4) {
  const int cols = static_cast<int>(w.cols);
  const int n_blocks = cols / kQ8BlockElements;
  const size_t act_stride = static_cast<size_t>(n_blocks);
  const size_t rows = static_cast<size_t>(w.rows);
  const Q8Block* act = quantize_activations(x, n, cols);
  split(static_cast<double>(w.rows) * static_cast<double>(w.cols) * n, w.rows, kRowGrain, [&](int64_t r0, int64_t r1, int) {
    for (int j0 = 0; j0 < n; j0 += kActTile) {
      const int g = std::min(n - j0, kActTile);
      int64_t r = r0;
      if (rows4 != nullptr) {
        for (; r + 4 <= r1; r += 4) {
          rows4(w.data.data() + static_cast<size_t>(r) * w.row_bytes, w.row_bytes, act + static_cast<size_t>(j0) * act_stride,
                act_stride, g, n_blocks, y + static_cast<size_t>(j0) * rows + static_cast<size_t>(r), rows);
        }
      }
      for (; r < r1; ++r) {
        vec(w.data.data() + static_cast<size_t>(r) * w.row_bytes, act + static_cast<size_t>(j0) * act_stride, act_stride,
            g, n_blocks, y + static_cast<size_t>(j0) * rows + static_cast<size_t>(r), rows);
      }
    }
  });
}

void CpuBackend::matmul_dequantized(const Weight& w, const float* x, int n, float* y) {
  const int cols = static_cast<int>(w.cols);
  const size_t rows = static_cast<size_t>(w.rows);
  ensure_thread_scratch(static_cast<size_t>(cols));
  const bool f16 = is(w.type_id, GgmlType::F16);
  const bool bf16 = is(w.type_id, GgmlType::BF16);
  split(static_cast<double>(w.rows) * static_cast<double>(w.cols) * n, w.rows, kRowGrain, [&](int64_t r0, int64_t r1, int t) {
    float* row = thread_scratch(t);
    for (int64_t r = r0; r < r1; ++r) {
      const std::byte* src = w.data.data() + static_cast<size_t>(r) * w.row_bytes;
      if (f16) {
        kernels_.f16_to_f32(reinterpret_cast<const uint16_t*>(src), row, cols);
      } else if (bf16) {
        kernels_.bf16_to_f32(reinterpret_cast<const uint16_t*>(src), row, cols);
      } else {
        tensor::dequantize(w.type_id, {src, w.row_bytes}, {row, static_cast<size_t>(cols)});
      }
      for (int j = 0; j < n; ++j) {
        y[static_cast<size_t>(j) * rows + static_cast<size_t>(r)] =
            kernels_.dot_f32(x + static_cast<size_t>(j) * static_cast<size_t>(cols), row, cols);
      }
    }
  });
}

void CpuBackend::embed(const Weight& table, const StepTables& step, float* out) {
  const std::span<const int32_t> tokens = step.tokens;
  const size_t cols = static_cast<size_t>(table.cols);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int32_t tok = tokens[i];
    if (tok < 0 || tok >= table.rows) {
      throw std::out_of_range("token id " + std::to_string(tok) + " is outside the vocabulary of " +
                              std::to_string(table.rows));
    }
    if (table.layout == 0) {
      tensor::dequantize(table.type_id, table.data.subspan(static_cast<size_t>(tok) * table.row_bytes, table.row_bytes),
                         {out + i * cols, cols});
    } else {
      // A tied embedding shares the output matrix's interleaved copy: gather the row back first.
      embed_row_.resize(table.row_bytes);
      gather_row(static_cast<WeightLayout>(table.layout), table.data, tok, table.row_bytes, embed_row_);
      tensor::dequantize(table.type_id, embed_row_, {out + i * cols, cols});
    }
  }
}

void CpuBackend::rmsnorm(const float* x, const float* gamma, int n_rows, int dim, float eps, float* out) {
  for (int r = 0; r < n_rows; ++r) {
    const float* xr = x + static_cast<size_t>(r) * static_cast<size_t>(dim);
    float* o = out + static_cast<size_t>(r) * static_cast<size_t>(dim);
    double ss = 0;
    for (int i = 0; i < dim; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / dim + eps));
    for (int i = 0; i < dim; ++i) o[i] = xr[i] * inv * gamma[i];
  }
}

void CpuBackend::rope(float* x, int n_heads, int head_dim, int n_rot, bool neox, const StepTables& step) {
  const int half = n_rot / 2;
  const int n_tokens = step.n_rows();
  if (step.rope.size() < static_cast<size_t>(n_tokens) * static_cast<size_t>(n_rot)) {
    throw std::invalid_argument("rope: the step's cos/sin table is shorter than its rows");
  }
  const float* cos_sin = step.rope.data();
  for (int t = 0; t < n_tokens; ++t) {
    const float* cs = cos_sin + static_cast<size_t>(t) * static_cast<size_t>(n_rot);
    for (int h = 0; h < n_heads; ++h) {
      float* xh = x + (static_cast<size_t>(t) * static_cast<size_t>(n_heads) + static_cast<size_t>(h)) * static_cast<size_t>(head_dim);
      for (int i = 0; i < half; ++i) rotate_pair(xh, i, n_rot, neox, cs);
    }
  }
}

namespace {

std::byte* slot_row(std::byte* base, const KvLayerView& kv, const StepTables& slots, size_t i) {
  const int32_t pos = slots.positions[i];
  const auto table = slots.tables[static_cast<size_t>(slots.seq_of_row[i])];
  const size_t block_index = static_cast<size_t>(pos / kv.block_tokens);
  if (pos < 0 || block_index >= table.size()) {
    throw std::out_of_range("position " + std::to_string(pos) + " has no KV block in its sequence's block table");
  }
  return base + static_cast<size_t>(table[block_index]) * kv.block_bytes +
         static_cast<size_t>(pos % kv.block_tokens) * kv.row_bytes();
}

}  // namespace

void CpuBackend::store_kv(const KvLayerView& kv, const float* k, const float* v, const StepTables& slots) {
  const int width = kv.n_kv_heads * kv.head_dim;
  for (size_t i = 0; i < slots.positions.size(); ++i) {
    const float* kr = k + i * static_cast<size_t>(width);
    const float* vr = v + i * static_cast<size_t>(width);
    std::byte* kd = slot_row(kv.k, kv, slots, i);
    std::byte* vd = slot_row(kv.v, kv, slots, i);
    if (kv.element == KvElement::F32) {
      std::memcpy(kd, kr, static_cast<size_t>(width) * 4);
      std::memcpy(vd, vr, static_cast<size_t>(width) * 4);
    } else if (kv.element == KvElement::F16) {
      kernels_.f32_to_f16(kr, reinterpret_cast<uint16_t*>(kd), width);
      kernels_.f32_to_f16(vr, reinterpret_cast<uint16_t*>(vd), width);
    } else {
      // The row's blocks run across heads; head_dim % 32 == 0 keeps each block within one head.
      const size_t n = static_cast<size_t>(width);
      tensor::quantize(GgmlType::Q8_0, {kr, n}, {kd, kv.row_bytes()});
      tensor::quantize(GgmlType::Q8_0, {vr, n}, {vd, kv.row_bytes()});
    }
  }
}

void CpuBackend::attention(const float* q, int n_heads, const KvLayerView& kv, const StepTables& slots, float scale,
                           float* out) {
  const int n_rows = static_cast<int>(slots.positions.size());
  const int hd = kv.head_dim;
  const int n_kv = kv.n_kv_heads;
  if (n_heads % n_kv != 0) throw std::invalid_argument("attention heads must be a multiple of KV heads");
  if (kv.element == KvElement::Q8_0 && hd % 32 != 0) {
    throw std::invalid_argument("a Q8_0 KV cache needs head_dim a multiple of 32");
  }
  const int rep = n_heads / n_kv;
  const int bt = kv.block_tokens;
  const size_t kv_row_bytes = kv.row_bytes();
  const size_t head_bytes = kv.head_bytes();
  const size_t q_row = static_cast<size_t>(n_heads) * static_cast<size_t>(hd);
  const size_t head_floats = static_cast<size_t>(hd);
  // F32 rows are read in place (one token's heads apart); other types are converted a block at a time.
  const bool in_place = kv.element == KvElement::F32;
  const size_t row_stride = in_place ? kv_row_bytes / sizeof(float) : head_floats;
  // Rows of one sequence in the same tile share each converted K/V block. Tiles stay small enough that
  // every thread gets several items (decode batches are one row per sequence anyway).
  constexpr int kMaxTileRows = 16;
  const int64_t wanted_items = 8 * static_cast<int64_t>(pool_.size());
  const int tile = static_cast<int>(std::clamp<int64_t>(static_cast<int64_t>(n_rows) * n_kv / wanted_items, 1, kMaxTileRows));
  const int n_tiles = (n_rows + tile - 1) / tile;
  // Per thread: a block of K and of V in float, one head's scores, running max and sum per (tile row, head).
  const size_t block_floats = static_cast<size_t>(bt) * head_floats;
  ensure_thread_scratch(2 * block_floats + static_cast<size_t>(bt) + 2 * static_cast<size_t>(kMaxTileRows * rep));

  // Checked here, not in the workers: an exception must not escape a pool thread.
  for (int i = 0; i < n_rows; ++i) {
    const auto table = slots.tables[static_cast<size_t>(slots.seq_of_row[static_cast<size_t>(i)])];
    const int n_ctx = slots.positions[static_cast<size_t>(i)] + 1;
    if (n_ctx <= 0 || static_cast<size_t>((n_ctx + bt - 1) / bt) > table.size()) {
      throw std::out_of_range("attention context exceeds the sequence's block table");
    }
  }
  auto to_float = [&](const std::byte* rows, int count, float* dst) {
    for (int s = 0; s < count; ++s) {
      const std::byte* r = rows + static_cast<size_t>(s) * kv_row_bytes;
      float* d = dst + static_cast<size_t>(s) * head_floats;
      if (kv.element == KvElement::F16) {
        kernels_.f16_to_f32(reinterpret_cast<const uint16_t*>(r), d, hd);
      } else if (kernels_.q8_0_to_f32 != nullptr) {
        kernels_.q8_0_to_f32(r, d, hd);
      } else {
        // head_dim % 32 == 0 (checked above), so the sizes always match and this cannot throw in a worker.
        tensor::dequantize(static_cast<uint32_t>(GgmlType::Q8_0), {r, head_bytes}, {d, head_floats});
      }
    }
  };
  // Rows [a, b) of one sequence against KV head g: online softmax over blocks of positions, each block's
  // K and V converted once for all the rows.
  auto attend_run = [&](int a, int b, int g, float* scratch) {
    float* kconv = scratch;
    float* vconv = kconv + block_floats;
    float* scores = vconv + block_floats;  // [bt], one head at a time
    float* run_max = scores + bt;          // [row - a][rep]
    float* run_sum = run_max + kMaxTileRows * rep;
    const auto table = slots.tables[static_cast<size_t>(slots.seq_of_row[static_cast<size_t>(a)])];
    int max_ctx = 0;
    for (int i = a; i < b; ++i) {
      max_ctx = std::max(max_ctx, slots.positions[static_cast<size_t>(i)] + 1);
      float* og = out + static_cast<size_t>(i) * q_row + static_cast<size_t>(g * rep) * head_floats;
      std::fill(og, og + static_cast<size_t>(rep) * head_floats, 0.0f);
    }
    std::fill(run_max, run_max + (b - a) * rep, -INFINITY);
    std::fill(run_sum, run_sum + (b - a) * rep, 0.0f);
    for (int b0 = 0; b0 < max_ctx; b0 += bt) {
      const size_t block = static_cast<size_t>(table[static_cast<size_t>(b0 / bt)]);
      const std::byte* kblock = kv.k + block * kv.block_bytes + static_cast<size_t>(g) * head_bytes;
      const std::byte* vblock = kv.v + block * kv.block_bytes + static_cast<size_t>(g) * head_bytes;
      const float* kf = reinterpret_cast<const float*>(kblock);
      const float* vf = reinterpret_cast<const float*>(vblock);
      if (!in_place) {
        const int block_count = std::min(bt, max_ctx - b0);
        to_float(kblock, block_count, kconv);
        to_float(vblock, block_count, vconv);
        kf = kconv;
        vf = vconv;
      }
      for (int i = a; i < b; ++i) {
        const int n_ctx = slots.positions[static_cast<size_t>(i)] + 1;
        if (n_ctx <= b0) continue;
        const int count = std::min(bt, n_ctx - b0);
        const float* qg = q + static_cast<size_t>(i) * q_row + static_cast<size_t>(g * rep) * head_floats;
        float* og = out + static_cast<size_t>(i) * q_row + static_cast<size_t>(g * rep) * head_floats;
        float* row_max = run_max + (i - a) * rep;
        float* row_sum = run_sum + (i - a) * rep;
        for (int r = 0; r < rep; ++r) {
          kernels_.attn_scores(qg + static_cast<size_t>(r) * head_floats, kf, row_stride, count, hd, scale, scores);
          float block_max = scores[0];
          for (int s = 1; s < count; ++s) block_max = std::max(block_max, scores[s]);
          // Fold this block into the running max and sum, rescaling what was accumulated.
          const float new_max = std::max(row_max[r], block_max);
          const float correction = std::exp(row_max[r] - new_max);
          row_sum[r] = row_sum[r] * correction + kernels_.exp_shifted_sum(scores, new_max, count);
          row_max[r] = new_max;
          kernels_.attn_accumulate(scores, vf, row_stride, count, hd, correction, og + static_cast<size_t>(r) * head_floats);
        }
      }
    }
    for (int i = a; i < b; ++i) {
      float* og = out + static_cast<size_t>(i) * q_row + static_cast<size_t>(g * rep) * head_floats;
      for (int r = 0; r < rep; ++r) {
        kernels_.scale_f32(1.0f / run_sum[(i - a) * rep + r], og + static_cast<size_t>(r) * head_floats, hd);
      }
    }
  };
  double macs = 0;
  for (int32_t p : slots.positions) macs += 2.0 * (p + 1) * n_heads * hd;
  split(macs, static_cast<int64_t>(n_tiles) * n_kv, 1, [&](int64_t w0, int64_t w1, int t) {
    for (int64_t item = w0; item < w1; ++item) {
      const int r0 = static_cast<int>(item / n_kv) * tile;
      const int r1 = std::min(n_rows, r0 + tile);
      const int g = static_cast<int>(item % n_kv);
      // Runs of consecutive rows of the same sequence share blocks; a tile may hold several runs.
      for (int a = r0; a < r1;) {
        int b = a + 1;
        while (b < r1 && slots.seq_of_row[static_cast<size_t>(b)] == slots.seq_of_row[static_cast<size_t>(a)]) ++b;
        attend_run(a, b, g, thread_scratch(t));
        a = b;
      }
    }
  });
}

void CpuBackend::silu_mul(float* gate, const float* up, size_t n) {
  auto body = [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      const float g = gate[i];
      gate[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
  };
  split(n >= kParallelElementwise ? kMinParallelMacs : 0.0, static_cast<int64_t>(n), 1024, body);
}

void CpuBackend::add(float* x, const float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] += y[i];
}

void CpuBackend::add_rows(float* x, const float* bias, int n_rows, int dim) {
  for (int r = 0; r < n_rows; ++r) add(x + static_cast<size_t>(r) * static_cast<size_t>(dim), bias, static_cast<size_t>(dim));
}

}  // namespace pensieve::backend::cpu
