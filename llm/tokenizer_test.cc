#include "llm/tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "llm/gguf_writer.h"
#include "llm/pretokenizer.h"
#include "llm/utf8.h"

namespace weft::llm {
namespace {

TEST(Utf8, ValidatesAndStreamsWithoutSplittingCharacters) {
  EXPECT_EQ(utf8_invalid_at("héllo 你好 🎉"), std::string_view::npos);
  EXPECT_EQ(utf8_invalid_at("ab\xC3"), 2u);             // truncated
  EXPECT_EQ(utf8_invalid_at("a\xC0\x80"), 1u);          // overlong
  EXPECT_EQ(utf8_invalid_at("\xED\xA0\x80"), 0u);       // surrogate
  EXPECT_EQ(utf8_invalid_at("\xF4\x90\x80\x80"), 0u);   // above U+10FFFF

  Utf8Stream s;
  const std::string party = "\xF0\x9F\x8E\x89";  // 🎉 split across three pieces
  std::string first = "a", last = party.substr(3), whole = party;
  first += party.substr(0, 1);
  last += 'b';
  whole += 'b';
  EXPECT_EQ(s.push(first), "a");
  EXPECT_EQ(s.push(party.substr(1, 2)), "");
  EXPECT_EQ(s.push(last), whole);
  EXPECT_EQ(s.push("\xFF" "c"), "\xEF\xBF\xBD" "c");  // invalid byte replaced, stream goes on
  EXPECT_EQ(s.push("\xE4\xBD"), "");
  EXPECT_EQ(s.finish(), "\xEF\xBF\xBD");
}

TEST(PreTokenizer, SplitsLikeGpt2AndKeepsEverything) {
  auto exprs = PreTokenizer::expressions_for("smollm");
  ASSERT_TRUE(exprs.ok());
  auto p = PreTokenizer::create(*exprs);
  ASSERT_TRUE(p.ok()) << p.status();
  std::vector<std::string_view> w = p->split("I'm 42 years  old!!");
  EXPECT_EQ(w, (std::vector<std::string_view>{"I", "'m", " ", "4", "2", " years", " ", " old", "!!"}));
  EXPECT_EQ(PreTokenizer::expressions_for("mystery").status().code(), StatusCode::kInvalidArgument);
}

// A hand-made byte-level BPE vocabulary: merges "h e" < "l l" < "he ll" < "hell o".
std::string tiny_bpe_vocab() {
  GgufWriter w;
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", "gpt-2");
  std::vector<std::string> tokens{"<|end|>", "h", "e", "l", "o", "Ġ", "he", "ll", "hell", "hello", "Ġw", "w", "<x>"};
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_int32_array("tokenizer.ggml.token_type", {3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4});
  w.add_string_array("tokenizer.ggml.merges", {"h e", "l l", "he ll", "hell o", "Ġ w"});
  w.add_uint32("tokenizer.ggml.eos_token_id", 0);
  return w.bytes();
}

TEST(Tokenizer, ByteBpeMergesByRank) {
  auto f = GgufFile::from_bytes(tiny_bpe_vocab());
  ASSERT_TRUE(f.ok());
  auto t = Tokenizer::from_gguf(*f);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t->encode("hello"), (std::vector<int32_t>{9}));
  EXPECT_EQ(*t->encode("hello wo"), (std::vector<int32_t>{9, 10, 4}));
  EXPECT_EQ(*t->encode("hel"), (std::vector<int32_t>{6, 3}));
  // Special tokens: control ones only when asked, user-defined always.
  std::vector<int32_t> literal = *t->encode("he<|end|>");  // the control token's text, as plain text
  EXPECT_TRUE(std::find(literal.begin(), literal.end(), 0) == literal.end());
  EXPECT_EQ(*t->encode("he<|end|>", true, true), (std::vector<int32_t>{6, 0}));
  EXPECT_EQ(*t->encode("he<x>"), (std::vector<int32_t>{6, 12}));
  EXPECT_EQ(t->decode({9, 10, 4}), "hello wo");
  EXPECT_EQ(t->decode({9, 0}), "hello");
  EXPECT_EQ(t->decode({9, 0}, true), "hello<|end|>");
  EXPECT_TRUE(t->is_end_of_generation(0));
  EXPECT_EQ(t->encode("bad \xFF utf8").status().code(), StatusCode::kInvalidArgument);
}

std::string tiny_spm_vocab() {
  GgufWriter w;
  w.add_string("tokenizer.ggml.model", "llama");
  std::vector<std::string> tokens{"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b", "\xE2\x96\x81" "a", "ab",
                                  "\xE2\x96\x81" "ab", "<0xC3>", "<0xA9>"};
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_float32_array("tokenizer.ggml.scores", {0, 0, 0, -1, -2, -2, -1.5f, -1, -0.5f, 0, 0});
  w.add_int32_array("tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 1, 1, 1, 1, 6, 6});
  return w.bytes();
}

TEST(Tokenizer, SentencePieceUsesScoresAndByteFallback) {
  auto f = GgufFile::from_bytes(tiny_spm_vocab());
  ASSERT_TRUE(f.ok());
  auto t = Tokenizer::from_gguf(*f);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_TRUE(t->add_bos());
  EXPECT_EQ(*t->encode("ab"), (std::vector<int32_t>{1, 8}));          // <s> ▁ab
  EXPECT_EQ(*t->encode("ab b", false), (std::vector<int32_t>{8, 3, 5}));  // ▁ab ▁ b
  EXPECT_EQ(*t->encode("\xC3\xA9", false), (std::vector<int32_t>{3, 9, 10}));  // é by bytes
  EXPECT_EQ(t->decode(*t->encode("ab b")), "ab b");
  EXPECT_EQ(t->decode({3, 9, 10}), "\xC3\xA9");
}

TEST(Tokenizer, RefusesUnknownModels) {
  GgufWriter w;
  w.add_string("tokenizer.ggml.model", "bert");
  w.add_string_array("tokenizer.ggml.tokens", {"a"});
  auto f = GgufFile::from_bytes(w.bytes());
  ASSERT_TRUE(f.ok());
  auto t = Tokenizer::from_gguf(*f);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("'bert'"), std::string::npos);
}

// The real SmolLM2 tokenizer against llama.cpp's token ids (tests/data, made by
// tests/reference/llamacpp_reference.py).
TEST(Tokenizer, MatchesLlamaCppOnTheDefaultModel) {
  const std::string root = WEFT_SOURCE_DIR;
  const std::string model = root + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(model)) GTEST_SKIP() << "run scripts/setup to fetch " << model;
  std::ifstream in(root + "/tests/data/smollm2_tokens.json");
  ASSERT_TRUE(in) << "missing tests/data/smollm2_tokens.json";
  nlohmann::json data = nlohmann::json::parse(in);
  auto f = GgufFile::open(model);
  ASSERT_TRUE(f.ok());
  auto t = Tokenizer::from_gguf(*f);
  ASSERT_TRUE(t.ok()) << t.status();
  int checked = 0;
  for (const auto& c : data["cases"]) {
    const std::string text = c["text"];
    EXPECT_EQ(*t->encode(text, false, false), c["plain"].get<std::vector<int32_t>>()) << text;
    EXPECT_EQ(*t->encode(text, false, true), c["special"].get<std::vector<int32_t>>()) << text;
    EXPECT_EQ(t->decode(*t->encode(text, false, true), true), text);
    ++checked;
  }
  EXPECT_GE(checked, 30);
}

}  // namespace
}  // namespace weft::llm
