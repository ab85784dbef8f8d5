#include "serving/service.h"

#include <filesystem>

#include <fmt/format.h>

#include "core/logging.h"
#include "llm/model_config.h"
#include "serving/engine_actor.h"

namespace weft::serving {
namespace {

std::mutex g_registry_mu;  // guards g_registry and g_next
std::map<std::string, Service*> g_registry;
int g_next = 0;

double seconds_between(int64_t a_ns, int64_t b_ns) { return static_cast<double>(b_ns - a_ns) * 1e-9; }

}  // namespace

// The key of a Service of this process. Tasks and actor factories taking one stay in this process,
// whatever runtime the server started on (a private node with $WEFT_PROCESSES, a cluster's node):
// a worker process has no such service.
struct ServiceKey {
  std::string key;
  MSGPACK_DEFINE(key)
};

}  // namespace weft::serving

template <>
struct weft::detail::stays_in_process<weft::serving::ServiceKey> : std::true_type {};

namespace weft::serving {

// Detokenizing and streaming, in order: an actor whose calls forward to the service.
class Streamer {
 public:
  explicit Streamer(std::string key) : key_(std::move(key)) {}
  void deliver(std::vector<TokenEvent> events) {
    if (Service* s = Service::find(key_)) s->deliver(events);
  }

 private:
  std::string key_;
};

std::unique_ptr<Streamer> open_streamer(ServiceKey k) { return std::make_unique<Streamer>(std::move(k.key)); }
void tokenize_request(ServiceKey k, uint64_t id) {
  if (Service* s = Service::find(k.key)) s->tokenize(id);
}
void prepare_finetune_job(ServiceKey k, uint64_t ticket) {
  if (Service* s = Service::find(k.key)) s->prepare_job(ticket);
}

}  // namespace weft::serving

WEFT_REMOTE(weft::serving::open_streamer, &weft::serving::Streamer::deliver, weft::serving::tokenize_request,
            weft::serving::prepare_finetune_job);

namespace weft::serving {

struct Service::Entry {
  GenerationRequest request;
  std::shared_ptr<RequestSink> sink;
  std::unique_ptr<llm::TextStream> text;  // made by the tokenizing task, then used by deliveries
  Slo slo = Slo::kStandard;
  int64_t arrival_ns = 0, first_ns = 0, last_ns = 0;
  int prompt_tokens = 0, completion_tokens = 0;
  bool in_engine = false;
};

struct Service::Actors {
  ActorHandle<EngineActor> engine;
  ActorHandle<Streamer> streamer;
  std::optional<ObjectRef<void>> last_delivery;
};

Service* Service::find(const std::string& key) {
  std::lock_guard<std::mutex> lock(g_registry_mu);
  auto it = g_registry.find(key);
  return it == g_registry.end() ? nullptr : it->second;
}

Result<std::unique_ptr<Service>> Service::start(const ServiceOptions& options) {
  if (!weft::is_initialized()) return Status::failed_precondition("the runtime is not running");
  std::unique_ptr<Service> s(new Service());
  s->options_ = options;
  WEFT_ASSIGN_OR_RETURN(llm::GgufFile file, llm::GgufFile::open(options.model_path));
  s->file_.emplace(std::move(file));
  WEFT_ASSIGN_OR_RETURN(llm::Tokenizer tok, llm::Tokenizer::from_gguf(*s->file_));
  s->tok_.emplace(std::move(tok));
  if (auto t = llm::ChatTemplate::from_gguf(*s->file_); t.ok()) s->chat_ = std::move(*t);
  WEFT_ASSIGN_OR_RETURN(llm::ModelConfig config, llm::ModelConfig::from_gguf(*s->file_));
  s->context_length_ = config.context_length;
  for (int32_t id = 0; id < s->tok_->vocab_size(); ++id) {
    if (s->tok_->is_end_of_generation(id)) s->eog_ids_.push_back(id);
  }
  s->name_ = options.served_model_name;
  if (s->name_.empty()) s->name_ = std::filesystem::path(options.model_path).stem().string();
  {
    std::lock_guard<std::mutex> lock(g_registry_mu);
    s->key_ = fmt::format("service-{}", g_next++);
    g_registry[s->key_] = s.get();
  }
  const EngineOptions& eo = options.engine;
  EngineConfig ec{options.model_path,
                  options.threads,
                  eo.kv_cache_tokens,
                  eo.scheduler.max_num_seqs,
                  eo.scheduler.max_num_batched_tokens,
                  eo.max_waiting,
                  options.progress,
                  options.speculation,
                  options.device};
  ec.scheduling = static_cast<uint8_t>(eo.scheduler.policy);
  ec.finetune_sharing = options.finetune_sharing;
  ec.finetune_threads = options.finetune_threads;
  for (const SloTargets& t : eo.scheduler.default_targets) {
    ec.ttft_targets_ns.push_back(t.ttft_ns);
    ec.tpot_targets_ns.push_back(t.tpot_ns);
  }
  s->actors_ = std::make_unique<Actors>();
  try {
    s->actors_->engine = actor<EngineActor>(open_engine).priority(Slo::kLatencyCritical).remote(ec);
    s->actors_->streamer = actor<Streamer>(open_streamer).remote(ServiceKey{s->key_});
    get(s->actors_->engine.task(&EngineActor::info).remote());
  } catch (const std::exception& e) {
    return Status::invalid_argument(fmt::format("cannot start the engine: {}", e.what()));
  }
  // A training sequence holds its activations until its backward pass: 2048 tokens at most.
  s->jobs_ = std::make_unique<FinetuneJobs>(s->name_, *s->tok_, s->chat_ ? &*s->chat_ : nullptr,
                                            std::min(s->context_length_ > 0 ? s->context_length_ : 2048, 2048),
                                            options.finetune_dir);
  for (const auto& [name, path] : options.lora_adapters) {
    if (Status st = s->adapter_command(name, path); !st.is_ok()) {
      return Status(st.code(), fmt::format("LoRA adapter '{}': {}", name, st.message()));
    }
  }
  s->loop_ = std::thread([p = s.get()] { p->loop(); });
  return s;
}

Service::~Service() {
  stop();
  std::lock_guard<std::mutex> lock(g_registry_mu);
  g_registry.erase(key_);
}

int Service::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(entries_.size());
}

