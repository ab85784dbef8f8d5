// This process's connection to its node's shared-memory store, behind the detail::store_*
// hooks that weft::Array uses. Set by weft::init in multi-process mode (the driver) and by
// serve_if_worker (a worker); absent in the embedded runtime.
#pragma once

#include <string>
#include <vector>

#include "weft/detail/hooks.h"
#include "weft/status.h"

namespace weft::runtime {

Status connect_node_store(const std::string& socket_path);
// Forgets the connection; arrays still holding objects keep it open until they go.
void disconnect_node_store();

// Holds made on this thread (detail::store_hold) are appended to `into` until this is called
// again with nullptr: the holds a message being packed carries.
void capture_holds(std::vector<detail::StoreHold>* into);
// Drops holds whose readers never took them over (taken over: nothing happens).
void drop_holds(const std::vector<detail::StoreHold>& holds);

}  // namespace weft::runtime
