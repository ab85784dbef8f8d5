// How the dispatcher exchanges messages with its workers: whole messages to and from peers named
// by an identity (the ZeroMQ routing id for the real transport). The dispatcher polls the items
// a transport adds and then receives until it has nothing; tests drive the dispatcher through
// an in-memory fake (workers/testing/fake_node.h), with no processes or sockets.
//
// Called from the dispatcher thread only.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <zmq.hpp>

#include "weft/status.h"

namespace weft::workers {

// How workers on other nodes of a cluster reach the driver: a TCP endpoint with CURVE, and the
// keys a worker presents there (Z85). Only that pair is accepted.
struct RemoteReach {
  std::string endpoint;
  std::string server_public, worker_public, worker_secret;
};

class Transport {
 public:
  virtual ~Transport() = default;

  // Where workers connect (it goes into their environment).
  virtual std::string endpoint() const = 0;
  // Sends one message to `peer`; a peer that is gone is logged and skipped.
  virtual void send(const std::string& peer, std::string_view bytes) = 0;
  // Appends the items whose readiness means receive() may have something.
  virtual void add_poll_items(std::vector<zmq::pollitem_t>& items) = 0;
  // The next message and who sent it, or nothing; never blocks.
  virtual std::optional<std::pair<std::string, std::string>> receive() = 0;
  // Listens on `host` (a port the system picks) for workers on other nodes, encrypted and
  // authenticated with a key pair made for this driver; their messages arrive through receive().
  virtual Result<RemoteReach> expose(const std::string& host) {
    return Status::failed_precondition("this transport cannot be reached from other nodes (" + host + ")");
  }
  // Whether `peer` reached the driver through expose() (a worker on another node).
  virtual bool remote(const std::string& peer) const {
    (void)peer;
    return false;
  }
};

// A ZeroMQ ROUTER bound at `endpoint` ("ipc://PATH").
Result<std::unique_ptr<Transport>> bind_zmq_transport(const std::string& endpoint);

}  // namespace weft::workers
