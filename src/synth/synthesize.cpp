#include "synth/synthesize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <thread>

#include "gguf/gguf_writer.h"
#include "synth/random_normal.h"
#include "synth/tensor_layout.h"
#include "tensor/quantize.h"

namespace pensieve::synth {

using gguf::GgmlType;
using gguf::MetadataEntry;
using gguf::Value;

std::string size_label(uint64_t n) {
  double scaled = static_cast<double>(n) * 1e-3;
  const char* suffix = "K";
  if (n > 1'000'000'000'000ULL) scaled = static_cast<double>(n) * 1e-12, suffix = "T";
  else if (n > 1'000'000'000ULL) scaled = static_cast<double>(n) * 1e-9, suffix = "B";
  else if (n > 1'000'000ULL) scaled = static_cast<double>(n) * 1e-6, suffix = "M";
  // Two significant digits at least: "1.4M", "24M", "476K".
  const int integer_digits = static_cast<int>(std::to_string(static_cast<long long>(std::llround(scaled))).size());
  const int decimals = std::max(2 - integer_digits, 0);
  char text[64];
  std::snprintf(text, sizeof text, "%.*f%s", decimals, scaled, suffix);
  return text;
}

std::vector<MetadataEntry> model_metadata(const SynthOptions& options, const ImportedTokenizer& tokenizer,
                                          uint64_t n_parameters) {
  const ModelShape& s = options.shape;
  const std::string arch(arch_name(s.arch));
  std::vector<MetadataEntry> md;
  auto add = [&](std::string key, Value v) { md.push_back(MetadataEntry{std::move(key), std::move(v)}); };
  auto u32 = [](uint64_t v) { return Value{static_cast<uint32_t>(v)}; };
  auto f32 = [](double v) { return Value{static_cast<float>(v)}; };

  add("general.architecture", Value{arch});
  add("general.type", Value{std::string("model")});
  add("general.name", Value{s.display_name});
  add("general.size_label", Value{size_label(n_parameters)});
  add(arch + ".block_count", u32(s.layers));
  add(arch + ".context_length", u32(s.context));
  add(arch + ".embedding_length", u32(s.hidden));
  add(arch + ".feed_forward_length", u32(s.ffn));
  add(arch + ".attention.head_count", u32(s.heads));
  add(arch + ".attention.head_count_kv", u32(s.kv_heads));
  add(arch + ".rope.freq_base", f32(s.rope_theta));
  add(arch + ".attention.layer_norm_rms_epsilon", f32(s.rms_norm_eps));
  if (s.explicit_head_dim) {
    add(arch + ".attention.key_length", u32(*s.explicit_head_dim));
    add(arch + ".attention.value_length", u32(*s.explicit_head_dim));
  }
  add("general.file_type", u32(llama_file_type(options.type)));
  if (s.arch == Arch::Llama) {
    add(arch + ".vocab_size", u32(tokenizer.n_vocab));
    add(arch + ".rope.dimension_count", u32(s.head_dim()));
  }
  add("general.quantization_version", u32(2));
  md.insert(md.end(), tokenizer.entries.begin(), tokenizer.entries.end());
  return md;
}

namespace {

uint64_t elements_of(const std::vector<uint64_t>& shape) {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  return n;
}

// Fills rows [begin, end) of one tensor: random values (or constants), converted to `type`.
void fill_rows(const TensorPlan& plan, GgmlType type, uint64_t seed, uint64_t tensor_index, uint64_t begin,
               uint64_t end, uint64_t row_bytes, bool zero_norm, std::span<std::byte> out) {
  const uint64_t row_len = plan.shape[0];
  std::vector<float> row(row_len);
  for (uint64_t r = begin; r < end; ++r) {
    if (plan.role == TensorRole::Norm) {
      std::fill(row.begin(), row.end(), zero_norm ? 0.0f : 1.0f);
    } else {
      NormalGenerator(seed, tensor_index, r).fill(row, kWeightStddev);
    }
    tensor::quantize(type, row, out.subspan(r * row_bytes, row_bytes));
  }
}

void fill_tensor(const TensorPlan& plan, GgmlType type, uint64_t seed, uint64_t tensor_index, unsigned threads,
                 const std::vector<float>& rope_factors, bool zero_output_norm, std::span<std::byte> out) {
  const bool zero_norm = zero_output_norm && plan.name == "output_norm.weight";
  if (plan.role == TensorRole::RopeFreqs) {
    tensor::quantize(type, rope_factors, out);
    return;
  }
  const uint64_t row_len = plan.shape[0];
  const uint64_t rows = elements_of(plan.shape) / row_len;
  const uint64_t row_bytes = out.size() / rows;
  constexpr uint64_t kMinElementsPerThread = 1 << 16;
  const uint64_t useful = std::max<uint64_t>(1, elements_of(plan.shape) / kMinElementsPerThread);
  const uint64_t n_threads = std::min<uint64_t>({threads == 0 ? 1 : threads, useful, rows});
  if (n_threads <= 1) {
    fill_rows(plan, type, seed, tensor_index, 0, rows, row_bytes, zero_norm, out);
    return;
  }
  std::vector<std::exception_ptr> errors(n_threads);
  std::vector<std::thread> workers;
  for (uint64_t t = 0; t < n_threads; ++t) {
    const uint64_t begin = rows * t / n_threads, end = rows * (t + 1) / n_threads;
    workers.emplace_back([&, t, begin, end] {
      try {
        fill_rows(plan, type, seed, tensor_index, begin, end, row_bytes, zero_norm, out);
      } catch (...) {
        errors[t] = std::current_exception();
      }
    });
  }
  for (auto& w : workers) w.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace

SynthSummary synthesize(const SynthOptions& options, const ImportedTokenizer& tokenizer,
                        const std::filesystem::path& out) {
  const ModelShape& shape = options.shape;
  const std::vector<TensorPlan> plan = tensor_layout(shape, tokenizer.n_vocab);
  const std::vector<float> rope_factors = llama3_rope_factors(shape);

  SynthSummary summary;
  summary.n_tensors = plan.size();
  summary.n_vocab = tokenizer.n_vocab;
  for (const auto& t : plan) summary.n_parameters += elements_of(t.shape);

  gguf::GgufWriter writer;
  for (auto& entry : model_metadata(options, tokenizer, summary.n_parameters)) {
    writer.set(std::move(entry.key), std::move(entry.value));
  }
  for (uint64_t i = 0; i < plan.size(); ++i) {
    const TensorPlan& t = plan[i];
    const GgmlType type = tensor_type_for(options.type, t, shape);
    if (!tensor::can_quantize(type)) {
      throw std::runtime_error("cannot write tensor '" + t.name + "' as " +
                               std::string(gguf::type_name(static_cast<uint32_t>(type))) + ": no quantizer for it");
    }
    const auto bytes = gguf::bytes_for(static_cast<uint32_t>(type), elements_of(t.shape));
    if (!bytes) {
      throw std::runtime_error("tensor '" + t.name + "' does not fit " +
                               std::string(gguf::type_name(static_cast<uint32_t>(type))) + " blocks");
    }
    summary.weight_bytes += *bytes;
    writer.add_tensor(t.name, type, t.shape,
                      [&plan, &rope_factors, i, type, seed = options.seed, threads = options.threads,
                       zero = options.zero_output_norm](std::span<std::byte> buffer) {
                        fill_tensor(plan[i], type, seed, i, threads, rope_factors, zero, buffer);
                      });
  }
  writer.write(out);
  return summary;
}

}  // namespace pensieve::synth
