#include "serving/co_finetuning.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include <fmt/format.h>

#include "core/logging.h"
#include "kernels/cpu/thread_team.h"

namespace weft::serving {

struct CoFinetuning::Job {
  FinetuneJobSpec spec;  // its data is moved into the run once it starts
  std::unique_ptr<finetune::Finetuner> run;
  int64_t trained_tokens = 0;
};

CoFinetuning::CoFinetuning(std::shared_ptr<const llm::LlamaModel> model, weft::ParallelFor& team,
                           CoFinetuningOptions options)
    : model_(std::move(model)), team_(&team), options_(options) {
  if (options_.sharing == FinetuneSharing::kSpatial) {
    spatial_team_ = std::make_unique<kernels::cpu::ThreadTeam>(std::max(1, options_.spatial_threads));
    spatial_ = std::thread([this] { spatial_loop(); });
  }
}

CoFinetuning::~CoFinetuning() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (spatial_.joinable()) spatial_.join();
}

bool CoFinetuning::active() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !jobs_.empty();
}
int CoFinetuning::jobs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(jobs_.size());
}
bool CoFinetuning::has_news() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !spatial_events_.empty() || !spatial_finished_.empty();
}
int64_t CoFinetuning::tokens() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tokens_;
}
int64_t CoFinetuning::steps() const {
  std::lock_guard<std::mutex> lock(mu_);
  return steps_;
}
int64_t CoFinetuning::ns() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ns_;
}

void CoFinetuning::spatial_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || (!jobs_.empty() && pausing_ == 0); });
    if (stopping_) return;
    // The front job is this thread's while busy_ (cancel waits); slices of 50 ms, so a cancel
    // waits no longer than that. Inference never waits for it.
    Job& job = *jobs_.front();
    busy_ = true;
    lock.unlock();
    std::vector<FinetuneEvent> events;
    std::vector<Finished> finished;
    Counts counts;
    const bool over = work(job, 50'000'000, true, *spatial_team_, events, finished, counts);
    lock.lock();
    busy_ = false;
    add(counts);
    if (over) jobs_.pop_front();
    spatial_events_.insert(spatial_events_.end(), events.begin(), events.end());
    for (Finished& f : finished) spatial_finished_.push_back(std::move(f));
    wake_.notify_all();
  }
}

void CoFinetuning::add(const Counts& c) {
  tokens_ += c.tokens;
  steps_ += c.steps;
  ns_ += c.ns;
}

namespace {

FinetuneEvent event(const FinetuneJobSpec& s, JobStatus status, std::string error = "") {
  FinetuneEvent e;
  e.id = s.id;
  e.status = static_cast<uint8_t>(status);
  e.error = std::move(error);
  return e;
}

Result<finetune::FinetuneOptions> options_of(const FinetuneJobSpec& s) {
  finetune::FinetuneOptions o;
  o.lora.rank = s.rank;
  o.lora.alpha = s.alpha;
  o.lora.rslora = s.rslora;
  o.lora.targets.clear();
  for (uint8_t t : s.targets) {
    if (t >= llm::kLoraTargets) return Status::invalid_argument("unknown LoRA target module");
    o.lora.targets.push_back(static_cast<llm::LoraTarget>(t));
  }
  if (s.optimizer > static_cast<uint8_t>(finetune::OptimizerKind::kSgd))
    return Status::invalid_argument("unknown optimizer");
  o.optimizer.kind = static_cast<finetune::OptimizerKind>(s.optimizer);
  o.optimizer.lr = s.lr;
  o.optimizer.momentum = s.momentum;
  o.optimizer.weight_decay = s.weight_decay;
  o.optimizer.max_grad_norm = s.max_grad_norm;
  o.epochs = s.epochs;
  o.batch_size = s.batch_size;
  o.seed = s.seed;
  o.chunk_tokens = 64;
  if (o.lora.rank < 1 || o.lora.rank > 1024 || !(o.lora.alpha > 0) || o.lora.targets.empty()) {
    return Status::invalid_argument("the LoRA rank must be 1..1024, alpha > 0, and some target module named");
  }
  if (!(s.momentum >= 0) || !(s.weight_decay >= 0) || !(s.max_grad_norm >= 0)) {
    return Status::invalid_argument("momentum, weight decay and the gradient clip must be >= 0");
  }
  return o;
}

}  // namespace

