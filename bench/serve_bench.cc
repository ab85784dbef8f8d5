// What running the serving engine on the runtime costs: the same requests
// through serving::Service (tokenizing tasks, the engine actor computing on the
// runtime's workers through a weft::ParallelTeam, the streamer actor
// detokenizing) and through a bare serving::Engine stepped in a loop on its own
// kernels::cpu::ThreadTeam, with the same thread count and scheduler limits.
//
//   serve_bench --model PATH [--threads N] [--requests 64] [--max-tokens 64]
//   [--reps 3]
//
// Every request is greedy with ignore_eos, so both paths produce exactly the
// same text (checked). Prints one JSON line: output tokens/s through the
// runtime against the direct engine (ratio > 0.95 is the target: the runtime's
// scheduling, actors and streaming cost under 5%). Runs alternate between the
// two paths and the best of `reps` counts for each.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bench/json_line.h"
#include "llm/gguf_file.h"
#include "llm/tokenizer.h"
#include "serving/engine.h"
#include "serving/service.h"
#include "weft/weft.h"

namespace {

using namespace weft;
using namespace weft::serving;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string model;
  int threads = 0;
  int requests = 64;
  int max_tokens = 64;
  int reps = 3;
};

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "serve_bench: %s\n", message.c_str());
  std::exit(1);
}

// Prompts of different lengths (about 20 to 150 tokens), different from the
// first word on.
std::vector<std::string> prompts(int n) {
  const std::string topics[] = {"task graphs", "the ocean", "compilers", "bread", "rivers", "chess", "bees"};
  const std::string filler =
      " Explain it step by step, with examples, history "
      "and a short summary at the end.";
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    std::string p = fmt::format("Request {}: write about {}.", i, topics[i % 7]);
    for (int k = 0; k < i % 9; ++k) p += filler;
    out.push_back(std::move(p));
  }
  return out;
}

SchedulerOptions scheduler() { return {.max_num_seqs = 64, .max_num_batched_tokens = 512}; }

RequestSpec spec_for(int max_tokens) {
  RequestSpec s;
  s.max_tokens = max_tokens;
  s.ignore_eos = true;
  return s;
}

