#include "workers/peer_drivers.h"

#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <zmq.hpp>

#include "core/logging.h"
#include "workers/control.h"
#include "workers/node_protocol.h"

namespace weft::workers {
namespace {

using namespace std::chrono_literals;
using detail::RefRecord;
using detail::RemoteOutcome;

detail::RefRecord owner_died(const ObjectId& id, uint64_t owner) {
  RefRecord r;
  r.set_id(id);
  r.owner = owner;
  r.set_error(ErrorInfo{"object " + id.hex(), fmt::format("its owner, driver {}, died before it was read", owner),
                        "weft::OwnerDied", ErrorKind::kOwnerDied});
  return r;
}

// Who waits for one answer about an object: this driver's slot, or one of its workers.
struct ObjectWaiter {
  std::function<void(RefRecord)> relay;  // null: this driver (resolve)
};

// A message for a peer, sent by the I/O thread (which connects first if need be).
struct Outgoing {
  uint64_t peer = 0;
  std::string endpoint;  // known from a Find; empty: the I/O thread asks the node
  std::string bytes;
};

// (owner, object) as a map key.
struct WaitKey {
  uint64_t owner = 0;
  ObjectId id;
  bool operator<(const WaitKey& o) const { return std::tie(owner, id.hi, id.lo) < std::tie(o.owner, o.id.hi, o.id.lo); }
};

struct Link {
  std::unique_ptr<zmq::socket_t> sock;
  int pidfd = -1;
};

}  // namespace

struct PeerDrivers::State {
  std::string node_address;
  uint64_t self = static_cast<uint64_t>(getpid());
  std::function<void(RefRecord)> resolve;
  zmq::context_t ctx{1};

  // The node's directory, over a connection of its own (any thread, one request at a time).
  std::mutex dir_mu;
  std::unique_ptr<zmq::socket_t> dir;
  uint64_t next_dir_seq = 1;

  std::mutex mu;  // guards everything below, except the links (I/O thread only)
  std::condition_variable cv;
  std::deque<Outgoing> outbox;
  std::map<WaitKey, std::deque<ObjectWaiter>> object_waits;
  struct Call {
    uint64_t peer = 0;
    std::optional<ControlMessage> answer;
  };
  std::unordered_map<uint64_t, Call> calls;  // by seq
  uint64_t next_seq = 1;
  std::unordered_map<uint64_t, std::pair<uint64_t, uint64_t>> aliases;  // alias -> (peer, its id)
  uint64_t next_alias = kAliasBase;
  std::unordered_set<uint64_t> dead;
  int callers = 0;  // threads inside find_named or call_actor: the destructor waits for them

  int wake_fd = -1;
  std::atomic<bool> stop{false};
  std::thread io;
  std::unordered_map<uint64_t, Link> links;  // I/O thread only
  std::atomic<size_t> linked{0};

  // ---- the directory ----
  template <class Reply>
  Result<Reply> ask_node(node::NodeMessage request, uint64_t seq) {
    std::lock_guard<std::mutex> lock(dir_mu);
    try {
      dir->send(zmq::buffer(node::encode(request)), zmq::send_flags::none);
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      while (std::chrono::steady_clock::now() < deadline) {
        zmq::pollitem_t item{dir->handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, 100ms);
        zmq::message_t m;
        if (!(item.revents & ZMQ_POLLIN) || !dir->recv(m, zmq::recv_flags::dontwait)) continue;
        auto msg = node::decode_node(std::string_view(static_cast<const char*>(m.data()), m.size()));
        if (!msg.ok()) continue;
        if (const Reply* r = std::get_if<Reply>(&*msg); r != nullptr && r->seq == seq) return *r;
      }
    } catch (const zmq::error_t& e) {
      return Status::unavailable(std::string("cannot reach the node: ") + e.what());
    }
    return Status::unavailable("no answer from the node at " + node_address);
  }
  uint64_t dir_seq() {
    std::lock_guard<std::mutex> lock(dir_mu);
    return next_dir_seq++;
  }

  // ---- from any thread ----
  void push(Outgoing o) {
    {
      std::lock_guard<std::mutex> lock(mu);
      outbox.push_back(std::move(o));
    }
    const uint64_t one = 1;
    (void)!write(wake_fd, &one, sizeof one);
  }

  uint64_t expect(uint64_t peer) {  // with mu held
    const uint64_t seq = next_seq++;
    calls[seq] = Call{peer, std::nullopt};
    return seq;
  }

