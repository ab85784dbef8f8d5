#include "workers/borrowers.h"

#include <unistd.h>

#include <fmt/format.h>

namespace weft::workers {
namespace {

detail::RefRecord lost(const ObjectId& id, uint64_t owner, std::string why) {
  detail::RefRecord r;
  r.set_id(id);
  r.owner = owner;
  r.set_error(ErrorInfo{"object " + id.hex(), std::move(why), "weft::ObjectLost", ErrorKind::kObjectLost});
  return r;
}

}  // namespace

bool Borrowers::handle(pid_t from, ControlMessage& msg) {
  const auto who = static_cast<uint64_t>(from);
  if (const ObjectWait* wait = std::get_if<ObjectWait>(&msg)) {
    on_object_wait(from, *wait);
  } else if (const BorrowDone* done = std::get_if<BorrowDone>(&msg)) {
    on_borrow_done(from, done->object);
  } else if (ActorForward* f = std::get_if<ActorForward>(&msg)) {
    // A call of one of this driver's actors: made through the actor's mailbox.
    const uint64_t seq = f->seq;
    if (actors_ == nullptr) {
      answer_(from, ActorReply{TaskResult{seq,
                                          false,
                                          {},
                                          to_failure(ErrorInfo{f->method, "this driver exports no actors",
                                                               "weft::RemoteError", ErrorKind::kRemote})}});
      return true;
    }
    actors_->forward(f->actor, f->method, std::move(f->payload.data), [this, from, seq](detail::RemoteOutcome out) {
      TaskResult r{seq, out.ok, {std::move(out.payload)}, {}};
      if (!out.ok && out.error) r.failure = to_failure(*out.error);
      answer_(from, ActorReply{std::move(r)});
    });
  } else if (const ActorLookup* l = std::get_if<ActorLookup>(&msg)) {
    ActorFound found{l->seq, 0, static_cast<uint8_t>(StatusCode::kNotFound), "no actor is named '" + l->name + "'"};
    if (actors_ != nullptr) {
      Result<uint64_t> id = actors_->lookup(l->name, l->class_name, who);
      if (id.ok()) {
        found.actor = *id;
        found.code = 0;
        found.message.clear();
      } else {
        found.code = static_cast<uint8_t>(id.status().code());
        found.message = id.status().message();
      }
    }
    answer_(from, std::move(found));
  } else if (const ActorRelease* release = std::get_if<ActorRelease>(&msg)) {
    if (actors_ != nullptr) actors_->release(release->actor, who);
  } else if (const ActorBorrow* borrow = std::get_if<ActorBorrow>(&msg)) {
    if (actors_ != nullptr) actors_->borrow(borrow->actor, who);
  } else {
    return false;
  }
  return true;
}

void Borrowers::on_object_wait(pid_t from, const ObjectWait& w) {
  if (refs_ == nullptr) return;
  object_waits_.fetch_add(1);
  const auto self = static_cast<uint64_t>(getpid());
  const auto owner = static_cast<uint64_t>(w.owner);
  if (owner != 0 && owner != self) {  // another driver's object: ask it, and pass the answer on
    if (peers_ == nullptr) {
      answer_(from,
              ObjectReady{lost(w.object, owner, fmt::format("its owner (pid {}) is not reachable from here", owner))});
      return;
    }
    relayed_.emplace(Relayed{from, w.object}, owner);
    peers_->relay(w.object, owner, [this, from](detail::RefRecord r) { answer_(from, ObjectReady{std::move(r)}); });
    return;
  }
  refs_->wait(w.object, static_cast<uint64_t>(from),
              [this, from](detail::RefRecord record) { answer_(from, ObjectReady{std::move(record)}); });
}

void Borrowers::on_borrow_done(pid_t from, const ObjectId& id) {
  if (auto it = relayed_.find(Relayed{from, id}); it != relayed_.end()) {
    if (peers_ != nullptr) peers_->borrow_done(id, it->second);
    relayed_.erase(it);
    return;
  }
  if (refs_ != nullptr) refs_->borrow_done(static_cast<uint64_t>(from), id);
}

void Borrowers::gone(pid_t pid) {
  const auto who = static_cast<uint64_t>(pid);
  for (auto it = relayed_.lower_bound(Relayed{pid, ObjectId{0, 0}}); it != relayed_.end() && it->first.pid == pid;) {
    if (peers_ != nullptr) peers_->borrow_done(it->first.id, it->second);
    it = relayed_.erase(it);
  }
  if (refs_ != nullptr) refs_->drop_borrower(who);
  if (actors_ != nullptr) actors_->drop_borrower(who);
}

void Borrowers::undelivered(pid_t pid, const ControlMessage& m) {
  // It died meanwhile: its waits were let go with it (gone), but this answer was still coming.
  if (const auto* ready = std::get_if<ObjectReady>(&m)) on_borrow_done(pid, ready->record.id());
}

}  // namespace weft::workers
