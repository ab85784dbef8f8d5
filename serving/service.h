// The serving front end: text in, streamed text out, with the engine as an actor on the runtime.
//
//   weft::init();
//   WEFT_ASSIGN_OR_RETURN(auto service, Service::start({.model_path = path}));
//   auto id = service->submit(std::move(request), sink);  // sink gets deltas, then one finish
//   ...
//   service->stop();  // before weft::shutdown
//
// The pieces, all on the runtime's workers:
//   - tokenizing: a task per request (chat template, then the tokenizer), at the request's class;
//   - the engine: an actor (EngineActor) owning the model and the KV cache; each iteration is one
//     call, submitted at the class of the most urgent live request by the service's loop thread,
//     which only submits and waits. The model's parallel loops run on the runtime's workers (a
//     weft::ParallelTeam), so there is one set of compute threads;
//   - detokenizing and streaming: calls on a Streamer actor (in order, so each request's text
//     stays in order), which turns token ids into text (stop strings held back and applied),
//     records metrics and calls the request's sink.
// A stop string or a cancellation ends the request in the engine at its next iteration, which
// frees its KV blocks.
//
// Thread safety: submit, cancel, metrics and stop may be called from any thread. Sinks are called
// from worker threads, one call at a time per request, never after on_finish.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "llm/chat_template.h"
#include "llm/gguf_file.h"
#include "llm/text_stream.h"
#include "llm/tokenizer.h"
#include "serving/engine.h"
#include "serving/engine_actor.h"
#include "serving/finetune_jobs.h"
#include "serving/metrics.h"
#include "weft/weft.h"

namespace weft::serving {

struct ServiceOptions {
  std::string model_path;
  std::string served_model_name;  // empty: the file's name without .gguf
  int threads = 0;                // compute threads of the model; 0: every runtime worker
  EngineOptions engine;
  int max_waiting = 1024;         // requests accepted and not finished beyond this: kResourceExhausted
  bool progress = false;          // print load progress on stderr
  SpeculationConfig speculation;  // off by default
  std::string device = "cpu";     // where the model computes: cpu or cuda
  // Finetuning jobs' adapters are saved in FINETUNE_DIR/<job id> (PEFT and adapter.gguf); empty:
  // only served.
  std::string finetune_dir;
  uint8_t finetune_sharing = 0;  // FinetuneSharing: co (default), or a baseline (temporal, spatial)
  int finetune_threads = 1;      // spatial sharing's finetuning threads
  // LoRA adapters served from the start, as models of their own: name, then a PEFT directory or a
  // GGUF adapter file.
  std::vector<std::pair<std::string, std::string>> lora_adapters;
};

struct TokenInfo {
  std::string text;  // the token's own text
  float logprob = 0;
  std::vector<std::pair<std::string, float>> top;  // alternatives, most likely first
};

// What a request asks for, before tokenizing.
struct GenerationRequest {
  bool chat = false;
  std::string prompt;                      // completions
  std::vector<llm::ChatMessage> messages;  // chat
  std::vector<std::string> stop;
  RequestSpec spec;  // everything but id, prompt, stop_token_ids and arrival, which the service fills
};

struct Usage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
};

class RequestSink {
 public:
  virtual ~RequestSink() = default;
  // New final text (maybe empty when tokens were held back) and, with logprobs, the new tokens.
  virtual void on_delta(std::string text, std::vector<TokenInfo> tokens) = 0;
  // Exactly once, last. `finish_reason`: "stop", "length", or "error" with `error` set
  // (`error_code` 400 for a request the engine refused, 500 otherwise).
  virtual void on_finish(std::string finish_reason, Usage usage, std::string error, int error_code) = 0;
};

class Service {
 public:
  // Loads the tokenizer and starts the engine actor (which loads the model). Requires a running
  // runtime. kInvalidArgument / kNotFound for a bad model file.
  static Result<std::unique_ptr<Service>> start(const ServiceOptions& options);
  ~Service();

  // Accepts a request: its id, kResourceExhausted when too many are waiting, kUnavailable after
  // stop(). The sink hears about it from then on (a prompt that is too long arrives as on_finish
  // with "error" and code 400).
  Result<uint64_t> submit(GenerationRequest request, std::shared_ptr<RequestSink> sink);
  // Ends a request early (a client that went away): its sink hears nothing more; the engine frees
  // its KV at the next iteration. Unknown ids are ignored.
  void cancel(uint64_t id);

