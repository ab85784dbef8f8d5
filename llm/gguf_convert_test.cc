#include "llm/gguf_convert.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include <unistd.h>

#include "llm/llama_model.h"
#include "llm/tiny_model_for_test.h"

namespace weft::llm {
namespace {

using kernels::TensorType;

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / (name + "." + std::to_string(::getpid()) + ".gguf")).string();
}

std::vector<float> run(GgufFile f) {
  auto m = LlamaModel::from_file(std::move(f), {.mode = ComputeMode::kReference, .threads = 1});
  EXPECT_TRUE(m.ok()) << m.status();
  KvCache kv = (*m)->make_cache(64);
  const int seq = kv.add_sequence();
  Batch b;
  b.add_chain(seq, 0, {1, 7, 3, 9});
  return *(*m)->forward(b, kv);
}

TEST(GgufConvert, CopiesAtAnotherPrecisionWithTheSameMetadata) {
  auto original = GgufFile::from_bytes(testing::tiny_model_bytes());
  ASSERT_TRUE(original.ok());
  const std::vector<float> want = run(*GgufFile::from_bytes(testing::tiny_model_bytes()));
  for (auto [type, tolerance] :
       {std::pair{TensorType::kF16, 2e-3}, {TensorType::kBF16, 2e-2}, {TensorType::kQ8_0, 5e-2}}) {
    const std::string path = temp_path("convert");
    ASSERT_TRUE(convert_model(*original, type, path).is_ok());
    auto f = GgufFile::open(path);
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ(f->tensor("blk.0.attn_q.weight")->type, type);
    EXPECT_EQ(f->tensor("blk.0.attn_norm.weight")->type, TensorType::kF32);  // vectors stay as they are
    EXPECT_EQ(f->metadata().size(), original->metadata().size() + (original->find("general.file_type") ? 0 : 1));
    EXPECT_EQ(*f->get_uint("llama.block_count"), *original->get_uint("llama.block_count"));
    const std::vector<float> got = run(std::move(*f));
    ASSERT_EQ(got.size(), want.size());
    double err = 0, norm = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      err += (got[i] - want[i]) * (got[i] - want[i]);
      norm += want[i] * want[i];
    }
    EXPECT_LT(std::sqrt(err / norm), tolerance) << kernels::tensor_type_info(type).name;
    std::filesystem::remove(path);
  }
  EXPECT_EQ(convert_model(*original, TensorType::kQ4_K, temp_path("never")).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace weft::llm
