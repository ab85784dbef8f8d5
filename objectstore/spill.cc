#include "objectstore/spill.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>

#include <fmt/format.h>

namespace weft::objectstore {
namespace {

Status io_error(const std::string& what, const std::string& path) {
  return Status::io_error(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
}

}  // namespace

Result<std::unique_ptr<DirectorySpill>> DirectorySpill::create(const std::string& parent) {
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  std::string tmpl = parent + "/weft-spill-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) return io_error("cannot make the spill directory in", parent);
  return std::unique_ptr<DirectorySpill>(new DirectorySpill(tmpl));
}

DirectorySpill::~DirectorySpill() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

Status DirectorySpill::write(const ObjectId& id, const uint8_t* data, size_t size) {
  const std::string p = path(id);
  const int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return io_error("cannot create spill file", p);
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Status s = io_error("cannot write spill file", p);
      close(fd);
      unlink(p.c_str());
      return s;
    }
    done += static_cast<size_t>(n);
  }
  close(fd);
  return Status::ok();
}

Status DirectorySpill::read(const ObjectId& id, uint8_t* data, size_t size) {
  const std::string p = path(id);
  const int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open spill file", p);
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::read(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Status s = n == 0 ? Status::corruption("spill file " + p + " is shorter than its object") : io_error("cannot read spill file", p);
      close(fd);
      return s;
    }
    done += static_cast<size_t>(n);
  }
  close(fd);
  return Status::ok();
}

void DirectorySpill::remove(const ObjectId& id) { unlink(path(id).c_str()); }

}  // namespace weft::objectstore
