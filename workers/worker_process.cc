#include "workers/worker_process.h"

#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <unordered_map>

#include <zmq.hpp>

#include "core/logging.h"
#include "scheduler/remote_actor_host.h"
#include "weft/detail/hooks.h"
#include "weft/registry.h"
#include "workers/control.h"

namespace weft::workers {
namespace {

// Tasks received and not started, shared by the two threads.
struct TaskQueue {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<ControlMessage> tasks;
  bool stop = false;
};

// Messages for the driver from any thread, sent by the I/O thread; the eventfd wakes its poll.
class Outbox {
 public:
  Outbox() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~Outbox() { close(fd_); }
  int fd() const { return fd_; }
  void push(std::string m) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      messages_.push_back(std::move(m));
    }
    const uint64_t one = 1;
    (void)!write(fd_, &one, sizeof one);
  }
  std::vector<std::string> take() {
    uint64_t v;
    (void)!read(fd_, &v, sizeof v);
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(messages_, {});
  }

 private:
  int fd_;
  std::mutex mu_;
  std::vector<std::string> messages_;
};

// A task's large arguments as they arrive (the I/O thread's own).
struct IncomingArgs {
  Task task;
  std::string bytes;
  uint64_t asked = 0;
};

void ask_args(zmq::socket_t& driver, IncomingArgs& in) {
  const uint64_t length = std::min<uint64_t>(kPiece, in.task.streamed - in.asked);
  driver.send(zmq::buffer(encode(PayloadPull{in.task.seq, in.asked, length})), zmq::send_flags::none);
  in.asked += length;
}

// Results too large to send at once, kept until the driver has pulled their last piece.
class ParkedResults {
 public:
  // A reply whose payload is streamed: the payload stays here, the reply says its size.
  void park(TaskResult& r) {
    r.streamed = r.payload.data.size();
    std::lock_guard<std::mutex> lock(mu_);
    results_[r.seq] = std::move(r.payload.data);
    r.payload.data.clear();
  }
  // The piece asked for, or nothing for an unknown result or a range outside it. A pull of no
  // bytes lets go of the result (the driver will not take it).
  std::optional<PayloadPiece> piece(const PayloadPull& p, bool& dropped) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = results_.find(p.seq);
    dropped = p.length == 0 && it != results_.end();
    if (dropped) {
      results_.erase(it);
      return std::nullopt;
    }
    if (it == results_.end() || p.offset > it->second.size() || p.length > it->second.size() - p.offset) {
      return std::nullopt;
    }
    PayloadPiece out{p.seq, p.offset, {it->second.substr(p.offset, p.length)}};
    if (p.offset + p.length == it->second.size()) results_.erase(it);  // the last one
    return out;
  }

 private:
  std::mutex mu_;
  std::unordered_map<uint64_t, std::string> results_;
};

// The driver's named actors as tasks here reach them (weft::get_actor in a worker): lookups and
// calls go to the driver through the outbox and wait for its answer, which the I/O thread
// delivers; a handle's release is sent without waiting.
class DriverActors final : public sched::RemoteActorHost {
 public:
  explicit DriverActors(Outbox& out) : out_(out) {}

  detail::RemoteOutcome create_actor(const std::string&, std::string, const std::string& call_name, int) override {
    detail::RemoteOutcome out;
    out.error = std::make_shared<ErrorInfo>(
        ErrorInfo{call_name, "actors made in a worker live in that worker", "weft::RemoteError", ErrorKind::kRemote});
    return out;
  }

  detail::RemoteOutcome call_actor(uint64_t actor, const std::string& method, std::string args,
                                   const std::string& call_name) override {
    const uint64_t seq = expect();
    out_.push(encode(ActorForward{seq, actor, method, {std::move(args)}}));
    ControlMessage m = wait_for(seq);
    detail::RemoteOutcome out;
    if (const auto* reply = std::get_if<ActorReply>(&m)) {
      out.ok = reply->result.ok;
      out.payload = reply->result.payload.data;
      if (!out.ok) out.error = std::make_shared<ErrorInfo>(from_failure(call_name, reply->result.failure));
    } else {
      out.error = detail::cancelled_error(call_name);
    }
    return out;
  }

  void drop_actor(uint64_t actor) override { out_.push(encode(ActorRelease{actor})); }
  void borrow_actor(uint64_t actor) override { out_.push(encode(ActorBorrow{actor})); }

  Result<uint64_t> find_named(const std::string& name, const std::string& class_name) override {
    const uint64_t seq = expect();
    out_.push(encode(ActorLookup{seq, name, class_name}));
    ControlMessage m = wait_for(seq);
    const auto* found = std::get_if<ActorFound>(&m);
    if (found == nullptr) return Status::cancelled("the worker is stopping");
    if (found->actor == 0) return Status(static_cast<StatusCode>(found->code), found->message);
    return found->actor;
  }

