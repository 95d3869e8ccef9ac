#include "api/json_limits.h"

#include <string>
#include <vector>

#include "api/api_error.h"

namespace pensieve::api {

void check_json_limits(std::string_view body, const JsonLimits& limits) {
  // One entry per open bracket: whether it is an object, and how many keys it has had so far. Its size never
  // exceeds max_depth + 1, because going deeper throws first.
  struct Open {
    bool object;
    size_t keys;
  };
  std::vector<Open> open;
  bool in_string = false;
  bool escaped = false;
  for (const char c : body) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '{':
      case '[':
        if (static_cast<int>(open.size()) >= limits.max_depth) {
          throw ApiError(ErrorKind::InvalidRequest,
                         "request body is nested deeper than " + std::to_string(limits.max_depth) + " levels");
        }
        open.push_back({c == '{', 0});
        break;
      case '}':
      case ']':
        if (!open.empty()) open.pop_back();
        break;
      case ':':  // in an object, each key is followed by exactly one colon outside strings
        if (!open.empty() && open.back().object && ++open.back().keys > limits.max_object_keys) {
          throw ApiError(ErrorKind::InvalidRequest, "a JSON object in the request body has more than " +
                                                        std::to_string(limits.max_object_keys) + " keys");
        }
        break;
      default: break;
    }
  }
}

}  // namespace pensieve::api
