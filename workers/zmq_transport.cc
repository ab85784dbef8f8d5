// The dispatcher's transport over ZeroMQ ROUTER sockets: one on ipc for the workers of its own
// node, and, in a cluster, one on TCP with CURVE for workers on other nodes. Peers of the second
// are named with a leading 'r' (ZeroMQ's own routing ids start with a zero byte).
#include "cluster/credential.h"
#include "cluster/secure_socket.h"
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
    const bool far = remote(peer);
    zmq::socket_t& socket = far ? tcp_ : router_;
    const std::string_view id = far ? std::string_view(peer).substr(1) : std::string_view(peer);
    try {
      socket.send(zmq::buffer(id.data(), id.size()), zmq::send_flags::sndmore);
      socket.send(zmq::buffer(bytes.data(), bytes.size()), zmq::send_flags::none);
    } catch (const zmq::error_t& e) {
      log()->warn("driver: a send to a worker failed: {}", e.what());
    }
  }

  void add_poll_items(std::vector<zmq::pollitem_t>& items) override {
    items.push_back({router_.handle(), 0, ZMQ_POLLIN, 0});
    if (exposed_) items.push_back({tcp_.handle(), 0, ZMQ_POLLIN, 0});
  }

  std::optional<std::pair<std::string, std::string>> receive() override {
    if (auto m = receive_from(router_)) return m;
    if (!exposed_) return std::nullopt;
    auto m = receive_from(tcp_);
    if (m) m->first.insert(0, 1, 'r');
    return m;
  }

  Result<RemoteReach> expose(const std::string& host) override {
    if (exposed_) return reach_;
    // A key pair for the driver and one for its workers elsewhere, in the credential's shape.
    WEFT_ASSIGN_OR_RETURN(cluster::Credential keys, cluster::Credential::generate());
    WEFT_ASSIGN_OR_RETURN(auth_, cluster::Authenticator::start(ctx_, keys, "driver"));
    try {
      tcp_.set(zmq::sockopt::linger, 0);
      tcp_.set(zmq::sockopt::router_mandatory, 1);
      tcp_.set(zmq::sockopt::heartbeat_ivl, 1000);
      tcp_.set(zmq::sockopt::heartbeat_timeout, 5000);
      // Results stream in pieces; no message of a worker elsewhere needs more than this.
      tcp_.set(zmq::sockopt::maxmsgsize, int64_t{256} << 20);
      cluster::serve_securely(tcp_, keys);
      tcp_.bind("tcp://" + host + ":0");
    } catch (const zmq::error_t& e) {
      return Status::io_error("cannot listen for workers on other nodes at " + host + ": " + e.what());
    }
    reach_ =
        RemoteReach{tcp_.get(zmq::sockopt::last_endpoint), keys.server_public, keys.member_public, keys.member_secret};
    exposed_ = true;
    return reach_;
  }

  bool remote(const std::string& peer) const override { return !peer.empty() && peer[0] == 'r'; }

 private:
  static std::optional<std::pair<std::string, std::string>> receive_from(zmq::socket_t& socket) {
    for (;;) {
      zmq::message_t id, body;
      if (!socket.recv(id, zmq::recv_flags::dontwait)) return std::nullopt;
      if (!id.more()) continue;  // a frame without a body: drop it
      (void)socket.recv(body, zmq::recv_flags::none);
      bool extra = false;
      while (body.more()) {  // extra frames: the message is malformed; drain them
        zmq::message_t more;
        (void)socket.recv(more, zmq::recv_flags::none);
        body.rebuild(0);
        extra = true;
      }
      // A malformed message still reaches the dispatcher (empty), which rejects and counts it.
      return std::make_pair(id.to_string(), extra ? std::string() : body.to_string());
    }
  }

  zmq::context_t ctx_{1};
  std::unique_ptr<cluster::Authenticator> auth_;  // before the sockets: it outlives them
  zmq::socket_t router_{ctx_, zmq::socket_type::router};
  zmq::socket_t tcp_{ctx_, zmq::socket_type::router};
  bool exposed_ = false;
  RemoteReach reach_;
  std::string endpoint_;
};

}  // namespace

Result<std::unique_ptr<Transport>> bind_zmq_transport(const std::string& endpoint) {
  auto t = std::make_unique<ZmqTransport>();
  WEFT_RETURN_IF_ERROR(t->bind(endpoint));
  return std::unique_ptr<Transport>(std::move(t));
}

}  // namespace weft::workers
