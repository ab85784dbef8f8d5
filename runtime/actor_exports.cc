#include "runtime/actor_exports.h"

#include "runtime/runtime.h"

#include <utility>
#include <vector>

namespace weft::runtime {
namespace {

using detail::ActorCore;
using detail::RemoteOutcome;

RemoteOutcome failed(const std::string& call, const std::string& why, ErrorKind kind = ErrorKind::kRemote) {
  RemoteOutcome out;
  out.error = std::make_shared<ErrorInfo>(ErrorInfo{call, why, "weft::RemoteError", kind});
  return out;
}

// A worker's call of a driver actor, queued in the actor's mailbox like any other call: runs the
// method in the worker hosting the instance, then reports and frees itself.
class ForwardedCall final : public detail::ActorCallBase {
 public:
  ForwardedCall(ActorCore* actor, std::string method, std::string args, std::function<void(RemoteOutcome)> done)
      : ActorCallBase(actor, common_for(method_)),
        method_(std::move(method)),
        args_(std::move(args)),
        done_(std::move(done)) {}

  void start() { start_dependencies(); }
  void run() override {
    const uint64_t hosted = actor()->hosted_id();
    if (hosted == 0) {
      finish(failed(method_, "actor " + actor()->class_name() +
                                 " lives in the driver (its factory or arguments cannot travel), so tasks in worker "
                                 "processes cannot call it"));
      return;
    }
    finish(detail::remote_actor_call(hosted, method_, std::move(args_), method_));
  }
  void cancel() override {
    RemoteOutcome out;
    out.error = detail::cancelled_error(method_);
    finish(std::move(out));
  }
  void fail_with(detail::ErrorPtr error) override {
    RemoteOutcome out;
    out.error = std::move(error);
    finish(std::move(out));
  }

 private:
  static detail::TaskCommon common_for(const std::string& name) {
    detail::TaskCommon c;
    c.registered_name = &name;
    return c;
  }
  void finish(RemoteOutcome out) {
    done_(std::move(out));
    detach_actor();
    delete this;
  }
  std::string method_, args_;
  std::function<void(RemoteOutcome)> done_;
};

}  // namespace

void ActorExportTable::clear() {
  std::vector<ActorCore*> held;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, e] : by_id_) held.push_back(e.actor);
    by_id_.clear();
    id_of_.clear();
  }
  for (ActorCore* a : held) a->release();
}

Result<uint64_t> ActorExportTable::lookup(const std::string& name, const std::string& class_name, uint64_t borrower) {
  Runtime* rt = live();
  if (rt == nullptr) return Status::failed_precondition("the runtime is not running");
  WEFT_ASSIGN_OR_RETURN(ActorCore * actor, rt->named_actors().find_by_class_name(name, class_name));
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, added] = id_of_.try_emplace(actor, next_id_);
  if (added) {
    by_id_[next_id_++].actor = actor;  // keeps find's reference
  } else {
    actor->release();
  }
  ++by_id_[it->second].borrowers[borrower];
  return it->second;
}

void ActorExportTable::forward(uint64_t id, const std::string& method, std::string args,
                               std::function<void(RemoteOutcome)> done) {
  ActorCore* actor = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = by_id_.find(id); it != by_id_.end()) actor = it->second.actor;
    if (actor != nullptr) actor->add_ref();
  }
  if (actor == nullptr) return done(failed(method, "no such actor (its handle was released)"));
  auto* call = new ForwardedCall(actor, method, std::move(args), std::move(done));
  actor->release();  // the call holds its own reference
  actor->enqueue(call);
  call->start();
}

void ActorExportTable::release(uint64_t id, uint64_t borrower) {
  ActorCore* freed = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return;
    auto b = it->second.borrowers.find(borrower);
    if (b == it->second.borrowers.end()) return;
    if (--b->second == 0) it->second.borrowers.erase(b);
    if (it->second.borrowers.empty()) {
      freed = it->second.actor;
      id_of_.erase(freed);
      by_id_.erase(it);
    }
  }
  if (freed) freed->release();
}

void ActorExportTable::drop_borrower(uint64_t borrower) {
  std::vector<ActorCore*> freed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = by_id_.begin(); it != by_id_.end();) {
      it->second.borrowers.erase(borrower);
      if (it->second.borrowers.empty()) {
        freed.push_back(it->second.actor);
        id_of_.erase(it->second.actor);
        it = by_id_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (ActorCore* a : freed) a->release();
}

size_t ActorExportTable::exported() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_id_.size();
}

}  // namespace weft::runtime
