#pragma once
// Writes GGUF v3 files: metadata in insertion order, then the tensor index, then aligned tensor data.
// Tensor bytes are streamed from callbacks so that multi-GB models never sit in memory at once.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "gguf/gguf_file.h"

namespace pensieve::gguf {

class GgufWriter {
 public:
  explicit GgufWriter(uint64_t alignment = 32);

  void set(std::string key, Value value);  // replaces an existing key, keeps its position
  void set_string(std::string key, std::string v);
  void set_uint32(std::string key, uint32_t v);
  void set_int32(std::string key, int32_t v);
  void set_uint64(std::string key, uint64_t v);
  void set_float32(std::string key, float v);
  void set_bool(std::string key, bool v);
  void set_string_array(std::string key, std::vector<std::string> v);
  void set_int32_array(std::string key, std::vector<int32_t> v);
  void set_float32_array(std::string key, std::vector<float> v);

  // `fill` receives a buffer of exactly the tensor's byte size and must fill it. Called during write(),
  // in tensor order, one tensor at a time.
  using Fill = std::function<void(std::span<std::byte>)>;
  void add_tensor(std::string name, GgmlType type, std::vector<uint64_t> shape, Fill fill);

  // Writes the file (to a temporary beside it, then renamed). Throws GgufError on I/O failure.
  void write(const std::filesystem::path& path) const;

 private:
  struct PendingTensor {
    std::string name;
    GgmlType type;
    std::vector<uint64_t> shape;
    uint64_t n_bytes;
    Fill fill;
  };
  uint64_t alignment_;
  std::vector<MetadataEntry> metadata_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace pensieve::gguf
