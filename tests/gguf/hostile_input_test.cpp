// Untrusted bytes: every malformed file must end in one GgufError line naming the file and the key or tensor at
// fault — never a crash, a huge allocation, or an exception of another type. Files are built byte by byte here
// from the GGUF spec, independently of GgufWriter.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"

namespace fs = std::filesystem;
using namespace pensieve::gguf;

namespace {

// A GGUF image assembled field by field.
class Raw {
 public:
  template <class T>
  Raw& put(T v) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    bytes.insert(bytes.end(), p, p + sizeof(T));
    return *this;
  }
  Raw& u8(uint8_t v) { return put(v); }
  Raw& u32(uint32_t v) { return put(v); }
  Raw& u64(uint64_t v) { return put(v); }
  Raw& str(std::string_view s) {
    u64(s.size());
    for (char c : s) bytes.push_back(static_cast<std::byte>(c));
    return *this;
  }
  Raw& header(uint64_t tensors, uint64_t kvs, uint32_t version = 3) {
    for (char c : std::string_view("GGUF")) bytes.push_back(static_cast<std::byte>(c));
    return u32(version).u64(tensors).u64(kvs);
  }
  Raw& key(std::string_view k, uint32_t type) { return str(k).u32(type); }
  Raw& tensor(std::string_view name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) u64(d);
    return u32(type).u64(offset);
  }
  Raw& pad(uint64_t alignment) {
    while (bytes.size() % alignment != 0) bytes.push_back(std::byte{0});
    return *this;
  }
  Raw& zeros(size_t n) {
    bytes.resize(bytes.size() + n);
    return *this;
  }
  std::vector<std::byte> bytes;
};

constexpr uint32_t kU8 = 0, kU32 = 4, kBool = 7, kString = 8, kArray = 9, kF32Type = 0, kQ8_0 = 8;
constexpr uint64_t kHuge = uint64_t{1} << 60;

std::string error_of(std::span<const std::byte> bytes) {
  try {
    GgufFile f = GgufFile::parse(bytes, "x.gguf");
    return "parsed";
  } catch (const GgufError& e) {
    return e.what();
  }
}
std::string error_of(const Raw& r) { return error_of(r.bytes); }

std::vector<std::byte> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("missing fixture " + p.string());
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

// Parses and, when that succeeds, touches everything a caller could; any failure must be a one-line GgufError.
void parse_and_use(std::span<const std::byte> bytes, const std::string& what) {
  try {
    GgufFile f = GgufFile::parse(bytes, "x.gguf");
    for (const auto& e : f.metadata()) {
      try {
        (void)f.get_string(e.key);
      } catch (const GgufError&) {
      }
      try {
        (void)f.get_float_array(e.key);
      } catch (const GgufError&) {
      }
    }
    for (const auto& t : f.tensors()) ASSERT_EQ(f.tensor_data(t).size(), t.n_bytes) << what;
  } catch (const GgufError& e) {
    std::string_view m = e.what();
    ASSERT_EQ(m.substr(0, 8), "x.gguf: ") << what << ": " << m;
    ASSERT_EQ(m.find('\n'), std::string_view::npos) << what << ": " << m;
  }
}

// --- The file itself ---------------------------------------------------------------------------------------

TEST(Hostile, NotAGgufFile) {
  EXPECT_EQ(error_of(Raw{}), "x.gguf: empty file (0 bytes), not a GGUF file");
  Raw short_magic;
  short_magic.u8('G').u8('G').u8('U');
  EXPECT_EQ(error_of(short_magic), "x.gguf: not a GGUF file: starts with \"GGU\", expected \"GGUF\"");
  Raw zip;
  zip.u8('P').u8('K').u8(3).u8(4).zeros(100);
  EXPECT_EQ(error_of(zip), "x.gguf: not a GGUF file: starts with \"PK\\x03\\x04\", expected \"GGUF\"");
}

TEST(Hostile, Versions) {
  EXPECT_EQ(error_of(Raw{}.header(0, 0, 1)),
            "x.gguf: header: GGUF version 1 is not supported (it uses 32-bit counts); re-convert the model to GGUF v3");
  EXPECT_EQ(error_of(Raw{}.header(0, 0, 4)), "x.gguf: header: unsupported GGUF version 4 (supported: 2 and 3)");
  EXPECT_NE(error_of(Raw{}.header(0, 0, 0x03000000)).find("byte-swapped"), std::string::npos);
  EXPECT_EQ(error_of(Raw{}.header(0, 0, 2)), "parsed");
  EXPECT_EQ(error_of(Raw{}.header(0, 0, 3)), "parsed");
}

