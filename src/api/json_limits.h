#pragma once
// Bounds on the shape of a request body, checked on the raw bytes before any parser or recursive walk sees
// them: a body nested deeper than max_depth, or an object with more than max_object_keys keys, is a 400.
// Depth bounds every later recursion over the parsed value (copies, dumps, the chat template's conversion);
// the key count bounds the ordered JSON map, whose insertion is linear in the keys already there.
#include <cstddef>
#include <string_view>

namespace pensieve::api {

struct JsonLimits {
  int max_depth = 64;
  size_t max_object_keys = 1024;

  // The loosest bounds a server may be configured with; parse_body always applies them.
  static constexpr int kCeilingDepth = 512;
  static constexpr size_t kCeilingObjectKeys = size_t{1} << 16;
  static JsonLimits ceiling() { return {kCeilingDepth, kCeilingObjectKeys}; }
};

// Throws ApiError (InvalidRequest) when `body` goes beyond `limits`. Does not validate the JSON otherwise:
// a malformed body passes here and fails in the parser. Linear time, constant stack.
void check_json_limits(std::string_view body, const JsonLimits& limits);

}  // namespace pensieve::api
