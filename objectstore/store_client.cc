#include "objectstore/store_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace weft::objectstore {
namespace {
constexpr int kSpinReads = 200;
}  // namespace

Result<std::unique_ptr<StoreClient>> StoreClient::connect(const std::string& path) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path) return Status::invalid_argument("bad store socket path");
  std::unique_ptr<StoreClient> c(new StoreClient());
  c->sock_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (c->sock_ < 0) return Status::io_error(std::string("socket: ") + std::strerror(errno));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  if (::connect(c->sock_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Status::unavailable("no store at " + path + ": " + std::strerror(errno));
  }
  int fd = -1;
  WEFT_ASSIGN_OR_RETURN(Reply r, c->call(Connect{}, &fd));
  if (fd < 0) return Status::corruption("the store sent no memory descriptor");
  WEFT_ASSIGN_OR_RETURN(c->arena_, SharedArena::attach(fd, r.size));
  return c;
}

StoreClient::~StoreClient() {
  if (sock_ >= 0) close(sock_);
}

Result<Reply> StoreClient::call(Request q, int* received_fd) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t id = next_request_++;
  set_request_id(q, id);
  const std::string bytes = encode(q);
  for (;;) {
    if (send(sock_, bytes.data(), bytes.size(), MSG_NOSIGNAL) >= 0) break;
    if (errno != EINTR) return Status::unavailable(std::string("the store went away: ") + std::strerror(errno));
  }
  std::vector<char> buf(kMaxMessageBytes + 1);
  iovec iov{buf.data(), buf.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  // The store answers within microseconds: look for the reply briefly before sleeping on it.
  ssize_t n = -1;
  for (int spin = 0; spin < kSpinReads; ++spin) {
    n = recvmsg(sock_, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) break;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    do {
      n = recvmsg(sock_, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
  }
  if (n <= 0) return Status::unavailable("the store closed the connection");
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
      if (received_fd != nullptr) {
        *received_fd = fd;
      } else {
        close(fd);
      }
    }
  }
  WEFT_ASSIGN_OR_RETURN(Reply r, decode_reply(std::string_view(buf.data(), static_cast<size_t>(n))));
  if (r.request_id != id) return Status::corruption("the store answered another request");
  WEFT_RETURN_IF_ERROR(r.status());
  return r;
}

Result<uint8_t*> StoreClient::create(const ObjectId& id, uint64_t size, const CreateOptions& options) {
  WEFT_ASSIGN_OR_RETURN(Reply r, call(Create{.object = id,
                                             .size = size,
                                             .primary = options.primary,
                                             .transient = options.transient,
                                             .task = options.task}));
  if (r.offset + r.size > arena_.size() || r.size != size) return Status::corruption("the store gave a range outside its memory");
  return arena_.base() + r.offset;
}

Status StoreClient::send_only(Request q) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string bytes = encode(q);
  for (;;) {
    if (send(sock_, bytes.data(), bytes.size(), MSG_NOSIGNAL) >= 0) return Status::ok();
    if (errno != EINTR) return Status::unavailable(std::string("the store went away: ") + std::strerror(errno));
  }
}

Status StoreClient::seal(const ObjectId& id) { return send_only(Seal{id}); }
Status StoreClient::abort(const ObjectId& id) { return call(Abort{.object = id}).status(); }
Status StoreClient::release(const ObjectId& id) { return send_only(Release{id}); }
Status StoreClient::remove(const ObjectId& id) { return call(Delete{.object = id}).status(); }

Status StoreClient::put(const ObjectId& id, const void* data, uint64_t size, const CreateOptions& options) {
  WEFT_ASSIGN_OR_RETURN(uint8_t* buf, create(id, size, options));
  std::memcpy(buf, data, size);
  return seal(id);
}

Result<uint64_t> StoreClient::hold(const ObjectId& id) {
  WEFT_ASSIGN_OR_RETURN(Reply r, call(Hold{.object = id}));
  if (r.hold == 0) return Status::corruption("the store answered a hold without its token");
  return r.hold;
}

Status StoreClient::unhold(const ObjectId& id, uint64_t hold) { return send_only(Unhold{id, hold}); }

Result<std::span<const uint8_t>> StoreClient::get(const ObjectId& id, int64_t timeout_ms, uint64_t hold) {
  WEFT_ASSIGN_OR_RETURN(Reply r, call(Get{.object = id, .hold = hold, .timeout_ms = timeout_ms}));
  if (r.offset + r.size > arena_.size()) return Status::corruption("the store gave a range outside its memory");
  return std::span<const uint8_t>(arena_.base() + r.offset, r.size);
}

Result<StoreStats> StoreClient::stats() {
  WEFT_ASSIGN_OR_RETURN(Reply r, call(Stats{}));
  return r.stats;
}

}  // namespace weft::objectstore