TEST(Hostile, TruncatedHeaderSaysWhereAndHowMuch) {
  Raw r;
  r.header(0, 0);
  r.bytes.resize(12);
  EXPECT_EQ(error_of(r), "x.gguf: truncated: header needs 8 bytes at offset 8, file has 12");
  Raw k;  // two whole entries (18 bytes each), then 3 bytes of the third key's length
  k.header(0, 3).key("alpha", kU8).u8(1).key("bravo", kU8).u8(2).u8(0).u8(0).u8(0);
  EXPECT_EQ(error_of(k), "x.gguf: truncated: metadata key #2 needs 8 bytes at offset 60, file has 63");
}

// --- Counts and lengths are checked before anything is allocated ------------------------------------------

TEST(Hostile, HugeCountsAreRefusedBeforeAllocating) {
  EXPECT_EQ(error_of(Raw{}.header(0, kHuge)),
            "x.gguf: header: 1152921504606846976 metadata entries cannot fit in the 0 bytes left at offset 24 "
            "(each takes at least 13 bytes)");
  EXPECT_EQ(error_of(Raw{}.header(kHuge, 0).zeros(100)),
            "x.gguf: header: 1152921504606846976 tensor infos cannot fit in the 100 bytes left at offset 24 "
            "(each takes at least 24 bytes)");
  EXPECT_EQ(error_of(Raw{}.header(0, 1).u64(kHuge).zeros(8)),
            "x.gguf: metadata key #0: string of 1152921504606846976 bytes at offset 32 extends past end of file "
            "(40 bytes)");
  EXPECT_EQ(error_of(Raw{}.header(0, 1).key("tokens", kArray).u32(kString).u64(kHuge)),
            "x.gguf: metadata 'tokens': 1152921504606846976 string array elements cannot fit in the 0 bytes left "
            "at offset 54 (each takes at least 8 bytes)");
  EXPECT_EQ(error_of(Raw{}.header(0, 1).key("nest", kArray).u32(kArray).u64(2).u32(kU32).u64(kHuge).zeros(12)),
            "x.gguf: metadata 'nest' element #0: 1152921504606846976 uint32 array elements cannot fit in the 12 "
            "bytes left at offset 64 (each takes at least 4 bytes)");
  EXPECT_EQ(error_of(Raw{}.header(0, 1).key("s", kString).u64(std::numeric_limits<uint64_t>::max())),
            "x.gguf: metadata 's': string of 18446744073709551615 bytes at offset 45 extends past end of file "
            "(45 bytes)");
}

TEST(Hostile, TruncatedArrayElementIsNamed) {
  Raw r;
  r.header(0, 1).key("tokens", kArray).u32(kString).u64(3).str("a").str("b").zeros(6);
  EXPECT_EQ(error_of(r), "x.gguf: truncated: metadata 'tokens' element #2 needs 8 bytes at offset 72, file has 78");
}

// --- Values ---------------------------------------------------------------------------------------------------

TEST(Hostile, BadValues) {
  EXPECT_EQ(error_of(Raw{}.header(0, 1).key("k", 13)), "x.gguf: metadata 'k': unknown value type id 13");
  EXPECT_EQ(error_of(Raw{}.header(0, 1).key("k", kArray).u32(99).u64(0)),
            "x.gguf: metadata 'k': unknown value type id 99");
  EXPECT_EQ(error_of(Raw{}.header(0, 1).key("flag", kBool).u8(2)),
            "x.gguf: metadata 'flag': bool value 2 is neither 0 nor 1");
  EXPECT_EQ(error_of(Raw{}.header(0, 2).key("k", kU8).u8(1).key("k", kU8).u8(2)),
            "x.gguf: metadata 'k': duplicate key");
  EXPECT_EQ(error_of(Raw{}.header(0, 1).key("line\nbreak", 13)),
            "x.gguf: metadata 'line\\x0abreak': unknown value type id 13");
}

Raw nested_arrays(int levels) {
  Raw r;
  r.header(0, 1).key("deep", kArray);
  for (int i = 1; i < levels; ++i) r.u32(kArray).u64(1);
  r.u32(kU8).u64(1).u8(7);
  return r;
}

