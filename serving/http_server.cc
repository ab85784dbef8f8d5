#include "serving/http_server.h"

#include <chrono>
#include <deque>
#include <optional>
#include <thread>
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include "serving/finetune_api.h"
#include "serving/openai_api.h"

namespace weft::serving {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

long long unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

struct HttpServer::Impl {
  Service& service;
  HttpOptions options;
  net::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  net::signal_set signals{ioc};
  std::atomic<int> connections{0};
  std::atomic<bool> stopping{false};
  std::thread drainer;
  long long started = unix_now();

  Impl(Service& s, HttpOptions o) : service(s), options(std::move(o)) {}
  void accept();
  void begin_stop();
};

namespace {

// One connection: reads requests one after another and answers each, streaming when asked. All
// of its methods run on the I/O thread; the service reaches it through Sink, which posts there.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::Impl& server) : stream_(std::move(socket)), server_(server) {
    server_.connections.fetch_add(1);
  }
  ~Session() { server_.connections.fetch_sub(1); }

  void start() { read_request(); }

  void post_delta(std::string text, std::vector<TokenInfo> tokens) {
    net::post(stream_.get_executor(), [self = shared_from_this(), text = std::move(text), tokens = std::move(tokens)]() mutable {
      self->on_delta(std::move(text), std::move(tokens));
    });
  }
  void post_finish(std::string reason, Usage usage, std::string error, int code) {
    net::post(stream_.get_executor(), [self = shared_from_this(), reason = std::move(reason), usage, error = std::move(error), code] {
      self->on_finish(reason, usage, error, code);
    });
  }

 private:
  // The sink the service holds: forwards to the session while it lives.
  class Sink final : public RequestSink {
   public:
    explicit Sink(std::weak_ptr<Session> s) : s_(std::move(s)) {}
    void on_delta(std::string text, std::vector<TokenInfo> tokens) override {
      if (auto s = s_.lock()) s->post_delta(std::move(text), std::move(tokens));
    }
    void on_finish(std::string reason, Usage usage, std::string error, int code) override {
      if (auto s = s_.lock()) s->post_finish(std::move(reason), usage, std::move(error), code);
    }

   private:
    std::weak_ptr<Session> s_;
  };