  std::optional<ControlMessage> wait_for(uint64_t seq) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return stop.load() || calls[seq].answer.has_value(); });
    std::optional<ControlMessage> m = std::move(calls[seq].answer);
    calls.erase(seq);
    return m;
  }

  // Marks a thread inside a blocking call, so the destructor does not free what it uses.
  struct Caller {
    explicit Caller(State& s) : s(s) {
      std::lock_guard<std::mutex> lock(s.mu);
      ++s.callers;
    }
    ~Caller() {
      std::lock_guard<std::mutex> lock(s.mu);
      --s.callers;
      s.cv.notify_all();
    }
    State& s;
  };

  // ---- the I/O thread ----
  Link* link_to(uint64_t peer, const std::string& known_endpoint) {
    if (auto it = links.find(peer); it != links.end()) return &it->second;
    std::string endpoint = known_endpoint;
    if (endpoint.empty()) {
      const uint64_t seq = dir_seq();
      auto located = ask_node<node::Located>(node::Locate{seq, static_cast<int64_t>(peer)}, seq);
      if (located.ok()) endpoint = located->endpoint;
    }
    const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, static_cast<pid_t>(peer), 0));
    if (endpoint.empty() || pidfd < 0) {
      if (pidfd >= 0) close(pidfd);
      peer_gone(peer, "is not attached to this node");
      return nullptr;
    }
    Link l;
    l.sock = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
    l.sock->set(zmq::sockopt::linger, 0);
    l.sock->connect(endpoint);
    l.sock->send(zmq::buffer(encode(PeerHello{static_cast<int64_t>(self)})), zmq::send_flags::none);
    l.pidfd = pidfd;
    linked.fetch_add(1);
    return &links.emplace(peer, std::move(l)).first->second;
  }

  // Everything waiting on `peer` fails; later requests to it fail at once.
  void peer_gone(uint64_t peer, const std::string& how) {
    std::vector<std::pair<ObjectId, ObjectWaiter>> objects;
    bool newly;
    {
      std::lock_guard<std::mutex> lock(mu);
      newly = dead.insert(peer).second;
      for (auto it = object_waits.begin(); it != object_waits.end();) {
        if (it->first.owner == peer) {
          for (auto& w : it->second) objects.emplace_back(it->first.id, std::move(w));
          it = object_waits.erase(it);
        } else {
          ++it;
        }
      }
      for (auto& [seq, c] : calls) {
        if (c.peer != peer || c.answer) continue;
        Failure f{static_cast<uint8_t>(ErrorKind::kWorkerDied), "weft::WorkerDied",
                  fmt::format("the driver holding this actor (pid {}) {}", peer, how)};
        c.answer = ActorReply{TaskResult{seq, false, {}, f}};
      }
      cv.notify_all();
    }
    if (newly) log()->warn("driver: peer driver {} {}", peer, how);
    for (auto& [id, w] : objects) answer(w, owner_died(id, peer));
  }

  void answer(ObjectWaiter& w, RefRecord r) {
    if (w.relay) {
      w.relay(std::move(r));
    } else {
      resolve(std::move(r));
    }
  }

  void on_message(uint64_t peer, Link& l, std::string_view bytes) {
    auto msg = decode_control(bytes);
    if (!msg.ok()) {
      log()->warn("driver: from peer driver {}: {}", peer, msg.status().message());
      return;
    }
    if (ObjectReady* ready = std::get_if<ObjectReady>(&*msg)) {
      const ObjectId id = ready->record.id();
      std::optional<ObjectWaiter> w;
      {
        std::lock_guard<std::mutex> lock(mu);
        auto it = object_waits.find(WaitKey{peer, id});
        if (it != object_waits.end()) {
          w = std::move(it->second.front());
          it->second.pop_front();
          if (it->second.empty()) object_waits.erase(it);
        }
      }
      if (!w) {
        log()->warn("driver: peer driver {} answered for object {}, which nobody here waits for", peer, id.hex());
        l.sock->send(zmq::buffer(encode(BorrowDone{id})), zmq::send_flags::none);
        return;
      }
      const bool ours = !w->relay;
      answer(*w, std::move(ready->record));
      if (ours) l.sock->send(zmq::buffer(encode(BorrowDone{id})), zmq::send_flags::none);
      return;
    }
    uint64_t seq = 0;
    if (const auto* found = std::get_if<ActorFound>(&*msg)) seq = found->seq;
    if (const auto* reply = std::get_if<ActorReply>(&*msg)) seq = reply->result.seq;
    if (seq == 0) {
      log()->warn("driver: unexpected {} message from peer driver {}", name_of(*msg), peer);
      return;
    }
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = calls.find(seq); it != calls.end() && it->second.peer == peer && !it->second.answer) {
      it->second.answer = std::move(*msg);
      cv.notify_all();
    }
  }

  void run() {
    while (!stop.load()) {
      std::vector<zmq::pollitem_t> items = {{nullptr, wake_fd, ZMQ_POLLIN, 0}};
      std::vector<uint64_t> order;
      for (auto& [peer, l] : links) {
        items.push_back({l.sock->handle(), 0, ZMQ_POLLIN, 0});
        items.push_back({nullptr, l.pidfd, ZMQ_POLLIN, 0});
        order.push_back(peer);
      }
      zmq::poll(items.data(), items.size(), 200ms);
      if (items[0].revents & ZMQ_POLLIN) {
        uint64_t v;
        (void)!read(wake_fd, &v, sizeof v);
      }
      std::deque<Outgoing> out;
      {
        std::lock_guard<std::mutex> lock(mu);
        out.swap(outbox);
      }
      for (Outgoing& o : out) {
        bool gone;
        {
          std::lock_guard<std::mutex> lock(mu);
          gone = dead.contains(o.peer);
        }
        Link* l = gone ? nullptr : link_to(o.peer, o.endpoint);
        if (l == nullptr) {
          peer_gone(o.peer, "is gone");  // fails what was just registered for it
          continue;
        }
        l->sock->send(zmq::buffer(o.bytes), zmq::send_flags::none);
      }
      for (size_t k = 0; k < order.size(); ++k) {
        auto it = links.find(order[k]);
        if (it == links.end()) continue;
        Link& l = it->second;
        if (items[1 + 2 * k].revents & ZMQ_POLLIN) {
          zmq::message_t m;
          while (l.sock->recv(m, zmq::recv_flags::dontwait)) {
            on_message(order[k], l, std::string_view(static_cast<const char*>(m.data()), m.size()));
          }
        }
        if (items[2 + 2 * k].revents & ZMQ_POLLIN) {
          close(l.pidfd);
          links.erase(it);
          linked.fetch_sub(1);
          peer_gone(order[k], "died");
        }
      }
    }
    for (auto& [peer, l] : links) close(l.pidfd);
    links.clear();
  }
};