Status CoFinetuning::submit(const FinetuneJobSpec& spec, std::vector<FinetuneEvent>& events) {
  std::unique_lock<std::mutex> lock(mu_);
  for (const auto& j : jobs_) {
    if (j->spec.id == spec.id) return Status::already_exists(fmt::format("a job '{}' exists", spec.id));
  }
  WEFT_RETURN_IF_ERROR(options_of(spec).status());
  if (spec.tokens.empty() || spec.tokens.size() != spec.trained.size()) {
    return Status::invalid_argument("a finetuning job needs training sequences");
  }
  jobs_.push_back(std::make_unique<Job>(Job{spec, nullptr}));
  // With spatial sharing, news goes in its thread's queue, so it stays in order.
  (options_.sharing == FinetuneSharing::kSpatial ? spatial_events_ : events).push_back(event(spec, JobStatus::kQueued));
  lock.unlock();
  wake_.notify_all();
  return Status::ok();
}

Status CoFinetuning::cancel(const std::string& id, std::vector<FinetuneEvent>& events) {
  std::unique_lock<std::mutex> lock(mu_);
  ++pausing_;  // kSpatial's thread starts no new slice meanwhile
  wake_.wait(lock, [&] { return !busy_; });
  --pausing_;
  wake_.notify_all();
  for (auto it = jobs_.begin(); it != jobs_.end(); ++it) {
    if ((*it)->spec.id != id) continue;
    (options_.sharing == FinetuneSharing::kSpatial ? spatial_events_ : events)
        .push_back(event((*it)->spec, JobStatus::kCancelled));
    jobs_.erase(it);  // its activations, gradients and optimizer state go with it
    return Status::ok();
  }
  return Status::not_found(fmt::format("no running or queued job '{}'", id));
}

int64_t CoFinetuning::budget_ns(const Engine& engine, int inference_tokens, int64_t inference_ns,
                                bool* at_least_one) const {
  const EngineStats st = engine.stats();
  *at_least_one = false;
  if (inference_tokens == 0 && st.running + st.waiting == 0) {
    *at_least_one = true;
    return options_.idle_slice_ns;
  }
  if (options_.sharing == FinetuneSharing::kTemporal) {
    *at_least_one = true;  // an iteration of finetuning as long as the inference one, whatever the targets
    return inference_ns;
  }
  // The tightest time per output token among decoding requests bounds the iteration.
  int64_t allowance = INT64_MAX;
  for (const Engine::Decoding& d : engine.decoding()) allowance = std::min(allowance, d.tpot_ns);
  const StepCost& cost = engine.step_cost();
  const int max_tokens = engine.options().scheduler.max_num_batched_tokens;
  int64_t budget = INT64_MAX;
  if (allowance != INT64_MAX) {
    budget = static_cast<int64_t>(options_.margin * static_cast<double>(allowance)) - inference_ns;
  }
  if (cost.known()) {
    // FlexLLM fills the iteration's token budget: what the unused inference tokens would cost.
    const double leftover = static_cast<double>(std::max(0, max_tokens - inference_tokens)) * cost.per_token_ns();
    budget = std::min(budget, static_cast<int64_t>(leftover));
  }
  // Never more than an idle iteration's slice: a request waiting for its first token (not yet
  // decoding, so not above) waits at most that long.
  return std::clamp<int64_t>(budget, 0, options_.idle_slice_ns);
}

