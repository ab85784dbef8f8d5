#include "workers/process_executor.h"

#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <zmq.hpp>

#include "core/logging.h"
#include "weft/detail/remote_task.h"
#include "weft/errors.h"
#include "weft/registry.h"
#include "workers/borrowers.h"
#include "workers/control.h"
#include "workers/dispatch_book.h"
#include "workers/peer_drivers.h"
#include "workers/transport.h"
#include "workers/worker_host.h"
#include "workers/worker_process.h"

namespace weft::workers {
namespace {

// Where a streamed result's pieces are assembled: a private mapping of its own, backed by huge
// pages where the kernel has them (a 64 MiB buffer then takes 32 page faults, not 16,384).
class PieceBuffer {
 public:
  PieceBuffer() = default;
  PieceBuffer(PieceBuffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  PieceBuffer& operator=(PieceBuffer&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    return *this;
  }
  ~PieceBuffer() {
    if (data_ != nullptr) munmap(data_, size_);
  }
  bool allocate(size_t size) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return false;
    (void)madvise(p, size, MADV_HUGEPAGE);  // a hint: without THP it is an ordinary mapping
    data_ = static_cast<char*>(p);
    size_ = size;
    return true;
  }
  char* data() const { return data_; }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
};

using detail::RemoteTask;
using detail::Runnable;

struct ActorOp {
  enum Kind { kCreate, kCall, kDrop, kRestart } kind;
  uint64_t actor = 0;
  std::string function, payload, call_name;
  Waiter waiter;         // null for kDrop and kRestart
  int max_restarts = 0;  // kCreate
};

// What rebuilding an actor takes: its factory, the factory's packed arguments, restarts left.
struct ActorSpec {
  std::string factory, args, call_name;
  int restarts_left = 0;
};

detail::RemoteOutcome failed_outcome(ErrorInfo error) {
  detail::RemoteOutcome out;
  out.error = std::make_shared<ErrorInfo>(std::move(error));
  return out;
}

ErrorInfo worker_died(const std::string& task_name, std::string message) {
  return ErrorInfo{task_name, std::move(message), "weft::WorkerDied", ErrorKind::kWorkerDied};
}
// A worker process as the dispatcher sees it; what it runs is in the DispatchBook.
struct Worker {
  uint32_t index = 0;
  pid_t pid = -1;
  // Who it is to Borrowers and the RefService: its pid, or, for a worker on another node (whose
  // pid may repeat one of this machine's), a number no process has: -(index + 2).
  pid_t borrower = -1;
  std::string identity;
  bool parked = false;    // the node has no slot for it yet (WorkerHost::granted)
  bool retiring = false;  // yielded to another driver: stops once idle, then parks
  bool told_to_stop = false;
};

}  // namespace

struct ProcessExecutor::Dispatcher {
  ProcessOptions options;
  sched::WorkStealingPool* local = nullptr;
  std::string dir, endpoint;
  std::unique_ptr<Transport> transport;  // messages to and from the workers
  std::unique_ptr<WorkerHost> host;      // starts and watches the workers; serves or knows the store
  int wake_fd = -1;

  std::mutex inbox_mu;  // guards inbox, actor_inbox and stopping
  std::vector<Runnable*> inbox;
  std::vector<ActorOp> actor_inbox;
  std::vector<std::pair<pid_t, ControlMessage>> answers;  // for workers: objects now done, actor calls
  bool stopping = false;
  std::vector<ActorOp> actor_pending;  // creates waiting for a ready worker
  std::unordered_map<uint64_t, ActorSpec> actor_specs;   // actors with restarts
  std::unordered_map<uint64_t, std::string> actor_lost;  // actors whose restart failed: why
  std::unordered_set<uint64_t> restarting;               // actors being rebuilt: their calls wait for the answer
  uint64_t next_actor = 1;

  DispatchBook book{0, 1};  // sized in start(); dispatcher thread only (but see DispatchBook::ready)
  uint64_t next_seq = 1;

  mutable std::mutex workers_mu;  // guards workers (the dispatcher writes; others read pids)
  std::vector<Worker> workers;
  std::unordered_map<std::string, uint32_t> by_identity;
  std::condition_variable hello_cv;

  // Other drivers of the node, connected as borrowers (PeerHello): watched until they die.
  struct Peer {
    std::string identity;
    int pidfd = -1;
  };
  std::unordered_map<pid_t, Peer> peers;
  std::unordered_map<std::string, pid_t> peer_by_identity;
  std::unique_ptr<Borrowers> borrowers;
  std::vector<std::pair<std::string, Hello>> early_hellos;  // from parked workers not yet granted
  uint32_t yield_owed = 0;                                  // workers the node asked back that could not go yet

  mutable std::mutex stats_mu;
  ProcessStats stats;

  std::atomic<bool> stop_requested{false};

