#include "grammar/number_ranges.h"

#include <initializer_list>
#include <string_view>

namespace pensieve::grammar {
namespace {

// Joins pieces by appending (GCC 12 warns falsely about `"literal" + std::string` chains).
std::string cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts) out += p;
  return out;
}

std::string digits(char lo, char hi) {
  if (lo == hi) return cat({"\"", std::string_view(&lo, 1), "\""});
  return cat({"[", std::string_view(&lo, 1), "-", std::string_view(&hi, 1), "]"});
}

std::string any_digits(size_t n) {
  if (n == 0) return "";
  return n == 1 ? " [0-9]" : cat({" [0-9]{", std::to_string(n), "}"});
}

// Decimal strings of x.size() digits between x and y (same length, x <= y), leading zeros as given.
std::string same_length(std::string_view x, std::string_view y) {
  const size_t n = x.size();
  if (n == 0) return "\"\"";
  if (n == 1) return digits(x[0], y[0]);
  if (x[0] == y[0]) return cat({digits(x[0], x[0]), " ( ", same_length(x.substr(1), y.substr(1)), " )"});
  const std::string rest_lo(n - 1, '0'), rest_hi(n - 1, '9');
  if (x.substr(1) == rest_lo && y.substr(1) == rest_hi) return cat({digits(x[0], y[0]), any_digits(n - 1)});
  // x0 followed by x's tail up to all nines; the first digits strictly between; y0 followed by zeros up to y's tail.
  std::string out = cat({digits(x[0], x[0]), " ( ", same_length(x.substr(1), rest_hi), " )"});
  if (x[0] + 1 <= y[0] - 1) {
    out += cat({" | ", digits(static_cast<char>(x[0] + 1), static_cast<char>(y[0] - 1)), any_digits(n - 1)});
  }
  out += cat({" | ", digits(y[0], y[0]), " ( ", same_length(rest_lo, y.substr(1)), " )"});
  return out;
}

// Natural numbers a..b (0 <= a <= b) without leading zeros.
std::string naturals(int64_t a, int64_t b) {
  std::string out;
  const std::string sa = std::to_string(a), sb = std::to_string(b);
  for (size_t len = sa.size(); len <= sb.size(); ++len) {
    const std::string lo = len == sa.size() ? sa : cat({"1", std::string(len - 1, '0')});
    const std::string hi = len == sb.size() ? sb : std::string(len, '9');
    out += cat({out.empty() ? "" : " | ", "( ", same_length(lo, hi), " )"});
  }
  return cat({"( ", out, " )"});
}

}  // namespace

std::string integer_range_gbnf(std::optional<int64_t> lo, std::optional<int64_t> hi) {
  const int64_t a = lo.value_or(-kMaxJsonInteger), b = hi.value_or(kMaxJsonInteger);
  if (a >= 0) return naturals(a, b);
  if (b < 0) return cat({"( \"-\" ", naturals(-b, -a), " )"});
  return cat({"( \"-\" ", naturals(1, -a), " | ", naturals(0, b), " )"});
}

std::string number_range_gbnf(std::optional<int64_t> lo, std::optional<int64_t> hi, const std::string& fraction) {
  // Non-negative x in [a, b]: an integer part in [a, b - 1] with any fraction, or b itself.
  const auto positive = [&](int64_t a, std::optional<int64_t> b) {
    if (!b) return cat({"( ", naturals(a, kMaxJsonInteger), " ", fraction, " )"});
    if (a == *b) return cat({"\"", std::to_string(a), "\""});
    return cat({"( ", naturals(a, *b - 1), " ", fraction, " | \"", std::to_string(*b), "\" )"});
  };
  const auto negated = [](std::optional<int64_t> v) { return v ? std::optional<int64_t>(-*v) : std::nullopt; };
  if (lo && *lo >= 0) return positive(*lo, hi);
  if (hi && *hi <= 0) return cat({"( \"-\" ", positive(-*hi, negated(lo)), " )"});
  return cat({"( \"-\" ", positive(0, negated(lo)), " | ", positive(0, hi), " )"});
}

}  // namespace pensieve::grammar
