#include "apps/weft/cli_args.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace weft::cli {

Result<Args> Args::parse(int argc, char** argv, const std::vector<std::string>& flags,
                         const std::vector<std::string>& switches) {
  Args a;
  for (int i = 0; i < argc; ++i) {
    std::string word = argv[i];
    if (word == "--") {
      for (++i; i < argc; ++i) a.positional_.push_back(argv[i]);
      break;
    }
    if (word.rfind("--", 0) != 0 || word.size() == 2) {
      a.positional_.push_back(word);
      continue;
    }
    std::string name = word.substr(2), value;
    const size_t eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    if (std::find(switches.begin(), switches.end(), name) != switches.end() && !inline_value) {
      a.values_.emplace(name, "1");
    } else if (std::find(flags.begin(), flags.end(), name) != flags.end()) {
      if (!inline_value) {
        if (i + 1 >= argc) return Status::invalid_argument("--" + name + " needs a value");
        value = argv[++i];
      }
      a.values_.emplace(name, value);
    } else {
      return Status::invalid_argument("unknown option --" + name);
    }
  }
  return a;
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  return std::prev(values_.upper_bound(name))->second;  // the last one wins
}

std::vector<std::string> Args::all(const std::string& name) const {
  std::vector<std::string> out;
  for (auto [it, end] = values_.equal_range(name); it != end; ++it) out.push_back(it->second);
  return out;
}

Result<int> Args::get_int(const std::string& name, int fallback) const {
  if (!has(name)) return fallback;
  const std::string v = get(name, "");
  char* stop = nullptr;
  errno = 0;
  const long x = std::strtol(v.c_str(), &stop, 10);
  if (v.empty() || *stop != '\0' || errno != 0 || x < -2147483648L || x > 2147483647L) {
    return Status::invalid_argument("--" + name + " needs an integer (got '" + v + "')");
  }
  return static_cast<int>(x);
}

Result<double> Args::get_double(const std::string& name, double fallback) const {
  if (!has(name)) return fallback;
  const std::string v = get(name, "");
  char* stop = nullptr;
  errno = 0;
  const double x = std::strtod(v.c_str(), &stop);
  if (v.empty() || *stop != '\0' || errno != 0) return Status::invalid_argument("--" + name + " needs a number (got '" + v + "')");
  return x;
}

}  // namespace weft::cli
