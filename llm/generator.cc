#include "llm/generator.h"

#include <algorithm>

#include <fmt/format.h>

#include "llm/text_stream.h"

namespace weft::llm {

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

namespace {

void through_adapter(Batch& b, const LoraAdapter* adapter) {
  if (adapter == nullptr) return;
  b.adapters = {adapter};
  for (BatchToken& t : b.tokens) t.adapter = 0;
}

}  // namespace

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
    through_adapter(b, options.adapter);
    WEFT_ASSIGN_OR_RETURN(logits, model.forward(b, kv));
    kv.commit(seq, end - start);
  }

  Sampler sampler(options.sampling);
  TextStream text(tokenizer, options.stop);
  std::vector<int32_t> history = prompt;
  auto emit = [&](const std::string& piece) {
    if (piece.empty()) return true;
    g.text += piece;
    return !on_text || on_text(piece);
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
    if (!emit(text.push(next))) {
      g.finish = FinishReason::kCancelled;
      return g;
    }
    if (text.stopped()) {
      g.finish = FinishReason::kStopString;
      return g;
    }
    if (produced + 1 == budget) break;
    Batch step;
    step.add_chain(seq, kv.committed(seq), {next});
    through_adapter(step, options.adapter);
    WEFT_ASSIGN_OR_RETURN(logits, model.forward(step, kv));
    kv.commit(seq, 1);
  }
  std::string tail = text.finish();
  if (text.stopped()) g.finish = FinishReason::kStopString;
  if (!emit(tail) && g.finish == FinishReason::kLength) g.finish = FinishReason::kCancelled;
  return g;
}

}  // namespace weft::llm
