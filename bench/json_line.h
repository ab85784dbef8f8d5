// One benchmark result as one JSON line: {"bench", "unit", "weft", "baseline", "baseline_value",
// "ratio", ...extras}. ratio > 1 means weft is better, whichever way the unit points.
#pragma once

#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace weft::bench {

struct JsonLine {
  std::string bench, unit;
  double weft = 0;
  std::string baseline;
  std::optional<double> baseline_value;
  bool higher_is_better = true;
  std::vector<std::pair<std::string, std::string>> extras;  // key -> raw JSON value

  void print() const {
    std::string out = "{\"bench\": \"" + bench + "\", \"unit\": \"" + unit + "\", \"weft\": " + num(weft) +
                      ", \"baseline\": \"" + baseline + "\", \"baseline_value\": ";
    if (baseline_value && *baseline_value > 0 && weft > 0) {
      double ratio = higher_is_better ? weft / *baseline_value : *baseline_value / weft;
      out += num(*baseline_value) + ", \"ratio\": " + num(ratio);
    } else {
      out += "null, \"ratio\": null";
    }
    for (const auto& [k, v] : extras) out += ", \"" + k + "\": " + v;
    std::printf("%s}\n", out.c_str());
    std::fflush(stdout);
  }
  static std::string num(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, std::fabs(v) >= 100 ? "%.0f" : "%.4g", v);
    return buf;
  }
};

}  // namespace weft::bench
