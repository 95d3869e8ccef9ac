#pragma once
// Decoding 32 consecutive elements ("a chunk") of a weight row of any GGML type the engine reads. Every
// format's blocks are 32 or 256 elements, so a chunk never straddles a block, and chunk c of a row starts in
// block c / chunks_per_block. The same code runs in the CUDA kernels and on the host, where a unit test holds
// it to tensor::dequantize for every type (so the device decoders are checked on machines with no GPU).
//
// Layouts (see tensor/block_layouts.h): element e of a 256-element super-block is at
//   Q2_K/Q3_K: 2-bit field of qs[32*(e/128) + e%32] at bit 2*((e%128)/32)
//   Q4_K/Q5_K: nibble of qs[32*(e/64) + e%32], low when (e%64) < 32
//   Q6_K:      nibble of ql[64*(e/128) + 32*(((e%128)/32)&1) + e%32], high bits in qh[32*(e/128) + e%32]
// so for chunk c (e = 32c + j) those offsets depend on c and j alone, as written below.
#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#define PENSIEVE_HD __host__ __device__ __forceinline__
#else
#define PENSIEVE_HD inline
#endif

namespace pensieve::backend::cuda {

// GGML type ids (gguf/ggml_type.h), repeated here because device code cannot include host headers.
enum class QuantType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, IQ4_NL = 20, IQ4_XS = 23, BF16 = 30,
};

struct QuantFormat {
  int block_elements;  // 32 or 256 (1 for the plain float types)
  int block_bytes;
};

PENSIEVE_HD constexpr QuantFormat quant_format(QuantType t) {
  switch (t) {
    case QuantType::F32: return {1, 4};
    case QuantType::F16: return {1, 2};
    case QuantType::BF16: return {1, 2};
    case QuantType::Q4_0: return {32, 18};
    case QuantType::Q4_1: return {32, 20};
    case QuantType::Q5_0: return {32, 22};
    case QuantType::Q5_1: return {32, 24};
    case QuantType::Q8_0: return {32, 34};
    case QuantType::IQ4_NL: return {32, 18};
    case QuantType::Q2_K: return {256, 84};
    case QuantType::Q3_K: return {256, 110};
    case QuantType::Q4_K: return {256, 144};
    case QuantType::Q5_K: return {256, 176};
    case QuantType::Q6_K: return {256, 210};
    case QuantType::IQ4_XS: return {256, 136};
  }
  return {0, 0};
}

// Bytes of `elements` consecutive elements starting at a chunk boundary (elements a multiple of 32).
PENSIEVE_HD constexpr size_t quant_bytes(QuantType t, size_t elements) {
  const QuantFormat f = quant_format(t);
  return elements / static_cast<size_t>(f.block_elements) * static_cast<size_t>(f.block_bytes);
}

PENSIEVE_HD float half_bits_to_float(uint16_t h) {
#if defined(__CUDA_ARCH__)
  return __half2float(__ushort_as_half(h));
#else
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent == 0) {
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return sign ? -magnitude : magnitude;
  } else {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  }
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
#endif
}

PENSIEVE_HD float bf16_bits_to_float(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
#if defined(__CUDA_ARCH__)
  f = __uint_as_float(bits);
#else
  __builtin_memcpy(&f, &bits, 4);
#endif
  return f;
}

PENSIEVE_HD uint16_t load_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

PENSIEVE_HD int8_t iq4_value(int code) {
  constexpr int8_t kValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  return kValues[code];
}

// The K-quants' eight 6-bit (scale, min) pairs packed into 12 bytes (Q4_K, Q5_K).
PENSIEVE_HD void k4_scale_min(const uint8_t* packed, int group, int& scale, int& min) {
  if (group < 4) {
    scale = packed[group] & 63;
    min = packed[group + 4] & 63;
  } else {
    const int low = packed[group + 4];
    scale = (low & 15) | ((packed[group - 4] >> 6) << 4);
    min = (low >> 4) | ((packed[group] >> 6) << 4);
  }
}

