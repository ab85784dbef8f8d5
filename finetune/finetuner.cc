#include "finetune/finetuner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include <fmt/format.h>

namespace weft::finetune {
namespace {

int64_t spent_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t).count();
}

// How many pieces of `each` ns fit in `left` ns, at most `most`; one when the cost is unknown (0).
int fitting(double left, double each, int most) {
  if (each <= 0) return std::min(1, most);
  return static_cast<int>(std::clamp(std::floor(left / each), 0.0, static_cast<double>(most)));
}

}  // namespace

Finetuner::Finetuner(const llm::LlamaModel& model, const FinetuneOptions& options, weft::ParallelFor& team,
                     llm::LoraAdapter adapter)
    : model_(&model), options_(options), team_(&team), adapter_(std::move(adapter)) {}

Result<std::unique_ptr<Finetuner>> Finetuner::create(const llm::LlamaModel& model,
                                                     std::vector<TrainingExample> examples,
                                                     const FinetuneOptions& options, weft::ParallelFor& team) {
  if (examples.empty()) return Status::invalid_argument("there are no training examples");
  if (options.epochs < 1 || options.batch_size < 1 || options.chunk_tokens < 1) {
    return Status::invalid_argument("epochs, batch size and chunk tokens must be >= 1");
  }
  if (!(options.optimizer.lr > 0)) return Status::invalid_argument("the learning rate must be > 0");
  for (size_t i = 0; i < examples.size(); ++i) {
    const int limit = model.config().context_length;
    if (limit > 0 && static_cast<int>(examples[i].tokens.size()) > limit) {
      return Status::invalid_argument(fmt::format("example {} has {} tokens; the model's context holds {}", i + 1,
                                                  examples[i].tokens.size(), limit));
    }
  }
  WEFT_ASSIGN_OR_RETURN(llm::LoraAdapter adapter, llm::LoraAdapter::create(model.config(), options.lora, options.seed));
  std::unique_ptr<Finetuner> f(new Finetuner(model, options, team, std::move(adapter)));
  f->grads_ = zero_gradients(f->adapter_);
  f->optimizer_.emplace(options.optimizer, f->adapter_);
  f->examples_ = std::move(examples);
  const int per_epoch = static_cast<int>((f->examples_.size() + options.batch_size - 1) / options.batch_size);
  f->total_steps_ = per_epoch * options.epochs;
  return f;
}

const TrainingExample& Finetuner::next_example() {
  if (cursor_ == order_.size()) {
    order_.resize(examples_.size());
    std::iota(order_.begin(), order_.end(), 0);
    std::mt19937_64 rng(options_.seed * 1000003 + static_cast<uint64_t>(epoch_));
    std::shuffle(order_.begin(), order_.end(), rng);
    cursor_ = 0;
    ++epoch_;
  }
  return examples_[order_[cursor_++]];
}

Status Finetuner::begin_sequence() {
  if (batch_done_ == batch_take_) {
    // A step takes batch_size sequences, fewer at the end of an epoch.
    if (cursor_ == order_.size()) {
      next_example();
      --cursor_;
    }
    batch_take_ = std::min<size_t>(static_cast<size_t>(options_.batch_size), order_.size() - cursor_);
    batch_done_ = 0;
    batch_ = {};
    batch_loss_ = 0;
  }
  WEFT_ASSIGN_OR_RETURN(TrainingPass pass, TrainingPass::start(*model_, adapter_, next_example(), *team_));
  pass_.emplace(std::move(pass));
  return Status::ok();
}

std::optional<StepReport> Finetuner::end_sequence() {
  batch_loss_ += pass_->loss_sum();
  batch_.tokens += pass_->loss_tokens();
  batch_.sequence_tokens += pass_->tokens();
  pass_.reset();
  if (++batch_done_ < batch_take_) return std::nullopt;
  StepReport r = batch_;
  r.grad_norm = optimizer_->step(adapter_, grads_, r.tokens);
  r.loss = batch_loss_ / std::max(1, r.tokens);
  r.step = ++step_;
  r.epoch = epoch_;
  return r;
}

