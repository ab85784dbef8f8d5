#include "finetune/optimizer.h"

#include <algorithm>
#include <cmath>

namespace weft::finetune {
namespace {

// Every parameter tensor of an adapter, in a fixed order: A then B of each present matrix.
template <class Adapter, class F>
void each_tensor(Adapter& a, F&& f) {
  for (auto& layer : a.layers) {
    for (auto& m : layer) {
      if (m.rank == 0) continue;
      f(m.a);
      f(m.b);
    }
  }
}

}  // namespace

Result<OptimizerKind> parse_optimizer(const std::string& name) {
  if (name == "adamw") return OptimizerKind::kAdamW;
  if (name == "sgd") return OptimizerKind::kSgd;
  return Status::invalid_argument("the optimizer is adamw or sgd, not '" + name + "'");
}

Optimizer::Optimizer(const OptimizerOptions& options, const llm::LoraAdapter& adapter) : options_(options) {
  each_tensor(adapter, [&](const std::vector<float>& t) {
    m_.emplace_back(t.size(), 0.0f);
    if (options_.kind == OptimizerKind::kAdamW) v_.emplace_back(t.size(), 0.0f);
  });
}

float Optimizer::step(llm::LoraAdapter& adapter, llm::LoraAdapter& grads, int tokens) {
  const float inv = 1.0f / static_cast<float>(std::max(tokens, 1));
  double sq = 0;
  each_tensor(grads, [&](std::vector<float>& g) {
    for (float& x : g) {
      x *= inv;
      sq += static_cast<double>(x) * x;
    }
  });
  const float norm = static_cast<float>(std::sqrt(sq));
  if (!std::isfinite(norm)) {
    each_tensor(grads, [](std::vector<float>& g) { std::fill(g.begin(), g.end(), 0.0f); });
    return NAN;
  }
  float clip = 1.0f;
  if (options_.max_grad_norm > 0 && norm > options_.max_grad_norm) clip = options_.max_grad_norm / (norm + 1e-6f);
  ++steps_;
  const OptimizerOptions& o = options_;
  const float bc1 = 1.0f - std::pow(o.beta1, static_cast<float>(steps_));
  const float bc2 = 1.0f - std::pow(o.beta2, static_cast<float>(steps_));
  std::vector<std::vector<float>*> params, gs;
  each_tensor(adapter, [&](std::vector<float>& t) { params.push_back(&t); });
  each_tensor(grads, [&](std::vector<float>& t) { gs.push_back(&t); });
  for (size_t k = 0; k < params.size(); ++k) {
    std::vector<float>& p = *params[k];
    std::vector<float>& g = *gs[k];
    std::vector<float>& m = m_[k];
    for (size_t i = 0; i < p.size(); ++i) {
      float gi = g[i] * clip;
      if (o.kind == OptimizerKind::kAdamW) {
        p[i] *= 1.0f - o.lr * o.weight_decay;
        m[i] = o.beta1 * m[i] + (1.0f - o.beta1) * gi;
        float& v = v_[k][i];
        v = o.beta2 * v + (1.0f - o.beta2) * gi * gi;
        p[i] -= (o.lr / bc1) * m[i] / (std::sqrt(v) / std::sqrt(bc2) + o.eps);
      } else {
        gi += o.weight_decay * p[i];
        if (o.momentum != 0.0f) {
          m[i] = steps_ == 1 ? gi : o.momentum * m[i] + gi;
          gi = m[i];
        }
        p[i] -= o.lr * gi;
      }
      g[i] = 0.0f;
    }
  }
  return norm;
}

}  // namespace weft::finetune
