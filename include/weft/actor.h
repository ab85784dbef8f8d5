// Actors: stateful workers whose method calls run one at a time, in submission order.
//
//   struct Counter {
//     int total = 0;
//     int add(int n) { return total += n; }
//   };
//   Counter make_counter(int start) { return Counter{start}; }
//   WEFT_REMOTE(make_counter, &Counter::add);
//
//   weft::ActorHandle<Counter> c = weft::actor<Counter>(make_counter).remote(10);
//   weft::ObjectRef<int> r = c.task(&Counter::add).remote(5);
//   weft::get(r);  // 15
//
// The factory (a registered function returning T or std::unique_ptr<T>) runs as the actor's
// first call. If it raises, every later call fails with a TaskError naming the factory. A method
// that raises fails only that call; the actor lives on. Handles are cheap to copy, safe to use
// from any thread, and may be passed to tasks; the actor is destroyed after the last handle and
// the last pending call are gone.
#pragma once

#include <atomic>
#include <memory>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "weft/detail/actor_core.h"
#include "weft/object_ref.h"
#include "weft/registry.h"

namespace weft {

namespace detail {

template <class T>
class ActorState final : public ActorCore {
 public:
  ActorState() : ActorCore(demangle(typeid(T).name())) {}
  ~ActorState() override {
    if (const uint64_t id = remote_id(); id != 0) remote_actor_drop(id);
  }
  T* instance() const { return instance_.get(); }
  void set_instance(std::unique_ptr<T> p) { instance_ = std::move(p); }
  /// Multi-process mode: the instance lives in a worker process under this id (0: here).
  uint64_t remote_id() const { return remote_id_.load(std::memory_order_acquire); }
  void set_remote_id(uint64_t id) { remote_id_.store(id, std::memory_order_release); }
  uint64_t hosted_id() const override { return remote_id(); }
  void* local_instance() const override { return instance_.get(); }
  /// How many times a call in flight when the instance's process died runs again on the rebuilt
  /// instance (ActorBuilder::max_task_retries). Set before the first handle is handed out.
  int max_task_retries() const { return max_task_retries_; }
  void set_max_task_retries(int n) { max_task_retries_ = n; }

 private:
  std::unique_ptr<T> instance_;
  std::atomic<uint64_t> remote_id_{0};  ///< written by the factory call; read by calls and by packing
  int max_task_retries_ = 0;
};

/// One call on an actor: a method call (Create = false) or the factory call (Create = true).
template <class T, class R, class Callable, bool Create, class Params, class... S>
class ActorCall;

template <class T, class R, class Callable, bool Create, class... Ps, class... S>
class ActorCall<T, R, Callable, Create, std::tuple<Ps...>, S...> final : public Object<R>, public ActorCallBase {
 public:
  template <class... A>
  ActorCall(ActorState<T>* actor, Callable fn, const TaskCommon& common, A&&... a)
      : Object<R>(2), ActorCallBase(actor, common), fn_(fn), args_(std::in_place, std::forward<A>(a)...) {
    set_priority(common.slo, common.deadline_ns);
  }

  void start() { start_with_dependencies(*this, *args_); }

  void run() override {
    auto* state = static_cast<ActorState<T>*>(actor());
    if (ObjectBase* dep = failed_dependency()) {
      if constexpr (Create) state->set_dead(dep->error());
      this->fail(dep->error());
      finish();
      return;
    }
    if (runs_remotely(state)) {
      run_remote(state);
      finish();
      return;
    }
    while (true) {
      try {
        invoke(state, std::index_sequence_for<Ps...>{});
        break;
      } catch (...) {
        ErrorPtr err = error_from_current_exception(name());
        if (consume_retry()) continue;
        if constexpr (Create) state->set_dead(err);
        this->fail(std::move(err));
        break;
      }
    }
    finish();
  }
  void cancel() override { fail_with(cancelled_error(name())); }
  void fail_with(ErrorPtr error) override {
    this->fail(std::move(error));
    finish();
  }

