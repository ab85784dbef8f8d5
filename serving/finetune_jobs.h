// The server's side of co-served finetuning, as OpenAI's fine-tuning API sees it: uploaded
// training files, jobs (validated and tokenised here, trained inside the engine's iterations by
// CoFinetuning) and their events, kept from the engine's news (FinetuneSlice::events).
//
//   FinetuneJobs jobs("SmolLM2", tokenizer, &chat, 4096, "");
//   WEFT_ASSIGN_OR_RETURN(TrainingFile f, jobs.add_file("data.jsonl", "fine-tune", text));
//   WEFT_ASSIGN_OR_RETURN(FinetuneJobSpec spec, jobs.prepare({.training_file = f.id}));
//   ... the engine accepts spec ...
//   jobs.record(spec, request);
//   jobs.apply(slice.events);  // after every finetuning slice
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "llm/chat_template.h"
#include "llm/lora_adapter.h"
#include "llm/tokenizer.h"
#include "serving/engine_types.h"
#include "weft/status.h"

namespace weft::serving {

struct TrainingFile {
  std::string id;  // "file-..."
  std::string filename, purpose;
  int64_t bytes = 0, created_at = 0;  // Unix seconds
  std::string content;
};

// A job as the API asks for it (OpenAI's fields, and LoRA's).
struct JobRequest {
  std::string model;  // empty or the base model's name
  std::string training_file;
  std::string suffix;
  int epochs = 3;
  int batch_size = 4;
  float learning_rate = 2e-4f;  // absolute; OpenAI's learning_rate_multiplier scales the default
  int rank = 8;
  float alpha = 16;
  bool rslora = false;
  std::vector<llm::LoraTarget> targets = {llm::LoraTarget::kQ, llm::LoraTarget::kV};
  uint8_t optimizer = 0;  // finetune::OptimizerKind
  float momentum = 0, weight_decay = 0, max_grad_norm = 1;
  uint64_t seed = 0;
};

struct JobEvent {
  int64_t created_at = 0;  // Unix seconds
  std::string message;
  bool metrics = false;  // a training step (step, loss set)
  int step = 0, total_steps = 0;
  double loss = 0;
};

struct JobRecord {
  std::string id;  // "ftjob-..."
  JobRequest request;
  std::string fine_tuned_model;  // the adapter's model name (served once it succeeds)
  JobStatus status = JobStatus::kQueued;
  int64_t created_at = 0, finished_at = 0;
  int step = 0, total_steps = 0;
  int64_t trained_tokens = 0;
  std::string error;
  std::vector<JobEvent> events;  // oldest first
};

class FinetuneJobs {
 public:
  // `max_tokens`: the longest training sequence; `output_root`: finished adapters are saved in
  // OUTPUT_ROOT/<job id> (PEFT and adapter.gguf), or nowhere when empty.
  FinetuneJobs(std::string base_model, const llm::Tokenizer& tokenizer, const llm::ChatTemplate* chat, int max_tokens,
               std::string output_root);

  // kInvalidArgument for a purpose other than "fine-tune" or an empty file.
  Result<TrainingFile> add_file(std::string filename, std::string purpose, std::string content);
  std::vector<TrainingFile> files() const;  // without content, oldest first
  Result<TrainingFile> file(const std::string& id) const;
  Status delete_file(const std::string& id);

  // Checks and tokenises a job: kNotFound for an unknown training file or model, kInvalidArgument
  // for bad settings or data (naming the first bad lines). The spec goes to the engine.
  Result<FinetuneJobSpec> prepare(const JobRequest& request) const;
  // Records a job the engine accepted.
  void record(const FinetuneJobSpec& spec, const JobRequest& request);
  // The engine's news.
  void apply(const std::vector<FinetuneEvent>& events);

  std::vector<JobRecord> jobs() const;  // oldest first
  Result<JobRecord> job(const std::string& id) const;

 private:
  std::string base_model_;
  const llm::Tokenizer* tok_;
  const llm::ChatTemplate* chat_;
  int max_tokens_;
  std::string output_root_;
  mutable std::mutex mu_;
  std::map<std::string, TrainingFile> files_;
  std::map<std::string, JobRecord> jobs_;
  uint64_t next_ = 1;
};

}  // namespace weft::serving
