// The forward pass written once against the device-neutral operators (kernels/backend.h): the
// weights uploaded once at load, activations and the KV cache in the backend's memory, each step
// one sequence of operators that the backend may record and replay (CUDA graphs for decode-sized
// steps). LlamaModel runs it when loaded with a device other than the CPU; on the CPU backend it
// is the reference the device backends are compared with.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "kernels/backend.h"
#include "llm/batch.h"
#include "llm/kv_cache.h"
#include "llm/model_config.h"
#include "llm/model_weights.h"
#include "weft/status.h"

namespace weft::llm {

class DeviceModel {
 public:
  /// Uploads the weights (quantized rows, and dense copies where the backend multiplies many
  /// tokens at once with them).
  static Result<std::unique_ptr<DeviceModel>> create(std::unique_ptr<kernels::Backend> backend,
                                                     const ModelConfig& config, const ModelWeights& weights);
  ~DeviceModel();

  kernels::Backend& backend() { return *backend_; }
  /// A cache whose keys and values live in the backend's memory.
  Result<KvCache> make_cache(int max_tokens, int block_tokens);

  /// Runs the batch, its slots already planned as logical slots of each token's sequence (LlamaModel
  /// plans them for every device): `slot[i]` where token i's key goes, `visible[i]` what it attends
  /// to (committed prefix, ancestors, itself). The logits of the tokens that asked for them
  /// ([count][vocab]) into `logits` when non-null, their argmax into `argmax` when non-null (only
  /// the integers leave the device then).
  Status forward(const Batch& batch, const std::vector<int>& slot, const std::vector<std::vector<int>>& visible,
                 KvCache& kv, std::vector<float>* logits, std::vector<int32_t>* argmax);

 private:
  struct Layer {
    kernels::Weight wq, wk, wv, wo, gate, up, down;
    kernels::Buffer attn_norm, ffn_norm, bq, bk, bv;
  };
  DeviceModel(std::unique_ptr<kernels::Backend> backend, const ModelConfig& config);
  Status reserve(int tokens, int logit_rows, size_t visible);
  void record(int n, int m, KvCache& kv);

  std::unique_ptr<kernels::Backend> backend_;
  ModelConfig config_;
  kernels::Weight token_embd_, output_;
  kernels::Buffer output_norm_, rope_freqs_;
  std::vector<Layer> layers_;

  std::mutex mu_;  ///< one pass at a time; guards everything below
  int token_cap_ = 0, logit_cap_ = 0;
  size_t visible_cap_ = 0;
  uint64_t generation_ = 0;  ///< bumped whenever buffers move (recordings hold their addresses)
  kernels::Buffer h_, q_, k_, v_, attn_, act_, hl_, logits_, argmax_;
  kernels::Buffer meta_;       ///< ids, positions, physical slots, visible starts, logit rows, visible slots
  kernels::Buffer host_meta_;  ///< the step's integers staged in fast host memory
  kernels::Buffer host_out_;   ///< argmax results staged likewise
  /// Recording keys by (buffer generation, cache id, tokens, logit rows).
  std::map<std::tuple<uint64_t, uint64_t, int, int>, uint64_t> keys_;
  uint64_t next_cache_id_ = 0;  ///< caches' ids (their memory's addresses may be reused)
};

}  // namespace weft::llm
