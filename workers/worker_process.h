// The worker side of multi-process mode: a process started by a driver (running the driver's
// own binary) connects back over ZeroMQ and runs registered functions by name.
//
// Two threads: the I/O thread owns the ZeroMQ socket, queues incoming tasks and answers steal
// requests at once (with tasks it has not started); the executing thread runs queued tasks one
// after another through the registry's invokers. The worker dies with its driver
// (PR_SET_PDEATHSIG), and exits after kShutdown.
#pragma once

#include <cstdint>
#include <string>

#include "scheduler/ref_service.h"

namespace weft::workers {

// Environment variables a driver sets for its workers.
inline constexpr const char* kEndpointEnv = "WEFT_WORKER_ENDPOINT";
inline constexpr const char* kIndexEnv = "WEFT_WORKER_INDEX";
inline constexpr const char* kStoreEnv = "WEFT_WORKER_STORE";
inline constexpr const char* kDriverPidEnv = "WEFT_WORKER_DRIVER_PID";  // the driver it serves

// Serves tasks from the driver at `endpoint` until it says to stop; returns the exit code.
// `refs`: this process's refs (the worker asks the driver for pending objects through it).
int run_worker(const std::string& endpoint, uint32_t index, sched::RefService* refs);

}  // namespace weft::workers
