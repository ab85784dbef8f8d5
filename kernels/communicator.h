// Collectives among the ranks of a tensor-parallel model: one Communicator per rank, tied to that
// rank's backend; an operation runs in the backend's queue order, and every rank calls the same
// operations in the same order (as NCCL requires).
//
//   std::vector<Backend*> ranks = {b0.get(), b1.get()};
//   auto comms = make_communicators(ranks).value();     // comms[i] is rank i's
//   comms[0]->all_reduce_sum(partial0, count);            // on rank 0's thread, and likewise on 1's
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "kernels/backend.h"
#include "weft/export.h"
#include "weft/status.h"

namespace weft::kernels {

/// One rank's end of a group (see the top of this file).
class Communicator {
 public:
  virtual ~Communicator() = default;
  /// This rank's index in the group.
  virtual int rank() const = 0;
  /// Ranks in the group.
  virtual int size() const = 0;
  /// Sums `count` floats at `data` (this rank's backend memory) over every rank, in place; every
  /// rank ends with the same bits.
  virtual Status all_reduce_sum(float* data, size_t count) = 0;
};

/// One communicator per backend, rank i for backends[i], all of one device kind: NCCL for CUDA
/// backends (one GPU each), threads sharing host memory for CPU backends (the fake that tests
/// sharding without several GPUs). kUnavailable where the kind has no collectives built in.
WEFT_API Result<std::vector<std::unique_ptr<Communicator>>> make_communicators(std::span<Backend* const> backends);

}  // namespace weft::kernels
