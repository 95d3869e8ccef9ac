#pragma once
// Stop strings over streamed text. Text arrives in pieces (whatever the detokenizer completed); a piece is
// released only once it cannot be the start of a stop string, so a stop string spanning several tokens is
// found and never shown. When one matches, the text before it is released and the rest is dropped.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pensieve::engine {

class StopStringMatcher {
 public:
  explicit StopStringMatcher(std::vector<std::string> stops);

  // Adds `piece`; appends to `release` the text that is now safe to show. Returns the stop string that
  // matched (earliest in the text, the longest at that position), after which nothing more may be pushed.
  std::optional<std::string> push(std::string_view piece, std::string& release);
  // End of stream without a match: everything held back.
  void flush(std::string& release);
  size_t held() const { return pending_.size(); }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
};

}  // namespace pensieve::engine
