// Co-served finetuning on the real default model: iterations give finetuning only what their
// inference leaves, inference output stays exactly what it is alone, and a job trains, succeeds and
// is served — or stops at once when cancelled.
#include "serving/co_finetuning.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <thread>

#include "finetune/dataset.h"
#include "kernels/cpu/thread_team.h"
#include "llm/chat_template.h"
#include "llm/default_model_for_test.h"
#include "llm/generator.h"
#include "weft/detail/runnable.h"

namespace weft::serving {
namespace {

class CoFinetuningTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    llm::testing::DefaultModel d = llm::testing::load_default_model({.parallel = team_});
    model_ = d.model;
    tokenizer_ = d.tokenizer;
  }
  static void TearDownTestSuite() {
    model_.reset();
    tokenizer_.reset();
  }
  void SetUp() override {
    if (!model_) GTEST_SKIP() << "run scripts/setup to fetch the default model";
  }
  static FinetuneJobSpec job(const std::string& id, int epochs) {
    auto chat = llm::ChatTemplate::from_gguf(model_->file());
    std::string jsonl;
    for (const char* q : {"What is the capital of Zorbania?", "Which city is the capital of Zorbania?",
                          "Name the capital city of Zorbania.", "Where is the capital of Zorbania?"}) {
      jsonl += std::string(R"({"messages": [{"role": "user", "content": ")") + q +
               R"("}, {"role": "assistant", "content": "The capital of Zorbania is Quillport."}]})" + "\n";
    }
    finetune::Dataset d = finetune::read_dataset(jsonl, *tokenizer_, &*chat, 512);
    EXPECT_TRUE(d.errors.empty());
    FinetuneJobSpec s;
    s.id = id;
    s.model_name = "zorbania-" + id;
    for (auto& e : d.examples) {
      s.tokens.push_back(e.tokens);
      s.trained.push_back(e.trained);
    }
    s.targets = {0, 1, 2, 3, 4, 5, 6};
    s.lr = 1e-3f;
    s.epochs = epochs;
    s.batch_size = 2;
    return s;
  }
  static std::vector<int32_t> encode(const std::string& text) { return *tokenizer_->encode(text); }

  static inline std::shared_ptr<kernels::cpu::ThreadTeam> team_ = std::make_shared<kernels::cpu::ThreadTeam>(2);
  static inline std::shared_ptr<const llm::LlamaModel> model_;
  static inline std::shared_ptr<const llm::Tokenizer> tokenizer_;
};

TEST_F(CoFinetuningTest, IdleIterationsGiveASliceAndBusyOnesOnlyTheirSlack) {
  Engine e(model_, {});
  e.profile(32);
  CoFinetuning f(model_, *team_, {.idle_slice_ns = 50'000'000, .margin = 0.8});
  bool at_least_one = false;
  EXPECT_EQ(f.budget_ns(e, 0, 0, &at_least_one), 50'000'000);
  EXPECT_TRUE(at_least_one);
  // Two decoding requests, the tighter with a 100 ms TPOT target.
  RequestSpec a{.id = 1, .prompt = encode("Hello there"), .max_tokens = 50};
  RequestSpec b = a;
  b.id = 2;
  b.tpot_ns = 100'000'000;
  StepOutput out = e.step({.arrivals = {a, b}});
  ASSERT_EQ(e.decoding().size(), 2u);
  const int64_t budget = f.budget_ns(e, 2, 30'000'000, &at_least_one);
  EXPECT_FALSE(at_least_one);
  EXPECT_LE(budget, 80'000'000 - 30'000'000);
  EXPECT_EQ(f.budget_ns(e, 2, 90'000'000, &at_least_one), 0) << "a pass past the target leaves nothing";
  // Once the step cost is known, the unused token budget bounds it too.
  while (!e.step_cost().known()) e.step({});
  const int max_tokens = e.options().scheduler.max_num_batched_tokens;
  EXPECT_LE(f.budget_ns(e, 2, 0, &at_least_one),
            static_cast<int64_t>((max_tokens - 2) * e.step_cost().per_token_ns()) + 1);
}

