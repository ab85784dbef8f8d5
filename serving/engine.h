// The serving engine: many requests, one paged KV cache, one forward pass per iteration.
//
//   Engine engine(model, {.kv_cache_tokens = 8192});
//   StepOutput out = engine.step({.arrivals = {spec}});  // admits, computes one iteration
//   while (engine.has_work()) out = engine.step({});
//
// Each iteration: finish what the front end ended, admit arrivals (invalid ones come back at once
// as kError events), plan with plan_iteration (iteration_scheduler.h), free the KV of preempted
// requests, run one forward pass over every planned token (prefill chunks and decode steps side by
// side), commit, sample each request whose last known token was computed, and report new tokens and
// finishes. Draft trees (StepInput::drafts) are verified beside their requests' decodes in the same
// pass; a request may then gain several tokens in one iteration. A request owns its sampler
// (seeded), so its tokens do not depend on what else is batched with it (nor on the LoRA adapters
// other requests name: each token applies its own request's adapter in the shared pass); prompt tokens use the
// matrix attention layout and generated ones the vector layout whether first computed or recomputed
// after preemption, so greedy output is the same bit for bit as generating alone (llm::generate).
//
// Not thread-safe: one caller at a time (the engine actor runs calls in order). The model must
// outlive the engine.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "llm/kv_cache.h"
#include "llm/llama_model.h"
#include "llm/lora_adapter.h"
#include "llm/sampler.h"
#include "serving/engine_types.h"
#include "serving/iteration_scheduler.h"
#include "serving/speculative_sampling.h"

namespace weft::serving {

// The sampling a request asked for.
llm::SamplingParams sampling_params(const RequestSpec& spec);

struct EngineOptions {
  SchedulerOptions scheduler;
  int kv_cache_tokens = 16384;  // KV cache size in tokens, across requests
  int max_waiting = 1024;       // arrivals beyond this many waiting requests are refused (kError)
};

class Engine {
 public:
  Engine(std::shared_ptr<const llm::LlamaModel> model, const EngineOptions& options);

  StepOutput step(const StepInput& input);
  bool has_work() const { return !requests_.empty(); }
  // A request whose next iteration is a decode (which may verify a draft tree), with its progress
  // against its TPOT target (the class default when it named none).
  struct Decoding {
    uint64_t id = 0;
    int64_t tpot_ns = 0;
    int generated = 0;           // tokens produced so far
    int64_t first_token_ns = 0;  // steady clock
  };
  std::vector<Decoding> decoding() const;
  // Measures forward passes of 1, 2, 4, ... up to `max_tokens` tokens (each twice, the first
  // discarded) so the step cost is known before the first request: the speculation and batching
  // policies size iterations with it from the start. Needs an empty cache; a no-op otherwise.
  void profile(int max_tokens);
  // Serves `adapter` to requests that name `name` (RequestSpec::adapter) from the next iteration:
  // kAlreadyExists when the name is taken, kInvalidArgument when it does not fit the model.
  Status add_adapter(const std::string& name, std::shared_ptr<const llm::LoraAdapter> adapter);
  // Refuses new requests for `name`; those running keep the adapter until they finish. kNotFound.
  Status remove_adapter(const std::string& name);
  EngineStats stats() const;
  const llm::KvCache& cache() const { return kv_; }
  const StepCost& step_cost() const { return cost_; }
  const EngineOptions& options() const { return options_; }

 private:
  struct Request {
    RequestSpec spec;
    llm::Sampler sampler;
    std::vector<int32_t> tokens;  // prompt, then generated
    int prompt_len = 0;
    int computed = 0;
    int seq = -1;  // KV sequence while running
    int64_t last_token_ns = 0;
    int64_t first_token_ns = 0;
    std::shared_ptr<const llm::LoraAdapter> adapter;  // null: the base model
    int generated() const { return static_cast<int>(tokens.size()) - prompt_len; }
    // Holds KV and has only its last known token to compute: the next iteration is a decode.
    bool decoding() const { return seq >= 0 && static_cast<int>(tokens.size()) - computed == 1; }
  };
  Status admit(const RequestSpec& spec);
  void release(Request& r);
  // Appends `next`, sampled from the logits `row`, to `r`; fills its event; true when `r` is done.
  bool advance(Request& r, int32_t next, std::span<const float> row, TokenEvent& event);
  // A tree the engine can verify for `r`: `r` is decoding, ids in the vocabulary, parents earlier.
  bool valid_draft(const Request& r, const DraftTree& d) const;

  std::shared_ptr<const llm::LlamaModel> model_;
  EngineOptions options_;
  llm::KvCache kv_;
  std::map<uint64_t, Request> requests_;  // live requests by id (ids grow with arrival)
  std::map<std::string, std::shared_ptr<const llm::LoraAdapter>> adapters_;  // by name
  int64_t preemptions_ = 0;
  int64_t prompt_tokens_computed_ = 0;
  StepCost cost_;  // learnt from every forward pass
  SpeculativeSampler verify_;
  int64_t draft_tokens_ = 0;
  int64_t draft_steps_ = 0;
  int64_t accepted_tokens_ = 0;
};

}  // namespace weft::serving
