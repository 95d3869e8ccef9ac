// Parses a GGUF byte image (v2/v3). The file is untrusted: every count, length and offset is checked against
// the bytes that remain before anything is allocated, so a hostile count cannot exhaust memory and a hostile
// nesting cannot exhaust the stack. Each failure is one line: "<file>: <subject>: <what is wrong>".
#include "gguf/gguf_parser.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <unordered_set>

namespace pensieve::gguf {
namespace {

static_assert(std::endian::native == std::endian::little, "the reader assumes a little-endian host");

constexpr uint32_t kMaxArrayDepth = 8;  // real files nest at most once; this bounds recursion
constexpr uint32_t kMaxDims = 4;        // GGML_MAX_DIMS
constexpr uint64_t kDefaultAlignment = 32;
constexpr std::string_view kAlignmentKey = "general.alignment";
// Smallest encodings, used to bound counts before allocating: a key/value pair is a key length (8), a
// value type (4) and at least one value byte; a tensor info is a name length (8), n_dims (4), type (4), offset (8).
constexpr uint64_t kMinMetadataEntryBytes = 8 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;

uint64_t min_encoded_bytes(ValueType t) {
  switch (t) {
    case ValueType::UInt8: case ValueType::Int8: case ValueType::Bool: return 1;
    case ValueType::UInt16: case ValueType::Int16: return 2;
    case ValueType::UInt32: case ValueType::Int32: case ValueType::Float32: return 4;
    case ValueType::UInt64: case ValueType::Int64: case ValueType::Float64: return 8;
    case ValueType::String: return 8;      // the length
    case ValueType::Array: return 4 + 8;   // element type and count
  }
  return 1;
}

// Cursor over the bytes, which knows what it is reading so that a failure can say so.
class Reader {
 public:
  Reader(std::span<const std::byte> bytes, const std::string& file) : bytes_(bytes), file_(file) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return bytes_.size() - pos_; }
  uint64_t size() const { return bytes_.size(); }

  void set_subject(std::string subject) { subject_ = std::move(subject); }
  void push_element(uint64_t i) { elements_.push_back(i); }
  void set_element(uint64_t i) { elements_.back() = i; }
  void pop_element() { elements_.pop_back(); }

  template <class T>
  T scalar() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  // A GGUF string: uint64 length, then that many bytes (no terminator). The view points into the bytes.
  std::string_view string_view() {
    uint64_t length = scalar<uint64_t>();
    if (length > remaining()) {
      fail(fmt::format("string of {} bytes at offset {} extends past end of file ({} bytes)", length, pos_,
                       bytes_.size()));
    }
    std::string_view s(reinterpret_cast<const char*>(bytes_.data() + pos_), length);
    pos_ += length;
    return s;
  }

  [[noreturn]] void fail(std::string_view what) const {
    throw GgufError(fmt::format("{}: {}{}: {}", file_, subject_, element_path(), what));
  }

 private:
  void need(uint64_t n) const {
    if (n > remaining()) {
      throw GgufError(fmt::format("{}: truncated: {}{} needs {} bytes at offset {}, file has {}", file_, subject_,
                                  element_path(), n, pos_, bytes_.size()));
    }
  }

  std::string element_path() const {
    std::string path;
    for (uint64_t i : elements_) path += fmt::format(" element #{}", i);
    return path;
  }