 private:
  static constexpr bool kTravels = (travels_by_value_v<Ps> && ...);

  /// The factory of a multi-process driver builds the instance in a worker when it can travel
  /// there; later calls go wherever the instance is.
  bool runs_remotely(ActorState<T>* state) const {
    if constexpr (Create) {
      if constexpr (!kTravels) return false;
      if (!remote_actors_available()) return false;
      const RemoteEntry* e = Registry::global().find_by_key(pointer_key(fn_));
      return e != nullptr && e->construct != nullptr;
    } else {
      return state->remote_id() != 0;
    }
  }

  void run_remote(ActorState<T>* state) {
    const RemoteEntry* e = Registry::global().find_by_key(pointer_key(fn_));
    if constexpr (!kTravels) {
      fail_in_place(state, "the method " + name() + " of an actor in a worker process must take its arguments by value");
    } else if (!Create && (e == nullptr || e->invoker == nullptr)) {
      fail_in_place(state, "the method " + name() + " of an actor in a worker process must be registered and take its "
                           "arguments and result by value");
    } else {
      int died_retries = Create ? 0 : state->max_task_retries();  // calls lost with the instance's process
      for (;;) {
        // Packed for each attempt: a reader that died may have taken over the last one's holds.
        std::string args;
        CarriedRefs carried;  // what the arguments carry stays alive until answered
        try {
          args = pack_resolved<std::tuple<Ps...>>(*args_, std::index_sequence_for<Ps...>{});
        } catch (const std::exception& ex) {
          return fail_in_place(state, std::string("arguments could not be encoded: ") + ex.what());
        }
        carried.packed();
        RemoteOutcome out = Create ? remote_actor_create(e->name, args, name(), max_restarts())
                                   : remote_actor_call(state->remote_id(), e->name, args, name());
        if (out.ok) {
          if constexpr (Create) {
            state->set_remote_id(out.actor);
            this->set_value();
          } else if constexpr (std::is_void_v<R>) {
            this->set_value();
          } else {
            auto value = unpack<R>(out.payload);
            if (!value.ok()) return fail_in_place(state, value.status().message());
            this->set_value(std::move(*value));
          }
          return;
        }
        if (out.error->kind != ErrorKind::kWorkerDied && consume_retry()) continue;
        if (out.error->kind == ErrorKind::kWorkerDied && died_retries-- > 0) continue;  // on the rebuilt one
        if constexpr (Create) state->set_dead(out.error);
        this->fail(std::move(out.error));
        return;
      }
    }
  }
  int max_restarts() const { return this->common().extras ? this->common().extras->max_restarts : 0; }

  void fail_in_place(ActorState<T>* state, const std::string& why) {
    auto err = std::make_shared<ErrorInfo>(ErrorInfo{name(), why, "weft::RemoteError", ErrorKind::kRemote});
    if constexpr (Create) state->set_dead(err);
    this->fail(std::move(err));
  }

  template <size_t... I>
  void invoke(ActorState<T>* state, std::index_sequence<I...>) {
    auto& a = *args_;
    using P = std::tuple<Ps...>;
    if constexpr (Create) {
      auto made = fn_(resolve_arg<std::tuple_element_t<I, P>>(std::get<I>(a))...);
      if constexpr (std::is_same_v<decltype(made), std::unique_ptr<T>>) {
        if (!made) throw Error("actor factory returned a null pointer");
        state->set_instance(std::move(made));
      } else {
        state->set_instance(std::make_unique<T>(std::move(made)));
      }
      this->set_value();
    } else if constexpr (std::is_void_v<R>) {
      (state->instance()->*fn_)(resolve_arg<std::tuple_element_t<I, P>>(std::get<I>(a))...);
      this->set_value();
    } else {
      this->set_value((state->instance()->*fn_)(resolve_arg<std::tuple_element_t<I, P>>(std::get<I>(a))...));
    }
  }
  void finish() {
    args_.reset();
    detach_actor();
    this->release();
  }

