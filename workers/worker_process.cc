#include "workers/worker_process.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <condition_variable>
#include <optional>
#include <unordered_map>
#include <deque>
#include <mutex>
#include <thread>

#include <zmq.hpp>

#include "core/logging.h"
#include "weft/detail/hooks.h"
#include "weft/registry.h"
#include "workers/control.h"

namespace weft::workers {
namespace {

// Tasks received and not started, shared by the two threads.
struct TaskQueue {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<ControlMessage> tasks;
  bool stop = false;
};

// Actor instances hosted here, by the driver's actor id (executing thread only).
struct HostedActor {
  void* instance;
  ActorDestructor destroy;
};
using Actors = std::unordered_map<uint64_t, HostedActor>;

ControlMessage remote_error(ControlMessage r, std::string message) {
  r.ok = false;
  r.error_type = "weft::RemoteError";
  r.error_message = std::move(message);
  return r;
}

// The exception being handled, as the reply's error.
void take_exception(ControlMessage& r, const std::string& what_ran) {
  detail::ErrorPtr err = detail::error_from_current_exception(what_ran);
  r.ok = false;
  r.error_type = err->exception_type;
  r.error_message = err->message;
}

// Runs one task, actor construction or actor call through the registry; the reply to send back
// (none for kActorDrop).
std::optional<ControlMessage> execute(const ControlMessage& task, Actors& actors) {
  ControlMessage r;
  r.type = ControlType::kResult;
  r.seq = task.seq;
  if (task.type == ControlType::kActorDrop) {
    if (auto it = actors.find(task.actor); it != actors.end()) {
      it->second.destroy(it->second.instance);
      actors.erase(it);
    }
    return std::nullopt;
  }
  const RemoteEntry* e = Registry::global().find_by_name(task.function);
  void* self = nullptr;
  if (task.type == ControlType::kActorCreate) {
    if (e == nullptr || e->construct == nullptr) {
      return remote_error(r, "no actor factory '" + task.function + "' is registered in this worker's binary");
    }
    try {
      actors[task.actor] = HostedActor{e->construct(task.payload), e->destroy};
      r.payload = pack(msgpack::type::nil_t());
    } catch (...) {
      take_exception(r, task.function);
    }
    return r;
  }
  if (task.type == ControlType::kActorCall) {
    auto it = actors.find(task.actor);
    if (it == actors.end()) return remote_error(r, "no actor " + std::to_string(task.actor) + " lives in this worker");
    if (e == nullptr || e->invoker == nullptr || e->kind != RemoteKind::kMethod) {
      return remote_error(r, "no method '" + task.function + "' that takes its arguments by value is registered");
    }
    self = it->second.instance;
  } else if (e == nullptr || e->invoker == nullptr || e->kind != RemoteKind::kFunction) {
    return remote_error(r, "no function '" + task.function + "' is registered in this worker's binary");
  }
  try {
    Result<std::string> out = e->invoker(self, task.payload);
    if (!out.ok()) return remote_error(r, out.status().to_string());
    r.payload = std::move(*out);
  } catch (...) {
    take_exception(r, task.function);
  }
  return r;
}

}  // namespace

int run_worker(const std::string& endpoint, uint32_t index) {
  const pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) return 1;  // the driver died before we got here

  zmq::context_t ctx(1);
  zmq::socket_t driver(ctx, zmq::socket_type::dealer);
  driver.set(zmq::sockopt::linger, 0);
  driver.connect(endpoint);
  zmq::socket_t results_in(ctx, zmq::socket_type::pair);
  results_in.bind("inproc://results");
  zmq::socket_t results_out(ctx, zmq::socket_type::pair);
  results_out.connect("inproc://results");

  ControlMessage hello;
  hello.type = ControlType::kHello;
  hello.count = index;
  hello.pid = getpid();
  driver.send(zmq::buffer(encode(hello)), zmq::send_flags::none);

  TaskQueue q;
  std::thread exec([&] {
    Actors actors;
    for (;;) {
      ControlMessage task;
      {
        std::unique_lock<std::mutex> lock(q.mu);
        q.cv.wait(lock, [&] { return q.stop || !q.tasks.empty(); });
        if (q.tasks.empty()) {  // stop, and nothing left to run
          for (auto& [id, a] : actors) a.destroy(a.instance);
          return;
        }
        task = std::move(q.tasks.front());
        q.tasks.pop_front();
      }
      if (auto reply = execute(task, actors)) results_out.send(zmq::buffer(encode(*reply)), zmq::send_flags::none);
    }
  });

  bool running = true;
  while (running) {
    zmq::pollitem_t items[] = {{driver.handle(), 0, ZMQ_POLLIN, 0}, {results_in.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 2, std::chrono::milliseconds(500));
    if (items[1].revents & ZMQ_POLLIN) {
      zmq::message_t m;
      while (results_in.recv(m, zmq::recv_flags::dontwait)) driver.send(m, zmq::send_flags::none);
    }
    if (items[0].revents & ZMQ_POLLIN) {
      zmq::message_t m;
      while (running && driver.recv(m, zmq::recv_flags::dontwait)) {
        auto msg = decode_control(std::string_view(static_cast<const char*>(m.data()), m.size()));
        if (!msg.ok()) {
          log()->warn("worker {}: {}", index, msg.status().message());
          continue;
        }
        switch (msg->type) {
          case ControlType::kTask:
          case ControlType::kActorCreate:
          case ControlType::kActorCall:
          case ControlType::kActorDrop: {
            std::lock_guard<std::mutex> lock(q.mu);
            q.tasks.push_back(std::move(*msg));
            q.cv.notify_one();
            break;
          }
          case ControlType::kSteal: {
            ControlMessage back;
            back.type = ControlType::kReturned;
            {
              std::lock_guard<std::mutex> lock(q.mu);
              // Plain tasks only, newest first: actor messages must run here, in order.
              for (auto it = q.tasks.end(); it != q.tasks.begin() && back.seqs.size() < msg->count;) {
                --it;
                if (it->type != ControlType::kTask) continue;
                back.seqs.push_back(it->seq);
                it = q.tasks.erase(it);
              }
            }
            driver.send(zmq::buffer(encode(back)), zmq::send_flags::none);
            break;
          }
          case ControlType::kShutdown:
            running = false;
            break;
          default:
            log()->warn("worker {}: unexpected control message type {}", index, static_cast<int>(msg->type));
        }
      }
    }
    if (getppid() != parent) running = false;
  }
  {
    std::lock_guard<std::mutex> lock(q.mu);
    q.stop = true;
    q.tasks.clear();
    q.cv.notify_all();
  }
  exec.join();
  zmq::message_t m;
  while (results_in.recv(m, zmq::recv_flags::dontwait)) driver.send(m, zmq::send_flags::none);
  return 0;
}

}  // namespace weft::workers
