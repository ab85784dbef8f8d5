#include "workers/dispatch_book.h"

#include <tuple>

namespace weft::workers {

bool DispatchBook::LessUrgent::operator()(const Item& a, const Item& b) const {
  return std::tie(a.slo, a.deadline, a.order) > std::tie(b.slo, b.deadline, b.order);
}

DispatchBook::DispatchBook(size_t workers, int pipeline_depth) : pipeline_depth_(pipeline_depth), workers_(workers) {}

void DispatchBook::set_ready(uint32_t worker, bool ready) {
  workers_[worker].ready = ready;
  if (ready) workers_[worker].steal_pending = false;
}

size_t DispatchBook::in_flight_total() const {
  size_t n = 0;
  for (const Worker& w : workers_) n += w.in_flight.size();
  return n;
}

void DispatchBook::enqueue(Item item) {
  item.order = next_order_++;
  queue_.push(std::move(item));
}

Item DispatchBook::pop_queued() {
  Item item = queue_.top();
  queue_.pop();
  return item;
}

std::optional<std::pair<uint32_t, Item>> DispatchBook::next() {
  if (queue_.empty()) return std::nullopt;
  std::optional<uint32_t> best;
  for (uint32_t i = 0; i < workers_.size(); ++i) {
    const Worker& w = workers_[i];
    if (!w.ready || static_cast<int>(w.in_flight.size()) >= pipeline_depth_) continue;
    if (!best || w.in_flight.size() < workers_[*best].in_flight.size()) best = i;
  }
  if (!best) return std::nullopt;
  return std::make_pair(*best, pop_queued());
}

std::optional<uint32_t> DispatchBook::roomiest_local() const {
  std::optional<uint32_t> best;
  for (uint32_t i = 0; i < workers_.size(); ++i) {
    const Worker& w = workers_[i];
    if (!w.ready || w.remote || static_cast<int>(w.in_flight.size()) >= pipeline_depth_) continue;
    if (!best || w.in_flight.size() < workers_[*best].in_flight.size()) best = i;
  }
  return best;
}

bool DispatchBook::any_local() const {
  for (const Worker& w : workers_) {
    if (w.ready && !w.remote) return true;
  }
  return false;
}

void DispatchBook::sent(uint32_t worker, uint64_t seq, Item item) {
  workers_[worker].in_flight.emplace(seq, std::move(item));
}

std::optional<Item> DispatchBook::finish(uint32_t worker, uint64_t seq) {
  auto& in_flight = workers_[worker].in_flight;
  auto it = in_flight.find(seq);
  if (it == in_flight.end()) return std::nullopt;
  Item item = std::move(it->second);
  in_flight.erase(it);
  return item;
}

std::vector<std::pair<uint32_t, uint32_t>> DispatchBook::steals() {
  std::vector<std::pair<uint32_t, uint32_t>> out;
  if (!queue_.empty()) return out;
  // What `idle` could take of `w`'s: everything on the same side; across nodes, only the tasks
  // whose messages name no object of the driver's store (the others would come straight back).
  auto takeable = [](const Worker& idle, const Worker& w) {
    if (idle.remote == w.remote) return w.in_flight.size();
    size_t n = 0;
    for (const auto& [seq, item] : w.in_flight)
      n += item.task != nullptr && item.carried.holds.empty() && item.carried.refs.empty();
    return n;
  };
  for (const Worker& idle : workers_) {
    if (!idle.ready || !idle.in_flight.empty()) continue;
    std::optional<uint32_t> victim;
    size_t most = 0;
    for (uint32_t i = 0; i < workers_.size(); ++i) {
      const Worker& w = workers_[i];
      if (!w.ready || w.steal_pending || w.in_flight.size() < 2) continue;
      const size_t n = takeable(idle, w);
      if (n >= 2 && n > most) victim = i, most = n;
    }
    if (!victim) continue;
    workers_[*victim].steal_pending = true;
    out.emplace_back(*victim, static_cast<uint32_t>(most / 2));
  }
  return out;
}

size_t DispatchBook::returned(uint32_t worker, const std::vector<uint64_t>& seqs) {
  Worker& w = workers_[worker];
  w.steal_pending = false;
  size_t n = 0;
  for (uint64_t seq : seqs) {
    auto it = w.in_flight.find(seq);
    if (it == w.in_flight.end() || it->second.task == nullptr) continue;  // actor messages stay
    queue_.push(std::move(it->second));                                   // keeps its original order
    w.in_flight.erase(it);
    ++n;
  }
  return n;
}

std::vector<Item> DispatchBook::lost(uint32_t worker) {
  Worker& w = workers_[worker];
  std::vector<Item> out;
  out.reserve(w.in_flight.size());
  for (auto& [seq, item] : w.in_flight) out.push_back(std::move(item));
  w.in_flight.clear();
  w.ready = false;
  w.steal_pending = false;
  std::erase_if(actor_home_, [worker](const auto& home) { return home.second == worker; });
  return out;
}

std::optional<uint32_t> DispatchBook::place_actor(uint64_t actor) {
  std::vector<size_t> hosted(workers_.size(), 0);
  for (const auto& [a, w] : actor_home_) ++hosted[w];
  std::optional<uint32_t> best;
  for (uint32_t i = 0; i < workers_.size(); ++i) {
    if (!workers_[i].ready) continue;
    if (!best || hosted[i] < hosted[*best] ||
        (hosted[i] == hosted[*best] && workers_[i].in_flight.size() < workers_[*best].in_flight.size())) {
      best = i;
    }
  }
  if (best) actor_home_[actor] = *best;
  return best;
}

std::optional<uint32_t> DispatchBook::home_of(uint64_t actor) const {
  auto it = actor_home_.find(actor);
  if (it == actor_home_.end() || !workers_[it->second].ready) return std::nullopt;
  return it->second;
}

void DispatchBook::forget_actor(uint64_t actor) { actor_home_.erase(actor); }

std::vector<uint64_t> DispatchBook::actors_on(uint32_t worker) const {
  std::vector<uint64_t> out;
  for (const auto& [actor, home] : actor_home_) {
    if (home == worker) out.push_back(actor);
  }
  return out;
}

}  // namespace weft::workers
