// The per-actor mailbox that runs calls one at a time in submission order. Internal.
//
// Calls are appended to the mailbox when submitted. A call becomes ready when its argument
// objects exist; the call at the head of the mailbox, once ready, is run by a single Drain
// runnable scheduled with that call's priority. Later calls wait for earlier ones even when their
// own arguments are ready first, so calls on one actor are strictly ordered.
//
// Synchronisation: `mu_` guards the mailbox, each call's ready flag and `scheduled_`; it is never
// held while user code runs. At most one Drain is queued or running per actor (`scheduled_`), so
// the actor instance and `dead_` are only touched by one thread at a time, with happens-before
// through `mu_` from one drain to the next.
#pragma once

#include <atomic>
#include <deque>
#include <mutex>
#include <string>

#include "weft/detail/function_task.h"
#include "weft/detail/object.h"
#include "weft/export.h"

namespace weft::detail {

class ActorCore;

class WEFT_API ActorCallBase : public TaskBase, public TaskLifecycle {
 public:
  // Completes the call with `error` without running it (the actor failed to construct).
  virtual void fail_with(ErrorPtr error) = 0;

 protected:
  ActorCallBase(ActorCore* actor, const TaskCommon& common);
  virtual ~ActorCallBase();
  void on_ready() noexcept override;
  ActorCore* actor() const { return actor_; }
  // Drops the call's reference to its actor once the call is finished, so a result ref held by
  // the caller does not keep the actor alive.
  void detach_actor() noexcept;

 private:
  friend class ActorCore;
  ActorCore* actor_;    // holds a reference until the call finishes
  bool ready_ = false;  // guarded by actor_->mu_
};

class WEFT_API ActorCore {
 public:
  ActorCore(const ActorCore&) = delete;
  ActorCore& operator=(const ActorCore&) = delete;

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Appends a call in submission order. The call must then start its dependencies.
  void enqueue(ActorCallBase* call);
  // A queued call's dependencies are met.
  void call_ready(ActorCallBase* call) noexcept;
  // Calls after a failed construction fail with `error` (drain thread only).
  void set_dead(ErrorPtr error) { dead_ = std::move(error); }
  const std::string& class_name() const { return class_name_; }
  // The id under which a worker process hosts the instance (multi-process mode), or 0 while it
  // lives here or is not built yet (read from the actor's drain, after its factory call).
  virtual uint64_t hosted_id() const { return 0; }
  // The instance, while it lives in this process (read from the actor's drain); null otherwise.
  virtual void* local_instance() const { return nullptr; }
  // Whether its instance lives in another process, or will once built: set before its first
  // handle is handed out, so any thread may read it. A task given a handle to such an actor may
  // run in a worker process, whose calls reach it through the driver.
  bool lives_elsewhere() const noexcept { return lives_elsewhere_; }
  void set_lives_elsewhere() noexcept { lives_elsewhere_ = true; }

 protected:
  explicit ActorCore(std::string class_name) : drain_(this), class_name_(std::move(class_name)) {}
  virtual ~ActorCore() = default;

 private:
  class Drain final : public Runnable {
   public:
    explicit Drain(ActorCore* a) : actor_(a) {}
    void run() override { actor_->drain(false); }
    void cancel() override { actor_->drain(true); }

   private:
    ActorCore* actor_;
  };
  void drain(bool cancelling);

  std::atomic<uint32_t> refs_{1};
  std::mutex mu_;
  std::deque<ActorCallBase*> mailbox_;  // guarded by mu_
  bool scheduled_ = false;              // guarded by mu_
  Drain drain_;
  ErrorPtr dead_;
  std::string class_name_;
  bool lives_elsewhere_ = false;
};

}  // namespace weft::detail
