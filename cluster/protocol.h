// Messages of the cluster's control plane: nodes and clients (the `weft` command, drivers) to the
// head, and the head to its nodes. One ZeroMQ message each, in the wire codec's envelope
// [version, type, body] (core/wire.h), on CURVE-encrypted connections (secure_socket.h).
//
// Node <-> head, on one DEALER socket per node (routing id: the node's id), asynchronous:
//   Register       node -> head   who the node is: id, host, pid, resources, its local socket
//   Heartbeat      node -> head   every 500 ms: the node's load and the state of each of its jobs
//   HeartbeatReply head -> node   known (else register again), per job the log bytes the head
//                                 has, and the jobs the head has in full (the node forgets them)
//   JobStart       head -> node   run a job (again: ignored when the node knows it)
//   JobKill        head -> node   stop a job: SIGTERM to its process group, SIGKILL after a grace
//   PackageFetch   node -> head   a working directory's package, by hash
//   PackageData    head -> node   the package (or why not)
//   JobLog         node -> head   bytes of a job's output at an offset; the head appends them
//                                 only at its own length, so resending is harmless
// Worker leases: a node whose slots are all taken asks the head for a worker of one of its
// drivers on another node (spillback, as a Ray raylet spills a lease request to another raylet);
// that worker connects straight to the driver, which dispatches to it like to its own:
//   LeaseAsk       node -> head   start this worker somewhere else (resent until answered)
//   LeaseStart     head -> node   start it here (again: ignored when the node has it)
//   LeaseAnswer    head -> node   where one of its leases runs (node, pid), or that it ended or
//                                 could not be placed (and why)
// and state in the heartbeats: a node lists the leases its drivers still want (`wanted`) and the
// leased workers it runs for others (`leases`); the head's reply names those to kill (nobody
// wants them: their driver left, its node died) and those whose end it has passed on (`done`).
// The node reports state, not events, so nothing is lost when the head restarts: a heartbeat
// carries everything the head must know, and the head's replies say what it still lacks.
//
// Client -> head, one request and its reply on a DEALER socket of the client's:
//   StatusRequest -> StatusReply        nodes and jobs
//   PackageHave   -> Reply              whether the head holds a package (ok: it does)
//   PackageUpload -> Reply              a working directory's package, checked against its hash
//   JobSubmit     -> JobSubmitted       a new job's id
//   JobQuery      -> JobInfoReply       one job
//   LogsRequest   -> LogsReply          a job's output from an offset
//   JobStop       -> Reply
// Any request may be answered by Reply{ok=false} with a status code and message instead, as is a
// malformed one.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/wire.h"
#include "weft/status.h"

