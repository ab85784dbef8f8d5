// Request parsing and response formats of the OpenAI API.
#include "serving/openai_api.h"

#include "serving/finetune_api.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace weft::serving {
namespace {

using nlohmann::json;

ApiError error_of(const std::string& body, bool chat = false) {
  auto r = parse_request(body, chat, "m", 2048);
  EXPECT_TRUE(std::holds_alternative<ApiError>(r)) << body;
  return std::holds_alternative<ApiError>(r) ? std::get<ApiError>(r) : ApiError{};
}

TEST(OpenAiApi, ParsesACompletionRequest) {
  auto r = parse_request(R"({"model":"m","prompt":"hi","max_tokens":5,"temperature":0.5,"top_p":0.9,"top_k":40,
      "min_p":0.05,"seed":7,"stop":["\n","."],"stream":true,"stream_options":{"include_usage":true},
      "logprobs":2,"priority":"batch","ttft_ms":500,"speculate":5})",
                         false, "m", 2048);
  ASSERT_TRUE(std::holds_alternative<ApiRequest>(r));
  const ApiRequest& a = std::get<ApiRequest>(r);
  EXPECT_TRUE(a.stream && a.include_usage && a.logprobs);
  EXPECT_EQ(a.generation.prompt, "hi");
  EXPECT_EQ(a.generation.spec.max_tokens, 5);
  EXPECT_EQ(a.generation.spec.top_k, 40);
  EXPECT_EQ(a.generation.spec.seed, 7u);
  EXPECT_EQ(a.generation.stop, (std::vector<std::string>{"\n", "."}));
  EXPECT_EQ(a.generation.spec.top_logprobs, 2);
  EXPECT_EQ(a.generation.spec.slo, 2);
  EXPECT_EQ(a.generation.spec.ttft_ns, 500'000'000);
  EXPECT_EQ(a.generation.spec.speculate, 5);
  auto off = parse_request(R"({"prompt":"hi","speculate":false})", false, "m", 2048);
  ASSERT_TRUE(std::holds_alternative<ApiRequest>(off));
  EXPECT_EQ(std::get<ApiRequest>(off).generation.spec.speculate, 0);
  for (const char* bad : {R"({"prompt":"hi","speculate":65})", R"({"prompt":"hi","speculate":"yes"})"}) {
    auto e = parse_request(bad, false, "m", 2048);
    ASSERT_TRUE(std::holds_alternative<ApiError>(e)) << bad;
    EXPECT_EQ(std::get<ApiError>(e).param, "speculate");
  }
}

TEST(OpenAiApi, ParsesAChatRequest) {
  auto r = parse_request(R"({"messages":[{"role":"system","content":"Be brief."},
      {"role":"user","content":[{"type":"text","text":"Hi"}]}],"max_completion_tokens":9,
      "logprobs":true,"top_logprobs":3,"priority":0})",
                         true, "m", 2048);
  ASSERT_TRUE(std::holds_alternative<ApiRequest>(r));
  const ApiRequest& a = std::get<ApiRequest>(r);
  ASSERT_EQ(a.generation.messages.size(), 2u);
  EXPECT_EQ(a.generation.messages[1].content, "Hi");
  EXPECT_EQ(a.generation.spec.max_tokens, 9);
  EXPECT_EQ(a.generation.spec.top_logprobs, 3);
  EXPECT_EQ(a.generation.spec.slo, 0);
}

