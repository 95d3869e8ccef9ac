#include "tokenizer/special_tokens.h"

#include <algorithm>

namespace pensieve::tokenizer {

namespace {

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

}  // namespace

SpecialTokenMatcher::SpecialTokenMatcher(const TokenizerSpec& spec) : by_first_byte_(256) {
  for (std::size_t id = 0; id < spec.tokens.size(); ++id) {
    TokenKind kind = spec.kinds[id];
    if (kind != TokenKind::Control && kind != TokenKind::UserDefined && kind != TokenKind::Unknown) continue;
    if (spec.tokens[id].empty()) continue;
    auto sid = static_cast<int32_t>(id);
    bool lstrip = std::find(spec.lstrip_ids.begin(), spec.lstrip_ids.end(), sid) != spec.lstrip_ids.end();
    bool rstrip = std::find(spec.rstrip_ids.begin(), spec.rstrip_ids.end(), sid) != spec.rstrip_ids.end();
    entries_.push_back({spec.tokens[id], sid, kind != TokenKind::UserDefined, lstrip, rstrip});
  }
  std::stable_sort(entries_.begin(), entries_.end(),
                   [](const Entry& a, const Entry& b) { return a.text.size() > b.text.size(); });
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    by_first_byte_[static_cast<uint8_t>(entries_[i].text[0])].push_back(static_cast<uint32_t>(i));
  }
}

void SpecialTokenMatcher::partition(std::string_view text, bool parse_special,
                                    std::vector<Fragment>& fragments) const {
  fragments.clear();
  uint32_t raw_begin = 0;
  auto close_raw = [&](uint32_t end) {
    if (end > raw_begin) fragments.push_back({-1, raw_begin, end});
  };
  std::size_t pos = 0;
  while (pos < text.size() && !entries_.empty()) {
    const Entry* found = nullptr;
    for (uint32_t index : by_first_byte_[static_cast<uint8_t>(text[pos])]) {
      const Entry& e = entries_[index];
      if (e.needs_parse_special && !parse_special) continue;
      if (text.compare(pos, e.text.size(), e.text) == 0) {
        found = &e;
        break;
      }
    }
    if (found == nullptr) {
      ++pos;
      continue;
    }
    auto raw_end = static_cast<uint32_t>(pos);
    if (found->lstrip) {
      while (raw_end > raw_begin && is_ascii_space(text[raw_end - 1])) --raw_end;
    }
    close_raw(raw_end);
    fragments.push_back({found->id, static_cast<uint32_t>(pos), static_cast<uint32_t>(pos + found->text.size())});
    pos += found->text.size();
    if (found->rstrip) {
      while (pos < text.size() && is_ascii_space(text[pos])) ++pos;
    }
    raw_begin = static_cast<uint32_t>(pos);
  }
  close_raw(static_cast<uint32_t>(text.size()));
}

}  // namespace pensieve::tokenizer
