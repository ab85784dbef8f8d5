// Runtime options and the scheduling vocabulary shared by tasks and actors.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace weft {

/// SLO priority classes. A ready task of a more urgent class always starts before a ready task of a
/// less urgent one that was queued at the same node; within a class, tasks with a deadline run
/// earliest-deadline-first, ahead of tasks without one.
enum class Slo : uint8_t {
  kLatencyCritical = 0,
  kStandard = 1,
  kBatch = 2,
};
/// The number of Slo classes.
inline constexpr int kNumSloClasses = 3;

/// The clock of deadlines.
using Clock = std::chrono::steady_clock;

/// Named resource quantities, e.g. {{"CPU", 1}, {"GPU", 1}}.
using ResourceSet = std::map<std::string, double>;

/// What weft::init starts.
struct Options {
  /// Empty: run embedded (head, node and workers as threads of this process), or with a private
  /// node (`processes`). "unix:PATH": attach to the `weft node` daemon listening there (its store
  /// is shared with the other drivers attached to it; `processes` workers, 0 taking the node's
  /// default, run this program's binary under it). "host:port": a cluster's head (`weft start
  /// --head`), asked with the cluster's credential ($WEFT_CREDENTIAL or ~/.weft/cluster.key) for
  /// its node on this machine, which the program then attaches to (kUnavailable, saying why, when
  /// it cannot: no credential, refused, no node of that cluster here). Left empty, $WEFT_ADDRESS is taken when set: a
  /// cluster's node sets it for the jobs it runs, so a driver submitted with `weft job submit` attaches to its node.
  std::string address;
  /// Worker threads; 0 means one per hardware thread.
  int num_workers = 0;
  /// 0: everything runs on threads of this process (embedded), unless $WEFT_PROCESSES names a
  /// number (which then applies to a program that left this at 0). N > 0: multi-process mode — N
  /// worker processes (this program's binary, started again) run the tasks of registered
  /// functions whose arguments and results are serialisable (refs included), so a crashing task
  /// cannot take the driver down; what cannot travel runs on `num_workers` threads here.
  int processes = 0;
  /// Multi-process mode: tasks in flight per worker process (pipelining), >= 1.
  int pipeline_depth = 4;
  /// Multi-process mode: bytes of the node's shared-memory object store; 0: 30% of the memory.
  size_t store_bytes = 0;
  /// Resources this node offers beyond {"CPU": num_workers}; e.g. {{"GPU", 1}}.
  ResourceSet resources;
  /// spdlog level name: trace, debug, info, warn, error, critical, off. Empty: $WEFT_LOG_LEVEL or warn.
  std::string log_level;
};

}  // namespace weft
