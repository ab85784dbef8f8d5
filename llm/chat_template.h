// The chat format of a model, recognised from the Jinja template in its GGUF metadata
// (`tokenizer.chat_template`), and rendered natively.
//
//   WEFT_ASSIGN_OR_RETURN(ChatTemplate t, ChatTemplate::from_gguf(file));
//   WEFT_ASSIGN_OR_RETURN(std::string prompt, t.render({{"user", "Hi!"}}));
//   // then tokenize `prompt` with parse_special = true
//
// Known families: ChatML (SmolLM2, Qwen2/2.5: <|im_start|>role ... <|im_end|>, with the default
// system prompt the template inserts when the conversation has none), Llama 3
// (<|start_header_id|>role<|end_header_id|> ... <|eot_id|>), Llama 2 ([INST] with <<SYS>>) and
// Mistral ([INST] without a system block). A template of another family is refused by name
// rather than guessed at. Rendered text has no BOS: the tokenizer adds it. Immutable; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "llm/gguf_file.h"
#include "weft/export.h"
#include "weft/status.h"

namespace weft::llm {

/// One turn of a conversation.
struct WEFT_API ChatMessage {
  std::string role;     ///< "system", "user" or "assistant"
  std::string content;  ///< the text
};

/// A model's chat format (see the top of this file).
class WEFT_API ChatTemplate {
 public:
  /// The known template families.
  enum class Format {
    kChatMl,  ///< <|im_start|>role ... <|im_end|> (SmolLM2, Qwen2)
    kLlama3,  ///< <|start_header_id|>role<|end_header_id|> ... <|eot_id|>
    kLlama2,  ///< [INST] with a `<<SYS>>` block
    kMistral  ///< [INST] without a system block
  };

  /// kNotFound when the file carries no template; kInvalidArgument for an unknown family.
  static Result<ChatTemplate> from_gguf(const GgufFile& f);
  /// The same from the template's Jinja source; kInvalidArgument for an unknown family.
  static Result<ChatTemplate> from_source(std::string_view jinja);

  /// kInvalidArgument for an unknown role, or a conversation the format cannot express (Llama 2
  /// and Mistral: a system message after the first turn, or turns that do not alternate).
  Result<std::string> render(const std::vector<ChatMessage>& messages, bool add_generation_prompt = true) const;

  /// The family recognised.
  Format format() const { return format_; }
  /// The family's name, e.g. "chatml".
  std::string_view name() const;
  /// The system prompt used when the conversation has none (ChatML templates that define one).
  const std::string& default_system() const { return default_system_; }

 private:
  Format format_ = Format::kChatMl;
  std::string default_system_;
};

}  // namespace weft::llm
