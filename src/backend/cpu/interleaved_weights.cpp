#include "backend/cpu/interleaved_weights.h"

#include <cstring>
#include <stdexcept>
#include <string>

#include "gguf/ggml_type.h"
#include "tensor/block_layouts.h"
#include "tensor/dequantize.h"

namespace pensieve::backend::cpu {

namespace {

using gguf::GgmlType;

constexpr size_t kQ4_0Bytes = 18, kQ8_0Bytes = 34, kQ4_KBytes = 144, kQ6_KBytes = 210;
constexpr size_t kLaneBytes = 4;  // consecutive bytes of one row inside a chunk

// Which scale fields a block carries besides its quants, and so where they go in the group block.
enum class Header { OneScale, K4, K6 };

struct Shape {
  size_t block_bytes;        // one row's block in GGUF order
  size_t group_block_bytes;  // eight rows' blocks interleaved
  size_t quant_begin;        // the quants' bytes inside the GGUF block
  size_t quant_end;
  Header header;
  size_t header_bytes() const { return block_bytes - (quant_end - quant_begin); }
};

Shape shape_of(uint32_t type_id) {
  if (type_id == static_cast<uint32_t>(GgmlType::Q4_0)) return {kQ4_0Bytes, kQ4_0x8GroupBlockBytes, 2, kQ4_0Bytes, Header::OneScale};
  if (type_id == static_cast<uint32_t>(GgmlType::Q8_0)) return {kQ8_0Bytes, kQ8_0x8GroupBlockBytes, 2, kQ8_0Bytes, Header::OneScale};
  if (type_id == static_cast<uint32_t>(GgmlType::Q4_K)) return {kQ4_KBytes, kQ4_Kx8GroupBlockBytes, 16, kQ4_KBytes, Header::K4};
  if (type_id == static_cast<uint32_t>(GgmlType::Q6_K)) return {kQ6_KBytes, kQ6_Kx8GroupBlockBytes, 0, 192, Header::K6};
  throw std::invalid_argument("no interleaved layout for GGML type " + std::to_string(type_id));
}

Shape shape_of(WeightLayout layout) {
  switch (layout) {
    case WeightLayout::Q4_0Interleaved8: return shape_of(static_cast<uint32_t>(GgmlType::Q4_0));
    case WeightLayout::Q8_0Interleaved8: return shape_of(static_cast<uint32_t>(GgmlType::Q8_0));
    case WeightLayout::Q4_KInterleaved8: return shape_of(static_cast<uint32_t>(GgmlType::Q4_K));
    case WeightLayout::Q6_KInterleaved8: return shape_of(static_cast<uint32_t>(GgmlType::Q6_K));
    default: break;
  }
  throw std::invalid_argument("not an interleaved layout: " + std::to_string(static_cast<int>(layout)));
}

bool is_quant(const Shape& s, size_t i) { return i >= s.quant_begin && i < s.quant_end; }

// Where byte i of row r's block sits inside the group block: each header field for the eight rows side by
// side, then the quants four bytes per row per chunk.
size_t interleaved_offset(const Shape& s, size_t i, int r) {
  const auto row = static_cast<size_t>(r);
  if (is_quant(s, i)) {
    const size_t q = i - s.quant_begin;
    return s.header_bytes() * kInterleavedRows + (q / kLaneBytes) * kLaneBytes * kInterleavedRows + row * kLaneBytes +
           q % kLaneBytes;
  }
  switch (s.header) {
    case Header::OneScale: return row * 2 + i;  // the fp16 scale
    case Header::K4:
      if (i < 4) return (i / 2) * 2 * kInterleavedRows + row * 2 + i % 2;  // d, then dmin
      return 4 * kInterleavedRows + (i - 4) * kInterleavedRows + row;      // packed scale byte i - 4
    case Header::K6:
      if (i >= 208) return row * 2 + (i - 208);                     // d
      return 2 * kInterleavedRows + (i - 192) * kInterleavedRows + row;  // int8 scale i - 192
  }
  return 0;
}

int16_t signed_byte(std::byte b) { return static_cast<int8_t>(b); }

float scale_of(const std::byte* group_block, int r) {
  uint16_t h;
  std::memcpy(&h, group_block + 2 * r, 2);
  return tensor::fp16_to_fp32(h);
}

}  // namespace

bool can_interleave(uint32_t type_id, int64_t rows) {
  const bool type_ok = type_id == static_cast<uint32_t>(GgmlType::Q4_0) || type_id == static_cast<uint32_t>(GgmlType::Q8_0) ||
                       type_id == static_cast<uint32_t>(GgmlType::Q4_K) || type_id == static_cast<uint32_t>(GgmlType::Q6_K);
  return type_ok && rows > 0 && rows % kInterleavedRows == 0;
}

std::vector<std::byte> interleave_rows(uint32_t type_id, std::span<const std::byte> data, int64_t rows,
                                       size_t row_bytes) {
  const Shape s = shape_of(type_id);
  if (!can_interleave(type_id, rows) || row_bytes % s.block_bytes != 0 || data.size() < static_cast<size_t>(rows) * row_bytes) {
    throw std::invalid_argument("interleave_rows: rows must be a multiple of 8 whole-block rows");
  }
  const size_t n_blocks = row_bytes / s.block_bytes;
  std::vector<std::byte> out(static_cast<size_t>(rows) * row_bytes);
  for (int64_t g = 0; g < rows / kInterleavedRows; ++g) {
    for (size_t b = 0; b < n_blocks; ++b) {
      std::byte* dst = out.data() + (static_cast<size_t>(g) * n_blocks + b) * s.group_block_bytes;
      for (int r = 0; r < kInterleavedRows; ++r) {
        const std::byte* src = data.data() + static_cast<size_t>(g * kInterleavedRows + r) * row_bytes + b * s.block_bytes;
        for (size_t i = 0; i < s.block_bytes; ++i) {
          if (!is_quant(s, i)) dst[interleaved_offset(s, i, r)] = src[i];
        }
        for (size_t q = s.quant_begin; q < s.quant_end; q += kLaneBytes) {
          std::memcpy(dst + interleaved_offset(s, q, r), src + q, kLaneBytes);
        }
      }
    }
  }
  return out;
}

void gather_row(WeightLayout layout, std::span<const std::byte> data, int64_t row, size_t row_bytes,
                std::span<std::byte> out) {
  const Shape s = shape_of(layout);
  const size_t n_blocks = row_bytes / s.block_bytes;
  if (out.size() < row_bytes) throw std::invalid_argument("gather_row: output shorter than a row");
  const size_t g = static_cast<size_t>(row / kInterleavedRows);
  const int r = static_cast<int>(row % kInterleavedRows);
  for (size_t b = 0; b < n_blocks; ++b) {
    const std::byte* src = data.data() + (g * n_blocks + b) * s.group_block_bytes;
    for (size_t i = 0; i < s.block_bytes; ++i) out[b * s.block_bytes + i] = src[interleaved_offset(s, i, r)];
  }
}

void reference_x8_q4_0(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
                       size_t out_stride) {
  const Shape q4_0 = shape_of(static_cast<uint32_t>(GgmlType::Q4_0));
  for (int j = 0; j < n_act; ++j) {
    for (int r = 0; r < kInterleavedRows; ++r) {
      float sum = 0;
      for (int b = 0; b < n_blocks; ++b) {
        const std::byte* gb = w + static_cast<size_t>(b) * kQ4_0x8GroupBlockBytes;
        const Q8Block& a = act[static_cast<size_t>(j) * act_stride + static_cast<size_t>(b)];
        int32_t dot = 0;
        for (size_t i = 0; i < 16; ++i) {
          const auto packed = static_cast<uint8_t>(gb[interleaved_offset(q4_0, 2 + i, r)]);
          dot += ((packed & 0x0F) - 8) * a.qs[i] + ((packed >> 4) - 8) * a.qs[i + 16];
        }
        sum += scale_of(gb, r) * a.d * static_cast<float>(dot);
      }
      out[static_cast<size_t>(j) * out_stride + static_cast<size_t>(r)] = sum;
    }
  }
}

void reference_x8_q8_0(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
                       size_t out_stride) {
  const Shape q8_0 = shape_of(static_cast<uint32_t>(GgmlType::Q8_0));
  for (int j = 0; j < n_act; ++j) {
    for (int r = 0; r < kInterleavedRows; ++r) {
      float sum = 0;
      for (int b = 0; b < n_blocks; ++b) {
        const std::byte* gb = w + static_cast<size_t>(b) * kQ8_0x8GroupBlockBytes;
        const Q8Block& a = act[static_cast<size_t>(j) * act_stride + static_cast<size_t>(b)];
        int32_t dot = 0;
        for (size_t i = 0; i < 32; ++i) dot += signed_byte(gb[interleaved_offset(q8_0, 2 + i, r)]) * a.qs[i];
        sum += scale_of(gb, r) * a.d * static_cast<float>(dot);
      }
      out[static_cast<size_t>(j) * out_stride + static_cast<size_t>(r)] = sum;
    }
  }
}

void reference_x8_q4_k(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
                       size_t out_stride) {
  const Shape q4_k = shape_of(static_cast<uint32_t>(GgmlType::Q4_K));
  for (int j = 0; j < n_act; ++j) {
    for (int r = 0; r < kInterleavedRows; ++r) {
      float sum = 0;
      for (int sb = 0; sb < n_blocks / 8; ++sb) {
        const std::byte* gb = w + static_cast<size_t>(sb) * kQ4_Kx8GroupBlockBytes;
        const Q8Block* a = act + static_cast<size_t>(j) * act_stride + static_cast<size_t>(sb) * 8;
        uint8_t packed[12];
        for (size_t i = 0; i < 12; ++i) packed[i] = static_cast<uint8_t>(gb[interleaved_offset(q4_k, 4 + i, r)]);
        const float d = scale_of(gb, r), dmin = scale_of(gb + 2 * kInterleavedRows, r);
        for (int g = 0; g < 8; ++g) {
          const tensor::ScaleMin sm = tensor::unpack_k4_scale_min(packed, g);
          int32_t dot = 0;
          for (int i = 0; i < 32; ++i) {
            // Element i of group g is byte 32 * (g / 2) + i of the row's quants, low nibble for even g.
            const auto byte = static_cast<uint8_t>(gb[interleaved_offset(q4_k, 16 + 32 * static_cast<size_t>(g / 2) + static_cast<size_t>(i), r)]);
            dot += ((g % 2 == 0) ? (byte & 15) : (byte >> 4)) * a[g].qs[i];
          }
          sum += a[g].d * (d * sm.scale * static_cast<float>(dot) - dmin * sm.min * static_cast<float>(a[g].sum));
        }
      }
      out[static_cast<size_t>(j) * out_stride + static_cast<size_t>(r)] = sum;
    }
  }
}

void reference_x8_q6_k(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
                       size_t out_stride) {
  const Shape q6_k = shape_of(static_cast<uint32_t>(GgmlType::Q6_K));
  auto byte_at = [&](const std::byte* gb, size_t i, int r) { return static_cast<uint8_t>(gb[interleaved_offset(q6_k, i, r)]); };
  for (int j = 0; j < n_act; ++j) {
    for (int r = 0; r < kInterleavedRows; ++r) {
      float sum = 0;
      for (int sb = 0; sb < n_blocks / 8; ++sb) {
        const std::byte* gb = w + static_cast<size_t>(sb) * kQ6_Kx8GroupBlockBytes;
        const Q8Block* a = act + static_cast<size_t>(j) * act_stride + static_cast<size_t>(sb) * 8;
        float block = 0;
        for (int g = 0; g < 8; ++g) {
          int32_t scaled = 0;
          for (int i = 0; i < 32; ++i) {
            // Element e = 32g + i: half e / 128, quarter (e % 128) / 32, as the GGUF block lays it out.
            const int e = 32 * g + i, half = e / 128, quarter = (e % 128) / 32;
            const uint8_t low_byte = byte_at(gb, static_cast<size_t>(64 * half + 32 * (quarter & 1) + e % 32), r);
            const int low = quarter < 2 ? (low_byte & 15) : (low_byte >> 4);
            const int high = (byte_at(gb, static_cast<size_t>(128 + 32 * half + e % 32), r) >> (2 * quarter)) & 3;
            const auto scale = static_cast<int8_t>(byte_at(gb, static_cast<size_t>(192 + e / 16), r));
            scaled += scale * ((low | (high << 4)) - 32) * a[g].qs[i];
          }
          block += a[g].d * static_cast<float>(scaled);
        }
        sum += scale_of(gb, r) * block;
      }
      out[static_cast<size_t>(j) * out_stride + static_cast<size_t>(r)] = sum;
    }
  }
}

}  // namespace pensieve::backend::cpu
