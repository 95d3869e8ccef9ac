#pragma once
// Hash map from token text to id that can be queried with a string_view (no temporary strings on lookups).
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace pensieve::tokenizer {

struct TextHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

using TextToId = std::unordered_map<std::string, int32_t, TextHash, std::equal_to<>>;

inline int32_t find_id(const TextToId& map, std::string_view text) {
  auto it = map.find(text);
  return it == map.end() ? -1 : it->second;
}

}  // namespace pensieve::tokenizer
