#include "serving/engine_actor.h"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

#include "weft/detail/runnable.h"

#include "serving/draft_model_speculator.h"
#include "serving/merged_speculator.h"
#include "serving/suffix_speculator.h"

namespace weft::serving {

EngineActor::EngineActor(const EngineConfig& c) {
  team_ = std::make_shared<ParallelTeam>(c.threads);
  auto device = kernels::parse_device(c.device);
  if (!device.ok()) throw Error(device.status().to_string());
  llm::ModelOptions mo;
  mo.parallel = team_;
  mo.device = *device;
  if (c.progress && isatty(STDERR_FILENO)) {
    mo.on_progress = [](double f) { std::fprintf(stderr, "\rloading model: %3d%%", static_cast<int>(f * 100)); };
  }
  auto model = llm::LlamaModel::load(c.model_path, mo);
  if (mo.on_progress) std::fprintf(stderr, "\r\033[K");
  if (!model.ok()) throw Error(model.status().to_string());
  model_ = std::shared_ptr<const llm::LlamaModel>(std::move(*model));
  EngineOptions eo;
  eo.kv_cache_tokens = c.kv_cache_tokens;
  eo.max_waiting = c.max_waiting;
  eo.scheduler.max_num_seqs = c.max_num_seqs;
  eo.scheduler.max_num_batched_tokens = c.max_num_batched_tokens;
  if (c.scheduling > static_cast<uint8_t>(SchedulePolicy::kFcfs)) throw Error("unknown scheduling policy");
  eo.scheduler.policy = static_cast<SchedulePolicy>(c.scheduling);
  for (size_t k = 0; k < kNumSloClasses; ++k) {
    if (k < c.ttft_targets_ns.size() && c.ttft_targets_ns[k] > 0)
      eo.scheduler.default_targets[k].ttft_ns = c.ttft_targets_ns[k];
    if (k < c.tpot_targets_ns.size() && c.tpot_targets_ns[k] > 0)
      eo.scheduler.default_targets[k].tpot_ns = c.tpot_targets_ns[k];
  }
  engine_ = std::make_unique<Engine>(model_, eo);
  if (c.finetune_sharing > static_cast<uint8_t>(FinetuneSharing::kSpatial)) throw Error("unknown finetune sharing");
  finetuning_ =
      std::make_unique<CoFinetuning>(model_, *team_,
                                     CoFinetuningOptions{.sharing = static_cast<FinetuneSharing>(c.finetune_sharing),
                                                         .spatial_threads = c.finetune_threads});
  if (c.profile_tokens > 0) engine_->profile(c.profile_tokens);
  const SpeculationConfig& s = c.speculation;
  std::unique_ptr<Speculator> draft;
  if (s.method == "draft" || s.method == "merged") {
    if (s.draft_model.empty() && s.draft_layers == 0) {
      throw Error("draft speculation needs a draft model or a number of the target's layers to keep");
    }
    llm::ModelOptions dmo;
    dmo.parallel = team_;
    dmo.layers = s.draft_layers;
    dmo.device = *device;
    auto d = llm::LlamaModel::load(s.draft_model.empty() ? c.model_path : s.draft_model, dmo);
    if (!d.ok()) throw Error("draft model: " + d.status().to_string());
    if ((*d)->config().vocab != model_->config().vocab) {
      throw Error("the draft model's vocabulary (" + std::to_string((*d)->config().vocab) +
                  " tokens) is not the target's (" + std::to_string(model_->config().vocab) + ")");
    }
    draft_ = std::shared_ptr<const llm::LlamaModel>(std::move(*d));
    DraftModelOptions o;
    o.kv_cache_tokens = c.kv_cache_tokens;
    if (!s.expansion.empty()) o.expansion = s.expansion;
    draft = std::make_unique<DraftModelSpeculator>(draft_, o);
  }
  std::unique_ptr<Speculator> speculator;
  if (s.method == "suffix") {
    speculator = std::make_unique<SuffixSpeculator>();
  } else if (s.method == "draft") {
    speculator = std::move(draft);
  } else if (s.method == "merged") {
    speculator = std::make_unique<MergedSpeculator>(std::make_unique<SuffixSpeculator>(), std::move(draft));
  } else if (s.method != "off") {
    throw Error("unknown speculation '" + s.method + "' (suffix, draft, merged or off)");
  }
  if (speculator) {
    SpeculationOptions o{.max_nodes = s.max_nodes};
    if (s.policy == "slo") {
      o.policy = SelectionPolicy::kSlo;
    } else if (s.policy == "cost") {
      o.policy = SelectionPolicy::kCost;
    } else if (s.policy == "every") {
      o.policy = SelectionPolicy::kEvery;
      o.cold_min_prob = 0;
    } else {
      throw Error("unknown speculation policy '" + s.policy + "' (slo, cost or every)");
    }
    speculation_ = std::make_unique<SpeculativeDecoding>(std::move(speculator), o);
  }
}

EngineActor::~EngineActor() = default;

EngineInfo EngineActor::info() const {
  return {model_->config().context_length, model_->config().vocab, engine_->stats().kv_blocks_total};
}

StepOutput EngineActor::step(StepInput input, uint8_t slo) {
  team_->set_priority(static_cast<Slo>(std::min<int>(slo, kNumSloClasses - 1)));
  const int64_t start = detail::now_ns();
  StepOutput out;
  if (!speculation_) {
    out = engine_->step(input);
  } else {
    speculation_->prepare(*engine_, input);
    speculate_ns_ += detail::now_ns() - start;
    out = engine_->step(input);
    const int64_t observed = detail::now_ns();
    speculation_->observe(out);
    speculate_ns_ += detail::now_ns() - observed;
    out.stats.speculate_ns = speculate_ns_;
  }
  last_tokens_ = out.tokens;
  last_ns_ = detail::now_ns() - start;
  // Counted while a spatial thread's news waits too, so the loop comes for it (finetune()).
  out.stats.finetune_jobs = finetuning_->jobs() + (finetuning_->has_news() ? 1 : 0);
  return out;
}

FinetuneSlice EngineActor::finetune() {
  // What the last iteration left goes to finetuning, at the batch class (with spatial sharing,
  // the news of finetuning's own threads).
  team_->set_priority(Slo::kBatch);
  FinetuneSlice out;
  out.events = std::move(finetune_events_);
  finetune_events_.clear();
  for (CoFinetuning::Finished& f : finetuning_->run(*engine_, last_tokens_, last_ns_, out.events)) {
    if (Status s = engine_->add_adapter(f.name, std::move(f.adapter)); !s.is_ok()) {
      // Trained but not served (its name is taken): the job fails with why, so nobody lists it.
      for (FinetuneEvent& e : out.events) {
        if (e.id == f.id && e.status == static_cast<uint8_t>(JobStatus::kSucceeded)) {
          e.status = static_cast<uint8_t>(JobStatus::kFailed);
          e.error = fmt::format("the adapter '{}' cannot be served: {}", f.name, s.message());
        }
      }
    }
  }
  last_tokens_ = 0;
  last_ns_ = 0;
  out.tokens = finetuning_->tokens();
  out.steps = finetuning_->steps();
  out.ns = finetuning_->ns();
  out.jobs = finetuning_->jobs();
  return out;
}

CommandReply EngineActor::submit_finetune(FinetuneJobSpec spec) {
  const llm::ModelOptions& o = model_->options();
  if (o.device != kernels::Device::kCpu || o.device_forward || o.tensor_parallel > 0) {
    return {static_cast<uint8_t>(StatusCode::kInvalidArgument), "finetuning runs on the CPU"};
  }
  const Status s = finetuning_->submit(spec, finetune_events_);
  return {static_cast<uint8_t>(s.code()), s.message()};
}

CommandReply EngineActor::cancel_finetune(std::string id) {
  const Status s = finetuning_->cancel(id, finetune_events_);
  return {static_cast<uint8_t>(s.code()), s.message()};
}

namespace {

CommandReply reply(const Status& s) { return {static_cast<uint8_t>(s.code()), s.message()}; }

}  // namespace

CommandReply EngineActor::load_adapter(std::string name, std::string path) {
  const llm::ModelOptions& o = model_->options();
  if (o.device != kernels::Device::kCpu || o.device_forward || o.tensor_parallel > 0) {
    return reply(Status::invalid_argument(fmt::format(
        "LoRA adapters run on the CPU forward pass; this model computes on {}", model_->device_description())));
  }
  Result<llm::LoraAdapter> adapter = llm::LoraAdapter::load(path, model_->config());
  if (!adapter.ok()) return reply(adapter.status());
  return reply(engine_->add_adapter(name, std::make_shared<const llm::LoraAdapter>(std::move(adapter).value())));
}

CommandReply EngineActor::unload_adapter(std::string name) { return reply(engine_->remove_adapter(name)); }

std::unique_ptr<EngineActor> open_engine(EngineConfig config) { return std::make_unique<EngineActor>(config); }

}  // namespace weft::serving

WEFT_REMOTE(weft::serving::open_engine, &weft::serving::EngineActor::info, &weft::serving::EngineActor::step,
            &weft::serving::EngineActor::load_adapter, &weft::serving::EngineActor::unload_adapter,
            &weft::serving::EngineActor::submit_finetune, &weft::serving::EngineActor::cancel_finetune,
            &weft::serving::EngineActor::finetune);
