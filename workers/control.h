// Control messages between a driver and its worker processes: one ZeroMQ message each, in the
// wire codec's envelope [version, type, body] (core/wire.h), each type with a schema of its own:
//
//   Hello        worker -> driver   index, pid: the worker is up
//   Task         driver -> worker   seq, function (registered name), payload (packed arguments);
//                                   arguments over 1 MiB do not come with it: `streamed` says
//                                   their size, and the worker pulls them as the driver pulls a
//                                   large result (below), before the task is queued
//   TaskResult   worker -> driver   seq, payload (the packed result) or failure; answers Task,
//                                   ActorCreate and ActorCall. A payload over 1 MiB does not come
//                                   with it: `streamed` says its size, and the driver pulls it
//                                   in pieces, a few at a time (bounded bytes in flight)
//   PayloadPull  either way         seq, offset, length: the next piece of a streamed payload
//                                   of task `seq`: its result (driver -> worker) or its
//                                   arguments (worker -> driver); no bytes: let it go
//   PayloadPiece either way         seq, offset, data: that piece (the sender lets go of the
//                                   payload once it sent the last one)
//   Steal        driver -> worker   give back up to `count` tasks not started yet
//   Returned     worker -> driver   seqs: the tasks given back (possibly none; never actor messages)
//   Shutdown     driver -> worker   finish the running task, then exit
//   ActorCreate  driver -> worker   seq, actor (its id), factory, payload
//   ActorCall    driver -> worker   seq, actor, method (registered name), payload
//   ActorDrop    driver -> worker   actor: the last handle is gone; free the instance
//   ObjectWait   worker -> driver   object, owner: a ref the worker read names this pending object;
//                                   send its value once it exists (weft/detail/ref_wire.h). The
//                                   driver asks the owner when it is another driver of the node
//   ObjectReady  driver -> worker   record: the answer, the object's value or error
//   BorrowDone   worker -> driver   object: the answer arrived; the driver stops keeping it for
//                                   this worker
//   ActorLookup  worker -> driver   seq, name, class: a task looks up a named actor of the driver's
//   ActorFound   driver -> worker   seq, actor (0: not found, and why): the answer
//   ActorForward worker -> driver   seq, actor, method, payload: a call of that actor, made in the
//                                   driver after the actor's earlier calls
//   ActorReply   driver -> worker   seq, the call's outcome (as TaskResult)
//   ActorRelease worker -> driver   actor: one of the worker's handles to it is gone
//   ActorBorrow  worker -> driver   actor: the worker holds one more handle to it (it read one in
//                                   a message, or is sending one on); sent before the message
//                                   that carried or carries it is answered
//   PeerHello    driver -> driver   pid: another driver of the node connects as a borrower of this
//                                   one's actors and objects (ActorLookup, ActorForward,
//                                   ActorBorrow, ActorRelease, ObjectWait, BorrowDone)
//
// decode_control validates the envelope and the body's schema; anything else is kInvalidArgument
// naming what is wrong (the receiver logs it and drops the message).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/wire.h"
#include "weft/detail/ref_wire.h"
#include "weft/errors.h"
#include "weft/status.h"

