// Control messages between a driver and its worker processes: one MessagePack array per ZeroMQ
// message, of one fixed shape for every type, with a version field:
//
//   [version, type, seq, function, payload, ok, error_type, error_message, count, pid, seqs, actor]
//
//   kHello     worker -> driver   count = worker index, pid
//   kTask      driver -> worker   seq, function (registered name), payload = packed arguments
//   kResult    worker -> driver   seq, ok; payload = packed result, or error_type/error_message
//   kSteal     driver -> worker   count: give back up to this many tasks not started yet
//   kReturned  worker -> driver   seqs: the tasks given back (possibly none)
//   kShutdown  driver -> worker   finish the running task, then exit
//   kActorCreate  driver -> worker   seq, actor (its id), function (the factory), payload
//   kActorCall    driver -> worker   seq, actor, function (the method's registered name), payload
//   kActorDrop    driver -> worker   actor: the last handle is gone; free the instance
// (kResult answers kActorCreate and kActorCall; actor messages are never given back on kSteal.)
//
// Decoding validates the whole shape, bounded by the message's size; anything else is an error
// naming what is wrong (the receiver logs it and drops the message).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "weft/status.h"

namespace weft::workers {

inline constexpr uint32_t kControlVersion = 1;

enum class ControlType : uint8_t {
  kHello = 1,
  kTask,
  kResult,
  kSteal,
  kReturned,
  kShutdown,
  kActorCreate,
  kActorCall,
  kActorDrop,
};

struct ControlMessage {
  ControlType type = ControlType::kHello;
  uint64_t seq = 0;
  std::string function;
  std::string payload;
  bool ok = true;
  std::string error_type, error_message;
  uint32_t count = 0;
  int64_t pid = 0;
  std::vector<uint64_t> seqs;
  uint64_t actor = 0;
};

std::string encode(const ControlMessage& m);
Result<ControlMessage> decode_control(std::string_view bytes);

}  // namespace weft::workers