  Callable fn_;
  std::optional<std::tuple<S...>> args_;
};

}  // namespace detail

/// Options and submission of one call of an actor's method; ActorHandle::task makes one.
template <class T, class M>
class ActorMethodBuilder;

/// A reference to an actor of class T (see the top of this file).
template <class T>
class ActorHandle {
 public:
  /// Empty.
  ActorHandle() = default;
  /// Another handle to the same actor.
  ActorHandle(const ActorHandle& o) noexcept : state_(o.state_) {
    if (state_) state_->add_ref();
  }
  /// Takes `o`'s handle; `o` is left empty.
  ActorHandle(ActorHandle&& o) noexcept : state_(std::exchange(o.state_, nullptr)) {}
  /// Refers to `o`'s actor instead.
  ActorHandle& operator=(ActorHandle o) noexcept {
    std::swap(state_, o.state_);
    return *this;
  }
  ~ActorHandle() {
    if (state_) state_->release();
  }

  /// False when empty.
  bool valid() const { return state_ != nullptr; }

  /// Starts a call of a registered method (WEFT_REMOTE(&T::method)).
  template <class M>
  ActorMethodBuilder<T, M> task(M method) const {
    static_assert(std::is_member_function_pointer_v<M>, "weft: ActorHandle::task takes a member function pointer");
    if (!state_) throw Error("weft: call on an empty ActorHandle");
    return ActorMethodBuilder<T, M>(state_, method);
  }

  /// Internal.
  static ActorHandle adopt(detail::ActorState<T>* s) {
    ActorHandle h;
    h.state_ = s;
    return h;
  }
  /// Internal: the actor's state (null when empty).
  detail::ActorState<T>* state() const noexcept { return state_; }

  /// Internal: whether a task given this handle may run in a worker process (not for an actor of
  /// the driver itself, nor for another driver's: the task stays in the driver then).
  friend bool weft_travels_now(const ActorHandle& h) {
    return h.state_ == nullptr || (h.state_->lives_elsewhere() && h.state_->remote_id() < detail::kForeignActorBase);
  }

 private:
  detail::ActorState<T>* state_ = nullptr;
};

template <class T, class M>
class ActorMethodBuilder : public detail::TaskOptionsMixin<ActorMethodBuilder<T, M>> {
  using Traits = detail::fn_traits<M>;
  using R = typename Traits::result;
  static_assert(std::is_base_of_v<typename Traits::cls, T>, "weft: the method does not belong to this actor's class");

 public:
  /// Internal: ActorHandle::task makes one. Throws weft::Error when `method` is not registered.
  ActorMethodBuilder(detail::ActorState<T>* state, M method) : state_(state), method_(method) {
    this->common_.registered_name = &detail::lookup_remote(detail::pointer_key(method), nullptr).name;
  }

  /// Submits the call (after every earlier call to this actor) and returns at once; arguments as
  /// for TaskBuilder::remote.
  template <class... A>
  ObjectRef<R> remote(A&&... args) const {
    return submit(std::make_index_sequence<std::tuple_size_v<typename Traits::params>>{}, std::forward<A>(args)...);
  }

 private:
  template <size_t... I, class... A>
  ObjectRef<R> submit(std::index_sequence<I...>, A&&... args) const {
    using P = typename Traits::params;
    static_assert(sizeof...(A) == sizeof...(I), "weft: wrong number of arguments for this actor method");
    static_assert((detail::check_arg<std::tuple_element_t<I, P>, A>() && ... && true));
    if constexpr (!std::is_void_v<R>) detail::require_serializable<R>();
    detail::ensure_running();
    detail::check_refs_valid(args...);
    using Call = detail::ActorCall<T, R, M, false, P, detail::stored_arg_t<std::tuple_element_t<I, P>, A>...>;
    auto* c = new Call(state_, method_, this->common_, std::forward<A>(args)...);
    ObjectRef<R> ref = ObjectRef<R>::adopt(c);
    state_->enqueue(c);
    c->start();
    return ref;
  }

