#include "serving/finetune_jobs.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>

#include <fmt/format.h>

#include "finetune/dataset.h"

namespace weft::serving {
namespace {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// An id no other server run hands out: a prefix, then 24 random hex digits.
std::string new_id(const char* prefix) {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}());
  std::lock_guard<std::mutex> lock(mu);
  return fmt::format("{}-{:012x}{:012x}", prefix, rng() & 0xffffffffffffULL, rng() & 0xffffffffffffULL);
}

constexpr size_t kMaxFileBytes = 64u << 20;

}  // namespace

FinetuneJobs::FinetuneJobs(std::string base_model, const llm::Tokenizer& tokenizer, const llm::ChatTemplate* chat,
                           int max_tokens, std::string output_root)
    : base_model_(std::move(base_model)),
      tok_(&tokenizer),
      chat_(chat),
      max_tokens_(max_tokens),
      output_root_(std::move(output_root)) {}

Result<TrainingFile> FinetuneJobs::add_file(std::string filename, std::string purpose, std::string content) {
  if (purpose != "fine-tune") {
    return Status::invalid_argument(fmt::format("purpose '{}' is not supported; use 'fine-tune'", purpose));
  }
  if (content.empty()) return Status::invalid_argument("the file is empty");
  std::lock_guard<std::mutex> lock(mu_);
  size_t total = content.size();
  for (const auto& [id, f] : files_) total += f.content.size();
  if (total > kMaxFileBytes) {
    return Status::resource_exhausted(
        fmt::format("the server holds at most {} MiB of training files; delete some first", kMaxFileBytes >> 20));
  }
  TrainingFile f{new_id("file"), std::move(filename), std::move(purpose), static_cast<int64_t>(content.size()),
                 unix_now(),     std::move(content)};
  files_[f.id] = f;
  return f;
}

std::vector<TrainingFile> FinetuneJobs::files() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<TrainingFile> out;
  for (const auto& [id, f] : files_) {
    out.push_back(f);
    out.back().content.clear();
  }
  std::stable_sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.created_at < b.created_at; });
  return out;
}

Result<TrainingFile> FinetuneJobs::file(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(id);
  if (it == files_.end()) return Status::not_found(fmt::format("no file '{}'", id));
  TrainingFile f = it->second;
  f.content.clear();
  return f;
}

Status FinetuneJobs::delete_file(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (files_.erase(id) == 0) return Status::not_found(fmt::format("no file '{}'", id));
  return Status::ok();
}

Result<FinetuneJobSpec> FinetuneJobs::prepare(const JobRequest& r) const {
  if (!r.model.empty() && r.model != base_model_) {
    return Status::not_found(fmt::format("model '{}' is not this server's base model '{}'", r.model, base_model_));
  }
  if (r.epochs < 1 || r.epochs > 1000 || r.batch_size < 1 || r.batch_size > 4096) {
    return Status::invalid_argument("n_epochs must be 1..1000 and batch_size 1..4096");
  }
  if (!(r.learning_rate > 0) || r.learning_rate > 1)
    return Status::invalid_argument("the learning rate must be in (0, 1]");
  if (r.rank < 1 || r.rank > 1024 || !(r.alpha > 0) || r.targets.empty()) {
    return Status::invalid_argument("the LoRA rank must be 1..1024, alpha > 0, and some target module named");
  }
  if (r.suffix.size() > 64 || r.suffix.find_first_of(": /\\") != std::string::npos) {
    return Status::invalid_argument("the suffix is up to 64 characters without ':', '/', '\\\\' or spaces");
  }
  std::string content;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(r.training_file);
    if (it == files_.end()) return Status::not_found(fmt::format("no file '{}'", r.training_file));
    content = it->second.content;
  }
  finetune::Dataset d = finetune::read_dataset(content, *tok_, chat_, max_tokens_);
  if (!d.errors.empty()) {
    std::string lines;
    for (size_t i = 0; i < d.errors.size() && i < 5; ++i) {
      lines += fmt::format("{}line {}: {}", i ? "; " : "", d.errors[i].line, d.errors[i].message);
    }
    if (d.errors.size() > 5) lines += fmt::format("; and {} more", d.errors.size() - 5);
    return Status::invalid_argument(fmt::format("the training file has {} bad line(s): {}", d.errors.size(), lines));
  }
  if (d.examples.empty()) return Status::invalid_argument("the training file has no examples");
  FinetuneJobSpec s;
  s.id = new_id("ftjob");
  s.model_name = fmt::format("ft:{}:{}{}{}", base_model_, r.suffix, r.suffix.empty() ? "" : ":", s.id.substr(6, 8));
  for (finetune::TrainingExample& e : d.examples) {
    s.tokens.push_back(std::move(e.tokens));
    s.trained.push_back(std::move(e.trained));
  }
  s.rank = r.rank;
  s.alpha = r.alpha;
  s.rslora = r.rslora;
  s.targets.clear();
  for (llm::LoraTarget t : r.targets) s.targets.push_back(static_cast<uint8_t>(t));
  s.optimizer = r.optimizer;
  s.lr = r.learning_rate;
  s.momentum = r.momentum;
  s.weight_decay = r.weight_decay;
  s.max_grad_norm = r.max_grad_norm;
  s.epochs = r.epochs;
  s.batch_size = r.batch_size;
  s.seed = r.seed;
  if (!output_root_.empty()) s.output_dir = (std::filesystem::path(output_root_) / s.id).string();
  return s;
}

