#include "apps/weft/llm_commands.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "apps/weft/cli_args.h"
#include "apps/weft/model_path.h"
#include "llm/chat_template.h"
#include "llm/generator.h"

namespace weft::cli {
namespace {

using llm::GenerateOptions;

constexpr const char* kGenerateUsage =
    "usage: weft generate [--model default|PATH] [options] \"prompt\"\n"
    "       weft chat [--model default|PATH] [--system TEXT] [options]\n"
    "options:\n"
    "  --max-tokens N        tokens to generate at most (default 256)\n"
    "  --temperature T       0 is greedy (default 0 for generate, 0.7 for chat)\n"
    "  --top-k K --top-p P --min-p P --repeat-penalty R --repeat-last-n N --seed S\n"
    "  --stop TEXT           end before TEXT (repeatable)\n"
    "  --threads N           threads for the forward pass (default: all cores)\n"
    "  --device cpu|cuda     where the model computes (default cpu; cuda: the first GPU)\n"
    "  --chat                (generate) wrap the prompt in the model's chat template\n"
    "  --ignore-eos          keep generating past end-of-generation tokens\n"
    "  --lora PATH           through a LoRA adapter (a PEFT directory or a GGUF adapter)\n";

const std::vector<std::string> kFlags = {"model",   "max-tokens",     "temperature",   "top-k", "top-p",
                                         "min-p",   "repeat-penalty", "repeat-last-n", "seed",  "stop",
                                         "threads", "system",         "device",        "lora"};
const std::vector<std::string> kSwitches = {"chat", "ignore-eos", "help", "quiet"};

struct Loaded {
  std::unique_ptr<llm::LlamaModel> model;
  std::unique_ptr<llm::Tokenizer> tokenizer;
  std::unique_ptr<llm::LoraAdapter> adapter;  // with --lora
};

int fail(const Status& s) {
  std::fprintf(stderr, "weft: %s\n", s.to_string().c_str());
  return 1;
}

Result<GenerateOptions> options_from(const Args& a, double default_temperature) {
  GenerateOptions o;
  WEFT_ASSIGN_OR_RETURN(o.max_tokens, a.get_int("max-tokens", 256));
  WEFT_ASSIGN_OR_RETURN(double t, a.get_double("temperature", default_temperature));
  WEFT_ASSIGN_OR_RETURN(o.sampling.top_k, a.get_int("top-k", 0));
  WEFT_ASSIGN_OR_RETURN(double top_p, a.get_double("top-p", 1.0));
  WEFT_ASSIGN_OR_RETURN(double min_p, a.get_double("min-p", 0.0));
  WEFT_ASSIGN_OR_RETURN(double penalty, a.get_double("repeat-penalty", 1.0));
  WEFT_ASSIGN_OR_RETURN(o.sampling.repeat_last_n, a.get_int("repeat-last-n", 64));
  WEFT_ASSIGN_OR_RETURN(double seed, a.get_double("seed", 0));
  o.sampling.temperature = static_cast<float>(t);
  o.sampling.top_p = static_cast<float>(top_p);
  o.sampling.min_p = static_cast<float>(min_p);
  o.sampling.repeat_penalty = static_cast<float>(penalty);
  o.sampling.seed = static_cast<uint64_t>(seed);
  o.stop = a.all("stop");
  o.ignore_eos = a.has("ignore-eos");
  WEFT_RETURN_IF_ERROR(o.validate());
  return o;
}

Result<Loaded> load(const Args& a) {
  WEFT_ASSIGN_OR_RETURN(std::string path, resolve_model_path(a.get("model", "default")));
  llm::ModelOptions mo;
  WEFT_ASSIGN_OR_RETURN(mo.threads, a.get_int("threads", 0));
  WEFT_ASSIGN_OR_RETURN(mo.device, kernels::parse_device(a.get("device", "cpu")));
  const bool progress = isatty(STDERR_FILENO) && !a.has("quiet");
  if (progress) {
    mo.on_progress = [&](double f) {
      std::fprintf(stderr, "\rloading %s: %3d%%", path.c_str(), static_cast<int>(f * 100 + 0.5));
      std::fflush(stderr);
    };
  }
  Loaded l;
  WEFT_ASSIGN_OR_RETURN(l.model, llm::LlamaModel::load(path, mo));
  if (progress) std::fprintf(stderr, "\r\033[K");
  WEFT_ASSIGN_OR_RETURN(llm::Tokenizer tok, llm::Tokenizer::from_gguf(l.model->file()));
  l.tokenizer = std::make_unique<llm::Tokenizer>(std::move(tok));
  if (a.has("lora")) {
    WEFT_ASSIGN_OR_RETURN(llm::LoraAdapter adapter, llm::LoraAdapter::load(a.get("lora", ""), l.model->config()));
    l.adapter = std::make_unique<llm::LoraAdapter>(std::move(adapter));
  }
  return l;
}

bool write_out(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  return true;
}

void report(const llm::Generation& g, double seconds) {
  if (!isatty(STDERR_FILENO)) return;
  std::fprintf(stderr, "\n[%d prompt tokens, %zu generated in %.2f s (%.1f tokens/s), %s]\n", g.prompt_tokens,
               g.tokens.size(), seconds, seconds > 0 ? static_cast<double>(g.tokens.size()) / seconds : 0.0,
               std::string(llm::to_string(g.finish)).c_str());
}

}  // namespace

int generate_command(int argc, char** argv) {
  auto args = Args::parse(argc, argv, kFlags, kSwitches);
  if (!args.ok()) {
    std::fprintf(stderr, "weft generate: %s\n%s", args.status().message().c_str(), kGenerateUsage);
    return 2;
  }
  if (args->has("help") || args->positional().size() != 1) {
    std::fprintf(args->has("help") ? stdout : stderr, "%s", kGenerateUsage);
    return args->has("help") ? 0 : 2;
  }
  auto options = options_from(*args, 0.0);
  if (!options.ok()) return fail(options.status());
  auto loaded = load(*args);
  if (!loaded.ok()) return fail(loaded.status());
  options->adapter = loaded->adapter.get();
  std::string prompt = args->positional()[0];
  if (args->has("chat")) {
    auto tmpl = llm::ChatTemplate::from_gguf(loaded->model->file());
    if (!tmpl.ok()) return fail(tmpl.status());
    auto rendered = tmpl->render({{"user", prompt}});
    if (!rendered.ok()) return fail(rendered.status());
    prompt = *rendered;
  }
  // Special tokens in the prompt are parsed, as llama.cpp does.
  auto ids = loaded->tokenizer->encode(prompt, /*add_special=*/true, /*parse_special=*/true);
  if (!ids.ok()) return fail(ids.status());
  const auto start = std::chrono::steady_clock::now();
  auto g = llm::generate(*loaded->model, *loaded->tokenizer, *ids, *options, write_out);
  if (!g.ok()) return fail(g.status());
  if (!isatty(STDOUT_FILENO)) write_out("\n");
  report(*g, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}

int chat_command(int argc, char** argv) {
  auto args = Args::parse(argc, argv, kFlags, kSwitches);
  if (!args.ok() || !args->positional().empty()) {
    std::fprintf(stderr, "weft chat: %s\n%s", args.ok() ? "takes no positional arguments" : args.status().message().c_str(),
                 kGenerateUsage);
    return 2;
  }
  if (args->has("help")) {
    std::printf("%s", kGenerateUsage);
    return 0;
  }
  auto options = options_from(*args, 0.7);
  if (!options.ok()) return fail(options.status());
  auto loaded = load(*args);
  if (!loaded.ok()) return fail(loaded.status());
  options->adapter = loaded->adapter.get();
  auto tmpl = llm::ChatTemplate::from_gguf(loaded->model->file());
  if (!tmpl.ok()) return fail(tmpl.status());
  std::vector<llm::ChatMessage> messages;
  if (args->has("system")) messages.push_back({"system", args->get("system", "")});
  const bool interactive = isatty(STDIN_FILENO);
  if (interactive) std::fprintf(stderr, "weft chat (%s template): type a message; /reset forgets, Ctrl-D quits\n",
                                std::string(tmpl->name()).c_str());
  std::string line;
  for (;;) {
    if (interactive) std::fprintf(stderr, "> ");
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    if (line == "/reset") {
      messages.resize(args->has("system") ? 1 : 0);
      continue;
    }
    messages.push_back({"user", line});
    auto rendered = tmpl->render(messages);
    if (!rendered.ok()) return fail(rendered.status());
    auto ids = loaded->tokenizer->encode(*rendered, true, true);
    if (!ids.ok()) return fail(ids.status());
    auto g = llm::generate(*loaded->model, *loaded->tokenizer, *ids, *options, write_out);
    if (!g.ok()) {
      // A turn that cannot run (the conversation outgrew the context) is reported, and the chat
      // goes on from a fresh conversation.
      std::fprintf(stderr, "weft: %s (conversation reset)\n", g.status().to_string().c_str());
      messages.resize(args->has("system") ? 1 : 0);
      continue;
    }
    write_out("\n");
    messages.push_back({"assistant", g->text});
  }
  return 0;
}

}  // namespace weft::cli