  void count(uint64_t ProcessStats::*field, uint64_t n = 1) {
    std::lock_guard<std::mutex> lock(stats_mu);
    stats.*field += n;
  }
  void wake() {
    const uint64_t one = 1;
    (void)!write(wake_fd, &one, sizeof one);
  }

  Status spawn(uint32_t index) {
    WEFT_ASSIGN_OR_RETURN(pid_t pid, host->start(index));
    std::lock_guard<std::mutex> lock(workers_mu);
    Worker& w = workers[index];
    w = Worker{};
    w.index = index;
    w.pid = pid == 0 ? -1 : pid;
    w.parked = pid == 0;
    hello_cv.notify_all();
    return Status::ok();
  }

  // The node shares its slots: parked workers start, and busy drivers give some back.
  // Parked workers the node started (before exits are matched: a grant and its worker's exit may
  // come in one read).
  void apply_grants() {
    for (auto [index, pid] : host->granted()) {
      if (index >= workers.size() || !workers[index].parked) continue;
      std::lock_guard<std::mutex> lock(workers_mu);
      workers[index].pid = pid;
      workers[index].parked = false;  // ready at its hello
    }
    for (auto& [identity, hello] : std::exchange(early_hellos, {})) on_message(identity, encode(hello));
  }

  void share_slots() {
    apply_grants();
    yield_owed += host->take_yield();  // kept until a worker can go (none may be ready yet)
    for (; yield_owed > 0; --yield_owed) {
      // The idlest worker hosting no actor (an actor's state lives in its process).
      std::optional<uint32_t> pick;
      for (const Worker& w : workers) {
        // Only a worker on this node frees one of its slots (those elsewhere are leased).
        if (!book.ready(w.index) || w.retiring || book.remote(w.index) || !book.actors_on(w.index).empty()) continue;
        if (!pick || book.in_flight(w.index) < book.in_flight(*pick)) pick = w.index;
      }
      if (!pick) break;
      log()->info("driver: worker {} retires: the node's slots are shared with another driver", *pick);
      workers[*pick].retiring = true;
      std::lock_guard<std::mutex> lock(workers_mu);
      book.set_ready(*pick, false);  // nothing new goes to it
    }
    for (Worker& w : workers) {
      if (w.retiring && !w.told_to_stop && book.in_flight(w.index) == 0) {
        send(w, encode(Shutdown{}));
        w.told_to_stop = true;
      }
    }
  }

  // A retired worker is gone: its slot went to another driver; ask for it again (it parks).
  void on_retired(Worker& w) {
    count(&ProcessStats::retired);
    by_identity.erase(w.identity);
    borrowers->gone(w.borrower);
    if (Status s = spawn(w.index); !s.is_ok()) log()->warn("driver: worker {}: {}", w.index, s.message());
  }

  void complete(Item& it, TaskResult& r) { complete(it, r, r.payload.data); }

  void complete(Item& it, TaskResult& r, std::string_view payload) {
    count(&ProcessStats::completed);
    if (it.task == nullptr && it.waiter == nullptr) {  // an actor's restart: nobody waits for it
      restarting.erase(it.actor);
      if (!r.ok) {
        const ErrorInfo e = from_failure(it.call_name, r.failure);
        log()->warn("driver: actor {} could not be restarted: {}", it.actor, e.message);
        book.forget_actor(it.actor);
        actor_specs.erase(it.actor);
        actor_lost[it.actor] = "its worker process died and rebuilding it failed: " + e.message;
      }
      return;
    }
    if (it.waiter) {
      detail::RemoteOutcome out =
          r.ok ? detail::RemoteOutcome{} : failed_outcome(from_failure(it.call_name, r.failure));
      out.ok = r.ok;
      out.payload = payload.data() == r.payload.data.data() ? std::move(r.payload.data) : std::string(payload);
      out.actor = it.actor;
      it.waiter->set_value(std::move(out));
      return;
    }
    if (r.ok) {
      it.task->finish_remote(payload);
    } else {
      it.task->fail_remote(std::make_shared<ErrorInfo>(from_failure(it.task->task_name(), r.failure)));
    }
    release_carried(it);
  }

  // The message that carried `it`'s refs was answered, or will never be.
  void release_carried(Item& it) {
    if (options.refs != nullptr && !it.carried.empty()) options.refs->release(it.carried);
    it.carried = {};
  }

  // Queues a message for worker or peer driver `pid` from any thread; the dispatcher sends it.
  void answer(pid_t pid, ControlMessage m) {
    {
      std::lock_guard<std::mutex> lock(inbox_mu);
      answers.emplace_back(pid, std::move(m));
    }
    wake();
  }

  void send_answers() {
    std::vector<std::pair<pid_t, ControlMessage>> batch;
    {
      std::lock_guard<std::mutex> lock(inbox_mu);
      batch.swap(answers);
    }
    for (auto& [pid, m] : batch) {
      const std::string* to = nullptr;
      for (Worker& w : workers) {
        if (w.borrower == pid && !w.identity.empty()) to = &w.identity;
      }
      if (auto p = peers.find(pid); to == nullptr && p != peers.end()) to = &p->second.identity;
      if (to != nullptr) {
        transport->send(*to, encode(m));
      } else {
        borrowers->undelivered(pid, m);
      }
    }
  }

