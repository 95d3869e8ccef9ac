#pragma once
// Streaming detokenization: feed generated ids one at a time and get back only complete UTF-8 text. Bytes of
// a character split across tokens (byte-fallback <0xXX> tokens, or byte-level BPE pieces) are held until the
// character is complete. Concatenating every push() and the final finish() gives decode(ids) with ill-formed
// bytes replaced by U+FFFD (to_valid_utf8), i.e. exactly decode(ids) whenever that is valid UTF-8.
#include <cstdint>
#include <string>
#include <string_view>

#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace pensieve::tokenizer {

class IncrementalDetokenizer {
 public:
  // strip_leading_space: apply the SPM rule that drops the first token's leading space (what decode() does).
  // Pass false when the ids continue a prompt, so that " Paris" after "The capital is" keeps its space.
  explicit IncrementalDetokenizer(const Tokenizer& tokenizer, bool render_special = false,
                                  bool strip_leading_space = true);

  // Text completed by this token; valid until the next call. Throws TokenizerError on a bad id.
  std::string_view push(int32_t id);
  // End of stream: whatever is still held (an unfinished character becomes U+FFFD).
  std::string_view finish();
  // Whether bytes of an unfinished character are being held.
  bool holding() const { return assembler_.pending(); }

 private:
  const Tokenizer* tokenizer_;
  bool render_special_;
  bool strip_space_;
  Utf8Assembler assembler_;
  std::string out_;
};

}  // namespace pensieve::tokenizer
