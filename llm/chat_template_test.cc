#include "llm/chat_template.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace weft::llm {
namespace {

// SmolLM2-135M-Instruct's template, as its GGUF file carries it.
constexpr std::string_view kSmolLm2 =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

TEST(ChatTemplate, ChatMlWithItsDefaultSystemPrompt) {
  auto t = ChatTemplate::from_source(kSmolLm2);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->format(), ChatTemplate::Format::kChatMl);
  EXPECT_EQ(*t->render({{"user", "Hi!"}}),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n");
  // A conversation with its own system prompt replaces the default one.
  EXPECT_EQ(*t->render({{"system", "Be brief."}, {"user", "Hi!"}, {"assistant", "Hello."}, {"user", "Bye"}}, false),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n"
            "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n");
}

TEST(ChatTemplate, Llama3) {
  auto t = ChatTemplate::from_source(
      "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
      "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{{ content }}{% endfor %}");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->name(), "llama3");
  EXPECT_EQ(*t->render({{"system", "S"}, {"user", " Hi \n"}}),
            "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi"
            "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Llama2AndMistral) {
  auto llama2 = ChatTemplate::from_source("{{ '[INST] <<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' }}");
  ASSERT_TRUE(llama2.ok());
  EXPECT_EQ(*llama2->render({{"system", "S"}, {"user", "Hi"}, {"assistant", "Hello"}, {"user", "Bye"}}),
            "[INST] <<SYS>>\nS\n<</SYS>>\n\nHi [/INST] Hello</s><s>[INST] Bye [/INST]");
  auto mistral = ChatTemplate::from_source("{{ '[INST] ' + message['content'] + ' [/INST]' }}");
  ASSERT_TRUE(mistral.ok());
  EXPECT_EQ(mistral->format(), ChatTemplate::Format::kMistral);
  EXPECT_EQ(*mistral->render({{"user", "Hi"}, {"assistant", "Hello"}, {"user", "Bye"}}),
            "[INST] Hi [/INST]Hello</s><s>[INST] Bye [/INST]");
  auto bad = mistral->render({{"user", "a"}, {"user", "b"}});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

TEST(ChatTemplate, UnknownTemplatesAndRolesAreRefused) {
  auto t = ChatTemplate::from_source("{% for m in messages %}### {{ m.role }}: {{ m.content }}{% endfor %}");
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(t.status().message().find("unknown chat template"), std::string::npos);
  auto chatml = ChatTemplate::from_source(kSmolLm2);
  auto r = chatml->render({{"robot", "x"}});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("robot"), std::string::npos);
}

TEST(ChatTemplate, TheDefaultModelsTemplateIsRecognised) {
  const std::string path = std::string(WEFT_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "run scripts/setup to fetch " << path;
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok());
  auto t = ChatTemplate::from_gguf(*f);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->format(), ChatTemplate::Format::kChatMl);
  EXPECT_EQ(t->default_system(), "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
}

}  // namespace
}  // namespace weft::llm
