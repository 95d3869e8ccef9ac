// GgufWriter: serializes GGUF v3. The layout it produces is the one gguf_parser.cpp accepts: tensor data starts
// at the header's end rounded up to the alignment, and every tensor starts aligned (zero padding in between).
// `general.alignment` is written only when the alignment is not the format's default of 32, as the spec allows.
#include "gguf/gguf_writer.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <memory>

namespace pensieve::gguf {
namespace {

static_assert(std::endian::native == std::endian::little, "the writer assumes a little-endian host");

constexpr uint64_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;
constexpr std::string_view kAlignmentKey = "general.alignment";

class ByteSink {
 public:
  template <class T>
  void scalar(T v) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    bytes_.insert(bytes_.end(), p, p + sizeof(T));
  }
  void string(std::string_view s) {
    scalar<uint64_t>(s.size());
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    bytes_.insert(bytes_.end(), p, p + s.size());
  }
  void value(const Value& v) {
    std::visit(
        [this](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, std::string>) {
            string(x);
          } else if constexpr (std::is_same_v<T, ArrayValue>) {
            scalar<uint32_t>(static_cast<uint32_t>(x.element_type));
            scalar<uint64_t>(x.items.size());
            for (const Value& item : x.items) value(item);
          } else if constexpr (std::is_same_v<T, bool>) {
            scalar<uint8_t>(x ? 1 : 0);
          } else {
            scalar<T>(x);
          }
        },
        v.data);
  }
  void pad_to(uint64_t alignment) { bytes_.resize((bytes_.size() + alignment - 1) / alignment * alignment); }
  const std::vector<std::byte>& bytes() const { return bytes_; }

 private:
  std::vector<std::byte> bytes_;
};