  void on_message(const std::string& identity, std::string_view bytes) {
    auto msg = decode_control(bytes);
    if (!msg.ok()) {
      count(&ProcessStats::rejected_messages);
      log()->warn("driver: {}", msg.status().message());
      return;
    }
    if (const Hello* hello = std::get_if<Hello>(&*msg)) {
      if (hello->index >= workers.size()) {
        count(&ProcessStats::rejected_messages);
        log()->warn("driver: hello from unknown worker index {}", hello->index);
        return;
      }
      std::lock_guard<std::mutex> lock(workers_mu);
      Worker& w = workers[hello->index];
      if (w.parked) {  // started by the node, whose word of it comes after this (share_slots)
        early_hellos.emplace_back(identity, *hello);
        return;
      }
      if (w.pid != hello->pid) {
        count(&ProcessStats::rejected_messages);
        log()->warn("driver: hello for worker {} from pid {}, expected {}", hello->index, hello->pid, w.pid);
        return;
      }
      w.identity = identity;
      book.set_ready(hello->index, true);
      book.set_remote(hello->index, transport->remote(identity));
      w.borrower = transport->remote(identity) ? -static_cast<pid_t>(hello->index) - 2 : w.pid;
      by_identity[identity] = hello->index;
      hello_cv.notify_all();
      return;
    }
    if (const PeerHello* hello = std::get_if<PeerHello>(&*msg)) return on_peer_hello(identity, hello->pid);
    auto it = by_identity.find(identity);
    if (it == by_identity.end()) {
      auto peer = peer_by_identity.find(identity);
      if (peer != peer_by_identity.end() && borrowers->handle(peer->second, *msg)) return;
      count(&ProcessStats::rejected_messages);
      log()->warn("driver: a {} message from a peer that never said hello", name_of(*msg));
      return;
    }
    Worker& w = workers[it->second];
    if (borrowers->handle(w.borrower, *msg)) return;
    if (TaskResult* head = std::get_if<TaskResult>(&*msg); head != nullptr && head->ok && head->streamed > 0) {
      start_pulling(w, std::move(*head));
    } else if (const PayloadPiece* piece = std::get_if<PayloadPiece>(&*msg)) {
      on_piece(w, *piece);
    } else if (const PayloadPull* pull = std::get_if<PayloadPull>(&*msg)) {
      on_pull(w, *pull);
    } else if (TaskResult* result = std::get_if<TaskResult>(&*msg)) {
      std::optional<Item> item = book.finish(w.index, result->seq);
      if (!item) {
        count(&ProcessStats::rejected_messages);
        log()->warn("driver: result for unknown task {} from worker {}", result->seq, w.index);
        return;
      }
      complete(*item, *result);
    } else if (const Returned* returned = std::get_if<Returned>(&*msg)) {
      count(&ProcessStats::stolen, book.returned(w.index, returned->seqs));
    } else {
      count(&ProcessStats::rejected_messages);
      log()->warn("driver: unexpected {} message from worker {}", name_of(*msg), w.index);
    }
  }

  void on_peer_hello(const std::string& identity, int64_t pid) {
    if (auto old = peers.find(static_cast<pid_t>(pid)); old != peers.end() && old->second.identity != identity) {
      on_peer_death(static_cast<pid_t>(pid));  // the same process connects anew (its runtime restarted)
    }
    const int pidfd = pid > 0 ? static_cast<int>(syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0)) : -1;
    if (pidfd < 0 || peers.contains(static_cast<pid_t>(pid)) || by_identity.contains(identity)) {
      if (pidfd >= 0) close(pidfd);
      count(&ProcessStats::rejected_messages);
      log()->warn("driver: a peer hello from pid {} refused (no such process, or said twice)", pid);
      return;
    }
    peers[static_cast<pid_t>(pid)] = Peer{identity, pidfd};
    peer_by_identity[identity] = static_cast<pid_t>(pid);
    log()->info("driver: peer driver {} connected", pid);
  }

  void on_peer_death(pid_t pid) {
    auto it = peers.find(pid);
    if (it == peers.end()) return;
    log()->info("driver: peer driver {} is gone", pid);
    close(it->second.pidfd);
    peer_by_identity.erase(it->second.identity);
    peers.erase(it);
    borrowers->gone(pid);
  }