  std::span<const std::byte> bytes_;
  const std::string& file_;
  uint64_t pos_ = 0;
  std::string subject_ = "header";
  std::vector<uint64_t> elements_;  // indexes into the (nested) arrays being read
};

std::optional<uint64_t> checked_add(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

std::optional<uint64_t> align_up(uint64_t x, uint64_t alignment) {
  auto bumped = checked_add(x, alignment - 1);
  if (!bumped) return std::nullopt;
  return *bumped & ~(alignment - 1);
}

std::string shape_text(const std::vector<uint64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

// Bytes from the file as they may appear in a one-line message: control bytes escaped, long text cut.
std::string printable(std::string_view text, size_t max_chars = 96) {
  std::string out;
  for (char c : text.substr(0, max_chars)) {
    auto ch = static_cast<unsigned char>(c);
    if (ch < 0x20 || ch == 0x7f) {
      out += fmt::format("\\x{:02x}", ch);
    } else {
      out += c;
    }
  }
  if (text.size() > max_chars) out += fmt::format("... ({} bytes)", text.size());
  return out;
}

class Parser {
 public:
  Parser(std::span<const std::byte> bytes, const std::string& name) : bytes_(bytes), name_(name), r_(bytes, name) {}

  void run(uint32_t& version, uint64_t& alignment, uint64_t& data_offset, std::vector<MetadataEntry>& metadata,
           std::vector<TensorInfo>& tensors) {
    version = header();
    r_.set_subject("header");
    uint64_t tensor_count = r_.scalar<uint64_t>();
    uint64_t metadata_count = r_.scalar<uint64_t>();
    bound_count(metadata_count, kMinMetadataEntryBytes, "metadata entries");
    metadata.reserve(metadata_count);
    std::unordered_set<std::string_view> keys;
    for (uint64_t i = 0; i < metadata_count; ++i) {
      r_.set_subject(fmt::format("metadata key #{}", i));
      std::string_view key = r_.string_view();
      r_.set_subject(fmt::format("metadata '{}'", printable(key)));
      if (!keys.insert(key).second) r_.fail("duplicate key");
      metadata.push_back(MetadataEntry{std::string(key), read_value(read_value_type(), 0)});
    }
    alignment = read_alignment(metadata);

    r_.set_subject("header");
    bound_count(tensor_count, kMinTensorInfoBytes, "tensor infos");
    tensors.reserve(tensor_count);
    std::unordered_set<std::string_view> names;
    for (uint64_t i = 0; i < tensor_count; ++i) {
      r_.set_subject(fmt::format("tensor #{}", i));
      std::string_view name = r_.string_view();
      r_.set_subject(fmt::format("tensor '{}'", printable(name)));
      if (!names.insert(name).second) r_.fail("duplicate tensor name");
      tensors.push_back(read_tensor_info(name));
    }

    r_.set_subject("header");
    auto start = align_up(r_.pos(), alignment);
    if (!start) r_.fail(fmt::format("data section start overflows with alignment {}", alignment));
    data_offset = *start;
    check_tensor_placement(tensors, alignment, data_offset);
  }

 private:
  uint32_t header() {
    static constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
    if (bytes_.empty()) throw GgufError(fmt::format("{}: empty file (0 bytes), not a GGUF file", name_));
    if (bytes_.size() < 4 || std::memcmp(bytes_.data(), kMagic, 4) != 0) {
      throw GgufError(fmt::format("{}: not a GGUF file: starts with \"{}\", expected \"GGUF\"", name_,
                                  printable(std::string_view(reinterpret_cast<const char*>(bytes_.data()), std::min<size_t>(bytes_.size(), 4)))));
    }
    r_.scalar<uint32_t>();  // the magic
    uint32_t version = r_.scalar<uint32_t>();
    if (version == 1) {
      r_.fail("GGUF version 1 is not supported (it uses 32-bit counts); re-convert the model to GGUF v3");
    }
    if (version != 2 && version != 3) {
      bool swapped = __builtin_bswap32(version) == 2 || __builtin_bswap32(version) == 3;
      r_.fail(fmt::format("unsupported GGUF version {}{} (supported: 2 and 3)", version,
                          swapped ? ", which looks byte-swapped: a big-endian GGUF file?" : ""));
    }
    return version;
  }

  // Refuses a count whose smallest possible encoding would not fit in the rest of the file.
  void bound_count(uint64_t count, uint64_t min_bytes_each, std::string_view what) {
    if (count > r_.remaining() / min_bytes_each) {
      r_.fail(fmt::format("{} {} cannot fit in the {} bytes left at offset {} (each takes at least {} bytes)",
                          count, what, r_.remaining(), r_.pos(), min_bytes_each));
    }
  }

  ValueType read_value_type() {
    uint32_t id = r_.scalar<uint32_t>();
    if (id > static_cast<uint32_t>(ValueType::Float64)) r_.fail(fmt::format("unknown value type id {}", id));
    return static_cast<ValueType>(id);
  }

  template <class T>
  Value scalar_value() {
    return Value{Value::Storage(std::in_place_type<T>, r_.scalar<T>())};
  }

  Value read_value(ValueType type, uint32_t depth) {
    switch (type) {
      case ValueType::UInt8: return scalar_value<uint8_t>();
      case ValueType::Int8: return scalar_value<int8_t>();
      case ValueType::UInt16: return scalar_value<uint16_t>();
      case ValueType::Int16: return scalar_value<int16_t>();
      case ValueType::UInt32: return scalar_value<uint32_t>();
      case ValueType::Int32: return scalar_value<int32_t>();
      case ValueType::Float32: return scalar_value<float>();
      case ValueType::UInt64: return scalar_value<uint64_t>();
      case ValueType::Int64: return scalar_value<int64_t>();
      case ValueType::Float64: return scalar_value<double>();
      case ValueType::Bool: {
        uint8_t b = r_.scalar<uint8_t>();
        if (b > 1) r_.fail(fmt::format("bool value {} is neither 0 nor 1", b));
        return Value{Value::Storage(std::in_place_type<bool>, b == 1)};
      }
      case ValueType::String:
        return Value{Value::Storage(std::in_place_type<std::string>, r_.string_view())};
      case ValueType::Array:
        return Value{Value::Storage(std::in_place_type<ArrayValue>, read_array(depth + 1))};
    }
    r_.fail("unknown value type");
  }

  ArrayValue read_array(uint32_t depth) {
    if (depth > kMaxArrayDepth) r_.fail(fmt::format("arrays nested deeper than {} levels", kMaxArrayDepth));
    ArrayValue array;
    array.element_type = read_value_type();
    uint64_t count = r_.scalar<uint64_t>();
    bound_count(count, min_encoded_bytes(array.element_type),
                fmt::format("{} array elements", value_type_name(array.element_type)));
    array.items.reserve(count);
    r_.push_element(0);
    for (uint64_t i = 0; i < count; ++i) {
      r_.set_element(i);
      array.items.push_back(read_value(array.element_type, depth));
    }
    r_.pop_element();
    return array;
  }

  uint64_t read_alignment(const std::vector<MetadataEntry>& metadata) {
    auto it = std::find_if(metadata.begin(), metadata.end(),
                           [](const MetadataEntry& e) { return e.key == kAlignmentKey; });
    if (it == metadata.end()) return kDefaultAlignment;
    r_.set_subject(fmt::format("metadata '{}'", kAlignmentKey));
    auto alignment = it->value.as_uint();
    if (!alignment) {
      r_.fail(fmt::format("expected an unsigned integer, found {}", value_type_name(it->value.type())));
    }
    if (!std::has_single_bit(*alignment)) {
      r_.fail(fmt::format("alignment {} is not a nonzero power of two", *alignment));
    }
    return *alignment;
  }

  TensorInfo read_tensor_info(std::string_view name) {
    TensorInfo t;
    t.name = std::string(name);
    uint32_t n_dims = r_.scalar<uint32_t>();
    if (n_dims > kMaxDims) r_.fail(fmt::format("{} dimensions, at most {} are allowed", n_dims, kMaxDims));
    t.shape.resize(n_dims);
    for (uint64_t& d : t.shape) d = r_.scalar<uint64_t>();
    t.type_id = r_.scalar<uint32_t>();
    t.offset = r_.scalar<uint64_t>();

    uint64_t elements = 1;
    for (size_t i = 0; i < t.shape.size(); ++i) {
      if (t.shape[i] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        r_.fail(fmt::format("dimension {} is {}, larger than ggml allows", i, t.shape[i]));
      }
      if (__builtin_mul_overflow(elements, t.shape[i], &elements) ||
          elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        r_.fail(fmt::format("shape {} has more elements than ggml allows", shape_text(t.shape)));
      }
    }
    auto traits = type_traits(t.type_id);
    if (!traits) r_.fail(fmt::format("unknown tensor type id {}, so its size cannot be checked", t.type_id));
    if (!t.shape.empty() && t.shape[0] % traits->block_elements != 0) {
      r_.fail(fmt::format("shape {} does not fit type {}: the first dimension is not a multiple of its block "
                          "of {} elements", shape_text(t.shape), traits->name, traits->block_elements));
    }
    auto n_bytes = bytes_for(t.type_id, elements);
    if (!n_bytes) {
      r_.fail(fmt::format("shape {} of type {} has no valid byte size", shape_text(t.shape), traits->name));
    }
    t.n_bytes = *n_bytes;
    return t;
  }

  void check_tensor_placement(const std::vector<TensorInfo>& tensors, uint64_t alignment, uint64_t data_offset) {
    for (const TensorInfo& t : tensors) {
      r_.set_subject(fmt::format("tensor '{}'", printable(t.name)));
      if (t.offset % alignment != 0) {
        r_.fail(fmt::format("data offset {} is not a multiple of the alignment {}", t.offset, alignment));
      }
      auto start = checked_add(data_offset, t.offset);
      auto end = start ? checked_add(*start, t.n_bytes) : std::nullopt;
      if (!end || *end > bytes_.size()) {
        r_.fail(fmt::format("data [offset {}, {} bytes] extends past end of file ({} bytes)",
                            start ? fmt::format("{}", *start) : fmt::format("{}+{}", data_offset, t.offset),
                            t.n_bytes, bytes_.size()));
      }
    }
    // Overlap: neighbours in offset order must not share bytes. Empty tensors occupy nothing.
    std::vector<const TensorInfo*> by_offset;
    for (const TensorInfo& t : tensors) {
      if (t.n_bytes > 0) by_offset.push_back(&t);
    }
    std::sort(by_offset.begin(), by_offset.end(),
              [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
      const TensorInfo& prev = *by_offset[i - 1];
      const TensorInfo& next = *by_offset[i];
      if (prev.offset + prev.n_bytes > next.offset) {  // both in the file, so no overflow
        r_.set_subject(fmt::format("tensor '{}'", printable(next.name)));
        r_.fail(fmt::format("data [offset {}, {} bytes] overlaps tensor '{}' [offset {}, {} bytes]",
                            data_offset + next.offset, next.n_bytes, printable(prev.name), data_offset + prev.offset,
                            prev.n_bytes));
      }
    }
  }

  std::span<const std::byte> bytes_;
  const std::string& name_;
  Reader r_;
};

}  // namespace

void GgufParser::parse_into(GgufFile& file) {
  Parser parser(file.bytes_, file.name_);
  parser.run(file.version_, file.alignment_, file.data_offset_, file.metadata_, file.tensors_);
}

}  // namespace pensieve::gguf
