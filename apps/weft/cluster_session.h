// What the cluster commands of one user on one machine share: a private directory
// ($XDG_RUNTIME_DIR/weft, else /tmp/weft-UID, mode 0700) holding a pid file per daemon that
// `weft start` left running (for `weft stop`), the address of the head started here, and each
// node's work directory; and how a client finds the head and the credential.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "apps/weft/cli_args.h"
#include "cluster/credential.h"
#include "weft/status.h"

namespace weft::cli {

// The directory, created if needed.
Result<std::string> session_dir();

struct DaemonRecord {
  pid_t pid = 0;
  std::string what;  // "head 127.0.0.1:7380" or "node node-ab12 -> 127.0.0.1:7380"
};
Status record_daemon(const DaemonRecord& d);
void forget_daemon(pid_t pid);
std::vector<DaemonRecord> recorded_daemons();

Status record_head_address(const std::string& address);
void forget_head_address();

// --address, else $WEFT_HEAD_ADDRESS, else the head started on this machine.
Result<std::string> head_address(const Args& a);
// --credential, else $WEFT_CREDENTIAL, else ~/.weft/cluster.key; loaded.
Result<cluster::Credential> member_credential(const Args& a);

}  // namespace weft::cli
