// A helper of tests/finetune_gradients_test.py, which checks weft's LoRA gradients and optimizer
// steps against JAX's autograd on the same files:
//
//   finetune_gradients_tool model TYPE ARCH OUT.gguf
//       a tiny random model (2 layers, d 256, 4 heads of 64, 2 KV heads, ffn 512, vocab 64) whose
//       matrices are TYPE (f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q5_k, q6_k)
//   finetune_gradients_tool grads MODEL.gguf ADAPTER_DIR TOKENS TRAINED OUT_DIR
//       TOKENS and TRAINED comma-separated; writes OUT_DIR/grads (a PEFT directory holding
//       d loss_sum / d A, B), OUT_DIR/adamw and OUT_DIR/sgd (the adapter after one step of each,
//       lr 0.01, weight decay 0.1, SGD momentum 0.9, gradient norm clipped to 0.5), and prints the
//       loss sum.
#include <cctype>
#include <cstdio>
#include <sstream>
#include <string>

#include "finetune/optimizer.h"
#include "finetune/training_pass.h"
#include "kernels/cpu/thread_team.h"
#include "llm/random_model_for_test.h"

namespace {

using namespace weft;

std::vector<int32_t> ints(const std::string& list) {
  std::vector<int32_t> out;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(std::stoi(item));
  return out;
}

Status model(const std::string& type, const std::string& arch, const std::string& out) {
  llm::testing::RandomModelSpec s{
      .arch = arch, .layers = 2, .d_model = 256, .heads = 4, .kv_heads = 2, .ffn = 512, .vocab = 64};
  using T = kernels::TensorType;
  bool known = false;
  for (T t : {T::kF32, T::kF16, T::kBF16, T::kQ8_0, T::kQ4_0, T::kQ4_1, T::kQ4_K, T::kQ5_K, T::kQ6_K}) {
    std::string name(kernels::tensor_type_info(t).name);
    for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (name == type) s.matrices = t, known = true;
  }
  if (!known) return Status::invalid_argument("unknown type " + type);
  s.embedding = s.matrices;
  return llm::testing::write_random_model(out, s);
}

Status grads(const std::string& model_path, const std::string& adapter_dir, const std::string& tokens,
             const std::string& trained, const std::string& out) {
  kernels::cpu::ThreadTeam team(2);
  WEFT_ASSIGN_OR_RETURN(auto m, llm::LlamaModel::load(model_path, {.mode = llm::ComputeMode::kReference}));
  WEFT_ASSIGN_OR_RETURN(llm::LoraAdapter adapter, llm::LoraAdapter::load(adapter_dir, m->config()));
  finetune::TrainingExample e{ints(tokens), {}};
  for (int32_t t : ints(trained)) e.trained.push_back(static_cast<uint8_t>(t));
  WEFT_ASSIGN_OR_RETURN(finetune::TrainingPass pass, finetune::TrainingPass::start(*m, adapter, e, team));
  WEFT_RETURN_IF_ERROR(pass.forward(pass.tokens()));
  llm::LoraAdapter g = finetune::zero_gradients(adapter);
  WEFT_RETURN_IF_ERROR(pass.backward(pass.layers(), g));
  WEFT_RETURN_IF_ERROR(g.save_peft(out + "/grads", m->config(), "tiny"));
  for (auto kind : {finetune::OptimizerKind::kAdamW, finetune::OptimizerKind::kSgd}) {
    llm::LoraAdapter a = adapter, gk = g;
    finetune::Optimizer opt({.kind = kind, .lr = 0.01f, .momentum = 0.9f, .weight_decay = 0.1f, .max_grad_norm = 0.5f},
                            a);
    opt.step(a, gk, pass.loss_tokens());
    WEFT_RETURN_IF_ERROR(
        a.save_peft(out + (kind == finetune::OptimizerKind::kAdamW ? "/adamw" : "/sgd"), m->config(), "tiny"));
  }
  std::printf("%.9g\n", pass.loss_sum());
  return Status::ok();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  Status s = Status::invalid_argument("usage: see the top of finetune/gradients_tool.cc");
  if (cmd == "model" && argc == 5) s = model(argv[2], argv[3], argv[4]);
  if (cmd == "grads" && argc == 7) s = grads(argv[2], argv[3], argv[4], argv[5], argv[6]);
  if (!s.is_ok()) {
    std::fprintf(stderr, "%s\n", s.to_string().c_str());
    return 1;
  }
  return 0;
}
