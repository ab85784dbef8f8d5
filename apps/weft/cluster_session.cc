#include "apps/weft/cluster_session.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace weft::cli {
namespace fs = std::filesystem;

Result<std::string> session_dir() {
  const char* runtime_dir = std::getenv("XDG_RUNTIME_DIR");
  const std::string dir = runtime_dir != nullptr && *runtime_dir != '\0' ? std::string(runtime_dir) + "/weft"
                                                                         : "/tmp/weft-" + std::to_string(getuid());
  std::error_code ec;
  fs::create_directories(dir + "/daemons", ec);
  if (ec) return Status::io_error("cannot create " + dir + ": " + ec.message());
  fs::permissions(dir, fs::perms::owner_all, ec);
  // Under /tmp another user could have made it first, to plant pid files or links: it must be a
  // directory of this user's that nobody else may enter.
  struct stat st {};
  if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077) != 0) {
    return Status::permission_denied("the runtime directory " + dir +
                                     " is not this user's own with mode 0700; remove it, or set XDG_RUNTIME_DIR");
  }
  return dir;
}

Status record_daemon(const DaemonRecord& d) {
  WEFT_ASSIGN_OR_RETURN(std::string dir, session_dir());
  std::ofstream(dir + "/daemons/" + std::to_string(d.pid)) << d.what << "\n";
  return Status::ok();
}

void forget_daemon(pid_t pid) {
  auto dir = session_dir();
  if (dir.ok()) fs::remove(*dir + "/daemons/" + std::to_string(pid));
}

std::vector<DaemonRecord> recorded_daemons() {
  std::vector<DaemonRecord> out;
  auto dir = session_dir();
  if (!dir.ok()) return out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(*dir + "/daemons", ec)) {
    DaemonRecord d;
    d.pid = static_cast<pid_t>(std::atoi(e.path().filename().c_str()));
    std::ifstream in(e.path());
    std::getline(in, d.what);
    if (d.pid <= 0 || ::kill(d.pid, 0) != 0) {  // gone (killed, or the machine restarted)
      fs::remove(e.path(), ec);
      continue;
    }
    out.push_back(std::move(d));
  }
  return out;
}

Status record_head_address(const std::string& address) {
  WEFT_ASSIGN_OR_RETURN(std::string dir, session_dir());
  std::ofstream(dir + "/head_address") << address << "\n";
  return Status::ok();
}

void forget_head_address() {
  auto dir = session_dir();
  if (dir.ok()) fs::remove(*dir + "/head_address");
}

Result<std::string> head_address(const Args& a) {
  if (a.has("address")) return a.get("address", "");
  if (const char* env = std::getenv("WEFT_HEAD_ADDRESS"); env != nullptr && *env != '\0') return std::string(env);
  WEFT_ASSIGN_OR_RETURN(std::string dir, session_dir());
  std::ifstream in(dir + "/head_address");
  std::string address;
  if (std::getline(in, address) && !address.empty()) return address;
  return Status::not_found("no head was started on this machine; give its address with --address HOST:PORT");
}

Result<cluster::Credential> member_credential(const Args& a) {
  return cluster::Credential::load(a.get("credential", cluster::default_credential_path()));
}

}  // namespace weft::cli
