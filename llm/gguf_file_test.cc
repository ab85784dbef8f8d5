#include "llm/gguf_file.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <string>

#include "llm/gguf_writer.h"

namespace weft::llm {
namespace {

using kernels::TensorType;

std::string f32_bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// A small but complete file: every scalar type, arrays (nested too), two tensors.
std::string sample_file() {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_uint8("t.u8", 200);
  w.add_int8("t.i8", -5);
  w.add_uint16("t.u16", 60000);
  w.add_int16("t.i16", -300);
  w.add_uint32("t.u32", 4000000000u);
  w.add_int32("t.i32", -70000);
  w.add_uint64("t.u64", 1ull << 40);
  w.add_int64("t.i64", -(1ll << 40));
  w.add_float32("t.f32", 1.5f);
  w.add_float64("t.f64", -2.25);
  w.add_bool("t.bool", true);
  w.add_string_array("t.strings", {"a", "", "héllo"});
  w.add_float32_array("t.floats", {0.5f, -1.0f});
  w.add_int32_array("t.ints", {1, -2, 3});
  std::string nested;  // array of 2 arrays of uint8
  GgufWriter::put<uint32_t>(nested, static_cast<uint32_t>(GgufType::kArray));
  GgufWriter::put<uint32_t>(nested, static_cast<uint32_t>(GgufType::kArray));
  GgufWriter::put<uint64_t>(nested, 2);
  for (int k = 0; k < 2; ++k) {
    GgufWriter::put<uint32_t>(nested, static_cast<uint32_t>(GgufType::kUint8));
    GgufWriter::put<uint64_t>(nested, 1);
    GgufWriter::put<uint8_t>(nested, static_cast<uint8_t>(7 + k));
  }
  w.add_raw("t.nested", nested);
  EXPECT_TRUE(w.add_tensor("a", TensorType::kF32, {4, 2}, f32_bytes({1, 2, 3, 4, 5, 6, 7, 8})).is_ok());
  EXPECT_TRUE(w.add_tensor("b", TensorType::kQ8_0, {32}, std::string(34, '\x01')).is_ok());
  return w.bytes();
}

TEST(GgufFile, RoundTripsEveryValueType) {
  Result<GgufFile> f = GgufFile::from_bytes(sample_file());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(*f->get_string("general.architecture"), "llama");
  EXPECT_EQ(*f->get_uint("t.u8"), 200u);
  EXPECT_EQ(f->find("t.i8")->i, -5);
  EXPECT_EQ(*f->get_uint("t.u16"), 60000u);
  EXPECT_EQ(f->find("t.i16")->i, -300);
  EXPECT_EQ(*f->get_uint("t.u32"), 4000000000u);
  EXPECT_EQ(f->find("t.i32")->i, -70000);
  EXPECT_EQ(*f->get_uint("t.u64"), 1ull << 40);
  EXPECT_EQ(f->find("t.i64")->i, -(1ll << 40));
  EXPECT_DOUBLE_EQ(*f->get_float("t.f32"), 1.5);
  EXPECT_DOUBLE_EQ(*f->get_float("t.f64"), -2.25);
  EXPECT_TRUE(*f->get_bool("t.bool"));
  const GgufValue* s = *f->get_array("t.strings", GgufType::kString);
  EXPECT_EQ(s->strings, (std::vector<std::string_view>{"a", "", "héllo"}));
  EXPECT_EQ((*f->get_array("t.floats", GgufType::kFloat32))->numbers, (std::vector<double>{0.5, -1.0}));
  EXPECT_EQ((*f->get_array("t.ints", GgufType::kInt32))->integers, (std::vector<int64_t>{1, -2, 3}));
  const GgufValue* nested = *f->get_array("t.nested", GgufType::kArray);
  ASSERT_EQ(nested->arrays.size(), 2u);
  EXPECT_EQ(nested->arrays[1].integers, (std::vector<int64_t>{8}));

  ASSERT_EQ(f->tensors().size(), 2u);
  const GgufTensor* a = f->tensor("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->type, TensorType::kF32);
  EXPECT_EQ(a->ne[0], 4);
  EXPECT_EQ(a->ne[1], 2);
  EXPECT_EQ(a->nbytes, 32u);
  float got[8];
  std::memcpy(got, a->data, sizeof got);
  EXPECT_EQ(got[7], 8.0f);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f->tensor("b")->data - reinterpret_cast<uintptr_t>(a->data)) % 32, 0u);
  EXPECT_EQ(f->tensor("b")->nbytes, 34u);
  EXPECT_EQ(f->tensor("missing"), nullptr);
}

TEST(GgufFile, EveryValueCopiesIntoAWriterByteForByte) {
  const std::string bytes = sample_file();
  Result<GgufFile> f = GgufFile::from_bytes(bytes);
  ASSERT_TRUE(f.ok()) << f.status();
  GgufWriter copy;
  for (const auto& [key, value] : f->metadata()) copy.add_value(key, value);
  for (const GgufTensor& t : f->tensors()) {
    ASSERT_TRUE(copy.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims),
                                std::string(reinterpret_cast<const char*>(t.data), t.nbytes))
                    .is_ok());
  }
  EXPECT_EQ(copy.bytes(), bytes);
}

