#pragma once
// Lowering code-point ranges to UTF-8 byte sequences, so that a character class becomes alternatives of
// byte-set runs (e.g. U+0080..U+07FF -> [C2-DF][80-BF]). Surrogates (U+D800..U+DFFF) are never produced.
#include <cstdint>
#include <utility>
#include <vector>

#include "grammar/grammar.h"

namespace pensieve::grammar {

using CodePointRange = std::pair<uint32_t, uint32_t>;  // inclusive

// Sorted, merged, surrogate-free complement of `ranges` within U+0000..U+10FFFF.
std::vector<CodePointRange> complement(std::vector<CodePointRange> ranges);

// Each inner vector is one alternative: one byte set per byte of the encoding. Together they match exactly the
// UTF-8 encodings of the code points in `ranges`.
std::vector<std::vector<ByteSet>> utf8_sequences(const std::vector<CodePointRange>& ranges);

}  // namespace pensieve::grammar
