// weft's logger: spdlog, one logger named "weft".
//
//   weft::log()->info("started {} workers", n);
//
// The level comes from Options::log_level, else $WEFT_LOG_LEVEL, else "warn". Thread-safe.
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "weft/status.h"

namespace weft {

std::shared_ptr<spdlog::logger> log();
// Sets the level by name; empty uses $WEFT_LOG_LEVEL or "warn".
Status set_log_level(const std::string& level);

}  // namespace weft
