#include "weft/detail/actor_core.h"

#include <utility>

namespace weft::detail {
namespace {
// Calls one drain runs before yielding its thread to other work.
constexpr int kDrainBatch = 64;
}  // namespace

ActorCallBase::ActorCallBase(ActorCore* actor, const TaskCommon& common) : TaskLifecycle(common), actor_(actor) {
  actor_->add_ref();
}

ActorCallBase::~ActorCallBase() { detach_actor(); }

void ActorCallBase::detach_actor() noexcept {
  if (actor_ != nullptr) std::exchange(actor_, nullptr)->release();
}

void ActorCallBase::on_ready() noexcept { actor_->call_ready(this); }

void ActorCore::enqueue(ActorCallBase* call) {
  std::lock_guard lock(mu_);
  mailbox_.push_back(call);
}

void ActorCore::call_ready(ActorCallBase* call) noexcept {
  bool schedule = false;
  {
    std::lock_guard lock(mu_);
    call->ready_ = true;
    if (!scheduled_ && mailbox_.front()->ready_) {
      scheduled_ = true;
      schedule = true;
      drain_.set_priority(mailbox_.front()->slo(), mailbox_.front()->deadline_ns());
    }
  }
  if (schedule) {
    add_ref();  // held by the queued drain
    submit(&drain_);
  }
}

void ActorCore::drain(bool cancelling) {
  bool resubmit = false;
  for (int n = 0;; ++n) {
    ActorCallBase* call = nullptr;
    {
      std::lock_guard lock(mu_);
      if (mailbox_.empty() || !mailbox_.front()->ready_) {
        scheduled_ = false;
        break;
      }
      if (n == kDrainBatch) {
        drain_.set_priority(mailbox_.front()->slo(), mailbox_.front()->deadline_ns());
        resubmit = true;
        break;
      }
      call = mailbox_.front();
      mailbox_.pop_front();
    }
    if (cancelling) {
      call->cancel();
    } else if (dead_) {
      call->fail_with(dead_);
    } else {
      call->run();
    }
  }
  if (resubmit) {
    submit(&drain_);  // keeps the reference
  } else {
    release();  // may destroy this actor: last statement
  }
}

}  // namespace weft::detail
