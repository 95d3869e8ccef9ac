// Writes small valid GGUFs for the fuzzer to start from: one with every value type, nested arrays and tensors of
// several types, one with a non-default alignment, and shrunken copies of vocabulary-only fixtures (their
// metadata with each array cut to a few items), which give the fuzzer real key names and array shapes.
// Usage: make_seed_corpus OUT_DIR [VOCAB.gguf...]
#include <cstdio>
#include <filesystem>
#include <string>

#include "gguf/gguf_writer.h"

namespace fs = std::filesystem;
using namespace pensieve::gguf;

namespace {

template <class T>
Value value(T v) {
  return Value{Value::Storage(std::in_place_type<T>, std::move(v))};
}

void fill_pattern(std::span<std::byte> out) {
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::byte>(i * 37 + 11);
}

void write_all_types(const fs::path& path, uint64_t alignment) {
  GgufWriter w(alignment);
  w.set_string("general.architecture", "llama");
  w.set("u8", value<uint8_t>(200));
  w.set("i8", value<int8_t>(-100));
  w.set("u16", value<uint16_t>(60000));
  w.set("i16", value<int16_t>(-30000));
  w.set_uint32("llama.block_count", 1);
  w.set_int32("i32", -5);
  w.set_float32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.set_bool("flag", true);
  w.set_uint64("u64", 1ull << 40);
  w.set("i64", value<int64_t>(-(1ll << 40)));
  w.set("f64", value<double>(0.25));
  w.set_string_array("tokenizer.ggml.tokens", {"a", "b", "<s>"});
  w.set_int32_array("tokenizer.ggml.token_type", {1, 1, 3});
  w.set_float32_array("tokenizer.ggml.scores", {0.f, -1.f, -2.f});
  ArrayValue inner{ValueType::UInt16, {value<uint16_t>(1), value<uint16_t>(2)}};
  ArrayValue outer{ValueType::Array, {value(inner), value(inner)}};
  w.set("nested", value(outer));
  w.add_tensor("f32", GgmlType::F32, {4, 2}, fill_pattern);
  w.add_tensor("f16", GgmlType::F16, {8}, fill_pattern);
  w.add_tensor("q4_0", GgmlType::Q4_0, {32, 2}, fill_pattern);
  w.add_tensor("q8_0", GgmlType::Q8_0, {32}, fill_pattern);
  w.add_tensor("q4_k", GgmlType::Q4_K, {256}, fill_pattern);
  w.write(path);
}

ArrayValue shrink(const ArrayValue& a, size_t keep) {
  ArrayValue out{a.element_type, {}};
  for (size_t i = 0; i < a.items.size() && i < keep; ++i) {
    const Value& item = a.items[i];
    out.items.push_back(item.as_array() ? value(shrink(*item.as_array(), keep)) : item);
  }
  return out;
}

void write_shrunk_copy(const fs::path& source, const fs::path& path) {
  GgufFile file = GgufFile::open(source);
  GgufWriter w(file.alignment());
  for (const auto& entry : file.metadata()) {
    if (entry.key == "tokenizer.chat_template") continue;  // long text the fuzzer gains nothing from
    w.set(entry.key, entry.value.as_array() ? value(shrink(*entry.value.as_array(), 24)) : entry.value);
  }
  w.write(path);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR [VOCAB.gguf...]\n", argv[0]);
    return 2;
  }
  const fs::path out = argv[1];
  fs::create_directories(out);
  try {
    write_all_types(out / "all-types.gguf", 32);
    write_all_types(out / "all-types-align64.gguf", 64);
    for (int i = 2; i < argc; ++i) {
      write_shrunk_copy(argv[i], out / ("shrunk-" + fs::path(argv[i]).filename().string()));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
