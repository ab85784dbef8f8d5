#include "apps/weft/convert_command.h"

#include <cstdio>
#include <string>

#include "apps/weft/cli_args.h"
#include "apps/weft/model_path.h"
#include "llm/gguf_convert.h"

namespace weft::cli {
namespace {

constexpr const char* kHelp =
    "usage: weft convert --type q8_0|f16|bf16|f32 [--model default|PATH] --out PATH\n"
    "  rewrites the model with its weight matrices in another type (norms and metadata as they are),\n"
    "  e.g. a Q8_0 copy of the default model to serve with the Q4_1 file as its speculative draft\n";

}  // namespace

int convert_command(int argc, char** argv) {
  auto a = Args::parse(argc, argv, {"model", "type", "out"}, {"help"});
  if (!a.ok()) {
    std::fprintf(stderr, "weft convert: %s\n%s", a.status().message().c_str(), kHelp);
    return 2;
  }
  if (a->has("help")) {
    std::printf("%s", kHelp);
    return 0;
  }
  const std::string type = a->get("type", "");
  kernels::TensorType to;
  if (type == "q8_0") {
    to = kernels::TensorType::kQ8_0;
  } else if (type == "f16") {
    to = kernels::TensorType::kF16;
  } else if (type == "bf16") {
    to = kernels::TensorType::kBF16;
  } else if (type == "f32") {
    to = kernels::TensorType::kF32;
  } else {
    std::fprintf(stderr, "weft convert: --type takes q8_0, f16, bf16 or f32\n%s", kHelp);
    return 2;
  }
  if (!a->has("out")) {
    std::fprintf(stderr, "weft convert: --out PATH is required\n%s", kHelp);
    return 2;
  }
  auto path = resolve_model_path(a->get("model", "default"));
  Status s = path.ok() ? Status::ok() : path.status();
  if (s.is_ok()) {
    auto in = llm::GgufFile::open(*path);
    s = in.ok() ? llm::convert_model(*in, to, a->get("out", "")) : in.status();
  }
  if (!s.is_ok()) {
    std::fprintf(stderr, "weft convert: %s\n", s.to_string().c_str());
    return 1;
  }
  std::printf("wrote %s\n", a->get("out", "").c_str());
  return 0;
}

}  // namespace weft::cli
