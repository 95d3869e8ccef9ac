#pragma once
// Typed reads of request-body fields. A wrong type or range is a 400 that names the field by its full path
// ("messages[2].content"), so a client learns exactly what to fix. A JSON null reads as absent.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace pensieve::api {

using Json = nlohmann::ordered_json;

// Parses a request body that must be a JSON object; malformed JSON, a number beyond double and a body beyond
// JsonLimits::ceiling() are each a 400.
Json parse_body(std::string_view body);

// Serializes without ever throwing on invalid UTF-8 (replaced by U+FFFD).
std::string dump_json(const Json& j);

class Fields {
 public:
  Fields(const Json& object, std::string path);  // `object` must outlive this; throws unless it is an object

  const Json* get(std::string_view name) const;  // nullptr when absent or null
  std::string path_of(std::string_view name) const;

  std::optional<std::string> string(std::string_view name) const;
  std::optional<bool> boolean(std::string_view name) const;
  std::optional<double> number(std::string_view name, double min, double max) const;
  std::optional<int64_t> integer(std::string_view name, int64_t min, int64_t max) const;
  const Json* array(std::string_view name) const;
  const Json* object(std::string_view name) const;

  std::string required_string(std::string_view name) const;
  const Json& required_array(std::string_view name) const;

 private:
  const Json& object_;
  std::string path_;
};

std::string type_name(const Json& j);

// The top-level "model" string of a request body without building the rest of it (the router needs the name
// before the model is loaded); empty when the body is not JSON or names no model as a string.
std::string requested_model(std::string_view body);  // "string", "number", ... for messages

}  // namespace pensieve::api
