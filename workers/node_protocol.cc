#include "workers/node_protocol.h"

namespace weft::workers::node {

std::string encode(const NodeMessage& m) {
  return std::visit([](const auto& msg) { return wire::encode(kNodeProtocol, msg); }, m);
}

Result<NodeMessage> decode_node(std::string_view bytes) {
  WEFT_ASSIGN_OR_RETURN(wire::Envelope e, wire::open(kNodeProtocol, bytes));
  return wire::body_of<NodeMessage>(kNodeProtocol, e);
}

}  // namespace weft::workers::node