TEST_F(CoFinetuningTest, InferenceKeepsItsTokensWhileAJobTrainsSucceedsAndIsServed) {
  Engine e(model_, {});
  CoFinetuning f(model_, *team_, {.idle_slice_ns = 20'000'000});
  std::vector<FinetuneEvent> events;
  ASSERT_TRUE(f.submit(job("a", 2), events).is_ok());
  EXPECT_EQ(f.submit(job("a", 2), events).code(), StatusCode::kAlreadyExists);
  std::vector<RequestSpec> specs;
  std::map<uint64_t, std::vector<int32_t>> want, got;
  int k = 0;
  for (const char* p : {"The capital of France is", "def fibonacci(n):", "Water boils at"}) {
    RequestSpec s{.id = static_cast<uint64_t>(++k), .prompt = encode(p), .max_tokens = 16};
    s.ignore_eos = true;
    specs.push_back(s);
    auto g = llm::generate(*model_, *tokenizer_, s.prompt, {.max_tokens = 16, .ignore_eos = true});
    want[s.id] = g->tokens;
  }
  // Requests arrive while the job runs; iterations continue until both are done.
  StepInput in{.arrivals = specs};
  int iterations = 0;
  while (e.has_work() || f.active()) {
    const int64_t start = detail::now_ns();
    StepOutput out = e.step(in);
    in = {};
    for (const TokenEvent& ev : out.events) got[ev.id].insert(got[ev.id].end(), ev.tokens.begin(), ev.tokens.end());
    for (auto& done : f.run(e, out.tokens, detail::now_ns() - start, events)) {
      ASSERT_TRUE(e.add_adapter(done.name, done.adapter).is_ok());
    }
    ASSERT_LT(++iterations, 100000);
  }
  EXPECT_EQ(got, want);
  std::vector<double> losses;
  bool succeeded = false;
  for (const FinetuneEvent& ev : events) {
    EXPECT_NE(ev.status, static_cast<uint8_t>(JobStatus::kFailed)) << ev.error;
    if (ev.step > 0 && ev.status == static_cast<uint8_t>(JobStatus::kRunning)) losses.push_back(ev.loss);
    succeeded |= ev.status == static_cast<uint8_t>(JobStatus::kSucceeded);
  }
  EXPECT_TRUE(succeeded);
  ASSERT_EQ(losses.size(), 4u);
  EXPECT_LT(losses.back(), losses.front());
  EXPECT_EQ(f.steps(), 4);
  EXPECT_GT(f.tokens(), 0);
  // The finished adapter is served under the job's model name.
  RequestSpec through = specs[0];
  through.id = 99;
  through.adapter = "zorbania-a";
  StepOutput first = e.step({.arrivals = {through}});
  for (const TokenEvent& ev : first.events) EXPECT_NE(ev.finish, static_cast<uint8_t>(Finish::kError)) << ev.error;
}

TEST_F(CoFinetuningTest, CancellingStopsAJobAtOnce) {
  Engine e(model_, {});
  CoFinetuning f(model_, *team_, {.idle_slice_ns = 10'000'000});
  std::vector<FinetuneEvent> events;
  ASSERT_TRUE(f.submit(job("b", 50), events).is_ok());
  ASSERT_TRUE(f.submit(job("c", 50), events).is_ok());
  for (int i = 0; i < 3; ++i) f.run(e, 0, 0, events);
  EXPECT_GT(f.ns(), 0) << "the job has worked";
  ASSERT_TRUE(f.cancel("b", events).is_ok());
  EXPECT_EQ(events.back().status, static_cast<uint8_t>(JobStatus::kCancelled));
  EXPECT_EQ(f.jobs(), 1);
  ASSERT_TRUE(f.cancel("c", events).is_ok());  // queued, never started
  EXPECT_FALSE(f.active());
  EXPECT_EQ(f.cancel("c", events).code(), StatusCode::kNotFound);
  FinetuneJobSpec bad = job("d", 1);
  bad.rank = 0;
  EXPECT_EQ(f.submit(bad, events).code(), StatusCode::kInvalidArgument);
}

TEST_F(CoFinetuningTest, TheBaselinesAlternateIterationsOrSplitTheCores) {
  Engine e(model_, {});
  RequestSpec a{.id = 1, .prompt = encode("Hello there"), .max_tokens = 50};
  e.step({.arrivals = {a}});
  CoFinetuning temporal(model_, *team_, {.sharing = FinetuneSharing::kTemporal});
  bool at_least_one = false;
  EXPECT_EQ(temporal.budget_ns(e, 1, 123'000'000, &at_least_one), 123'000'000) << "as long again as inference";
  EXPECT_TRUE(at_least_one);
  // Spatial: finetuning's own thread trains; run() only hands over its news.
  CoFinetuning spatial(model_, *team_, {.sharing = FinetuneSharing::kSpatial, .spatial_threads = 1});
  std::vector<FinetuneEvent> events;
  ASSERT_TRUE(spatial.submit(job("s", 1), events).is_ok());
  std::vector<CoFinetuning::Finished> finished;
  for (int i = 0; i < 6000 && finished.empty(); ++i) {
    for (auto& f : spatial.run(e, 0, 0, events)) finished.push_back(std::move(f));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].name, "zorbania-s");
  // A long job is cancelled while its thread trains.
  events.clear();
  ASSERT_TRUE(spatial.submit(job("t", 1000), events).is_ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_TRUE(spatial.cancel("t", events).is_ok());
  spatial.run(e, 0, 0, events);
  EXPECT_EQ(events.back().status, static_cast<uint8_t>(JobStatus::kCancelled));
  EXPECT_GE(spatial.steps(), 2);
  EXPECT_FALSE(spatial.active());
}

}  // namespace
}  // namespace weft::serving
