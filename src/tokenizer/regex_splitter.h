#pragma once
// Pre-tokenization by Unicode regexes (PCRE2 in UTF + UCP mode, JIT-compiled once). Each pattern splits every
// piece the previous pattern produced; both the matches and the text between them are kept as pieces, in
// order ("isolated" splitting, as HF tokenizers and llama.cpp do).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pensieve::tokenizer {

struct Piece {
  uint32_t begin = 0;
  uint32_t end = 0;
};

class RegexSplitter {
 public:
  // Per-thread matching state (PCRE2 match data and JIT stack). Reused across calls to avoid allocation.
  class Scratch {
   public:
    explicit Scratch(const RegexSplitter& splitter);
    ~Scratch();
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;

   private:
    friend class RegexSplitter;
    struct State;
    std::unique_ptr<State> state_;
    std::vector<Piece> spare_;
  };

  // Throws TokenizerError naming the pattern when one does not compile.
  explicit RegexSplitter(const std::vector<std::string>& patterns);
  ~RegexSplitter();
  RegexSplitter(RegexSplitter&&) noexcept;
  RegexSplitter& operator=(RegexSplitter&&) noexcept;

  bool empty() const { return patterns_.empty(); }

  // Replaces `pieces` with the pieces of `text` (offsets into text). Invalid UTF-8 never matches a pattern,
  // so such bytes end up in the gaps and are still covered.
  void split(std::string_view text, Scratch& scratch, std::vector<Piece>& pieces) const;

 private:
  struct Compiled;
  std::vector<std::unique_ptr<Compiled>> patterns_;
};

// Rewrites `\s` / `\S` so that they also cover U+0085 (NEXT LINE), which the reference engines count as
// whitespace and PCRE2's UCP mode does not.
std::string widen_whitespace_classes(std::string_view pattern);

}  // namespace pensieve::tokenizer
