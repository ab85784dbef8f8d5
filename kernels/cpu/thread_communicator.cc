#include "kernels/cpu/thread_communicator.h"

#include <algorithm>
#include <barrier>

namespace weft::kernels::cpu {
namespace {

struct Group {
  explicit Group(int n) : size(n), barrier(n), inputs(static_cast<size_t>(n)) {}
  const int size;
  std::barrier<> barrier;
  std::vector<const float*> inputs;
  std::vector<float> sum;
};

class ThreadCommunicator final : public Communicator {
 public:
  ThreadCommunicator(std::shared_ptr<Group> group, int rank) : group_(std::move(group)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return group_->size; }

  Status all_reduce_sum(float* data, size_t count) override {
    Group& g = *group_;
    g.inputs[static_cast<size_t>(rank_)] = data;
    if (rank_ == 0) g.sum.resize(count);
    g.barrier.arrive_and_wait();  // every input is in place, the sum buffer sized
    const size_t per = (count + g.size - 1) / g.size;
    const size_t begin = std::min(count, per * rank_), end = std::min(count, begin + per);
    for (size_t j = begin; j < end; ++j) {
      float s = 0;
      for (int r = 0; r < g.size; ++r) s += g.inputs[static_cast<size_t>(r)][j];
      g.sum[j] = s;
    }
    g.barrier.arrive_and_wait();  // the sum is complete; nobody reads the inputs any more
    std::copy(g.sum.begin(), g.sum.begin() + static_cast<std::ptrdiff_t>(count), data);
    g.barrier.arrive_and_wait();  // every rank has its copy before the sum buffer is reused
    return Status::ok();
  }

 private:
  std::shared_ptr<Group> group_;
  int rank_;
};

}  // namespace

std::vector<std::unique_ptr<Communicator>> make_thread_communicators(int size) {
  auto group = std::make_shared<Group>(size);
  std::vector<std::unique_ptr<Communicator>> out;
  for (int r = 0; r < size; ++r) out.push_back(std::make_unique<ThreadCommunicator>(group, r));
  return out;
}

}  // namespace weft::kernels::cpu
