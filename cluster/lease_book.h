// The head's book of worker leases (protocol.h): a node with no free slot asks for a worker of
// one of its drivers elsewhere; the book places it on the live node with the most free slots,
// follows it through the heartbeats of the node running it and of the node asking, and says whom
// to tell what. No I/O: the head feeds it messages and sends what it returns, and the unit tests
// drive it alone (lease_book_test.cc).
//
// Like the rest of the head it keeps state, not events: a lease's owner lists the leases it
// wants in every heartbeat and the running node lists the leases it runs, so a restarted head
// rebuilds the book from the next heartbeats, a lost LeaseStart is sent again, and a leased
// worker nobody wants any more (its driver left, its owner died) is killed where it runs.
//
// Not thread-safe: the head's thread owns it.
#pragma once

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cluster/protocol.h"

namespace weft::cluster {

// What the book knows of a node when it places a lease.
struct NodeSlots {
  std::string node_id;
  bool alive = false;
  uint32_t slots = 0, workers = 0;  // worker processes it runs at once, and runs now
};

// What the head sends after a call: LeaseStart to a node, LeaseAnswer to a lease's owner.
struct LeaseOut {
  std::vector<std::pair<std::string, LeaseStart>> starts;
  std::vector<std::pair<std::string, LeaseAnswer>> answers;
};

class LeaseBook {
 public:
  using Clock = std::chrono::steady_clock;

  // `resend_after`: a LeaseStart its node has not reported by then is sent again; a lease an
  // owner wants that no node reports is declared lost after `lost_after`.
  LeaseBook(std::chrono::milliseconds resend_after, std::chrono::milliseconds lost_after)
      : resend_after_(resend_after), lost_after_(lost_after) {}

  // A node asks for a lease: placed on the live node other than its own with the most free
  // slots (its slots less its workers, less the leases placed there it has not reported yet),
  // or answered that none has one. An ask for a lease the book has is answered with its state.
  void ask(const WorkerLease& lease, const std::vector<NodeSlots>& nodes, Clock::time_point now, LeaseOut& out);

  // A heartbeat from `node`: the leases its drivers want, and those it runs for others.
  // `alive(node)` says whether the head counts a node alive. Fills the reply's lease_kill and
  // lease_done.
  template <class Alive>
  void heartbeat(const std::string& node, const std::vector<std::string>& wanted,
                 const std::vector<LeaseReport>& running, Alive&& alive, Clock::time_point now, HeartbeatReply& reply,
                 LeaseOut& out) {
    owner_heartbeat(node, wanted, now, out);
    for (const LeaseReport& r : running) on_report(node, r, alive(r.owner), now, reply, out);
    resend_starts(node, running, now, out);
  }

  // `node` was declared dead: the leases it ran end (their owners are told), and those it
  // owned are killed where they run at those nodes' next heartbeats.
  void node_died(const std::string& node, const std::string& why, LeaseOut& out);

  size_t size() const { return leases_.size(); }
  // The node a lease runs on (empty: not placed, or unknown).
  std::string node_of(const std::string& lease_id) const;

 private:
  struct Lease {
    WorkerLease spec;
    std::string node;
    int64_t pid = 0;
    bool ended = false;
    std::string how;
    bool reported = false;  // its node has listed it
    Clock::time_point placed_at{};
    int told = 0;  // what its owner was told: 0 nothing, 1 started, 2 ended
  };

  void owner_heartbeat(const std::string& owner, const std::vector<std::string>& wanted, Clock::time_point now,
                       LeaseOut& out);
  void on_report(const std::string& node, const LeaseReport& r, bool owner_alive, Clock::time_point now,
                 HeartbeatReply& reply, LeaseOut& out);
  void resend_starts(const std::string& node, const std::vector<LeaseReport>& running, Clock::time_point now,
                     LeaseOut& out);
  void tell_owner(Lease& l, LeaseOut& out);
  bool owner_wants(const Lease& l) const;

  std::chrono::milliseconds resend_after_, lost_after_;
  std::map<std::string, Lease> leases_;
  std::map<std::string, std::set<std::string>> wanted_;  // by owner node
  std::map<std::string, Clock::time_point> unknown_;     // wanted, but in no node's reports: since
  std::set<std::string> dead_;                           // nodes declared dead, until they report again
};

}  // namespace weft::cluster