  void on_death(Worker& w, const std::string& how) {
    log()->warn("driver: worker {} (pid {}) {}", w.index, w.pid, how);
    count(&ProcessStats::worker_deaths);
    std::vector<Item> lost;
    const std::vector<uint64_t> actors = book.actors_on(w.index);
    {
      std::lock_guard<std::mutex> lock(workers_mu);
      lost = book.lost(w.index);  // and its actors' homes
    }
    by_identity.erase(w.identity);
    borrowers->gone(w.borrower);
    std::erase_if(incoming, [&w](const auto& kv) { return kv.second.worker == w.index; });  // retried whole
    std::erase_if(outgoing, [&w](const auto& kv) { return kv.second.worker == w.index; });
    const uint32_t index = w.index;
    const pid_t pid = w.pid;
    for (Item& item : lost) {
      if (item.task == nullptr && item.waiter == nullptr) continue;  // a restart: the actor is in `actors`
      if (item.waiter) {
        item.waiter->set_value(failed_outcome(
            worker_died(item.call_name, fmt::format("the worker process hosting this actor (pid {}) {}", pid, how))));
        continue;
      }
      if (item.task->retry_after_worker_death()) {
        count(&ProcessStats::retried);
        book.retry(std::move(item));
      } else {
        item.task->fail_remote(std::make_shared<ErrorInfo>(worker_died(
            item.task->task_name(), fmt::format("its worker process (pid {}) {} while running it", pid, how))));
        release_carried(item);
      }
    }
    bool stop;
    {
      std::lock_guard<std::mutex> lock(inbox_mu);
      stop = stopping;
    }
    // Actors with restarts left are rebuilt elsewhere before any later call reaches them.
    for (uint64_t actor : actors) {
      auto spec = actor_specs.find(actor);
      if (stop || spec == actor_specs.end() || spec->second.restarts_left == 0) {
        if (spec != actor_specs.end()) actor_specs.erase(spec);
        restarting.erase(actor);
        continue;
      }
      restarting.insert(actor);
      --spec->second.restarts_left;
      count(&ProcessStats::actor_restarts);
      log()->info("driver: restarting actor {} ({} restarts left)", actor, spec->second.restarts_left);
      actor_pending.push_back(
          {ActorOp::kRestart, actor, spec->second.factory, spec->second.args, spec->second.call_name, nullptr});
    }
    if (stop) {
      std::lock_guard<std::mutex> lock(workers_mu);
      workers[index] = Worker{};
      workers[index].index = index;
      return;
    }
    Status s = spawn(index);
    if (!s.is_ok()) log()->error("driver: cannot restart worker {}: {}", index, s.message());
  }

  void take_inbox() {
    std::vector<Runnable*> batch;
    std::vector<ActorOp> ops;
    bool stop;
    {
      std::lock_guard<std::mutex> lock(inbox_mu);
      batch.swap(inbox);
      ops.swap(actor_inbox);
      stop = stopping;
    }
    for (ActorOp& op : ops) actor_pending.push_back(std::move(op));
    run_actor_ops(stop);
    for (Runnable* r : batch) {
      if (stop) {
        r->cancel();
        continue;
      }
      RemoteTask* t = r->remote();
      const RemoteEntry* e = t != nullptr ? t->remote_entry() : nullptr;
      if (e == nullptr) {
        local->submit(r);
        continue;
      }
      book.enqueue(Item{.slo = r->slo_index(), .deadline = r->deadline_ns(), .runnable = r, .task = t, .entry = e});
    }
  }

  // Sends actor messages: creates to the worker with the fewest actors, calls and drops to the
  // actor's worker.
  void run_actor_ops(bool stop) {
    std::vector<ActorOp> later;
    for (ActorOp& op : actor_pending) {
      if (stop) {
        if (op.waiter) op.waiter->set_value(failed_outcome(*detail::cancelled_error(op.call_name)));
        continue;
      }
      const bool creates = op.kind == ActorOp::kCreate || op.kind == ActorOp::kRestart;
      if (!creates && restarting.contains(op.actor)) {
        later.push_back(std::move(op));
        continue;
      }
      std::optional<uint32_t> home;
      if (creates) {
        home = book.place_actor(op.kind == ActorOp::kCreate ? next_actor : op.actor);
        if (!home) {  // every worker is (re)starting: try again on the next round
          later.push_back(std::move(op));
          continue;
        }
        if (op.kind == ActorOp::kCreate) {
          op.actor = next_actor++;
          if (op.max_restarts > 0) actor_specs[op.actor] = {op.function, op.payload, op.call_name, op.max_restarts};
        }
      } else {
        home = book.home_of(op.actor);
        if (!home) {
          if (op.waiter) {
            auto lost = actor_lost.find(op.actor);
            op.waiter->set_value(failed_outcome(worker_died(
                op.call_name, lost != actor_lost.end() ? lost->second : "the worker process hosting this actor died")));
          }
          if (op.kind == ActorOp::kDrop) actor_lost.erase(op.actor);
          continue;
        }
        if (op.kind == ActorOp::kDrop) {
          book.forget_actor(op.actor);
          actor_specs.erase(op.actor);
        }
      }
      Worker* target = &workers[*home];
      const uint64_t seq = next_seq++;
      switch (op.kind) {
        case ActorOp::kCreate:
        case ActorOp::kRestart:
          send(*target, encode(ActorCreate{seq, op.actor, op.function, {std::move(op.payload)}}));
          break;
        case ActorOp::kCall:
          send(*target, encode(ActorCall{seq, op.actor, op.function, {std::move(op.payload)}}));
          break;
        case ActorOp::kDrop:
          send(*target, encode(ActorDrop{op.actor}));
          break;
      }
      if (op.waiter || op.kind == ActorOp::kRestart) {
        book.sent(*home, seq, Item{.waiter = op.waiter, .call_name = op.call_name, .actor = op.actor});
      }
    }
    actor_pending = std::move(later);
  }

