// Speculators propose token trees for decoding requests; the engine verifies them beside the
// requests' next decodes (StepInput::drafts). One interface for every kind: a speculator follows
// each request's tokens (start, extend, finish) and, asked with a node budget, returns a tree.
#pragma once

#include <cstdint>
#include <span>

#include "serving/suffix_tree.h"

namespace weft::serving {

class Speculator {
 public:
  virtual ~Speculator() = default;
  // A request enters with its prompt.
  virtual void start(uint64_t id, std::span<const int32_t> prompt) = 0;
  // Tokens the request produced (accepted), in order.
  virtual void extend(uint64_t id, std::span<const int32_t> tokens) = 0;
  // The request ended (finished, cancelled or preempted away); unknown ids are ignored.
  virtual void finish(uint64_t id) = 0;
  // A tree of at most `max_nodes` nodes continuing the request's tokens; empty when nothing is
  // worth proposing.
  virtual Proposal propose(uint64_t id, int max_nodes) = 0;
};

}  // namespace weft::serving
