#include "core/logging.h"

#include <cstdlib>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace weft {

std::shared_ptr<spdlog::logger> log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = spdlog::stderr_color_mt("weft");
    l->set_level(spdlog::level::warn);
    l->set_pattern("[%H:%M:%S.%e] [weft] [%^%l%$] %v");
    return l;
  }();
  return logger;
}

Status set_log_level(const std::string& level) {
  std::string name = level;
  if (name.empty()) {
    const char* env = std::getenv("WEFT_LOG_LEVEL");
    name = env != nullptr ? env : "warn";
  }
  auto lvl = spdlog::level::from_str(name);
  if (lvl == spdlog::level::off && name != "off") {
    return Status::invalid_argument("unknown log level '" + name +
                                    "' (use trace, debug, info, warn, error, critical or off)");
  }
  log()->set_level(lvl);
  return Status::ok();
}

}  // namespace weft
