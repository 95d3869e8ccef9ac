// libFuzzer target: any byte string given to GgufFile::parse must either parse or throw GgufError — no crash,
// no sanitizer report, no other exception — and a parsed file must answer every lookup within its bytes.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "gguf/gguf_file.h"

using pensieve::gguf::GgufError;
using pensieve::gguf::GgufFile;

namespace {

volatile uint64_t g_sink;  // keeps the reads of tensor bytes from being optimized away

void keep(uint64_t v) { g_sink = g_sink + v; }

template <class F>
void tolerate_gguf_error(F&& f) {
  try {
    f();
  } catch (const GgufError&) {
  }
}

void exercise(const GgufFile& file) {
  for (const auto& entry : file.metadata()) {
    const std::string& key = entry.key;
    if (file.find(key) != &entry.value) __builtin_trap();  // keys are unique, so find() must return this entry
    tolerate_gguf_error([&] { (void)file.get_string(key); });
    tolerate_gguf_error([&] { (void)file.get_int(key); });
    tolerate_gguf_error([&] { (void)file.get_uint(key); });
    tolerate_gguf_error([&] { (void)file.get_float(key); });
    tolerate_gguf_error([&] { (void)file.get_bool(key); });
    tolerate_gguf_error([&] { (void)file.get_string_array(key); });
    tolerate_gguf_error([&] { (void)file.get_int_array(key); });
    tolerate_gguf_error([&] { (void)file.get_float_array(key); });
  }
  for (const auto& tensor : file.tensors()) {
    if (file.find_tensor(tensor.name) != &tensor) __builtin_trap();
    auto bytes = file.tensor_data(tensor);
    if (bytes.size() != tensor.n_bytes) __builtin_trap();
    if (!bytes.empty()) keep(static_cast<uint8_t>(bytes.front()) + static_cast<uint8_t>(bytes.back()));
    keep(tensor.elements());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  try {
    GgufFile file = GgufFile::parse(bytes, "fuzz.gguf");
    exercise(file);
  } catch (const GgufError&) {
  }
  return 0;
}
