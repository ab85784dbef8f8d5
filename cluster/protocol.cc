#include "cluster/protocol.h"

namespace weft::cluster {
namespace {

template <class Variant>
Result<Variant> decode(std::string_view bytes) {
  WEFT_ASSIGN_OR_RETURN(wire::Envelope e, wire::open(kClusterProtocol, bytes));
  return wire::body_of<Variant>(kClusterProtocol, e);
}

}  // namespace

std::string_view to_string(JobState s) {
  switch (s) {
    case JobState::kPending:
      return "PENDING";
    case JobState::kRunning:
      return "RUNNING";
    case JobState::kSucceeded:
      return "SUCCEEDED";
    case JobState::kFailed:
      return "FAILED";
    case JobState::kStopped:
      return "STOPPED";
  }
  return "UNKNOWN";
}

bool is_final(JobState s) { return s == JobState::kSucceeded || s == JobState::kFailed || s == JobState::kStopped; }

Status Reply::status() const {
  if (ok) return Status::ok();
  if (code == 0 || code > static_cast<uint8_t>(kLastStatusCode)) return Status::internal(message);
  return Status(static_cast<StatusCode>(code), message);
}

Result<ToHead> decode_to_head(std::string_view bytes) {
  WEFT_ASSIGN_OR_RETURN(ToHead m, decode<ToHead>(bytes));
  if (const auto* hb = std::get_if<Heartbeat>(&m)) {
    for (const auto& j : hb->jobs) {
      if (j.state > static_cast<uint8_t>(JobState::kStopped)) {
        return wire::malformed(kClusterProtocol, "a heartbeat reports job state " + std::to_string(j.state));
      }
    }
  }
  return m;
}

Result<ToNode> decode_to_node(std::string_view bytes) { return decode<ToNode>(bytes); }

Result<ToClient> decode_to_client(std::string_view bytes) {
  WEFT_ASSIGN_OR_RETURN(ToClient m, decode<ToClient>(bytes));
  if (const auto* r = std::get_if<JobInfoReply>(&m);
      r != nullptr && r->job.state > static_cast<uint8_t>(JobState::kStopped)) {
    return wire::malformed(kClusterProtocol, "a job has state " + std::to_string(r->job.state));
  }
  return m;
}

}  // namespace weft::cluster
