#include "llm/generator.h"

#include <algorithm>

#include <fmt/format.h>

#include "llm/utf8.h"

namespace weft::llm {
namespace {

// Streams text, holding back any tail that could begin one of the stop strings.
class StopFilter {
 public:
  explicit StopFilter(const std::vector<std::string>& stop) : stop_(stop) {}

  // Appends `text`; returns what is now final. Sets `stopped` when a stop string appeared (the
  // returned text then ends just before it).
  std::string push(std::string_view text, bool& stopped) {
    held_ += text;
    size_t cut = std::string::npos;
    for (const std::string& s : stop_) {
      if (!s.empty()) cut = std::min(cut, held_.find(s));
    }
    if (cut != std::string::npos) {
      stopped = true;
      std::string out = held_.substr(0, cut);
      held_.clear();
      return out;
    }
    size_t keep = 0;  // longest suffix of held_ that is a proper prefix of a stop string
    for (const std::string& s : stop_) {
      for (size_t k = std::min(s.size() - (s.empty() ? 0 : 1), held_.size()); k > keep; --k) {
        if (held_.compare(held_.size() - k, k, s, 0, k) == 0) {
          keep = k;
          break;
        }
      }
    }
    // Never split a UTF-8 character when holding back.
    size_t emit = held_.size() - keep;
    while (emit > 0 && emit < held_.size() && (static_cast<uint8_t>(held_[emit]) & 0xC0) == 0x80) --emit;
    std::string out = held_.substr(0, emit);
    held_.erase(0, emit);
    return out;
  }
  std::string finish() { return std::exchange(held_, {}); }

 private:
  const std::vector<std::string>& stop_;
  std::string held_;
};

}  // namespace

Status GenerateOptions::validate() const {
  if (max_tokens < 0) return Status::invalid_argument(fmt::format("max_tokens must be >= 0 (got {})", max_tokens));
  if (prefill_chunk < 1) return Status::invalid_argument("prefill_chunk must be >= 1");
  return sampling.validate();
}

std::string_view to_string(FinishReason r) {
  switch (r) {
    case FinishReason::kEndOfGeneration:
      return "end_of_generation";
    case FinishReason::kStopString:
      return "stop_string";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
  }
  return "?";
}

Result<Generation> generate(const LlamaModel& model, const Tokenizer& tokenizer, const std::vector<int32_t>& prompt,
                            const GenerateOptions& options, const std::function<bool(std::string_view)>& on_text) {
  WEFT_RETURN_IF_ERROR(options.validate());
  const ModelConfig& c = model.config();
  const int n_prompt = static_cast<int>(prompt.size());
  if (n_prompt == 0) return Status::invalid_argument("the prompt is empty");
  if (c.context_length > 0 && n_prompt >= c.context_length) {
    return Status::invalid_argument(
        fmt::format("the prompt has {} tokens; the model's context holds {}", n_prompt, c.context_length));
  }
  int budget = options.max_tokens;
  if (c.context_length > 0) budget = std::min(budget, c.context_length - n_prompt);

  Generation g;
  g.prompt_tokens = n_prompt;
  KvCache kv = model.make_cache(n_prompt + budget + 1);
  const int seq = kv.add_sequence();
  std::vector<float> logits;
  for (int start = 0; start < n_prompt; start += options.prefill_chunk) {
    const int end = std::min(n_prompt, start + options.prefill_chunk);
    Batch b;
    b.add_chain(seq, start, std::vector<int32_t>(prompt.begin() + start, prompt.begin() + end), end == n_prompt);
    WEFT_ASSIGN_OR_RETURN(logits, model.forward(b, kv));
    kv.commit(seq, end - start);
  }

  Sampler sampler(options.sampling);
  Utf8Stream utf8;
  StopFilter stop(options.stop);
  std::vector<int32_t> history = prompt;
  auto emit = [&](const std::string& text) {
    if (text.empty()) return true;
    g.text += text;
    return !on_text || on_text(text);
  };
  g.finish = FinishReason::kLength;
  for (int produced = 0; produced < budget; ++produced) {
    const int32_t next = sampler.sample(std::span<const float>(logits.data(), static_cast<size_t>(c.vocab)), history);
    g.tokens.push_back(next);
    history.push_back(next);
    if (!options.ignore_eos && tokenizer.is_end_of_generation(next)) {
      g.finish = FinishReason::kEndOfGeneration;
      break;
    }
    bool stopped = false;
    if (!emit(stop.push(utf8.push(tokenizer.piece(next)), stopped))) {
      g.finish = FinishReason::kCancelled;
      return g;
    }
    if (stopped) {
      g.finish = FinishReason::kStopString;
      return g;
    }
    if (produced + 1 == budget) break;
    Batch step;
    step.add_chain(seq, kv.committed(seq), {next});
    WEFT_ASSIGN_OR_RETURN(logits, model.forward(step, kv));
    kv.commit(seq, 1);
  }
  bool stopped = false;
  std::string tail = stop.push(utf8.finish(), stopped);
  if (stopped) {
    g.finish = FinishReason::kStopString;
  } else {
    tail += stop.finish();
  }
  if (!emit(tail) && g.finish == FinishReason::kLength) g.finish = FinishReason::kCancelled;
  return g;
}

}  // namespace weft::llm
