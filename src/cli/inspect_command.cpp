// `pensieve inspect FILE [--json] [--tensor NAME --values N]`: what a GGUF file holds, for people and scripts.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/command_registry.h"
#include "gguf/gguf_file.h"
#include "tensor/dequantize.h"

namespace pensieve::cli {
namespace {

using gguf::GgufFile;
using gguf::TensorInfo;
using gguf::Value;
using gguf::ValueType;
// Ordered: metadata keys come out in file order, as the converter wrote them.
using json = nlohmann::ordered_json;

constexpr size_t kMaxInlineArray = 16;  // longer arrays are summarised as {type, length}

json value_to_json(const Value& v) {
  return std::visit(
      [](const auto& x) -> json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, gguf::ArrayValue>) {
          if (x.items.size() > kMaxInlineArray) {
            return json{{"type", std::string(gguf::value_type_name(x.element_type))}, {"length", x.items.size()}};
          }
          json arr = json::array();
          for (const auto& item : x.items) arr.push_back(value_to_json(item));
          return arr;
        } else if constexpr (std::is_same_v<T, float>) {
          return static_cast<double>(x);
        } else {
          return x;
        }
      },
      v.data);
}

std::string value_to_text(const Value& v) {
  if (const auto* s = v.as_string()) {
    if (s->size() <= 60 && s->find('\n') == std::string::npos) return "\"" + *s + "\"";
    std::string head = s->substr(0, 40);
    std::replace(head.begin(), head.end(), '\n', ' ');
    return fmt::format("\"{}...\" ({} chars)", head, s->size());
  }
  if (const auto* a = v.as_array()) {
    if (a->items.size() > 8) return fmt::format("[{} x {}]", a->items.size(), gguf::value_type_name(a->element_type));
    std::string text = "[";
    for (size_t i = 0; i < a->items.size(); ++i) text += (i ? ", " : "") + value_to_text(a->items[i]);
    return text + "]";
  }
  if (auto b = v.as_bool(); b && v.type() == ValueType::Bool) return *b ? "true" : "false";
  if (v.type() == ValueType::Float32 || v.type() == ValueType::Float64) return fmt::format("{:g}", *v.as_float());
  if (auto i = v.as_int()) return std::to_string(*i);
  if (auto u = v.as_uint()) return std::to_string(*u);
  return "?";
}

std::string shape_text(const std::vector<uint64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

std::string bytes_text(uint64_t bytes) {
  if (bytes >= (1ULL << 30)) return fmt::format("{:.2f} GiB", static_cast<double>(bytes) / (1ULL << 30));
  if (bytes >= (1ULL << 20)) return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1ULL << 20));
  if (bytes >= (1ULL << 10)) return fmt::format("{:.1f} KiB", static_cast<double>(bytes) / (1ULL << 10));
  return fmt::format("{} B", bytes);
}

std::string to_json_text(const json& j) { return j.dump(2, ' ', false, json::error_handler_t::replace); }

// What a reader of the file most wants to know, gathered from the `<arch>.*` and tokenizer keys.
struct Summary {
  std::string architecture;
  std::vector<const gguf::MetadataEntry*> hyperparameters;  // the <arch>.* keys, in file order
  std::optional<uint64_t> vocab_size;
  std::optional<std::string> tokenizer_model, tokenizer_pre;
  bool chat_template = false;
  uint64_t weight_bytes = 0;
};

