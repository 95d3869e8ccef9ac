#pragma once
// Read-only view of a GGUF file (v2 and v3): typed metadata, the tensor index, and tensor bytes straight
// from an mmap. Every count, offset and size is checked against the file; anything wrong throws GgufError
// with one line naming the file, the key or tensor, and what is wrong.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "gguf/ggml_type.h"

namespace pensieve::gguf {

class GgufError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// GGUF metadata value type ids, as written in the file.
enum class ValueType : uint32_t {
  UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7,
  String = 8, Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12,
};
std::string_view value_type_name(ValueType t);  // "uint32", "string", "array", ...

struct Value;
struct ArrayValue {
  ValueType element_type = ValueType::UInt8;
  std::vector<Value> items;  // nested arrays are allowed
  bool operator==(const ArrayValue&) const = default;
};

struct Value {
  using Storage = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool, std::string,
                               ArrayValue, uint64_t, int64_t, double>;
  Storage data;
  ValueType type() const { return static_cast<ValueType>(data.index()); }  // index order == ValueType order

  // Conversions that succeed only when the stored value fits; nullopt otherwise.
  std::optional<int64_t> as_int() const;      // any integer type (uint64 above INT64_MAX fails)
  std::optional<uint64_t> as_uint() const;    // any non-negative integer
  std::optional<double> as_float() const;     // float32/float64 and integers
  std::optional<bool> as_bool() const;
  const std::string* as_string() const;
  const ArrayValue* as_array() const;

  bool operator==(const Value&) const = default;  // same type and same value (floats compare as floats)
};

struct MetadataEntry {
  std::string key;
  Value value;
};

struct TensorInfo {
  std::string name;
  uint32_t type_id = 0;          // GgmlType value; may be one we cannot dequantize (refused later, by name)
  std::vector<uint64_t> shape;   // GGUF order: shape[0] is the innermost (contiguous) dimension
  uint64_t offset = 0;           // relative to the start of the data section
  uint64_t n_bytes = 0;          // computed from type and shape
  uint64_t elements() const;
};

class GgufFile {
 public:
  // Maps the file read-only. Throws GgufError.
  static GgufFile open(const std::filesystem::path& path);
  // Parses bytes the caller keeps alive (fuzzing, tests). `name` is used in error messages.
  static GgufFile parse(std::span<const std::byte> bytes, std::string name);

  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  ~GgufFile();

  const std::string& name() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t file_size() const { return bytes_.size(); }
  uint64_t data_offset() const { return data_offset_; }

  const std::vector<MetadataEntry>& metadata() const { return metadata_; }  // in file order
  const Value* find(std::string_view key) const;

  // Typed lookups: nullopt when the key is absent; GgufError when present with an incompatible type.
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<uint64_t> get_uint(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::vector<std::string>> get_string_array(std::string_view key) const;
  std::optional<std::vector<int64_t>> get_int_array(std::string_view key) const;
  std::optional<std::vector<double>> get_float_array(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in file order
  const TensorInfo* find_tensor(std::string_view name) const;
  // The tensor's bytes inside the mapping (already bounds-checked at open).
  std::span<const std::byte> tensor_data(const TensorInfo& t) const;
  // Says these mapped bytes will not be read again soon (a copy now serves): their pages leave this process's
  // resident set and are read from the file again if touched. Nothing for caller-owned bytes or bytes
  // outside the file.
  void release_pages(std::span<const std::byte> range) const;

 private:
  GgufFile() = default;
  struct Mapping;
  std::unique_ptr<Mapping> mapping_;  // null when parsing caller-owned bytes
  std::span<const std::byte> bytes_;
  std::string name_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<MetadataEntry> metadata_;
  std::vector<TensorInfo> tensors_;
  friend class GgufParser;
};

}  // namespace pensieve::gguf