TEST(OpenAiApi, MistakesNameTheirParameter) {
  EXPECT_EQ(error_of("{not json").param, "");
  EXPECT_EQ(error_of("[1,2]").status, 400);
  EXPECT_EQ(error_of(R"({"prompt":5})").param, "prompt");
  EXPECT_EQ(error_of(R"({})").param, "prompt");
  EXPECT_EQ(error_of(R"({"prompt":"x","max_tokens":"5"})").param, "max_tokens");
  EXPECT_EQ(error_of(R"({"prompt":"x","max_tokens":0})").param, "max_tokens");
  EXPECT_EQ(error_of(R"({"prompt":"x","max_tokens":1e300})").param, "max_tokens");
  EXPECT_EQ(error_of(R"({"prompt":"x","max_tokens":123456789012345678901234567890})").param, "max_tokens");
  EXPECT_EQ(error_of(R"({"prompt":"x","temperature":3})").param, "temperature");
  // max_completion_tokens takes the place of max_tokens, which must still be valid.
  EXPECT_EQ(error_of(R"({"prompt":"x","max_tokens":0,"max_completion_tokens":5})").param, "max_tokens");
  EXPECT_EQ(error_of(R"({"prompt":"x","max_tokens":5,"max_completion_tokens":0})").param, "max_completion_tokens");
  auto both = parse_request(R"({"prompt":"x","max_tokens":5,"max_completion_tokens":7})", false, "m", 2048);
  EXPECT_EQ(std::get<ApiRequest>(both).generation.spec.max_tokens, 7);
  EXPECT_EQ(error_of(R"({"prompt":"x","n":2})").param, "n");
  EXPECT_EQ(error_of(R"({"prompt":"x","stop":[1]})").param, "stop");
  EXPECT_EQ(error_of(R"({"prompt":"x","priority":"urgent"})").param, "priority");
  EXPECT_EQ(error_of(R"({"prompt":"x","stream":"yes"})").param, "stream");
  EXPECT_EQ(error_of(R"({"prompt":"x","logprobs":21})").param, "logprobs");
  EXPECT_EQ(error_of(R"({"prompt":"x","stream_options":{"include_usage":1}})").param, "stream_options.include_usage");
  EXPECT_EQ(error_of(R"({"messages":[]})", true).param, "messages");
  EXPECT_EQ(error_of(R"({"messages":[{"role":"robot","content":"x"}]})", true).param, "messages");
  EXPECT_EQ(error_of(R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":2})", true).param, "top_logprobs");
  ApiError e = error_of(R"({"model":"other","prompt":"x"})");
  EXPECT_EQ(e.status, 404);
  EXPECT_EQ(e.code, "model_not_found");
  EXPECT_EQ(error_of("{\"prompt\":\"\xff\xfe\"}").status, 400);  // invalid UTF-8
}

TEST(OpenAiApi, ContentPartsOfAnyShapeAreRefusedNotThrown) {
  // A "type" that is not a string once threw out of the parser (and took the server down).
  for (const char* part : {R"({"type":5,"text":"x"})", R"({"type":null,"text":"x"})", R"({"type":["text"],"text":"x"})",
                           R"({"type":"text","text":5})", R"({"type":"text"})", R"("x")", R"(null)"}) {
    const std::string body = std::string(R"({"messages":[{"role":"user","content":[)") + part + "]}]}";
    ApiError e = error_of(body, true);
    EXPECT_EQ(e.status, 400) << body;
    EXPECT_EQ(e.param, "messages") << body;
  }
}

TEST(OpenAiApi, IntegersWrittenAsFloatsAreCheckedAgainstTheirRange) {
  auto parsed = [](const std::string& body) { return std::get<ApiRequest>(parse_request(body, false, "m", 2048)); };
  EXPECT_EQ(parsed(R"({"prompt":"x","max_tokens":5.0})").generation.spec.max_tokens, 5);
  EXPECT_EQ(parsed(R"({"prompt":"x","seed":-9223372036854775808})").generation.spec.seed, 1ull << 63);
  EXPECT_EQ(parsed(R"({"prompt":"x","seed":9007199254740992.0})").generation.spec.seed, 1ull << 53);
  // Past the 64-bit range an integer is read as a double, -2^63 - 1 as -2^63: refused, not rounded.
  EXPECT_EQ(error_of(R"({"prompt":"x","seed":-9223372036854775809})").param, "seed");
  EXPECT_EQ(error_of(R"({"prompt":"x","seed":-9223372036854775808.0})").param, "seed");
  EXPECT_EQ(error_of(R"({"prompt":"x","seed":9007199254740994.0})").param, "seed");
  // 2^63 as a double is one past the largest long long: refused, not converted.
  EXPECT_EQ(error_of(R"({"prompt":"x","seed":9223372036854775808.0})").param, "seed");
  EXPECT_EQ(error_of(R"({"prompt":"x","seed":9223372036854775808})").param, "seed");
  EXPECT_EQ(error_of(R"({"prompt":"x","seed":1e19})").param, "seed");
  EXPECT_EQ(error_of(R"({"prompt":"x","max_tokens":0.0})").message,
            "'max_tokens' must be between 1 and 9223372036854775807");
  EXPECT_EQ(error_of(R"({"prompt":"x","max_tokens":1.5})").message, "'max_tokens' must be an integer");
  // priority takes integers the way every other integer parameter does.
  EXPECT_EQ(parsed(R"({"prompt":"x","priority":2.0})").generation.spec.slo, 2);
  EXPECT_EQ(error_of(R"({"prompt":"x","priority":1.5})").param, "priority");
  EXPECT_EQ(error_of(R"({"prompt":"x","priority":3})").param, "priority");
  EXPECT_EQ(error_of(R"({"prompt":"x","priority":true})").param, "priority");
}

