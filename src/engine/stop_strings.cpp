#include "engine/stop_strings.h"

#include <algorithm>

namespace pensieve::engine {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
}

std::optional<std::string> StopStringMatcher::push(std::string_view piece, std::string& release) {
  if (stops_.empty()) {
    release.append(piece);
    return std::nullopt;
  }
  pending_.append(piece);

  // Earliest full match; at equal positions the longest stop string.
  size_t best_pos = std::string::npos;
  const std::string* best = nullptr;
  for (const std::string& s : stops_) {
    const size_t pos = pending_.find(s);
    if (pos == std::string::npos) continue;
    if (pos < best_pos || (pos == best_pos && s.size() > best->size())) {
      best_pos = pos;
      best = &s;
    }
  }
  if (best) {
    release.append(pending_, 0, best_pos);
    pending_.clear();
    return *best;
  }

  // Hold back the longest tail of pending_ that some stop string starts with.
  size_t hold = 0;
  for (const std::string& s : stops_) {
    for (size_t len = std::min(s.size() - 1, pending_.size()); len > hold; --len) {
      if (std::string_view(pending_).substr(pending_.size() - len) == std::string_view(s).substr(0, len)) {
        hold = len;
        break;
      }
    }
  }
  release.append(pending_, 0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return std::nullopt;
}

void StopStringMatcher::flush(std::string& release) {
  release.append(pending_);
  pending_.clear();
}

}  // namespace pensieve::engine
