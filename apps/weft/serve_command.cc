#include "apps/weft/serve_command.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "apps/weft/cli_args.h"
#include "apps/weft/model_path.h"
#include "serving/http_server.h"
#include "serving/service.h"
#include "weft/weft.h"

namespace weft::cli {
namespace {

constexpr const char* kHelp =
    "usage: weft serve [options]\n"
    "  --model default|PATH        GGUF model (default: SmolLM2-135M-Instruct from scripts/setup)\n"
    "  --host ADDR                 address to bind (default 127.0.0.1)\n"
    "  --port N                    port (default 8000; 0: any free port)\n"
    "  --threads N                 runtime worker threads, which also run the model (default: one per core)\n"
    "  --device cpu|cuda           where the model computes (default cpu; cuda: the first GPU)\n"
    "  --max-num-seqs N            requests computed at once (default 64)\n"
    "  --max-num-batched-tokens N  tokens per iteration (default 512)\n"
    "  --kv-cache-memory MIB       KV cache size in MiB (default 256)\n"
    "  --max-waiting N             requests in flight before 429 (default 1024)\n"
    "  --served-model-name NAME    the model's name in the API (default: the file's name)\n"
    "  --speculate METHOD          speculative decoding, output unchanged (default off):\n"
    "                                suffix  SuffixDecoding over prompts and earlier outputs\n"
    "                                draft   a draft model's token trees (--draft-model, --draft-layers)\n"
    "                                merged  both in one tree\n"
    "  --speculate-max-nodes N     tree nodes per request and step at most (default 16)\n"
    "  --speculate-policy P        slo: AdaServe, each request's tree sized by its TPOT target, then the\n"
    "                              nodes that pay (default); cost: only the nodes that pay for themselves\n"
    "                              on this machine; every: every proposed node (cheap verification)\n"
    "  --scheduling-policy P       slo: by class, then deadline, each step sized to keep decoding requests\n"
    "                              on their TPOT targets (default); priority: by class, then arrival;\n"
    "                              fcfs: by arrival\n"
    "  --slo-ttft-ms A,B,C         default TTFT targets of latency-critical, standard and batch requests\n"
    "                              (default 250,2000,30000); a request may name its own (ttft_ms)\n"
    "  --slo-tpot-ms A,B,C         default TPOT targets by class (default 50,200,1000; tpot_ms)\n"
    "  --draft-model PATH          the draft's GGUF, same vocabulary (default: the model itself)\n"
    "  --draft-layers N            the draft keeps its first N layers (the model's own: self-speculation)\n"
    "  --draft-expansion LIST      the draft's children per node by depth (default 1,1,3,1,1,1,1,1)\n"
    "  --lora NAME=PATH            serve a LoRA adapter (a PEFT directory or a GGUF adapter) as the model\n"
    "                              NAME; repeatable. More load and unload at run time through\n"
    "                              POST /v1/load_lora_adapter and /v1/unload_lora_adapter\n"
    "  --finetune-dir DIR          save adapters of finetuning jobs (POST /v1/fine_tuning/jobs, co-served\n"
    "                              with inference) in DIR/<job id>; they are served either way\n"
    "  --finetune-sharing MODE     co: finetuning takes what each iteration's inference leaves (default);\n"
    "                              temporal, spatial: the baselines (iterations alternate; cores split,\n"
    "                              --finetune-threads for finetuning, --threads for inference)\n"
    "  --finetune-threads N        finetuning's threads with spatial sharing (default 1)\n"
    "  --api-key KEY               require 'Authorization: Bearer KEY' on /v1/* (or $WEFT_API_KEY)\n";

// "A,B,C": one positive figure in milliseconds per SLO class.
Result<std::vector<double>> per_class_ms(const std::string& flag, const std::string& list) {
  std::vector<double> out;
  for (size_t at = 0; at <= list.size() && out.size() <= kNumSloClasses;) {
    const size_t comma = std::min(list.find(',', at), list.size());
    const std::string item = list.substr(at, comma - at);
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (item.empty() || *end != '\0' || !(v > 0) || v > 3.6e6) break;
    out.push_back(v);
    at = comma + 1;
  }
  if (out.size() != kNumSloClasses) {
    return Status::invalid_argument("--" + flag +
                                    " takes three targets in milliseconds (latency-critical, standard, batch), "
                                    "each > 0, comma-separated (50,200,1000)");
  }
  return out;
}

Status run(const Args& a) {
  WEFT_ASSIGN_OR_RETURN(std::string path, resolve_model_path(a.get("model", "default")));
  WEFT_ASSIGN_OR_RETURN(int threads, a.get_int("threads", 0));
  WEFT_ASSIGN_OR_RETURN(int port, a.get_int("port", 8000));
  WEFT_ASSIGN_OR_RETURN(int max_seqs, a.get_int("max-num-seqs", 64));
  WEFT_ASSIGN_OR_RETURN(int max_tokens, a.get_int("max-num-batched-tokens", 512));
  WEFT_ASSIGN_OR_RETURN(int kv_mib, a.get_int("kv-cache-memory", 256));
  WEFT_ASSIGN_OR_RETURN(int max_waiting, a.get_int("max-waiting", 1024));
  if (port < 0 || port > 65535) return Status::invalid_argument("--port must be 0..65535");
  if (max_seqs < 1 || max_tokens < 1 || kv_mib < 1 || max_waiting < 1 || threads < 0) {
    return Status::invalid_argument(
        "--max-num-seqs, --max-num-batched-tokens, --kv-cache-memory and --max-waiting must be >= 1");
  }
  // The server's engine, its actors and its tasks live in this process with the model it loaded,
  // on the embedded runtime, also when a cluster runs it as a job (whose node $WEFT_ADDRESS names).
  unsetenv("WEFT_ADDRESS");
  WEFT_RETURN_IF_ERROR(weft::init({.num_workers = threads}));
  serving::ServiceOptions so;
  so.model_path = path;
  so.served_model_name = a.get("served-model-name", "");
  serving::SpeculationConfig& spec = so.speculation;
  spec.method = a.get("speculate", "off");
  if (spec.method != "suffix" && spec.method != "draft" && spec.method != "merged" && spec.method != "off") {
    return Status::invalid_argument("--speculate takes suffix, draft, merged or off");
  }
  WEFT_ASSIGN_OR_RETURN(spec.max_nodes, a.get_int("speculate-max-nodes", 16));
  spec.policy = a.get("speculate-policy", "slo");
  if (spec.policy != "slo" && spec.policy != "cost" && spec.policy != "every") {
    return Status::invalid_argument("--speculate-policy takes slo, cost or every");
  }
  const std::string scheduling = a.get("scheduling-policy", "slo");
  if (scheduling == "slo") {
    so.engine.scheduler.policy = serving::SchedulePolicy::kSlo;
  } else if (scheduling == "priority") {
    so.engine.scheduler.policy = serving::SchedulePolicy::kPriority;
  } else if (scheduling == "fcfs") {
    so.engine.scheduler.policy = serving::SchedulePolicy::kFcfs;
  } else {
    return Status::invalid_argument("--scheduling-policy takes slo, priority or fcfs");
  }
  for (const char* flag : {"slo-ttft-ms", "slo-tpot-ms"}) {
    if (!a.has(flag)) continue;
    WEFT_ASSIGN_OR_RETURN(std::vector<double> ms, per_class_ms(flag, a.get(flag, "")));
    for (size_t k = 0; k < ms.size(); ++k) {
      auto& t = so.engine.scheduler.default_targets[k];
      (std::string(flag) == "slo-ttft-ms" ? t.ttft_ns : t.tpot_ns) = static_cast<int64_t>(ms[k] * 1e6);
    }
  }
  WEFT_ASSIGN_OR_RETURN(spec.draft_layers, a.get_int("draft-layers", 0));
  if (spec.max_nodes < 1 || spec.max_nodes > 64) return Status::invalid_argument("--speculate-max-nodes must be 1..64");
  if (spec.draft_layers < 0) return Status::invalid_argument("--draft-layers must be >= 0");
  if (a.has("draft-model")) {
    WEFT_ASSIGN_OR_RETURN(spec.draft_model, resolve_model_path(a.get("draft-model", "")));
  }
  if (a.has("draft-expansion")) {
    const std::string list = a.get("draft-expansion", "");
    for (size_t at = 0; at <= list.size();) {
      const size_t comma = std::min(list.find(',', at), list.size());
      const std::string item = list.substr(at, comma - at);
      char* end = nullptr;
      const long width = std::strtol(item.c_str(), &end, 10);
      if (item.empty() || *end != '\0' || width < 1 || width > 16 || spec.expansion.size() >= 16) {
        return Status::invalid_argument("--draft-expansion takes up to 16 widths of 1..16, comma-separated (1,1,3,1)");
      }
      spec.expansion.push_back(static_cast<int>(width));
      at = comma + 1;
    }
  }
  if ((spec.method == "draft" || spec.method == "merged") && spec.draft_model.empty() && spec.draft_layers == 0) {
    return Status::invalid_argument("--speculate " + spec.method + " needs --draft-model PATH or --draft-layers N");
  }
  for (const std::string& lora : a.all("lora")) {
    const size_t eq = lora.find('=');
    if (eq == 0 || eq == std::string::npos || eq + 1 == lora.size()) {
      return Status::invalid_argument("--lora takes NAME=PATH (a PEFT directory or a GGUF adapter file)");
    }
    so.lora_adapters.emplace_back(lora.substr(0, eq), lora.substr(eq + 1));
  }
  so.finetune_dir = a.get("finetune-dir", "");
  const std::string sharing = a.get("finetune-sharing", "co");
  if (sharing == "co" || sharing == "temporal" || sharing == "spatial") {
    so.finetune_sharing = sharing == "co" ? 0 : sharing == "temporal" ? 1 : 2;
  } else {
    return Status::invalid_argument("--finetune-sharing takes co, temporal or spatial");
  }
  WEFT_ASSIGN_OR_RETURN(so.finetune_threads, a.get_int("finetune-threads", 1));
  if (so.finetune_threads < 1) return Status::invalid_argument("--finetune-threads must be >= 1");
  so.progress = true;
  so.device = a.get("device", "cpu");
  WEFT_RETURN_IF_ERROR(kernels::parse_device(so.device).status());
  so.max_waiting = max_waiting;
  so.engine.scheduler.max_num_seqs = max_seqs;
  so.engine.scheduler.max_num_batched_tokens = max_tokens;
  // KV bytes per token, from the model's shape: layers x 2 (K and V) x kv_dim x 2 bytes (fp16).
  {
    WEFT_ASSIGN_OR_RETURN(llm::GgufFile f, llm::GgufFile::open(path));
    WEFT_ASSIGN_OR_RETURN(llm::ModelConfig c, llm::ModelConfig::from_gguf(f));
    const double per_token = static_cast<double>(c.n_layers) * 2 * c.kv_dim() * 2;
    so.engine.kv_cache_tokens = std::max(64, static_cast<int>(kv_mib * 1048576.0 / per_token));
  }
  auto service = serving::Service::start(so);
  if (!service.ok()) {
    (void)weft::shutdown();
    return service.status();
  }
  serving::HttpOptions ho;
  ho.host = a.get("host", "127.0.0.1");
  ho.port = port;
  const char* env_key = std::getenv("WEFT_API_KEY");
  ho.api_key = a.get("api-key", env_key != nullptr ? env_key : "");
  ho.handle_signals = true;
  {
    serving::HttpServer server(**service, ho);
    if (Status s = server.listen(); !s.is_ok()) {
      service->reset();
      (void)weft::shutdown();
      return s;
    }
    std::printf("weft serving %s at http://%s:%d/  (OpenAI API under /v1; Ctrl-C stops)\n",
                (*service)->model_name().c_str(), ho.host.c_str(), server.port());
    std::fflush(stdout);
    server.run();
  }
  service->reset();
  return weft::shutdown();
}

}  // namespace

int serve_command(int argc, char** argv) {
  auto a = Args::parse(argc, argv,
                       {"model",
                        "host",
                        "port",
                        "threads",
                        "max-num-seqs",
                        "max-num-batched-tokens",
                        "kv-cache-memory",
                        "speculate",
                        "speculate-max-nodes",
                        "speculate-policy",
                        "draft-model",
                        "draft-layers",
                        "draft-expansion",
                        "max-waiting",
                        "served-model-name",
                        "api-key",
                        "device",
                        "slo-ttft-ms",
                        "slo-tpot-ms",
                        "scheduling-policy",
                        "lora",
                        "finetune-dir",
                        "finetune-sharing",
                        "finetune-threads"},
                       {"help"});
  if (!a.ok()) {
    std::fprintf(stderr, "weft serve: %s\n%s", a.status().message().c_str(), kHelp);
    return 2;
  }
  if (a->has("help")) {
    std::printf("%s", kHelp);
    return 0;
  }
  if (Status s = run(*a); !s.is_ok()) {
    std::fprintf(stderr, "weft serve: %s\n", s.message().c_str());
    return 1;
  }
  return 0;
}

}  // namespace weft::cli
