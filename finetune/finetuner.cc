#include "finetune/finetuner.h"

#include <algorithm>
#include <numeric>
#include <random>

#include <fmt/format.h>

namespace weft::finetune {

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

Result<StepReport> Finetuner::step() {
  if (done()) return Status::failed_precondition("the run is done");
  StepReport r;
  double loss = 0;
  // A step takes batch_size sequences, fewer at the end of an epoch.
  if (cursor_ == order_.size()) next_example(), --cursor_;
  const size_t take = std::min<size_t>(static_cast<size_t>(options_.batch_size), order_.size() - cursor_);
  for (size_t k = 0; k < take; ++k) {
    WEFT_ASSIGN_OR_RETURN(TrainingPass pass, TrainingPass::start(*model_, adapter_, next_example(), *team_));
    while (!pass.forward_done()) WEFT_RETURN_IF_ERROR(pass.forward(options_.chunk_tokens));
    peak_saved_ = std::max(peak_saved_, pass.saved_bytes());
    peak_all_ = std::max(peak_all_, pass.all_activation_bytes());
    WEFT_RETURN_IF_ERROR(pass.backward(pass.layers(), grads_));
    loss += pass.loss_sum();
    r.tokens += pass.loss_tokens();
    r.sequence_tokens += pass.tokens();
  }
  r.grad_norm = optimizer_->step(adapter_, grads_, r.tokens);
  r.loss = loss / std::max(1, r.tokens);
  r.step = ++step_;
  r.epoch = epoch_;
  return r;
}

}  // namespace weft::finetune
