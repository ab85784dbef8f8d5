// CURVE on ZeroMQ sockets, with the cluster's credential (credential.h).
//
// A server socket (the head's) encrypts with the server pair and asks its context's
// Authenticator which clients to accept: only those presenting the credential's member key.
// Refused handshakes are logged with the peer's address and counted. Client sockets present the
// member pair and check the server's key, so a member cannot be fooled by an impostor head either.
//
//   zmq::context_t ctx;
//   auto auth = Authenticator::start(ctx, credential, "head");    // before any server socket binds
//   zmq::socket_t router(ctx, zmq::socket_type::router);
//   serve_securely(router, credential);
//   router.bind("tcp://127.0.0.1:7380");
//
// Thread-safety: an Authenticator runs one thread of its own (the ZAP handler, RFC 27). It logs the
// members it refuses; the server socket's monitor counts every failed handshake (head.cc).
#pragma once

#include <zmq.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "cluster/credential.h"
#include "weft/status.h"

namespace weft::cluster {

class Authenticator {
 public:
  // Serves ZAP requests of every socket of `ctx` that asks (one handler per context). `who`
  // names the daemon in its log lines.
  static Result<std::unique_ptr<Authenticator>> start(zmq::context_t& ctx, const Credential& credential,
                                                      std::string who);
  ~Authenticator();

 private:
  Authenticator() = default;
  void run();

  zmq::socket_t handler_;
  std::string member_key_;  // 32 raw bytes
  std::string who_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Makes `s` a CURVE server with the credential's server pair (before bind).
void serve_securely(zmq::socket_t& s, const Credential& credential);
// Makes `s` a CURVE client presenting the member pair, expecting the head's server key (before
// connect).
void connect_securely(zmq::socket_t& s, const Credential& credential);

}  // namespace weft::cluster
