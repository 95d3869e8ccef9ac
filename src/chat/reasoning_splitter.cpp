#include "chat/reasoning_splitter.h"

#include <algorithm>
#include <utility>

namespace pensieve::chat {

namespace {

constexpr std::string_view kOpen = "<think>";
constexpr std::string_view kClose = "</think>";

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// How many trailing bytes of `s` could be the start of `tag`.
size_t partial_tag(std::string_view s, std::string_view tag) {
  for (size_t n = std::min(tag.size() - 1, s.size()); n > 0; --n) {
    if (s.substr(s.size() - n) == tag.substr(0, n)) return n;
  }
  return 0;
}

}  // namespace

ReasoningSplitter::ReasoningSplitter(bool starts_inside)
    : state_(starts_inside ? State::Thinking : State::Undecided) {}

void ReasoningSplitter::emit(OutputPiece::Kind kind, std::string text, std::vector<OutputPiece>& out) {
  if (!side_started_) {
    const size_t first = text.find_first_not_of(" \n\r\t");
    if (first == std::string::npos) return;
    text.erase(0, first);
    side_started_ = true;
  }
  if (kind == OutputPiece::Kind::Reasoning) {
    // Hold trailing whitespace: if </think> follows, it goes.
    text.insert(0, held_space_);
    size_t keep = text.size();
    while (keep > 0 && is_space(text[keep - 1])) --keep;
    held_space_ = text.substr(keep);
    text.resize(keep);
  }
  if (!text.empty()) out.push_back({kind, std::move(text), {}});
}

void ReasoningSplitter::push(std::string_view text, std::vector<OutputPiece>& out) {
  pending_.append(text);
  for (;;) {
    switch (state_) {
      case State::Undecided: {
        const size_t first = pending_.find_first_not_of(" \n\r\t");
        if (first == std::string::npos) return;
        const std::string_view rest = std::string_view(pending_).substr(first);
        if (rest.substr(0, kOpen.size()) == kOpen) {
          pending_.erase(0, first + kOpen.size());
          state_ = State::Thinking;
          side_started_ = false;
          continue;
        }
        if (rest.size() < kOpen.size() && kOpen.substr(0, rest.size()) == rest) return;
        state_ = State::Answering;
        side_started_ = true;  // no tags: the answer is passed through exactly
        continue;
      }
      case State::Thinking: {
        const size_t close = pending_.find(kClose);
        if (close != std::string::npos) {
          emit(OutputPiece::Kind::Reasoning, pending_.substr(0, close), out);
          held_space_.clear();
          pending_.erase(0, close + kClose.size());
          state_ = State::Answering;
          side_started_ = false;
          continue;
        }
        const size_t hold = partial_tag(pending_, kClose);
        emit(OutputPiece::Kind::Reasoning, pending_.substr(0, pending_.size() - hold), out);
        pending_.erase(0, pending_.size() - hold);
        return;
      }
      case State::Answering:
        emit(OutputPiece::Kind::Text, std::exchange(pending_, {}), out);
        return;
    }
  }
}

void ReasoningSplitter::finish(std::vector<OutputPiece>& out) {
  if (state_ == State::Undecided) {
    if (!pending_.empty()) out.push_back({OutputPiece::Kind::Text, std::exchange(pending_, {}), {}});
    return;
  }
  emit(state_ == State::Thinking ? OutputPiece::Kind::Reasoning : OutputPiece::Kind::Text, std::exchange(pending_, {}),
       out);
  held_space_.clear();
}

bool prompt_opens_reasoning(std::string_view prompt) {
  while (!prompt.empty() && is_space(prompt.back())) prompt.remove_suffix(1);
  return prompt.size() >= kOpen.size() && prompt.substr(prompt.size() - kOpen.size()) == kOpen;
}

}  // namespace pensieve::chat
