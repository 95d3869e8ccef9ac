// GgufWriter output read back by GgufFile: every value type, nested arrays, tensors of several types, both the
// default and a larger alignment. Expected values are the ones the test put in.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"

namespace fs = std::filesystem;
using namespace pensieve::gguf;

namespace {

template <class T>
Value value(T v) {
  return Value{Value::Storage(std::in_place_type<T>, std::move(v))};
}

fs::path temp_dir() { return fs::temp_directory_path() / ("pensieve-gguf-test-" + std::to_string(::getpid())); }

fs::path temp_path(const std::string& name) {
  fs::create_directories(temp_dir());
  return temp_dir() / name;
}

// Removes the files these tests wrote once all tests are done.
class TempDirCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(temp_dir(), ignored);
  }
};
const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new TempDirCleanup);

std::vector<MetadataEntry> every_value_type() {
  ArrayValue u16{ValueType::UInt16, {value<uint16_t>(1), value<uint16_t>(65535)}};
  ArrayValue strings{ValueType::String, {value<std::string>("x"), value<std::string>(""), value<std::string>("é\n")}};
  ArrayValue nested{ValueType::Array, {value(u16), value(ArrayValue{ValueType::UInt16, {}})}};
  ArrayValue nested_strings{ValueType::Array, {value(strings)}};
  ArrayValue deep{ValueType::Array, {value(nested)}};
  return {
      {"u8", value<uint8_t>(255)},
      {"i8", value<int8_t>(-128)},
      {"u16", value<uint16_t>(65535)},
      {"i16", value<int16_t>(-32768)},
      {"u32", value<uint32_t>(4294967295u)},
      {"i32", value<int32_t>(std::numeric_limits<int32_t>::min())},
      {"f32", value<float>(-1.5e-7f)},
      {"bool.true", value<bool>(true)},
      {"bool.false", value<bool>(false)},
      {"string", value<std::string>("hello, \xe4\xb8\x96\xe7\x95\x8c")},
      {"string.empty", value<std::string>("")},
      {"array.u16", value(u16)},
      {"array.strings", value(strings)},
      {"array.empty", value(ArrayValue{ValueType::Float64, {}})},
      {"array.nested", value(nested)},
      {"array.nested_strings", value(nested_strings)},
      {"array.deep", value(deep)},
      {"u64", value<uint64_t>(std::numeric_limits<uint64_t>::max())},
      {"i64", value<int64_t>(std::numeric_limits<int64_t>::min())},
      {"f64", value<double>(M_PI)},
  };
}

// Byte pattern that differs per tensor, so a tensor read from the wrong offset is noticed.
GgufWriter::Fill pattern(uint8_t seed) {
  return [seed](std::span<std::byte> out) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::byte>(seed + i * 7);
  };
}

struct TensorSpec {
  std::string name;
  GgmlType type;
  std::vector<uint64_t> shape;
  uint64_t bytes;  // computed here by hand from the block geometry
};

const std::vector<TensorSpec> kTensors = {
    {"f32.matrix", GgmlType::F32, {3, 5}, 3 * 5 * 4},
    {"f16.vector", GgmlType::F16, {7}, 14},
    {"bf16.3d", GgmlType::BF16, {2, 3, 4}, 48},
    {"q4_0", GgmlType::Q4_0, {64, 3}, 6 * 18},
    {"q8_0.4d", GgmlType::Q8_0, {32, 1, 2, 1}, 2 * 34},
    {"q4_k", GgmlType::Q4_K, {512, 2}, 4 * 144},
    {"q6_k", GgmlType::Q6_K, {256}, 210},
    {"iq4_xs", GgmlType::IQ4_XS, {256}, 136},
    {"empty", GgmlType::F32, {0, 4}, 0},
    {"scalar", GgmlType::I32, {}, 4},
};

class RoundTrip : public ::testing::TestWithParam<uint64_t> {};