  void read_request() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_.options.max_header_bytes));
    parser_->body_limit(server_.options.max_body_bytes);
    stream_.expires_after(first_request_ ? server_.options.read_timeout : server_.options.idle_timeout);
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->on_read(ec);
    });
  }

  void on_read(beast::error_code ec) {
    first_request_ = false;
    if (ec == http::error::body_limit) {
      return send_error(http::status::payload_too_large,
                        {413, fmt::format("the body exceeds {} bytes", server_.options.max_body_bytes), "invalid_request_error", "", ""},
                        false);
    }
    if (ec == http::error::header_limit) {
      return send_error(http::status::request_header_fields_too_large,
                        {431, "the request headers are too large", "invalid_request_error", "", ""}, false);
    }
    if (ec) {
      // Bytes that are not HTTP get a 400; a closed or timed-out connection is just closed.
      if (ec.category() == http::make_error_code(http::error::bad_target).category() && ec != http::error::end_of_stream &&
          ec != http::error::partial_message) {
        return send_error(http::status::bad_request,
                          {400, "malformed HTTP request: " + ec.message(), "invalid_request_error", "", ""}, false);
      }
      return close();
    }
    req_ = parser_->release();
    // The request is in; from here the time is generation's, bounded by its own limits.
    stream_.expires_never();
    route();
  }

  void route() {
    const std::string target(req_.target());
    const std::string path = target.substr(0, target.find('?'));
    const auto method = req_.method();
    if (path.rfind("/v1/", 0) == 0 && !server_.options.api_key.empty()) {
      const std::string want = "Bearer " + server_.options.api_key;
      if (req_[http::field::authorization] != want) {
        return send_error(http::status::unauthorized,
                          {401, "a valid API key is required (Authorization: Bearer <key>)", "invalid_request_error", "",
                           "invalid_api_key"},
                          true);
      }
    }
    // A GET route answers HEAD too (headers only); other methods get a 405 naming what it allows.
    auto only = [&](http::verb v) {
      if (method == v || (v == http::verb::get && method == http::verb::head)) return true;
      const char* allow = v == http::verb::get ? "GET, HEAD" : "POST";
      const ApiError e{405, fmt::format("{} takes {}", path, allow), "invalid_request_error", "", ""};
      send_text(http::status::method_not_allowed, "application/json", error_body(e), true, allow);
      return false;
    };
    if (path == "/v1/completions" || path == "/v1/chat/completions") {
      if (only(http::verb::post)) generate(path == "/v1/chat/completions");
    } else if (path == "/v1/models") {
      if (only(http::verb::get)) {
        send_text(http::status::ok, "application/json",
                  models_body(server_.service.model_name(), server_.started, server_.service.adapters()));
      }
    } else if (path == "/v1/load_lora_adapter" || path == "/v1/unload_lora_adapter") {
      if (only(http::verb::post)) change_adapter(path == "/v1/load_lora_adapter");
    } else if (path == "/v1/files" || path.rfind("/v1/files/", 0) == 0 || path == "/v1/fine_tuning/jobs" ||
               path.rfind("/v1/fine_tuning/jobs/", 0) == 0) {
      finetuning(path);
    } else if (path == "/health") {
      if (only(http::verb::get)) {
        const bool up = server_.service.accepting() && !server_.stopping.load();
        send_text(up ? http::status::ok : http::status::service_unavailable, "application/json",
                  up ? "{\"status\":\"ok\"}" : "{\"status\":\"shutting down\"}");
      }
    } else if (path == "/metrics") {
      if (only(http::verb::get)) send_text(http::status::ok, "text/plain; version=0.0.4", server_.service.metrics_text());
    } else if (path == "/" || path == "/index.html") {
      if (only(http::verb::get)) send_text(http::status::ok, "text/html; charset=utf-8", chat_page());
    } else {
      send_error(http::status::not_found, {404, fmt::format("no route {}", path), "invalid_request_error", "", "not_found"},
                 true);
    }
  }

  // OpenAI's fine-tuning API: training files, and jobs co-served with inference.
  void finetuning(const std::string& path) {
    Service& svc = server_.service;
    FinetuneJobs& jobs = svc.finetuning();
    const std::string base = svc.model_name();
    const auto method = req_.method();
    const bool get = method == http::verb::get || method == http::verb::head;
    const bool post = method == http::verb::post;
    auto wrong_method = [&](const char* allow) {
      const ApiError e{405, fmt::format("{} takes {}", path, allow), "invalid_request_error", "", ""};
      send_text(http::status::method_not_allowed, "application/json", error_body(e), true, allow);
    };
    auto fail = [&](const Status& st) {
      const ApiError e = adapter_error(st);
      send_error(static_cast<http::status>(e.status), e, true);
    };
    auto json_ok = [&](std::string body) { send_text(http::status::ok, "application/json", std::move(body)); };
    // A job's record, once the loop thread has it, answered on this connection's thread.
    auto reply_job = [self = shared_from_this(), base](Result<JobRecord> r) {
      net::post(self->stream_.get_executor(), [self, base, r = std::move(r)] {
        if (!r.ok()) {
          const ApiError e = adapter_error(r.status());
          return self->send_error(static_cast<http::status>(e.status), e, true);
        }
        self->send_text(http::status::ok, "application/json", job_json(*r, base));
      });
    };
    if (path == "/v1/files") {
      if (get) return json_ok(files_body(jobs.files()));
      if (!post) return wrong_method("GET, HEAD, POST");
      const auto type = req_[http::field::content_type];
      auto up = parse_file_upload(req_.body(), std::string_view(type.data(), type.size()));
      if (auto* e = std::get_if<ApiError>(&up)) return send_error(static_cast<http::status>(e->status), *e, true);
      FileUpload& f = std::get<FileUpload>(up);
      Result<TrainingFile> added = jobs.add_file(std::move(f.filename), std::move(f.purpose), std::move(f.content));
      if (!added.ok()) return fail(added.status());
      return json_ok(file_json(*added));
    }
    if (path.rfind("/v1/files/", 0) == 0) {
      const std::string id = path.substr(10);
      if (get) {
        Result<TrainingFile> f = jobs.file(id);
        return f.ok() ? json_ok(file_json(*f)) : fail(f.status());
      }
      if (method != http::verb::delete_) return wrong_method("GET, HEAD, DELETE");
      const Status st = jobs.delete_file(id);
      return st.is_ok() ? json_ok(file_deleted_body(id)) : fail(st);
    }
    if (path == "/v1/fine_tuning/jobs") {
      if (get) return json_ok(jobs_body(jobs.jobs(), base));
      if (!post) return wrong_method("GET, HEAD, POST");
      auto parsed = parse_job_request(req_.body());
      if (auto* e = std::get_if<ApiError>(&parsed)) return send_error(static_cast<http::status>(e->status), *e, true);
      return svc.create_finetune_job(std::get<JobRequest>(parsed), reply_job);
    }
    std::string rest = path.substr(21);  // after /v1/fine_tuning/jobs/
    const size_t slash = rest.find('/');
    const std::string id = rest.substr(0, slash), action = slash == std::string::npos ? "" : rest.substr(slash + 1);
    if (action.empty()) {
      if (!get) return wrong_method("GET, HEAD");
      Result<JobRecord> j = jobs.job(id);
      return j.ok() ? json_ok(job_json(*j, base)) : fail(j.status());
    }
    if (action == "events") {
      if (!get) return wrong_method("GET, HEAD");
      Result<JobRecord> j = jobs.job(id);
      return j.ok() ? json_ok(events_body(*j)) : fail(j.status());
    }
    if (action == "cancel") {
      if (!post) return wrong_method("POST");
      return svc.cancel_finetune_job(id, reply_job);
    }
    send_error(http::status::not_found,
               {404, fmt::format("no route {}", path), "invalid_request_error", "", "not_found"}, true);
  }

  // Loads or unloads a LoRA adapter; the answer comes when the engine has done it (between
  // iterations), posted back to this connection's thread.
  void change_adapter(bool load) {
    auto parsed = parse_adapter_request(req_.body(), load);
    if (auto* e = std::get_if<ApiError>(&parsed)) return send_error(static_cast<http::status>(e->status), *e, true);
    const AdapterRequest r = std::get<AdapterRequest>(parsed);
    auto done = [self = shared_from_this(), name = r.name, load](Status s) {
      net::post(self->stream_.get_executor(), [self, name, load, s] {
        if (!s.is_ok()) {
          const ApiError e = adapter_error(s);
          return self->send_error(static_cast<http::status>(e.status), e, true);
        }
        self->send_text(http::status::ok, "text/plain; charset=utf-8",
                        fmt::format("Success: LoRA adapter '{}' {} successfully.", name, load ? "added" : "removed"),
                        true);
      });
    };
    if (load) {
      server_.service.load_adapter(r.name, r.path, std::move(done));
    } else {
      server_.service.unload_adapter(r.name, std::move(done));
    }
  }

  void generate(bool chat) {
    if (server_.stopping.load() || !server_.service.accepting()) {
      return send_error(http::status::service_unavailable, {503, "the server is shutting down", "server_error", "", ""},
                        false);
    }
    auto parsed = parse_request(req_.body(), chat, server_.service.model_name(), server_.service.context_length(),
                                server_.service.adapters());
    if (auto* e = std::get_if<ApiError>(&parsed)) return send_error(static_cast<http::status>(e->status), *e, true);
    ApiRequest& r = std::get<ApiRequest>(parsed);
    stream_mode_ = r.stream;
    include_usage_ = r.include_usage;
    logprobs_ = r.logprobs;
    text_.clear();
    tokens_.clear();
    text_offset_ = 0;
    head_ = {};
    head_.chat = chat;
    head_.model = r.generation.spec.adapter.empty() ? server_.service.model_name() : r.generation.spec.adapter;
    head_.created = unix_now();
    auto id = server_.service.submit(std::move(r.generation), std::make_shared<Sink>(weak_from_this()));
    if (!id.ok()) {
      const bool busy = id.status().code() == StatusCode::kResourceExhausted;
      return send_error(busy ? http::status::too_many_requests : http::status::service_unavailable,
                        {busy ? 429 : 503, id.status().message(), busy ? "rate_limit_exceeded" : "server_error", "", ""},
                        !busy);
    }
    request_id_ = *id;
    head_.id = fmt::format("{}-{:016x}", chat ? "chatcmpl" : "cmpl", *id ^ (static_cast<uint64_t>(head_.created) << 20));
    generating_ = true;
    watch_for_disconnect();
  }

  // While generating, a read that ends means the client went away: cancel its request.
  // Bytes that arrive meanwhile (a pipelined request) are kept for the next read, up to the size of
  // one request.
  void watch_for_disconnect() {
    watching_ = true;
    stream_.async_read_some(net::buffer(probe_), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->watching_ = false;
      if (n > 0) {
        if (self->buffer_.size() + n > self->server_.options.max_header_bytes + self->server_.options.max_body_bytes) {
          return self->abandon();
        }
        self->buffer_.commit(net::buffer_copy(self->buffer_.prepare(n), net::buffer(self->probe_, n)));
      }
      if (!self->generating_) {
        if (std::exchange(self->resume_, false)) self->read_request();
        return;
      }
      if (ec) return self->abandon();
      self->watch_for_disconnect();
    });
  }

  void on_delta(std::string text, std::vector<TokenInfo> tokens) {
    if (!generating_) return;
    if (!stream_mode_) {
      text_ += text;
      for (auto& t : tokens) tokens_.push_back(std::move(t));
      return;
    }
    start_stream();
    if (!text.empty() || !tokens.empty()) {
      queue_chunk(chunk_event(head_, text, tokens, logprobs_, false, nullptr, include_usage_, text_offset_));
      if (logprobs_) text_offset_ += logprobs_text_length(tokens);
    }
  }

  void on_finish(const std::string& reason, Usage usage, const std::string& error, int code) {
    if (!generating_) return;
    generating_ = false;
    if (reason == "error" && !stream_started_) {
      const int status = code == 0 ? 500 : code;
      return send_error(static_cast<http::status>(status),
                        {status, error, status == 400 ? "invalid_request_error" : "server_error", "", ""}, status == 400);
    }
    if (!stream_mode_) {
      return send_text(http::status::ok, "application/json",
                       response_body(head_, text_, tokens_, logprobs_, reason, usage));
    }
    start_stream();
    if (reason == "error") {
      queue_chunk("data: " + error_body({500, error, "server_error", "", ""}) + "\n\n");
    } else {
      queue_chunk(chunk_event(head_, "", {}, logprobs_, false, reason.c_str(), include_usage_));
      if (include_usage_) queue_chunk(usage_event(head_, usage));
    }
    queue_chunk("data: [DONE]\n\n");
    queue_chunk({});  // the last chunk
  }

  void start_stream() {
    if (stream_started_) return;
    stream_started_ = true;
    auto res = std::make_shared<http::response<http::empty_body>>(http::status::ok, req_.version());
    res->set(http::field::server, "weft");
    res->set(http::field::content_type, "text/event-stream");
    res->set(http::field::cache_control, "no-cache");
    res->keep_alive(req_.keep_alive());
    res->chunked(true);
    auto sr = std::make_shared<http::response_serializer<http::empty_body>>(*res);
    writing_ = true;
    http::async_write_header(stream_, *sr, [self = shared_from_this(), res, sr](beast::error_code ec, size_t) {
      self->writing_ = false;
      if (ec) return self->abandon();
      self->write_next();
    });
    if (head_.chat) queue_chunk(chunk_event(head_, "", {}, false, true, nullptr, include_usage_));
  }

  // Chunks go out one at a time, in order; an empty string is the last chunk. (The stream's
  // timer would also end the disconnect watch, so a stream is bounded by its queue instead: a
  // client that stops reading is dropped once kMaxQueued events wait for it.)
  void queue_chunk(std::string s) {
    constexpr size_t kMaxQueued = 4096;
    if (out_.size() >= kMaxQueued) return abandon();
    out_.push_back(std::move(s));
    if (!writing_) write_next();
  }

  void write_next() {
    if (out_.empty() || writing_) return;
    writing_ = true;
    auto done = [self = shared_from_this()](beast::error_code ec, size_t) {
      self->writing_ = false;
      if (self->out_.empty()) return;  // abandoned meanwhile
      const bool last = self->out_.front().empty();
      self->out_.pop_front();
      if (ec) return self->abandon();
      if (last) return self->after_response(self->req_.keep_alive());
      self->write_next();
    };
    if (out_.front().empty()) {
      net::async_write(stream_, http::make_chunk_last(), std::move(done));
    } else {
      net::async_write(stream_, http::make_chunk(net::buffer(out_.front())), std::move(done));
    }
  }

  // The client went away or stopped reading: cancel its request, drop the connection.
  void abandon() {
    if (generating_) server_.service.cancel(request_id_);
    generating_ = false;
    out_.clear();
    close();
  }

  void send_error(http::status status, const ApiError& e, bool keep_alive) {
    send_text(status, "application/json", error_body(e), keep_alive);
  }

  // `allow`: the Allow header of a 405. A response to HEAD keeps its headers (Content-Length
  // included) and drops its body.
  void send_text(http::status status, const char* type, std::string body, bool keep_alive = true,
                 const char* allow = nullptr) {
    auto res = std::make_shared<http::response<http::string_body>>(status, req_.version() ? req_.version() : 11);
    res->set(http::field::server, "weft");
    res->set(http::field::content_type, type);
    if (status == http::status::unauthorized) res->set(http::field::www_authenticate, "Bearer");
    if (allow != nullptr) res->set(http::field::allow, allow);
    const bool keep = keep_alive && req_.keep_alive() && !server_.stopping.load();
    res->keep_alive(keep);
    res->body() = std::move(body);
    res->prepare_payload();
    if (req_.method() == http::verb::head) res->body().clear();
    stream_.expires_after(server_.options.write_timeout);
    http::async_write(stream_, *res, [self = shared_from_this(), res, keep](beast::error_code ec, size_t) {
      if (ec) return self->close();
      self->after_response(keep);
    });
  }

  void after_response(bool keep_alive) {
    stream_started_ = false;
    generating_ = false;
    if (!keep_alive || server_.stopping.load()) return close();
    req_ = {};
    if (watching_) {  // the disconnect watch ends first (cancelled), then the next read starts
      resume_ = true;
      beast::error_code ec;
      stream_.socket().cancel(ec);
      return;
    }
    read_request();
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  HttpServer::Impl& server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> req_;
  bool first_request_ = true;
  // The request being generated.
  bool generating_ = false, stream_mode_ = false, include_usage_ = false, logprobs_ = false;
  bool stream_started_ = false, writing_ = false;
  bool watching_ = false, resume_ = false;  // a disconnect watch is pending; read on once it ends
  uint64_t request_id_ = 0;
  ResponseHead head_;
  std::string text_;
  std::vector<TokenInfo> tokens_;
  size_t text_offset_ = 0;  // logprobs' characters streamed so far
  std::deque<std::string> out_;
  char probe_[512];
};

}  // namespace

