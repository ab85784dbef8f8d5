// The default model (scripts/setup fetches it into models/) for tests that need a real one; such
// tests skip when it is missing. Needs WEFT_SOURCE_DIR defined (weft_add_test does).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "llm/llama_model.h"
#include "llm/tokenizer.h"

namespace weft::llm::testing {

inline std::string default_model_path() {
  return std::string(WEFT_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

struct DefaultModel {
  std::shared_ptr<const LlamaModel> model;  // null when the file is missing
  std::shared_ptr<const Tokenizer> tokenizer;
};

// Loads the default model with `options` and its tokenizer; a failure to load fails the test.
inline DefaultModel load_default_model(const ModelOptions& options = {}) {
  DefaultModel d;
  if (!std::filesystem::exists(default_model_path())) return d;
  auto m = LlamaModel::load(default_model_path(), options);
  EXPECT_TRUE(m.ok()) << m.status();
  if (!m.ok()) return d;
  auto t = Tokenizer::from_gguf((*m)->file());
  EXPECT_TRUE(t.ok()) << t.status();
  if (!t.ok()) return d;
  d.model = std::shared_ptr<const LlamaModel>(std::move(*m));
  d.tokenizer = std::make_shared<const Tokenizer>(std::move(*t));
  return d;
}

}  // namespace weft::llm::testing
