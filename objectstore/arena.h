// One node's shared-memory arena: an anonymous memory file (memfd) mapped by the store and by
// every client on the node, so an object written by one process is read in place by another.
//
//   WEFT_ASSIGN_OR_RETURN(SharedArena a, SharedArena::create(1 << 30, "weft-store"));
//   WEFT_RETURN_IF_ERROR(a.commit(offset, bytes));   // back a range with memory before use
//   // a client: SharedArena::attach(fd_received_over_the_socket, a.size())
//
// Pages are reserved per allocation with commit() (fallocate), never on first touch: when the
// machine is out of memory the store gets an error it can report ("store full"), instead of a
// SIGBUS in whichever process touches the page. Freed ranges keep their pages (the arena's
// footprint is its high-water mark). The file has no name in any filesystem, so a crash leaves nothing behind in /dev/shm.
// Not thread-safe for commit (the store's thread calls it); move-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "weft/status.h"

namespace weft::objectstore {

class SharedArena {
 public:
  // kInvalidArgument for a zero size or one larger than the machine's memory; kIoError when the
  // memory file cannot be made or mapped (naming the system call and errno).
  static Result<SharedArena> create(size_t size, const std::string& name);
  // Maps an arena whose descriptor came from the store; takes ownership of `fd`.
  static Result<SharedArena> attach(int fd, size_t size);

  SharedArena() = default;
  SharedArena(SharedArena&& other) noexcept;
  SharedArena& operator=(SharedArena&& other) noexcept;
  ~SharedArena();

  uint8_t* base() const { return base_; }
  size_t size() const { return size_; }
  int fd() const { return fd_; }

  // kResourceExhausted when the system cannot back the range with memory. Ranges committed
  // before cost no system call.
  Status commit(size_t offset, size_t len);

  // A default size for a node's store: 30% of the machine's memory.
  static size_t default_size();

 private:
  void reset();
  static constexpr size_t kGranule = 64 * 1024;  // commit bookkeeping unit
  int fd_ = -1;
  uint8_t* base_ = nullptr;
  size_t size_ = 0;
  std::vector<bool> committed_;  // per granule; touched by the store's thread only
};

}  // namespace weft::objectstore
