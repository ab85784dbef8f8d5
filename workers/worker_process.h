// The worker side of multi-process mode: a process started by a driver (running the driver's
// own binary) connects back over ZeroMQ and runs registered functions by name.
//
// Three threads: the I/O thread owns the ZeroMQ socket, queues incoming tasks and answers steal
// requests at once (with tasks it has not started); the executing thread runs queued tasks one
// after another through the registry's invokers; the actor thread runs the calls of the actors
// hosted here, in order (apart from tasks, so that a task may wait on an actor of this same
// process). Results, and requests to the driver from any thread, leave through one ordered
// outbox. The worker dies with its parent (PR_SET_PDEATHSIG: the driver, or its node), and exits
// after Shutdown.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "scheduler/ref_service.h"
#include "scheduler/remote_actor_host.h"

namespace weft::workers {

// Environment variables a driver sets for its workers.
inline constexpr const char* kEndpointEnv = "WEFT_WORKER_ENDPOINT";
inline constexpr const char* kIndexEnv = "WEFT_WORKER_INDEX";
inline constexpr const char* kStoreEnv = "WEFT_WORKER_STORE";
inline constexpr const char* kDriverPidEnv = "WEFT_WORKER_DRIVER_PID";  // the driver it serves
// A worker on another node than its driver's reaches it over TCP with CURVE: the driver's public
// key, then the worker's key pair (Z85, separated by spaces). It then exits when that connection
// drops (the driver died, or a partition outlasted the heartbeats' timeout), so a driver that
// gave it up never finds it still running.
inline constexpr const char* kCurveEnv = "WEFT_WORKER_CURVE";

// Serves tasks from the driver at `endpoint` until it says to stop; returns the exit code.
// `refs`: this process's refs (the worker asks the driver for pending objects through it).
// `install_driver_actors` is called with how tasks here reach the driver's named actors, and with
// null before the worker stops.
int run_worker(const std::string& endpoint, uint32_t index, sched::RefService* refs,
               const std::function<void(sched::RemoteActorHost*)>& install_driver_actors);

}  // namespace weft::workers
