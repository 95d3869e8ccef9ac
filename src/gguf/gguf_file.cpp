// GgufFile: owns the read-only mapping (or borrows caller bytes) and answers typed lookups.
#include "gguf/gguf_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "gguf/gguf_parser.h"

namespace pensieve::gguf {

struct GgufFile::Mapping {
  void* address = nullptr;
  size_t size = 0;
  Mapping(void* a, size_t s) : address(a), size(s) {}
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() { munmap(address, size); }
};

namespace {

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

GgufFile GgufFile::open(const std::filesystem::path& path) {
  const std::string name = path.string();
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw GgufError(fmt::format("{}: cannot open: {}", name, std::strerror(errno)));
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) throw GgufError(fmt::format("{}: cannot stat: {}", name, std::strerror(errno)));
  if (S_ISDIR(st.st_mode)) throw GgufError(fmt::format("{}: is a directory, not a GGUF file", name));
  if (!S_ISREG(st.st_mode)) throw GgufError(fmt::format("{}: not a regular file", name));
  if (st.st_size == 0) throw GgufError(fmt::format("{}: empty file (0 bytes), not a GGUF file", name));

  const auto size = static_cast<size_t>(st.st_size);
  void* address = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (address == MAP_FAILED) throw GgufError(fmt::format("{}: cannot map: {}", name, std::strerror(errno)));

  GgufFile file;
  file.mapping_ = std::make_unique<Mapping>(address, size);
  file.bytes_ = std::span<const std::byte>(static_cast<const std::byte*>(address), size);
  file.name_ = name;
  GgufParser::parse_into(file);
  return file;
}

GgufFile GgufFile::parse(std::span<const std::byte> bytes, std::string name) {
  GgufFile file;
  file.bytes_ = bytes;
  file.name_ = std::move(name);
  GgufParser::parse_into(file);
  return file;
}

GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

const Value* GgufFile::find(std::string_view key) const {
  auto it = std::find_if(metadata_.begin(), metadata_.end(), [&](const MetadataEntry& e) { return e.key == key; });
  return it == metadata_.end() ? nullptr : &it->value;
}

const TensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = std::find_if(tensors_.begin(), tensors_.end(), [&](const TensorInfo& t) { return t.name == name; });
  return it == tensors_.end() ? nullptr : &*it;
}

void GgufFile::release_pages(std::span<const std::byte> range) const {
  if (!mapping_ || range.empty() || range.data() < bytes_.data() || range.data() + range.size() > bytes_.data() + bytes_.size()) {
    return;
  }
  // Only whole pages inside the range: a partial page at either end may hold bytes still in use.
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = (reinterpret_cast<uintptr_t>(range.data()) + page - 1) & ~(page - 1);
  const auto end = (reinterpret_cast<uintptr_t>(range.data()) + range.size()) & ~(page - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

std::span<const std::byte> GgufFile::tensor_data(const TensorInfo& t) const {
  // Checked at open for this file's own tensors; re-checked so that a TensorInfo from elsewhere cannot escape.
  uint64_t start = 0;
  uint64_t end = 0;
  if (__builtin_add_overflow(data_offset_, t.offset, &start) || __builtin_add_overflow(start, t.n_bytes, &end) ||
      end > bytes_.size()) {
    throw GgufError(fmt::format("{}: tensor '{}': data [offset {}+{}, {} bytes] is outside the file ({} bytes)",
                                name_, t.name, data_offset_, t.offset, t.n_bytes, bytes_.size()));
  }
  return bytes_.subspan(start, t.n_bytes);
}

namespace {

[[noreturn]] void wrong_type(const std::string& file, std::string_view key, std::string_view expected,
                             const Value& v) {
  std::string found(value_type_name(v.type()));
  if (const ArrayValue* a = v.as_array()) found += fmt::format(" of {}", value_type_name(a->element_type));
  throw GgufError(fmt::format("{}: metadata '{}': expected {}, found {}", file, key, expected, found));
}

[[noreturn]] void out_of_range(const std::string& file, std::string_view key, std::string_view expected) {
  throw GgufError(fmt::format("{}: metadata '{}': value does not fit {}", file, key, expected));
}

bool is_integer_type(ValueType t) {
  switch (t) {
    case ValueType::UInt8: case ValueType::Int8: case ValueType::UInt16: case ValueType::Int16:
    case ValueType::UInt32: case ValueType::Int32: case ValueType::UInt64: case ValueType::Int64:
      return true;
    default:
      return false;
  }
}

bool is_number_type(ValueType t) {
  return is_integer_type(t) || t == ValueType::Float32 || t == ValueType::Float64;
}

}  // namespace

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (const std::string* s = v->as_string()) return *s;
  wrong_type(name_, key, "a string", *v);
}

std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (!is_integer_type(v->type())) wrong_type(name_, key, "an integer", *v);
  if (auto i = v->as_int()) return i;
  out_of_range(name_, key, "int64");
}

std::optional<uint64_t> GgufFile::get_uint(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (!is_integer_type(v->type())) wrong_type(name_, key, "an unsigned integer", *v);
  if (auto u = v->as_uint()) return u;
  out_of_range(name_, key, "an unsigned integer (it is negative)");
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (auto f = v->as_float()) return f;
  wrong_type(name_, key, "a number", *v);
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (auto b = v->as_bool()) return b;
  wrong_type(name_, key, "a bool", *v);
}

std::optional<std::vector<std::string>> GgufFile::get_string_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  const ArrayValue* a = v->as_array();
  if (!a || a->element_type != ValueType::String) wrong_type(name_, key, "an array of strings", *v);
  std::vector<std::string> out;
  out.reserve(a->items.size());
  for (const Value& item : a->items) out.push_back(*item.as_string());
  return out;
}

std::optional<std::vector<int64_t>> GgufFile::get_int_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  const ArrayValue* a = v->as_array();
  if (!a || !is_integer_type(a->element_type)) wrong_type(name_, key, "an array of integers", *v);
  std::vector<int64_t> out;
  out.reserve(a->items.size());
  for (const Value& item : a->items) {
    auto i = item.as_int();
    if (!i) out_of_range(name_, key, "int64");
    out.push_back(*i);
  }
  return out;
}

std::optional<std::vector<double>> GgufFile::get_float_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  const ArrayValue* a = v->as_array();
  if (!a || !is_number_type(a->element_type)) wrong_type(name_, key, "an array of numbers", *v);
  std::vector<double> out;
  out.reserve(a->items.size());
  for (const Value& item : a->items) out.push_back(*item.as_float());
  return out;
}

}  // namespace pensieve::gguf
