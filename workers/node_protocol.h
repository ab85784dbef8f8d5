// Messages between a driver and a `weft node` daemon (workers/node_daemon.h): one ZeroMQ message
// each, in the wire codec's envelope [version, type, body] (core/wire.h).
//
//   Attach    driver -> node   pid, the endpoint its workers connect to, and how to start them
//                              (its executable, argv, environment, working directory)
//   Attached  node -> driver   ok (or why not), the store's socket, the node's default pool size,
//                              its pid, and the host its cluster reaches it at (empty: not in a
//                              cluster)
//   Reach     driver -> node   in a cluster: the TCP endpoint where workers on other nodes reach
//                              the driver, and their CURVE keys; from then on a worker the node
//                              has no slot for may be leased on another node (node_daemon.h)
//   Spawn     driver -> node   start worker `index` of this driver's pool (again, after a death)
//   Spawned   node -> driver   index, pid (or why it could not start), or parked: every slot of
//                              the node is taken, and a later Spawned brings its pid once one
//                              is free for it
//   Yield     node -> driver   count: another driver waits for slots; retire that many workers
//                              once they are idle (their exits free the slots; the driver asks
//                              for them again with Spawn, and they wait parked)
//   Exited    node -> driver   index, pid, how: a worker of this driver's pool is gone
//   Detach    driver -> node   the driver is done: its workers were told to stop; the node waits
//                              for them a grace period, then kills the rest
//   Detached  node -> driver   every worker of the driver's pool has exited
//
// The node's directory, asked by any connection (a driver keeps one for it, apart from its
// attachment), answered in order on that connection:
//   Name      driver -> node   seq, the attached driver's pid, actor name, class: publish it
//   Named     node -> driver   seq, ok (or why not: the name is another driver's)
//   Find      driver -> node   seq, actor name
//   Found     node -> driver   seq, the driver holding it (pid, endpoint; pid 0: none), its class
//   Locate    driver -> node   seq, a driver's pid
//   Located   node -> driver   seq, that driver's endpoint (empty: not attached here)
//
// The node watches each attached driver's process: when it dies, its workers are killed, its
// store objects freed and its names forgotten, with no message from it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/wire.h"
#include "weft/status.h"

namespace weft::workers::node {

inline constexpr wire::Protocol kNodeProtocol{"node", 3};

struct Attach {
  static constexpr uint8_t kType = 1;
  static constexpr const char* kName = "attach";
  int64_t pid = 0;
  std::string endpoint;
  std::string executable;
  std::vector<std::string> argv, env;
  std::string cwd;
  MSGPACK_DEFINE_ARRAY(pid, endpoint, executable, argv, env, cwd)
};

struct Attached {
  static constexpr uint8_t kType = 2;
  static constexpr const char* kName = "attached";
  bool ok = false;
  std::string message;
  std::string store_socket;
  uint32_t default_workers = 0;
  int64_t node_pid = 0;  // the driver watches it: a node that dies takes its workers with it
  std::string cluster_host;
  MSGPACK_DEFINE_ARRAY(ok, message, store_socket, default_workers, node_pid, cluster_host)
};

struct Spawn {
  static constexpr uint8_t kType = 3;
  static constexpr const char* kName = "spawn";
  uint32_t index = 0;
  MSGPACK_DEFINE_ARRAY(index)
};

struct Spawned {
  static constexpr uint8_t kType = 4;
  static constexpr const char* kName = "spawned";
  uint32_t index = 0;
  int64_t pid = -1;
  std::string message;  // why it could not start (pid -1)
  bool parked = false;  // no free slot: the pid comes in a later Spawned
  MSGPACK_DEFINE_ARRAY(index, pid, message, parked)
};

struct Exited {
  static constexpr uint8_t kType = 5;
  static constexpr const char* kName = "exited";
  uint32_t index = 0;
  int64_t pid = 0;
  std::string how;
  MSGPACK_DEFINE_ARRAY(index, pid, how)
};

struct Detach {
  static constexpr uint8_t kType = 6;
  static constexpr const char* kName = "detach";
  uint32_t grace_ms = 3000;
  MSGPACK_DEFINE_ARRAY(grace_ms)
};

struct Detached {
  static constexpr uint8_t kType = 7;
  static constexpr const char* kName = "detached";
  MSGPACK_DEFINE_ARRAY()
};

struct Name {
  static constexpr uint8_t kType = 8;
  static constexpr const char* kName = "name";
  uint64_t seq = 0;
  int64_t driver = 0;
  std::string name, class_name;
  MSGPACK_DEFINE_ARRAY(seq, driver, name, class_name)
};

struct Named {
  static constexpr uint8_t kType = 9;
  static constexpr const char* kName = "named";
  uint64_t seq = 0;
  bool ok = false;
  std::string message;
  MSGPACK_DEFINE_ARRAY(seq, ok, message)
};

struct Find {
  static constexpr uint8_t kType = 10;
  static constexpr const char* kName = "find";
  uint64_t seq = 0;
  std::string name;
  MSGPACK_DEFINE_ARRAY(seq, name)
};

struct Found {
  static constexpr uint8_t kType = 11;
  static constexpr const char* kName = "found";
  uint64_t seq = 0;
  int64_t driver = 0;  // 0: no actor of that name
  std::string endpoint, class_name;
  MSGPACK_DEFINE_ARRAY(seq, driver, endpoint, class_name)
};

struct Locate {
  static constexpr uint8_t kType = 12;
  static constexpr const char* kName = "locate";
  uint64_t seq = 0;
  int64_t driver = 0;
  MSGPACK_DEFINE_ARRAY(seq, driver)
};

struct Located {
  static constexpr uint8_t kType = 13;
  static constexpr const char* kName = "located";
  uint64_t seq = 0;
  std::string endpoint;  // empty: no such driver here
  MSGPACK_DEFINE_ARRAY(seq, endpoint)
};

struct Yield {
  static constexpr uint8_t kType = 14;
  static constexpr const char* kName = "yield";
  uint32_t count = 0;
  MSGPACK_DEFINE_ARRAY(count)
};

struct Reach {
  static constexpr uint8_t kType = 15;
  static constexpr const char* kName = "reach";
  std::string endpoint;                                     // tcp://HOST:PORT
  std::string server_public, worker_public, worker_secret;  // Z85
  MSGPACK_DEFINE_ARRAY(endpoint, server_public, worker_public, worker_secret)
};

using NodeMessage = std::variant<Attach, Attached, Spawn, Spawned, Exited, Detach, Detached, Name, Named, Find, Found,
                                 Locate, Located, Yield, Reach>;

std::string encode(const NodeMessage& m);
Result<NodeMessage> decode_node(std::string_view bytes);
using wire::name_of;

}  // namespace weft::workers::node
