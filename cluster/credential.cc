#include "cluster/credential.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace weft::cluster {
namespace {

constexpr size_t kKeyChars = 40;

bool valid_key(const std::string& key) {
  if (key.size() != kKeyChars) return false;
  uint8_t bytes[32];
  return zmq_z85_decode(bytes, key.c_str()) != nullptr;
}

}  // namespace

Result<Credential> Credential::generate() {
  char pub[kKeyChars + 1], sec[kKeyChars + 1];
  Credential c;
  if (zmq_curve_keypair(pub, sec) != 0) return Status::internal("cannot make a CURVE key pair: ZeroMQ lacks CURVE");
  c.server_public = pub;
  c.server_secret = sec;
  if (zmq_curve_keypair(pub, sec) != 0) return Status::internal("cannot make a CURVE key pair: ZeroMQ lacks CURVE");
  c.member_public = pub;
  c.member_secret = sec;
  return c;
}

Result<Credential> Credential::load(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status::not_found("no cluster credential at " + path + ": " + std::strerror(errno) +
                             " (copy the head's credential file here, or pass --credential PATH)");
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return Status::permission_denied("the cluster credential " + path +
                                     " may be read by others; make it its owner's alone (chmod 600)");
  }
  std::ifstream in(path);
  std::map<std::string, std::string> fields;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.find(' ');
    if (space == std::string::npos) return Status::invalid_argument("malformed cluster credential " + path);
    fields[line.substr(0, space)] = line.substr(space + 1);
  }
  Credential c{fields["server_public"], fields["server_secret"], fields["member_public"], fields["member_secret"]};
  for (const auto* key : {&c.server_public, &c.server_secret, &c.member_public, &c.member_secret}) {
    if (!valid_key(*key)) {
      return Status::invalid_argument("malformed cluster credential " + path + ": each key must be 40 Z85 characters");
    }
  }
  return c;
}

Status Credential::save(const std::string& path) const {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(path).parent_path();
  std::error_code ec;
  if (!dir.empty() && !fs::exists(dir)) {
    fs::create_directories(dir, ec);
    if (ec) return Status::io_error("cannot create " + dir.string() + ": " + ec.message());
    fs::permissions(dir, fs::perms::owner_all, ec);
  }
  const std::string tmp = path + ".tmp" + std::to_string(getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::io_error("cannot write " + tmp + ": " + std::strerror(errno));
  std::ostringstream text;
  text << "# weft cluster credential: whoever holds this file may join the cluster and submit jobs\n"
       << "server_public " << server_public << "\nserver_secret " << server_secret << "\nmember_public "
       << member_public << "\nmember_secret " << member_secret << "\n";
  const std::string bytes = text.str();
  const bool written = ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!written || !synced || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Status::io_error("cannot write " + path + ": " + std::strerror(errno));
  }
  return Status::ok();
}

std::string default_credential_path() {
  if (const char* env = std::getenv("WEFT_CREDENTIAL"); env != nullptr && *env != '\0') return env;
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr && *home != '\0' ? home : "/tmp") + "/.weft/cluster.key";
}

}  // namespace weft::cluster