// Q3_K's sixteen 6-bit scales in 12 bytes, offset by 32.
PENSIEVE_HD int q3_k_scale(const uint8_t* packed, int group) {
  const int low = group < 8 ? (packed[group] & 15) : (packed[group - 8] >> 4);
  const int high = (packed[8 + group % 4] >> (2 * (group / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// y[0..32) = elements [32 * chunk, 32 * chunk + 32) of the row starting at `row`.
template <QuantType T>
PENSIEVE_HD void decode_chunk(const uint8_t* row, int chunk, float* y) {
  constexpr QuantFormat f = quant_format(T);
  if constexpr (T == QuantType::F32) {
    const uint8_t* p = row + static_cast<size_t>(chunk) * 128;
    for (int j = 0; j < 32; ++j) __builtin_memcpy(&y[j], p + 4 * j, 4);
  } else if constexpr (T == QuantType::F16) {
    const uint8_t* p = row + static_cast<size_t>(chunk) * 64;
    for (int j = 0; j < 32; ++j) y[j] = half_bits_to_float(load_u16(p + 2 * j));
  } else if constexpr (T == QuantType::BF16) {
    const uint8_t* p = row + static_cast<size_t>(chunk) * 64;
    for (int j = 0; j < 32; ++j) y[j] = bf16_bits_to_float(load_u16(p + 2 * j));
  } else if constexpr (f.block_elements == 32) {
    const uint8_t* b = row + static_cast<size_t>(chunk) * f.block_bytes;
    const float d = half_bits_to_float(load_u16(b));
    if constexpr (T == QuantType::Q8_0) {
      for (int j = 0; j < 32; ++j) y[j] = d * static_cast<float>(static_cast<int8_t>(b[2 + j]));
    } else if constexpr (T == QuantType::Q4_0 || T == QuantType::IQ4_NL) {
      const uint8_t* qs = b + 2;
      for (int j = 0; j < 16; ++j) {
        if constexpr (T == QuantType::Q4_0) {
          y[j] = d * static_cast<float>((qs[j] & 15) - 8);
          y[j + 16] = d * static_cast<float>((qs[j] >> 4) - 8);
        } else {
          y[j] = d * static_cast<float>(iq4_value(qs[j] & 15));
          y[j + 16] = d * static_cast<float>(iq4_value(qs[j] >> 4));
        }
      }
    } else if constexpr (T == QuantType::Q4_1) {
      const float m = half_bits_to_float(load_u16(b + 2));
      const uint8_t* qs = b + 4;
      for (int j = 0; j < 16; ++j) {
        y[j] = d * static_cast<float>(qs[j] & 15) + m;
        y[j + 16] = d * static_cast<float>(qs[j] >> 4) + m;
      }
    } else {  // Q5_0, Q5_1: a fifth bit per element in the 32-bit qh
      constexpr bool kHasMin = T == QuantType::Q5_1;
      const float m = kHasMin ? half_bits_to_float(load_u16(b + 2)) : 0.0f;
      const uint8_t* qh_bytes = b + (kHasMin ? 4 : 2);
      const uint32_t qh = static_cast<uint32_t>(qh_bytes[0]) | (static_cast<uint32_t>(qh_bytes[1]) << 8) |
                          (static_cast<uint32_t>(qh_bytes[2]) << 16) | (static_cast<uint32_t>(qh_bytes[3]) << 24);
      const uint8_t* qs = qh_bytes + 4;
      for (int j = 0; j < 16; ++j) {
        const int lo = (qs[j] & 15) | (((qh >> j) & 1) << 4);
        const int hi = (qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
        if constexpr (kHasMin) {
          y[j] = d * static_cast<float>(lo) + m;
          y[j + 16] = d * static_cast<float>(hi) + m;
        } else {
          y[j] = d * static_cast<float>(lo - 16);
          y[j + 16] = d * static_cast<float>(hi - 16);
        }
      }
    }
  } else {
    const uint8_t* b = row + static_cast<size_t>(chunk / 8) * f.block_bytes;
    const int c = chunk % 8;  // chunk within the super-block: elements 32c .. 32c + 31
    if constexpr (T == QuantType::Q4_K || T == QuantType::Q5_K) {
      const float d = half_bits_to_float(load_u16(b));
      const float dmin = half_bits_to_float(load_u16(b + 2));
      int sc, mn;
      k4_scale_min(b + 4, c, sc, mn);
      const float scale = d * static_cast<float>(sc), min = dmin * static_cast<float>(mn);
      const uint8_t* qs = b + (T == QuantType::Q4_K ? 16 : 48) + 32 * (c / 2);
      const int shift = 4 * (c % 2);
      for (int j = 0; j < 32; ++j) {
        int q = (qs[j] >> shift) & 15;
        if constexpr (T == QuantType::Q5_K) q |= ((b[16 + j] >> c) & 1) << 4;
        y[j] = scale * static_cast<float>(q) - min;
      }
    } else if constexpr (T == QuantType::Q6_K) {
      const uint8_t* ql = b + 64 * (c / 4) + 32 * (c % 2);
      const uint8_t* qh = b + 128 + 32 * (c / 4);
      const auto* scales = reinterpret_cast<const int8_t*>(b + 192);
      const float d = half_bits_to_float(load_u16(b + 208));
      const int low_shift = (c % 4) < 2 ? 0 : 4, high_shift = 2 * (c % 4);
      for (int j = 0; j < 32; ++j) {
        const int q = ((ql[j] >> low_shift) & 15) | (((qh[j] >> high_shift) & 3) << 4);
        y[j] = d * static_cast<float>(scales[2 * c + j / 16]) * static_cast<float>(q - 32);
      }
    } else if constexpr (T == QuantType::Q2_K) {
      const uint8_t* scales = b;
      const uint8_t* qs = b + 16 + 32 * (c / 4);
      const float d = half_bits_to_float(load_u16(b + 80));
      const float dmin = half_bits_to_float(load_u16(b + 82));
      const int shift = 2 * (c % 4);
      for (int j = 0; j < 32; ++j) {
        const int sc = scales[2 * c + j / 16];
        y[j] = d * static_cast<float>(sc & 15) * static_cast<float>((qs[j] >> shift) & 3) -
               dmin * static_cast<float>(sc >> 4);
      }
    } else if constexpr (T == QuantType::Q3_K) {
      const uint8_t* hmask = b;
      const uint8_t* qs = b + 32 + 32 * (c / 4);
      const uint8_t* scales = b + 96;
      const float d = half_bits_to_float(load_u16(b + 108));
      const int shift = 2 * (c % 4);
      for (int j = 0; j < 32; ++j) {
        // A clear high bit means the stored 2-bit value is offset by 4.
        const int q = ((qs[j] >> shift) & 3) - (((hmask[j] >> c) & 1) ? 0 : 4);
        y[j] = d * static_cast<float>(q3_k_scale(scales, 2 * c + j / 16)) * static_cast<float>(q);
      }
    } else if constexpr (T == QuantType::IQ4_XS) {
      const float d = half_bits_to_float(load_u16(b));
      const int scales_h = load_u16(b + 2);
      const int low = (b[4 + c / 2] >> (4 * (c % 2))) & 15;
      const int high = (scales_h >> (2 * c)) & 3;
      const float scale = d * static_cast<float>((low | (high << 4)) - 32);
      const uint8_t* qs = b + 8 + 16 * c;
      for (int j = 0; j < 16; ++j) {
        y[j] = scale * static_cast<float>(iq4_value(qs[j] & 15));
        y[j + 16] = scale * static_cast<float>(iq4_value(qs[j] >> 4));
      }
    }
  }
}

// Calls fn.template operator()<T>() for the type `t`; returns false for a type no decoder exists for.
template <typename Fn>
bool dispatch_quant_type(uint32_t t, Fn&& fn) {
  switch (static_cast<QuantType>(t)) {
#define PENSIEVE_QUANT_CASE(name) \
  case QuantType::name: fn.template operator()<QuantType::name>(); return true;
    PENSIEVE_QUANT_CASE(F32) PENSIEVE_QUANT_CASE(F16) PENSIEVE_QUANT_CASE(BF16) PENSIEVE_QUANT_CASE(Q4_0)
    PENSIEVE_QUANT_CASE(Q4_1) PENSIEVE_QUANT_CASE(Q5_0) PENSIEVE_QUANT_CASE(Q5_1) PENSIEVE_QUANT_CASE(Q8_0)
    PENSIEVE_QUANT_CASE(IQ4_NL) PENSIEVE_QUANT_CASE(Q2_K) PENSIEVE_QUANT_CASE(Q3_K) PENSIEVE_QUANT_CASE(Q4_K)
    PENSIEVE_QUANT_CASE(Q5_K) PENSIEVE_QUANT_CASE(Q6_K) PENSIEVE_QUANT_CASE(IQ4_XS)
#undef PENSIEVE_QUANT_CASE
  }
  return false;
}

}  // namespace pensieve::backend::cuda
