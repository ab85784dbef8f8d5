// The service on the runtime with the real default model: the engine actor, the streamer actor
// and tokenizing tasks, sharing the runtime's two workers.
#include "serving/service.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>

#include "llm/generator.h"

namespace weft::serving {
namespace {

class Capture final : public RequestSink {
 public:
  void on_delta(std::string text, std::vector<TokenInfo>) override {
    std::lock_guard<std::mutex> lock(mu_);
    text_ += text;
    ++deltas_;
  }
  void on_finish(std::string reason, Usage usage, std::string error, int code) override {
    std::lock_guard<std::mutex> lock(mu_);
    reason_ = reason;
    usage_ = usage;
    error_ = error;
    code_ = code;
    done_ = true;
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mu_);
    ASSERT_TRUE(cv_.wait_for(lock, std::chrono::seconds(120), [&] { return done_; }));
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::string text_, reason_, error_;
  Usage usage_;
  int code_ = 0, deltas_ = 0;
  bool done_ = false;
};

const std::string kModel = std::string(WEFT_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kModel)) GTEST_SKIP() << "run scripts/setup to fetch the default model";
    ASSERT_TRUE(weft::init({.num_workers = 2}).is_ok());
  }
  void TearDown() override {
    service_.reset();
    if (weft::is_initialized()) EXPECT_TRUE(weft::shutdown().is_ok());
  }
  void start(ServiceOptions o = {}) {
    o.model_path = kModel;
    auto s = Service::start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    service_ = std::move(*s);
  }
  GenerationRequest completion(const std::string& prompt, int max_tokens) {
    GenerationRequest r;
    r.prompt = prompt;
    r.spec.max_tokens = max_tokens;
    return r;
  }
  std::unique_ptr<Service> service_;
};

TEST_F(ServiceTest, GreedyTextEqualsGenerateAlone) {
  start();
  auto model = llm::LlamaModel::load(kModel, {.threads = 1});
  ASSERT_TRUE(model.ok());
  auto tok = llm::Tokenizer::from_gguf((*model)->file());
  const std::vector<std::string> prompts = {"The capital of France is", "def add(a, b):", "Water boils at"};
  std::vector<std::shared_ptr<Capture>> caps;
  for (const auto& p : prompts) {
    caps.push_back(std::make_shared<Capture>());
    ASSERT_TRUE(service_->submit(completion(p, 20), caps.back()).ok());
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    caps[i]->wait();
    auto g = llm::generate(**model, *tok, *tok->encode(prompts[i]), {.max_tokens = 20});
    ASSERT_TRUE(g.ok());
    EXPECT_EQ(caps[i]->text_, g->text) << prompts[i];
    EXPECT_EQ(caps[i]->usage_.completion_tokens, static_cast<int>(g->tokens.size()));
    EXPECT_EQ(caps[i]->usage_.prompt_tokens, g->prompt_tokens);
    EXPECT_EQ(caps[i]->reason_, g->finish == llm::FinishReason::kLength ? "length" : "stop");
  }
  const std::string m = service_->metrics_text();
  EXPECT_NE(m.find("weft_generation_tokens_total{model_name=\"SmolLM2-135M-Instruct.Q4_1\"}"), std::string::npos);
}

