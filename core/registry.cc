#include "weft/registry.h"

#include <dlfcn.h>

#include <cstdio>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "weft/detail/hooks.h"
#include "weft/errors.h"

namespace weft {

struct Registry::Impl {
  mutable std::shared_mutex mu;  // guards everything below
  std::unordered_map<std::string, std::unique_ptr<RemoteEntry>> by_name;
  std::unordered_map<std::string, const RemoteEntry*> by_key;
  std::vector<std::string> conflicts;
};

Registry& Registry::global() {
  static Registry r;
  return r;
}

Registry::Impl& Registry::impl() const {
  static Impl impl;  // function-local: safe to use during static initialisation
  return impl;
}

bool Registry::add(RemoteEntry entry) noexcept {
  try {
    Impl& im = impl();
    std::unique_lock lock(im.mu);
    if (auto it = im.by_name.find(entry.name); it != im.by_name.end()) {
      if (it->second->key == entry.key) return true;  // the same function again: fine
      im.conflicts.push_back("'" + entry.name + "' registered at " + it->second->defined_at + " and at " +
                             entry.defined_at);
      return false;
    }
    auto owned = std::make_unique<RemoteEntry>(std::move(entry));
    const RemoteEntry* e = owned.get();
    im.by_key.emplace(e->key, e);
    im.by_name.emplace(e->name, std::move(owned));
    return true;
  } catch (...) {
    return false;
  }
}

const RemoteEntry* Registry::find_by_name(std::string_view name) const {
  Impl& im = impl();
  std::shared_lock lock(im.mu);
  auto it = im.by_name.find(std::string(name));
  return it == im.by_name.end() ? nullptr : it->second.get();
}

const RemoteEntry* Registry::find_by_key(std::string_view key) const {
  Impl& im = impl();
  std::shared_lock lock(im.mu);
  auto it = im.by_key.find(std::string(key));
  return it == im.by_key.end() ? nullptr : it->second;
}

Status Registry::validate() const {
  Impl& im = impl();
  std::shared_lock lock(im.mu);
  if (im.conflicts.empty()) return Status::ok();
  std::string msg = "remote function names must be unique:";
  for (const auto& c : im.conflicts) msg += " " + c + ";";
  return Status::already_exists(msg);
}

std::vector<std::string> Registry::names() const {
  Impl& im = impl();
  std::shared_lock lock(im.mu);
  std::vector<std::string> out;
  for (const auto& [name, e] : im.by_name) out.push_back(name);
  return out;
}

namespace detail {

std::string normalize_remote_name(std::string_view spelled) {
  std::string out;
  for (char c : spelled) {
    if (c != ' ' && c != '\t' && c != '\n' && c != '&') out.push_back(c);
  }
  if (out.rfind("::", 0) == 0) out.erase(0, 2);
  return out;
}

const RemoteEntry& lookup_remote(const std::string& key, const void* fn_address) {
  // Submitting the same function in a loop is the common case: remember the last hit per thread.
  thread_local std::string cached_key;
  thread_local const RemoteEntry* cached = nullptr;
  if (cached != nullptr && cached_key == key) return *cached;
  const RemoteEntry* e = Registry::global().find_by_key(key);
  if (e == nullptr) {
    std::string what = "this function";
    Dl_info info{};
    if (fn_address != nullptr && dladdr(fn_address, &info) != 0 && info.dli_sname != nullptr) {
      what = "'" + demangle(info.dli_sname) + "'";
    } else if (fn_address != nullptr) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%p", fn_address);
      what = std::string("the function at ") + buf;
    } else {
      what = "this actor method";
    }
    throw Error("weft: " + what +
                " is not registered for remote execution; add WEFT_REMOTE(...) naming it at namespace scope in a .cc file");
  }
  cached_key = key;
  cached = e;
  return *e;
}

}  // namespace detail
}  // namespace weft