TEST(GgufFile, TypedLookupsExplainMistakes) {
  Result<GgufFile> f = GgufFile::from_bytes(sample_file());
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->get_uint("nope").status().code(), StatusCode::kNotFound);
  Status s = f->get_uint("general.architecture").status();
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("has type string, expected an integer"), std::string::npos);
  EXPECT_NE(f->get_uint("t.i8").status().message().find("negative"), std::string::npos);
  EXPECT_NE(f->get_array("t.ints", GgufType::kString).status().message().find("array of int32"), std::string::npos);
}

// Every proper prefix of a valid file is rejected with an error, never a crash.
TEST(GgufFile, EveryTruncationIsAnError) {
  const std::string full = sample_file();
  for (size_t n = 0; n < full.size(); ++n) {
    Result<GgufFile> f = GgufFile::from_bytes(full.substr(0, n));
    ASSERT_FALSE(f.ok()) << "prefix of " << n << " bytes was accepted";
    ASSERT_EQ(f.status().code(), StatusCode::kCorruption);
  }
}

// Random corruptions never crash (run under ASan in the sanitizer build).
TEST(GgufFile, RandomMutationsNeverCrash) {
  const std::string full = sample_file();
  std::mt19937 rng(1234);
  int accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string m = full;
    int flips = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < flips; ++k) m[rng() % m.size()] = static_cast<char>(rng());
    if (GgufFile::from_bytes(std::move(m)).ok()) ++accepted;
  }
  EXPECT_LT(accepted, 20000);
}

std::string header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
  std::string h;
  GgufWriter::put<uint32_t>(h, 0x46554747);
  GgufWriter::put<uint32_t>(h, version);
  GgufWriter::put<uint64_t>(h, n_tensors);
  GgufWriter::put<uint64_t>(h, n_kv);
  return h;
}

void expect_corrupt(const std::string& bytes, const std::string& words) {
  Result<GgufFile> f = GgufFile::from_bytes(bytes);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kCorruption);
  EXPECT_NE(f.status().message().find(words), std::string::npos) << f.status().message();
}

TEST(GgufFile, HostileHeadersAreRejectedWithoutAllocating) {
  expect_corrupt("GGUX" + std::string(20, '\0'), "bad magic");
  expect_corrupt(header(1, 0, 0), "unsupported GGUF version 1");
  expect_corrupt(header(3, 0, 1ull << 60), "metadata entries");
  expect_corrupt(header(3, 1ull << 60, 0), "tensors");

  std::string huge_string = header(3, 0, 1);
  GgufWriter::put<uint64_t>(huge_string, 1ull << 62);  // key length
  huge_string += std::string(64, 'x');
  expect_corrupt(huge_string, "key of metadata entry 0 at byte 24 needs 4611686018427387912 bytes");

  std::string huge_array = header(3, 0, 1);
  GgufWriter::put_string(huge_array, "k");
  GgufWriter::put<uint32_t>(huge_array, static_cast<uint32_t>(GgufType::kArray));
  GgufWriter::put<uint32_t>(huge_array, static_cast<uint32_t>(GgufType::kUint64));
  GgufWriter::put<uint64_t>(huge_array, 1ull << 40);
  expect_corrupt(huge_array, "claims 1099511627776 elements");

  std::string bad_type = header(3, 0, 1);
  GgufWriter::put_string(bad_type, "k");
  GgufWriter::put<uint32_t>(bad_type, 77);
  expect_corrupt(bad_type, "unknown value type 77");

  std::string deep = header(3, 0, 1);
  GgufWriter::put_string(deep, "k");
  GgufWriter::put<uint32_t>(deep, static_cast<uint32_t>(GgufType::kArray));
  for (int d = 0; d < 20; ++d) {
    GgufWriter::put<uint32_t>(deep, static_cast<uint32_t>(GgufType::kArray));
    GgufWriter::put<uint64_t>(deep, 1);
  }
  deep += std::string(64, '\0');
  expect_corrupt(deep, "nests arrays deeper");
}

