// The engine as an actor: it loads the model (computing on the runtime's workers through a
// weft::ParallelTeam), owns the KV cache, and runs one iteration per `step` call, with the
// speculator's trees for the decoding requests when speculation is on. Every argument
// and result is a plain value (engine_types.h), so the actor could live in any process.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "serving/co_finetuning.h"
#include "serving/engine.h"
#include "serving/engine_types.h"
#include "serving/speculative_decoding.h"
#include "weft/weft.h"

namespace weft::serving {

// Which speculator proposes trees, and its knobs (weft serve --speculate ...).
struct SpeculationConfig {
  std::string method = "off";  // "suffix" (suffix_speculator.h), "draft" (draft_model_speculator.h),
                               // "merged" (both in one tree, merged_speculator.h) or "off"
  int max_nodes = 16;          // tree nodes per request and iteration at most
  std::string draft_model;     // the draft's GGUF (same vocabulary); empty: the target's own file
  int draft_layers = 0;        // the draft keeps its first layers only; 0: all
  std::vector<int> expansion;  // the draft's children per node by depth; empty: DraftModelOptions' default
  // Which nodes are verified (speculative_decoding.h): "slo" (AdaServe: each request's nodes sized
  // by its TPOT target, then what pays), "cost" (what pays on this machine) or "every" proposed node.
  std::string policy = "slo";
  MSGPACK_DEFINE(method, max_nodes, draft_model, draft_layers, expansion, policy)
};

struct EngineConfig {
  std::string model_path;
  int threads = 0;  // 0: every runtime worker (and the caller)
  int kv_cache_tokens = 16384;
  int max_num_seqs = 64;
  int max_num_batched_tokens = 512;
  int max_waiting = 1024;
  bool progress = false;  // load progress on stderr
  SpeculationConfig speculation;
  std::string device = "cpu";  // where the model (and a draft model) computes: cpu or cuda
  // Targets of requests that name none, by class (SchedulerOptions::default_targets); empty: its defaults.
  std::vector<int64_t> ttft_targets_ns, tpot_targets_ns;
  int profile_tokens = 32;  // the step cost is measured at load up to this many tokens (Engine::profile); 0: not
  uint8_t scheduling = 0;   // SchedulePolicy
  uint8_t finetune_sharing = 0;  // FinetuneSharing (co_finetuning.h)
  int finetune_threads = 1;      // with FinetuneSharing::kSpatial: finetuning's own threads
  MSGPACK_DEFINE(model_path, threads, kv_cache_tokens, max_num_seqs, max_num_batched_tokens, max_waiting, progress,
                 speculation, device, ttft_targets_ns, tpot_targets_ns, profile_tokens, scheduling, finetune_sharing,
                 finetune_threads)
};

struct EngineInfo {
  int context_length = 0;
  int vocab = 0;
  int kv_blocks = 0;
  MSGPACK_DEFINE(context_length, vocab, kv_blocks)
};

class EngineActor {
 public:
  // Raises weft::Error when the model cannot be loaded.
  explicit EngineActor(const EngineConfig& config);
  ~EngineActor();
  EngineInfo info() const;
  // One iteration, its helpers at the class of `slo`.
  StepOutput step(StepInput input, uint8_t slo);
  // Loads a LoRA adapter (a PEFT directory or a GGUF adapter, read in this actor's process) and
  // serves it to requests naming `name` from the next iteration (Engine::add_adapter).
  CommandReply load_adapter(std::string name, std::string path);
  // Engine::remove_adapter.
  CommandReply unload_adapter(std::string name);
  // The finetuning share of the iteration that the last step computed (CoFinetuning::run): a
  // separate call, at the batch class, so the step's tokens reach their clients first.
  FinetuneSlice finetune();
  // Queues a LoRA finetuning job co-served with inference (co_finetuning.h); its news comes back
  // from finetune(), and once it succeeds its adapter is served as spec.model_name.
  CommandReply submit_finetune(FinetuneJobSpec spec);
  // Ends a queued or running job at once, freeing its memory.
  CommandReply cancel_finetune(std::string id);

 private:
  std::shared_ptr<ParallelTeam> team_;
  std::shared_ptr<const llm::LlamaModel> model_;
  std::unique_ptr<Engine> engine_;
  std::shared_ptr<const llm::LlamaModel> draft_;      // the draft model, when one speculates
  std::unique_ptr<SpeculativeDecoding> speculation_;  // null: off
  std::unique_ptr<CoFinetuning> finetuning_;
  std::vector<FinetuneEvent> finetune_events_;  // news of commands, sent with the next finetune()
  int last_tokens_ = 0;                         // the last step's tokens and time, for finetune()
  int64_t last_ns_ = 0;
  int64_t speculate_ns_ = 0;
};

std::unique_ptr<EngineActor> open_engine(EngineConfig config);

}  // namespace weft::serving
