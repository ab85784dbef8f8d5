// Reads the flat JSON object a peer script prints ({"key": number, ...}) into a map of numbers.
// Only numeric values are kept; a missing or unreadable file gives an empty map (the benchmark
// then reports weft alone).
#pragma once

#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>

namespace weft::bench {

inline std::map<std::string, double> read_peer_json(const std::string& path) {
  std::map<std::string, double> out;
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string s = ss.str();
  for (size_t pos = s.find('"'); pos != std::string::npos; pos = s.find('"', pos)) {
    const size_t end = s.find('"', pos + 1);
    if (end == std::string::npos) break;
    const std::string key = s.substr(pos + 1, end - pos - 1);
    size_t colon = s.find_first_not_of(" \t\n", end + 1);
    pos = end + 1;
    if (colon == std::string::npos || s[colon] != ':') continue;
    const char* value = s.c_str() + colon + 1;
    char* stop = nullptr;
    const double v = std::strtod(value, &stop);
    if (stop != value) out[key] = v;
  }
  return out;
}

inline std::optional<double> peer(const std::map<std::string, double>& m, const std::string& key) {
  auto it = m.find(key);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

}  // namespace weft::bench