Result<uint64_t> Service::submit(GenerationRequest request, std::shared_ptr<RequestSink> sink) {
  uint64_t id;
  const Slo slo = static_cast<Slo>(std::min<int>(request.spec.slo, kNumSloClasses - 1));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || !accepting_.load()) return Status::unavailable("the server is shutting down");
    if (static_cast<int>(entries_.size()) >= options_.max_waiting) {
      return Status::resource_exhausted(
          fmt::format("too many requests in flight ({}); try again later", options_.max_waiting));
    }
    id = next_id_++;
    auto e = std::make_shared<Entry>();
    e->request = std::move(request);
    e->sink = std::move(sink);
    e->slo = slo;
    e->arrival_ns = detail::now_ns();
    entries_[id] = std::move(e);
  }
  task(tokenize_request).priority(slo).remote(ServiceKey{key_}, id);
  return id;
}

void Service::tokenize(uint64_t id) {
  std::shared_ptr<Entry> e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    e = it->second;
  }
  GenerationRequest& r = e->request;
  auto fail = [&](const std::string& message) {
    std::lock_guard<std::mutex> lock(mu_);
    if (entries_.count(id) == 0) return;
    finish_entry(id, *e, "error", message, 400);
  };
  std::string text = r.prompt;
  if (r.chat) {
    if (!chat_) return fail("this model has no chat template this server knows; use /v1/completions");
    auto rendered = chat_->render(r.messages, true);
    if (!rendered.ok()) return fail(rendered.status().message());
    text = std::move(*rendered);
  }
  auto ids = tok_->encode(text, true, r.chat);
  if (!ids.ok()) return fail(ids.status().message());
  if (ids->empty()) return fail("the prompt is empty");
  if (context_length_ > 0 && static_cast<int>(ids->size()) >= context_length_) {
    return fail(fmt::format("This model's maximum context length is {} tokens; the prompt has {} tokens",
                            context_length_, ids->size()));
  }
  RequestSpec spec = r.spec;
  spec.id = id;
  spec.prompt = std::move(*ids);
  spec.stop_token_ids = eog_ids_;
  spec.arrival_ns = e->arrival_ns;
  spec.slo = static_cast<uint8_t>(e->slo);
  e->prompt_tokens = static_cast<int>(spec.prompt.size());
  e->text = std::make_unique<llm::TextStream>(*tok_, r.stop);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (entries_.count(id) == 0 || stopping_) return;
    e->in_engine = true;
    live_[id] = e->slo;
    inbox_.push_back(std::move(spec));
  }
  wake_.notify_one();
}

