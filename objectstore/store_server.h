// Serves one Store to the processes of a node over a Unix SOCK_SEQPACKET socket.
//
//   WEFT_ASSIGN_OR_RETURN(auto store, Store::create({.capacity = 1 << 30}));
//   WEFT_ASSIGN_OR_RETURN(auto server, StoreServer::start("/run/weft/store.sock", std::move(store)));
//   ... clients connect with StoreClient ...
//   server.reset();  // stops serving, removes the socket file
//
// One thread runs an epoll loop and owns the Store; requests are answered in arrival order,
// except kGet on an object that does not exist yet or is not sealed, which waits (up to its
// timeout) and is answered when the object is sealed. A connection that closes — a client that
// exited or was killed — releases its pins and discards its unsealed objects. A malformed
// message gets an error reply when its request id can be read, and is otherwise dropped with a
// log line; either way the server goes on serving. Thread-safe: stats() may be called from any
// thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "objectstore/store.h"
#include "weft/status.h"

namespace weft::objectstore {

class StoreServer {
 public:
  // Binds `path` (a stale socket file there is replaced) and starts the serving thread.
  static Result<std::unique_ptr<StoreServer>> start(const std::string& path, std::unique_ptr<Store> store);
  ~StoreServer();

  const std::string& path() const { return path_; }
  StoreStats stats() const;
  // Messages rejected as malformed so far.
  uint64_t rejected() const { return rejected_.load(); }

 private:
  StoreServer() = default;
  struct Loop;
  void run();

  std::string path_;
  int listen_fd_ = -1, wake_fd_ = -1;
  mutable std::mutex mu_;  // guards store_ against stats() from other threads
  std::unique_ptr<Store> store_;
  std::atomic<uint64_t> rejected_{0};
  std::thread thread_;
};

}  // namespace weft::objectstore