  // The driver's answer to request `seq` (ActorFound or ActorReply).
  void answer(uint64_t seq, ControlMessage m) {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = waiting_.find(seq); it != waiting_.end() && !it->second) {
      it->second = std::move(m);
      cv_.notify_all();
    }
  }
  // The worker stops: whoever still waits gets Shutdown (a cancellation).
  void cancel_all() {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }

 private:
  uint64_t expect() {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t seq = next_seq_++;
    waiting_[seq];
    return seq;
  }
  ControlMessage wait_for(uint64_t seq) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return stopping_ || waiting_[seq].has_value(); });
    ControlMessage m = waiting_[seq] ? std::move(*waiting_[seq]) : ControlMessage(Shutdown{});
    waiting_.erase(seq);
    return m;
  }

  Outbox& out_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  uint64_t next_seq_ = 1;
  std::unordered_map<uint64_t, std::optional<ControlMessage>> waiting_;  // seq -> answer, once it came
};

// Actor instances hosted here, by the driver's actor id (executing thread only).
struct HostedActor {
  void* instance;
  ActorDestructor destroy;
};
using Actors = std::unordered_map<uint64_t, HostedActor>;

TaskResult remote_error(uint64_t seq, std::string message) {
  return TaskResult{
      seq, false, {}, Failure{static_cast<uint8_t>(ErrorKind::kRemote), "weft::RemoteError", std::move(message)}};
}

// The exception being handled, as the reply.
TaskResult exception_result(uint64_t seq, const std::string& what_ran) {
  return TaskResult{seq, false, {}, to_failure(*detail::error_from_current_exception(what_ran))};
}

// Runs a registered function or method (`self`: the actor instance) on packed arguments.
TaskResult invoke(uint64_t seq, const RemoteEntry& e, void* self, const std::string& payload) {
  try {
    Result<std::string> out = e.invoker(self, payload);
    if (!out.ok()) return remote_error(seq, out.status().to_string());
    return TaskResult{seq, true, {std::move(*out)}, {}};
  } catch (...) {
    return exception_result(seq, e.name);
  }
}

// Runs one task, actor construction or actor call through the registry; the reply to send back
// (none for ActorDrop).
struct Runner {
  Actors& actors;

  std::optional<TaskResult> operator()(const Task& t) const {
    const RemoteEntry* e = Registry::global().find_by_name(t.function);
    if (e == nullptr || e->invoker == nullptr || e->kind != RemoteKind::kFunction) {
      return remote_error(t.seq, "no function '" + t.function + "' is registered in this worker's binary");
    }
    return invoke(t.seq, *e, nullptr, t.payload.data);
  }

  std::optional<TaskResult> operator()(const ActorCreate& c) const {
    const RemoteEntry* e = Registry::global().find_by_name(c.factory);
    if (e == nullptr || e->construct == nullptr) {
      return remote_error(c.seq, "no actor factory '" + c.factory + "' is registered in this worker's binary");
    }
    try {
      void* instance = e->construct(c.payload.data);  // first: a factory that raises adds nothing
      actors[c.actor] = HostedActor{instance, e->destroy};
      return TaskResult{c.seq, true, {pack(msgpack::type::nil_t())}, {}};
    } catch (...) {
      return exception_result(c.seq, c.factory);
    }
  }

  std::optional<TaskResult> operator()(const ActorCall& c) const {
    auto it = actors.find(c.actor);
    if (it == actors.end()) return remote_error(c.seq, "no actor " + std::to_string(c.actor) + " lives in this worker");
    const RemoteEntry* e = Registry::global().find_by_name(c.method);
    if (e == nullptr || e->invoker == nullptr || e->kind != RemoteKind::kMethod) {
      return remote_error(c.seq, "no method '" + c.method + "' that takes its arguments by value is registered");
    }
    return invoke(c.seq, *e, it->second.instance, c.payload.data);
  }

  std::optional<TaskResult> operator()(const ActorDrop& d) const {
    if (auto it = actors.find(d.actor); it != actors.end()) {
      it->second.destroy(it->second.instance);
      actors.erase(it);
    }
    return std::nullopt;
  }

  // Never queued: the receiving loop handles every other message itself.
  template <class M>
  std::optional<TaskResult> operator()(const M&) const {
    return std::nullopt;
  }
};

}  // namespace

