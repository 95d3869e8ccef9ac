#include "api/json_fields.h"

#include <cmath>

#include "api/api_error.h"
#include "api/json_limits.h"

namespace pensieve::api {

Json parse_body(std::string_view body) {
  // The server checks its configured (tighter) limits first; these hold for every caller.
  check_json_limits(body, JsonLimits::ceiling());
  Json j;
  try {
    j = Json::parse(body.begin(), body.end());
  } catch (const Json::exception& e) {
    // parse_error for bad syntax, out_of_range for a number beyond double (1e400): both the client's fault.
    throw ApiError(ErrorKind::InvalidRequest, std::string("request body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw ApiError(ErrorKind::InvalidRequest, "request body must be a JSON object");
  return j;
}

std::string dump_json(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string type_name(const Json& j) {
  if (j.is_number()) return "a number";
  if (j.is_string()) return "a string";
  if (j.is_boolean()) return "a boolean";
  if (j.is_array()) return "an array";
  if (j.is_object()) return "an object";
  return "null";
}

Fields::Fields(const Json& object, std::string path) : object_(object), path_(std::move(path)) {
  if (!object_.is_object()) {
    throw invalid_field(path_, "must be an object, not " + type_name(object_));
  }
}

std::string Fields::path_of(std::string_view name) const {
  return path_.empty() ? std::string(name) : path_ + "." + std::string(name);
}

const Json* Fields::get(std::string_view name) const {
  auto it = object_.find(name);
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<std::string> Fields::string(std::string_view name) const {
  const Json* v = get(name);
  if (!v) return std::nullopt;
  if (!v->is_string()) throw invalid_field(path_of(name), "must be a string, not " + type_name(*v));
  return v->get<std::string>();
}

std::optional<bool> Fields::boolean(std::string_view name) const {
  const Json* v = get(name);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) throw invalid_field(path_of(name), "must be a boolean, not " + type_name(*v));
  return v->get<bool>();
}

std::optional<double> Fields::number(std::string_view name, double min, double max) const {
  const Json* v = get(name);
  if (!v) return std::nullopt;
  if (!v->is_number()) throw invalid_field(path_of(name), "must be a number, not " + type_name(*v));
  const double d = v->get<double>();
  if (!std::isfinite(d) || d < min || d > max) {
    throw invalid_field(path_of(name), "must be between " + Json(min).dump() + " and " + Json(max).dump());
  }
  return d;
}

std::optional<int64_t> Fields::integer(std::string_view name, int64_t min, int64_t max) const {
  const Json* v = get(name);
  if (!v) return std::nullopt;
  int64_t i = 0;
  if (v->is_number_integer()) {
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      throw invalid_field(path_of(name), "is out of range");
    }
    i = v->get<int64_t>();
  } else if (v->is_number_float() && std::isfinite(v->get<double>()) && std::floor(v->get<double>()) == v->get<double>() &&
             std::fabs(v->get<double>()) < 9e15) {
    i = static_cast<int64_t>(v->get<double>());  // 5.0 is an integer in JSON's eyes
  } else {
    throw invalid_field(path_of(name), "must be an integer, not " + type_name(*v));
  }
  if (i < min || i > max) {
    throw invalid_field(path_of(name), "must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
  return i;
}

const Json* Fields::array(std::string_view name) const {
  const Json* v = get(name);
  if (v && !v->is_array()) throw invalid_field(path_of(name), "must be an array, not " + type_name(*v));
  return v;
}

const Json* Fields::object(std::string_view name) const {
  const Json* v = get(name);
  if (v && !v->is_object()) throw invalid_field(path_of(name), "must be an object, not " + type_name(*v));
  return v;
}

std::string Fields::required_string(std::string_view name) const {
  auto s = string(name);
  if (!s) throw invalid_field(path_of(name), "is required");
  return *s;
}

const Json& Fields::required_array(std::string_view name) const {
  const Json* a = array(name);
  if (!a) throw invalid_field(path_of(name), "is required");
  return *a;
}

std::string requested_model(std::string_view body) {
  std::string name;
  bool model_key = false;  // the last top-level key was "model"
  // Keep only the outer object, so that its values reach this callback; each is looked at once, then dropped
  // (nested containers are skipped whole).
  const auto look = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (depth == 1 && event == nlohmann::json::parse_event_t::key) {
      model_key = parsed == "model";
    } else if (depth == 1 && event == nlohmann::json::parse_event_t::value && model_key && parsed.is_string()) {
      name = parsed.get<std::string>();
    }
    return (depth == 0 && event == nlohmann::json::parse_event_t::object_start) ||
           (depth == 1 && event == nlohmann::json::parse_event_t::key && model_key);
  };
  try {
    [[maybe_unused]] const nlohmann::json dropped = nlohmann::json::parse(body.begin(), body.end(), look, true);
  } catch (const nlohmann::json::exception&) {
    return {};
  }
  return name;
}

}  // namespace pensieve::api
