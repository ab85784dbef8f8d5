// A paged key/value cache for many sequences (requests), as in vLLM's PagedAttention.
//
// Per layer, keys and values live in one pool of fixed-size blocks of `block_tokens` slots each;
// every sequence has a block table mapping its logical slots to blocks, grown on demand and
// returned to the free list when the sequence shrinks or ends. A sequence's slots are its
// *committed* tokens [0, committed) followed by *pending* slots written by forward passes. Each
// pending slot records its parent: an earlier pending slot, or the committed tokens (-1), so the
// pending slots form a token tree that may grow over several passes (a draft model expanding a
// speculation tree level by level). The caller then either commits pending slots in order
// (prefill, plain decoding) or keeps one branch of the tree (speculative verification), which
// moves the chosen slots to the committed end and drops the rest.
//
// Not thread-safe: one engine thread owns a cache; forward passes may read and write disjoint
// slots from worker threads.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "weft/export.h"
#include "weft/status.h"

namespace weft::llm {

/// Keys and values kept outside the cache's host memory (a device's memory, laid out by physical
/// slot: KvCache::physical_slot); the cache keeps the block tables and asks the storage to move
/// slots when it keeps a branch.
class WEFT_API KvStorage {
 public:
  virtual ~KvStorage() = default;
  /// Who made it (a model checks that a cache is its own before using its storage).
  virtual const void* owner() const = 0;
  /// Copies every layer's key and value of physical slot `from` to physical slot `to`.
  virtual Status copy_slot(int from, int to) = 0;
};

/// The paged KV cache (see the top of this file).
class WEFT_API KvCache {
 public:
  /// Element type of the stored keys and values.
  enum class Type {
    kF32,  ///< float32 (reference mode)
    kF16   ///< IEEE half (fast mode, as llama.cpp)
  };
  /// The pool's shape.
  struct Options {
    int n_layers = 0;        ///< decoder layers
    int kv_dim = 0;          ///< values per token per layer, for keys (and again for values)
    int block_tokens = 16;   ///< slots per block
    int max_blocks = 0;      ///< pool size; memory = n_layers * 2 * max_blocks * block_tokens * kv_dim * element size
    Type type = Type::kF32;  ///< element type
  };

  /// Allocates the whole pool now, in host memory.
  explicit KvCache(const Options& options);
  ///@{
  /// Movable; not copyable: a copy would share a device storage under block tables of its own.
  KvCache(KvCache&&) = default;
  KvCache& operator=(KvCache&&) = default;
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;
  ///@}
  /// Keeps only the block tables; keys and values live in `storage` (the slot accessors below
  /// must not be used).
  KvCache(const Options& options, std::shared_ptr<KvStorage> storage);

  /// A new, empty sequence. Its id stays valid until remove_sequence.
  int add_sequence();
  /// Frees the sequence's blocks; its id may be reused.
  void remove_sequence(int seq);

  /// True for a sequence added and not removed.
  bool live(int seq) const { return seq >= 0 && static_cast<size_t>(seq) < seqs_.size() && seqs_[seq].live; }
  /// Tokens the sequence has committed.
  int committed(int seq) const { return seqs_[seq].committed; }
  /// Pending slots (written by a forward pass, not yet committed or dropped).
  int pending(int seq) const { return static_cast<int>(seqs_[seq].pending.size()); }
  /// Parent of pending slot `k` (counted from the first pending slot): an earlier pending slot, or
  /// -1 when it follows the committed tokens.
  int32_t pending_parent(int seq, int k) const { return seqs_[seq].pending[static_cast<size_t>(k)]; }
  /// Slots the sequence can hold without allocating.
  int capacity(int seq) const { return static_cast<int>(seqs_[seq].blocks.size()) * block_tokens_; }

  /// Ensures room for `n` more slots after the committed and pending ones. kResourceExhausted when
  /// the pool is full (nothing is allocated then).
  Status reserve(int seq, int n);
  /// Takes the next slot (reserved) as a pending slot following pending slot `parent`, or the
  /// committed tokens when -1; returns its index counted from the first pending slot.
  int add_pending(int seq, int32_t parent);
  /// Forgets pending slots from `n` on.
  void drop_pending(int seq, int n = 0);

  /// The element type.
  Type type() const { return type_; }
  /// The storage outside host memory, or null.
  KvStorage* storage() const { return storage_.get(); }
  /// Where slot `slot` of `seq` lives in the pool: block * block_tokens + offset in the block.
  int physical_slot(int seq, int slot) const {
    return seqs_[seq].blocks[slot / block_tokens_] * block_tokens_ + slot % block_tokens_;
  }
  /// Slots in the pool (max_blocks * block_tokens).
  int pool_slots() const { return max_blocks_ * block_tokens_; }
  ///@{
  /// Slot storage; use the accessors of the cache's type.
  float* key(int layer, int seq, int slot) { return static_cast<float*>(slot_ptr(keys_, layer, seq, slot)); }
  float* value(int layer, int seq, int slot) { return static_cast<float*>(slot_ptr(values_, layer, seq, slot)); }
  uint16_t* key_f16(int layer, int seq, int slot) { return static_cast<uint16_t*>(slot_ptr(keys_, layer, seq, slot)); }
  uint16_t* value_f16(int layer, int seq, int slot) { return static_cast<uint16_t*>(slot_ptr(values_, layer, seq, slot)); }
  ///@}

  /// The `n` slots after the committed ones become committed (the first `n` pending slots, a chain;
  /// later pending slots stay pending, their parents re-counted).
  void commit(int seq, int n);
  /// The pending slots `branch` (indices counted from the first pending slot), a path down the
  /// pending tree from its root, become the next committed tokens, in that order; other pending
  /// slots are dropped.
  Status keep_branch(int seq, std::span<const int> branch);
  /// Forgets committed tokens from `n` on, and every pending slot, and frees blocks no longer needed.
  void truncate(int seq, int n);

  /// Blocks no sequence holds.
  int free_blocks() const { return static_cast<int>(free_.size()); }
  /// Slots per block.
  int block_tokens() const { return block_tokens_; }
  /// Values per token per layer.
  int kv_dim() const { return kv_dim_; }

 private:
  struct Sequence {
    bool live = false;
    int committed = 0;
    std::vector<int32_t> pending;  ///< parent of each pending slot
    std::vector<int> blocks;
  };
  void* slot_ptr(std::vector<uint8_t>& pool, int layer, int seq, int slot) {
    const Sequence& s = seqs_[seq];
    const int block = s.blocks[slot / block_tokens_];
    const size_t index = ((static_cast<size_t>(layer) * max_blocks_ + block) * block_tokens_ + slot % block_tokens_) *
                         static_cast<size_t>(kv_dim_);
    return pool.data() + index * elem_bytes_;
  }
  void shrink_to(int seq, int slots);

  int n_layers_, kv_dim_, block_tokens_, max_blocks_;
  Type type_;
  size_t elem_bytes_;
  std::vector<uint8_t> keys_, values_;  ///< [layer][block][slot][kv_dim] elements
  std::shared_ptr<KvStorage> storage_;  ///< set: keys_ and values_ stay empty
  std::vector<int> free_;               ///< free block ids
  std::vector<Sequence> seqs_;
  std::vector<int> free_seqs_;
};

}  // namespace weft::llm