void Service::cancel(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    metrics_.count_request(it->second->slo, "abort");
    if (it->second->in_engine) finish_.push_back(id);
    entries_.erase(it);
  }
  wake_.notify_one();
}

void Service::end_in_engine(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (live_.count(id) == 0) return;
    finish_.push_back(id);
  }
  wake_.notify_one();
}

// Called with mu_ held.
void Service::finish_entry(uint64_t id, Entry& e, const std::string& reason, const std::string& error, int code) {
  const int64_t now = detail::now_ns();
  if (reason != "error") {
    metrics_.observe_e2e(e.slo, seconds_between(e.arrival_ns, now));
    metrics_.add_tokens(e.prompt_tokens, 0);
  }
  if ((reason == "stop" || reason == "length") && e.first_ns != 0) {
    // Attained: the first token within the TTFT target and the mean time per output token after it
    // within the TPOT target (the class defaults where the request named none).
    const SloTargets t = options_.engine.scheduler.targets(e.slo, e.request.spec.ttft_ns, e.request.spec.tpot_ns);
    const bool in_ttft = e.first_ns - e.arrival_ns <= t.ttft_ns;
    const bool in_tpot = e.completion_tokens <= 1 || (e.last_ns - e.first_ns) / (e.completion_tokens - 1) <= t.tpot_ns;
    metrics_.count_slo(e.slo, in_ttft && in_tpot, e.completion_tokens);
  }
  metrics_.count_request(e.slo, reason);
  std::shared_ptr<RequestSink> sink = std::move(e.sink);
  auto keep = entries_[id];  // `e` lives until the sink is told
  entries_.erase(id);
  if (sink) sink->on_finish(reason, {e.prompt_tokens, e.completion_tokens}, error, code);
}

void Service::deliver(const std::vector<TokenEvent>& events) {
  for (const TokenEvent& ev : events) {
    std::shared_ptr<Entry> e;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = entries_.find(ev.id);
      if (it == entries_.end()) continue;
      e = it->second;
    }
    const auto finish = static_cast<Finish>(ev.finish);
    if (finish == Finish::kError) {
      std::lock_guard<std::mutex> lock(mu_);
      if (entries_.count(ev.id) != 0) finish_entry(ev.id, *e, "error", ev.error, 400);
      continue;
    }
    std::string text;
    std::vector<TokenInfo> infos;
    const bool want_logprobs = e->request.spec.top_logprobs >= 0;
    int new_tokens = 0;
    for (size_t k = 0; k < ev.tokens.size() && !e->text->stopped(); ++k) {
      const int32_t t = ev.tokens[k];
      const bool eog = std::find(eog_ids_.begin(), eog_ids_.end(), t) != eog_ids_.end() && !e->request.spec.ignore_eos;
      ++new_tokens;
      if (!eog) text += e->text->push(t);
      if (want_logprobs && k < ev.logprobs.size()) {
        TokenInfo info{tok_->piece(t), ev.logprobs[k], {}};
        for (const TopLogprob& tl : ev.top[k]) info.top.emplace_back(tok_->piece(tl.token), tl.logprob);
        infos.push_back(std::move(info));
      }
    }
    const int64_t now = detail::now_ns();
    if (new_tokens > 0) {
      if (e->first_ns == 0) {
        e->first_ns = now;
        metrics_.observe_ttft(e->slo, seconds_between(e->arrival_ns, now));
      } else {
        metrics_.observe_tpot(e->slo, seconds_between(e->last_ns, now) / new_tokens);
      }
      e->last_ns = now;
      e->completion_tokens += new_tokens;
      metrics_.add_tokens(0, new_tokens);
    }
    const bool stopped = e->text->stopped();
    if (!stopped && finish != Finish::kNone) text += e->text->finish();
    if (!text.empty() || !infos.empty()) e->sink->on_delta(std::move(text), std::move(infos));
    if (stopped || e->text->stopped() || finish != Finish::kNone) {
      if (finish == Finish::kNone) end_in_engine(ev.id);
      const char* reason = finish == Finish::kLength && !e->text->stopped() ? "length" : "stop";
      if (finish == Finish::kAborted) reason = "abort";
      std::lock_guard<std::mutex> lock(mu_);
      if (entries_.count(ev.id) != 0) finish_entry(ev.id, *e, reason, "", 0);
    }
  }
}

