// In-process object slots and dependency tracking. Internal.
//
// An ObjectBase is the state behind every ObjectRef: pending until its producer finishes, then
// ready (with a value) or failed (with an ErrorInfo), never changing again. It is reference
// counted; the last ObjectRef, task argument or producer to let go frees it.
//
// Synchronisation: all fields are written by the single producer before finish(), which publishes
// them with a release exchange; readers observe done() with acquire and then read freely.
// Dependents (tasks waiting for this object) are a lock-free intrusive stack closed by finish():
// an edge pushed before the close is notified by the producer, a push that finds the stack closed
// fails and the pusher treats the dependency as met.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "weft/detail/hooks.h"
#include "weft/detail/runnable.h"
#include "weft/export.h"
#include "weft/ids.h"

namespace weft::detail {

class TaskBase;

// One dependency of one task, linked into the dependency's list of dependents.
struct DepEdge {
  DepEdge* next = nullptr;
  TaskBase* task = nullptr;
};

class WEFT_API ObjectBase {
 public:
  ObjectBase(const ObjectBase&) = delete;
  ObjectBase& operator=(const ObjectBase&) = delete;

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  // True when this is the only reference: the holder may move the value out.
  bool unique() const noexcept { return refs_.load(std::memory_order_acquire) == 1; }

  bool done() const noexcept { return state_.load(std::memory_order_acquire) & kDoneMask; }
  bool failed() const noexcept { return (state_.load(std::memory_order_acquire) & kDoneMask) == kFailed; }
  // Valid once failed() is true.
  const ErrorPtr& error() const noexcept { return error_; }
  const ObjectId& id() const noexcept { return id_; }
  // The owning process's key when this is a slot for an object owned elsewhere; 0 for an object of
  // this process (ref_wire.h).
  virtual uint64_t borrowed_from() const noexcept { return 0; }

  // Producer: marks the object failed and notifies dependents and sleepers.
  void fail(ErrorPtr e) {
    error_ = std::move(e);
    finish(kFailed);
  }

  // Links `e` as a dependent. Returns false (and links nothing) when the object is already done.
  bool add_dependent(DepEdge* e) noexcept {
    DepEdge* head = deps_.load(std::memory_order_acquire);
    do {
      if (head == closed()) return false;
      e->next = head;
    } while (!deps_.compare_exchange_weak(head, e, std::memory_order_acq_rel, std::memory_order_acquire));
    return true;
  }

  // A thread about to block on this object announces itself, so that finish() wakes sleepers.
  // Returns false when the object is already done (the caller must not block).
  bool arm_sleeper() noexcept {
    uint32_t s = state_.load(std::memory_order_acquire);
    while (true) {
      if (s & kDoneMask) return false;
      if (s & kSleeper) return true;
      if (state_.compare_exchange_weak(s, s | kSleeper, std::memory_order_seq_cst)) return true;
    }
  }

 protected:
  explicit ObjectBase(uint32_t initial_refs) : refs_(initial_refs), id_(ObjectId::next()) {}
  ObjectBase(uint32_t initial_refs, const ObjectId& id) : refs_(initial_refs), id_(id) {}
  virtual ~ObjectBase() = default;

  static constexpr uint32_t kReady = 1, kFailed = 2, kDoneMask = 3, kSleeper = 4;

  // Publishes the outcome, then notifies dependents (which may schedule them) and sleepers.
  inline void finish(uint32_t outcome);

 private:
  static DepEdge* closed() { return reinterpret_cast<DepEdge*>(uintptr_t{1}); }

  std::atomic<uint32_t> refs_;
  std::atomic<uint32_t> state_{0};
  std::atomic<DepEdge*> deps_{nullptr};
  ErrorPtr error_;
  ObjectId id_;
};

// An object holding a T.
template <class T>
class Object : public ObjectBase {
 public:
  explicit Object(uint32_t initial_refs = 1) : ObjectBase(initial_refs) {}
  Object(uint32_t initial_refs, const ObjectId& id) : ObjectBase(initial_refs, id) {}

  template <class... A>
  void set_value(A&&... a) {
    value_.emplace(std::forward<A>(a)...);
    finish(kReady);
  }
  // Valid once done() && !failed().
  const T& value() const { return *value_; }
  T& mutable_value() { return *value_; }

 private:
  std::optional<T> value_;
};

template <>
class Object<void> : public ObjectBase {
 public:
  explicit Object(uint32_t initial_refs = 1) : ObjectBase(initial_refs) {}
  Object(uint32_t initial_refs, const ObjectId& id) : ObjectBase(initial_refs, id) {}
  void set_value() { finish(kReady); }
};

// Dependency tracking shared by function tasks and actor calls: counts unmet dependencies and
// remembers the first failed one. `pending_` starts at 1, a guard that start_dependencies() drops
// after linking every edge, so readiness is signalled exactly once.
class WEFT_API TaskBase : public Runnable {
 public:
  // Called by a finished dependency (on the producer's thread).
  void dep_done(ObjectBase* dep) noexcept {
    if (dep->failed()) {
      ObjectBase* expected = nullptr;
      failed_dep_.compare_exchange_strong(expected, dep, std::memory_order_acq_rel);
    }
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) on_ready();
  }

  // Linking, used once at submission by start_with_dependencies (args.h): reserve, add each
  // dependency, then start.
  // Reserves edge storage for `n` dependencies. Call once, before add_dependency.
  void reserve_dependencies(size_t n) {
    if (n > kInlineEdges) heap_edges_ = std::make_unique<DepEdge[]>(n);
  }
  // Links one dependency. The caller keeps `dep` alive (it lives in the task's arguments).
  void add_dependency(ObjectBase* dep) {
    DepEdge* e = heap_edges_ ? &heap_edges_[used_edges_++] : &inline_edges_[used_edges_++];
    e->task = this;
    pending_.fetch_add(1, std::memory_order_relaxed);
    if (!dep->add_dependent(e)) dep_done(dep);
  }
  // Drops the guard: the task becomes ready now if every dependency was already met.
  void start_dependencies() noexcept { dep_done_guard(); }

 protected:
  TaskBase() = default;
  ~TaskBase() = default;

  // All dependencies are met (or one failed): hand the task to its executor.
  virtual void on_ready() noexcept = 0;

  // The first dependency that failed, or null.
  ObjectBase* failed_dependency() const noexcept { return failed_dep_.load(std::memory_order_acquire); }

 private:
  static constexpr size_t kInlineEdges = 2;
  void dep_done_guard() noexcept {
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) on_ready();
  }

  std::atomic<int32_t> pending_{1};
  std::atomic<ObjectBase*> failed_dep_{nullptr};
  uint32_t used_edges_ = 0;
  DepEdge inline_edges_[kInlineEdges];
  std::unique_ptr<DepEdge[]> heap_edges_;
};

inline void ObjectBase::finish(uint32_t outcome) {
  uint32_t old = state_.exchange(outcome, std::memory_order_seq_cst);
  DepEdge* e = deps_.exchange(closed(), std::memory_order_acq_rel);
  while (e != nullptr) {
    DepEdge* next = e->next;  // read before dep_done: the edge may be freed with its task
    e->task->dep_done(this);
    e = next;
  }
  if (old & kSleeper) wake_sleepers();
}

}  // namespace weft::detail
