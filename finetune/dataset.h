// Training data as OpenAI's fine-tuning files hold it: JSON Lines, each line a conversation
// {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]} rendered with the
// model's chat template and trained on its assistant turns, or a pair {"prompt": "...",
// "completion": "..."} trained on the completion (plain text, BOS first where the model wants one).
//
//   WEFT_ASSIGN_OR_RETURN(Dataset d, read_dataset(jsonl_text, tokenizer, chat_template, 1024));
//   for (const DatasetError& e : d.errors) std::fprintf(stderr, "line %d: %s\n", e.line, e.message.c_str());
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "finetune/training_pass.h"
#include "llm/chat_template.h"
#include "llm/tokenizer.h"

namespace weft::finetune {

struct DatasetError {
  int line = 0;  ///< 1-based
  std::string message;
};

struct Dataset {
  std::vector<TrainingExample> examples;  ///< one per good line, in file order
  std::vector<DatasetError> errors;       ///< one per bad line: malformed, empty, too long, ...
  int64_t trained_tokens() const;
};

/// Parses `jsonl`. Each line that is not a well-formed example (bad JSON, no messages, an empty
/// conversation, no assistant turn, an unknown role, more than `max_tokens` tokens) is an error
/// naming its line, and the others are kept. `chat` may be null when no line is a conversation.
Dataset read_dataset(std::string_view jsonl, const llm::Tokenizer& tokenizer, const llm::ChatTemplate* chat,
                     int max_tokens);

}  // namespace weft::finetune
