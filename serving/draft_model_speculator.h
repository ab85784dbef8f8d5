// SpecInfer's draft-model speculation (Miao et al., ASPLOS'24) as a Speculator: a small model with
// the target's vocabulary — another GGUF, a lower-precision copy of the target, or the target's own
// first layers (ModelOptions::layers: self-speculation) — expands a token tree level by level,
// `expansion[d]` children under each node of depth d (SpecInfer's example: 1,1,3,1,1,1,1,1), with
// one forward pass per level for every request asking at once.
//
// Greedy requests get the draft's top tokens (deterministic nodes). Sampling requests get children
// drawn from the draft's distribution under their own sampling settings, without replacement, and
// the distribution travels with the tree, so verification accepts a child with probability
// min(1, p/q) (speculative_sampling.h). Each node's probability is its path probability under the
// draft; nodes below `min_prob` are not proposed.
//
// Each request has a sequence in the draft's own KV cache. A tree is written there as pending
// slots, level after level; when the request's accepted tokens come back, the part of the tree
// they follow is kept (KvCache::keep_branch) and the rest dropped, so the draft then computes only
// the tokens it has not seen — usually the target's one bonus token. When the draft's cache is
// full, the requests of that pass lose their draft state (computed again later) and get no tree.
//
//   DraftModelSpeculator spec(draft_model, {.expansion = {2, 2, 1, 1}});
//   spec.start(id, prompt, sampling);
//   std::vector<Proposal> trees = spec.propose_all(asks);
//
// Not thread-safe: the engine actor calls it between iterations.
#pragma once

#include <map>
#include <memory>
#include <random>
#include <vector>

#include "llm/kv_cache.h"
#include "llm/llama_model.h"
#include "serving/speculator.h"

namespace weft::serving {

struct DraftModelOptions {
  std::vector<int> expansion = {1, 1, 3, 1, 1, 1, 1, 1};  // children per node, by depth
  float min_prob = 0.02f;                                 // nodes less likely than this are not proposed
  int kv_cache_tokens = 16384;                            // the draft's cache, across requests
  int max_dist_tokens = 64;  // a sampled node's distribution keeps this many likeliest tokens at most
};

class DraftModelSpeculator final : public Speculator {
 public:
  DraftModelSpeculator(std::shared_ptr<const llm::LlamaModel> draft, const DraftModelOptions& options);

  void start(uint64_t id, std::span<const int32_t> prompt, const llm::SamplingParams& sampling) override;
  void extend(uint64_t id, std::span<const int32_t> tokens) override;
  void finish(uint64_t id) override;
  Proposal propose(uint64_t id, int max_nodes) override;
  std::vector<Proposal> propose_all(std::span<const Ask> asks) override;

  const llm::KvCache& cache() const { return kv_; }
  // Tokens the draft computed since start, prompts included (what keeping accepted branches saves).
  int64_t tokens_computed() const { return tokens_computed_; }

 private:
  struct Request {
    llm::Sampler sampler;  // the request's sampling, for the draft's distributions (never draws)
    std::mt19937_64 rng;   // draws the sampled children
    std::vector<int32_t> tokens;
    int seq = -1;      // sequence in the draft's cache; -1 until needed
    int computed = 0;  // tokens[0, computed) are committed there
    // The last tree: per node its token, parent and pending slot in the cache (-1: not computed).
    std::vector<int32_t> tree_tokens, tree_parents, tree_slots;
  };
  // Keeps the pending nodes of the last tree that the request's new tokens follow.
  void keep_accepted(Request& r);
  void forget_cache(Request& r);
  // Adds the children of `node` (-1: the root) to `p` from the draft's logits there.
  void expand(Request& r, Proposal& p, int node, float node_prob, std::span<const float> logits, int width, int room);

  std::shared_ptr<const llm::LlamaModel> model_;
  DraftModelOptions options_;
  llm::KvCache kv_;
  std::map<uint64_t, Request> requests_;
  int64_t tokens_computed_ = 0;
  llm::TokenDistribution dist_;  // scratch
  std::vector<int32_t> history_, ids_;
};

}  // namespace weft::serving
