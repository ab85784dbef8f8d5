// The driver's bookkeeping of work in multi-process mode, with no I/O: which tasks wait (by SLO
// class, then deadline, then submission order), which worker runs what (up to pipeline_depth
// each), whom to ask for work back when a worker idles, and where each actor lives. The
// dispatcher (process_executor.cc) asks it what to send and tells it what came back; the unit
// tests drive it directly (dispatch_book_test.cc), with no processes or sockets.
//
// Not thread-safe: the dispatcher thread owns it. The one exception is ready(): set_ready and a
// reader of ready() both hold the dispatcher's workers mutex (start() waits for every hello).
#pragma once

#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "weft/detail/hooks.h"
#include "weft/detail/remote_task.h"
#include "weft/detail/runnable.h"
#include "weft/registry.h"

namespace weft::workers {

using Waiter = std::shared_ptr<std::promise<detail::RemoteOutcome>>;

// One unit of work for a worker: a task (runnable, task and entry set) or an actor message
// (waiter set: who waits for the answer).
struct Item {
  int slo = 0;
  int64_t deadline = 0;
  uint64_t order = 0;  // set by enqueue
  detail::Runnable* runnable = nullptr;
  detail::RemoteTask* task = nullptr;
  const RemoteEntry* entry = nullptr;
  Waiter waiter;
  std::string call_name;  // actor messages: names errors
  uint64_t actor = 0;
  detail::Carried carried;  // what its message keeps alive for its reader (RefService)
};

class DispatchBook {
 public:
  DispatchBook(size_t workers, int pipeline_depth);

  size_t size() const { return workers_.size(); }
  // A worker is ready from its hello until its death.
  void set_ready(uint32_t worker, bool ready);
  bool ready(uint32_t worker) const { return workers_[worker].ready; }
  // A worker on another node than the driver's: it reads no object of the driver's store.
  void set_remote(uint32_t worker, bool remote) { workers_[worker].remote = remote; }
  bool remote(uint32_t worker) const { return workers_[worker].remote; }
  // The ready worker on the driver's node with the fewest in flight, below pipeline_depth.
  std::optional<uint32_t> roomiest_local() const;
  // Whether any worker on the driver's node is ready.
  bool any_local() const;
  size_t in_flight(uint32_t worker) const { return workers_[worker].in_flight.size(); }
  size_t in_flight_total() const;

  // ---- tasks ----
  void enqueue(Item item);
  bool has_queued() const { return !queue_.empty(); }
  // Removes and returns the most urgent queued task (for cancelling at shutdown).
  Item pop_queued();
  // The next task to send and where: the most urgent queued task, to the ready worker with the
  // fewest in flight among those below pipeline_depth. Removed from the queue; nullopt when no
  // task waits or no worker has room.
  std::optional<std::pair<uint32_t, Item>> next();
  // `item` went to `worker` as message `seq` (a task or an actor message awaiting its answer).
  void sent(uint32_t worker, uint64_t seq, Item item);
  // Whether message `seq` to `worker` awaits its answer.
  bool has(uint32_t worker, uint64_t seq) const { return workers_[worker].in_flight.contains(seq); }
  // The answer to message `seq` came from `worker`: its item, or nullopt for an unknown seq.
  std::optional<Item> finish(uint32_t worker, uint64_t seq);
  // With nothing queued, each idle ready worker asks the busiest worker (two or more in flight
  // it could take, no steal already pending) for half of those: (victim, how many). Marks them
  // pending. Across nodes, only tasks whose messages name no object of the driver's store count
  // (the others must run on its node and would come straight back).
  std::vector<std::pair<uint32_t, uint32_t>> steals();
  // A task to run again (its worker died): queued in its original place.
  void retry(Item item) { queue_.push(std::move(item)); }
  // The tasks `worker` gave back (of those asked for): queued again. Returns how many.
  size_t returned(uint32_t worker, const std::vector<uint64_t>& seqs);
  // `worker` died: no longer ready, its actors forgotten; returns what it had in flight.
  std::vector<Item> lost(uint32_t worker);

  // ---- actors ----
  // A home for a new actor: the ready worker hosting the fewest actors (ties: fewest in flight).
  // Nullopt when no worker is ready.
  std::optional<uint32_t> place_actor(uint64_t actor);
  // The actor's worker while that worker lives; nullopt once it died (or the actor is unknown).
  std::optional<uint32_t> home_of(uint64_t actor) const;
  void forget_actor(uint64_t actor);
  // The actors living on `worker`.
  std::vector<uint64_t> actors_on(uint32_t worker) const;

 private:
  struct Worker {
    bool ready = false;
    bool remote = false;
    bool steal_pending = false;
    std::unordered_map<uint64_t, Item> in_flight;
  };
  // std::priority_queue keeps the greatest on top: "less" means less urgent.
  struct LessUrgent {
    bool operator()(const Item& a, const Item& b) const;
  };

  int pipeline_depth_;
  std::vector<Worker> workers_;
  std::priority_queue<Item, std::vector<Item>, LessUrgent> queue_;
  uint64_t next_order_ = 0;
  std::unordered_map<uint64_t, uint32_t> actor_home_;
};

}  // namespace weft::workers