TEST(GgufFile, BadTensorInfosAreRejected) {
  auto with_tensor = [](uint32_t n_dims, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    std::string b = header(3, 1, 0);
    GgufWriter::put_string(b, "w");
    GgufWriter::put<uint32_t>(b, n_dims);
    for (uint64_t n : ne) GgufWriter::put<uint64_t>(b, n);
    GgufWriter::put<uint32_t>(b, type);
    GgufWriter::put<uint64_t>(b, offset);
    b.resize(256, '\0');
    return b;
  };
  expect_corrupt(with_tensor(0, {}, 0, 0), "0 dimensions");
  expect_corrupt(with_tensor(5, {1, 1, 1, 1, 1}, 0, 0), "5 dimensions");
  expect_corrupt(with_tensor(2, {1ull << 40, 1ull << 40}, 0, 0), "invalid dimension");
  expect_corrupt(with_tensor(1, {4}, 99, 0), "unknown type id 99");
  expect_corrupt(with_tensor(1, {4}, 0, 3), "not a multiple of the alignment");
  expect_corrupt(with_tensor(1, {33}, static_cast<uint32_t>(TensorType::kQ4_0), 0), "not whole Q4_0 blocks");
  expect_corrupt(with_tensor(1, {1000}, 0, 0), "beyond the end of the file");
  expect_corrupt(with_tensor(1, {1ull << 62}, 0, 0), "too large");  // row bytes overflow size_t

  GgufWriter dup;
  ASSERT_TRUE(dup.add_tensor("x", TensorType::kF32, {1}, f32_bytes({1})).is_ok());
  ASSERT_TRUE(dup.add_tensor("x", TensorType::kF32, {1}, f32_bytes({2})).is_ok());
  expect_corrupt(dup.bytes(), "appears twice");
}

TEST(GgufFile, OpenReportsMissingFiles) {
  Result<GgufFile> f = GgufFile::open("/nonexistent/model.gguf");
  EXPECT_EQ(f.status().code(), StatusCode::kIoError);
  EXPECT_NE(f.status().message().find("/nonexistent/model.gguf"), std::string::npos);
}

TEST(GgufFile, WriterRejectsMismatchedData) {
  GgufWriter w;
  EXPECT_FALSE(w.add_tensor("x", TensorType::kF32, {3}, f32_bytes({1})).is_ok());
  EXPECT_FALSE(w.add_tensor("x", TensorType::kQ4_1, {31}, std::string(20, '\0')).is_ok());
}

TEST(GgufFile, OpensTheDefaultModel) {
  const std::string path = std::string(WEFT_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "run scripts/setup to fetch " << path;
  Result<GgufFile> f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(*f->get_string("general.architecture"), "llama");
  EXPECT_EQ(*f->get_uint("llama.block_count"), 30u);
  EXPECT_EQ(*f->get_uint("llama.attention.head_count_kv"), 3u);
  EXPECT_EQ(*f->get_string("tokenizer.ggml.pre"), "smollm");
  EXPECT_EQ((*f->get_array("tokenizer.ggml.tokens", GgufType::kString))->strings.size(), 49152u);
  EXPECT_EQ(f->tensors().size(), 272u);
  const GgufTensor* emb = f->tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->type, TensorType::kQ8_0);
  EXPECT_EQ(emb->ne[0], 576);
  EXPECT_EQ(emb->ne[1], 49152);
  EXPECT_EQ(f->tensor("blk.0.ffn_down.weight")->type, TensorType::kQ4_1);
}

}  // namespace
}  // namespace weft::llm