  detail::ActorState<T>* state_;
  M method_;
};

/// Options and creation of an actor of class T from a factory F; weft::actor<T>(factory) makes one.
template <class T, class F>
class ActorBuilder;

/// ActorBuilder for a factory returning T or std::unique_ptr<T> from parameters Ps.
template <class T, class FR, class... Ps>
class ActorBuilder<T, FR (*)(Ps...)> : public detail::TaskOptionsMixin<ActorBuilder<T, FR (*)(Ps...)>> {
  static_assert(std::is_same_v<FR, T> || std::is_same_v<FR, std::unique_ptr<T>>,
                "weft: an actor factory must return T or std::unique_ptr<T>");

 public:
  using Fn = FR (*)(Ps...);  ///< the factory's type
  /// Throws weft::Error when `fn` is not registered with WEFT_REMOTE.
  explicit ActorBuilder(Fn fn) : fn_(fn) {
    this->common_.registered_name = &detail::lookup_remote(detail::pointer_key(fn), reinterpret_cast<const void*>(fn)).name;
  }

  /// In multi-process mode, rebuilds the actor up to `n` times when the worker process hosting it
  /// dies: the factory runs again on the same arguments in a live worker, and later calls go to
  /// the new instance (its state starts over); the calls in flight at the death fail with
  /// weft::WorkerDied. Embedded actors cannot lose their process, so it changes nothing there.
  ActorBuilder& max_restarts(int n) {
    this->extras().max_restarts = n < 0 ? 0 : n;
    return *this;
  }

  /// With max_restarts: a call in flight when the actor's worker process dies runs again, on the
  /// rebuilt instance, up to `n` times, instead of failing with weft::WorkerDied (Ray's
  /// max_task_retries); it keeps its place in the actor's order. Use it for methods that are
  /// safe to run twice.
  ActorBuilder& max_task_retries(int n) {
    max_task_retries_ = n < 0 ? 0 : n;
    return *this;
  }

  /// Names the actor: weft::get_actor<T>(name) finds it anywhere in this program, and it lives
  /// until the runtime shuts down, handles or not. Also the name its errors carry.
  ActorBuilder& name(std::string n) {
    this->extras().name = n;
    actor_name_ = std::move(n);
    return *this;
  }

  /// Creates the actor; its factory runs asynchronously as the actor's first call. Raises
  /// weft::Error when the name is taken.
  template <class... A>
  ActorHandle<T> remote(A&&... args) const {
    static_assert(sizeof...(A) == sizeof...(Ps), "weft: wrong number of arguments for this actor factory");
    static_assert((detail::check_arg<Ps, A>() && ... && true));
    detail::ensure_running();
    detail::check_refs_valid(args...);
    auto* state = new detail::ActorState<T>();
    state->set_max_task_retries(max_task_retries_);
    if constexpr ((detail::travels_by_value_v<Ps> && ... && true)) {
      // Built in a worker process (see ActorCall::runs_remotely): handles to it may travel too.
      const RemoteEntry* e = Registry::global().find_by_key(detail::pointer_key(fn_));
      if (detail::remote_actors_available() && e != nullptr && e->construct != nullptr) state->set_lives_elsewhere();
    }
    ActorHandle<T> handle = ActorHandle<T>::adopt(state);
    if (!actor_name_.empty()) {
      if (Status s = detail::name_actor(actor_name_, typeid(T), state); !s.is_ok())
        throw Error("weft::actor: " + s.message());
    }
    using Call = detail::ActorCall<T, void, Fn, true, std::tuple<Ps...>, detail::stored_arg_t<Ps, A>...>;
    auto* c = new Call(state, fn_, this->common_, std::forward<A>(args)...);
    c->release();  // nobody holds a ref to the creation result; the call keeps its own
    state->enqueue(c);
    c->start();
    return handle;
  }

