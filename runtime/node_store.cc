#include "runtime/node_store.h"

#include <memory>
#include <mutex>

#include "objectstore/store_client.h"
#include "weft/detail/hooks.h"

namespace weft {
namespace runtime {
namespace {

std::mutex g_mu;  // guards g_client
std::shared_ptr<objectstore::StoreClient> g_client;
thread_local std::vector<detail::StoreHold>* t_holds = nullptr;

std::shared_ptr<objectstore::StoreClient> client() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_client;
}

// What a SharedObject's `keep` holds: the connection, and this process's pin and ownership.
struct Handle {
  std::shared_ptr<objectstore::StoreClient> client;
  ObjectId id;
  bool pinned = false;
  bool owned = false;
  ~Handle() {
    if (pinned) (void)client->release(id);
    if (owned) (void)client->remove(id);  // freed once other processes' pins drop
  }
};

}  // namespace

Status connect_node_store(const std::string& socket_path) {
  WEFT_ASSIGN_OR_RETURN(std::unique_ptr<objectstore::StoreClient> c, objectstore::StoreClient::connect(socket_path));
  std::lock_guard<std::mutex> lock(g_mu);
  g_client = std::move(c);
  return Status::ok();
}

void disconnect_node_store() {
  std::lock_guard<std::mutex> lock(g_mu);
  g_client.reset();
}

void capture_holds(std::vector<detail::StoreHold>* into) { t_holds = into; }

void drop_holds(const std::vector<detail::StoreHold>& holds) {
  if (holds.empty()) return;
  auto c = client();
  if (!c) return;  // the connection is gone, and its holds with it
  for (const detail::StoreHold& h : holds) (void)c->unhold(h.object, h.token);
}

}  // namespace runtime

namespace detail {

bool node_store_available() { return runtime::client() != nullptr; }

Result<SharedObject> store_create(size_t size, bool owned) {
  auto c = runtime::client();
  if (!c) return Status::unavailable("this process has no node store (multi-process mode only)");
  const ObjectId id = ObjectId::next();
  WEFT_ASSIGN_OR_RETURN(uint8_t * data, c->create(id, size, {.primary = true, .transient = !owned}));
  auto h = std::make_shared<runtime::Handle>();
  h->client = c;
  h->id = id;
  h->owned = owned;
  return SharedObject{id, data, size, std::move(h)};
}

Status store_seal_and_pin(SharedObject& obj) {
  auto* h = static_cast<runtime::Handle*>(obj.keep.get());
  WEFT_RETURN_IF_ERROR(h->client->seal(obj.id));
  WEFT_ASSIGN_OR_RETURN(auto view, h->client->get(obj.id, 0));
  (void)view;
  h->pinned = true;
  return Status::ok();
}

Result<SharedObject> store_open(const ObjectId& id, uint64_t hold) {
  auto c = runtime::client();
  if (!c) return Status::unavailable("a shared-memory array reached a process without a node store");
  WEFT_ASSIGN_OR_RETURN(auto view, c->get(id, 10000, hold));
  auto h = std::make_shared<runtime::Handle>();
  h->client = c;
  h->id = id;
  h->pinned = true;
  return SharedObject{id, const_cast<uint8_t*>(view.data()), view.size(), std::move(h)};
}

Result<uint64_t> store_hold(const SharedObject& obj) {
  auto* h = static_cast<runtime::Handle*>(obj.keep.get());
  WEFT_ASSIGN_OR_RETURN(uint64_t token, h->client->hold(obj.id));
  if (runtime::t_holds != nullptr) runtime::t_holds->push_back(StoreHold{obj.id, token});
  return token;
}

}  // namespace detail
}  // namespace weft