void HttpServer::Impl::accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (!acceptor.is_open()) return;
    if (!ec) {
      if (connections.load() >= options.max_connections) {
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        std::make_shared<Session>(std::move(socket), *this)->start();
      }
    }
    accept();
  });
}

void HttpServer::Impl::begin_stop() {
  if (stopping.exchange(true)) return;
  beast::error_code ec;
  acceptor.close(ec);
  signals.cancel(ec);
  // Draining blocks; the I/O thread keeps streaming meanwhile.
  drainer = std::thread([this] {
    service.stop(std::chrono::duration_cast<std::chrono::milliseconds>(options.drain_timeout));
    // Let the last responses go out, then end run().
    for (int i = 0; i < 100 && connections.load() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ioc.stop();
  });
}

HttpServer::HttpServer(Service& service, HttpOptions options)
    : impl_(std::make_unique<Impl>(service, std::move(options))) {}

HttpServer::~HttpServer() {
  if (impl_->drainer.joinable()) impl_->drainer.join();
}

Status HttpServer::listen() {
  beast::error_code ec;
  const auto address = net::ip::make_address(impl_->options.host, ec);
  if (ec) return Status::invalid_argument(fmt::format("bad host '{}': {}", impl_->options.host, ec.message()));
  const tcp::endpoint ep(address, static_cast<unsigned short>(impl_->options.port));
  tcp::acceptor& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::unavailable(
        fmt::format("cannot listen on {}:{}: {}", impl_->options.host, impl_->options.port, ec.message()));
  }
  port_ = a.local_endpoint().port();
  if (impl_->options.handle_signals) {
    impl_->signals.add(SIGINT);
    impl_->signals.add(SIGTERM);
    impl_->signals.async_wait([this](beast::error_code e, int) {
      if (!e) impl_->begin_stop();
    });
  }
  impl_->accept();
  return Status::ok();
}

void HttpServer::run() { impl_->ioc.run(); }

void HttpServer::stop() {
  net::post(impl_->ioc, [this] { impl_->begin_stop(); });
}

}  // namespace weft::serving
