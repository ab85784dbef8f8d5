#include "objectstore/allocator.h"

#include "core/check.h"

namespace weft::objectstore {

BestFitAllocator::BestFitAllocator(size_t capacity) : capacity_(capacity / kAlignment * kAlignment), free_bytes_(0) {
  if (capacity_ > 0) insert_free(0, capacity_);
}

void BestFitAllocator::insert_free(size_t offset, size_t len) {
  free_by_offset_.emplace(offset, len);
  free_by_size_.emplace(len, offset);
  free_bytes_ += len;
}

void BestFitAllocator::erase_free(size_t offset, size_t len) {
  free_by_offset_.erase(offset);
  free_by_size_.erase({len, offset});
  free_bytes_ -= len;
}

std::optional<size_t> BestFitAllocator::allocate(size_t size) {
  if (size == 0 || size > capacity_) return std::nullopt;
  const size_t len = (size + kAlignment - 1) / kAlignment * kAlignment;
  auto it = free_by_size_.lower_bound({len, 0});
  if (it == free_by_size_.end()) return std::nullopt;
  const auto [free_len, offset] = *it;
  erase_free(offset, free_len);
  if (free_len > len) insert_free(offset + len, free_len - len);
  used_.emplace(offset, len);
  return offset;
}

void BestFitAllocator::free(size_t offset) {
  auto u = used_.find(offset);
  WEFT_CHECK(u != used_.end());
  size_t begin = offset, len = u->second;
  used_.erase(u);
  auto next = free_by_offset_.lower_bound(begin);
  if (next != free_by_offset_.end() && next->first == begin + len) {
    const size_t n_off = next->first, n_len = next->second;
    erase_free(n_off, n_len);
    len += n_len;
  }
  auto prev = free_by_offset_.lower_bound(begin);
  if (prev != free_by_offset_.begin()) {
    --prev;
    if (prev->first + prev->second == begin) {
      const size_t p_off = prev->first, p_len = prev->second;
      erase_free(p_off, p_len);
      begin = p_off;
      len += p_len;
    }
  }
  insert_free(begin, len);
}

size_t BestFitAllocator::largest_free() const {
  return free_by_size_.empty() ? 0 : free_by_size_.rbegin()->first;
}

size_t BestFitAllocator::allocated_size(size_t offset) const {
  auto u = used_.find(offset);
  return u == used_.end() ? 0 : u->second;
}

}  // namespace weft::objectstore