TEST(OpenAiApi, TopPIsCheckedAsSent) {
  // 5e-324 is above 0 as a double and 0 as a float: accepted, kept above 0.
  auto r = parse_request(R"({"prompt":"x","top_p":5e-324})", false, "m", 2048);
  ASSERT_TRUE(std::holds_alternative<ApiRequest>(r));
  EXPECT_GT(std::get<ApiRequest>(r).generation.spec.top_p, 0.0f);
  EXPECT_EQ(error_of(R"({"prompt":"x","top_p":0})").param, "top_p");
  EXPECT_EQ(error_of(R"({"prompt":"x","top_p":-0.0})").param, "top_p");
}

TEST(OpenAiApi, CompletionLogprobsCountTextOffsets) {
  const std::vector<TokenInfo> tokens = {{"Hé", -0.1f, {}}, {"llo", -0.2f, {}}, {"!", -0.3f, {}}};
  json body = json::parse(response_body({"cmpl-1", "m", 1, false}, "Héllo!", tokens, true, "length", {1, 3}));
  EXPECT_EQ(body["choices"][0]["logprobs"]["text_offset"], json::array({0, 2, 5}));  // characters, not bytes
  EXPECT_EQ(logprobs_text_length(tokens), 6u);
  // Streamed, each chunk goes on from the characters before it.
  std::string ev = chunk_event({"cmpl-1", "m", 1, false}, "!", {tokens[2]}, true, false, nullptr, false, 5);
  EXPECT_EQ(json::parse(ev.substr(6))["choices"][0]["logprobs"]["text_offset"], json::array({5}));
}

