#include "tokenizer/incremental_detokenizer.h"

namespace pensieve::tokenizer {

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool render_special,
                                               bool strip_leading_space)
    : tokenizer_(&tokenizer),
      render_special_(render_special),
      strip_space_(strip_leading_space && tokenizer.strips_leading_space()) {}

std::string_view IncrementalDetokenizer::push(int32_t id) {
  out_.clear();
  // decode() of one id applies the same hiding rules; the leading-space rule is handled here across calls.
  std::string_view piece = tokenizer_->token_piece(id);
  TokenKind kind = tokenizer_->token_kind(id);
  bool hidden = kind == TokenKind::Control || kind == TokenKind::Unknown || kind == TokenKind::Unused;
  if (hidden && !render_special_) return out_;
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
