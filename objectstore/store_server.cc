#include "objectstore/store_server.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "core/logging.h"
#include "objectstore/protocol.h"

namespace weft::objectstore {
namespace {

using Clock = std::chrono::steady_clock;

Status errno_status(const std::string& what) { return Status::io_error(what + ": " + std::strerror(errno)); }

// Sends one message, with a descriptor attached when fd >= 0.
bool send_message(int sock, const std::string& bytes, int fd = -1) {
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  for (;;) {
    const ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n >= 0) return true;
    if (errno != EINTR) return false;
  }
}

}  // namespace

// State of the serving thread.
struct StoreServer::Loop {
  struct Waiter {
    int sock;
    uint64_t request_id;
    Clock::time_point deadline;  // max() for no timeout
    uint64_t hold;
  };
  std::unordered_map<int, ClientId> clients;  // socket -> client
  ClientId next_client = 1;
  std::unordered_map<ObjectId, std::vector<Waiter>> waiting;  // gets of objects not sealed yet
};

Result<std::unique_ptr<StoreServer>> StoreServer::start(const std::string& path, std::unique_ptr<Store> store) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return Status::invalid_argument("socket path must be 1.." + std::to_string(sizeof addr.sun_path - 1) + " bytes");
  }
  std::unique_ptr<StoreServer> s(new StoreServer());
  s->path_ = path;
  s->store_ = std::move(store);
  s->listen_fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s->listen_fd_ < 0) return errno_status("socket");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  unlink(path.c_str());
  if (bind(s->listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return errno_status("bind " + path);
  if (listen(s->listen_fd_, 128) != 0) return errno_status("listen " + path);
  s->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->wake_fd_ < 0) return errno_status("eventfd");
  s->thread_ = std::thread([srv = s.get()] { srv->run(); });
  return s;
}

StoreServer::~StoreServer() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
    thread_.join();
  }
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    unlink(path_.c_str());
  }
  if (wake_fd_ >= 0) close(wake_fd_);
}

StoreStats StoreServer::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return store_->stats();
}