 private:
  Fn fn_;
  std::string actor_name_;
  int max_task_retries_ = 0;
};

/// The actor named `name` (ActorBuilder::name), anywhere in the program: in a task running in a
/// worker process, the driver's actor of that name (its calls go through the driver, in order
/// with the others). Raises weft::Error when there is none, or when it is not of class T.
template <class T>
ActorHandle<T> get_actor(const std::string& name) {
  detail::ensure_running();
  Result<detail::ActorCore*> core = detail::named_actor(name, typeid(T));
  if (core.ok()) return ActorHandle<T>::adopt(static_cast<detail::ActorState<T>*>(*core));
  if (core.status().code() == StatusCode::kNotFound) {
    // In a worker process: the driver's actor of that name, its calls made through the driver.
    Result<uint64_t> id = detail::named_driver_actor(name, detail::demangle(typeid(T).name()));
    if (id.ok()) {
      auto* state = new detail::ActorState<T>();
      state->set_remote_id(*id);
      state->set_lives_elsewhere();
      return ActorHandle<T>::adopt(state);
    }
    if (id.status().code() != StatusCode::kNotFound) throw Error("weft::get_actor: " + id.status().message());
  }
  throw Error("weft::get_actor: " + core.status().message());
}

/// Starts building an actor of class T from a registered factory.
template <class T, class FR, class... Ps>
ActorBuilder<T, FR (*)(Ps...)> actor(FR (*factory)(Ps...)) {
  return ActorBuilder<T, FR (*)(Ps...)>(factory);
}

}  // namespace weft

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {
  // An ActorHandle travels as [export id, lender, owner, class name] (weft/detail/hooks.h: export_actor);
  // an empty one as nil.
  template <class T>
  struct pack<weft::ActorHandle<T>> {
    template <class Stream>
    packer<Stream>& operator()(packer<Stream>& pk, const weft::ActorHandle<T>& h) const {
      if (!h.valid()) return pk.pack_nil();
      const weft::detail::ActorWireId w = weft::detail::export_actor(h.state());
      pk.pack_array(4);
      pk.pack(w.id);
      pk.pack(w.lender);
      pk.pack(w.owner);
      pk.pack(h.state()->class_name());
      return pk;
    }
  };
  template <class T>
  struct convert<weft::ActorHandle<T>> {
    const msgpack::object& operator()(const msgpack::object& o, weft::ActorHandle<T>& h) const {
      if (o.type == msgpack::type::NIL) {
        h = weft::ActorHandle<T>();
        return o;
      }
      if (o.type != msgpack::type::ARRAY || o.via.array.size != 4) throw msgpack::type_error();
      const weft::detail::ActorWireId w{o.via.array.ptr[0].as<uint64_t>(), o.via.array.ptr[1].as<uint64_t>(),
                                        o.via.array.ptr[2].as<uint64_t>()};
      const std::string cls = o.via.array.ptr[3].as<std::string>();
      const std::string expected = weft::detail::demangle(typeid(T).name());
      if (cls != expected) {
        throw weft::Error("weft: a handle to an actor of class " + cls + " was read as one of class " + expected);
      }
      if (weft::detail::ActorCore* core = weft::detail::import_actor(w)) {
        h = weft::ActorHandle<T>::adopt(static_cast<weft::detail::ActorState<T>*>(core));
      } else {  // a worker: calls go to the driver under the id
        auto* state = new weft::detail::ActorState<T>();
        state->set_remote_id(w.id);
        state->set_lives_elsewhere();
        h = weft::ActorHandle<T>::adopt(state);
      }
      return o;
    }
  };
  }  // namespace adaptor
}
}  // namespace msgpack
