#include "runtime/actor_exports.h"

#include "runtime/runtime.h"
#include "weft/registry.h"

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
    if (hosted != 0) return finish(detail::remote_actor_call(hosted, method_, std::move(args_), method_));
    // The instance lives here (its factory's arguments could not travel): run the method on it.
    void* instance = actor()->local_instance();
    const RemoteEntry* e = Registry::global().find_by_name(method_);
    if (instance == nullptr || e == nullptr || e->invoker == nullptr || e->kind != RemoteKind::kMethod) {
      return finish(failed(method_, "actor " + actor()->class_name() + " lives in the driver and its method " +
                                        method_ +
                                        " does not take its arguments and result by value, so tasks in worker "
                                        "processes cannot call it"));
    }
    RemoteOutcome out;
    try {
      Result<std::string> r = e->invoker(instance, args_);
      if (r.ok()) {
        out.ok = true;
        out.payload = std::move(*r);
      } else {
        out = failed(method_, r.status().message());
      }
    } catch (...) {
      out.error = detail::error_from_current_exception(method_);
    }
    finish(std::move(out));
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

thread_local std::vector<uint64_t>* t_lent = nullptr;

ActorExportTable& ActorExportTable::process() {
  static ActorExportTable* table = new ActorExportTable();  // lives until exit
  return *table;
}

void ActorExportTable::capture_lent(std::vector<uint64_t>* into) { t_lent = into; }

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

uint64_t ActorExportTable::entry_for(ActorCore* actor, bool adopt_reference) {
  auto [it, added] = id_of_.try_emplace(actor, next_id_);
  if (added) {
    if (!adopt_reference) actor->add_ref();
    by_id_[next_id_++].actor = actor;
  } else if (adopt_reference) {
    actor->release();  // the entry has its own already (never the last: the entry's)
  }
  return it->second;
}

ActorCore* ActorExportTable::maybe_free(std::unordered_map<uint64_t, Entry>::iterator it) {
  if (it->second.in_flight > 0 || !it->second.borrowers.empty()) return nullptr;
  ActorCore* actor = it->second.actor;
  id_of_.erase(actor);
  by_id_.erase(it);
  return actor;
}

Result<uint64_t> ActorExportTable::lookup(const std::string& name, const std::string& class_name, uint64_t borrower) {
  Runtime* rt = live();
  if (rt == nullptr) return Status::failed_precondition("the runtime is not running");
  WEFT_ASSIGN_OR_RETURN(ActorCore * actor, rt->named_actors().find_by_class_name(name, class_name));
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t id = entry_for(actor, /*adopt_reference=*/true);  // find's reference
  ++by_id_[id].borrowers[borrower];
  return id;
}

uint64_t ActorExportTable::lend(ActorCore* actor) {
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = entry_for(actor, /*adopt_reference=*/false);
    ++by_id_[id].in_flight;
  }
  if (t_lent != nullptr) t_lent->push_back(id);
  return id;
}

void ActorExportTable::return_lent(const std::vector<uint64_t>& ids) {
  std::vector<ActorCore*> freed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (uint64_t id : ids) {
      auto it = by_id_.find(id);
      if (it == by_id_.end() || it->second.in_flight == 0) continue;
      --it->second.in_flight;
      if (ActorCore* a = maybe_free(it)) freed.push_back(a);
    }
  }
  for (ActorCore* a : freed) a->release();
}

ActorCore* ActorExportTable::find(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return nullptr;
  it->second.actor->add_ref();
  return it->second.actor;
}

void ActorExportTable::borrow(uint64_t id, uint64_t borrower) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = by_id_.find(id); it != by_id_.end()) ++it->second.borrowers[borrower];
}

void ActorExportTable::forward(uint64_t id, const std::string& method, std::string args,
                               std::function<void(RemoteOutcome)> done) {
  ActorCore* actor = find(id);
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
    freed = maybe_free(it);
  }
  if (freed) freed->release();
}

void ActorExportTable::drop_borrower(uint64_t borrower) {
  std::vector<ActorCore*> freed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = by_id_.begin(); it != by_id_.end();) {
      auto next = std::next(it);
      if (it->second.borrowers.erase(borrower) > 0) {
        if (ActorCore* a = maybe_free(it)) freed.push_back(a);
      }
      it = next;
    }
  }
  for (ActorCore* a : freed) a->release();
}

size_t ActorExportTable::exported() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_id_.size();
}

}  // namespace weft::runtime