Result<std::unique_ptr<PeerDrivers>> PeerDrivers::start(const std::string& node_address,
                                                        std::function<void(RefRecord)> resolve) {
  std::unique_ptr<PeerDrivers> p(new PeerDrivers());
  p->s_ = std::make_unique<State>();
  State& s = *p->s_;
  s.node_address = node_address;
  s.resolve = std::move(resolve);
  try {
    s.dir = std::make_unique<zmq::socket_t>(s.ctx, zmq::socket_type::dealer);
    s.dir->set(zmq::sockopt::linger, 0);
    s.dir->connect("ipc://" + node_address.substr(5));
  } catch (const zmq::error_t& e) {
    return Status::unavailable("cannot reach the node at " + node_address + ": " + e.what());
  }
  s.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  s.io = std::thread([&s] { s.run(); });
  return p;
}

void PeerDrivers::cancel() {
  std::vector<std::pair<WaitKey, ObjectWaiter>> objects;
  {
    std::lock_guard<std::mutex> lock(s_->mu);
    s_->stop.store(true);
    s_->cv.notify_all();
    for (auto& [key, waiters] : s_->object_waits) {
      for (auto& w : waiters) objects.emplace_back(key, std::move(w));
    }
    s_->object_waits.clear();
  }
  for (auto& [key, w] : objects) {
    RefRecord r;
    r.set_id(key.id);
    r.owner = key.owner;
    r.set_error(ErrorInfo{"object " + key.id.hex(), "the runtime stopped while it waited for another driver's object",
                          "weft::TaskCancelled", ErrorKind::kCancelled});
    s_->answer(w, std::move(r));
  }
}

PeerDrivers::~PeerDrivers() {
  if (!s_) return;
  cancel();
  {
    std::unique_lock<std::mutex> lock(s_->mu);
    s_->cv.wait(lock, [&] { return s_->callers == 0; });  // they return cancelled now
  }
  const uint64_t one = 1;
  (void)!write(s_->wake_fd, &one, sizeof one);
  if (s_->io.joinable()) s_->io.join();
  close(s_->wake_fd);
}

Status PeerDrivers::publish(const std::string& name, const std::string& class_name) {
  const uint64_t seq = s_->dir_seq();
  WEFT_ASSIGN_OR_RETURN(node::Named named, s_->ask_node<node::Named>(
                                               node::Name{seq, static_cast<int64_t>(s_->self), name, class_name}, seq));
  if (!named.ok) return Status::already_exists(named.message);
  return Status::ok();
}