std::map<std::string, std::string> Service::adapters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return adapters_;
}

void Service::load_adapter(std::string name, std::string path, std::function<void(Status)> done) {
  queue_command([this, name = std::move(name), path = std::move(path)] { return adapter_command(name, path); },
                std::move(done));
}

void Service::unload_adapter(std::string name, std::function<void(Status)> done) {
  queue_command([this, name = std::move(name)] { return adapter_command(name, ""); }, std::move(done));
}

void Service::create_finetune_job(JobRequest request, std::function<void(Result<JobRecord>)> done) {
  // Reading and tokenising the file is a batch-class task, off the caller's (the HTTP) thread.
  uint64_t ticket;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      done(Status::unavailable("the server is shutting down"));
      return;
    }
    ticket = next_ticket_++;
    pending_jobs_[ticket] = {std::move(request), std::move(done)};
  }
  task(prepare_finetune_job).priority(Slo::kBatch).remote(ServiceKey{key_}, ticket);
}

void Service::prepare_job(uint64_t ticket) {
  PendingJob p;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_jobs_.find(ticket);
    if (it == pending_jobs_.end()) return;
    p = std::move(it->second);
    pending_jobs_.erase(it);
  }
  Result<FinetuneJobSpec> spec = jobs_->prepare(p.request);
  if (!spec.ok()) return p.done(spec.status());
  auto shared = std::make_shared<FinetuneJobSpec>(std::move(spec).value());
  queue_command(
      [this, shared, request = p.request] {
        WEFT_RETURN_IF_ERROR(
            engine_call([&] { return actors_->engine.task(&EngineActor::submit_finetune).remote(*shared); }));
        jobs_->record(*shared, request);
        finetune_pending_ = true;
        return Status::ok();
      },
      [this, shared, done = std::move(p.done)](Status s) {
        if (!s.is_ok()) return done(s);
        done(jobs_->job(shared->id));
      });
}

void Service::cancel_finetune_job(std::string id, std::function<void(Result<JobRecord>)> done) {
  queue_command(
      [this, id] {
        WEFT_ASSIGN_OR_RETURN(JobRecord j, jobs_->job(id));
        if (j.status != JobStatus::kQueued && j.status != JobStatus::kRunning) {
          return Status::failed_precondition(fmt::format("job '{}' has already finished", id));
        }
        std::vector<FinetuneEvent> cancelled = {{.id = id, .status = static_cast<uint8_t>(JobStatus::kCancelled)}};
        WEFT_RETURN_IF_ERROR(
            engine_call([&] { return actors_->engine.task(&EngineActor::cancel_finetune).remote(id); }));
        jobs_->apply(cancelled);
        finetune_pending_ = true;
        return Status::ok();
      },
      [this, id, done = std::move(done)](Status s) {
        if (!s.is_ok()) return done(s);
        done(jobs_->job(id));
      });
}

void Service::queue_command(std::function<Status()> run, std::function<void(Status)> done) {
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_) {
    lock.unlock();
    return done(Status::unavailable("the server is shutting down"));
  }
  commands_.push_back({std::move(run), std::move(done)});
  lock.unlock();
  wake_.notify_one();
}

Status Service::engine_call(const std::function<ObjectRef<CommandReply>()>& call) {
  CommandReply r;
  try {
    r = get(call());
  } catch (const std::exception& e) {
    return Status::internal(e.what());
  }
  if (r.code != 0) return Status(static_cast<StatusCode>(r.code), r.message);
  return Status::ok();
}

Status Service::adapter_command(const std::string& name, const std::string& path) {
  const bool load = !path.empty();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (load && (name.empty() || name == name_)) {
      return Status::invalid_argument(fmt::format("an adapter needs a name other than the base model's ('{}')", name_));
    }
    if (load && adapters_.count(name) != 0) {
      return Status::already_exists(fmt::format("an adapter named '{}' is already loaded", name));
    }
    if (!load && adapters_.count(name) == 0) return Status::not_found(fmt::format("no LoRA adapter named '{}'", name));
  }
  WEFT_RETURN_IF_ERROR(engine_call([&] {
    return load ? actors_->engine.task(&EngineActor::load_adapter).remote(name, path)
                : actors_->engine.task(&EngineActor::unload_adapter).remote(name);
  }));
  std::lock_guard<std::mutex> lock(mu_);
  if (load) {
    adapters_[name] = path;
  } else {
    adapters_.erase(name);
  }
  return Status::ok();
}