  // ---- results streamed in pieces (control.h) ----
  struct Incoming {
    uint32_t worker = 0;
    TaskResult head;                   // the TaskResult that announced it
    PieceBuffer bytes;                 // the packed result, as its pieces arrive
    uint64_t asked = 0, received = 0;  // bytes asked for and received so far
  };
  std::unordered_map<uint64_t, Incoming> incoming;  // by seq

  // Large task arguments, until their worker has pulled the last piece.
  struct Outgoing {
    uint32_t worker = 0;
    std::string bytes;
  };
  std::unordered_map<uint64_t, Outgoing> outgoing;  // by task seq

  void on_pull(const Worker& w, const PayloadPull& p) {
    auto it = outgoing.find(p.seq);
    if (it == outgoing.end() || it->second.worker != w.index) {
      count(&ProcessStats::rejected_messages);
      log()->warn("driver: worker {} asked for the arguments of task {}, which it was not sent", w.index, p.seq);
      return;
    }
    const std::string& bytes = it->second.bytes;
    if (p.length == 0) {  // it will not take them
      outgoing.erase(it);
      return;
    }
    if (p.offset > bytes.size() || p.length > bytes.size() - p.offset || p.length > kPiece) {
      count(&ProcessStats::rejected_messages);
      log()->warn("driver: worker {} asked for bytes {}+{} of {}-byte arguments", w.index, p.offset, p.length,
                  bytes.size());
      return;
    }
    send(w, encode(PayloadPiece{p.seq, p.offset, {bytes.substr(p.offset, p.length)}}));
    if (p.offset + p.length == bytes.size()) outgoing.erase(it);
  }

  void ask_next(const Worker& w, Incoming& in) {
    const uint64_t size = in.head.streamed;
    const uint64_t length = std::min<uint64_t>(kPiece, size - in.asked);
    send(w, encode(PayloadPull{in.head.seq, in.asked, length}));
    in.asked += length;
  }

  // Ends a streamed result that cannot be had: the worker lets go of it (a pull of no bytes), and
  // the task fails with `why`.
  void fail_stream(const Worker& w, uint64_t seq, const std::string& why) {
    incoming.erase(seq);
    send(w, encode(PayloadPull{seq, 0, 0}));
    std::optional<Item> item = book.finish(w.index, seq);
    TaskResult failed{seq, false, {}, Failure{static_cast<uint8_t>(ErrorKind::kRemote), "weft::RemoteError", why}};
    if (item) complete(*item, failed);
  }

  void start_pulling(const Worker& w, TaskResult head) {
    if (!book.has(w.index, head.seq) || incoming.contains(head.seq)) {
      count(&ProcessStats::rejected_messages);
      log()->warn("driver: a streamed result for unknown task {} from worker {}", head.seq, w.index);
      return;
    }
    const uint64_t seq = head.seq, size = head.streamed;
    Incoming& in = incoming[seq];
    in.worker = w.index;
    in.head = std::move(head);
    if (size > largest_payload() || !in.bytes.allocate(size)) {
      return fail_stream(w, seq, fmt::format("its result ({} bytes) does not fit in the driver's memory", size));
    }
    for (size_t k = 0; k < kPieceWindow && in.asked < size; ++k) ask_next(w, in);
  }

  void on_piece(const Worker& w, const PayloadPiece& p) {
    auto it = incoming.find(p.seq);
    if (it == incoming.end() || it->second.worker != w.index) {
      count(&ProcessStats::rejected_messages);
      log()->warn("driver: a piece of result {} from worker {}, which is not streaming it", p.seq, w.index);
      return;
    }
    Incoming& in = it->second;
    if (p.offset != in.received || p.data.data.empty() || p.data.data.size() > in.head.streamed - p.offset) {
      count(&ProcessStats::rejected_messages);
      return fail_stream(w, p.seq,
                         fmt::format("its worker sent bytes {}+{} of its {}-byte result where bytes from {} were due",
                                     p.offset, p.data.data.size(), in.head.streamed, in.received));
    }
    std::memcpy(in.bytes.data() + p.offset, p.data.data.data(), p.data.data.size());
    in.received += p.data.data.size();
    if (in.asked < in.head.streamed) ask_next(w, in);
    if (in.received < in.head.streamed) return;
    Incoming done = std::move(in);
    incoming.erase(it);
    std::optional<Item> item = book.finish(w.index, p.seq);
    if (item) complete(*item, done.head, std::string_view(done.bytes.data(), done.head.streamed));
  }