Result<uint64_t> PeerDrivers::find_named(const std::string& name, const std::string& class_name) {
  State::Caller inside(*s_);
  const uint64_t dseq = s_->dir_seq();
  WEFT_ASSIGN_OR_RETURN(node::Found found, s_->ask_node<node::Found>(node::Find{dseq, name}, dseq));
  if (found.driver == 0 || static_cast<uint64_t>(found.driver) == s_->self) {
    return Status::not_found("no actor is named '" + name + "'");
  }
  if (found.class_name != class_name) {
    return Status::invalid_argument("the actor named '" + name + "' is a " + found.class_name + ", not a " +
                                    class_name);
  }
  const auto peer = static_cast<uint64_t>(found.driver);
  uint64_t seq;
  {
    std::lock_guard<std::mutex> lock(s_->mu);
    seq = s_->expect(peer);
  }
  s_->push(Outgoing{peer, found.endpoint, encode(ActorLookup{seq, name, class_name})});
  std::optional<ControlMessage> m = s_->wait_for(seq);
  const auto* got = m ? std::get_if<ActorFound>(&*m) : nullptr;
  if (got == nullptr) {
    if (m) {
      if (const auto* reply = std::get_if<ActorReply>(&*m)) return Status::unavailable(reply->result.failure.message);
    }
    return Status::cancelled("the runtime is stopping");
  }
  if (got->actor == 0) return Status(static_cast<StatusCode>(got->code), got->message);
  std::lock_guard<std::mutex> lock(s_->mu);
  const uint64_t alias = s_->next_alias++;
  s_->aliases[alias] = {peer, got->actor};
  return alias;
}

RemoteOutcome PeerDrivers::call_actor(uint64_t alias, const std::string& method, std::string args,
                                      const std::string& call_name) {
  State::Caller inside(*s_);
  RemoteOutcome out;
  uint64_t peer = 0, seq = 0, actor = 0;
  {
    std::lock_guard<std::mutex> lock(s_->mu);
    auto it = s_->aliases.find(alias);
    if (it != s_->aliases.end()) {
      std::tie(peer, actor) = it->second;
      seq = s_->expect(peer);
    }
  }
  if (seq == 0) {
    out.error = std::make_shared<ErrorInfo>(
        ErrorInfo{call_name, "no such actor of another driver", "weft::RemoteError", ErrorKind::kRemote});
    return out;
  }
  s_->push(Outgoing{peer, "", encode(ActorForward{seq, actor, method, {std::move(args)}})});
  std::optional<ControlMessage> m = s_->wait_for(seq);
  const auto* reply = m ? std::get_if<ActorReply>(&*m) : nullptr;
  if (reply == nullptr) {
    out.error = detail::cancelled_error(call_name);
    return out;
  }
  out.ok = reply->result.ok;
  out.payload = reply->result.payload.data;
  if (!out.ok) out.error = std::make_shared<ErrorInfo>(from_failure(call_name, reply->result.failure));
  return out;
}

void PeerDrivers::borrow(uint64_t alias) {
  std::pair<uint64_t, uint64_t> target{0, 0};
  {
    std::lock_guard<std::mutex> lock(s_->mu);
    if (auto it = s_->aliases.find(alias); it != s_->aliases.end()) target = it->second;
  }
  if (target.first != 0) s_->push(Outgoing{target.first, "", encode(ActorBorrow{target.second})});
}

void PeerDrivers::drop(uint64_t alias) {
  std::pair<uint64_t, uint64_t> target{0, 0};
  {
    std::lock_guard<std::mutex> lock(s_->mu);
    auto it = s_->aliases.find(alias);
    if (it == s_->aliases.end()) return;
    target = it->second;
    s_->aliases.erase(it);
  }
  s_->push(Outgoing{target.first, "", encode(ActorRelease{target.second})});
}

void PeerDrivers::request(const ObjectId& id, uint64_t owner) { relay(id, owner, nullptr); }

void PeerDrivers::relay(const ObjectId& id, uint64_t owner, std::function<void(RefRecord)> answer) {
  bool gone, stopped;
  {
    std::lock_guard<std::mutex> lock(s_->mu);
    gone = s_->dead.contains(owner);
    stopped = s_->stop.load();
    if (!gone && !stopped) s_->object_waits[WaitKey{owner, id}].push_back(ObjectWaiter{answer});
  }
  if (stopped) {
    RefRecord r;
    r.set_id(id);
    r.owner = owner;
    r.set_error(
        ErrorInfo{"object " + id.hex(), "the runtime is stopping", "weft::TaskCancelled", ErrorKind::kCancelled});
    ObjectWaiter w{std::move(answer)};
    return s_->answer(w, std::move(r));
  }
  if (gone) {
    ObjectWaiter w{std::move(answer)};
    return s_->answer(w, owner_died(id, owner));
  }
  s_->push(Outgoing{owner, "", encode(ObjectWait{id, static_cast<int64_t>(owner)})});
}

void PeerDrivers::borrow_done(const ObjectId& id, uint64_t owner) {
  s_->push(Outgoing{owner, "", encode(BorrowDone{id})});
}

size_t PeerDrivers::linked() const { return s_->linked.load(); }

}  // namespace weft::workers
