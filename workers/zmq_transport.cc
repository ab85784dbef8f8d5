// The dispatcher's transport over a ZeroMQ ROUTER socket.
#include "core/logging.h"
#include "workers/transport.h"

namespace weft::workers {
namespace {

class ZmqTransport final : public Transport {
 public:
  Status bind(const std::string& endpoint) {
    endpoint_ = endpoint;
    try {
      router_.set(zmq::sockopt::linger, 0);
      router_.set(zmq::sockopt::router_mandatory, 1);
      router_.bind(endpoint);
      return Status::ok();
    } catch (const zmq::error_t& e) {
      return Status::io_error("cannot bind the driver's control socket at " + endpoint + ": " + e.what());
    }
  }

  std::string endpoint() const override { return endpoint_; }

  void send(const std::string& peer, std::string_view bytes) override {
    try {
      router_.send(zmq::buffer(peer), zmq::send_flags::sndmore);
      router_.send(zmq::buffer(bytes.data(), bytes.size()), zmq::send_flags::none);
    } catch (const zmq::error_t& e) {
      log()->warn("driver: a send to a worker failed: {}", e.what());
    }
  }

  void add_poll_items(std::vector<zmq::pollitem_t>& items) override {
    items.push_back({router_.handle(), 0, ZMQ_POLLIN, 0});
  }

  std::optional<std::pair<std::string, std::string>> receive() override {
    for (;;) {
      zmq::message_t id, body;
      if (!router_.recv(id, zmq::recv_flags::dontwait)) return std::nullopt;
      if (!id.more()) continue;  // a frame without a body: drop it
      (void)router_.recv(body, zmq::recv_flags::none);
      bool extra = false;
      while (body.more()) {  // extra frames: the message is malformed; drain them
        zmq::message_t more;
        (void)router_.recv(more, zmq::recv_flags::none);
        body.rebuild(0);
        extra = true;
      }
      // A malformed message still reaches the dispatcher (empty), which rejects and counts it.
      return std::make_pair(id.to_string(), extra ? std::string() : body.to_string());
    }
  }

 private:
  zmq::context_t ctx_{1};
  zmq::socket_t router_{ctx_, zmq::socket_type::router};
  std::string endpoint_;
};

}  // namespace

Result<std::unique_ptr<Transport>> bind_zmq_transport(const std::string& endpoint) {
  auto t = std::make_unique<ZmqTransport>();
  WEFT_RETURN_IF_ERROR(t->bind(endpoint));
  return std::unique_ptr<Transport>(std::move(t));
}

}  // namespace weft::workers
