// The cluster's credential: the CURVE key pairs (ZeroMQ's CurveZMQ, RFC 26) that every connection
// to the head and between daemons is authenticated and encrypted with. One file, readable by its
// owner only, written by the head when the cluster is first started and copied to every machine
// that joins or submits:
//
//   auto c = Credential::generate();
//   WEFT_RETURN_IF_ERROR(c.save("/home/me/.weft/cluster.key"));   // mode 0600
//   WEFT_ASSIGN_OR_RETURN(Credential same, Credential::load("/home/me/.weft/cluster.key"));
//
// The head serves with the server pair; members connect with the server's public key and the
// member pair, whose public key is the only one the head accepts. A peer without the file can
// neither complete the handshake nor read anything on the wire.
#pragma once

#include <string>

#include "weft/status.h"

namespace weft::cluster {

struct Credential {
  // Z85 text, 40 characters each (zmq_curve_keypair).
  std::string server_public, server_secret;
  std::string member_public, member_secret;

  static Result<Credential> generate();
  // Fails, naming the file, when it is missing, malformed, or readable by anyone but its owner.
  static Result<Credential> load(const std::string& path);
  // Writes the file with mode 0600 (atomically: a temporary file renamed over it), creating its
  // directory (mode 0700) if needed.
  Status save(const std::string& path) const;
};

// Where the credential is looked for when no path is given: $WEFT_CREDENTIAL, else
// ~/.weft/cluster.key.
std::string default_credential_path();

}  // namespace weft::cluster
