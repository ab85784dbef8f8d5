#include "llm/chat_template.h"

#include <fmt/format.h>

namespace weft::llm {
namespace {

bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

Status check_roles(const std::vector<ChatMessage>& messages) {
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& r = messages[i].role;
    if (r != "system" && r != "user" && r != "assistant") {
      return Status::invalid_argument(fmt::format("message {}: unknown role '{}' (use system, user or assistant)", i, r));
    }
  }
  return Status::ok();
}

// The text a ChatML template puts in a system turn when the conversation has none: the literal
// after "<|im_start|>system\n" inside the template, up to "<|im_end|>".
std::string chatml_default_system(std::string_view src) {
  if (!contains(src, "!= 'system'") && !contains(src, "!= \"system\"")) return "";
  const std::string_view open = "<|im_start|>system\n";
  const size_t at = src.find(open);
  if (at == std::string_view::npos) return "";
  const size_t begin = at + open.size();
  const size_t end = src.find("<|im_end|>", begin);
  if (end == std::string_view::npos) return "";
  const std::string_view text = src.substr(begin, end - begin);
  // Only a plain literal: a template expression there (a variable) is not a default prompt.
  if (contains(text, "{{") || contains(text, "{%") || contains(text, "'") || contains(text, "\"")) return "";
  return std::string(text);
}

std::string trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\n\r");
  if (b == std::string_view::npos) return "";
  const size_t e = s.find_last_not_of(" \t\n\r");
  return std::string(s.substr(b, e - b + 1));
}

}  // namespace

Result<ChatTemplate> ChatTemplate::from_gguf(const GgufFile& f) {
  if (f.find("tokenizer.chat_template") == nullptr) {
    return Status::not_found("the model file has no chat template (tokenizer.chat_template)");
  }
  WEFT_ASSIGN_OR_RETURN(std::string_view src, f.get_string("tokenizer.chat_template"));
  return from_source(src);
}

Result<ChatTemplate> ChatTemplate::from_source(std::string_view src) {
  ChatTemplate t;
  if (contains(src, "<|im_start|>")) {
    t.format_ = Format::kChatMl;
    t.default_system_ = chatml_default_system(src);
  } else if (contains(src, "<|start_header_id|>")) {
    t.format_ = Format::kLlama3;
  } else if (contains(src, "[INST]")) {
    t.format_ = contains(src, "<<SYS>>") ? Format::kLlama2 : Format::kMistral;
  } else {
    std::string head(src.substr(0, 60));
    for (char& c : head) c = c == '\n' ? ' ' : c;
    return Status::invalid_argument(fmt::format(
        "unknown chat template family (weft renders ChatML, Llama 3, Llama 2 and Mistral); it begins: \"{}\"", head));
  }
  return t;
}

std::string_view ChatTemplate::name() const {
  switch (format_) {
    case Format::kChatMl:
      return "chatml";
    case Format::kLlama3:
      return "llama3";
    case Format::kLlama2:
      return "llama2";
    case Format::kMistral:
      return "mistral";
  }
  return "?";
}

Result<std::string> ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  WEFT_RETURN_IF_ERROR(check_roles(messages));
  std::string out;
  switch (format_) {
    case Format::kChatMl: {
      if (!default_system_.empty() && (messages.empty() || messages[0].role != "system")) {
        out += "<|im_start|>system\n" + default_system_ + "<|im_end|>\n";
      }
      for (const auto& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      return out;
    }
    case Format::kLlama3: {
      for (const auto& m : messages) {
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) + "<|eot_id|>";
      }
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      return out;
    }
    case Format::kLlama2:
    case Format::kMistral: {
      size_t first = 0;
      std::string system;
      if (!messages.empty() && messages[0].role == "system") {
        system = messages[0].content;
        first = 1;
      }
      for (size_t i = first; i < messages.size(); ++i) {
        const ChatMessage& m = messages[i];
        const bool user_turn = (i - first) % 2 == 0;
        if (m.role == "system" || (m.role == "user") != user_turn) {
          return Status::invalid_argument(fmt::format(
              "message {}: {} conversations need one optional system message first, then user and assistant "
              "turns alternating",
              i, name()));
        }
        if (user_turn) {
          std::string content = trim(m.content);
          if (i == first && !system.empty()) {
            content = format_ == Format::kLlama2 ? "<<SYS>>\n" + trim(system) + "\n<</SYS>>\n\n" + content
                                                 : trim(system) + "\n\n" + content;
          }
          if (i != first) out += "<s>";
          out += "[INST] " + content + " [/INST]";
        } else {
          out += (format_ == Format::kLlama2 ? " " : "") + trim(m.content) + "</s>";
        }
      }
      return out;
    }
  }
  return out;
}

}  // namespace weft::llm
