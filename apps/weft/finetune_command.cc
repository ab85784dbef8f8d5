#include "apps/weft/finetune_command.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "apps/weft/cli_args.h"
#include "apps/weft/model_path.h"
#include "finetune/dataset.h"
#include "finetune/finetuner.h"
#include "kernels/cpu/thread_team.h"
#include "llm/chat_template.h"
#include "llm/tokenizer.h"

namespace weft::cli {
namespace {

constexpr const char* kUsage =
    "usage: weft finetune --data FILE.jsonl --out DIR [options]\n"
    "Trains a LoRA adapter on conversations ({\"messages\": [...]}, trained on the assistant turns) or\n"
    "prompt/completion pairs, one JSON object per line, and writes it to DIR as a PEFT adapter\n"
    "(adapter_config.json, adapter_model.safetensors) and as DIR/adapter.gguf (llama.cpp).\n"
    "  --model default|PATH     the base model (default: SmolLM2-135M-Instruct from scripts/setup)\n"
    "  --rank N                 LoRA rank (default 8)\n"
    "  --alpha A                LoRA alpha (default 16); the update is scaled by alpha / rank\n"
    "  --rslora                 scale by alpha / sqrt(rank) instead\n"
    "  --target-modules LIST    of q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj, or all\n"
    "                           (default q_proj,v_proj)\n"
    "  --epochs N               passes over the data (default 3)\n"
    "  --batch-size N           sequences per optimizer step (default 4)\n"
    "  --lr R                   learning rate (default 2e-4)\n"
    "  --optimizer adamw|sgd    (default adamw)\n"
    "  --momentum M             SGD momentum (default 0)\n"
    "  --weight-decay W         (default 0)\n"
    "  --max-grad-norm G        clip the gradients' norm to G (default 1; 0: no clipping)\n"
    "  --max-seq-len N          the longest example in tokens (default 1024)\n"
    "  --seed S                 the adapter's initial values and the data order (default 0)\n"
    "  --threads N              compute threads (default: one per core)\n";

Result<double> positive(const Args& a, const std::string& flag, double fallback, bool zero_ok = false) {
  WEFT_ASSIGN_OR_RETURN(double v, a.get_double(flag, fallback));
  if (!(v > 0 || (zero_ok && v == 0))) return Status::invalid_argument("--" + flag + " must be > 0");
  return v;
}

Status run(const Args& a) {
  if (!a.has("data") || !a.has("out")) return Status::invalid_argument("--data and --out are required");
  finetune::FinetuneOptions o;
  WEFT_ASSIGN_OR_RETURN(o.lora.rank, a.get_int("rank", 8));
  if (o.lora.rank < 1 || o.lora.rank > 1024) return Status::invalid_argument("--rank must be 1..1024");
  WEFT_ASSIGN_OR_RETURN(double alpha, positive(a, "alpha", 16));
  o.lora.alpha = static_cast<float>(alpha);
  o.lora.rslora = a.has("rslora");
  const std::string modules = a.get("target-modules", "q_proj,v_proj");
  o.lora.targets.clear();
  if (modules == "all") {
    for (int t = 0; t < llm::kLoraTargets; ++t) o.lora.targets.push_back(static_cast<llm::LoraTarget>(t));
  } else {
    std::stringstream ss(modules);
    for (std::string item; std::getline(ss, item, ',');) {
      WEFT_ASSIGN_OR_RETURN(llm::LoraTarget t, llm::parse_lora_target(item));
      o.lora.targets.push_back(t);
    }
  }
  WEFT_ASSIGN_OR_RETURN(o.epochs, a.get_int("epochs", 3));
  WEFT_ASSIGN_OR_RETURN(o.batch_size, a.get_int("batch-size", 4));
  WEFT_ASSIGN_OR_RETURN(double lr, positive(a, "lr", 2e-4));
  o.optimizer.lr = static_cast<float>(lr);
  WEFT_ASSIGN_OR_RETURN(o.optimizer.kind, finetune::parse_optimizer(a.get("optimizer", "adamw")));
  WEFT_ASSIGN_OR_RETURN(double momentum, positive(a, "momentum", 0, true));
  WEFT_ASSIGN_OR_RETURN(double decay, positive(a, "weight-decay", 0, true));
  WEFT_ASSIGN_OR_RETURN(double clip, positive(a, "max-grad-norm", 1, true));
  o.optimizer.momentum = static_cast<float>(momentum);
  o.optimizer.weight_decay = static_cast<float>(decay);
  o.optimizer.max_grad_norm = static_cast<float>(clip);
  WEFT_ASSIGN_OR_RETURN(int max_len, a.get_int("max-seq-len", 1024));
  WEFT_ASSIGN_OR_RETURN(int seed, a.get_int("seed", 0));
  o.seed = static_cast<uint64_t>(seed);
  WEFT_ASSIGN_OR_RETURN(int threads, a.get_int("threads", 0));
  if (o.epochs < 1 || o.batch_size < 1 || max_len < 2 || threads < 0) {
    return Status::invalid_argument("--epochs and --batch-size must be >= 1, --max-seq-len >= 2");
  }

  const std::string data_path = a.get("data", "");
  std::ifstream in(data_path, std::ios::binary);
  if (!in) return Status::not_found(data_path + ": cannot open");
  const std::string jsonl((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  WEFT_ASSIGN_OR_RETURN(std::string model_path, resolve_model_path(a.get("model", "default")));
  auto team = std::make_shared<kernels::cpu::ThreadTeam>(threads);
  llm::ModelOptions mo;
  mo.parallel = team;
  mo.mode = llm::ComputeMode::kReference;  // training reads the weights itself; nothing to pack
  WEFT_ASSIGN_OR_RETURN(std::unique_ptr<llm::LlamaModel> model, llm::LlamaModel::load(model_path, mo));
  WEFT_ASSIGN_OR_RETURN(llm::Tokenizer tok, llm::Tokenizer::from_gguf(model->file()));
  Result<llm::ChatTemplate> chat = llm::ChatTemplate::from_gguf(model->file());
  finetune::Dataset data = finetune::read_dataset(jsonl, tok, chat.ok() ? &*chat : nullptr, max_len);
  for (const finetune::DatasetError& e : data.errors) {
    std::fprintf(stderr, "%s:%d: %s\n", data_path.c_str(), e.line, e.message.c_str());
  }
  if (!data.errors.empty()) {
    return Status::invalid_argument(std::to_string(data.errors.size()) + " bad line(s) in " + data_path +
                                    " (above); nothing was trained");
  }
  const int64_t trained_tokens = data.trained_tokens();
  WEFT_ASSIGN_OR_RETURN(auto run, finetune::Finetuner::create(*model, std::move(data.examples), o, *team));

  const bool tty = isatty(STDERR_FILENO);
  const auto start = std::chrono::steady_clock::now();
  int64_t seen = 0;
  double loss = 0;
  while (!run->done()) {
    WEFT_ASSIGN_OR_RETURN(finetune::StepReport r, run->step());
    seen += r.sequence_tokens;
    loss = r.loss;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const int width = 24, filled = width * r.step / run->total_steps();
    std::fprintf(stderr, "%sstep %d/%d (epoch %d/%d) [%s%s] loss %.4f  grad norm %.3f  %.0f tokens/s%s",
                 tty ? "\r\033[K" : "", r.step, run->total_steps(), r.epoch, o.epochs, std::string(filled, '#').c_str(),
                 std::string(width - filled, ' ').c_str(), r.loss, r.grad_norm, seen / std::max(seconds, 1e-9),
                 tty ? "" : "\n");
    std::fflush(stderr);
  }
  if (tty) std::fprintf(stderr, "\n");
  const std::string out = a.get("out", "");
  const std::string base = std::filesystem::path(model_path).stem().string();
  WEFT_RETURN_IF_ERROR(run->adapter().save_peft(out, model->config(), base));
  WEFT_RETURN_IF_ERROR(
      run->adapter().save_gguf((std::filesystem::path(out) / "adapter.gguf").string(), model->config()));
  const double per_token = run->peak_tokens() > 0 ? 1024.0 * run->peak_tokens() : 1.0;
  std::printf(
      "trained %d steps on %lld tokens; final loss %.4f\n"
      "activations held for the longest sequence (%d tokens): %.1f MiB, %.0f KiB per token (keeping every "
      "intermediate: %.1f MiB, %.0f KiB per token)\n"
      "wrote %s (PEFT) and %s/adapter.gguf (llama.cpp)\n",
      run->steps_done(), static_cast<long long>(trained_tokens * o.epochs), loss, run->peak_tokens(),
      run->peak_saved_bytes() / 1048576.0, run->peak_saved_bytes() / per_token, run->peak_all_bytes() / 1048576.0,
      run->peak_all_bytes() / per_token, out.c_str(), out.c_str());
  return Status::ok();
}

}  // namespace

int finetune_command(int argc, char** argv) {
  auto a = Args::parse(argc, argv,
                       {"data", "out", "model", "rank", "alpha", "target-modules", "epochs", "batch-size", "lr",
                        "optimizer", "momentum", "weight-decay", "max-grad-norm", "max-seq-len", "seed", "threads"},
                       {"rslora", "help"});
  if (!a.ok()) {
    std::fprintf(stderr, "weft finetune: %s\n%s", a.status().message().c_str(), kUsage);
    return 2;
  }
  if (a->has("help")) {
    std::printf("%s", kUsage);
    return 0;
  }
  if (Status s = run(*a); !s.is_ok()) {
    std::fprintf(stderr, "weft finetune: %s\n", s.message().c_str());
    return 1;
  }
  return 0;
}

}  // namespace weft::cli
