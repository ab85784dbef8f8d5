// Collectives among ranks that are threads of one process on CPU backends (communicator.h): each
// all-reduce meets at a barrier, every rank sums its share of the elements over all ranks in rank
// order into a shared buffer, and copies the result back.
#pragma once

#include <memory>
#include <vector>

#include "kernels/communicator.h"

namespace weft::kernels::cpu {

/// `size` communicators sharing one group.
std::vector<std::unique_ptr<Communicator>> make_thread_communicators(int size);

}  // namespace weft::kernels::cpu
