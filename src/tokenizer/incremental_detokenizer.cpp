#include "tokenizer/incremental_detokenizer.h"

namespace pensieve::tokenizer {

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool render_special,
                                               bool strip_leading_space)
    : tokenizer_(&tokenizer),
      render_special_(render_special),
      strip_space_(strip_leading_space && tokenizer.strips_leading_space()) {}

std::string_view IncrementalDetokenizer::push(int32_t id) {
  out_.clear();
  // The same hiding rule as decode(); the leading-space rule is carried across calls here.
  std::string_view piece = tokenizer_->token_piece(id);
  if (!render_special_ && hidden_unless_special(tokenizer_->token_kind(id))) return out_;
  if (strip_space_ && !piece.empty()) {
    if (piece.front() == ' ') piece.remove_prefix(1);
    strip_space_ = false;
  }
  for (char c : piece) assembler_.push(static_cast<uint8_t>(c), out_);
  return out_;
}

std::string_view IncrementalDetokenizer::finish() {
  out_.clear();
  assembler_.finish(out_);
  return out_;
}

}  // namespace pensieve::tokenizer