Summary summarize(const GgufFile& file) {
  Summary s;
  s.architecture = file.get_string("general.architecture").value_or("unknown");
  const std::string prefix = s.architecture + ".";
  for (const auto& entry : file.metadata()) {
    if (entry.key.starts_with(prefix)) s.hyperparameters.push_back(&entry);
  }
  s.tokenizer_model = file.get_string("tokenizer.ggml.model");
  s.tokenizer_pre = file.get_string("tokenizer.ggml.pre");
  s.chat_template = file.find("tokenizer.chat_template") != nullptr;
  if (const Value* tokens = file.find("tokenizer.ggml.tokens"); tokens && tokens->as_array()) {
    s.vocab_size = tokens->as_array()->items.size();
  } else if (auto n = file.get_uint(prefix + "vocab_size")) {
    s.vocab_size = *n;
  } else if (const TensorInfo* embd = file.find_tensor("token_embd.weight"); embd && embd->shape.size() == 2) {
    s.vocab_size = embd->shape[1];
  }
  for (const auto& t : file.tensors()) s.weight_bytes += t.n_bytes;
  return s;
}

json file_json(const GgufFile& file) {
  const Summary s = summarize(file);
  json metadata = json::object();
  for (const auto& entry : file.metadata()) metadata[entry.key] = value_to_json(entry.value);
  json hyper = json::object();
  for (const auto* entry : s.hyperparameters) hyper[entry->key.substr(s.architecture.size() + 1)] = value_to_json(entry->value);
  json tensors = json::array();
  for (const auto& t : file.tensors()) {
    tensors.push_back({{"name", t.name}, {"type", std::string(gguf::type_name(t.type_id))}, {"shape", t.shape},
                       {"bytes", t.n_bytes}});
  }
  json tokenizer = {{"model", s.tokenizer_model ? json(*s.tokenizer_model) : json()},
                    {"pre", s.tokenizer_pre ? json(*s.tokenizer_pre) : json()},
                    {"vocab_size", s.vocab_size ? json(*s.vocab_size) : json()},
                    {"chat_template", s.chat_template}};
  return {{"file", file.name()},
          {"architecture", s.architecture},
          {"hyperparameters", hyper},
          {"tokenizer", tokenizer},
          {"metadata", metadata},
          {"tensors", tensors},
          {"weight_bytes", s.weight_bytes}};
}

void print_file(const GgufFile& file) {
  const Summary s = summarize(file);
  fmt::print("{}: GGUF v{}, {}, {} metadata keys, {} tensors\n", file.name(), file.version(),
             bytes_text(file.file_size()), file.metadata().size(), file.tensors().size());
  fmt::print("architecture: {}", s.architecture);
  if (auto name = file.get_string("general.name")) fmt::print(" ({})", *name);
  fmt::print("\n\nhyper-parameters:\n");
  const size_t prefix = s.architecture.size() + 1;
  for (const auto* entry : s.hyperparameters) {
    fmt::print("  {:<40} {}\n", entry->key.substr(prefix), value_to_text(entry->value));
  }
  if (auto ft = file.get_uint("general.file_type")) fmt::print("  {:<40} {}\n", "file_type (general)", *ft);
  fmt::print("\ntokenizer: {}", s.tokenizer_model.value_or("none"));
  if (s.tokenizer_pre) fmt::print(" (pre: {})", *s.tokenizer_pre);
  if (s.vocab_size) fmt::print(", {} tokens", *s.vocab_size);
  if (auto bos = file.get_uint("tokenizer.ggml.bos_token_id")) fmt::print(", bos {}", *bos);
  if (auto eos = file.get_uint("tokenizer.ggml.eos_token_id")) fmt::print(", eos {}", *eos);
  fmt::print("\nchat template: {}\n", s.chat_template ? "present" : "absent");

  fmt::print("\ntensors:\n");
  size_t width = 4;
  for (const auto& t : file.tensors()) width = std::max(width, t.name.size());
  for (const auto& t : file.tensors()) {
    fmt::print("  {:<{}}  {:<7} {:<20} {:>12}\n", t.name, width, gguf::type_name(t.type_id), shape_text(t.shape),
               t.n_bytes);
  }
  fmt::print("\nweight bytes: {} ({})\n", s.weight_bytes, bytes_text(s.weight_bytes));
}

struct TensorValues {
  std::vector<float> first;
  double sum = 0.0;
  double sum_sq = 0.0;
};

