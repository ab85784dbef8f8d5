#include "serving/engine.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "weft/detail/runnable.h"

namespace weft::serving {
llm::SamplingParams sampling_params(const RequestSpec& s) {
  return {.temperature = s.temperature,
          .top_k = s.top_k,
          .top_p = s.top_p,
          .min_p = s.min_p,
          .repeat_penalty = s.repeat_penalty,
          .repeat_last_n = s.repeat_last_n,
          .seed = s.seed};
}

namespace {

// log-softmax of the chosen token and the `k` most likely ones.
void log_probs(std::span<const float> logits, int32_t chosen, int k, TokenEvent& e) {
  const float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float x : logits) sum += std::exp(static_cast<double>(x - max));
  const float log_z = max + static_cast<float>(std::log(sum));
  e.logprobs.push_back(logits[static_cast<size_t>(chosen)] - log_z);
  std::vector<TopLogprob> top;
  if (k > 0) {
    std::vector<int32_t> ids(logits.size());
    std::iota(ids.begin(), ids.end(), 0);
    std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                      [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
    for (int j = 0; j < k; ++j) top.push_back({ids[j], logits[static_cast<size_t>(ids[j])] - log_z});
  }
  e.top.push_back(std::move(top));
}

}  // namespace

Engine::Engine(std::shared_ptr<const llm::LlamaModel> model, const EngineOptions& options)
    : model_(std::move(model)),
      options_(options),
      kv_(model_->make_cache(options.kv_cache_tokens, options.scheduler.block_tokens)) {}

std::vector<Engine::Decoding> Engine::decoding() const {
  std::vector<Decoding> out;
  for (const auto& [id, r] : requests_) {
    if (!r.decoding()) continue;
    const int64_t tpot =
        options_.scheduler.targets(static_cast<Slo>(r.spec.slo), r.spec.ttft_ns, r.spec.tpot_ns).tpot_ns;
    out.push_back({id, tpot, r.generated(), r.first_token_ns});
  }
  return out;
}

void Engine::profile(int max_tokens) {
  if (!requests_.empty()) return;
  const int vocab = model_->config().vocab;
  for (int n = 1; n <= max_tokens && n + 1 < options_.kv_cache_tokens; n *= 2) {
    for (int rep = 0; rep < 2; ++rep) {
      const int seq = kv_.add_sequence();
      llm::Batch batch;
      std::vector<int32_t> ids(static_cast<size_t>(n));
      for (int k = 0; k < n; ++k) ids[static_cast<size_t>(k)] = (k * 7919 + 1) % vocab;
      batch.add_chain(seq, 0, ids);
      for (llm::BatchToken& t : batch.tokens) t.layout = llm::SumLayout::kVector;  // as decodes and trees
      const int64_t start = detail::now_ns();
      const bool ok = model_->forward(batch, kv_).ok();
      if (ok && rep == 1) cost_.observe(n, detail::now_ns() - start);
      kv_.remove_sequence(seq);
      if (!ok) return;
    }
  }
}

EngineStats Engine::stats() const {
  EngineStats s;
  for (const auto& [id, r] : requests_) (r.seq >= 0 ? s.running : s.waiting)++;
  const int total = (options_.kv_cache_tokens + kv_.block_tokens() - 1) / kv_.block_tokens();
  s.kv_blocks_total = total;
  s.kv_blocks_used = total - kv_.free_blocks();
  s.preemptions = preemptions_;
  s.prompt_tokens_computed = prompt_tokens_computed_;
  s.draft_tokens = draft_tokens_;
  s.draft_steps = draft_steps_;
  s.accepted_tokens = accepted_tokens_;
  return s;
}

Status Engine::admit(const RequestSpec& spec) {
  const llm::ModelConfig& c = model_->config();
  const int n = static_cast<int>(spec.prompt.size());
  if (requests_.count(spec.id) != 0) return Status::invalid_argument(fmt::format("request id {} is in use", spec.id));
  if (n == 0) return Status::invalid_argument("the prompt is empty");
  if (c.context_length > 0 && n >= c.context_length) {
    return Status::invalid_argument(
        fmt::format("the prompt has {} tokens; the model's context holds {}", n, c.context_length));
  }
  const int blocks_total = (options_.kv_cache_tokens + kv_.block_tokens() - 1) / kv_.block_tokens();
  if ((n + 1 + kv_.block_tokens() - 1) / kv_.block_tokens() > blocks_total) {
    return Status::invalid_argument(
        fmt::format("the prompt has {} tokens; the KV cache holds {}", n, options_.kv_cache_tokens));
  }
  for (int32_t t : spec.prompt) {
    if (t < 0 || t >= c.vocab) return Status::invalid_argument(fmt::format("token id {} is outside the vocabulary", t));
  }
  if (spec.max_tokens < 1) return Status::invalid_argument("max_tokens must be >= 1");
  if (spec.slo >= kNumSloClasses) return Status::invalid_argument("unknown SLO class");
  const llm::SamplingParams sp = sampling_params(spec);
  WEFT_RETURN_IF_ERROR(sp.validate());
  int waiting = 0;
  for (const auto& [id, r] : requests_) waiting += r.seq < 0 ? 1 : 0;
  if (waiting >= options_.max_waiting) return Status::resource_exhausted("the waiting queue is full");
  std::shared_ptr<const llm::LoraAdapter> adapter;
  if (!spec.adapter.empty()) {
    auto it = adapters_.find(spec.adapter);
    if (it == adapters_.end()) return Status::not_found(fmt::format("no LoRA adapter named '{}'", spec.adapter));
    adapter = it->second;
  }
  Request r{spec, llm::Sampler(sp), spec.prompt, n};
  r.adapter = std::move(adapter);
  requests_.emplace(spec.id, std::move(r));
  return Status::ok();
}

Status Engine::add_adapter(const std::string& name, std::shared_ptr<const llm::LoraAdapter> adapter) {
  if (name.empty()) return Status::invalid_argument("an adapter needs a name");
  if (adapters_.count(name) != 0)
    return Status::already_exists(fmt::format("an adapter named '{}' is already loaded", name));
  WEFT_RETURN_IF_ERROR(adapter->check(model_->config()));
  adapters_.emplace(name, std::move(adapter));
  return Status::ok();
}

Status Engine::remove_adapter(const std::string& name) {
  if (adapters_.erase(name) == 0) return Status::not_found(fmt::format("no LoRA adapter named '{}'", name));
  return Status::ok();
}

void Engine::release(Request& r) {
  if (r.seq >= 0) kv_.remove_sequence(r.seq);
  r.seq = -1;
  r.computed = 0;
}

bool Engine::valid_draft(const Request& r, const DraftTree& d) const {
  if (!r.decoding()) return false;
  if (d.tokens.empty() || d.tokens.size() != d.parents.size()) return false;
  if (d.required < 0 || static_cast<size_t>(d.required) > d.tokens.size()) return false;
  const int context = model_->config().context_length;
  if (context > 0 && r.tokens.size() + d.tokens.size() >= static_cast<size_t>(context)) return false;
  const int vocab = model_->config().vocab;
  for (size_t j = 0; j < d.tokens.size(); ++j) {
    if (d.tokens[j] < 0 || d.tokens[j] >= vocab) return false;
    if (d.parents[j] < -1 || d.parents[j] >= static_cast<int32_t>(j)) return false;
  }
  if (!d.drawn_from.empty()) {
    if (d.drawn_from.size() != d.tokens.size()) return false;
    for (int32_t k : d.drawn_from) {
      if (k < -1 || k >= static_cast<int32_t>(d.dists.size())) return false;
    }
  }
  for (const DraftDist& q : d.dists) {
    if (q.ids.size() != q.probs.size()) return false;
    for (size_t i = 0; i < q.ids.size(); ++i) {
      if (q.ids[i] < 0 || q.ids[i] >= vocab || !(q.probs[i] >= 0.0f) || !std::isfinite(q.probs[i])) return false;
    }
  }
  return true;
}

bool Engine::advance(Request& r, int32_t next, std::span<const float> row, TokenEvent& e) {
  const llm::ModelConfig& c = model_->config();
  r.tokens.push_back(next);
  r.last_token_ns = detail::now_ns();
  if (r.first_token_ns == 0) r.first_token_ns = r.last_token_ns;
  e.tokens.push_back(next);
  if (r.spec.top_logprobs >= 0) log_probs(row, next, std::min(r.spec.top_logprobs, c.vocab), e);
  const int generated = r.generated();
  const auto& stop = r.spec.stop_token_ids;
  if (!r.spec.ignore_eos && std::find(stop.begin(), stop.end(), next) != stop.end()) {
    e.finish = static_cast<uint8_t>(Finish::kStop);
  } else if (generated >= r.spec.max_tokens ||
             (c.context_length > 0 && static_cast<int>(r.tokens.size()) >= c.context_length)) {
    e.finish = static_cast<uint8_t>(Finish::kLength);
  }
  return e.finish != 0;
}

StepOutput Engine::step(const StepInput& input) {
  StepOutput out;
  for (uint64_t id : input.finish) {
    auto it = requests_.find(id);
    if (it == requests_.end()) continue;
    release(it->second);
    requests_.erase(it);
  }
  for (const RequestSpec& spec : input.arrivals) {
    if (Status s = admit(spec); !s.is_ok()) {
      TokenEvent e{.id = spec.id, .finish = static_cast<uint8_t>(Finish::kError), .error = s.message()};
      e.prompt_tokens = static_cast<int>(spec.prompt.size());
      out.events.push_back(std::move(e));
    }
  }

  std::map<uint64_t, const DraftTree*> drafts;
  for (const DraftTree& d : input.drafts) {
    auto it = requests_.find(d.id);
    if (it != requests_.end() && valid_draft(it->second, d)) drafts[d.id] = &d;
  }
  std::vector<SeqView> views;
  views.reserve(requests_.size());
  for (const auto& [id, r] : requests_) {
    const int held = r.seq >= 0 ? kv_.capacity(r.seq) / kv_.block_tokens() : 0;
    auto d = drafts.find(id);
    views.push_back({id, static_cast<Slo>(r.spec.slo), r.spec.arrival_ns, r.spec.ttft_ns, r.spec.tpot_ns,
                     r.last_token_ns, r.first_token_ns, r.generated(), static_cast<int>(r.tokens.size()), r.computed,
                     held, r.seq >= 0, d == drafts.end() ? 0 : static_cast<int>(d->second->tokens.size()),
                     d == drafts.end() ? 0 : d->second->required});
  }
  const Plan plan = plan_iteration(views, kv_.free_blocks(), detail::now_ns(), options_.scheduler, &cost_);
  for (uint64_t id : plan.preempted) {
    release(requests_.at(id));
    ++preemptions_;
  }

  llm::Batch batch;
  // Requests whose next token comes from this pass, in logits order: a request's first row is its
  // last known token's, then one per verified tree node.
  struct Sampled {
    Request* r;
    const DraftTree* draft;
    int nodes;  // tree nodes in the batch
  };
  std::vector<Sampled> sampled;
  for (const Plan::Item& item : plan.items) {
    Request& r = requests_.at(item.id);
    if (r.seq < 0) r.seq = kv_.add_sequence();
    const bool last = item.begin + item.count == static_cast<int>(r.tokens.size());
    const size_t first = batch.tokens.size();
    batch.add_chain(r.seq, item.begin,
                    std::vector<int32_t>(r.tokens.begin() + item.begin, r.tokens.begin() + item.begin + item.count),
                    last);
    for (int k = 0; k < item.count; ++k) {
      const bool prompt = item.begin + k < r.prompt_len;
      batch.tokens[first + k].layout = prompt && r.prompt_len > 1 ? llm::SumLayout::kMatrix : llm::SumLayout::kVector;
      if (prompt) ++prompt_tokens_computed_;
    }
    const DraftTree* draft = item.draft > 0 ? drafts.at(item.id) : nullptr;
    if (draft != nullptr) {
      // The tree hangs off the decode token; generated tokens use the vector layout, as decoding.
      const int32_t root = static_cast<int32_t>(batch.tokens.size()) - 1;
      const int32_t base = root + 1;
      for (int j = 0; j < item.draft; ++j) {
        const int32_t parent = draft->parents[static_cast<size_t>(j)] < 0 ? root : base + draft->parents[j];
        batch.tokens.push_back({draft->tokens[static_cast<size_t>(j)], r.seq, batch.tokens[parent].pos + 1, parent,
                                true, llm::SumLayout::kVector});
      }
    }
    if (r.adapter != nullptr) {
      auto at = std::find(batch.adapters.begin(), batch.adapters.end(), r.adapter.get());
      if (at == batch.adapters.end()) at = batch.adapters.insert(at, r.adapter.get());
      const auto index = static_cast<int16_t>(at - batch.adapters.begin());
      for (size_t k = first; k < batch.tokens.size(); ++k) batch.tokens[k].adapter = index;
    }
    if (last) sampled.push_back({&r, draft, item.draft});
  }
  out.tokens = static_cast<int>(batch.tokens.size());
  out.slo = static_cast<uint8_t>(plan.slo);
  if (!batch.tokens.empty()) {
    const int64_t start_ns = detail::now_ns();
    Result<std::vector<float>> logits = model_->forward(batch, kv_);
    cost_.observe(static_cast<int>(batch.tokens.size()), detail::now_ns() - start_ns);
    if (!logits.ok()) {
      // Nothing was committed; the requests of this pass fail with the cause, the others go on.
      for (const Plan::Item& item : plan.items) {
        Request& r = requests_.at(item.id);
        TokenEvent e{.id = item.id, .finish = static_cast<uint8_t>(Finish::kError), .error = logits.status().message()};
        e.prompt_tokens = r.prompt_len;
        out.events.push_back(std::move(e));
        release(r);
        requests_.erase(item.id);
      }
      out.stats = stats();
      return out;
    }
    for (const Plan::Item& item : plan.items) {
      if (item.draft > 0) continue;  // committed after verification
      Request& r = requests_.at(item.id);
      kv_.commit(r.seq, item.count);
      r.computed += item.count;
    }
    const size_t vocab = static_cast<size_t>(model_->config().vocab);
    size_t row = 0;
    for (const Sampled& s : sampled) {
      Request& r = *s.r;
      TokenEvent e{.id = r.spec.id, .prompt_tokens = r.prompt_len, .drafted = s.nodes};
      // Sample at the decode token, then walk down the tree while a child holds the sampled token.
      std::vector<int> branch = {0};  // pending slots to keep: the decode token's, then accepted nodes'
      int node = -1;
      bool done = false;
      for (;;) {
        const std::span<const float> at(logits->data() + (row + static_cast<size_t>(node + 1)) * vocab, vocab);
        const int32_t next = s.draft == nullptr ? r.sampler.sample(at, r.tokens)
                                                : verify_.next(r.sampler, at, r.tokens, *s.draft, s.nodes, node);
        done = advance(r, next, at, e);
        if (done || s.draft == nullptr) break;
        int child = -1;
        for (int j = node + 1; j < s.nodes && child < 0; ++j) {
          if (s.draft->parents[static_cast<size_t>(j)] == node && s.draft->tokens[static_cast<size_t>(j)] == next) {
            child = j;
          }
        }
        if (child < 0) break;
        node = child;
        branch.push_back(1 + child);
      }
      row += 1 + static_cast<size_t>(s.nodes);
      e.accepted = static_cast<int>(branch.size()) - 1;
      draft_tokens_ += s.nodes;
      draft_steps_ += s.nodes > 0 ? 1 : 0;
      accepted_tokens_ += e.accepted;
      if (done) {
        const uint64_t id = r.spec.id;
        release(r);
        requests_.erase(id);
      } else if (s.draft != nullptr) {
        if (Status k = kv_.keep_branch(r.seq, branch); !k.is_ok()) {
          e.finish = static_cast<uint8_t>(Finish::kError);
          e.error = k.message();
          const uint64_t id = r.spec.id;
          release(r);
          requests_.erase(id);
        } else {
          r.computed += static_cast<int>(branch.size());
        }
      }
      out.events.push_back(std::move(e));
    }
  }
  out.stats = stats();
  return out;
}

}  // namespace weft::serving
