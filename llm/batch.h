// A flat batch of tokens from any number of sequences: the one input of the forward pass.
//
// Each token names its sequence (a KV cache sequence), its position (for rotary embeddings) and
// its parent: the index of the batch token it follows, or -1 when it follows the sequence's
// committed tokens — or, with `pending_parent`, a pending KV slot an earlier pass wrote (a tree
// grown over several passes). A token attends to its sequence's committed tokens, then to its
// ancestors, then to itself. A prefill chunk or a decode step is a chain (each token's parent is
// the one before it); a speculation tree gives siblings the same parent. Within a batch, a
// sequence's tokens take the pending KV slots after those it already has, in order of appearance.
// A token may name a LoRA adapter (lora_adapter.h) that updates the projections it goes through.
#pragma once

#include <cstdint>
#include <vector>

#include "weft/export.h"

namespace weft::llm {

struct LoraAdapter;

/// How fast-mode attention orders its sums for a token (the bits of its result depend on it):
/// llama.cpp's vector kernel (one query) or its matrix kernel (many). kAuto: the matrix layout when
/// the token's sequence has several tokens in the batch. A server that preempts and recomputes a
/// sequence pins each token to the layout it first had, so recomputation gives the same bits.
enum class SumLayout : uint8_t { kAuto, kVector, kMatrix };

/// One token of a Batch (see the top of this file).
struct WEFT_API BatchToken {
  int32_t token = 0;                    ///< the token id
  int32_t seq = 0;                      ///< its KV cache sequence
  int32_t pos = 0;                      ///< its position (rotary embeddings)
  int32_t parent = -1;                  ///< the batch token it follows, or -1: the sequence's committed tokens
  bool logits = false;                  ///< return this token's next-token logits
  SumLayout layout = SumLayout::kAuto;  ///< how fast-mode attention sums for it
  /// With parent -1: the pending KV slot (counted from the sequence's first pending slot) this
  /// token follows; -1: the committed tokens.
  int32_t pending_parent = -1;
  /// The LoRA adapter this token goes through: an index into Batch::adapters, or -1: none.
  int16_t adapter = -1;
};

/// The forward pass's input: tokens of any number of sequences, chains and trees.
struct WEFT_API Batch {
  std::vector<BatchToken> tokens;  ///< in any order that puts parents before children
  /// The LoRA adapters the tokens name (BatchToken::adapter): tokens of different adapters, and of
  /// none, share one pass, each applying its own update. The adapters must outlive the pass.
  std::vector<const LoraAdapter*> adapters;

  /// Appends `ids` to `seq` as a chain starting at position `pos0` (after the committed tokens);
  /// asks for the last token's logits when `last_logits`.
  void add_chain(int32_t seq, int32_t pos0, const std::vector<int32_t>& ids, bool last_logits = true) {
    for (size_t k = 0; k < ids.size(); ++k) {
      int32_t parent = k == 0 ? -1 : static_cast<int32_t>(tokens.size()) - 1;
      tokens.push_back({ids[k], seq, pos0 + static_cast<int32_t>(k), parent, last_logits && k + 1 == ids.size()});
    }
  }
};

}  // namespace weft::llm