TEST_P(RoundTrip, MetadataAndTensorsReadBackIdentical) {
  const uint64_t alignment = GetParam();
  GgufWriter w(alignment);
  for (const auto& e : every_value_type()) w.set(e.key, e.value);
  for (size_t i = 0; i < kTensors.size(); ++i) {
    w.add_tensor(kTensors[i].name, kTensors[i].type, kTensors[i].shape, pattern(static_cast<uint8_t>(i * 31)));
  }
  const fs::path path = temp_path("roundtrip-" + std::to_string(alignment) + ".gguf");
  w.write(path);

  GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), alignment);
  auto expected = every_value_type();
  // The spec's default alignment is implied; any other is recorded in general.alignment.
  if (alignment != 32) expected.push_back({"general.alignment", value<uint32_t>(static_cast<uint32_t>(alignment))});
  ASSERT_EQ(f.metadata().size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(expected[i].key);
    EXPECT_EQ(f.metadata()[i].key, expected[i].key);
    EXPECT_EQ(f.metadata()[i].value, expected[i].value);
  }

  ASSERT_EQ(f.tensors().size(), kTensors.size());
  EXPECT_EQ(f.data_offset() % alignment, 0u);
  for (size_t i = 0; i < kTensors.size(); ++i) {
    const TensorInfo& t = f.tensors()[i];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.name, kTensors[i].name);
    EXPECT_EQ(t.type_id, static_cast<uint32_t>(kTensors[i].type));
    EXPECT_EQ(t.shape, kTensors[i].shape);
    EXPECT_EQ(t.n_bytes, kTensors[i].bytes);
    EXPECT_EQ(t.offset % alignment, 0u);
    auto data = f.tensor_data(t);
    ASSERT_EQ(data.size(), kTensors[i].bytes);
    std::vector<std::byte> want(data.size());
    pattern(static_cast<uint8_t>(i * 31))(want);
    EXPECT_TRUE(std::equal(data.begin(), data.end(), want.begin()));
  }
  EXPECT_EQ(f.file_size() % alignment, 0u);  // the last tensor is padded too
  EXPECT_FALSE(fs::exists(path.string() + ".tmp-" + std::to_string(::getpid())));
}

INSTANTIATE_TEST_SUITE_P(Alignments, RoundTrip, ::testing::Values(32, 1, 64, 4096));

TEST(Writer, SetReplacesInPlaceAndTypedSettersPickTheirTypes) {
  GgufWriter w;
  w.set_string("a", "first");
  w.set_uint32("b", 7);
  w.set_string("a", "second");
  w.set_int32("c", -7);
  w.set_uint64("d", 1ull << 50);
  w.set_float32("e", 0.5f);
  w.set_bool("f", true);
  w.set_string_array("g", {"x", "y"});
  w.set_int32_array("h", {-1, 2});
  w.set_float32_array("i", {1.5f});
  const fs::path path = temp_path("setters.gguf");
  w.write(path);
  GgufFile f = GgufFile::open(path);
  ASSERT_EQ(f.metadata().size(), 9u);
  EXPECT_EQ(f.metadata()[0].key, "a");
  EXPECT_EQ(f.get_string("a"), "second");
  EXPECT_EQ(f.find("b")->type(), ValueType::UInt32);
  EXPECT_EQ(f.find("c")->type(), ValueType::Int32);
  EXPECT_EQ(f.find("d")->type(), ValueType::UInt64);
  EXPECT_EQ(f.find("e")->type(), ValueType::Float32);
  EXPECT_EQ(f.find("f")->type(), ValueType::Bool);
  EXPECT_EQ(f.get_string_array("g"), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(f.get_int_array("h"), (std::vector<int64_t>{-1, 2}));
  EXPECT_EQ(f.find("h")->as_array()->element_type, ValueType::Int32);
  EXPECT_EQ(f.get_float_array("i"), (std::vector<double>{1.5}));
}

TEST(Writer, RefusesWhatCannotBeRead) {
  EXPECT_THROW(GgufWriter(0), GgufError);
  EXPECT_THROW(GgufWriter(48), GgufError);
  GgufWriter w;
  EXPECT_THROW(w.set("mixed", value(ArrayValue{ValueType::UInt8, {value<uint8_t>(1), value<int8_t>(1)}})), GgufError);
  w.add_tensor("t", GgmlType::F32, {4}, {});
  EXPECT_THROW(w.add_tensor("t", GgmlType::F32, {4}, {}), GgufError);
  EXPECT_THROW(w.add_tensor("q", GgmlType::Q4_0, {16, 2}, {}), GgufError);  // 16 is not a whole Q4_0 block
  EXPECT_THROW(w.add_tensor("5d", GgmlType::F32, {1, 1, 1, 1, 1}, {}), GgufError);
  EXPECT_THROW(w.add_tensor("huge", GgmlType::F32, {1ull << 40, 1ull << 40}, {}), GgufError);
  EXPECT_THROW(w.add_tensor("unknown", static_cast<GgmlType>(4), {32}, {}), GgufError);
  w.set_uint32("general.alignment", 64);  // disagrees with the writer's 32
  EXPECT_THROW(w.write(temp_path("disagree.gguf")), GgufError);
}

TEST(Writer, IoFailureIsAGgufErrorNamingThePath) {
  GgufWriter w;
  w.set_string("k", "v");
  try {
    w.write("/nonexistent-dir/x.gguf");
    FAIL() << "no error";
  } catch (const GgufError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/x.gguf"), std::string::npos) << e.what();
  }
}

TEST(Writer, FillExceptionLeavesNoFileBehind) {
  GgufWriter w;
  w.add_tensor("t", GgmlType::F32, {4}, [](std::span<std::byte>) { throw std::runtime_error("source gone"); });
  const fs::path path = temp_path("fill-throws.gguf");
  EXPECT_THROW(w.write(path), std::runtime_error);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path.string() + ".tmp-" + std::to_string(::getpid())));
}

