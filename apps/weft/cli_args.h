// Command-line flags for the `weft` subcommands: "--name value" pairs, repeatable flags, and the
// positional words left over. Unknown flags and missing or malformed values are errors that name
// the flag.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "weft/status.h"

namespace weft::cli {

class Args {
 public:
  // `flags`: names (without "--") that take a value; `switches`: names that take none.
  static Result<Args> parse(int argc, char** argv, const std::vector<std::string>& flags,
                            const std::vector<std::string>& switches);

  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback) const;
  std::vector<std::string> all(const std::string& name) const;
  Result<int> get_int(const std::string& name, int fallback) const;
  Result<double> get_double(const std::string& name, double fallback) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::multimap<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

}  // namespace weft::cli