TEST_F(ServiceTest, StopStringsErrorsCancellationAndOverload) {
  start({.max_waiting = 3});
  auto stopped = std::make_shared<Capture>();
  GenerationRequest r = completion("Count: 1, 2, 3, 4,", 40);
  r.stop = {" 7"};
  ASSERT_TRUE(service_->submit(r, stopped).ok());
  stopped->wait();
  EXPECT_EQ(stopped->reason_, "stop");
  EXPECT_EQ(stopped->text_.find(" 7"), std::string::npos);
  EXPECT_NE(stopped->text_.find("6"), std::string::npos) << stopped->text_;

  auto too_long = std::make_shared<Capture>();
  std::string huge;
  for (int i = 0; i < 9000; ++i) huge += "word ";
  ASSERT_TRUE(service_->submit(completion(huge, 4), too_long).ok());
  too_long->wait();
  EXPECT_EQ(too_long->reason_, "error");
  EXPECT_EQ(too_long->code_, 400);
  EXPECT_NE(too_long->error_.find("context"), std::string::npos);

  // Cancelled mid-generation: the sink hears no more, and its KV blocks come back.
  auto cancelled = std::make_shared<Capture>();
  GenerationRequest story = completion("Tell me a long story.", 2000);
  story.spec.ignore_eos = true;
  auto id = service_->submit(story, cancelled);
  ASSERT_TRUE(id.ok());
  while (true) {
    std::lock_guard<std::mutex> lock(cancelled->mu_);
    if (cancelled->deltas_ > 3 || cancelled->done_) break;
  }
  service_->cancel(*id);
  for (int i = 0; i < 500 && service_->metrics_text().find("weft_kv_cache_blocks_used{model_name=\"SmolLM2-135M-Instruct.Q4_1\"} 0\n") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(service_->metrics_text().find("weft_kv_cache_blocks_used{model_name=\"SmolLM2-135M-Instruct.Q4_1\"} 0\n"), std::string::npos);
  EXPECT_FALSE(cancelled->done_);

  // More in flight than allowed: refused at once.
  std::vector<std::shared_ptr<Capture>> many;
  int refused = 0;
  for (int i = 0; i < 6; ++i) {
    many.push_back(std::make_shared<Capture>());
    auto s = service_->submit(completion("Hi", 30), many.back());
    if (!s.ok()) {
      EXPECT_EQ(s.status().code(), StatusCode::kResourceExhausted);
      ++refused;
      many.pop_back();
    }
  }
  EXPECT_GE(refused, 3);
  for (auto& c : many) c->wait();
  service_->stop();
  EXPECT_EQ(service_->submit(completion("Hi", 3), std::make_shared<Capture>()).status().code(), StatusCode::kUnavailable);
}

TEST_F(ServiceTest, SloAttainmentIsCountedPerClassAgainstTheRequestsOrTheDefaultTargets) {
  ServiceOptions o;
  o.engine.scheduler.default_targets[static_cast<size_t>(Slo::kStandard)].tpot_ns = 1;  // nobody meets 1 ns
  start(o);
  auto rushed = std::make_shared<Capture>(), relaxed = std::make_shared<Capture>(), plain = std::make_shared<Capture>();
  GenerationRequest a = completion("The capital of France is", 8);
  a.spec.slo = static_cast<uint8_t>(Slo::kLatencyCritical);
  a.spec.tpot_ns = 1;  // its own target: missed
  a.spec.ignore_eos = true;
  GenerationRequest b = completion("Water boils at", 8);
  b.spec.slo = static_cast<uint8_t>(Slo::kBatch);
  b.spec.ttft_ns = b.spec.tpot_ns = 3'600'000'000'000;  // an hour: attained
  b.spec.ignore_eos = true;
  GenerationRequest c = completion("def add(a, b):", 8);  // standard, the server's 1 ns default: missed
  c.spec.ignore_eos = true;
  ASSERT_TRUE(service_->submit(a, rushed).ok());
  ASSERT_TRUE(service_->submit(b, relaxed).ok());
  ASSERT_TRUE(service_->submit(c, plain).ok());
  rushed->wait();
  relaxed->wait();
  plain->wait();
  const std::string m = service_->metrics_text();
  auto figure = [&](const std::string& name, const std::string& slo) {
    const std::string key = name + "{model_name=\"SmolLM2-135M-Instruct.Q4_1\",slo=\"" + slo + "\"} ";
    const size_t at = m.find(key);
    return at == std::string::npos ? std::string("absent")
                                   : m.substr(at + key.size(), m.find('\n', at) - at - key.size());
  };
  EXPECT_EQ(figure("weft_slo_requests_total", "latency_critical"), "1");
  EXPECT_EQ(figure("weft_slo_attained_total", "latency_critical"), "0");
  EXPECT_EQ(figure("weft_slo_requests_total", "batch"), "1");
  EXPECT_EQ(figure("weft_slo_attained_total", "batch"), "1");
  EXPECT_EQ(figure("weft_slo_goodput_tokens_total", "batch"), "8");
  EXPECT_EQ(figure("weft_slo_attainment", "batch"), "1");
  EXPECT_EQ(figure("weft_slo_requests_total", "standard"), "1");
  EXPECT_EQ(figure("weft_slo_attained_total", "standard"), "0");
  EXPECT_EQ(figure("weft_slo_attainment", "standard"), "0");
}

}  // namespace
}  // namespace weft::serving
