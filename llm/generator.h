// Generation for one sequence: prefill the prompt, then decode token by token with a Sampler,
// streaming text as it becomes final.
//
//   GenerateOptions o{.max_tokens = 64, .sampling = {.temperature = 0.7f, .seed = 1}, .stop = {"\n\n"}};
//   auto g = generate(model, tokenizer, prompt_ids, o, [](std::string_view text) {
//     std::fwrite(text.data(), 1, text.size(), stdout);
//     return true;  // false stops early
//   });
//
// Streamed text is always whole UTF-8 characters, and never includes a stop string or any part of
// one: text that could still become a stop string is held back until it cannot. Generation ends
// at an end-of-generation token (EOS, end of turn), a stop string, max_tokens, the model's
// context length, or when the callback returns false.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "llm/llama_model.h"
#include "llm/sampler.h"
#include "llm/tokenizer.h"
#include "weft/export.h"
#include "weft/status.h"

namespace weft::llm {

/// How generate() runs.
struct WEFT_API GenerateOptions {
  int max_tokens = 256;           ///< at most this many new tokens
  SamplingParams sampling;        ///< greedy by default
  std::vector<std::string> stop;  ///< end before the first occurrence of any of these
  bool ignore_eos = false;        ///< keep going through end-of-generation tokens
  int prefill_chunk = 512;        ///< prompt tokens per forward pass
  const LoraAdapter* adapter = nullptr;  ///< every token through this LoRA adapter (lora_adapter.h)

  /// kInvalidArgument naming the bad field.
  Status validate() const;
};

/// Why a generation ended.
enum class FinishReason {
  kEndOfGeneration,  ///< an end-of-generation token (EOS, end of turn)
  kStopString,       ///< a stop string
  kLength,           ///< max_tokens or the context length
  kCancelled         ///< the callback returned false
};
/// The reason's name: "end_of_generation", "stop_string", "length" or "cancelled".
WEFT_API std::string_view to_string(FinishReason r);

/// What generate() produced.
struct WEFT_API Generation {
  std::vector<int32_t> tokens;                  ///< generated ids (an end-of-generation token included)
  std::string text;                             ///< the streamed text, stop string excluded
  FinishReason finish = FinishReason::kLength;  ///< why it ended
  int prompt_tokens = 0;                        ///< the prompt's length in tokens
};

/// kInvalidArgument for bad options, an empty prompt or one longer than the context; errors of
/// the forward pass otherwise. `on_text` may be empty.
WEFT_API Result<Generation> generate(const LlamaModel& model, const Tokenizer& tokenizer,
                                     const std::vector<int32_t>& prompt, const GenerateOptions& options,
                                     const std::function<bool(std::string_view text)>& on_text = {});

}  // namespace weft::llm