// Arrays must be homogeneous for the file to be readable; say which key is not.
void check_homogeneous(const std::string& key, const Value& v, uint32_t depth) {
  const ArrayValue* a = v.as_array();
  if (!a) return;
  if (depth > 8) throw GgufError(fmt::format("GGUF writer: metadata '{}': arrays nested deeper than 8 levels", key));
  for (const Value& item : a->items) {
    if (item.type() != a->element_type) {
      throw GgufError(fmt::format("GGUF writer: metadata '{}': array of {} holds a {}", key,
                                  value_type_name(a->element_type), value_type_name(item.type())));
    }
    check_homogeneous(key, item, depth + 1);
  }
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

GgufWriter::GgufWriter(uint64_t alignment) : alignment_(alignment) {
  if (!std::has_single_bit(alignment)) {
    throw GgufError(fmt::format("GGUF writer: alignment {} is not a nonzero power of two", alignment));
  }
}

void GgufWriter::set(std::string key, Value value) {
  check_homogeneous(key, value, 1);
  auto it = std::find_if(metadata_.begin(), metadata_.end(), [&](const MetadataEntry& e) { return e.key == key; });
  if (it != metadata_.end()) {
    it->value = std::move(value);
  } else {
    metadata_.push_back(MetadataEntry{std::move(key), std::move(value)});
  }
}

namespace {
template <class T>
Value make_value(T v) {
  return Value{Value::Storage(std::in_place_type<T>, std::move(v))};
}

template <class T>
ArrayValue array_of(ValueType type, std::vector<T> items) {
  ArrayValue a;
  a.element_type = type;
  a.items.reserve(items.size());
  for (T& x : items) a.items.push_back(make_value(std::move(x)));
  return a;
}
}  // namespace

void GgufWriter::set_string(std::string key, std::string v) { set(std::move(key), make_value(std::move(v))); }
void GgufWriter::set_uint32(std::string key, uint32_t v) { set(std::move(key), make_value(v)); }
void GgufWriter::set_int32(std::string key, int32_t v) { set(std::move(key), make_value(v)); }
void GgufWriter::set_uint64(std::string key, uint64_t v) { set(std::move(key), make_value(v)); }
void GgufWriter::set_float32(std::string key, float v) { set(std::move(key), make_value(v)); }
void GgufWriter::set_bool(std::string key, bool v) { set(std::move(key), make_value(v)); }

void GgufWriter::set_string_array(std::string key, std::vector<std::string> v) {
  set(std::move(key), make_value(array_of(ValueType::String, std::move(v))));
}
void GgufWriter::set_int32_array(std::string key, std::vector<int32_t> v) {
  set(std::move(key), make_value(array_of(ValueType::Int32, std::move(v))));
}
void GgufWriter::set_float32_array(std::string key, std::vector<float> v) {
  set(std::move(key), make_value(array_of(ValueType::Float32, std::move(v))));
}

void GgufWriter::add_tensor(std::string name, GgmlType type, std::vector<uint64_t> shape, Fill fill) {
  auto type_id = static_cast<uint32_t>(type);
  auto traits = type_traits(type_id);
  if (!traits) throw GgufError(fmt::format("GGUF writer: tensor '{}': unknown type id {}", name, type_id));
  if (shape.size() > kMaxDims) {
    throw GgufError(fmt::format("GGUF writer: tensor '{}': {} dimensions, at most {}", name, shape.size(), kMaxDims));
  }
  if (std::any_of(tensors_.begin(), tensors_.end(), [&](const PendingTensor& t) { return t.name == name; })) {
    throw GgufError(fmt::format("GGUF writer: tensor '{}': added twice", name));
  }
  uint64_t elements = 1;
  for (uint64_t d : shape) {
    if (__builtin_mul_overflow(elements, d, &elements)) {
      throw GgufError(fmt::format("GGUF writer: tensor '{}': element count overflows", name));
    }
  }
  auto n_bytes = bytes_for(type_id, elements);
  if (!n_bytes || (!shape.empty() && shape[0] % traits->block_elements != 0)) {
    throw GgufError(fmt::format("GGUF writer: tensor '{}': shape [{}] does not fit type {} (blocks of {})", name,
                                fmt::join(shape, ", "), traits->name, traits->block_elements));
  }
  tensors_.push_back(PendingTensor{std::move(name), type, std::move(shape), *n_bytes, std::move(fill)});
}

void GgufWriter::write(const std::filesystem::path& path) const {
  std::vector<const MetadataEntry*> entries;
  for (const MetadataEntry& e : metadata_) entries.push_back(&e);
  MetadataEntry alignment_entry{std::string(kAlignmentKey), make_value(static_cast<uint32_t>(alignment_))};
  if (auto given = std::find_if(metadata_.begin(), metadata_.end(),
                                       [](const MetadataEntry& e) { return e.key == kAlignmentKey; });
      given != metadata_.end()) {
    if (given->value.as_uint() != alignment_) {
      throw GgufError(fmt::format("GGUF writer: metadata '{}' disagrees with the writer's alignment {}",
                                  kAlignmentKey, alignment_));
    }
  } else if (alignment_ != kDefaultAlignment) {
    if (alignment_ > UINT32_MAX) throw GgufError("GGUF writer: alignment does not fit the uint32 key");
    entries.push_back(&alignment_entry);
  }

  ByteSink head;
  head.scalar<uint32_t>(0x46554747);  // "GGUF" read as a little-endian uint32
  head.scalar<uint32_t>(3);
  head.scalar<uint64_t>(tensors_.size());
  head.scalar<uint64_t>(entries.size());
  for (const MetadataEntry* e : entries) {
    head.string(e->key);
    head.scalar<uint32_t>(static_cast<uint32_t>(e->value.type()));
    head.value(e->value);
  }
  uint64_t next_offset = 0;
  for (const PendingTensor& t : tensors_) {
    head.string(t.name);
    head.scalar<uint32_t>(static_cast<uint32_t>(t.shape.size()));
    for (uint64_t d : t.shape) head.scalar<uint64_t>(d);
    head.scalar<uint32_t>(static_cast<uint32_t>(t.type));
    head.scalar<uint64_t>(next_offset);
    next_offset = (next_offset + t.n_bytes + alignment_ - 1) / alignment_ * alignment_;
  }
  head.pad_to(alignment_);

  const std::filesystem::path temp = path.string() + fmt::format(".tmp-{}", getpid());
  auto fail = [&](std::string_view what) {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
    throw GgufError(fmt::format("{}: {}: {}", path.string(), what, std::strerror(errno)));
  };
  {
    std::unique_ptr<std::FILE, FileCloser> out(std::fopen(temp.c_str(), "wb"));
    if (!out) fail("cannot create temporary file");
    auto put = [&](const std::byte* p, size_t n) {
      if (n > 0 && std::fwrite(p, 1, n, out.get()) != n) fail("write failed");
    };
    put(head.bytes().data(), head.bytes().size());
    std::vector<std::byte> buffer;
    const std::vector<std::byte> zeros(alignment_);
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const PendingTensor& t = tensors_[i];
      buffer.assign(t.n_bytes, std::byte{0});
      try {
        if (t.fill) t.fill(std::span<std::byte>(buffer));
      } catch (...) {
        std::error_code ignored;
        std::filesystem::remove(temp, ignored);
        throw;
      }
      put(buffer.data(), buffer.size());
      uint64_t padding = (alignment_ - t.n_bytes % alignment_) % alignment_;
      put(zeros.data(), padding);
    }
    if (std::fflush(out.get()) != 0) fail("write failed");
    std::FILE* raw = out.release();
    if (std::fclose(raw) != 0) fail("close failed");
  }
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) {
    std::filesystem::remove(temp, ec);
    throw GgufError(fmt::format("{}: cannot rename the temporary file into place", path.string()));
  }
}

}  // namespace pensieve::gguf
