#include "cluster/secure_socket.h"

#include <array>
#include <vector>

#include "core/logging.h"

namespace weft::cluster {
namespace {

std::string decode_key(const std::string& z85) {
  std::array<uint8_t, 32> raw{};
  zmq_z85_decode(raw.data(), z85.c_str());
  return std::string(reinterpret_cast<const char*>(raw.data()), raw.size());
}

}  // namespace

Result<std::unique_ptr<Authenticator>> Authenticator::start(zmq::context_t& ctx, const Credential& credential,
                                                            std::string who) {
  std::unique_ptr<Authenticator> a(new Authenticator());
  a->member_key_ = decode_key(credential.member_public);
  a->who_ = std::move(who);
  try {
    a->handler_ = zmq::socket_t(ctx, zmq::socket_type::rep);
    a->handler_.set(zmq::sockopt::linger, 0);
    a->handler_.bind("inproc://zeromq.zap.01");
  } catch (const zmq::error_t& e) {
    return Status::internal(std::string("cannot start the CURVE authenticator: ") + e.what());
  }
  a->thread_ = std::thread([p = a.get()] { p->run(); });
  return a;
}

Authenticator::~Authenticator() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void Authenticator::run() {
  while (!stop_.load()) {
    zmq::pollitem_t item{handler_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) <= 0) continue;
    // A ZAP request: version, request id, domain, address, routing id, mechanism, credentials.
    std::vector<zmq::message_t> frames;
    do {
      frames.emplace_back();
      if (!handler_.recv(frames.back(), zmq::recv_flags::none)) break;
    } while (frames.back().more());
    if (frames.size() < 6) continue;
    const std::string mechanism = frames[5].to_string();
    const std::string address = frames[3].to_string();
    const bool ok = mechanism == "CURVE" && frames.size() >= 7 && frames[6].to_string() == member_key_;
    if (!ok) {
      log()->warn(
          "{}: refused a connection from {}: {}", who_, address.empty() ? "an unknown address" : address,
          mechanism == "CURVE" ? "it does not hold the cluster credential" : "it is not encrypted (" + mechanism + ")");
    }
    const std::array<std::string, 6> reply{frames[0].to_string(), frames[1].to_string(),
                                           ok ? "200" : "400",    ok ? "OK" : "not a member of this cluster",
                                           ok ? "member" : "",    ""};
    for (size_t i = 0; i < reply.size(); ++i) {
      handler_.send(zmq::buffer(reply[i]), i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
}

void serve_securely(zmq::socket_t& s, const Credential& credential) {
  s.set(zmq::sockopt::curve_server, 1);
  s.set(zmq::sockopt::curve_secretkey, credential.server_secret);
  s.set(zmq::sockopt::zap_domain, "weft");
}

void connect_securely(zmq::socket_t& s, const Credential& credential) {
  s.set(zmq::sockopt::curve_serverkey, credential.server_public);
  s.set(zmq::sockopt::curve_publickey, credential.member_public);
  s.set(zmq::sockopt::curve_secretkey, credential.member_secret);
}

}  // namespace weft::cluster