// Dequantizes the tensor a slab of whole rows at a time, so that large tensors never sit in memory as floats.
TensorValues read_values(const GgufFile& file, const TensorInfo& t, size_t n_first) {
  tensor::require_supported(t);
  const uint64_t elements = t.elements();
  const uint64_t row_len = t.shape.empty() ? 1 : t.shape[0];
  const auto row_bytes = gguf::bytes_for(t.type_id, row_len);
  if (!row_bytes || row_len == 0) throw CommandError{"tensor '" + t.name + "' has rows that are not whole blocks"};
  const uint64_t rows = elements / row_len;
  const uint64_t rows_per_slab = std::max<uint64_t>(1, (1u << 20) / row_len);
  const auto data = file.tensor_data(t);

  TensorValues out;
  std::vector<float> slab;
  for (uint64_t r = 0; r < rows; r += rows_per_slab) {
    const uint64_t n_rows = std::min(rows_per_slab, rows - r);
    slab.resize(n_rows * row_len);
    tensor::dequantize(t.type_id, data.subspan(r * *row_bytes, n_rows * *row_bytes), slab);
    for (float v : slab) {
      if (out.first.size() < n_first) out.first.push_back(v);
      out.sum += static_cast<double>(v);
      out.sum_sq += static_cast<double>(v) * static_cast<double>(v);
    }
  }
  return out;
}

int run_inspect(const std::string& path, bool as_json, const std::string& tensor_name, size_t n_values) {
  try {
    const GgufFile file = GgufFile::open(path);
    if (tensor_name.empty()) {
      if (as_json) {
        std::puts(to_json_text(file_json(file)).c_str());
      } else {
        print_file(file);
      }
      return 0;
    }
    const TensorInfo* t = file.find_tensor(tensor_name);
    if (!t) throw CommandError{path + ": no tensor named '" + tensor_name + "'"};
    const TensorValues v = read_values(file, *t, n_values);
    if (as_json) {
      json values = json::array();
      for (float x : v.first) values.push_back(static_cast<double>(x));
      const json out = {{"name", t->name}, {"type", std::string(gguf::type_name(t->type_id))}, {"shape", t->shape},
                        {"values", values}, {"sum", v.sum}, {"sum_sq", v.sum_sq}};
      std::puts(to_json_text(out).c_str());
    } else {
      fmt::print("{}  {}  {}  {} bytes\n", t->name, gguf::type_name(t->type_id), shape_text(t->shape), t->n_bytes);
      fmt::print("first {} values:", v.first.size());
      for (float x : v.first) fmt::print(" {:.9g}", x);
      fmt::print("\nsum: {:.17g}\nsum_sq: {:.17g}\n", v.sum, v.sum_sq);
    }
    return 0;
  } catch (const gguf::GgufError& e) {
    throw CommandError{e.what()};
  } catch (const tensor::UnsupportedTypeError& e) {
    throw CommandError{e.what()};
  } catch (const std::invalid_argument& e) {
    throw CommandError{path + ": " + e.what()};
  }
}

const RegisterCommand kInspect{
    "inspect", "Show a GGUF file's architecture, hyper-parameters, tokenizer and tensors", [](CLI::App& sub) {
      auto path = std::make_shared<std::string>();
      auto as_json = std::make_shared<bool>(false);
      auto tensor_name = std::make_shared<std::string>();
      auto n_values = std::make_shared<size_t>(16);
      sub.add_option("file", *path, "GGUF file")->required();
      sub.add_flag("--json", *as_json, "Print one JSON object");
      auto* tensor_opt = sub.add_option("--tensor", *tensor_name, "Dequantize this tensor: first values, sum, sum of squares");
      sub.add_option("--values", *n_values, "How many leading values to print with --tensor")->needs(tensor_opt);
      return [=] { return run_inspect(*path, *as_json, *tensor_name, *n_values); };
    }};

}  // namespace
}  // namespace pensieve::cli