  // Stops accepting; waits up to `drain` for running requests to finish, cancels the rest, stops
  // the loop and the actors. Idempotent.
  void stop(std::chrono::milliseconds drain = std::chrono::milliseconds(0));
  bool accepting() const { return accepting_.load(); }

  // Loads a LoRA adapter (a PEFT directory or a GGUF adapter file) and serves it as the model
  // `name` (GenerationRequest::spec.adapter); `done` hears the outcome once, from the service's
  // loop thread, between iterations: kAlreadyExists, kNotFound, kInvalidArgument or kCorruption
  // naming what is wrong with the file, kUnavailable after stop().
  void load_adapter(std::string name, std::string path, std::function<void(Status)> done);
  // Stops serving an adapter to new requests (running ones finish with it); kNotFound.
  void unload_adapter(std::string name, std::function<void(Status)> done);
  // The adapters served: name -> the path it was loaded from.
  std::map<std::string, std::string> adapters() const;

  // Co-served finetuning (OpenAI's fine-tuning API): training files and jobs' records.
  FinetuneJobs& finetuning() { return *jobs_; }
  // Validates and tokenises a job, then queues it in the engine; `done` hears the job's record (or
  // why not) from the loop thread. The finished adapter is served as its fine_tuned_model.
  void create_finetune_job(JobRequest request, std::function<void(Result<JobRecord>)> done);
  // Ends a queued or running job at once; kFailedPrecondition for one already finished.
  void cancel_finetune_job(std::string id, std::function<void(Result<JobRecord>)> done);

  const std::string& model_name() const { return name_; }
  int context_length() const { return context_length_; }
  const llm::Tokenizer& tokenizer() const { return *tok_; }
  std::string metrics_text() const { return metrics_.render(name_); }
  int in_flight() const;

  // Internal, for the tasks and actors of this service (found by name in this process).
  struct Entry;
  static Service* find(const std::string& key);
  void tokenize(uint64_t id);
  void prepare_job(uint64_t ticket);  // validates and tokenises a job's file, then queues it
  void deliver(const std::vector<TokenEvent>& events);

 private:
  Service() = default;
  void loop();
  void finish_entry(uint64_t id, Entry& e, const std::string& reason, const std::string& error, int code);
  void end_in_engine(uint64_t id);
  // Runs `run` on the loop thread between iterations (or fails it with kUnavailable after stop),
  // then `done` with its outcome.
  void queue_command(std::function<Status()> run, std::function<void(Status)> done);
  // An adapter to load (with a path) or unload, on the engine actor; waits for it.
  Status adapter_command(const std::string& name, const std::string& path);
  // Makes an engine command's call and waits for its reply (a failed call is kInternal).
  Status engine_call(const std::function<ObjectRef<CommandReply>()>& call);

  std::string key_;  // this service's name in the process registry
  std::string name_;
  ServiceOptions options_;
  std::optional<llm::GgufFile> file_;
  std::optional<llm::Tokenizer> tok_;
  std::optional<llm::ChatTemplate> chat_;
  std::vector<int32_t> eog_ids_;
  int context_length_ = 0;
  Metrics metrics_;

  struct Actors;
  std::unique_ptr<Actors> actors_;

  mutable std::mutex mu_;  // guards entries_, inbox_, finish_, live_, commands_, pending_jobs_, adapters_, stopping_,
                           // next_id_ and next_ticket_
  std::condition_variable wake_;
  std::map<uint64_t, std::shared_ptr<Entry>> entries_;
  std::vector<RequestSpec> inbox_;
  std::vector<uint64_t> finish_;
  std::map<uint64_t, Slo> live_;  // requests in the engine, by id: the loop's view for priorities
  struct Command {                // run by the loop between iterations
    std::function<Status()> run;
    std::function<void(Status)> done;
  };
  std::vector<Command> commands_;
  struct PendingJob {  // a job whose file is being read (prepare_job)
    JobRequest request;
    std::function<void(Result<JobRecord>)> done;
  };
  std::map<uint64_t, PendingJob> pending_jobs_;
  uint64_t next_ticket_ = 1;
  std::unique_ptr<FinetuneJobs> jobs_;
  std::map<std::string, std::string> adapters_;  // served adapters: name -> path
  uint64_t next_id_ = 1;
  bool stopping_ = false;
  std::atomic<bool> accepting_{true};
  bool engine_busy_ = false;  // the last iteration left work behind
  bool finetune_pending_ = false;  // a finetuning command's news is yet to collect (loop thread only)
  FinetuneSlice finetune_totals_;  // the last slice's running totals (loop thread only)
  std::thread loop_;
};

}  // namespace weft::serving
