#pragma once
// What the model listings (OpenAI /v1/models, Ollama /api/tags, /api/show, /api/ps) say about a model, whether
// it is resident or not: filled by the model registry, rendered by the API adapters.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pensieve::api {

// Read from the GGUF header once, before the model is ever loaded.
struct ModelFacts {
  uint64_t file_bytes = 0;
  uint64_t memory_bytes = 0;      // weights + KV pool + scratch as `pensieve plan` computes them
  int64_t modified_unix = 0;      // the file's modification time
  std::string architecture;       // "llama", "qwen2", ...
  uint64_t parameter_count = 0;
  std::string quantization;       // the file type, e.g. "Q4_K_M"
  int context_length = 0;
  std::string chat_template;      // the one the model is served with (its own, ChatML, or serve --chat-template)
};

struct ListedModel {
  std::string name;                   // the id clients use first
  std::vector<std::string> aliases;   // further names
  std::string path;
  ModelFacts facts;
  bool loaded = false;
  bool loading = false;
  uint64_t resident_bytes = 0;        // while loaded
  std::optional<int64_t> expires_unix;  // keep_alive: when an idle loaded model unloads (none: kept)
};

}  // namespace pensieve::api