void Service::loop() {
  for (;;) {
    StepInput input;
    Slo slo = Slo::kBatch;
    std::vector<Command> commands;
    bool busy = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(
          lock, [&] { return stopping_ || !inbox_.empty() || !finish_.empty() || !commands_.empty() || engine_busy_; });
      if (stopping_) break;
      input.arrivals.swap(inbox_);
      input.finish.swap(finish_);
      commands.swap(commands_);
      busy = engine_busy_;
      for (const auto& [id, c] : live_) slo = std::min(slo, c);
      for (uint64_t id : input.finish) live_.erase(id);
    }
    // Adapters change between iterations; an arrival naming one just loaded finds it.
    for (const Command& c : commands) c.done(c.run());
    // An iteration follows a command too: a job just queued starts with it on an idle server.
    if (input.arrivals.empty() && input.finish.empty() && !busy && commands.empty()) continue;
    StepOutput out;
    try {
      out = get(
          actors_->engine.task(&EngineActor::step).priority(slo).remote(std::move(input), static_cast<uint8_t>(slo)));
    } catch (const std::exception& ex) {
      // The engine failed as a whole: every request in it ends with the cause.
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [id, c] : live_) {
        out.events.push_back({.id = id, .finish = static_cast<uint8_t>(Finish::kError), .error = ex.what()});
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const TokenEvent& ev : out.events) {
        if (ev.finish != 0) live_.erase(ev.id);
      }
    }
    // Tokens go to their clients first; then, with a job queued or running, the finetuning share
    // of this iteration, at the batch class.
    if (!out.events.empty()) {
      actors_->last_delivery = actors_->streamer.task(&Streamer::deliver).priority(slo).remote(std::move(out.events));
    }
    FinetuneSlice slice;
    if (out.stats.finetune_jobs > 0 || finetune_pending_) {
      try {
        slice = get(actors_->engine.task(&EngineActor::finetune).priority(Slo::kBatch).remote());
        finetune_totals_ = slice;
      } catch (const std::exception& ex) {
        log()->warn("finetuning failed: {}", ex.what());
      }
      finetune_pending_ = false;
    }
    out.stats.finetune_tokens = finetune_totals_.tokens;
    out.stats.finetune_steps = finetune_totals_.steps;
    out.stats.finetune_ns = finetune_totals_.ns;
    out.stats.finetune_jobs = slice.jobs;
    if (!slice.events.empty()) {
      jobs_->apply(slice.events);
      for (const FinetuneEvent& e : slice.events) {
        if (e.status != static_cast<uint8_t>(JobStatus::kSucceeded)) continue;
        if (Result<JobRecord> j = jobs_->job(e.id); j.ok()) {
          std::lock_guard<std::mutex> lock(mu_);
          adapters_[j->fine_tuned_model] =
              options_.finetune_dir.empty() ? "" : (std::filesystem::path(options_.finetune_dir) / e.id).string();
        }
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      // A finetuning job keeps the loop going: iterations without inference are all its own.
      engine_busy_ = out.stats.running + out.stats.waiting + out.stats.finetune_jobs > 0;
      int front = 0;
      for (const auto& [id, e] : entries_) front += e->in_engine ? 0 : 1;
      metrics_.set_waiting_front(front);
    }
    metrics_.set_engine(out.stats);
  }
}

void Service::stop(std::chrono::milliseconds drain) {
  accepting_.store(false);
  const auto until = Clock::now() + drain;
  while (Clock::now() < until && in_flight() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !loop_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (loop_.joinable()) loop_.join();
  std::vector<Command> unrun;
  {
    std::lock_guard<std::mutex> lock(mu_);
    unrun.swap(commands_);
  }
  for (const Command& c : unrun) c.done(Status::unavailable("the server is shutting down"));
  std::map<uint64_t, PendingJob> pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending.swap(pending_jobs_);
  }
  for (auto& [ticket, p] : pending) p.done(Status::unavailable("the server is shutting down"));
  if (actors_ && actors_->last_delivery) {
    try {
      get(*actors_->last_delivery);
    } catch (const std::exception&) {
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (!entries_.empty()) {
      auto it = entries_.begin();
      std::shared_ptr<Entry> e = it->second;
      finish_entry(it->first, *e, "error", "the server is shutting down", 503);
    }
  }
  actors_.reset();
}

}  // namespace weft::serving