  void dispatch() {
    std::vector<Item> held;  // tasks for a worker on this node, none of which has room now
    while (auto next = book.next()) {
      auto& [index, item] = *next;
      // A task given back by a worker is packed again: what its old message carried is let go
      // once the new one holds it.
      detail::Carried before = std::move(item.carried);
      if (options.refs != nullptr) options.refs->begin_capture();
      auto args = item.task->pack_arguments();
      if (options.refs != nullptr) item.carried = options.refs->end_capture();
      if (options.refs != nullptr && !before.empty()) options.refs->release(before);
      if (!args.ok()) {
        item.task->fail_remote(std::make_shared<ErrorInfo>(
            ErrorInfo{item.task->task_name(), args.status().message(), "weft::RemoteError", ErrorKind::kRemote}));
        release_carried(item);
        continue;
      }
      // Data locality: a task whose message names objects in this node's store (or pending ones,
      // whose answer may be one) runs on this node; objects do not move between nodes.
      uint32_t to = index;
      if (book.remote(index) && (!item.carried.holds.empty() || !item.carried.refs.empty())) {
        std::optional<uint32_t> here = book.roomiest_local();
        if (!here && !book.any_local()) {
          // No worker of this driver runs on its node: the driver's own threads run it, reading
          // the store in place.
          release_carried(item);
          local->submit(item.runnable);
          continue;
        }
        if (!here) {  // packed again when a worker here has room; the tasks behind it go on
          held.push_back(std::move(item));
          continue;
        }
        to = *here;
      }
      const uint64_t seq = next_seq++;
      if (args->size() > kStreamAbove) {  // the worker pulls them in pieces
        const uint64_t size = args->size();
        outgoing[seq] = Outgoing{to, std::move(*args)};
        send(workers[to], encode(Task{seq, item.entry->name, {}, size}));
      } else {
        send(workers[to], encode(Task{seq, item.entry->name, {std::move(*args)}}));
      }
      book.sent(to, seq, std::move(item));
      count(&ProcessStats::dispatched);
    }
    for (Item& item : held) book.retry(std::move(item));
  }

  // An idle worker while others have tasks waiting behind their running one: ask the busiest
  // for half of what it has not started.
  void steal() {
    for (auto [victim, count] : book.steals()) send(workers[victim], encode(Steal{count}));
  }

  void send(const Worker& w, const std::string& bytes) { transport->send(w.identity, bytes); }

  void run() {
    for (;;) {
      std::vector<zmq::pollitem_t> items = {{nullptr, wake_fd, ZMQ_POLLIN, 0}};
      transport->add_poll_items(items);
      const size_t host_items = items.size();
      host->add_poll_items(items);
      const size_t peer_items = items.size();
      std::vector<pid_t> peer_pids;
      for (auto& [pid, p] : peers) {
        items.push_back({nullptr, p.pidfd, ZMQ_POLLIN, 0});
        peer_pids.push_back(pid);
      }
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(100));
      if (items[0].revents & ZMQ_POLLIN) {
        uint64_t v;
        (void)!read(wake_fd, &v, sizeof v);
      }
      if (stop_requested.load()) {
        std::lock_guard<std::mutex> lock(inbox_mu);
        stopping = true;
      }
      take_inbox();
      while (auto m = transport->receive()) on_message(m->first, m->second);
      for (size_t k = 0; k < peer_pids.size(); ++k) {
        if (items[peer_items + k].revents & ZMQ_POLLIN) on_peer_death(peer_pids[k]);
      }
      const std::vector<WorkerExit> exits = host->exits(items.data() + host_items);
      apply_grants();
      for (const WorkerExit& e : exits) {
        if (e.index >= workers.size() || workers[e.index].pid != e.pid) continue;
        Worker& w = workers[e.index];
        if (w.retiring && book.in_flight(w.index) == 0 && !stopping) {
          on_retired(w);
        } else {
          on_death(w, e.how);
        }
      }
      share_slots();
      send_answers();
      if (stopping) {
        while (book.has_queued()) {
          Item item = book.pop_queued();
          item.runnable->cancel();
          release_carried(item);
        }
        take_inbox();
        if (book.in_flight_total() == 0) break;
        continue;
      }
      dispatch();
      steal();
    }
    stop_workers();
  }

  void stop_workers() {
    for (auto& [pid, p] : peers) close(p.pidfd);
    peers.clear();
    peer_by_identity.clear();
    const std::string bye = encode(Shutdown{});
    for (Worker& w : workers) {
      if (book.ready(w.index)) send(w, bye);  // those still starting are killed by the host
    }
    host->stop(std::chrono::seconds(3));
    std::lock_guard<std::mutex> lock(workers_mu);
    for (Worker& w : workers) w.pid = -1;
  }
};