int run_worker(const std::string& endpoint, uint32_t index, sched::RefService* refs,
               const std::function<void(sched::RemoteActorHost*)>& install_driver_actors) {
  const pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) return 1;  // the driver died before we got here

  zmq::context_t ctx(1);
  zmq::socket_t driver(ctx, zmq::socket_type::dealer);
  driver.set(zmq::sockopt::linger, 0);
  zmq::socket_t monitor(ctx, zmq::socket_type::pair);  // a remote worker's connection to its driver
  const char* curve_env = std::getenv(kCurveEnv);
  const std::string curve = curve_env != nullptr ? curve_env : "";
  unsetenv(kCurveEnv);
  const bool remote = !curve.empty();
  if (remote) {
    std::istringstream keys(curve);
    std::string server_public, worker_public, worker_secret;
    keys >> server_public >> worker_public >> worker_secret;
    driver.set(zmq::sockopt::curve_serverkey, server_public);
    driver.set(zmq::sockopt::curve_publickey, worker_public);
    driver.set(zmq::sockopt::curve_secretkey, worker_secret);
    driver.set(zmq::sockopt::heartbeat_ivl, 1000);
    driver.set(zmq::sockopt::heartbeat_timeout, 5000);
    zmq_socket_monitor(driver.handle(), "inproc://weft-worker-driver",
                       ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                           ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL);
    monitor.set(zmq::sockopt::linger, 0);
    monitor.connect("inproc://weft-worker-driver");
  }
  driver.connect(endpoint);

  driver.send(zmq::buffer(encode(Hello{index, getpid()})), zmq::send_flags::none);

  // Results and requests for pending objects, from any thread, in the order they were made; the
  // I/O thread sends them (a request made while a task ran reaches the driver before its result).
  Outbox outbox;
  if (refs != nullptr) {
    refs->set_requester([&outbox](const ObjectId& id, uint64_t owner) {
      outbox.push(encode(ObjectWait{id, static_cast<int64_t>(owner)}));
    });
  }

  DriverActors driver_actors(outbox);
  if (install_driver_actors) install_driver_actors(&driver_actors);

  // Tasks and actor messages run on threads of their own, so that a task may wait on an actor
  // that lives in this same process (through the driver) without waiting on itself.
  TaskQueue q, actor_q;
  ParkedResults parked;
  auto serve = [&outbox, &parked](TaskQueue& from) {
    Actors actors;  // only the actor thread's is ever used
    for (;;) {
      ControlMessage task;
      {
        std::unique_lock<std::mutex> lock(from.mu);
        from.cv.wait(lock, [&] { return from.stop || !from.tasks.empty(); });
        if (from.tasks.empty()) {  // stop, and nothing left to run
          for (auto& [id, a] : actors) a.destroy(a.instance);
          return;
        }
        task = std::move(from.tasks.front());
        from.tasks.pop_front();
      }
      if (auto reply = std::visit(Runner{actors}, task)) {
        if (reply->ok && reply->payload.data.size() > kStreamAbove) parked.park(*reply);
        outbox.push(encode(*reply));
      }
    }
  };
  std::thread exec(serve, std::ref(q));
  std::thread actor_thread(serve, std::ref(actor_q));

  std::unordered_map<uint64_t, IncomingArgs> args_in;  // large arguments arriving, by task seq
  bool running = true;
  while (running) {
    zmq::pollitem_t items[] = {{driver.handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, outbox.fd(), ZMQ_POLLIN, 0},
                               {remote ? monitor.handle() : nullptr, remote ? 0 : -1, ZMQ_POLLIN, 0}};
    zmq::poll(items, remote ? 3 : 2, std::chrono::milliseconds(500));
    if (remote && (items[2].revents & ZMQ_POLLIN)) {
      zmq::message_t event, where;
      if (monitor.recv(event, zmq::recv_flags::dontwait)) {
        if (event.more()) (void)monitor.recv(where, zmq::recv_flags::none);
        log()->warn("worker {}: lost its driver at {}; exiting", index, endpoint);
        running = false;
        break;
      }
    }
    if (items[1].revents & ZMQ_POLLIN) {
      for (std::string& m : outbox.take()) driver.send(zmq::buffer(m), zmq::send_flags::none);
    }
    if (items[0].revents & ZMQ_POLLIN) {
      zmq::message_t m;
      while (running && driver.recv(m, zmq::recv_flags::dontwait)) {
        auto msg = decode_control(std::string_view(static_cast<const char*>(m.data()), m.size()));
        if (!msg.ok()) {
          log()->warn("worker {}: {}", index, msg.status().message());
          continue;
        }
        if (Task* task = std::get_if<Task>(&*msg); task != nullptr && task->streamed > 0) {
          // Large arguments: pulled a window at a time; the task is queued once they are all here.
          if (task->streamed > largest_payload()) {
            driver.send(zmq::buffer(encode(PayloadPull{task->seq, 0, 0})), zmq::send_flags::none);
            outbox.push(encode(remote_error(task->seq, "its arguments (" + std::to_string(task->streamed) +
                                                           " bytes) do not fit in this machine's memory")));
            continue;
          }
          IncomingArgs& in = args_in[task->seq];
          in.task = std::move(*task);
          in.bytes.reserve(in.task.streamed);
          for (size_t k = 0; k < kPieceWindow && in.asked < in.task.streamed; ++k) ask_args(driver, in);
        } else if (PayloadPiece* piece = std::get_if<PayloadPiece>(&*msg)) {
          auto it = args_in.find(piece->seq);
          if (it == args_in.end() || piece->offset != it->second.bytes.size() || piece->data.data.empty() ||
              piece->data.data.size() > it->second.task.streamed - piece->offset) {
            log()->warn("worker {}: an unexpected piece of the arguments of task {}", index, piece->seq);
            continue;
          }
          IncomingArgs& in = it->second;
          in.bytes.append(piece->data.data);
          if (in.asked < in.task.streamed) ask_args(driver, in);
          if (in.bytes.size() < in.task.streamed) continue;
          in.task.payload.data = std::move(in.bytes);
          in.task.streamed = 0;
          std::lock_guard<std::mutex> lock(q.mu);
          q.tasks.push_back(std::move(in.task));
          q.cv.notify_one();
          args_in.erase(it);
        } else if (std::holds_alternative<Task>(*msg)) {
          std::lock_guard<std::mutex> lock(q.mu);
          q.tasks.push_back(std::move(*msg));
          q.cv.notify_one();
        } else if (std::holds_alternative<ActorCreate>(*msg) || std::holds_alternative<ActorCall>(*msg) ||
                   std::holds_alternative<ActorDrop>(*msg)) {
          std::lock_guard<std::mutex> lock(actor_q.mu);
          actor_q.tasks.push_back(std::move(*msg));
          actor_q.cv.notify_one();
        } else if (const Steal* steal = std::get_if<Steal>(&*msg)) {
          Returned back;
          {
            std::lock_guard<std::mutex> lock(q.mu);
            // Plain tasks only, newest first: actor messages must run here, in order.
            for (auto it = q.tasks.end(); it != q.tasks.begin() && back.seqs.size() < steal->count;) {
              --it;
              const Task* t = std::get_if<Task>(&*it);
              if (t == nullptr) continue;
              back.seqs.push_back(t->seq);
              it = q.tasks.erase(it);
            }
          }
          driver.send(zmq::buffer(encode(back)), zmq::send_flags::none);
        } else if (const PayloadPull* pull = std::get_if<PayloadPull>(&*msg)) {
          bool dropped = false;
          if (auto out = parked.piece(*pull, dropped)) {
            driver.send(zmq::buffer(encode(*out)), zmq::send_flags::none);
          } else if (!dropped) {
            log()->warn("worker {}: the driver asked for bytes {}+{} of result {}, which it does not have", index,
                        pull->offset, pull->length, pull->seq);
          }
        } else if (ObjectReady* ready = std::get_if<ObjectReady>(&*msg)) {
          const ObjectId id = ready->record.id();
          if (refs != nullptr) refs->resolve(std::move(ready->record));
          // After what reading it queued (ActorBorrow, ObjectWait for refs inside): the driver lets
          // go of what the answer carried only once those are in.
          outbox.push(encode(BorrowDone{id}));
        } else if (ActorFound* found = std::get_if<ActorFound>(&*msg)) {
          driver_actors.answer(found->seq, std::move(*found));
        } else if (ActorReply* reply = std::get_if<ActorReply>(&*msg)) {
          driver_actors.answer(reply->result.seq, std::move(*reply));
        } else if (std::holds_alternative<Shutdown>(*msg)) {
          running = false;
        } else {
          log()->warn("worker {}: unexpected {} message", index, name_of(*msg));
        }
      }
    }
    if (getppid() != parent) running = false;
  }
  for (TaskQueue* queue : {&q, &actor_q}) {
    std::lock_guard<std::mutex> lock(queue->mu);
    queue->stop = true;
    queue->tasks.clear();
    queue->cv.notify_all();
  }
  driver_actors.cancel_all();
  exec.join();
  actor_thread.join();
  if (install_driver_actors) install_driver_actors(nullptr);
  if (refs != nullptr) refs->set_requester(nullptr);
  for (std::string& m : outbox.take()) driver.send(zmq::buffer(m), zmq::send_flags::none);
  return 0;
}

}  // namespace weft::workers
