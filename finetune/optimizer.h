// Optimizers for LoRA adapters, as PyTorch defines them: AdamW (decoupled weight decay, bias-
// corrected moments) and SGD (momentum, L2 weight decay), after clipping the gradients' global
// norm. Gradients arrive as sums over trained tokens (training_pass.h) and are averaged first.
//
//   Optimizer opt({.kind = OptimizerKind::kAdamW, .lr = 2e-4f}, adapter);
//   float norm = opt.step(adapter, grads, tokens);  // updates adapter, zeroes grads
#pragma once

#include <vector>

#include "llm/lora_adapter.h"
#include "weft/status.h"

namespace weft::finetune {

enum class OptimizerKind { kAdamW, kSgd };

struct OptimizerOptions {
  OptimizerKind kind = OptimizerKind::kAdamW;
  float lr = 2e-4f;
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;  ///< AdamW
  float momentum = 0.0f;                            ///< SGD
  float weight_decay = 0.0f;                        ///< AdamW: decoupled (p -= lr·wd·p); SGD: added to the gradient
  float max_grad_norm = 1.0f;  ///< clip the averaged gradients' global L2 norm to this; 0: no clipping
};

/// Parses "adamw" / "sgd".
Result<OptimizerKind> parse_optimizer(const std::string& name);

class Optimizer {
 public:
  /// State (moments) shaped like `adapter`.
  Optimizer(const OptimizerOptions& options, const llm::LoraAdapter& adapter);
  /// Divides `grads` by `tokens`, clips, updates `adapter`, zeroes `grads`; returns the averaged
  /// gradients' norm before clipping. A non-finite gradient skips the update (and says so: NaN).
  float step(llm::LoraAdapter& adapter, llm::LoraAdapter& grads, int tokens);
  int steps() const { return steps_; }
  const OptimizerOptions& options() const { return options_; }

 private:
  OptimizerOptions options_;
  std::vector<std::vector<float>> m_, v_;  // per parameter tensor (A then B of each matrix)
  int steps_ = 0;
};

}  // namespace weft::finetune