void FinetuneJobs::record(const FinetuneJobSpec& spec, const JobRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  JobRecord& j = jobs_[spec.id];
  j.id = spec.id;
  j.request = request;
  j.fine_tuned_model = spec.model_name;
  j.created_at = unix_now();
  j.events.push_back({j.created_at, "Job queued", false, 0, 0, 0});
}

void FinetuneJobs::apply(const std::vector<FinetuneEvent>& events) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const FinetuneEvent& e : events) {
    auto it = jobs_.find(e.id);
    if (it == jobs_.end()) continue;
    JobRecord& j = it->second;
    if (j.finished_at > 0) continue;  // over: later news (from a slice that ran meanwhile) changes nothing
    const auto status = static_cast<JobStatus>(e.status);
    const int64_t now = unix_now();
    if (e.total_steps > 0) j.total_steps = e.total_steps;
    if (e.trained_tokens > 0) j.trained_tokens = e.trained_tokens;
    if (e.step > 0 && status == JobStatus::kRunning) {
      j.step = e.step;
      j.events.push_back({now, fmt::format("Step {}/{}: training loss={:.4f}", e.step, j.total_steps, e.loss), true,
                          e.step, j.total_steps, e.loss});
    }
    if (status == j.status) continue;
    j.status = status;
    switch (status) {
      case JobStatus::kRunning:
        j.events.push_back({now, "Fine-tuning job started", false, 0, 0, 0});
        break;
      case JobStatus::kSucceeded:
        j.step = j.total_steps;
        j.events.push_back({now, "The job has successfully completed; serving " + j.fine_tuned_model, false, 0, 0, 0});
        break;
      case JobStatus::kFailed:
        j.error = e.error;
        j.events.push_back({now, "The job failed: " + e.error, false, 0, 0, 0});
        break;
      case JobStatus::kCancelled:
        j.events.push_back({now, "The job was cancelled", false, 0, 0, 0});
        break;
      case JobStatus::kQueued:
        break;
    }
    if (status == JobStatus::kSucceeded || status == JobStatus::kFailed || status == JobStatus::kCancelled) {
      j.finished_at = now;
    }
  }
}

std::vector<JobRecord> FinetuneJobs::jobs() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<JobRecord> out;
  for (const auto& [id, j] : jobs_) out.push_back(j);
  std::stable_sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.created_at < b.created_at; });
  return out;
}

Result<JobRecord> FinetuneJobs::job(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return Status::not_found(fmt::format("no fine-tuning job '{}'", id));
  return it->second;
}

}  // namespace weft::serving
