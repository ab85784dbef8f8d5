#include "serving/suffix_speculator.h"

#include <algorithm>
#include <cmath>

namespace weft::serving {

SuffixSpeculator::SuffixSpeculator(const SuffixOptions& options) : options_(options), global_(options.max_depth) {}

void SuffixSpeculator::start(uint64_t id, std::span<const int32_t> prompt, const llm::SamplingParams&) {
  finish(id);
  Request r;
  r.local = std::make_unique<SuffixTree>(options_.max_depth);
  r.local_seq = r.local->add_sequence();
  r.local->append(r.local_seq, prompt);
  r.tokens.assign(prompt.begin(), prompt.end());
  if (options_.max_cached_requests > 0) {
    while (static_cast<int>(cached_.size()) >= options_.max_cached_requests) {
      const int oldest = cached_.front();
      cached_.pop_front();
      global_.remove_sequence(oldest);
      for (auto& [other_id, other] : requests_) {
        if (other.global_seq == oldest) other.global_seq = -1;  // a long-lived request outlived its slot
      }
    }
    r.global_seq = global_.add_sequence();
    cached_.push_back(r.global_seq);
  }
  requests_.emplace(id, std::move(r));
}

void SuffixSpeculator::extend(uint64_t id, std::span<const int32_t> tokens) {
  auto it = requests_.find(id);
  if (it == requests_.end() || tokens.empty()) return;
  Request& r = it->second;
  r.local->append(r.local_seq, tokens);
  if (r.global_seq >= 0) global_.append(r.global_seq, tokens);
  r.tokens.insert(r.tokens.end(), tokens.begin(), tokens.end());
}

void SuffixSpeculator::finish(uint64_t id) { requests_.erase(id); }  // its response stays cached

Proposal SuffixSpeculator::from(const SuffixTree& tree, int seq, std::span<const int32_t> context,
                                int max_nodes) const {
  const SuffixTree::Match m = tree.match(context, seq);
  if (m.length == 0) return {};
  const int adaptive =
      static_cast<int>(std::floor(options_.max_spec_factor * static_cast<float>(m.length) + options_.max_spec_offset));
  return tree.propose(m, std::min({max_nodes, options_.max_spec_tokens, adaptive}), options_.min_token_prob);
}

Proposal SuffixSpeculator::propose(uint64_t id, int max_nodes) {
  auto it = requests_.find(id);
  if (it == requests_.end() || max_nodes <= 0) return {};
  const Request& r = it->second;
  const size_t keep = std::min(r.tokens.size(), static_cast<size_t>(options_.max_depth));
  const std::span<const int32_t> context(r.tokens.data() + r.tokens.size() - keep, keep);
  Proposal local = from(*r.local, r.local_seq, context, max_nodes);
  if (options_.max_cached_requests <= 0) return local;
  Proposal global = from(global_, r.global_seq, context, max_nodes);
  return global.score > local.score ? global : local;
}

}  // namespace weft::serving