std::vector<CoFinetuning::Finished> CoFinetuning::run(const Engine& engine, int inference_tokens, int64_t inference_ns,
                                                      std::vector<FinetuneEvent>& events) {
  std::vector<Finished> finished;
  std::unique_lock<std::mutex> lock(mu_);
  if (options_.sharing == FinetuneSharing::kSpatial) {  // its own thread did the work: hand over its news
    if (inference_tokens == 0 && engine.stats().running + engine.stats().waiting == 0 && spatial_events_.empty()) {
      // Nothing to infer: wait for news rather than spin (an arrival waits at most the idle slice).
      wake_.wait_for(lock, std::chrono::nanoseconds(options_.idle_slice_ns),
                     [&] { return !spatial_events_.empty() || jobs_.empty(); });
    }
    events.insert(events.end(), spatial_events_.begin(), spatial_events_.end());
    spatial_events_.clear();
    finished.swap(spatial_finished_);
    return finished;
  }
  if (jobs_.empty()) return finished;
  bool at_least_one = false;
  const int64_t budget = budget_ns(engine, inference_tokens, inference_ns, &at_least_one);
  if (budget <= 0 && !at_least_one) return finished;
  Counts counts;
  const std::string id = jobs_.front()->spec.id;
  if (work(*jobs_.front(), budget, at_least_one, *team_, events, finished, counts)) jobs_.pop_front();
  add(counts);
  if (log()->should_log(spdlog::level::debug)) {
    log()->debug("finetune {}: inference {} tokens in {:.2f} ms; budget {:.2f} ms{}; worked {:.2f} ms", id,
                 inference_tokens, inference_ns * 1e-6, budget * 1e-6, at_least_one ? " (idle)" : "", counts.ns * 1e-6);
  }
  return finished;
}

bool CoFinetuning::work(Job& job, int64_t budget, bool at_least_one, weft::ParallelFor& team,
                        std::vector<FinetuneEvent>& events, std::vector<Finished>& finished, Counts& counts) {
  // A job that throws (out of memory) fails; inference and the other jobs go on.
  try {
    return work_unguarded(job, budget, at_least_one, team, events, finished, counts);
  } catch (const std::exception& e) {
    events.push_back(event(job.spec, JobStatus::kFailed, e.what()));
    return true;
  }
}

bool CoFinetuning::work_unguarded(Job& job, int64_t budget, bool at_least_one, weft::ParallelFor& team,
                                  std::vector<FinetuneEvent>& events, std::vector<Finished>& finished, Counts& counts) {
  auto fail = [&](const Status& s) {
    events.push_back(event(job.spec, JobStatus::kFailed, s.message()));
    return true;
  };
  if (!job.run) {
    Result<finetune::FinetuneOptions> o = options_of(job.spec);
    if (!o.ok()) return fail(o.status());
    std::vector<finetune::TrainingExample> examples;
    for (size_t i = 0; i < job.spec.tokens.size(); ++i) {
      examples.push_back({std::move(job.spec.tokens[i]), std::move(job.spec.trained[i])});
    }
    job.spec.tokens.clear();
    job.spec.trained.clear();
    auto run = finetune::Finetuner::create(*model_, std::move(examples), *o, team);
    if (!run.ok()) return fail(run.status());
    job.run = std::move(run).value();
    FinetuneEvent e = event(job.spec, JobStatus::kRunning);
    e.total_steps = job.run->total_steps();
    events.push_back(e);
  }
  Result<finetune::WorkSlice> w = job.run->work(budget, at_least_one);
  if (!w.ok()) return fail(w.status());
  counts.tokens += w->forward_tokens;
  counts.ns += w->ns;
  if (w->step) {
    ++counts.steps;
    job.trained_tokens += w->step->tokens;
    FinetuneEvent e = event(job.spec, JobStatus::kRunning);
    e.step = w->step->step;
    e.total_steps = job.run->total_steps();
    e.loss = w->step->loss;
    e.trained_tokens = job.trained_tokens;
    events.push_back(e);
  }
  if (job.run->done()) {
    const llm::LoraAdapter& a = job.run->adapter();
    if (!job.spec.output_dir.empty()) {
      const std::string base = std::filesystem::path(job.spec.output_dir).filename().string();
      Status s = a.save_peft(job.spec.output_dir, model_->config(), base);
      if (s.is_ok()) {
        s = a.save_gguf((std::filesystem::path(job.spec.output_dir) / "adapter.gguf").string(), model_->config());
      }
      if (!s.is_ok()) return fail(s);
    }
    finished.push_back({job.spec.id, job.spec.model_name, std::make_shared<const llm::LoraAdapter>(a)});
    FinetuneEvent e = event(job.spec, JobStatus::kSucceeded);
    e.step = e.total_steps = job.run->total_steps();
    e.trained_tokens = job.trained_tokens;
    events.push_back(e);
    return true;
  }
  return false;
}

}  // namespace weft::serving