TEST(Hostile, NestingIsBounded) {
  EXPECT_EQ(error_of(nested_arrays(8)), "parsed");
  EXPECT_EQ(error_of(nested_arrays(9)),
            "x.gguf: metadata 'deep' element #0 element #0 element #0 element #0 element #0 element #0 element #0 "
            "element #0: arrays nested deeper than 8 levels");
  Raw bomb = nested_arrays(100000);  // would overflow the stack if recursion were unbounded
  EXPECT_NE(error_of(bomb).find("nested deeper than 8 levels"), std::string::npos);
}

TEST(Hostile, Alignment) {
  auto with_alignment = [](uint32_t type, auto write_value) {
    Raw r;
    r.header(0, 1).key("general.alignment", type);
    write_value(r);
    return error_of(r);
  };
  EXPECT_EQ(with_alignment(kU32, [](Raw& r) { r.u32(48); }),
            "x.gguf: metadata 'general.alignment': alignment 48 is not a nonzero power of two");
  EXPECT_EQ(with_alignment(kU32, [](Raw& r) { r.u32(0); }),
            "x.gguf: metadata 'general.alignment': alignment 0 is not a nonzero power of two");
  EXPECT_EQ(with_alignment(kString, [](Raw& r) { r.str("32"); }),
            "x.gguf: metadata 'general.alignment': expected an unsigned integer, found string");
  EXPECT_EQ(with_alignment(kU32, [](Raw& r) { r.u32(64); }), "parsed");

  Raw aligned;
  aligned.header(1, 1).key("general.alignment", kU32).u32(256).tensor("w", {4}, kF32Type, 0).pad(256).zeros(16);
  GgufFile f = GgufFile::parse(aligned.bytes, "x.gguf");
  EXPECT_EQ(f.alignment(), 256u);
  EXPECT_EQ(f.data_offset(), 256u);
}

// --- Tensor index -----------------------------------------------------------------------------------------------

std::string one_tensor(std::vector<uint64_t> dims, uint32_t type, uint64_t offset, size_t data_bytes) {
  Raw r;
  r.header(1, 0).tensor("blk.0.w", std::move(dims), type, offset).pad(32).zeros(data_bytes);
  return error_of(r);
}

TEST(Hostile, TensorGeometry) {
  EXPECT_EQ(one_tensor({4, 2}, kF32Type, 0, 32), "parsed");
  EXPECT_EQ(one_tensor({}, kF32Type, 0, 4), "parsed");  // zero dimensions: a scalar
  EXPECT_EQ(one_tensor({1, 1, 1, 1, 1}, kF32Type, 0, 4), "x.gguf: tensor 'blk.0.w': 5 dimensions, at most 4 are allowed");
  EXPECT_EQ(one_tensor({32}, 99, 0, 64),
            "x.gguf: tensor 'blk.0.w': unknown tensor type id 99, so its size cannot be checked");
  EXPECT_EQ(one_tensor({32}, 4, 0, 64),  // Q4_2, retired from ggml
            "x.gguf: tensor 'blk.0.w': unknown tensor type id 4, so its size cannot be checked");
  EXPECT_EQ(one_tensor({33, 2}, kQ8_0, 0, 200),
            "x.gguf: tensor 'blk.0.w': shape [33, 2] does not fit type Q8_0: the first dimension is not a multiple "
            "of its block of 32 elements");
  EXPECT_EQ(one_tensor({uint64_t{1} << 32, uint64_t{1} << 32}, kF32Type, 0, 0),
            "x.gguf: tensor 'blk.0.w': shape [4294967296, 4294967296] has more elements than ggml allows");
  EXPECT_EQ(one_tensor({uint64_t{1} << 63}, kF32Type, 0, 0),
            "x.gguf: tensor 'blk.0.w': dimension 0 is 9223372036854775808, larger than ggml allows");
  EXPECT_EQ(one_tensor({uint64_t{1} << 62}, kF32Type, 0, 0),  // elements fit int64, bytes do not fit uint64
            "x.gguf: tensor 'blk.0.w': shape [4611686018427387904] of type F32 has no valid byte size");
}

