#include "runtime/runtime.h"

#include "runtime/actor_exports.h"
#include "runtime/node_store.h"
#include "runtime/object_refs.h"
#include "workers/peer_drivers.h"

#include "scheduler/work_stealing_pool.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

#include "cluster/credential.h"
#include "cluster/head_client.h"
#include "core/logging.h"
#include "weft/api.h"
#include "weft/detail/hooks.h"
#include "weft/registry.h"
#include "workers/process_executor.h"
#include "workers/worker_process.h"

namespace weft {
namespace runtime {
namespace {

std::mutex g_lifecycle_mu;             // serialises init and shutdown
std::atomic<Runtime*> g_api{nullptr};  // accepts user submissions
std::atomic<Runtime*> g_live{nullptr};  // serves internal traffic until teardown
std::atomic<bool> g_was_shut_down{false};
bool g_in_worker = false;  // set once, before any init, in a worker process
uint64_t g_driver_pid = 0;  // in a worker process: its driver's
// In a worker process: how tasks reach the driver's named actors (set while the worker serves).
std::atomic<sched::RemoteActorHost*> g_driver_actors{nullptr};

// The driver's actors as its workers reach them.
ActorExportTable& exports() { return ActorExportTable::process(); }

}  // namespace

Runtime* live() { return g_live.load(std::memory_order_acquire); }

namespace {
// With g_lifecycle_mu held and no runtime running.
void install(std::unique_ptr<sched::Executor> executor, ResourceSet capacity, sched::RemoteActorHost* actors) {
  auto* rt = new Runtime(std::move(executor), std::move(capacity), actors);
  g_live.store(rt, std::memory_order_release);
  g_api.store(rt, std::memory_order_release);
}
}  // namespace

Status start(std::unique_ptr<sched::Executor> executor, ResourceSet capacity, sched::RemoteActorHost* actors) {
  std::lock_guard lock(g_lifecycle_mu);
  if (g_api.load(std::memory_order_acquire) != nullptr) return Status::failed_precondition("a runtime is running");
  install(std::move(executor), std::move(capacity), actors);
  return Status::ok();
}

Runtime::Runtime(std::unique_ptr<sched::Executor> executor, ResourceSet capacity, sched::RemoteActorHost* actors)
    : executor_(std::move(executor)), actors_(actors), gate_(std::move(capacity)) {}

Runtime::~Runtime() { stop(); }

void Runtime::stop() {
  executor_->shutdown();
  // Parked tasks (waiting for resources) and whatever their cancellation makes ready.
  while (true) {
    auto parked = gate_.drain_parked();
    for (detail::Runnable* r : parked) r->cancel();
    executor_->cancel_pending();
    if (parked.empty()) break;
  }
}

}  // namespace runtime

void serve_if_worker() {
  const char* env = std::getenv(workers::kEndpointEnv);
  if (env == nullptr || *env == '\0') return;
  const std::string endpoint = env;
  const char* index_env = std::getenv(workers::kIndexEnv);
  const uint32_t index = index_env != nullptr ? static_cast<uint32_t>(std::atoi(index_env)) : 0;
  const char* store_env = std::getenv(workers::kStoreEnv);
  const std::string store = store_env != nullptr ? store_env : "";
  // Gone from the environment: the init below, and processes that tasks start, are not workers.
  unsetenv(workers::kEndpointEnv);
  unsetenv(workers::kIndexEnv);
  unsetenv(workers::kStoreEnv);
  unsetenv("WEFT_PROCESSES");
  runtime::g_in_worker = true;  // a worker never starts workers of its own
  if (!store.empty()) {
    if (Status s = runtime::connect_node_store(store); !s.is_ok()) {
      log()->error("worker {}: cannot reach the node store: {}", index, s.message());
      std::exit(3);
    }
  }
  // Refs to this worker's own objects hand their values to the driver when they leave.
  const char* driver_env = std::getenv(workers::kDriverPidEnv);
  const uint64_t driver = driver_env != nullptr ? std::strtoull(driver_env, nullptr, 10) : 0;
  runtime::g_driver_pid = driver != 0 ? driver : static_cast<uint64_t>(getppid());
  runtime::ObjectRefs::process().set_hand_over(runtime::g_driver_pid);
  unsetenv(workers::kDriverPidEnv);
  // Tasks may submit nested tasks: they run on threads of this worker.
  (void)init({});
  const int code = workers::run_worker(endpoint, index, &runtime::ObjectRefs::process(),
                                       [](sched::RemoteActorHost* h) { runtime::g_driver_actors.store(h); });
  (void)shutdown();
  runtime::disconnect_node_store();
  std::exit(code);
}

namespace {

// "HOST:PORT", a cluster's head: the node of that cluster on this machine, which the driver attaches
// to (as a Ray driver connects to its machine's raylet). The head is asked with the cluster's
// credential ($WEFT_CREDENTIAL, or ~/.weft/cluster.key).
Result<std::string> node_of_cluster(const std::string& head) {
  WEFT_ASSIGN_OR_RETURN(cluster::Credential credential, cluster::Credential::load(cluster::default_credential_path()));
  cluster::HeadClient client(head, std::move(credential));
  WEFT_ASSIGN_OR_RETURN(cluster::StatusReply status, client.call<cluster::StatusReply>(cluster::StatusRequest{}));
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  for (const auto& n : status.nodes) {
    if (n.alive && n.hostname == host && n.node_socket.rfind("unix:", 0) == 0 &&
        std::filesystem::exists(n.node_socket.substr(5))) {
      return n.node_socket;
    }
  }
  return Status::not_found("the cluster at " + head + " has no live node on this machine (" + host +
                           "); start one with `weft start --address " + head + "`");
}

}  // namespace

Status init(const Options& options) {
  serve_if_worker();
  std::lock_guard lock(runtime::g_lifecycle_mu);
  if (runtime::g_api.load(std::memory_order_acquire) != nullptr) {
    return Status::failed_precondition("weft::init: the runtime is already running; call weft::shutdown() first");
  }
  // A driver a cluster runs as a job finds its node in the environment ($WEFT_ADDRESS, set by the
  // node), so a program written for the embedded runtime runs there unchanged.
  std::string address = options.address;
  if (const char* env = std::getenv("WEFT_ADDRESS"); address.empty() && !runtime::g_in_worker && env != nullptr) {
    address = env;
  }
  if (!address.empty() && address.rfind("unix:", 0) != 0 && !runtime::g_in_worker) {
    auto node = node_of_cluster(address);
    if (!node.ok())
      return Status::unavailable("weft::init: cannot join the cluster at " + address + ": " + node.status().message());
    address = *node;
  }
  if (options.num_workers < 0) {
    return Status::invalid_argument("weft::init: num_workers must be >= 0 (0 means one per core)");
  }
  if (options.processes < 0 || options.pipeline_depth < 1) {
    return Status::invalid_argument("weft::init: processes must be >= 0 and pipeline_depth >= 1");
  }
  for (const auto& [name, qty] : options.resources) {
    if (name.empty() || qty < 0) {
      return Status::invalid_argument("weft::init: resource '" + name + "' must be named and non-negative");
    }
  }
  WEFT_RETURN_IF_ERROR(set_log_level(options.log_level));
  WEFT_RETURN_IF_ERROR(Registry::global().validate());

  const bool on_node = !address.empty() && !runtime::g_in_worker;
  int processes = runtime::g_in_worker ? 0 : options.processes;
  if (const char* env = std::getenv("WEFT_PROCESSES"); processes == 0 && !runtime::g_in_worker && env != nullptr && *env != '\0') {
    processes = std::atoi(env);
    if (processes < 0) return Status::invalid_argument("weft::init: $WEFT_PROCESSES must be a number >= 0");
  }
  int workers = options.num_workers;
  if (workers == 0) workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  ResourceSet capacity = options.resources;
  capacity.try_emplace("CPU", static_cast<double>(workers));
  std::unique_ptr<sched::Executor> executor;
  sched::RemoteActorHost* actors = nullptr;
  if (processes > 0 || on_node) {
    WEFT_ASSIGN_OR_RETURN(auto process_executor,
                          workers::ProcessExecutor::start({.processes = processes,
                                                           .node_address = on_node ? address : "",
                                                           .pipeline_depth = options.pipeline_depth,
                                                           .local_threads = workers,
                                                           .store_bytes = options.store_bytes,
                                                           .refs = &runtime::ObjectRefs::process(),
                                                           .actors = &runtime::exports()}));
    WEFT_RETURN_IF_ERROR(runtime::connect_node_store(process_executor->store_socket()));
    actors = process_executor.get();
    executor = std::move(process_executor);
  } else {
    executor = std::make_unique<sched::WorkStealingPool>(sched::PoolOptions{workers, "weft-worker"});
  }
  runtime::install(std::move(executor), std::move(capacity), actors);
  if (processes > 0 || on_node) {
    log()->info("runtime started with {} worker processes and {} local threads",
                runtime::live()->executor().num_workers(), workers);
  } else {
    log()->info("embedded runtime started with {} worker threads", workers);
  }
  return Status::ok();
}

Status shutdown() {
  std::lock_guard lock(runtime::g_lifecycle_mu);
  runtime::Runtime* rt = runtime::g_api.load(std::memory_order_acquire);
  if (rt == nullptr) return Status::failed_precondition("weft::shutdown: the runtime is not running");
  if (rt->executor().in_worker_thread()) {
    return Status::failed_precondition("weft::shutdown: cannot shut down from inside a task");
  }
  runtime::g_api.store(nullptr, std::memory_order_release);
  runtime::exports().clear();  // what workers held of named actors
  rt->named_actors().clear();  // while the executor still runs: remote actors get their drop
  rt->stop();
  runtime::g_live.store(nullptr, std::memory_order_release);
  runtime::disconnect_node_store();
  delete rt;
  runtime::g_was_shut_down.store(true, std::memory_order_relaxed);
  log()->info("embedded runtime stopped");
  return Status::ok();
}

bool is_initialized() { return runtime::g_api.load(std::memory_order_acquire) != nullptr; }

int num_workers() {
  runtime::Runtime* rt = runtime::g_api.load(std::memory_order_acquire);
  return rt ? rt->executor().num_workers() : 0;
}

namespace detail {

namespace {
sched::RemoteActorHost* remote_actors() {
  runtime::Runtime* rt = runtime::live();
  return rt != nullptr ? rt->remote_actors() : nullptr;
}
// Where a call of an actor living in another process goes: this driver's workers, or (in a
// worker) the driver.
sched::RemoteActorHost* actor_host() {
  if (sched::RemoteActorHost* h = remote_actors()) return h;
  return runtime::g_driver_actors.load();
}
}  // namespace

Result<uint64_t> named_driver_actor(const std::string& name, const std::string& class_name) {
  if (!runtime::g_in_worker) {  // a driver: another driver's of the same node
    sched::RemoteActorHost* host = remote_actors();
    if (host == nullptr) return Status::not_found("no actor is named '" + name + "'");
    return host->find_named(name, class_name);
  }
  sched::RemoteActorHost* link = runtime::g_driver_actors.load();
  if (link == nullptr) return Status::not_found("no actor is named '" + name + "'");
  return link->find_named(name, class_name);
}

bool remote_actors_available() { return remote_actors() != nullptr; }

ActorWireId export_actor(ActorCore* actor) {
  if (runtime::g_in_worker) {
    sched::RemoteActorHost* link = runtime::g_driver_actors.load();
    const uint64_t id = actor->lives_elsewhere() ? actor->hosted_id() : 0;
    if (link == nullptr || id == 0) {
      throw Error("weft: a handle to actor " + actor->class_name() +
                  ", made in a worker process, cannot leave it (only handles to the driver's actors travel)");
    }
    link->borrow_actor(id);  // before the message carrying it: the driver keeps it until it reads it
    return ActorWireId{id, static_cast<uint64_t>(getpid()), runtime::g_driver_pid};
  }
  if (!remote_actors_available()) {
    throw Error("weft: actor handles travel between processes only in multi-process mode");
  }
  if (actor->hosted_id() >= workers::PeerDrivers::kAliasBase) {
    throw Error("weft: a handle to actor " + actor->class_name() +
                " of another driver cannot be passed on; look it up by name with weft::get_actor where it is needed");
  }
  return ActorWireId{runtime::exports().lend(actor), 0, static_cast<uint64_t>(getpid())};
}

ActorCore* import_actor(const ActorWireId& wire) {
  const uint64_t here = runtime::g_in_worker ? runtime::g_driver_pid : static_cast<uint64_t>(getpid());
  if (wire.owner != here) {
    throw Error("weft: a handle to an actor of driver " + std::to_string(wire.owner) + " reached a process of driver " +
                std::to_string(here) + "; look actors of other drivers up by name with weft::get_actor");
  }
  if (runtime::g_in_worker) {
    sched::RemoteActorHost* link = runtime::g_driver_actors.load();
    if (link == nullptr) throw Error("weft: an actor handle reached a worker that cannot reach its driver");
    link->borrow_actor(wire.id);  // the proxy's drop releases it
    return nullptr;
  }
  ActorCore* actor = runtime::exports().find(wire.id);
  if (wire.lender != 0) runtime::exports().release(wire.id, wire.lender);  // the lender's borrow, now ours
  if (actor == nullptr) throw Error("weft: an actor handle names actor " + std::to_string(wire.id) + ", which is gone");
  return actor;
}

Status name_actor(const std::string& name, const std::type_info& type, ActorCore* actor) {
  runtime::Runtime* rt = runtime::live();
  if (rt == nullptr) return Status::failed_precondition("the runtime is not running");
  WEFT_RETURN_IF_ERROR(rt->named_actors().add(name, type, actor));
  // On a node, the name is the node's too: two drivers cannot both take it.
  if (sched::RemoteActorHost* host = remote_actors(); host != nullptr && !runtime::g_in_worker) {
    if (Status s = host->publish_name(name, demangle(type.name())); !s.is_ok()) {
      rt->named_actors().remove(name);
      return s;
    }
  }
  return Status::ok();
}

Result<ActorCore*> named_actor(const std::string& name, const std::type_info& type) {
  runtime::Runtime* rt = runtime::live();
  if (rt == nullptr) return Status::failed_precondition("the runtime is not running");
  return rt->named_actors().find(name, type);
}

RemoteOutcome remote_actor_create(const std::string& factory, std::string packed_args, const std::string& call_name,
                                  int max_restarts) {
  sched::RemoteActorHost* host = remote_actors();
  if (host == nullptr) {
    RemoteOutcome out;
    out.error = cancelled_error(call_name);
    return out;
  }
  return host->create_actor(factory, std::move(packed_args), call_name, max_restarts);
}

RemoteOutcome remote_actor_call(uint64_t actor, const std::string& method, std::string packed_args,
                                const std::string& call_name) {
  sched::RemoteActorHost* host = actor_host();
  if (host == nullptr) {
    RemoteOutcome out;
    out.error = cancelled_error(call_name);
    return out;
  }
  return host->call_actor(actor, method, std::move(packed_args), call_name);
}

void remote_actor_drop(uint64_t actor) {
  if (sched::RemoteActorHost* host = actor_host()) host->drop_actor(actor);
}

void ensure_running() {
  if (runtime::g_api.load(std::memory_order_acquire) != nullptr) return;
  if (runtime::g_was_shut_down.load(std::memory_order_relaxed)) {
    throw Error("weft: the runtime has been shut down; call weft::init() again to submit work");
  }
  throw Error("weft: weft::init() has not been called");
}

void submit(Runnable* r) {
  runtime::Runtime* rt = runtime::live();
  if (rt == nullptr) {
    r->cancel();  // torn down: nothing will ever run it
    return;
  }
  rt->executor().submit(r);
}

void wake_sleepers() noexcept {
  if (runtime::Runtime* rt = runtime::live()) rt->executor().wake_sleepers();
}

Admission acquire_resources(Runnable* r, const ResourceSet& need, std::string* why) {
  runtime::Runtime* rt = runtime::live();
  if (rt == nullptr) return Admission::kNow;  // about to be cancelled anyway
  switch (rt->gate().acquire(r, need, why)) {
    case sched::ResourceGate::Outcome::kNow: return Admission::kNow;
    case sched::ResourceGate::Outcome::kParked: return Admission::kParked;
    case sched::ResourceGate::Outcome::kInfeasible: return Admission::kInfeasible;
  }
  return Admission::kInfeasible;
}

void release_resources(const ResourceSet& need) {
  runtime::Runtime* rt = runtime::live();
  if (rt == nullptr) return;
  for (Runnable* r : rt->gate().release(need)) rt->executor().submit(r);
}

}  // namespace detail
}  // namespace weft
