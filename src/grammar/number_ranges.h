#pragma once
// GBNF for JSON numbers within bounds (JSON Schema minimum / maximum / exclusiveMinimum / exclusiveMaximum):
// integers in any range of at most 16 digits, and decimal numbers between integer bounds (without exponent).
#include <cstdint>
#include <optional>
#include <string>

namespace pensieve::grammar {

inline constexpr int64_t kMaxJsonInteger = 9'999'999'999'999'999;  // 16 digits, as the unbounded grammar

// Integers n with lo <= n <= hi (absent: unbounded, within 16 digits); lo <= hi.
std::string integer_range_gbnf(std::optional<int64_t> lo, std::optional<int64_t> hi);

// Decimal numbers x with lo <= x <= hi, bounds integers (absent: unbounded); lo <= hi. `fraction` is the GBNF
// of the optional fraction part, e.g. ( "." [0-9]{1,16} )?.
std::string number_range_gbnf(std::optional<int64_t> lo, std::optional<int64_t> hi, const std::string& fraction);

}  // namespace pensieve::grammar
