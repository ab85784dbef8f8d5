#include "finetune/dataset.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace weft::finetune {
namespace {

using nlohmann::json;

// Appends `text`'s tokens to `ex`, marked trained or not.
Status append(TrainingExample& ex, const llm::Tokenizer& tok, std::string_view text, bool trained, bool first) {
  WEFT_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok.encode(text, first, /*parse_special=*/true));
  ex.tokens.insert(ex.tokens.end(), ids.begin(), ids.end());
  ex.trained.insert(ex.trained.end(), ids.size(), trained ? 1 : 0);
  return Status::ok();
}

Result<TrainingExample> conversation(const json& messages, const llm::Tokenizer& tok, const llm::ChatTemplate* chat) {
  if (!messages.is_array() || messages.empty()) return Status::invalid_argument("'messages' is an empty conversation");
  // Each assistant turn renders the conversation so far: bounded, so a line cannot cost more than
  // this many renders.
  if (messages.size() > 256) return Status::invalid_argument("a conversation has at most 256 messages");
  if (chat == nullptr) return Status::invalid_argument("the model has no chat template for 'messages'");
  std::vector<llm::ChatMessage> turns;
  bool any_assistant = false;
  for (const json& m : messages) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string()) {
      return Status::invalid_argument("each message needs a string 'role' and 'content'");
    }
    const std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant") {
      return Status::invalid_argument(fmt::format("unknown role '{}'", role));
    }
    any_assistant |= role == "assistant";
    turns.push_back({role, m["content"].get<std::string>()});
  }
  if (!any_assistant) return Status::invalid_argument("the conversation has no assistant message to train on");
  // The rendered text grows turn by turn; each assistant turn's text (from the end of the prompt
  // that asks for it to the end of its own rendering) is trained on, the rest is context.
  TrainingExample ex;
  std::string done;
  for (size_t i = 0; i < turns.size(); ++i) {
    if (turns[i].role != "assistant") continue;
    const std::vector<llm::ChatMessage> before(turns.begin(), turns.begin() + static_cast<ptrdiff_t>(i));
    WEFT_ASSIGN_OR_RETURN(std::string prompt, chat->render(before, /*add_generation_prompt=*/true));
    WEFT_ASSIGN_OR_RETURN(
        std::string full,
        chat->render(std::vector<llm::ChatMessage>(turns.begin(), turns.begin() + static_cast<ptrdiff_t>(i) + 1),
                     false));
    if (prompt.compare(0, done.size(), done) != 0 || full.compare(0, prompt.size(), prompt) != 0) {
      return Status::invalid_argument("the chat template does not render this conversation turn by turn");
    }
    WEFT_RETURN_IF_ERROR(append(ex, tok, std::string_view(prompt).substr(done.size()), false, done.empty()));
    WEFT_RETURN_IF_ERROR(append(ex, tok, std::string_view(full).substr(prompt.size()), true, false));
    done = std::move(full);
  }
  return ex;
}

}  // namespace

int64_t Dataset::trained_tokens() const {
  int64_t n = 0;
  for (const TrainingExample& e : examples) n += e.trained_tokens();
  return n;
}

Dataset read_dataset(std::string_view jsonl, const llm::Tokenizer& tok, const llm::ChatTemplate* chat, int max_tokens) {
  Dataset d;
  int line = 0;
  for (size_t at = 0; at < jsonl.size();) {
    size_t end = jsonl.find('\n', at);
    if (end == std::string_view::npos) end = jsonl.size();
    const std::string_view text = jsonl.substr(at, end - at);
    at = end + 1;
    ++line;
    if (text.find_first_not_of(" \t\r") == std::string_view::npos) continue;  // blank lines are allowed
    auto fail = [&](const std::string& message) { d.errors.push_back({line, message}); };
    const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      fail("not a JSON object");
      continue;
    }
    Result<TrainingExample> ex = Status::invalid_argument("needs 'messages', or 'prompt' and 'completion'");
    try {
      if (j.contains("messages")) {
        ex = conversation(j["messages"], tok, chat);
      } else if (j.contains("prompt") && j.contains("completion")) {
        if (!j["prompt"].is_string() || !j["completion"].is_string() || j["completion"].get<std::string>().empty()) {
          ex = Status::invalid_argument("'prompt' and 'completion' must be strings, the completion not empty");
        } else {
          TrainingExample e;
          Status s = append(e, tok, j["prompt"].get<std::string>(), false, true);
          if (s.is_ok()) s = append(e, tok, j["completion"].get<std::string>(), true, false);
          ex = s.is_ok() ? Result<TrainingExample>(std::move(e)) : Result<TrainingExample>(s);
        }
      }
    } catch (const json::exception& e) {
      ex = Status::invalid_argument(e.what());
    }
    if (!ex.ok()) {
      fail(ex.status().message());
      continue;
    }
    if (static_cast<int>(ex->tokens.size()) > max_tokens) {
      fail(fmt::format("the example has {} tokens; the limit is {}", ex->tokens.size(), max_tokens));
      continue;
    }
    if (ex->tokens.size() < 2 || ex->trained_tokens() == 0) {
      fail("the example has no tokens to train on");
      continue;
    }
    d.examples.push_back(std::move(ex).value());
  }
  return d;
}

}  // namespace weft::finetune
