#include "objectstore/arena.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <utility>

#include <fmt/format.h>

namespace weft::objectstore {
namespace {

size_t total_ram() {
  struct sysinfo info {};
  if (sysinfo(&info) != 0) return 0;
  return static_cast<size_t>(info.totalram) * info.mem_unit;
}

Status errno_status(const char* call, int err) {
  return Status::io_error(fmt::format("{} failed: {}", call, std::strerror(err)));
}

}  // namespace

size_t SharedArena::default_size() { return total_ram() / 10 * 3; }

Result<SharedArena> SharedArena::create(size_t size, const std::string& name) {
  if (size == 0) return Status::invalid_argument("the store's size must be > 0");
  const size_t ram = total_ram();
  if (ram != 0 && size > ram) {
    return Status::invalid_argument(
        fmt::format("a store of {} bytes cannot be had: this machine has {} bytes of memory", size, ram));
  }
  const int fd = memfd_create(name.c_str(), MFD_CLOEXEC);
  if (fd < 0) return errno_status("memfd_create", errno);
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    const int err = errno;
    close(fd);
    return errno_status("ftruncate of the store's memory file", err);
  }
  return attach(fd, size);
}

Result<SharedArena> SharedArena::attach(int fd, size_t size) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    const int err = errno;
    close(fd);
    return errno_status("mmap of the store's memory", err);
  }
  SharedArena a;
  a.fd_ = fd;
  a.base_ = static_cast<uint8_t*>(p);
  a.size_ = size;
  return a;
}

SharedArena::SharedArena(SharedArena&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      base_(std::exchange(o.base_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      committed_(std::move(o.committed_)) {}

SharedArena& SharedArena::operator=(SharedArena&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = std::exchange(o.fd_, -1);
    base_ = std::exchange(o.base_, nullptr);
    size_ = std::exchange(o.size_, 0);
    committed_ = std::move(o.committed_);
  }
  return *this;
}

SharedArena::~SharedArena() { reset(); }

void SharedArena::reset() {
  if (base_ != nullptr) munmap(base_, size_);
  if (fd_ >= 0) close(fd_);
  base_ = nullptr;
  fd_ = -1;
  size_ = 0;
}

Status SharedArena::commit(size_t offset, size_t len) {
  if (len == 0) return Status::ok();
  if (offset + len > size_ || offset + len < offset) return Status::invalid_argument("commit outside the arena");
  const size_t first = offset / kGranule, last = (offset + len - 1) / kGranule;
  if (committed_.size() <= last) committed_.resize(size_ / kGranule + 1, false);
  bool all = true;
  for (size_t g = first; g <= last && all; ++g) all = committed_[g];
  if (all) return Status::ok();
  // Whole granules, so the bookkeeping stays exact.
  const size_t begin = first * kGranule, end = std::min(size_, (last + 1) * kGranule);
  const int rc = fallocate(fd_, 0, static_cast<off_t>(begin), static_cast<off_t>(end - begin));
  if (rc == 0) {
    for (size_t g = first; g <= last; ++g) committed_[g] = true;
    return Status::ok();
  }
  const int err = errno;
  if (err == ENOSPC || err == ENOMEM) {
    return Status::resource_exhausted(fmt::format("the system has no memory left for {} more bytes of the store", len));
  }
  return errno_status("fallocate of the store's memory", err);
}

}  // namespace weft::objectstore
