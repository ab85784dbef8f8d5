#include "resource_gate.h"

#include <algorithm>

#include <fmt/format.h>

namespace weft::sched {

ResourceGate::ResourceGate(ResourceSet capacity) : capacity_(std::move(capacity)), available_(capacity_) {}

std::string ResourceGate::describe(const ResourceSet& r) {
  std::string out = "{";
  for (const auto& [name, qty] : r) {
    if (out.size() > 1) out += ", ";
    out += fmt::format("{}: {:g}", name, qty);
  }
  return out + "}";
}

ResourceSet ResourceGate::capacity() const { return capacity_; }

ResourceSet ResourceGate::available() const {
  std::lock_guard lock(mu_);
  return available_;
}

bool ResourceGate::fits_locked(const ResourceSet& need) const {
  for (const auto& [name, qty] : need) {
    auto it = available_.find(name);
    if (qty > 0 && (it == available_.end() || it->second + 1e-9 < qty)) return false;
  }
  return true;
}

void ResourceGate::take_locked(const ResourceSet& need) {
  for (const auto& [name, qty] : need) available_[name] -= qty;
}

ResourceGate::Outcome ResourceGate::acquire(detail::Runnable* r, const ResourceSet& need, std::string* why) {
  for (const auto& [name, qty] : need) {
    auto cap = capacity_.find(name);
    double have = cap == capacity_.end() ? 0.0 : cap->second;
    if (qty < 0 || qty > have + 1e-9) {
      *why = qty < 0 ? fmt::format("resource request {} is negative", describe(need))
                     : fmt::format("infeasible: needs {} but this node has {}", describe(need), describe(capacity_));
      return Outcome::kInfeasible;
    }
  }
  std::lock_guard lock(mu_);
  if (parked_.empty() && fits_locked(need)) {
    take_locked(need);
    return Outcome::kNow;
  }
  Parked p{r->slo_index(), r->deadline_ns(), seq_++, r, &need};
  auto urgent = [](const Parked& a, const Parked& b) {
    if (a.cls != b.cls) return a.cls < b.cls;
    if (a.deadline != b.deadline) return a.deadline < b.deadline;
    return a.seq < b.seq;
  };
  parked_.insert(std::upper_bound(parked_.begin(), parked_.end(), p, urgent), p);
  return Outcome::kParked;
}

std::vector<detail::Runnable*> ResourceGate::release(const ResourceSet& need) {
  std::vector<detail::Runnable*> admitted;
  std::lock_guard lock(mu_);
  for (const auto& [name, qty] : need) available_[name] += qty;
  for (auto it = parked_.begin(); it != parked_.end();) {
    if (fits_locked(*it->need)) {
      take_locked(*it->need);
      admitted.push_back(it->runnable);
      it = parked_.erase(it);
    } else {
      ++it;
    }
  }
  return admitted;
}

std::vector<detail::Runnable*> ResourceGate::drain_parked() {
  std::lock_guard lock(mu_);
  std::vector<detail::Runnable*> out;
  for (const auto& p : parked_) out.push_back(p.runnable);
  parked_.clear();
  return out;
}

}  // namespace weft::sched
