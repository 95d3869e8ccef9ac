// IEEE binary16 and bfloat16 <-> binary32, done with integer arithmetic so that the result does not depend
// on the compiler, the FPU rounding mode or F16C: subnormals, infinities and NaNs are kept, and narrowing
// rounds to nearest with ties to even.
#include <bit>
#include <cstdint>

#include "tensor/dequantize.h"

namespace pensieve::tensor {

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24 is exact in binary32.
    const float magnitude = float(mantissa) * 0x1p-24f;
    return sign ? -magnitude : magnitude;
  }
  // Rebias the exponent from 15 to 127.
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

uint16_t fp32_to_fp16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const auto sign = uint16_t((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7fffffffu;

  if (magnitude >= 0x7f800000u) {
    if (magnitude == 0x7f800000u) return sign | 0x7c00u;
    // NaN: keep it quiet and keep the top payload bits.
    return uint16_t(sign | 0x7e00u | ((magnitude & 0x7fffffu) >> 13));
  }
  // 65520 is the midpoint between the largest half (65504) and 2^16; ties go to the even side, which is inf.
  if (magnitude >= 0x477ff000u) return sign | 0x7c00u;

  const uint32_t exponent = magnitude >> 23;
  if (exponent < 113) {
    // Below 2^-14 the result is a half subnormal: round(value / 2^-24).
    const uint32_t shift = 126 - exponent;  // value = significand * 2^(exponent-150)
    if (shift > 24) return sign;             // below half of the smallest subnormal (and float subnormals)
    const uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
    uint32_t q = significand >> shift;
    const uint32_t rest = significand & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (q & 1u))) ++q;  // may carry into the smallest normal: correct
    return uint16_t(sign | q);
  }

  uint32_t h = ((exponent - 112) << 10) | ((magnitude >> 13) & 0x3ffu);
  const uint32_t rest = magnitude & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a mantissa carry bumps the exponent: correct
  return uint16_t(sign | h);
}

float bf16_to_fp32(uint16_t h) { return std::bit_cast<float>(uint32_t(h) << 16); }

uint16_t fp32_to_bf16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40u);  // NaN stays a quiet NaN
  const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);  // ties to even; overflow correctly reaches inf
  return uint16_t((bits + rounding) >> 16);
}

}  // namespace pensieve::tensor
