// OpenAI's fine-tuning API on the wire: file uploads (multipart/form-data), job requests, and the
// JSON of files, jobs and events (FinetuneJobs holds them).
//
//   POST /v1/files                          {"file": ..., "purpose": "fine-tune"} as multipart
//   POST /v1/fine_tuning/jobs               {"training_file", "model", "suffix", "seed",
//                                            "hyperparameters": {"n_epochs", "batch_size",
//                                            "learning_rate_multiplier", and LoRA's: "lora_rank",
//                                            "lora_alpha", "lora_target_modules", "use_rslora",
//                                            "learning_rate", "optimizer", "momentum",
//                                            "weight_decay", "max_grad_norm"}}
//                                           (or the same under "method": {"supervised": ...})
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "serving/finetune_jobs.h"
#include "serving/openai_api.h"

namespace weft::serving {

struct FileUpload {
  std::string filename, purpose, content;
};
// `content_type` is the request's Content-Type (multipart/form-data; boundary=...).
std::variant<FileUpload, ApiError> parse_file_upload(std::string_view body, std::string_view content_type);
std::variant<JobRequest, ApiError> parse_job_request(std::string_view body);

std::string file_json(const TrainingFile& f);
std::string files_body(const std::vector<TrainingFile>& files);
std::string file_deleted_body(const std::string& id);
std::string job_json(const JobRecord& j, const std::string& base_model);
std::string jobs_body(const std::vector<JobRecord>& jobs, const std::string& base_model);
// Newest first, as OpenAI lists them.
std::string events_body(const JobRecord& j);

}  // namespace weft::serving