// Typed getters: the conversions documented in gguf_file.h, and a one-line error naming the key otherwise.
TEST(Getters, ConvertWhenTheValueFitsAndNameTheKeyWhenNot) {
  GgufWriter w;
  for (const auto& e : every_value_type()) w.set(e.key, e.value);
  const fs::path path = temp_path("getters.gguf");
  w.write(path);
  GgufFile f = GgufFile::open(path);

  EXPECT_EQ(f.get_int("u8"), 255);
  EXPECT_EQ(f.get_int("i8"), -128);
  EXPECT_EQ(f.get_uint("u32"), 4294967295u);
  EXPECT_EQ(f.get_int("i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f.get_uint("u64"), std::numeric_limits<uint64_t>::max());
  EXPECT_DOUBLE_EQ(*f.get_float("f64"), M_PI);
  EXPECT_FLOAT_EQ(static_cast<float>(*f.get_float("f32")), -1.5e-7f);
  EXPECT_DOUBLE_EQ(*f.get_float("i16"), -32768.0);  // integers are numbers too
  EXPECT_EQ(f.get_bool("bool.true"), true);
  EXPECT_EQ(f.get_bool("bool.false"), false);
  EXPECT_EQ(f.get_string("string.empty"), "");
  EXPECT_EQ(f.get_string_array("array.strings"), (std::vector<std::string>{"x", "", "é\n"}));
  EXPECT_EQ(f.get_int_array("array.u16"), (std::vector<int64_t>{1, 65535}));
  EXPECT_EQ(f.get_float_array("array.u16"), (std::vector<double>{1, 65535}));
  EXPECT_EQ(f.get_float_array("array.empty"), std::vector<double>{});
  EXPECT_FALSE(f.get_string("absent"));
  EXPECT_FALSE(f.get_int_array("absent"));

  auto error_of = [&](auto&& call) -> std::string {
    try {
      call();
    } catch (const GgufError& e) {
      return e.what();
    }
    return "no error";
  };
  const std::string name = path.string();
  EXPECT_EQ(error_of([&] { f.get_int("u64"); }), name + ": metadata 'u64': value does not fit int64");
  EXPECT_EQ(error_of([&] { f.get_uint("i8"); }),
            name + ": metadata 'i8': value does not fit an unsigned integer (it is negative)");
  EXPECT_EQ(error_of([&] { f.get_string("u8"); }), name + ": metadata 'u8': expected a string, found uint8");
  EXPECT_EQ(error_of([&] { f.get_int("f32"); }), name + ": metadata 'f32': expected an integer, found float32");
  EXPECT_EQ(error_of([&] { f.get_int("bool.true"); }), name + ": metadata 'bool.true': expected an integer, found bool");
  EXPECT_EQ(error_of([&] { f.get_float("string"); }), name + ": metadata 'string': expected a number, found string");
  EXPECT_EQ(error_of([&] { f.get_bool("u8"); }), name + ": metadata 'u8': expected a bool, found uint8");
  EXPECT_EQ(error_of([&] { f.get_string_array("array.u16"); }),
            name + ": metadata 'array.u16': expected an array of strings, found array of uint16");
  EXPECT_EQ(error_of([&] { f.get_int_array("array.nested"); }),
            name + ": metadata 'array.nested': expected an array of integers, found array of array");
  EXPECT_EQ(error_of([&] { f.get_float_array("string"); }),
            name + ": metadata 'string': expected an array of numbers, found string");
}

TEST(ValueConversions, FollowTheHeader) {
  EXPECT_EQ(value<uint64_t>(uint64_t{1} << 63).as_int(), std::nullopt);
  EXPECT_EQ(value<uint64_t>(uint64_t{1} << 63).as_uint(), uint64_t{1} << 63);
  EXPECT_EQ(value<int32_t>(-1).as_uint(), std::nullopt);
  EXPECT_EQ(value<int32_t>(-1).as_int(), -1);
  EXPECT_EQ(value<bool>(true).as_int(), std::nullopt);
  EXPECT_EQ(value<bool>(true).as_bool(), true);
  EXPECT_EQ(value<uint8_t>(1).as_bool(), std::nullopt);
  EXPECT_EQ(value<float>(2.5f).as_int(), std::nullopt);
  EXPECT_EQ(value<int8_t>(-3).as_float(), -3.0);
  EXPECT_EQ(value<std::string>("s").as_float(), std::nullopt);
  EXPECT_EQ(value<std::string>("s").as_array(), nullptr);
  EXPECT_EQ(*value<std::string>("s").as_string(), "s");
  EXPECT_EQ(value_type_name(ValueType::Float64), "float64");
  EXPECT_EQ(value_type_name(ValueType::Array), "array");
}

}  // namespace