TEST(OpenAiApi, ErrorAndChunkFormats) {
  json e = json::parse(error_body({400, "bad", "invalid_request_error", "prompt", ""}));
  EXPECT_EQ(e["error"]["message"], "bad");
  EXPECT_EQ(e["error"]["param"], "prompt");
  EXPECT_TRUE(e["error"]["code"].is_null());
  ResponseHead h{"chatcmpl-1", "m", 1, true};
  std::string ev = chunk_event(h, "Hi", {}, false, true, nullptr, true);
  ASSERT_EQ(ev.rfind("data: ", 0), 0u);
  ASSERT_EQ(ev.substr(ev.size() - 2), "\n\n");
  json c = json::parse(ev.substr(6));
  EXPECT_EQ(c["object"], "chat.completion.chunk");
  EXPECT_EQ(c["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(c["choices"][0]["delta"]["content"], "Hi");
  EXPECT_TRUE(c["choices"][0]["finish_reason"].is_null());
  EXPECT_TRUE(c.contains("usage") && c["usage"].is_null());
  json u = json::parse(usage_event(h, {3, 4}).substr(6));
  EXPECT_EQ(u["usage"]["total_tokens"], 7);
  EXPECT_TRUE(u["choices"].empty());
  json body = json::parse(
      response_body({"cmpl-1", "m", 1, false}, "text", {{"a", -0.5f, {{"a", -0.5f}}}}, true, "length", {1, 1}));
  EXPECT_EQ(body["choices"][0]["text"], "text");
  EXPECT_EQ(body["choices"][0]["logprobs"]["token_logprobs"][0], -0.5);
}

TEST(OpenAiApi, AModelNamingAnAdapterSelectsIt) {
  const std::map<std::string, std::string> adapters = {{"pirate", "/a/pirate"}, {"sql", "/a/sql.gguf"}};
  auto r = parse_request(R"({"model":"pirate","prompt":"hi"})", false, "m", 2048, adapters);
  ASSERT_TRUE(std::holds_alternative<ApiRequest>(r));
  EXPECT_EQ(std::get<ApiRequest>(r).generation.spec.adapter, "pirate");
  auto base = parse_request(R"({"model":"m","prompt":"hi"})", false, "m", 2048, adapters);
  EXPECT_EQ(std::get<ApiRequest>(base).generation.spec.adapter, "");
  auto none = parse_request(R"({"model":"parrot","prompt":"hi"})", false, "m", 2048, adapters);
  ASSERT_TRUE(std::holds_alternative<ApiError>(none));
  EXPECT_EQ(std::get<ApiError>(none).status, 404);
  EXPECT_NE(std::get<ApiError>(none).message.find("'m', 'pirate', 'sql'"), std::string::npos);

  const json models = json::parse(models_body("m", 7, adapters));
  ASSERT_EQ(models["data"].size(), 3u);
  EXPECT_EQ(models["data"][0]["id"], "m");
  EXPECT_EQ(models["data"][1]["id"], "pirate");
  EXPECT_EQ(models["data"][1]["parent"], "m");
  EXPECT_EQ(models["data"][2]["root"], "/a/sql.gguf");
}

TEST(OpenAiApi, AdapterCommands) {
  auto load = parse_adapter_request(R"({"lora_name":"x","lora_path":"/p"})", true);
  ASSERT_TRUE(std::holds_alternative<AdapterRequest>(load));
  EXPECT_EQ(std::get<AdapterRequest>(load).path, "/p");
  EXPECT_TRUE(std::holds_alternative<AdapterRequest>(parse_adapter_request(R"({"lora_name":"x"})", false)));
  for (const char* bad : {"", "[]", R"({"lora_path":"/p"})", R"({"lora_name":"","lora_path":"/p"})",
                          R"({"lora_name":"x"})", R"({"lora_name":3,"lora_path":"/p"})"}) {
    auto e = parse_adapter_request(bad, true);
    ASSERT_TRUE(std::holds_alternative<ApiError>(e)) << bad;
    EXPECT_EQ(std::get<ApiError>(e).status, 400);
  }
  EXPECT_EQ(adapter_error(Status::not_found("x")).status, 404);
  EXPECT_EQ(adapter_error(Status::already_exists("x")).status, 400);
  EXPECT_EQ(adapter_error(Status::corruption("x")).status, 400);
  EXPECT_EQ(adapter_error(Status::unavailable("x")).status, 503);
}

TEST(FinetuneApi, UploadsAndBadBytesNeverThrow) {
  const std::string body =
      "--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d\xff.jsonl\"\r\n"
      "Content-Type: application/octet-stream\r\n\r\n{\"a\": 1}\n\r\n--XyZ--\r\n";
  auto up = parse_file_upload(body, "multipart/form-data; boundary=XyZ");
  ASSERT_TRUE(std::holds_alternative<FileUpload>(up));
  EXPECT_EQ(std::get<FileUpload>(up).purpose, "fine-tune");
  EXPECT_EQ(std::get<FileUpload>(up).content, "{\"a\": 1}\n");
  // A file name that is not UTF-8 is answered with a replacement character, not an exception.
  const TrainingFile f{"file-1", std::get<FileUpload>(up).filename, "fine-tune", 9, 1, ""};
  EXPECT_NE(file_json(f).find("file-1"), std::string::npos);
  for (const char* bad :
       {"", "--XyZ\r\n", "--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx", "--XyZ--\r\n"}) {
    EXPECT_TRUE(std::holds_alternative<ApiError>(parse_file_upload(bad, "multipart/form-data; boundary=XyZ"))) << bad;
  }
  EXPECT_TRUE(std::holds_alternative<ApiError>(parse_file_upload(body, "application/json")));
  auto job = parse_job_request(R"({"training_file": "file-1", "hyperparameters": {"n_epochs": 2,
      "learning_rate_multiplier": 5, "lora_target_modules": "all", "optimizer": "sgd"}})");
  ASSERT_TRUE(std::holds_alternative<JobRequest>(job));
  EXPECT_EQ(std::get<JobRequest>(job).epochs, 2);
  EXPECT_FLOAT_EQ(std::get<JobRequest>(job).learning_rate, 1e-3f);
  EXPECT_EQ(std::get<JobRequest>(job).targets.size(), 7u);
  for (const char* bad :
       {R"({})", R"({"training_file": 3})", R"({"training_file": "f", "hyperparameters": {"n_epochs": 0}})",
        R"({"training_file": "f", "hyperparameters": {"lora_target_modules": ["lm_head"]}})",
        R"({"training_file": "f", "method": {"type": "dpo"}})", "[1]", "{"}) {
    EXPECT_TRUE(std::holds_alternative<ApiError>(parse_job_request(bad))) << bad;
  }
}

}  // namespace
}  // namespace weft::serving
