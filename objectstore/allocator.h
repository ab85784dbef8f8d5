// Space management inside the store's arena.
//
// Allocator is the seam (tests may substitute their own); BestFitAllocator is the store's:
// best fit over free ranges kept both by address (to coalesce a freed range with its free
// neighbours at once) and by size (to find the smallest range that fits), so mixed sizes leave
// little fragmentation. Every allocation is 64-byte aligned (a cache line; SIMD loads).
// Not thread-safe: the store's single thread owns it.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>

namespace weft::objectstore {

class Allocator {
 public:
  virtual ~Allocator() = default;
  // The offset of `size` free bytes (size > 0), or nullopt when no free range is large enough.
  virtual std::optional<size_t> allocate(size_t size) = 0;
  // Frees an offset allocate() returned (and not yet freed).
  virtual void free(size_t offset) = 0;
  virtual size_t capacity() const = 0;
  virtual size_t free_bytes() const = 0;
  // The largest size allocate() would accept now.
  virtual size_t largest_free() const = 0;
};

class BestFitAllocator final : public Allocator {
 public:
  static constexpr size_t kAlignment = 64;
  explicit BestFitAllocator(size_t capacity);

  std::optional<size_t> allocate(size_t size) override;
  void free(size_t offset) override;
  size_t capacity() const override { return capacity_; }
  size_t free_bytes() const override { return free_bytes_; }
  size_t largest_free() const override;
  // Bytes actually reserved for an allocation at `offset` (its size rounded up to the alignment).
  size_t allocated_size(size_t offset) const;

 private:
  void insert_free(size_t offset, size_t len);
  void erase_free(size_t offset, size_t len);

  size_t capacity_, free_bytes_;
  std::map<size_t, size_t> free_by_offset_;           // offset -> length
  std::set<std::pair<size_t, size_t>> free_by_size_;  // (length, offset)
  std::unordered_map<size_t, size_t> used_;           // offset -> length
};

}  // namespace weft::objectstore