namespace weft::workers {

inline constexpr wire::Protocol kControl{"control", 6};

struct Hello {
  static constexpr uint8_t kType = 1;
  static constexpr const char* kName = "hello";
  uint32_t index = 0;
  int64_t pid = 0;
  MSGPACK_DEFINE_ARRAY(index, pid)
};

struct Task {
  static constexpr uint8_t kType = 2;
  static constexpr const char* kName = "task";
  uint64_t seq = 0;
  std::string function;
  wire::Bytes payload;
  uint64_t streamed = 0;  // payload empty: the packed arguments' size, pulled with PayloadPull
  MSGPACK_DEFINE_ARRAY(seq, function, payload, streamed)
};

// Why a task failed on the worker: the ErrorInfo the driver rebuilds, its kind included.
struct Failure {
  uint8_t kind = 0;  // weft::ErrorKind
  std::string type;
  std::string message;
  MSGPACK_DEFINE_ARRAY(kind, type, message)
};

struct TaskResult {
  static constexpr uint8_t kType = 3;
  static constexpr const char* kName = "task result";
  uint64_t seq = 0;
  bool ok = true;
  wire::Bytes payload;  // ok: the packed result
  Failure failure;      // !ok
  uint64_t streamed = 0;  // ok, payload empty: the packed result's size, pulled with PayloadPull
  MSGPACK_DEFINE_ARRAY(seq, ok, payload, failure, streamed)
};

struct Steal {
  static constexpr uint8_t kType = 4;
  static constexpr const char* kName = "steal";
  uint32_t count = 0;
  MSGPACK_DEFINE_ARRAY(count)
};

struct Returned {
  static constexpr uint8_t kType = 5;
  static constexpr const char* kName = "returned";
  std::vector<uint64_t> seqs;
  MSGPACK_DEFINE_ARRAY(seqs)
};

struct Shutdown {
  static constexpr uint8_t kType = 6;
  static constexpr const char* kName = "shutdown";
  MSGPACK_DEFINE_ARRAY()
};

struct ActorCreate {
  static constexpr uint8_t kType = 7;
  static constexpr const char* kName = "actor create";
  uint64_t seq = 0;
  uint64_t actor = 0;
  std::string factory;
  wire::Bytes payload;
  MSGPACK_DEFINE_ARRAY(seq, actor, factory, payload)
};

struct ActorCall {
  static constexpr uint8_t kType = 8;
  static constexpr const char* kName = "actor call";
  uint64_t seq = 0;
  uint64_t actor = 0;
  std::string method;
  wire::Bytes payload;
  MSGPACK_DEFINE_ARRAY(seq, actor, method, payload)
};

struct ActorDrop {
  static constexpr uint8_t kType = 9;
  static constexpr const char* kName = "actor drop";
  uint64_t actor = 0;
  MSGPACK_DEFINE_ARRAY(actor)
};

struct ObjectWait {
  static constexpr uint8_t kType = 10;
  static constexpr const char* kName = "object wait";
  ObjectId object;
  int64_t owner = 0;  // the owning process, when not the receiver (a driver then asks that owner)
  MSGPACK_DEFINE_ARRAY(object, owner)
};

struct ObjectReady {
  static constexpr uint8_t kType = 11;
  static constexpr const char* kName = "object ready";
  detail::RefRecord record;
  MSGPACK_DEFINE_ARRAY(record)
};

struct BorrowDone {
  static constexpr uint8_t kType = 12;
  static constexpr const char* kName = "borrow done";
  ObjectId object;
  MSGPACK_DEFINE_ARRAY(object)
};

struct ActorLookup {
  static constexpr uint8_t kType = 13;
  static constexpr const char* kName = "actor lookup";
  uint64_t seq = 0;
  std::string name, class_name;
  MSGPACK_DEFINE_ARRAY(seq, name, class_name)
};

struct ActorFound {
  static constexpr uint8_t kType = 14;
  static constexpr const char* kName = "actor found";
  uint64_t seq = 0;
  uint64_t actor = 0;  // 0: not found
  uint8_t code = 0;    // weft::StatusCode when not found
  std::string message;
  MSGPACK_DEFINE_ARRAY(seq, actor, code, message)
};

struct ActorForward {
  static constexpr uint8_t kType = 15;
  static constexpr const char* kName = "actor forward";
  uint64_t seq = 0;
  uint64_t actor = 0;
  std::string method;
  wire::Bytes payload;
  MSGPACK_DEFINE_ARRAY(seq, actor, method, payload)
};

struct ActorReply {
  static constexpr uint8_t kType = 16;
  static constexpr const char* kName = "actor reply";
  TaskResult result;
  MSGPACK_DEFINE_ARRAY(result)
};

struct ActorRelease {
  static constexpr uint8_t kType = 17;
  static constexpr const char* kName = "actor release";
  uint64_t actor = 0;
  MSGPACK_DEFINE_ARRAY(actor)
};

struct ActorBorrow {
  static constexpr uint8_t kType = 18;
  static constexpr const char* kName = "actor borrow";
  uint64_t actor = 0;
  MSGPACK_DEFINE_ARRAY(actor)
};

struct PeerHello {
  static constexpr uint8_t kType = 19;
  static constexpr const char* kName = "peer hello";
  int64_t pid = 0;
  MSGPACK_DEFINE_ARRAY(pid)
};

struct PayloadPull {
  static constexpr uint8_t kType = 20;
  static constexpr const char* kName = "payload pull";
  uint64_t seq = 0, offset = 0, length = 0;
  MSGPACK_DEFINE_ARRAY(seq, offset, length)
};

struct PayloadPiece {
  static constexpr uint8_t kType = 21;
  static constexpr const char* kName = "payload piece";
  uint64_t seq = 0, offset = 0;
  wire::Bytes data;
  MSGPACK_DEFINE_ARRAY(seq, offset, data)
};

// Payloads larger than this are streamed: pulled in pieces of kPiece, kPieceWindow at a time.
inline constexpr size_t kStreamAbove = 1 << 20;
inline constexpr size_t kPiece = 1 << 20;
inline constexpr size_t kPieceWindow = 8;

using ControlMessage =
    std::variant<Hello, Task, TaskResult, Steal, Returned, Shutdown, ActorCreate, ActorCall, ActorDrop, ObjectWait,
                 ObjectReady, BorrowDone, ActorLookup, ActorFound, ActorForward, ActorReply, ActorRelease, ActorBorrow,
                 PeerHello, PayloadPull, PayloadPiece>;

std::string encode(const ControlMessage& m);
Result<ControlMessage> decode_control(std::string_view bytes);
using wire::name_of;  // the message type's name, for logs

// The failure a worker reports for an ErrorInfo, and the ErrorInfo the driver rebuilds from it
// (an unknown kind becomes kRemote).
Failure to_failure(const ErrorInfo& e);

// The largest streamed payload a receiver accepts: this machine's memory.
uint64_t largest_payload();
ErrorInfo from_failure(const std::string& task_name, const Failure& f);

}  // namespace weft::workers
