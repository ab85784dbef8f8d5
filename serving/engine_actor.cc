#include "serving/engine_actor.h"

#include <unistd.h>

#include <cstdio>

#include "serving/suffix_speculator.h"

namespace weft::serving {

EngineActor::EngineActor(const EngineConfig& c) {
  team_ = std::make_shared<ParallelTeam>(c.threads);
  llm::ModelOptions mo;
  mo.parallel = team_;
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
  engine_ = std::make_unique<Engine>(model_, eo);
  if (c.speculate == "suffix") {
    speculation_ = std::make_unique<SpeculativeDecoding>(std::make_unique<SuffixSpeculator>(),
                                                         SpeculationOptions{.max_nodes = c.speculate_max_nodes});
  } else if (c.speculate != "off") {
    throw Error("unknown speculation '" + c.speculate + "' (suffix or off)");
  }
}

EngineActor::~EngineActor() = default;

EngineInfo EngineActor::info() const {
  return {model_->config().context_length, model_->config().vocab, engine_->stats().kv_blocks_total};
}

StepOutput EngineActor::step(StepInput input, uint8_t slo) {
  team_->set_priority(static_cast<Slo>(std::min<int>(slo, kNumSloClasses - 1)));
  if (!speculation_) return engine_->step(input);
  speculation_->prepare(*engine_, input);
  StepOutput out = engine_->step(input);
  speculation_->observe(out);
  return out;
}

std::unique_ptr<EngineActor> open_engine(EngineConfig config) { return std::make_unique<EngineActor>(config); }

}  // namespace weft::serving

WEFT_REMOTE(weft::serving::open_engine, &weft::serving::EngineActor::info, &weft::serving::EngineActor::step);
