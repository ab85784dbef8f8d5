#include "apps/weft/model_path.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

namespace weft::cli {

Result<std::string> resolve_model_path(const std::string& model) {
  namespace fs = std::filesystem;
  if (model != "default") {
    std::error_code ec;
    if (!fs::exists(model, ec)) return Status::not_found("no model file at '" + model + "'");
    return model;
  }
  std::vector<fs::path> dirs;
  if (const char* env = std::getenv("WEFT_MODELS_DIR")) dirs.emplace_back(env);
  dirs.emplace_back("models");
  dirs.emplace_back(fs::path(WEFT_SOURCE_DIR) / "models");
  char self[4096] = {};
  if (readlink("/proc/self/exe", self, sizeof self - 1) > 0) {
    const fs::path bin = fs::path(self).parent_path();
    dirs.push_back(bin / "models");
    dirs.push_back(bin.parent_path() / "share" / "weft" / "models");  // an installed weft: PREFIX/bin/weft
  }
  for (const auto& d : dirs) {
    std::error_code ec;
    const fs::path p = d / kDefaultModelFile;
    if (fs::exists(p, ec)) return p.string();
  }
  return Status::not_found(std::string("the default model (") + kDefaultModelFile +
                           ") is not in models/: run scripts/setup to fetch it, or pass --model PATH");
}

}  // namespace weft::cli
