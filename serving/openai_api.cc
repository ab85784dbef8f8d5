#include "serving/openai_api.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace weft::serving {
namespace {

using nlohmann::json;

ApiError bad(std::string param, std::string message) {
  return {400, std::move(message), "invalid_request_error", std::move(param), ""};
}

// Reads an optional number in [lo, hi]; null or absent keeps `out`.
std::optional<ApiError> number(const json& j, const char* key, double lo, double hi, double& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) return bad(key, fmt::format("'{}' must be a number", key));
  const double v = it->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi)
    return bad(key, fmt::format("'{}' must be between {} and {}", key, lo, hi));
  out = v;
  return std::nullopt;
}

std::optional<ApiError> number(const json& j, const char* key, double lo, double hi, float& out) {
  double v = out;
  if (auto e = number(j, key, lo, hi, v)) return e;
  out = static_cast<float>(v);
  return std::nullopt;
}

// Reads an optional integer in [lo, hi]; a float with no fraction (5.0, 1e3) counts as one.
std::optional<ApiError> integer(const json& j, const char* key, long long lo, long long hi, long long& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  auto out_of_range = [&] { return bad(key, fmt::format("'{}' must be between {} and {}", key, lo, hi)); };
  long long v = 0;
  if (it->is_number_unsigned()) {
    if (it->get<unsigned long long>() > static_cast<unsigned long long>(std::numeric_limits<long long>::max())) {
      return out_of_range();
    }
    v = static_cast<long long>(it->get<unsigned long long>());
  } else if (it->is_number_integer()) {
    v = it->get<long long>();
  } else if (it->is_number_float() && std::isfinite(it->get<double>()) &&
             it->get<double>() == std::floor(it->get<double>())) {
    // Doubles are exact up to 2^53. Beyond, the number written may not be the one read (an integer
    // literal past the 64-bit range is read as a double too, -2^63 - 1 as -2^63): refused.
    const double d = it->get<double>();
    if (d < static_cast<double>(lo) || d > static_cast<double>(hi)) return out_of_range();
    if (std::fabs(d) > 0x1p53) {
      return bad(key, fmt::format("'{}' must be an integer (written without a fraction or exponent)", key));
    }
    v = static_cast<long long>(d);
  } else {
    return bad(key, fmt::format("'{}' must be an integer", key));
  }
  if (v < lo || v > hi) return out_of_range();
  out = v;
  return std::nullopt;
}

std::optional<ApiError> boolean(const json& j, const char* key, bool& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) return bad(key, fmt::format("'{}' must be a boolean", key));
  out = it->get<bool>();
  return std::nullopt;
}

std::optional<ApiError> parse_messages(const json& j, std::vector<llm::ChatMessage>& out) {
  auto it = j.find("messages");
  if (it == j.end() || !it->is_array() || it->empty()) return bad("messages", "'messages' must be a non-empty list");
  for (const json& m : *it) {
    if (!m.is_object()) return bad("messages", "each message must be an object");
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) return bad("messages", "each message needs a 'role' string");
    std::string r = role->get<std::string>();
    if (r == "developer") r = "system";
    if (r != "system" && r != "user" && r != "assistant") {
      return bad("messages", fmt::format("unsupported role '{}' (system, developer, user or assistant)", r));
    }
    std::string content;
    auto c = m.find("content");
    if (c == m.end() || c->is_null()) {
      if (r != "assistant") return bad("messages", "a message needs 'content'");
    } else if (c->is_string()) {
      content = c->get<std::string>();
    } else if (c->is_array()) {
      for (const json& part : *c) {
        // Read without json::value, which throws on a "type" that is not a string.
        const bool is_object = part.is_object();
        const auto type = is_object ? part.find("type") : part.end();
        const auto text = is_object ? part.find("text") : part.end();
        if (!is_object || type == part.end() || !type->is_string() || *type != "text" || text == part.end() ||
            !text->is_string()) {
          return bad("messages", "content parts must be {\"type\": \"text\", \"text\": \"...\"}");
        }
        content += text->get<std::string>();
      }
    } else {
      return bad("messages", "'content' must be a string or a list of text parts");
    }
    out.push_back({std::move(r), std::move(content)});
  }
  return std::nullopt;
}

