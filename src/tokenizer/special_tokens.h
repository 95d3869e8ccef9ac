#pragma once
// Finds added / special tokens written in text and cuts the text around them, before any regex or BPE sees
// it. At each position the longest token that matches wins; text outside tokens is left as raw fragments.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer_spec.h"

namespace pensieve::tokenizer {

struct Fragment {
  int32_t token = -1;  // >= 0: a matched special token; -1: raw text [begin, end)
  uint32_t begin = 0;
  uint32_t end = 0;
};

class SpecialTokenMatcher {
 public:
  SpecialTokenMatcher() = default;
  SpecialTokenMatcher(const TokenizerSpec& spec);

  // Replaces `fragments` with the partition of `text`. Control and unknown tokens take part only when
  // parse_special is set; user-defined tokens always do.
  void partition(std::string_view text, bool parse_special, std::vector<Fragment>& fragments) const;

 private:
  struct Entry {
    std::string text;
    int32_t id;
    bool needs_parse_special;
    bool lstrip;
    bool rstrip;
  };
  std::vector<Entry> entries_;                     // longest first
  std::vector<std::vector<uint32_t>> by_first_byte_;  // 256 buckets of entry indexes, longest first
};

}  // namespace pensieve::tokenizer