namespace weft::cluster {

inline constexpr wire::Protocol kClusterProtocol{"cluster", 2};

// A job's life. Final states are kSucceeded, kFailed and kStopped.
enum class JobState : uint8_t { kPending = 0, kRunning = 1, kSucceeded = 2, kFailed = 3, kStopped = 4 };
std::string_view to_string(JobState s);
bool is_final(JobState s);

struct Register {
  static constexpr uint8_t kType = 1;
  static constexpr const char* kName = "register";
  std::string node_id, hostname;
  int64_t pid = 0;
  std::map<std::string, double> resources;
  std::string node_socket;  // "unix:PATH": drivers on the node's machine attach there
  uint32_t slots = 0;       // worker processes it runs at once
  MSGPACK_DEFINE_ARRAY(node_id, hostname, pid, resources, node_socket, slots)
};

// A worker process to start for a driver on another node: what the driver's own node would run.
struct WorkerLease {
  std::string lease_id;  // unique in the cluster: the asking node's id, then a number
  std::string owner;     // the asking node
  uint32_t index = 0;    // the worker's index in its driver's pool
  int64_t driver_pid = 0;
  std::string executable;
  std::vector<std::string> argv, env;
  std::string cwd;
  std::string endpoint;  // the driver's control socket for workers elsewhere: tcp://HOST:PORT
  // The worker's CURVE keys for that socket (Z85): the driver's public key, the worker's pair.
  std::string server_public, worker_public, worker_secret;
  MSGPACK_DEFINE_ARRAY(lease_id, owner, index, driver_pid, executable, argv, env, cwd, endpoint, server_public,
                       worker_public, worker_secret)
};

// A leased worker as the node running it sees it.
struct LeaseReport {
  std::string lease_id, owner;
  int64_t pid = 0;  // 0: it could not start (`how` says why)
  bool exited = false;
  std::string how;
  MSGPACK_DEFINE_ARRAY(lease_id, owner, pid, exited, how)
};

struct JobReport {
  std::string job_id;
  uint8_t state = 0;  // JobState
  int32_t exit_code = 0;
  std::string message;
  uint64_t log_size = 0;
  MSGPACK_DEFINE_ARRAY(job_id, state, exit_code, message, log_size)
};

struct Heartbeat {
  static constexpr uint8_t kType = 2;
  static constexpr const char* kName = "heartbeat";
  std::string node_id;
  uint32_t workers = 0, drivers = 0;  // worker processes running on the node, drivers attached
  uint64_t objects = 0, object_bytes = 0, store_bytes = 0;  // its object store: objects, bytes used, capacity
  std::vector<JobReport> jobs;
  uint32_t slots = 0;               // worker processes it runs at once
  std::vector<std::string> wanted;  // leases its drivers hold or wait for
  std::vector<LeaseReport> leases;  // workers it runs for drivers elsewhere
  MSGPACK_DEFINE_ARRAY(node_id, workers, drivers, objects, object_bytes, store_bytes, jobs, slots, wanted, leases)
};

struct LogOffset {
  std::string job_id;
  uint64_t offset = 0;
  MSGPACK_DEFINE_ARRAY(job_id, offset)
};

struct HeartbeatReply {
  static constexpr uint8_t kType = 3;
  static constexpr const char* kName = "heartbeat reply";
  bool known = false;
  std::vector<LogOffset> logs;
  std::vector<std::string> done;
  std::vector<std::string> lease_kill;  // leased workers to stop: nobody wants them
  std::vector<std::string> lease_done;  // ended leases whose end reached their owner: forget them
  MSGPACK_DEFINE_ARRAY(known, logs, done, lease_kill, lease_done)
};

struct JobStart {
  static constexpr uint8_t kType = 4;
  static constexpr const char* kName = "job start";
  std::string job_id;
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  std::string package;  // hash; empty: no working directory
  MSGPACK_DEFINE_ARRAY(job_id, argv, env, package)
};

struct JobKill {
  static constexpr uint8_t kType = 5;
  static constexpr const char* kName = "job kill";
  std::string job_id;
  MSGPACK_DEFINE_ARRAY(job_id)
};

struct PackageFetch {
  static constexpr uint8_t kType = 6;
  static constexpr const char* kName = "package fetch";
  std::string hash;
  MSGPACK_DEFINE_ARRAY(hash)
};

struct PackageData {
  static constexpr uint8_t kType = 7;
  static constexpr const char* kName = "package data";
  std::string hash;
  bool ok = false;
  std::string error;
  wire::Bytes data;
  MSGPACK_DEFINE_ARRAY(hash, ok, error, data)
};

struct JobLog {
  static constexpr uint8_t kType = 8;
  static constexpr const char* kName = "job log";
  std::string job_id;
  uint64_t offset = 0;
  wire::Bytes data;
  MSGPACK_DEFINE_ARRAY(job_id, offset, data)
};

struct LeaseAsk {
  static constexpr uint8_t kType = 9;
  static constexpr const char* kName = "lease ask";
  WorkerLease lease;
  MSGPACK_DEFINE_ARRAY(lease)
};

struct LeaseStart {
  static constexpr uint8_t kType = 10;
  static constexpr const char* kName = "lease start";
  WorkerLease lease;
  MSGPACK_DEFINE_ARRAY(lease)
};

struct LeaseAnswer {
  static constexpr uint8_t kType = 11;
  static constexpr const char* kName = "lease answer";
  std::string lease_id;
  std::string node_id;  // where it runs; empty: it could not be placed
  int64_t pid = 0;
  bool ended = false;  // it exited, could not start or could not be placed (`how`)
  std::string how;
  MSGPACK_DEFINE_ARRAY(lease_id, node_id, pid, ended, how)
};

struct StatusRequest {
  static constexpr uint8_t kType = 20;
  static constexpr const char* kName = "status request";
  uint8_t unused = 0;
  MSGPACK_DEFINE_ARRAY(unused)
};

struct NodeInfo {
  std::string node_id, hostname;
  int64_t pid = 0;
  bool alive = false;
  std::map<std::string, double> resources;
  std::map<std::string, double> used;  // held by its unfinished jobs
  uint32_t workers = 0, drivers = 0, jobs = 0;
  uint64_t objects = 0, object_bytes = 0, store_bytes = 0;
  int64_t last_seen_ms = 0;  // since the epoch
  std::string node_socket;
  MSGPACK_DEFINE_ARRAY(node_id, hostname, pid, alive, resources, used, workers, drivers, jobs, objects, object_bytes,
                       store_bytes, last_seen_ms, node_socket)
};

struct JobInfo {
  std::string job_id;
  std::vector<std::string> argv;
  std::string node_id;
  uint8_t state = 0;  // JobState
  int32_t exit_code = 0;
  std::string message;
  int64_t submitted_ms = 0, started_ms = 0, ended_ms = 0;
  uint64_t log_size = 0;
  std::map<std::string, double> resources;  // what it holds on its node while it runs
  MSGPACK_DEFINE_ARRAY(job_id, argv, node_id, state, exit_code, message, submitted_ms, started_ms, ended_ms, log_size,
                       resources)
};

struct StatusReply {
  static constexpr uint8_t kType = 21;
  static constexpr const char* kName = "status reply";
  std::string head_address;
  std::vector<NodeInfo> nodes;
  std::vector<JobInfo> jobs;
  MSGPACK_DEFINE_ARRAY(head_address, nodes, jobs)
};

struct PackageHave {
  static constexpr uint8_t kType = 22;
  static constexpr const char* kName = "package have";
  std::string hash;
  MSGPACK_DEFINE_ARRAY(hash)
};

struct PackageUpload {
  static constexpr uint8_t kType = 23;
  static constexpr const char* kName = "package upload";
  std::string hash;
  wire::Bytes data;
  MSGPACK_DEFINE_ARRAY(hash, data)
};

struct JobSubmit {
  static constexpr uint8_t kType = 24;
  static constexpr const char* kName = "job submit";
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  std::string package;
  std::map<std::string, double> resources;  // placed only where these are free
  MSGPACK_DEFINE_ARRAY(argv, env, package, resources)
};

struct JobSubmitted {
  static constexpr uint8_t kType = 25;
  static constexpr const char* kName = "job submitted";
  std::string job_id;
  MSGPACK_DEFINE_ARRAY(job_id)
};

struct JobQuery {
  static constexpr uint8_t kType = 26;
  static constexpr const char* kName = "job query";
  std::string job_id;
  MSGPACK_DEFINE_ARRAY(job_id)
};

struct JobInfoReply {
  static constexpr uint8_t kType = 27;
  static constexpr const char* kName = "job info";
  JobInfo job;
  MSGPACK_DEFINE_ARRAY(job)
};

struct LogsRequest {
  static constexpr uint8_t kType = 28;
  static constexpr const char* kName = "logs request";
  std::string job_id;
  uint64_t offset = 0;
  MSGPACK_DEFINE_ARRAY(job_id, offset)
};

struct LogsReply {
  static constexpr uint8_t kType = 29;
  static constexpr const char* kName = "logs reply";
  wire::Bytes data;
  bool finished = false;  // the job ended and the head holds all of its output
  MSGPACK_DEFINE_ARRAY(data, finished)
};

struct JobStop {
  static constexpr uint8_t kType = 30;
  static constexpr const char* kName = "job stop";
  std::string job_id;
  MSGPACK_DEFINE_ARRAY(job_id)
};

// An answer with no data of its own; a failed request's answer (code: StatusCode).
struct Reply {
  static constexpr uint8_t kType = 31;
  static constexpr const char* kName = "reply";
  bool ok = false;
  uint8_t code = 0;
  std::string message;
  MSGPACK_DEFINE_ARRAY(ok, code, message)

  static Reply of(const Status& s) { return {s.is_ok(), static_cast<uint8_t>(s.code()), s.message()}; }
  Status status() const;
};

// What reaches the head from nodes and clients alike.
using ToHead = std::variant<Register, Heartbeat, PackageFetch, JobLog, LeaseAsk, StatusRequest, PackageHave,
                            PackageUpload, JobSubmit, JobQuery, LogsRequest, JobStop>;
// What reaches a node from the head.
using ToNode = std::variant<HeartbeatReply, JobStart, JobKill, PackageData, LeaseStart, LeaseAnswer>;
// What reaches a client from the head.
using ToClient = std::variant<StatusReply, JobSubmitted, JobInfoReply, LogsReply, Reply>;

Result<ToHead> decode_to_head(std::string_view bytes);
Result<ToNode> decode_to_node(std::string_view bytes);
Result<ToClient> decode_to_client(std::string_view bytes);

template <class M>
std::string encode(const M& m) {
  return wire::encode(kClusterProtocol, m);
}

}  // namespace weft::cluster
