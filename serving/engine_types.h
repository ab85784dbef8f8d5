// What travels between the serving front end and the engine actor: one iteration's input
// (arrivals, requests to finish) and output (per-request tokens and finishes, engine figures).
// Plain values with MessagePack schemas, so the engine may live in another process.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "weft/serialization.h"

namespace weft::serving {

// A request as the engine sees it: token ids in, token ids out.
struct RequestSpec {
  uint64_t id = 0;
  std::vector<int32_t> prompt;
  int max_tokens = 256;
  std::vector<int32_t> stop_token_ids;  // end of generation (EOS, end of turn), unless ignore_eos
  bool ignore_eos = false;
  // Sampling (llm::SamplingParams).
  float temperature = 0.0f;
  int top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  float repeat_penalty = 1.0f;
  int repeat_last_n = 64;
  uint64_t seed = 0;
  int top_logprobs = -1;  // -1: no log-probabilities; 0..20: the chosen token's and this many alternatives
  uint8_t slo = 1;        // weft::Slo
  int64_t ttft_ns = 0;    // targets; 0: the class default
  int64_t tpot_ns = 0;
  int64_t arrival_ns = 0;  // steady clock
  int speculate = -1;      // speculated tokens per iteration at most: -1 the server's setting, 0 none
  std::string adapter;     // the LoRA adapter its tokens go through (Engine::add_adapter); empty: none
  MSGPACK_DEFINE(id, prompt, max_tokens, stop_token_ids, ignore_eos, temperature, top_k, top_p, min_p, repeat_penalty,
                 repeat_last_n, seed, top_logprobs, slo, ttft_ns, tpot_ns, arrival_ns, speculate, adapter)
};

enum class Finish : uint8_t { kNone = 0, kStop = 1, kLength = 2, kAborted = 3, kError = 4 };

struct TopLogprob {
  int32_t token = 0;
  float logprob = 0;
  MSGPACK_DEFINE(token, logprob)
};

// One request's news from one iteration.
struct TokenEvent {
  uint64_t id = 0;
  std::vector<int32_t> tokens;               // new tokens, in order
  std::vector<float> logprobs;               // per token, when asked
  std::vector<std::vector<TopLogprob>> top;  // per token, when asked
  uint8_t finish = 0;                        // Finish
  std::string error;                         // with kError
  int prompt_tokens = 0;
  int drafted = 0;   // speculated tokens verified this iteration
  int accepted = 0;  // of which accepted (then `tokens` has accepted + 1, fewer if it finished)
  MSGPACK_DEFINE(id, tokens, logprobs, top, finish, error, prompt_tokens, drafted, accepted)
};

struct EngineStats {
  int running = 0;
  int waiting = 0;
  int kv_blocks_used = 0;
  int kv_blocks_total = 0;
  int64_t preemptions = 0;             // since start
  int64_t prompt_tokens_computed = 0;  // since start, recomputation included
  int64_t draft_tokens = 0;            // since start: speculated tokens verified
  int64_t accepted_tokens = 0;         // since start: of which accepted
  int64_t draft_steps = 0;             // since start: decodes that verified a tree
  int64_t speculate_ns = 0;            // since start: time spent proposing trees (draft models' passes included)
  int64_t finetune_tokens = 0;         // since start: training tokens through the forward pass
  int64_t finetune_steps = 0;          // since start: optimizer steps
  int64_t finetune_ns = 0;             // since start: time spent finetuning inside iterations
  int finetune_jobs = 0;               // jobs queued or running
  MSGPACK_DEFINE(running, waiting, kv_blocks_used, kv_blocks_total, preemptions, prompt_tokens_computed, draft_tokens,
                 accepted_tokens, draft_steps, speculate_ns, finetune_tokens, finetune_steps, finetune_ns,
                 finetune_jobs)
};

// A draft model's distribution over next tokens, sparse: tokens and their probabilities.
struct DraftDist {
  std::vector<int32_t> ids;
  std::vector<float> probs;
  MSGPACK_DEFINE(ids, probs)
};

// A speculated continuation of one decoding request, as a speculator proposes it: a token tree
// whose node i follows node parents[i] (< i), or the request's last known token when -1. Nodes come
// best first: when the iteration's budget is short, a prefix of them is verified.
//
// `drawn_from` says how each node was chosen: -1 deterministically (a suffix match, a draft
// model's top tokens), or the index in `dists` of the distribution it was sampled from; children
// of one node that name the same distribution were drawn from it without replacement, in node
// order. Sampled nodes let a sampling request accept a draft token with probability
// min(1, p/q) (speculative_sampling.h); empty `drawn_from`: every node deterministic.
struct DraftTree {
  uint64_t id = 0;
  std::vector<int32_t> tokens;
  std::vector<int32_t> parents;
  std::vector<int32_t> drawn_from;
  std::vector<DraftDist> dists;
  // The first `required` nodes keep the request on its TPOT target: they are planned with its decode,
  // ahead of prefill chunks; the rest take what the iteration has left.
  int required = 0;
  MSGPACK_DEFINE(id, tokens, parents, drawn_from, dists, required)
};

// The answer to a command that changes the engine (loading or unloading an adapter): a
// weft::StatusCode, 0 when it was done, and what went wrong.
struct CommandReply {
  uint8_t code = 0;
  std::string message;
  MSGPACK_DEFINE(code, message)
};

// A LoRA finetuning job co-served with inference (FlexLLM): its tokenised data and settings.
struct FinetuneJobSpec {
  std::string id;                             // "ftjob-..."
  std::string model_name;                     // served under this name once it succeeds
  std::vector<std::vector<int32_t>> tokens;   // per training sequence
  std::vector<std::vector<uint8_t>> trained;  // per token: trained on
  int rank = 8;
  float alpha = 16;
  bool rslora = false;
  std::vector<uint8_t> targets = {0, 2};  // llm::LoraTarget
  uint8_t optimizer = 0;                  // finetune::OptimizerKind
  float lr = 2e-4f, momentum = 0, weight_decay = 0, max_grad_norm = 1;
  int epochs = 3;
  int batch_size = 4;
  uint64_t seed = 0;
  std::string output_dir;  // the finished adapter is saved here (PEFT and adapter.gguf); empty: not saved
  MSGPACK_DEFINE(id, model_name, tokens, trained, rank, alpha, rslora, targets, optimizer, lr, momentum, weight_decay,
                 max_grad_norm, epochs, batch_size, seed, output_dir)
};

enum class JobStatus : uint8_t { kQueued = 0, kRunning = 1, kSucceeded = 2, kFailed = 3, kCancelled = 4 };

// A finetuning job's news from one iteration: an optimizer step, or a change of status.
struct FinetuneEvent {
  std::string id;
  uint8_t status = 0;  // JobStatus
  int step = 0, total_steps = 0;
  double loss = 0;             // the step's mean training loss
  int64_t trained_tokens = 0;  // so far
  std::string error;           // with kFailed
  MSGPACK_DEFINE(id, status, step, total_steps, loss, trained_tokens, error)
};

// What a finetuning slice (EngineActor::finetune) did: its jobs' news and running totals.
struct FinetuneSlice {
  std::vector<FinetuneEvent> events;
  int64_t tokens = 0, steps = 0, ns = 0;  // since start (EngineStats' finetune_* figures)
  int jobs = 0;                           // queued or running
  MSGPACK_DEFINE(events, tokens, steps, ns, jobs)
};

struct StepInput {
  std::vector<RequestSpec> arrivals;
  std::vector<uint64_t> finish;  // ended by the front end (stop string, disconnect): free them
  // Verified beside each request's next decode in one pass with tree attention: the request samples
  // its next token as usual and keeps going down the tree while a child holds the token it sampled,
  // so the tokens are exactly those decoding without the tree would give, several per iteration.
  std::vector<DraftTree> drafts;
  MSGPACK_DEFINE(arrivals, finish, drafts)
};

struct StepOutput {
  std::vector<TokenEvent> events;
  EngineStats stats;
  int tokens = 0;   // tokens computed in this iteration
  uint8_t slo = 1;  // the most urgent class computed
  MSGPACK_DEFINE(events, stats, tokens, slo)
};

}  // namespace weft::serving