ProcessExecutor::ProcessExecutor(const ProcessOptions& options)
    : local_(std::make_unique<sched::WorkStealingPool>(sched::PoolOptions{std::max(1, options.local_threads), "weft-local"})),
      d_(std::make_unique<Dispatcher>()) {
  d_->options = options;
  d_->local = local_.get();
}

Result<std::unique_ptr<ProcessExecutor>> ProcessExecutor::start(const ProcessOptions& options) {
  if (options.processes < (options.node_address.empty() ? 1 : 0)) {
    return Status::invalid_argument("processes must be >= 1 (>= 0 with a node: 0 takes the node's default)");
  }
  std::string tmpl = (std::filesystem::temp_directory_path() / "weft-driver-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) return Status::io_error("cannot make a directory for the driver's socket");
  const std::string dir = tmpl;
  auto remove_dir = [&] {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  };
  auto transport = bind_zmq_transport("ipc://" + dir + "/control.ipc");
  if (!transport.ok()) {
    remove_dir();
    return transport.status();
  }
  auto host = options.node_address.empty()
                  ? make_private_host(dir, (*transport)->endpoint(), options.store_bytes, options.processes)
                  : attach_to_node(options.node_address, (*transport)->endpoint());
  if (!host.ok()) {
    remove_dir();
    return host.status();
  }
  if (const std::string cluster_host = (*host)->cluster_host(); !cluster_host.empty()) {
    // In a cluster, workers the node has no slot for may start on other nodes and reach us there.
    auto reach = (*transport)->expose(cluster_host);
    Status offered = reach.ok() ? (*host)->offer_reach(*reach) : reach.status();
    if (!offered.is_ok()) {
      log()->warn("driver: workers stay on this node: {}", offered.message());
    } else {
      log()->info("driver: workers on other nodes reach this driver at {}", reach->endpoint);
    }
  }
  std::unique_ptr<PeerDrivers> peers;
  if (!options.node_address.empty()) {
    sched::RefService* refs = options.refs;
    auto p = PeerDrivers::start(options.node_address, [refs](detail::RefRecord r) {
      if (refs != nullptr) refs->resolve(std::move(r));
    });
    if (!p.ok()) {
      remove_dir();
      return p.status();
    }
    peers = std::move(*p);
  }
  auto ex = start_with(options, std::move(*transport), std::move(*host), std::move(peers));
  if (!ex.ok()) {
    remove_dir();
    return ex.status();
  }
  (*ex)->d_->dir = dir;
  return ex;
}

Result<std::unique_ptr<ProcessExecutor>> ProcessExecutor::start_with(const ProcessOptions& options,
                                                                     std::unique_ptr<Transport> transport,
                                                                     std::unique_ptr<WorkerHost> host,
                                                                     std::unique_ptr<PeerDrivers> peers) {
  if (options.pipeline_depth < 1) return Status::invalid_argument("pipeline_depth must be >= 1");
  std::unique_ptr<ProcessExecutor> ex(new ProcessExecutor(options));
  Dispatcher& d = *ex->d_;
  ex->peers_ = std::move(peers);
  d.borrowers = std::make_unique<Borrowers>(options.refs, options.actors, ex->peers_.get(),
                                            [&d](pid_t pid, ControlMessage m) { d.answer(pid, std::move(m)); });
  if (ex->peers_ != nullptr && options.refs != nullptr) {
    PeerDrivers* peers_of = ex->peers_.get();
    options.refs->set_requester([peers_of](const ObjectId& id, uint64_t owner) { peers_of->request(id, owner); });
  }
  d.transport = std::move(transport);
  d.host = std::move(host);
  d.endpoint = d.transport->endpoint();
  if (d.options.processes == 0) d.options.processes = d.host->default_workers();
  if (d.options.processes < 1) return Status::invalid_argument("processes must be >= 1");
  d.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  d.workers.resize(static_cast<size_t>(d.options.processes));
  d.book = DispatchBook(d.workers.size(), options.pipeline_depth);
  for (int i = 0; i < d.options.processes; ++i) {
    if (Status s = d.spawn(static_cast<uint32_t>(i)); !s.is_ok()) {
      d.host->stop(std::chrono::milliseconds(0));
      return s;
    }
  }
  ex->thread_ = std::thread([&d] { d.run(); });
  std::unique_lock<std::mutex> lock(d.workers_mu);
  const bool all = d.hello_cv.wait_for(lock, std::chrono::seconds(30), [&] {
    for (uint32_t i = 0; i < d.book.size(); ++i) {
      if (!d.book.ready(i) && !d.workers[i].parked) return false;  // parked ones start later
    }
    return true;
  });
  lock.unlock();
  if (!all) {
    ex->shutdown();
    return Status::unavailable(
        "worker processes did not connect within 30 s (the program must call weft::init, or "
        "weft::serve_if_worker, before anything else in main)");
  }
  log()->info("driver: {} worker processes, {} tasks in flight each{}", d.options.processes, options.pipeline_depth,
              options.node_address.empty() ? "" : " (node " + options.node_address + ")");
  return ex;
}

ProcessExecutor::~ProcessExecutor() { shutdown(); }

detail::RemoteOutcome ProcessExecutor::create_actor(const std::string& factory, std::string args,
                                                    const std::string& call_name, int max_restarts) {
  auto waiter = std::make_shared<std::promise<detail::RemoteOutcome>>();
  auto future = waiter->get_future();
  {
    std::lock_guard<std::mutex> lock(d_->inbox_mu);
    d_->actor_inbox.push_back({ActorOp::kCreate, 0, factory, std::move(args), call_name, waiter, max_restarts});
  }
  d_->wake();
  return future.get();
}

detail::RemoteOutcome ProcessExecutor::call_actor(uint64_t actor, const std::string& method, std::string args,
                                                  const std::string& call_name) {
  if (peers_ != nullptr && PeerDrivers::is_alias(actor)) {
    return peers_->call_actor(actor, method, std::move(args), call_name);
  }
  auto waiter = std::make_shared<std::promise<detail::RemoteOutcome>>();
  auto future = waiter->get_future();
  {
    std::lock_guard<std::mutex> lock(d_->inbox_mu);
    d_->actor_inbox.push_back({ActorOp::kCall, actor, method, std::move(args), call_name, waiter});
  }
  d_->wake();
  return future.get();
}

void ProcessExecutor::drop_actor(uint64_t actor) {
  if (peers_ != nullptr && PeerDrivers::is_alias(actor)) return peers_->drop(actor);
  {
    std::lock_guard<std::mutex> lock(d_->inbox_mu);
    d_->actor_inbox.push_back({ActorOp::kDrop, actor, "", "", "", nullptr});
  }
  d_->wake();
}

void ProcessExecutor::borrow_actor(uint64_t actor) {
  if (peers_ != nullptr && PeerDrivers::is_alias(actor)) peers_->borrow(actor);
}

Result<uint64_t> ProcessExecutor::find_named(const std::string& name, const std::string& class_name) {
  if (peers_ == nullptr) return Status::not_found("no actor is named '" + name + "'");
  return peers_->find_named(name, class_name);
}

Status ProcessExecutor::publish_name(const std::string& name, const std::string& class_name) {
  return peers_ != nullptr ? peers_->publish(name, class_name) : Status::ok();
}

void ProcessExecutor::submit(detail::Runnable* r) {
  {
    std::lock_guard<std::mutex> lock(d_->inbox_mu);
    d_->inbox.push_back(r);
  }
  d_->wake();
}

bool ProcessExecutor::help_until(const std::function<bool()>& done, const std::function<bool()>& prepare_sleep,
                                 int64_t deadline_ns) {
  return local_->help_until(done, prepare_sleep, deadline_ns);
}

void ProcessExecutor::wake_sleepers() { local_->wake_sleepers(); }

void ProcessExecutor::shutdown() {
  if (shut_down_.exchange(true)) return;
  d_->stop_requested.store(true);
  d_->wake();
  if (thread_.joinable()) thread_.join();
  if (peers_ != nullptr && d_->options.refs != nullptr) d_->options.refs->set_requester(nullptr);
  if (peers_ != nullptr) peers_->cancel();  // calls still waiting on other drivers fail now
  local_->shutdown();
  peers_.reset();
  d_->host.reset();
  std::error_code ec;
  if (!d_->dir.empty()) std::filesystem::remove_all(d_->dir, ec);
  if (d_->wake_fd >= 0) {
    close(d_->wake_fd);
    d_->wake_fd = -1;
  }
}

void ProcessExecutor::cancel_pending() {
  for (;;) {
    std::vector<detail::Runnable*> batch;
    {
      std::lock_guard<std::mutex> lock(d_->inbox_mu);
      batch.swap(d_->inbox);
    }
    for (detail::Runnable* r : batch) r->cancel();
    local_->cancel_pending();
    std::lock_guard<std::mutex> lock(d_->inbox_mu);
    if (d_->inbox.empty()) return;
  }
}

bool ProcessExecutor::in_worker_thread() const { return local_->in_worker_thread(); }
int ProcessExecutor::num_workers() const { return d_->options.processes; }
std::string ProcessExecutor::endpoint() const { return d_->endpoint; }
std::string ProcessExecutor::store_socket() const { return d_->host ? d_->host->store_socket() : ""; }

std::vector<pid_t> ProcessExecutor::worker_pids() const {
  std::lock_guard<std::mutex> lock(d_->workers_mu);
  std::vector<pid_t> out;
  for (const Worker& w : d_->workers) out.push_back(w.pid);
  return out;
}

ProcessStats ProcessExecutor::stats() const {
  std::lock_guard<std::mutex> lock(d_->stats_mu);
  ProcessStats s = d_->stats;
  if (d_->borrowers) s.object_waits = d_->borrowers->object_waits();
  return s;
}

}  // namespace weft::workers
