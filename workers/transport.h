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
};

// A ZeroMQ ROUTER bound at `endpoint` ("ipc://PATH").
Result<std::unique_ptr<Transport>> bind_zmq_transport(const std::string& endpoint);

}  // namespace weft::workers
