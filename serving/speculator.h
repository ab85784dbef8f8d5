// Speculators propose token trees for decoding requests; the engine verifies them beside the
// requests' next decodes (StepInput::drafts). One interface for every kind: a speculator follows
// each request's tokens (start, extend, finish) and, asked with a node budget, returns a tree.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "llm/sampler.h"
#include "serving/proposal.h"

namespace weft::serving {

class Speculator {
 public:
  virtual ~Speculator() = default;
  // A request enters with its prompt and the sampling it asked for (a draft model samples its
  // candidates the same way).
  virtual void start(uint64_t id, std::span<const int32_t> prompt, const llm::SamplingParams& sampling) = 0;
  // Tokens the request produced (accepted), in order.
  virtual void extend(uint64_t id, std::span<const int32_t> tokens) = 0;
  // The request ended (finished, cancelled or preempted away); unknown ids are ignored.
  virtual void finish(uint64_t id) = 0;
  // A tree of at most `max_nodes` nodes continuing the request's tokens; empty when nothing is
  // worth proposing.
  virtual Proposal propose(uint64_t id, int max_nodes) = 0;

  struct Ask {
    uint64_t id = 0;
    int max_nodes = 0;
  };
  // Trees for several requests, in the order asked: a draft model computes them together, one
  // forward pass per tree level. By default, propose() for each.
  virtual std::vector<Proposal> propose_all(std::span<const Ask> asks) {
    std::vector<Proposal> out;
    out.reserve(asks.size());
    for (const Ask& a : asks) out.push_back(propose(a.id, a.max_nodes));
    return out;
  }
};

}  // namespace weft::serving
