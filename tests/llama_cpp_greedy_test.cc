// SmolLM2's greedy continuations must be identical to llama.cpp's (tests/data/smollm2_greedy.json,
// made by tests/reference/llamacpp_reference.py with llama.cpp's AVX2 build), token for token.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "llm/llama_model.h"

namespace weft::llm {
namespace {

TEST(LlamaCppGreedy, IdenticalContinuations) {
  const std::string root = WEFT_SOURCE_DIR;
  const std::string path = root + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "run scripts/setup to fetch " << path;
  auto data = nlohmann::json::parse(std::ifstream(root + "/tests/data/smollm2_greedy.json"));
  auto model = LlamaModel::load(path);
  ASSERT_TRUE(model.ok()) << model.status();
  const int vocab = (*model)->config().vocab;
  int prompts = 0, tokens = 0;
  for (const auto& c : data["cases"]) {
    std::vector<int32_t> prompt = c["prompt_tokens"], want = c["generated"];
    KvCache kv = (*model)->make_cache(512);
    int seq = kv.add_sequence();
    Batch b;
    b.add_chain(seq, 0, prompt);
    auto logits = (*model)->forward(b, kv);
    ASSERT_TRUE(logits.ok()) << logits.status();
    kv.commit(seq, static_cast<int>(prompt.size()));
    std::vector<int32_t> got;
    while (got.size() < want.size()) {
      int32_t next = static_cast<int32_t>(std::max_element(logits->begin(), logits->begin() + vocab) - logits->begin());
      got.push_back(next);
      if (got.size() == want.size()) break;
      Batch step;
      step.add_chain(seq, kv.committed(seq), {next});
      logits = (*model)->forward(step, kv);
      ASSERT_TRUE(logits.ok());
      kv.commit(seq, 1);
    }
    EXPECT_EQ(got, want) << "prompt: " << c["prompt"].get<std::string>();
    ++prompts;
    tokens += static_cast<int>(got.size());
  }
  EXPECT_GE(prompts, 10);
  RecordProperty("tokens_compared", tokens);
}

}  // namespace
}  // namespace weft::llm
