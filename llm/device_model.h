// The forward pass written once against the device-neutral operators (kernels/backend.h): the
// weights uploaded once at load, activations and the KV cache in the backend's memory, each step
// one sequence of operators that the backend may record and replay (CUDA graphs for decode-sized
// steps). LlamaModel runs it when loaded with a device other than the CPU; on the CPU backend it
// is the reference the device backends are compared with.
//
// Tensor parallelism: with several ranks (one backend and one communicator each), every rank
// holds a slice of each layer — q/k/v by heads and gate/up by rows (column-parallel), the output
// and down projections by the matching columns (row-parallel) — computes its partial products,
// and an all-reduce sums them before the residual add, as Megatron-LM splits a transformer. The
// embedding, norms and output head are replicated; each rank keeps the KV heads it computes.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/backend.h"
#include "kernels/communicator.h"
#include "llm/batch.h"
#include "llm/kv_cache.h"
#include "llm/model_config.h"
#include "llm/model_weights.h"
#include "weft/status.h"

namespace weft::llm {

class DeviceModel {
 public:
  /// Uploads the weights to one backend (quantized rows, and dense copies where the backend
  /// multiplies many tokens at once with them).
  static Result<std::unique_ptr<DeviceModel>> create(std::unique_ptr<kernels::Backend> backend,
                                                     const ModelConfig& config, const ModelWeights& weights);
  /// The same split over ranks: backends[i] and communicators[i] are rank i's (kernels/
  /// communicator.h). Heads, KV heads and the feed-forward width must divide by the rank count,
  /// in whole weight blocks. One rank with a communicator runs the all-reduces too.
  static Result<std::unique_ptr<DeviceModel>> create(std::vector<std::unique_ptr<kernels::Backend>> backends,
                                                     std::vector<std::unique_ptr<kernels::Communicator>> communicators,
                                                     const ModelConfig& config, const ModelWeights& weights);
  ~DeviceModel();

  /// The first rank's backend's description, and the rank count when several.
  std::string describe() const;
  /// A cache whose keys and values live in the backends' memory (each rank its KV heads).
  Result<KvCache> make_cache(int max_tokens, int block_tokens);
  /// A cache of this model with no room: every forward pass on it reports kResourceExhausted.
  KvCache empty_cache(int block_tokens);

  /// Runs the batch, its slots already planned as logical slots of each token's sequence (LlamaModel
  /// plans them for every device): `slot[i]` where token i's key goes, `visible[i]` what it attends
  /// to (committed prefix, ancestors, itself). The logits of the tokens that asked for them
  /// ([count][vocab]) into `logits` when non-null, their argmax into `argmax` when non-null (only
  /// the integers leave the device then). kInvalidArgument for a cache another model made.
  Status forward(const Batch& batch, const std::vector<int>& slot, const std::vector<std::vector<int>>& visible,
                 KvCache& kv, std::vector<float>* logits, std::vector<int32_t>* argmax);

 private:
  struct Rank;
  class Storage;
  explicit DeviceModel(const ModelConfig& config);

  ModelConfig config_;
  std::vector<std::unique_ptr<Rank>> ranks_;
  std::mutex mu_;               ///< one pass at a time
  uint64_t next_cache_id_ = 0;  ///< caches' ids (their memory's addresses may be reused); guarded by mu_
};

}  // namespace weft::llm