void PieceCost::observe(double units, double ns) {
  const double w = samples_ == 0 ? 1.0 : 0.2;
  n_ += w * (units - n_);
  t_ += w * (ns - t_);
  nn_ += w * (units * units - nn_);
  nt_ += w * (units * ns - nt_);
  ++samples_;
}

double PieceCost::predict(double units) const {
  const double var = nn_ - n_ * n_;
  double per = n_ > 0 ? t_ / n_ : 0, fixed = 0;
  if (var > 1e-9 * std::max(1.0, nn_)) {  // pieces of several sizes: fixed + per-unit
    const double slope = (nt_ - n_ * t_) / var;
    if (slope >= 0 && t_ - slope * n_ >= 0) {
      per = slope;
      fixed = t_ - slope * n_;
    }
  }
  return fixed + per * units;
}

int PieceCost::units_within(double ns, int most) const {
  if (predict(1) > ns) return 0;
  int lo = 1, hi = most;  // the largest count that fits (predict grows with units)
  while (lo < hi) {
    const int mid = lo + (hi - lo + 1) / 2;
    if (predict(mid) <= ns) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

Result<WorkSlice> Finetuner::work(int64_t budget_ns, bool at_least_one) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  WorkSlice w;
  auto spent = [&] { return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count(); };
  while (!done() && !w.step) {
    if (!pass_) WEFT_RETURN_IF_ERROR(begin_sequence());
    TrainingPass& p = *pass_;
    const double left = static_cast<double>(budget_ns - spent());
    const bool must = at_least_one && w.pieces == 0;  // the smallest piece, fitting or not
    const auto piece = Clock::now();
    if (!p.forward_done()) {
      // A chunk of tokens through as many layers as fit; a new chunk as long as fits one layer.
      int n = p.chunk_tokens();
      if (n == 0) {
        n = std::min(options_.chunk_tokens, p.tokens() - p.forwarded());
        if (forward_cost_.known()) n = std::min(n, forward_cost_.units_within(left, n));
        if (n < 1 && !must) break;
        n = std::max(n, 1);
      }
      int k = fitting(left, forward_cost_.known() ? forward_cost_.predict(n) : 0, p.layers() - p.chunk_layers());
      if (k < 1 && !must) break;
      k = std::max(k, 1);
      const int before = p.forwarded();
      WEFT_RETURN_IF_ERROR(p.forward(n, k));
      forward_cost_.observe(n, static_cast<double>(spent_since(piece)) / k);
      w.forward_tokens += p.forwarded() - before;
      if (p.forward_done() && p.saved_bytes() > peak_saved_) {
        peak_saved_ = p.saved_bytes();
        peak_all_ = p.all_activation_bytes();
        peak_tokens_ = p.tokens();
      }
    } else if (p.output_left() > 0) {
      int m = output_cost_.known() ? output_cost_.units_within(left, p.output_left()) : 1;
      if (m < 1 && !must) break;
      m = std::max(m, 1);
      WEFT_RETURN_IF_ERROR(p.output(m));
      output_cost_.observe(m, static_cast<double>(spent_since(piece)));
    } else {
      const int tokens = p.tokens();
      int k = fitting(left, backward_cost_.known() ? backward_cost_.predict(tokens) : 0, p.layers() - p.backwarded());
      if (k < 1 && !must) break;
      k = std::max(k, 1);
      WEFT_RETURN_IF_ERROR(p.backward(k, grads_));
      backward_cost_.observe(tokens, static_cast<double>(spent_since(piece)) / k);
      if (p.done()) w.step = end_sequence();
    }
    ++w.pieces;
  }
  w.ns = spent();
  return w;
}

Result<StepReport> Finetuner::step() {
  if (done()) return Status::failed_precondition("the run is done");
  for (;;) {
    WEFT_ASSIGN_OR_RETURN(WorkSlice w, work(std::numeric_limits<int64_t>::max() / 2, true));
    if (w.step) return *w.step;
  }
}

}  // namespace weft::finetune
