#include "grammar/utf8_ranges.h"

#include <algorithm>
#include <string>

#include "tokenizer/utf8.h"

namespace pensieve::grammar {
namespace {

constexpr uint32_t kMaxCodePoint = 0x10FFFF;

std::vector<CodePointRange> normalized(std::vector<CodePointRange> ranges) {
  std::vector<CodePointRange> out;
  for (auto& [lo, hi] : ranges) hi = std::min(hi, kMaxCodePoint);
  std::sort(ranges.begin(), ranges.end());
  for (const auto& [lo, hi] : ranges) {
    if (lo > hi) continue;
    if (!out.empty() && lo <= out.back().second + 1) {
      out.back().second = std::max(out.back().second, hi);
    } else {
      out.push_back({lo, hi});
    }
  }
  return out;
}

// lo..hi share one encoding length. Splits until every byte position of the range spans a plain byte range.
void split_same_length(uint32_t lo, uint32_t hi, int length, std::vector<std::vector<ByteSet>>& out) {
  for (int i = 1; i < length; ++i) {
    const uint32_t m = (1u << (6 * i)) - 1;
    if ((lo & ~m) == (hi & ~m)) continue;
    if ((lo & m) != 0) {
      split_same_length(lo, lo | m, length, out);
      split_same_length((lo | m) + 1, hi, length, out);
      return;
    }
    if ((hi & m) != m) {
      split_same_length(lo, (hi & ~m) - 1, length, out);
      split_same_length(hi & ~m, hi, length, out);
      return;
    }
  }
  std::string a, b;
  tokenizer::append_utf8(a, lo);
  tokenizer::append_utf8(b, hi);
  std::vector<ByteSet> seq(static_cast<size_t>(length));
  for (size_t j = 0; j < seq.size(); ++j) {
    for (int v = static_cast<uint8_t>(a[j]); v <= static_cast<uint8_t>(b[j]); ++v) seq[j].set(static_cast<size_t>(v));
  }
  out.push_back(std::move(seq));
}

}  // namespace

std::vector<CodePointRange> complement(std::vector<CodePointRange> ranges) {
  ranges.push_back({0xD800, 0xDFFF});
  ranges = normalized(std::move(ranges));
  std::vector<CodePointRange> out;
  uint32_t next = 0;
  for (const auto& [lo, hi] : ranges) {
    if (lo > next) out.push_back({next, lo - 1});
    next = hi + 1;
  }
  if (next <= kMaxCodePoint) out.push_back({next, kMaxCodePoint});
  return out;
}

std::vector<std::vector<ByteSet>> utf8_sequences(const std::vector<CodePointRange>& ranges) {
  std::vector<std::vector<ByteSet>> out;
  ByteSet ascii;
  static constexpr uint32_t kLengthEnds[] = {0x7F, 0x7FF, 0xFFFF, kMaxCodePoint};
  for (auto [lo, hi] : normalized(ranges)) {
    // Cut out the surrogates, then cut at each encoding-length boundary.
    std::vector<CodePointRange> pieces;
    if (lo < 0xD800 && hi > 0xDFFF) {
      pieces = {{lo, 0xD7FF}, {0xE000, hi}};
    } else if (lo >= 0xD800 && hi <= 0xDFFF) {
      continue;
    } else if (lo >= 0xD800 && lo <= 0xDFFF) {
      pieces = {{0xE000, hi}};
    } else if (hi >= 0xD800 && hi <= 0xDFFF) {
      pieces = {{lo, 0xD7FF}};
    } else {
      pieces = {{lo, hi}};
    }
    for (auto [a, b] : pieces) {
      uint32_t start = 0;
      for (int len = 1; len <= 4; ++len) {
        const uint32_t end = kLengthEnds[len - 1];
        const uint32_t from = std::max(a, start), to = std::min(b, end);
        start = end + 1;
        if (from > to) continue;
        if (len == 1) {
          for (uint32_t c = from; c <= to; ++c) ascii.set(c);
        } else {
          split_same_length(from, to, len, out);
        }
      }
    }
  }
  if (ascii.any()) out.insert(out.begin(), std::vector<ByteSet>{ascii});
  return out;
}

}  // namespace pensieve::grammar