// The direct path: an Engine on its own ThreadTeam, stepped in a loop. Returns
// seconds.
double run_direct(const Args& a, const std::vector<std::vector<int32_t>>& ids,
                  std::vector<std::vector<int32_t>>& outputs) {
  llm::ModelOptions mo;
  mo.threads = a.threads;
  auto model = llm::LlamaModel::load(a.model, mo);
  if (!model.ok()) die(model.status().to_string());
  std::shared_ptr<const llm::LlamaModel> shared(std::move(*model));
  Engine engine(shared, {.scheduler = scheduler(), .kv_cache_tokens = 16384});
  StepInput in;
  for (size_t i = 0; i < ids.size(); ++i) {
    RequestSpec s = spec_for(a.max_tokens);
    s.id = i + 1;
    s.prompt = ids[i];
    s.arrival_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
    in.arrivals.push_back(std::move(s));
  }
  outputs.assign(ids.size(), {});
  const auto t0 = Clock::now();
  StepOutput out = engine.step(in);
  for (;;) {
    for (const TokenEvent& e : out.events) {
      if (e.finish == static_cast<uint8_t>(Finish::kError)) die("direct engine: " + e.error);
      auto& o = outputs[e.id - 1];
      o.insert(o.end(), e.tokens.begin(), e.tokens.end());
    }
    if (!engine.has_work()) break;
    out = engine.step({});
  }
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Collects one request's text; counts down `left` when it finishes with all its tokens.
class Collector final : public RequestSink {
 public:
  Collector(std::mutex& mu, std::condition_variable& cv, int& left, std::string& text, int max_tokens)
      : mu_(mu), cv_(cv), left_(left), text_(text), max_tokens_(max_tokens) {}
  void on_delta(std::string text, std::vector<TokenInfo>) override { text_ += text; }
  void on_finish(std::string reason, Usage usage, std::string error, int) override {
    if (reason == "error") die("service: " + error);
    std::lock_guard<std::mutex> lock(mu_);
    if (usage.completion_tokens != max_tokens_) die("service: a request stopped early");
    if (--left_ == 0) cv_.notify_all();
  }

 private:
  std::mutex& mu_;
  std::condition_variable& cv_;
  int& left_;
  std::string& text_;
  const int max_tokens_;
};

// The runtime path: the same requests through a Service on the running runtime.
// Returns seconds.
double run_service(const Args& a, const std::vector<std::string>& texts, std::vector<std::string>& outputs) {
  ServiceOptions so;
  so.model_path = a.model;
  so.engine.scheduler = scheduler();
  so.engine.kv_cache_tokens = 16384;
  auto service = Service::start(so);
  if (!service.ok()) die(service.status().to_string());
  std::mutex mu;
  std::condition_variable cv;
  int left = static_cast<int>(texts.size());
  outputs.assign(texts.size(), {});
  const auto t0 = Clock::now();
  for (size_t i = 0; i < texts.size(); ++i) {
    GenerationRequest r;
    r.prompt = texts[i];
    r.spec = spec_for(a.max_tokens);
    auto id = (*service)->submit(std::move(r), std::make_shared<Collector>(mu, cv, left, outputs[i], a.max_tokens));
    if (!id.ok()) die(id.status().to_string());
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return left == 0; });
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  (*service)->stop();
  return seconds;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value for " + k);
      return argv[++i];
    };
    if (k == "--model")
      a.model = next();
    else if (k == "--threads")
      a.threads = std::atoi(next().c_str());
    else if (k == "--requests")
      a.requests = std::atoi(next().c_str());
    else if (k == "--max-tokens")
      a.max_tokens = std::atoi(next().c_str());
    else if (k == "--reps")
      a.reps = std::atoi(next().c_str());
    else
      die("unknown flag " + k);
  }
  if (a.model.empty()) die("--model is required");
  if (a.threads <= 0) a.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (a.requests < 1 || a.max_tokens < 1 || a.reps < 1) die("--requests, --max-tokens and --reps must be >= 1");
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  auto file = llm::GgufFile::open(a.model);
  if (!file.ok()) die(file.status().to_string());
  auto tok = llm::Tokenizer::from_gguf(*file);
  if (!tok.ok()) die(tok.status().to_string());
  const std::vector<std::string> texts = prompts(a.requests);
  std::vector<std::vector<int32_t>> ids;
  int prompt_tokens = 0;
  for (const std::string& t : texts) {
    auto e = tok->encode(t, true, false);
    if (!e.ok()) die(e.status().to_string());
    prompt_tokens += static_cast<int>(e->size());
    ids.push_back(std::move(*e));
  }
  if (Status s = weft::init({.num_workers = a.threads}); !s.is_ok()) die(s.to_string());

  double direct = 1e30, runtime = 1e30;
  std::vector<std::vector<int32_t>> direct_ids;
  std::vector<std::string> service_texts;
  for (int r = 0; r < a.reps; ++r) {
    direct = std::min(direct, run_direct(a, ids, direct_ids));
    runtime = std::min(runtime, run_service(a, texts, service_texts));
  }
  int64_t total = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    total += static_cast<int64_t>(direct_ids[i].size());
    if (static_cast<int>(direct_ids[i].size()) != a.max_tokens) die("the direct engine stopped a request early");
    if (tok->decode(direct_ids[i]) != service_texts[i]) die(fmt::format("request {}: the two paths differ", i));
  }

  weft::bench::JsonLine line{.bench = fmt::format("serve_runtime_vs_direct_{}x{}", a.requests, a.max_tokens),
                             .unit = "tokens/s",
                             .weft = static_cast<double>(total) / runtime,
                             .baseline = "engine_direct",
                             .baseline_value = static_cast<double>(total) / direct};
  line.extras = {{"threads", std::to_string(a.threads)},
                 {"prompt_tokens", std::to_string(prompt_tokens)},
                 {"target_ratio", "0.95"}};
  line.print();
  (void)weft::shutdown();
  return 0;
}
