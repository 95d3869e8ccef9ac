// Metadata values: type names and the conversions documented in gguf_file.h.
#include <limits>
#include <type_traits>

#include "gguf/gguf_file.h"

namespace pensieve::gguf {

std::string_view value_type_name(ValueType t) {
  switch (t) {
    case ValueType::UInt8: return "uint8";
    case ValueType::Int8: return "int8";
    case ValueType::UInt16: return "uint16";
    case ValueType::Int16: return "int16";
    case ValueType::UInt32: return "uint32";
    case ValueType::Int32: return "int32";
    case ValueType::Float32: return "float32";
    case ValueType::Bool: return "bool";
    case ValueType::String: return "string";
    case ValueType::Array: return "array";
    case ValueType::UInt64: return "uint64";
    case ValueType::Int64: return "int64";
    case ValueType::Float64: return "float64";
  }
  return "unknown";
}

namespace {

// bool is an integral type to C++ but not an integer to GGUF: keep it out of the numeric conversions.
template <class T>
constexpr bool kIsGgufInteger = std::is_integral_v<T> && !std::is_same_v<T, bool>;

}  // namespace

std::optional<int64_t> Value::as_int() const {
  return std::visit(
      [](const auto& v) -> std::optional<int64_t> {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, uint64_t>) {
          if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
          return static_cast<int64_t>(v);
        } else if constexpr (kIsGgufInteger<T>) {
          return static_cast<int64_t>(v);
        } else {
          return std::nullopt;
        }
      },
      data);
}

std::optional<uint64_t> Value::as_uint() const {
  return std::visit(
      [](const auto& v) -> std::optional<uint64_t> {
        using T = std::decay_t<decltype(v)>;
        if constexpr (kIsGgufInteger<T>) {
          if constexpr (std::is_signed_v<T>) {
            if (v < 0) return std::nullopt;
          }
          return static_cast<uint64_t>(v);
        } else {
          return std::nullopt;
        }
      },
      data);
}

std::optional<double> Value::as_float() const {
  return std::visit(
      [](const auto& v) -> std::optional<double> {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_floating_point_v<T> || kIsGgufInteger<T>) {
          return static_cast<double>(v);
        } else {
          return std::nullopt;
        }
      },
      data);
}

std::optional<bool> Value::as_bool() const {
  if (const bool* b = std::get_if<bool>(&data)) return *b;
  return std::nullopt;
}

const std::string* Value::as_string() const { return std::get_if<std::string>(&data); }

const ArrayValue* Value::as_array() const { return std::get_if<ArrayValue>(&data); }

uint64_t TensorInfo::elements() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;  // the reader has already refused shapes whose product overflows
  return n;
}

}  // namespace pensieve::gguf