void StoreServer::run() {
  Loop loop;
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  auto watch = [&](int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  };
  watch(listen_fd_);
  watch(wake_fd_);

  auto reply = [&](int sock, Reply r, int fd = -1) {
    if (!send_message(sock, encode(r), fd)) log()->debug("store: reply to a closed client dropped");
  };
  auto error_reply = [&](int sock, uint64_t request_id, const Status& s) {
    Reply r;
    r.request_id = request_id;
    r.set_status(s);
    reply(sock, std::move(r));
  };
  auto answer_get = [&](int sock, uint64_t request_id, const ObjectId& id, uint64_t hold) {
    auto loc = store_->get(loop.clients.at(sock), id, hold);
    if (!loc.ok()) return error_reply(sock, request_id, loc.status());
    Reply r;
    r.request_id = request_id;
    r.offset = loc->offset;
    r.size = loc->size;
    reply(sock, std::move(r));
  };
  auto drop_client = [&](int sock) {
    auto it = loop.clients.find(sock);
    if (it == loop.clients.end()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      store_->disconnect(it->second);
    }
    for (auto w = loop.waiting.begin(); w != loop.waiting.end();) {
      std::erase_if(w->second, [&](const Loop::Waiter& x) { return x.sock == sock; });
      w = w->second.empty() ? loop.waiting.erase(w) : std::next(w);
    }
    epoll_ctl(ep, EPOLL_CTL_DEL, sock, nullptr);
    close(sock);
    loop.clients.erase(it);
  };

  auto handle = [&](int sock, const Request& request) {
    std::lock_guard<std::mutex> lock(mu_);
    const ClientId client = loop.clients.at(sock);
    Reply r;
    r.request_id = request_id(request);
    // Requests with a reply answer OK or the status of their store call.
    auto answer = [&](const Status& s) { s.is_ok() ? reply(sock, std::move(r)) : error_reply(sock, r.request_id, s); };
    if (std::holds_alternative<Connect>(request)) {
      r.size = store_->arena().size();
      reply(sock, std::move(r), store_->arena().fd());
    } else if (const Create* q = std::get_if<Create>(&request)) {
      auto loc = store_->create(client, q->object, q->size, {q->primary, q->transient, q->task});
      if (!loc.ok()) return error_reply(sock, q->request_id, loc.status());
      r.offset = loc->offset;
      r.size = loc->size;
      reply(sock, std::move(r));
    } else if (const Seal* q = std::get_if<Seal>(&request)) {
      Status s = store_->seal(client, q->object);
      if (!s.is_ok()) {
        log()->warn("store: seal from client {}: {}", client, s.message());
        return;
      }
      auto w = loop.waiting.find(q->object);
      if (w != loop.waiting.end()) {
        std::vector<Loop::Waiter> waiters = std::move(w->second);
        loop.waiting.erase(w);
        for (const auto& x : waiters) answer_get(x.sock, x.request_id, q->object, x.hold);
      }
    } else if (const Abort* q = std::get_if<Abort>(&request)) {
      answer(store_->abort(client, q->object));
    } else if (const Get* q = std::get_if<Get>(&request)) {
      if (store_->is_sealed(q->object) || q->timeout_ms == 0)
        return answer_get(sock, q->request_id, q->object, q->hold);
      const auto deadline =
          q->timeout_ms < 0 ? Clock::time_point::max() : Clock::now() + std::chrono::milliseconds(q->timeout_ms);
      loop.waiting[q->object].push_back({sock, q->request_id, deadline, q->hold});
    } else if (const Release* q = std::get_if<Release>(&request)) {
      Status s = store_->release(client, q->object);
      if (!s.is_ok()) log()->warn("store: release from client {}: {}", client, s.message());
    } else if (const Delete* q = std::get_if<Delete>(&request)) {
      answer(store_->remove(q->object));
    } else if (std::holds_alternative<Stats>(request)) {
      r.stats = store_->stats();
      reply(sock, std::move(r));
    } else if (const Hold* q = std::get_if<Hold>(&request)) {
      auto token = store_->hold(client, q->object);
      if (!token.ok()) return error_reply(sock, q->request_id, token.status());
      r.hold = *token;
      reply(sock, std::move(r));
    } else if (const Unhold* q = std::get_if<Unhold>(&request)) {
      Status s = store_->unhold(client, q->object, q->hold);
      if (!s.is_ok()) log()->warn("store: unhold from client {}: {}", client, s.message());
    }
  };

  auto expire = [&]() -> int {  // answers timed-out gets; returns ms until the next deadline
    const auto now = Clock::now();
    auto next = Clock::time_point::max();
    for (auto w = loop.waiting.begin(); w != loop.waiting.end();) {
      auto& list = w->second;
      for (auto x = list.begin(); x != list.end();) {
        if (x->deadline <= now) {
          error_reply(x->sock, x->request_id,
                      Status::deadline_exceeded("object " + w->first.hex() + " was not sealed in time"));
          x = list.erase(x);
        } else {
          next = std::min(next, x->deadline);
          ++x;
        }
      }
      w = list.empty() ? loop.waiting.erase(w) : std::next(w);
    }
    if (next == Clock::time_point::max()) return -1;
    return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(next - now).count());
  };

  std::vector<char> buf(kMaxMessageBytes + 1);
  epoll_event events[64];
  for (;;) {
    const int n = epoll_wait(ep, events, 64, expire());
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < std::max(n, 0); ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_fd_) {
        for (auto& [sock, client] : loop.clients) close(sock);
        close(ep);
        return;
      }
      if (fd == listen_fd_) {
        const int sock = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (sock < 0) continue;
        loop.clients[sock] = loop.next_client++;
        watch(sock);
        continue;
      }
      const ssize_t got = recv(fd, buf.data(), buf.size(), MSG_TRUNC);
      if (got <= 0) {
        if (got == 0 || (errno != EINTR && errno != EAGAIN)) drop_client(fd);
        continue;
      }
      auto request = decode_request(std::string_view(buf.data(), std::min(static_cast<size_t>(got), buf.size())));
      if (!request.ok()) {
        ++rejected_;
        log()->warn("store: {}", request.status().message());
        error_reply(fd, 0, request.status());  // request id 0: the message had none we could trust
        continue;
      }
      handle(fd, *request);
    }
  }
  close(ep);
}

}  // namespace weft::objectstore
