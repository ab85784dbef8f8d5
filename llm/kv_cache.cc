#include "llm/kv_cache.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace weft::llm {

KvCache::KvCache(const Options& o)
    : n_layers_(o.n_layers),
      kv_dim_(o.kv_dim),
      block_tokens_(o.block_tokens),
      max_blocks_(o.max_blocks),
      type_(o.type),
      elem_bytes_(o.type == Type::kF16 ? 2 : 4) {
  const size_t bytes = static_cast<size_t>(n_layers_) * max_blocks_ * block_tokens_ * kv_dim_ * elem_bytes_;
  keys_.assign(bytes, 0);
  values_.assign(bytes, 0);
  free_.reserve(static_cast<size_t>(max_blocks_));
  for (int b = max_blocks_ - 1; b >= 0; --b) free_.push_back(b);
}

KvCache::KvCache(const Options& o, std::shared_ptr<KvStorage> storage)
    : n_layers_(o.n_layers),
      kv_dim_(o.kv_dim),
      block_tokens_(o.block_tokens),
      max_blocks_(o.max_blocks),
      type_(o.type),
      elem_bytes_(o.type == Type::kF16 ? 2 : 4),
      storage_(std::move(storage)) {
  free_.reserve(static_cast<size_t>(max_blocks_));
  for (int b = max_blocks_ - 1; b >= 0; --b) free_.push_back(b);
}

int KvCache::add_sequence() {
  int id;
  if (!free_seqs_.empty()) {
    id = free_seqs_.back();
    free_seqs_.pop_back();
  } else {
    id = static_cast<int>(seqs_.size());
    seqs_.emplace_back();
  }
  seqs_[id] = Sequence{true, 0, {}, {}};
  return id;
}

void KvCache::remove_sequence(int seq) {
  shrink_to(seq, 0);
  seqs_[seq].live = false;
  seqs_[seq].committed = 0;
  seqs_[seq].pending.clear();
  free_seqs_.push_back(seq);
}

Status KvCache::reserve(int seq, int n) {
  Sequence& s = seqs_[seq];
  const int want_slots = s.committed + static_cast<int>(s.pending.size()) + n;
  const int want_blocks = (want_slots + block_tokens_ - 1) / block_tokens_;
  const int extra = want_blocks - static_cast<int>(s.blocks.size());
  if (extra <= 0) return Status::ok();
  if (extra > static_cast<int>(free_.size())) {
    return Status::resource_exhausted(fmt::format("KV cache full: sequence {} needs {} more blocks of {} tokens, {} free",
                                                  seq, extra, block_tokens_, free_.size()));
  }
  for (int i = 0; i < extra; ++i) {
    s.blocks.push_back(free_.back());
    free_.pop_back();
  }
  return Status::ok();
}

int KvCache::add_pending(int seq, int32_t parent) {
  Sequence& s = seqs_[seq];
  s.pending.push_back(parent);
  return static_cast<int>(s.pending.size()) - 1;
}

void KvCache::drop_pending(int seq, int n) {
  Sequence& s = seqs_[seq];
  if (n < static_cast<int>(s.pending.size())) s.pending.resize(static_cast<size_t>(std::max(0, n)));
}

void KvCache::commit(int seq, int n) {
  Sequence& s = seqs_[seq];
  s.committed += n;
  const size_t gone = std::min(s.pending.size(), static_cast<size_t>(std::max(0, n)));
  s.pending.erase(s.pending.begin(), s.pending.begin() + static_cast<std::ptrdiff_t>(gone));
  for (int32_t& parent : s.pending)
    parent = parent < static_cast<int32_t>(gone) ? -1 : parent - static_cast<int32_t>(gone);
}

Status KvCache::keep_branch(int seq, std::span<const int> branch) {
  Sequence& s = seqs_[seq];
  const int pending = static_cast<int>(s.pending.size());
  for (size_t k = 0; k < branch.size(); ++k) {
    if (branch[k] < static_cast<int>(k) || branch[k] >= pending) {
      return Status::invalid_argument(
          fmt::format("keep_branch: slot {} at step {} is not a later pending slot (0..{})", branch[k], k, pending - 1));
    }
    if (k > 0 && branch[k] <= branch[k - 1]) {
      return Status::invalid_argument("keep_branch: a branch visits pending slots in increasing order");
    }
    const int32_t parent = s.pending[static_cast<size_t>(branch[k])];
    if (parent != (k == 0 ? -1 : branch[k - 1])) {
      return Status::invalid_argument(
          fmt::format("keep_branch: pending slot {} follows {}, not the branch's previous slot", branch[k], parent));
    }
  }
  // Slots only move toward the front (branch[k] >= k, increasing), so copying in order never
  // overwrites a slot still to be read.
  const size_t bytes = static_cast<size_t>(kv_dim_) * elem_bytes_;
  for (size_t k = 0; k < branch.size(); ++k) {
    const int from = s.committed + branch[k];
    const int to = s.committed + static_cast<int>(k);
    if (from == to) continue;
    if (storage_) {
      WEFT_RETURN_IF_ERROR(storage_->copy_slot(physical_slot(seq, from), physical_slot(seq, to)));
      continue;
    }
    for (int l = 0; l < n_layers_; ++l) {
      std::memcpy(slot_ptr(keys_, l, seq, to), slot_ptr(keys_, l, seq, from), bytes);
      std::memcpy(slot_ptr(values_, l, seq, to), slot_ptr(values_, l, seq, from), bytes);
    }
  }
  s.committed += static_cast<int>(branch.size());
  s.pending.clear();
  shrink_to(seq, s.committed);
  return Status::ok();
}

void KvCache::truncate(int seq, int n) {
  Sequence& s = seqs_[seq];
  s.committed = std::min(s.committed, std::max(0, n));
  s.pending.clear();
  shrink_to(seq, s.committed);
}

void KvCache::shrink_to(int seq, int slots) {
  Sequence& s = seqs_[seq];
  const size_t keep = static_cast<size_t>((slots + block_tokens_ - 1) / block_tokens_);
  while (s.blocks.size() > keep) {
    free_.push_back(s.blocks.back());
    s.blocks.pop_back();
  }
}

}  // namespace weft::llm
