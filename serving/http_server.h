// The OpenAI-compatible HTTP server: Boost.Beast over Asio, every connection asynchronous on one
// I/O thread (no thread per connection), generation on the runtime through a Service.
//
//   HttpServer server(service, {.host = "127.0.0.1", .port = 8000});
//   WEFT_RETURN_IF_ERROR(server.listen());
//   server.run();  // until stop() or SIGINT/SIGTERM (with handle_signals), then drains
//
// Routes: POST /v1/completions, POST /v1/chat/completions (SSE when "stream": true), GET
// /v1/models (the base model and the LoRA adapters served), POST /v1/load_lora_adapter and
// /v1/unload_lora_adapter (vLLM's), GET /health, GET /metrics (Prometheus text), GET / (a page to
// chat with the model). With an API key, every /v1/ route needs it.
// Limits: header bytes, body bytes (413), time to read a request and to write each piece of a
// response, idle keep-alive time, open connections; a client that breaks them is disconnected.
// A client that goes away mid-generation has its request cancelled (its KV freed).
//
// Thread safety: run() on one thread; stop() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "serving/service.h"
#include "weft/status.h"

namespace weft::serving {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8000;  // 0: any free port (see port())
  std::string api_key;  // non-empty: /v1/* needs "Authorization: Bearer <key>"
  size_t max_body_bytes = 4 << 20;
  size_t max_header_bytes = 16 << 10;
  std::chrono::seconds read_timeout{30};   // to receive a whole request
  std::chrono::seconds write_timeout{30};  // to send each piece of a response
  std::chrono::seconds idle_timeout{60};   // keep-alive between requests
  int max_connections = 4096;
  bool handle_signals = false;  // SIGINT/SIGTERM: stop accepting, drain, return from run()
  std::chrono::seconds drain_timeout{30};
};

class HttpServer {
 public:
  HttpServer(Service& service, HttpOptions options);
  ~HttpServer();

  // Binds and listens. kUnavailable when the address cannot be bound.
  Status listen();
  int port() const { return port_; }
  void run();
  // Stops accepting; requests in flight finish (up to drain_timeout); run() then returns.
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

// The page served at GET /.
const std::string& chat_page();

}  // namespace weft::serving
