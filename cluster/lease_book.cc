#include "cluster/lease_book.h"

#include <algorithm>

namespace weft::cluster {

void LeaseBook::ask(const WorkerLease& lease, const std::vector<NodeSlots>& nodes, Clock::time_point now,
                    LeaseOut& out) {
  if (auto it = leases_.find(lease.lease_id); it != leases_.end()) {
    it->second.told = 0;  // the owner asks again: it lacks the answer
    tell_owner(it->second, out);
    return;
  }
  std::map<std::string, uint32_t> unreported;
  for (const auto& [id, l] : leases_) unreported[l.node] += !l.reported && !l.ended;
  const NodeSlots* best = nullptr;
  int64_t best_free = 0;
  for (const NodeSlots& n : nodes) {
    if (!n.alive || n.node_id == lease.owner) continue;
    const int64_t free = int64_t{n.slots} - n.workers - unreported[n.node_id];
    if (free > best_free) best = &n, best_free = free;
  }
  if (best == nullptr) {
    out.answers.emplace_back(lease.owner,
                             LeaseAnswer{lease.lease_id, "", 0, true, "no other live node has a free slot"});
    return;
  }
  Lease& l = leases_[lease.lease_id];
  l.spec = lease;
  l.node = best->node_id;
  l.placed_at = now;
  unknown_.erase(lease.lease_id);
  out.starts.emplace_back(l.node, LeaseStart{lease});
}

void LeaseBook::owner_heartbeat(const std::string& owner, const std::vector<std::string>& wanted, Clock::time_point now,
                                LeaseOut& out) {
  std::set<std::string>& w = wanted_[owner];
  w = std::set<std::string>(wanted.begin(), wanted.end());
  dead_.erase(owner);  // it reports: alive
  // Ended leases on dead nodes whose owner heard and let go: nobody will report them again.
  std::erase_if(leases_, [&](const auto& kv) {
    const Lease& l = kv.second;
    return l.spec.owner == owner && l.ended && l.told == 2 && !w.count(kv.first) && dead_.count(l.node) > 0;
  });
  for (const std::string& id : w) {
    auto it = leases_.find(id);
    if (it != leases_.end()) {
      // An owner that still wants an ended lease has not heard of its end (or lost the answer).
      if (it->second.ended) it->second.told = 1;
      tell_owner(it->second, out);
      continue;
    }
    auto [u, fresh] = unknown_.try_emplace(id, now);
    if (!fresh && now - u->second > lost_after_) {  // a head restarted, and no node runs it
      out.answers.emplace_back(owner, LeaseAnswer{id, "", 0, true, "lost: no node runs it any more"});
      unknown_.erase(u);
    }
  }
  std::erase_if(unknown_, [&](const auto& kv) { return kv.first.rfind(owner + ":", 0) == 0 && !w.count(kv.first); });
}

bool LeaseBook::owner_wants(const Lease& l) const {
  auto it = wanted_.find(l.spec.owner);
  return it == wanted_.end() || it->second.count(l.spec.lease_id) > 0;
}

void LeaseBook::on_report(const std::string& node, const LeaseReport& r, bool owner_alive, Clock::time_point now,
                          HeartbeatReply& reply, LeaseOut& out) {
  auto [it, fresh] = leases_.try_emplace(r.lease_id);
  Lease& l = it->second;
  if (fresh) {  // a head that restarted learns it from the node running it
    l.spec.lease_id = r.lease_id;
    l.spec.owner = r.owner;
    l.node = node;
    l.placed_at = now;
    unknown_.erase(r.lease_id);
  }
  if (l.node != node) {  // placed elsewhere (a LeaseStart resent after this one was lost)
    (r.exited || r.pid == 0 ? reply.lease_done : reply.lease_kill).push_back(r.lease_id);
    return;
  }
  const bool changed = !l.reported || l.pid != r.pid || l.ended != (r.exited || r.pid == 0);
  l.reported = true;
  if (!l.ended) {
    l.pid = r.pid;
    l.ended = r.exited || r.pid == 0;
    l.how = r.pid == 0 ? "it could not start: " + r.how : r.how;
  }
  const bool wanted = owner_alive && (owner_wants(l) || now - l.placed_at < resend_after_);
  if (!wanted) {
    if (l.ended) {
      reply.lease_done.push_back(r.lease_id);
      leases_.erase(it);
    } else {
      reply.lease_kill.push_back(r.lease_id);
    }
    return;
  }
  if (changed) tell_owner(l, out);
}

void LeaseBook::resend_starts(const std::string& node, const std::vector<LeaseReport>& running, Clock::time_point now,
                              LeaseOut& out) {
  std::set<std::string> listed;
  for (const LeaseReport& r : running) listed.insert(r.lease_id);
  for (auto& [id, l] : leases_) {
    if (l.node != node || l.ended || listed.count(id)) continue;
    if (l.reported) {  // it listed the lease before and no longer does: the node lost it
      l.ended = true;
      l.how = "its node " + node + " no longer has it";
      tell_owner(l, out);
    } else if (now - l.placed_at > resend_after_ && !l.spec.executable.empty()) {
      if (!owner_wants(l) || dead_.count(l.spec.owner) > 0) {  // nobody waits for it any more
        l.ended = true;
        l.how = "its owner no longer wants it";
        continue;
      }
      l.placed_at = now;
      out.starts.emplace_back(node, LeaseStart{l.spec});
    }
  }
  // Never started, and nobody wants them: forgotten.
  std::erase_if(leases_,
                [&](const auto& kv) { return kv.second.node == node && kv.second.ended && !kv.second.reported; });
}

void LeaseBook::node_died(const std::string& node, const std::string& why, LeaseOut& out) {
  for (auto& [id, l] : leases_) {
    if (l.node != node || l.ended) continue;
    l.ended = true;
    l.how = why;
    tell_owner(l, out);
  }
  wanted_.erase(node);
  dead_.insert(node);
  std::erase_if(unknown_, [&](const auto& kv) { return kv.first.rfind(node + ":", 0) == 0; });
  // Ended leases it ran: forgotten once their owners let go (owner_heartbeat). Leases it owned:
  // killed where they run at those nodes' next heartbeats (their owner is dead).
}

void LeaseBook::tell_owner(Lease& l, LeaseOut& out) {
  const int state = l.ended ? 2 : l.reported && l.pid > 0 ? 1 : 0;
  if (state == 0 || state <= l.told) return;
  l.told = state;
  out.answers.emplace_back(l.spec.owner, LeaseAnswer{l.spec.lease_id, l.node, l.pid, l.ended, l.how});
}

std::string LeaseBook::node_of(const std::string& lease_id) const {
  auto it = leases_.find(lease_id);
  return it == leases_.end() ? "" : it->second.node;
}

}  // namespace weft::cluster