TEST(Hostile, TensorPlacement) {
  // Header: 24 bytes + tensor info (8 + 7 + 4 + 8 + 4 + 8 = 39) = 63, so data starts at 64.
  EXPECT_EQ(one_tensor({16}, kF32Type, 0, 63),
            "x.gguf: tensor 'blk.0.w': data [offset 64, 64 bytes] extends past end of file (127 bytes)");
  EXPECT_EQ(one_tensor({16}, kF32Type, 4, 100),
            "x.gguf: tensor 'blk.0.w': data offset 4 is not a multiple of the alignment 32");
  EXPECT_EQ(one_tensor({16}, kF32Type, uint64_t{1} << 62, 64),
            "x.gguf: tensor 'blk.0.w': data [offset 4611686018427387968, 64 bytes] extends past end of file "
            "(128 bytes)");
  EXPECT_EQ(one_tensor({16}, kF32Type, std::numeric_limits<uint64_t>::max() - 31, 64),
            "x.gguf: tensor 'blk.0.w': data [offset 64+18446744073709551584, 64 bytes] extends past end of file "
            "(128 bytes)");
}

TEST(Hostile, OverlappingAndDuplicateTensors) {
  Raw overlap;
  overlap.header(2, 0).tensor("a", {16}, kF32Type, 0).tensor("b", {16}, kF32Type, 32).pad(32).zeros(128);
  // Header 24 + 2 * (8 + 1 + 4 + 8 + 4 + 8) = 90, so data starts at 96.
  EXPECT_EQ(error_of(overlap),
            "x.gguf: tensor 'b': data [offset 128, 64 bytes] overlaps tensor 'a' [offset 96, 64 bytes]");
  Raw same_offset;
  same_offset.header(2, 0).tensor("a", {8}, kF32Type, 0).tensor("b", {8}, kF32Type, 0).pad(32).zeros(64);
  EXPECT_NE(error_of(same_offset).find("overlaps"), std::string::npos);
  Raw empty_shares;  // an empty tensor occupies no bytes, so it may sit anywhere in range
  empty_shares.header(2, 0).tensor("a", {8}, kF32Type, 0).tensor("b", {0}, kF32Type, 0).pad(32).zeros(32);
  EXPECT_EQ(error_of(empty_shares), "parsed");
  Raw twice;
  twice.header(2, 0).tensor("a", {8}, kF32Type, 0).tensor("a", {8}, kF32Type, 32).pad(32).zeros(64);
  EXPECT_EQ(error_of(twice), "x.gguf: tensor 'a': duplicate tensor name");
}

TEST(Hostile, HandBuiltFileReadsAsTheSpecSays) {
  Raw r;
  r.header(2, 2, 2).key("general.architecture", kString).str("llama").key("n", kU32).u32(7);
  r.tensor("a", {8, 2}, kF32Type, 0).tensor("b", {32}, kQ8_0, 64).pad(32);
  for (int i = 0; i < 64; ++i) r.u8(static_cast<uint8_t>(i));
  r.zeros(34);
  GgufFile f = GgufFile::parse(r.bytes, "x.gguf");
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_uint("n"), 7u);
  ASSERT_NE(f.find_tensor("b"), nullptr);
  EXPECT_EQ(f.find_tensor("b")->n_bytes, 34u);
  EXPECT_EQ(f.find_tensor("missing"), nullptr);
  auto a = f.tensor_data(*f.find_tensor("a"));
  ASSERT_EQ(a.size(), 64u);
  EXPECT_EQ(static_cast<uint8_t>(a[63]), 63);
  EXPECT_EQ(a.data(), r.bytes.data() + f.data_offset());
  TensorInfo forged = *f.find_tensor("b");
  forged.offset = 1 << 20;
  EXPECT_THROW((void)f.tensor_data(forged), GgufError);
}

// --- Files on disk ----------------------------------------------------------------------------------------------

std::string open_error(const fs::path& p) {
  try {
    GgufFile::open(p);
    return "opened";
  } catch (const GgufError& e) {
    return e.what();
  }
}