std::optional<ApiError> parse_priority(const json& j, RequestSpec& spec) {
  auto it = j.find("priority");
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (it->is_number()) {
    long long v = 0;
    if (integer(j, "priority", 0, 2, v)) {
      return bad("priority", "'priority' must be 0 (latency-critical), 1 (standard) or 2 (batch)");
    }
    spec.slo = static_cast<uint8_t>(v);
    return std::nullopt;
  }
  if (!it->is_string()) return bad("priority", "'priority' must be a string or an integer");
  const std::string p = it->get<std::string>();
  if (p == "latency-critical" || p == "latency_critical" || p == "interactive") {
    spec.slo = 0;
  } else if (p == "standard" || p == "default") {
    spec.slo = 1;
  } else if (p == "batch") {
    spec.slo = 2;
  } else {
    return bad("priority", "'priority' must be \"latency-critical\", \"standard\" or \"batch\"");
  }
  return std::nullopt;
}

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

json bytes_of(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

// Token text as JSON can carry it: invalid UTF-8 (a token holding part of a character) replaced.
std::string printable(const std::string& s) { return json(s).dump(-1, ' ', false, json::error_handler_t::replace); }

// Characters (code points) of the text as JSON carries it.
size_t characters(const std::string& s) {
  const std::string p = json::parse(printable(s)).get<std::string>();
  return static_cast<size_t>(std::count_if(p.begin(), p.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

// `offset`: characters of completion text before the first of `tokens` (completions only).
json logprobs_json(const std::vector<TokenInfo>& tokens, bool chat, size_t offset) {
  auto text = [](const std::string& s) { return json::parse(printable(s)); };
  if (chat) {
    json content = json::array();
    for (const TokenInfo& t : tokens) {
      json top = json::array();
      for (const auto& [s, lp] : t.top) top.push_back({{"token", text(s)}, {"logprob", lp}, {"bytes", bytes_of(s)}});
      content.push_back(
          {{"token", text(t.text)}, {"logprob", t.logprob}, {"bytes", bytes_of(t.text)}, {"top_logprobs", top}});
    }
    return {{"content", content}};
  }
  json toks = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
  for (const TokenInfo& t : tokens) {
    toks.push_back(text(t.text));
    lps.push_back(t.logprob);
    json top = json::object();
    for (const auto& [s, lp] : t.top) top[json(text(s)).get<std::string>()] = lp;
    tops.push_back(top);
    offsets.push_back(offset);
    offset += characters(t.text);
  }
  return {{"tokens", toks}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

std::string error_body(const ApiError& e) {
  json err = {{"message", e.message},
              {"type", e.type},
              {"param", e.param.empty() ? json(nullptr) : json(e.param)},
              {"code", e.code.empty() ? json(nullptr) : json(e.code)}};
  return dump({{"error", err}});
}

namespace {

std::variant<ApiRequest, ApiError> parse_body(std::string_view body, bool chat, const std::string& served_model,
                                              int context_length, const std::map<std::string, std::string>& adapters) {
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded()) return bad("", "the body is not valid JSON");
  if (!j.is_object()) return bad("", "the body must be a JSON object");
  ApiRequest out;
  out.chat = chat;
  GenerationRequest& g = out.generation;
  g.chat = chat;
  RequestSpec& spec = g.spec;

  if (auto m = j.find("model"); m != j.end() && !m->is_null()) {
    if (!m->is_string()) return bad("model", "'model' must be a string");
    const std::string model = m->get<std::string>();
    if (adapters.count(model) != 0) {
      spec.adapter = model;
    } else if (model != served_model) {
      std::string served = fmt::format("'{}'", served_model);
      for (const auto& [name, path] : adapters) served += fmt::format(", '{}'", name);
      return ApiError{404, fmt::format("The model '{}' does not exist; this server serves {}", model, served),
                      "invalid_request_error", "model", "model_not_found"};
    }
  }
  if (chat) {
    if (auto e = parse_messages(j, g.messages)) return *e;
  } else {
    auto p = j.find("prompt");
    if (p == j.end() || p->is_null()) return bad("prompt", "'prompt' is required");
    if (p->is_string()) {
      g.prompt = p->get<std::string>();
    } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
      g.prompt = (*p)[0].get<std::string>();
    } else {
      return bad("prompt", "'prompt' must be a string (or a list of one string)");
    }
    // Invalid UTF-8 in a prompt is refused rather than guessed at.
    try {
      (void)json(g.prompt).dump();
    } catch (const json::exception&) {
      return bad("prompt", "'prompt' is not valid UTF-8");
    }
  }
  long long n = 1;
  if (auto e = integer(j, "n", 1, 1, n))
    return ApiError{400, "only n = 1 is supported", "invalid_request_error", "n", ""};
  long long max_tokens = chat ? std::max(1, context_length) : 16;
  const long long cap = std::max(1, context_length);
  // Both are checked; max_completion_tokens, when not null, is the one that counts.
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (auto e = integer(j, key, 1, std::numeric_limits<long long>::max(), max_tokens)) return *e;
  }
  spec.max_tokens = static_cast<int>(std::min(max_tokens, cap));
  if (auto e = number(j, "temperature", 0, 2, spec.temperature)) return *e;
  double top_p = 1;
  if (auto e = number(j, "top_p", 0, 1, top_p)) return *e;
  if (top_p <= 0) return bad("top_p", "'top_p' must be greater than 0");
  // Checked as sent: a top_p too small for a float is still above 0.
  spec.top_p = std::max(static_cast<float>(top_p), std::numeric_limits<float>::denorm_min());
  long long top_k = 0;
  if (auto e = integer(j, "top_k", -1, 1 << 30, top_k)) return *e;
  spec.top_k = top_k < 0 ? 0 : static_cast<int>(top_k);
  if (auto e = number(j, "min_p", 0, 1, spec.min_p)) return *e;
  if (auto e = number(j, "repetition_penalty", 0.01, 10, spec.repeat_penalty)) return *e;
  for (const char* key : {"frequency_penalty", "presence_penalty"}) {
    float v = 0;
    if (auto e = number(j, key, -2, 2, v)) return *e;
    if (v != 0) return bad(key, fmt::format("'{}' is not supported (use repetition_penalty)", key));
  }
  long long seed = 0;
  if (auto e = integer(j, "seed", std::numeric_limits<long long>::min(), std::numeric_limits<long long>::max(), seed))
    return *e;
  spec.seed = static_cast<uint64_t>(seed);
  if (auto s = j.find("stop"); s != j.end() && !s->is_null()) {
    if (s->is_string()) {
      g.stop.push_back(s->get<std::string>());
    } else if (s->is_array() && s->size() <= 16) {
      for (const json& x : *s) {
        if (!x.is_string()) return bad("stop", "'stop' must be a string or a list of strings");
        g.stop.push_back(x.get<std::string>());
      }
    } else {
      return bad("stop", "'stop' must be a string or a list of at most 16 strings");
    }
    for (const std::string& x : g.stop) {
      if (x.empty()) return bad("stop", "stop strings must not be empty");
    }
  }
  if (auto e = boolean(j, "stream", out.stream)) return *e;
  if (auto so = j.find("stream_options"); so != j.end() && !so->is_null()) {
    if (!so->is_object()) return bad("stream_options", "'stream_options' must be an object");
    if (boolean(*so, "include_usage", out.include_usage)) {
      return bad("stream_options.include_usage", "'stream_options.include_usage' must be a boolean");
    }
  }
  if (auto e = boolean(j, "ignore_eos", spec.ignore_eos)) return *e;
  if (chat) {
    if (auto e = boolean(j, "logprobs", out.logprobs)) return *e;
    long long top = 0;
    if (auto e = integer(j, "top_logprobs", 0, 20, top)) return *e;
    if (j.contains("top_logprobs") && !j["top_logprobs"].is_null() && !out.logprobs) {
      return bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    }
    spec.top_logprobs = out.logprobs ? static_cast<int>(top) : -1;
  } else {
    long long lp = -1;
    if (auto e = integer(j, "logprobs", 0, 20, lp)) return *e;
    out.logprobs = lp >= 0;
    spec.top_logprobs = static_cast<int>(lp);
  }
  if (auto e = parse_priority(j, spec)) return *e;
  float ttft = 0, tpot = 0;
  if (auto e = number(j, "ttft_ms", 0, 3.6e6, ttft)) return *e;
  if (auto e = number(j, "tpot_ms", 0, 3.6e6, tpot)) return *e;
  spec.ttft_ns = static_cast<int64_t>(ttft * 1e6);
  spec.tpot_ns = static_cast<int64_t>(tpot * 1e6);
  // Speculative decoding for this request: false turns it off, a number caps its tree's size.
  if (auto s = j.find("speculate"); s != j.end() && !s->is_null()) {
    if (s->is_boolean()) {
      spec.speculate = s->get<bool>() ? -1 : 0;
    } else {
      long long nodes = -1;
      if (auto e = integer(j, "speculate", 0, 64, nodes)) {
        return bad("speculate", "'speculate' must be a boolean or an integer from 0 to 64");
      }
      spec.speculate = static_cast<int>(nodes);
    }
  }
  return out;
}

}  // namespace

std::variant<ApiRequest, ApiError> parse_request(std::string_view body, bool chat, const std::string& served_model,
                                                 int context_length,
                                                 const std::map<std::string, std::string>& adapters) {
  // The checks above read JSON only as what they have tested it to be; should one slip, the
  // request is still refused, not the server brought down.
  try {
    return parse_body(body, chat, served_model, context_length, adapters);
  } catch (const json::exception& e) {
    return bad("", fmt::format("the request cannot be read: {}", e.what()));
  }
}

std::string response_body(const ResponseHead& h, const std::string& text, const std::vector<TokenInfo>& tokens,
                          bool logprobs, const std::string& finish_reason, const Usage& usage) {
  json choice = {{"index", 0}, {"finish_reason", finish_reason}};
  choice["logprobs"] = logprobs ? logprobs_json(tokens, h.chat, 0) : json(nullptr);
  if (h.chat) {
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  } else {
    choice["text"] = text;
  }
  json body = {{"id", h.id},
               {"object", h.chat ? "chat.completion" : "text_completion"},
               {"created", h.created},
               {"model", h.model},
               {"choices", json::array({choice})},
               {"usage", usage_json(usage)}};
  return dump(body);
}

std::string chunk_event(const ResponseHead& h, const std::string& text, const std::vector<TokenInfo>& tokens,
                        bool logprobs, bool role, const char* finish_reason, bool include_usage, size_t text_offset) {
  json choice = {{"index", 0}, {"finish_reason", finish_reason ? json(finish_reason) : json(nullptr)}};
  choice["logprobs"] = logprobs && !tokens.empty() ? logprobs_json(tokens, h.chat, text_offset) : json(nullptr);
  if (h.chat) {
    json delta = json::object();
    if (role) delta["role"] = "assistant";
    if (!text.empty() || role) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  json body = {{"id", h.id},
               {"object", h.chat ? "chat.completion.chunk" : "text_completion"},
               {"created", h.created},
               {"model", h.model},
               {"choices", json::array({choice})}};
  if (include_usage) body["usage"] = nullptr;
  return "data: " + dump(body) + "\n\n";
}

size_t logprobs_text_length(const std::vector<TokenInfo>& tokens) {
  size_t n = 0;
  for (const TokenInfo& t : tokens) n += characters(t.text);
  return n;
}

std::string usage_event(const ResponseHead& h, const Usage& usage) {
  json body = {{"id", h.id},
               {"object", h.chat ? "chat.completion.chunk" : "text_completion"},
               {"created", h.created},
               {"model", h.model},
               {"choices", json::array()},
               {"usage", usage_json(usage)}};
  return "data: " + dump(body) + "\n\n";
}

std::string models_body(const std::string& model, long long created,
                        const std::map<std::string, std::string>& adapters) {
  json data = json::array({{{"id", model}, {"object", "model"}, {"created", created}, {"owned_by", "weft"}}});
  for (const auto& [name, path] : adapters) {
    data.push_back({{"id", name},
                    {"object", "model"},
                    {"created", created},
                    {"owned_by", "weft"},
                    {"parent", model},
                    {"root", path}});
  }
  return dump({{"object", "list"}, {"data", data}});
}

std::variant<AdapterRequest, ApiError> parse_adapter_request(std::string_view body, bool load) {
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("", "the body must be a JSON object");
  AdapterRequest r;
  auto name = j.find("lora_name");
  if (name == j.end() || !name->is_string() || name->get<std::string>().empty()) {
    return bad("lora_name", "'lora_name' (a non-empty string) is required");
  }
  r.name = name->get<std::string>();
  if (load) {
    auto path = j.find("lora_path");
    if (path == j.end() || !path->is_string() || path->get<std::string>().empty()) {
      return bad("lora_path", "'lora_path' (a PEFT directory or a GGUF adapter file) is required");
    }
    r.path = path->get<std::string>();
  }
  return r;
}

ApiError adapter_error(const Status& s) {
  switch (s.code()) {
    case StatusCode::kNotFound:
      return {404, s.message(), "invalid_request_error", "", "not_found"};
    case StatusCode::kResourceExhausted:
      return {413, s.message(), "invalid_request_error", "", ""};
    case StatusCode::kUnavailable:
      return {503, s.message(), "server_error", "", ""};
    case StatusCode::kInternal:
      return {500, s.message(), "server_error", "", ""};
    default:
      return {400, s.message(), "invalid_request_error", "", ""};
  }
}

}  // namespace weft::serving
