#include "cluster/head_client.h"

#include <zmq.hpp>

#include <atomic>
#include <cstring>

#include "cluster/secure_socket.h"

namespace weft::cluster {

Result<ToClient> HeadClient::exchange(const std::string& bytes) {
  static std::atomic<uint64_t> next_monitor{0};
  zmq::context_t ctx(1);
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  zmq::socket_t monitor(ctx, zmq::socket_type::pair);
  const std::string monitor_endpoint = "inproc://head-client-monitor-" + std::to_string(next_monitor++);
  try {
    dealer.set(zmq::sockopt::linger, 0);
    connect_securely(dealer, credential_);
    // Handshake failures are reported on the monitor: without it a refused client would only see
    // silence until the timeout.
    if (zmq_socket_monitor(dealer.handle(), monitor_endpoint.c_str(),
                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0) {
      return Status::internal("cannot monitor the connection to the head");
    }
    monitor.set(zmq::sockopt::linger, 0);
    monitor.connect(monitor_endpoint);
    dealer.connect("tcp://" + address_);
    (void)dealer.send(zmq::buffer(bytes), zmq::send_flags::none);
  } catch (const zmq::error_t& e) {
    return Status::invalid_argument("cannot reach the head at " + address_ + ": " + e.what());
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  while (std::chrono::steady_clock::now() < deadline) {
    zmq::pollitem_t items[] = {{dealer.handle(), 0, ZMQ_POLLIN, 0}, {monitor.handle(), 0, ZMQ_POLLIN, 0}};
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    (void)zmq::poll(items, 2, std::max(left, std::chrono::milliseconds(1)));
    if (items[0].revents & ZMQ_POLLIN) {
      zmq::message_t reply;
      (void)dealer.recv(reply, zmq::recv_flags::none);
      return decode_to_client(reply.to_string());
    }
    if (items[1].revents & ZMQ_POLLIN) {
      zmq::message_t event, endpoint;
      (void)monitor.recv(event, zmq::recv_flags::none);
      if (event.more()) (void)monitor.recv(endpoint, zmq::recv_flags::none);
      uint16_t kind = 0;
      if (event.size() >= sizeof kind) std::memcpy(&kind, event.data(), sizeof kind);
      if (kind != ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        return Status::unauthenticated("the CURVE handshake with " + address_ +
                                       " failed (is that this cluster's head? see --credential)");
      }
      return Status::unauthenticated("the head at " + address_ +
                                     " refused this credential (is it this cluster's? see --credential)");
    }
  }
  return Status::unavailable("the head at " + address_ + " did not answer within " +
                             std::to_string(timeout_.count() / 1000) + " s (is it running? is the address right?)");
}

}  // namespace weft::cluster
