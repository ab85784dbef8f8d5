// OpenAI's completions and chat completions API: request bodies in, response bodies and
// server-sent-event chunks out. Pure functions over JSON text; no I/O.
//
// Accepted: model, prompt (a string, or a list of one), messages (content a string or a list of
// text parts), max_tokens / max_completion_tokens, temperature, top_p, top_k, min_p, seed, stop (a
// string or a list), n (1 only), stream, stream_options.include_usage, logprobs (completions: a
// count; chat: a flag with top_logprobs), priority ("latency-critical", "standard", "batch", or
// 0..2), ttft_ms / tpot_ms (SLO targets), and vLLM's repetition_penalty and ignore_eos. Every
// mistake is an ApiError naming the parameter, in OpenAI's error format.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "serving/service.h"

namespace weft::serving {

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // empty: null
  std::string code;   // empty: null
};

std::string error_body(const ApiError& e);

struct ApiRequest {
  bool chat = false;
  bool stream = false;
  bool include_usage = false;
  bool logprobs = false;  // return log-probabilities
  GenerationRequest generation;
};

// `served_model`: the base model's name; `adapters`: the LoRA adapters served, by name (a "model"
// naming one sets spec.adapter); a "model" naming anything else is a 404. `context_length`: default
// and cap of max_tokens for chat.
std::variant<ApiRequest, ApiError> parse_request(std::string_view body, bool chat, const std::string& served_model,
                                                 int context_length,
                                                 const std::map<std::string, std::string>& adapters = {});

// POST /v1/load_lora_adapter ({"lora_name", "lora_path"}) and /v1/unload_lora_adapter
// ({"lora_name"}), as vLLM takes them.
struct AdapterRequest {
  std::string name, path;
};
std::variant<AdapterRequest, ApiError> parse_adapter_request(std::string_view body, bool load);
// The HTTP status and error of a failed adapter command.
ApiError adapter_error(const Status& s);

// The parts of a response that do not change while it streams.
struct ResponseHead {
  std::string id;  // "cmpl-..." or "chatcmpl-..."
  std::string model;
  long long created = 0;  // Unix seconds
  bool chat = false;
};

std::string response_body(const ResponseHead& h, const std::string& text, const std::vector<TokenInfo>& tokens,
                          bool logprobs, const std::string& finish_reason, const Usage& usage);
// One SSE event ("data: {...}\n\n"). `role`: the chat's first chunk announces the assistant.
// `text_offset`: what logprobs_text_length counted for the tokens of the chunks before this one
// (completions' logprobs.text_offset counts characters from the start of the completion).
std::string chunk_event(const ResponseHead& h, const std::string& text, const std::vector<TokenInfo>& tokens,
                        bool logprobs, bool role, const char* finish_reason, bool include_usage,
                        size_t text_offset = 0);
size_t logprobs_text_length(const std::vector<TokenInfo>& tokens);
std::string usage_event(const ResponseHead& h, const Usage& usage);
// The base model, then each adapter (its "parent" the base model, its "root" the path it came from).
std::string models_body(const std::string& model, long long created,
                        const std::map<std::string, std::string>& adapters = {});

}  // namespace weft::serving
