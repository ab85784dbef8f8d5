// SuffixDecoding (Oliaro et al., arXiv 2411.04975) as a Speculator: a suffix tree per request over
// its prompt and output so far, and a global suffix tree over the responses of the latest
// `max_cached_requests` requests (oldest evicted first), their outputs indexed as they are
// produced. Each proposal takes the longest suffix of the request's last tokens found in a tree,
// allows min(max_nodes, max_spec_tokens, factor x match length + offset) nodes, grows the tree
// best-first by path probability down to `min_token_prob`, and keeps whichever of the local and
// global trees expects more accepted tokens.
//
// Not thread-safe: the engine actor calls it between iterations.
#pragma once

#include <deque>
#include <map>
#include <memory>

#include "serving/speculator.h"
#include "serving/suffix_tree.h"

namespace weft::serving {

struct SuffixOptions {
  int max_depth = 64;            // longest suffix indexed
  int max_spec_tokens = 16;      // nodes per proposal at most
  float max_spec_factor = 1.0f;  // nodes <= factor x match length + offset
  float max_spec_offset = 0.0f;
  float min_token_prob = 0.1f;     // nodes less likely than this are not proposed
  int max_cached_requests = 1000;  // responses in the global tree; 0 turns it off
};

class SuffixSpeculator final : public Speculator {
 public:
  explicit SuffixSpeculator(const SuffixOptions& options = {});

  void start(uint64_t id, std::span<const int32_t> prompt, const llm::SamplingParams& sampling) override;
  void extend(uint64_t id, std::span<const int32_t> tokens) override;
  void finish(uint64_t id) override;
  Proposal propose(uint64_t id, int max_nodes) override;

  size_t live_requests() const { return requests_.size(); }
  size_t cached_responses() const { return cached_.size(); }
  const SuffixTree& global_tree() const { return global_; }

 private:
  struct Request {
    std::unique_ptr<SuffixTree> local;
    int local_seq = 0;
    int global_seq = -1;
    std::vector<int32_t> tokens;  // prompt and output: the context
  };
  // `seq`: the request's own sequence in `tree` (its suffixes' nodes are known), or -1.
  Proposal from(const SuffixTree& tree, int seq, std::span<const int32_t> context, int max_nodes) const;

  SuffixOptions options_;
  SuffixTree global_;
  std::map<uint64_t, Request> requests_;
  std::deque<int> cached_;  // global sequences, oldest first (live requests' included)
};

}  // namespace weft::serving