TEST(Hostile, OpenExplainsWhatIsThere) {
  const fs::path dir = fs::temp_directory_path() / ("pensieve-gguf-open-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  EXPECT_EQ(open_error(dir / "missing.gguf"), (dir / "missing.gguf").string() + ": cannot open: No such file or directory");
  EXPECT_EQ(open_error(dir), dir.string() + ": is a directory, not a GGUF file");
  std::ofstream(dir / "empty.gguf").close();
  EXPECT_EQ(open_error(dir / "empty.gguf"), (dir / "empty.gguf").string() + ": empty file (0 bytes), not a GGUF file");
  std::ofstream(dir / "text.gguf") << "{\"not\": \"gguf\"}";
  EXPECT_EQ(open_error(dir / "text.gguf"),
            (dir / "text.gguf").string() + ": not a GGUF file: starts with \"{\"no\", expected \"GGUF\"");
  fs::remove_all(dir);
}

// --- Sweeps: truncation at every offset, byte flips -------------------------------------------------------------

std::vector<std::byte> small_model_file() {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_uint32("llama.block_count", 1);
  w.set_string_array("tokenizer.ggml.tokens", {"a", "b", "c"});
  w.set_float32_array("tokenizer.ggml.scores", {0, 1, 2});
  w.set("nested", Value{ArrayValue{ValueType::Array, {Value{ArrayValue{ValueType::Bool, {Value{true}}}}}}});
  w.add_tensor("f32", GgmlType::F32, {8}, {});
  w.add_tensor("q8_0", GgmlType::Q8_0, {32, 2}, {});
  w.add_tensor("q4_k", GgmlType::Q4_K, {256}, {});
  const fs::path path = fs::temp_directory_path() / ("pensieve-gguf-small-" + std::to_string(::getpid()) + ".gguf");
  w.write(path);
  auto bytes = read_file(path);
  fs::remove(path);
  return bytes;
}

TEST(Sweep, EveryTruncationOfASmallFileFailsUntilTheDataIsComplete) {
  const auto bytes = small_model_file();
  const GgufFile whole = GgufFile::parse(bytes, "x.gguf");
  uint64_t data_end = 0;
  for (const auto& t : whole.tensors()) data_end = std::max(data_end, whole.data_offset() + t.offset + t.n_bytes);
  for (size_t n = 0; n <= bytes.size(); ++n) {
    std::string e = error_of(std::span(bytes).first(n));
    if (n < data_end) {
      ASSERT_NE(e, "parsed") << n;
      ASSERT_EQ(e.find('\n'), std::string::npos) << e;
    } else {
      ASSERT_EQ(e, "parsed") << n;  // only the padding after the last tensor is missing
    }
  }
}

TEST(Sweep, EveryByteFlipOfASmallFileIsHandled) {
  auto bytes = small_model_file();
  for (size_t i = 0; i < bytes.size(); ++i) {
    const std::byte original = bytes[i];
    for (std::byte flip : {std::byte{0xff}, std::byte{0x01}, std::byte{0x80}}) {
      bytes[i] = original ^ flip;
      parse_and_use(bytes, "flip at " + std::to_string(i));
      if (testing::Test::HasFatalFailure()) return;
    }
    bytes[i] = original;
  }
}

TEST(Sweep, FixtureTruncatedAnywhereIsAGgufError) {
  const fs::path path = fs::path(PENSIEVE_FIXTURES_DIR) / "models/llama-tiny/llama-tiny-q8_0.gguf";
  const auto bytes = read_file(path);
  const GgufFile whole = GgufFile::parse(bytes, "x.gguf");
  ASSERT_LT(whole.data_offset(), bytes.size());
  // Every byte of the first 2 KiB, a fine stride through the rest of the index, a coarse one through the data.
  for (size_t n = 0; n < bytes.size(); n += (n < 2048 ? 1 : n < whole.data_offset() + 64 ? 61 : 4093)) {
    std::string e = error_of(std::span(bytes).first(n));
    ASSERT_NE(e, "parsed") << n;
    ASSERT_EQ(e.find('\n'), std::string::npos) << e;
  }
}

TEST(Sweep, FixtureHeaderByteFlipsAreHandled) {
  const fs::path path = fs::path(PENSIEVE_FIXTURES_DIR) / "models/qwen3-tiny/qwen3-tiny-q8_0.gguf";
  auto bytes = read_file(path);
  const uint64_t header_end = GgufFile::parse(bytes, "x.gguf").data_offset();
  // Every byte of the first KiB, then a stride through the rest of the index (mostly vocabulary strings).
  for (size_t i = 0; i < header_end; i += (i < 1024 ? 1 : 257)) {
    const std::byte original = bytes[i];
    bytes[i] = original ^ std::byte{0xff};
    parse_and_use(bytes, "flip at " + std::to_string(i));
    if (testing::Test::HasFatalFailure()) return;
    bytes[i] = original;
  }
}

}  // namespace
