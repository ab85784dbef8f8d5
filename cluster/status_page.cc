#include "cluster/status_page.h"

#include <sodium.h>
#include <zmq.h>

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "cluster/head_client.h"
#include "core/logging.h"

namespace weft::cluster {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using json = nlohmann::json;

constexpr const char* kPage = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>weft cluster</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 14px system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; } td, th { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: left; }
.dead, .FAILED { color: #b00; } .alive, .SUCCEEDED { color: #070; } .RUNNING { color: #06c; }
#error { color: #b00; } code { font-size: 0.95em; }
</style></head><body>
<h1>weft cluster <span id="head"></span></h1>
<div id="error"></div>
<h2>Nodes <span id="node-count"></span></h2>
<table id="nodes"><thead><tr><th>node</th><th>state</th><th>host</th><th>resources</th><th>worker processes</th>
<th>drivers</th><th>jobs</th><th>objects</th><th>last heard</th></tr></thead><tbody></tbody></table>
<h2>Jobs <span id="job-count"></span></h2>
<table id="jobs"><thead><tr><th>job</th><th>state</th><th>node</th><th>command</th><th>submitted</th><th>ended</th>
<th>why</th></tr></thead><tbody></tbody></table>
<script>
const token = new URLSearchParams(location.search).get('token') || '';
function cell(row, text, cls) { const td = row.insertCell(); td.textContent = text; if (cls) td.className = cls; }
function time(ms) { return ms ? new Date(ms).toLocaleString() : '-'; }
async function refresh() {
  try {
    const r = await fetch('/api/status?token=' + encodeURIComponent(token));
    if (!r.ok) throw new Error((await r.text()) || r.statusText);
    const s = await r.json();
    document.getElementById('error').textContent = '';
    document.getElementById('head').textContent = s.head;
    const nodes = document.querySelector('#nodes tbody'); nodes.replaceChildren();
    for (const n of s.nodes) {
      const row = nodes.insertRow(); row.dataset.node = n.id;
      cell(row, n.id); cell(row, n.alive ? 'alive' : 'dead', n.alive ? 'alive' : 'dead'); cell(row, n.host);
      cell(row, Object.entries(n.resources).map(([k, v]) => k + ' ' + v).join(', '));
      cell(row, n.workers); cell(row, n.drivers); cell(row, n.jobs);
      cell(row, n.objects + ' (' + (n.object_bytes / 1048576).toFixed(1) + ' of ' + (n.store_bytes / 1048576).toFixed(0) + ' MiB)');
      cell(row, ((Date.now() - n.last_seen_ms) / 1000).toFixed(1) + ' s ago');
    }
    document.getElementById('node-count').textContent = '(' + s.nodes.filter(n => n.alive).length + ' alive)';
    const jobs = document.querySelector('#jobs tbody'); jobs.replaceChildren();
    for (const j of s.jobs.slice().reverse()) {
      const row = jobs.insertRow(); row.dataset.job = j.id;
      cell(row, j.id); cell(row, j.state, j.state); cell(row, j.node || '-'); cell(row, j.command);
      cell(row, time(j.submitted_ms)); cell(row, time(j.ended_ms)); cell(row, j.message);
    }
    document.getElementById('job-count').textContent = '(' + s.jobs.length + ')';
  } catch (e) {
    document.getElementById('error').textContent = 'cannot read the head: ' + e.message;
  }
}
refresh(); setInterval(refresh, 2000);
</script></body></html>
)HTML";

bool same(const std::string& a, const std::string& b) {
  return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string query_token(std::string_view target) {
  const size_t q = target.find("token=");
  if (q == std::string_view::npos) return "";
  const std::string_view rest = target.substr(q + 6);
  return std::string(rest.substr(0, rest.find('&')));
}

}  // namespace

std::string status_page_token(const Credential& credential) {
  unsigned char key[32];
  zmq_z85_decode(key, credential.member_secret.c_str());
  static constexpr char kWhat[] = "weft status page";
  unsigned char digest[16];
  crypto_generichash(digest, sizeof digest, reinterpret_cast<const unsigned char*>(kWhat), sizeof kWhat - 1, key,
                     sizeof key);
  char hex[2 * sizeof digest + 1];
  return sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
}

struct StatusPage::Impl {
  StatusPageOptions options;
  std::string token;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::string url;
  std::thread thread;

  json status_json() {
    HeadClient head(options.head_address, options.credential, std::chrono::milliseconds(3000));
    auto s = head.call<StatusReply>(StatusRequest{});
    if (!s.ok()) throw std::runtime_error(s.status().message());
    json out{{"head", s->head_address}, {"nodes", json::array()}, {"jobs", json::array()}};
    for (const auto& n : s->nodes) {
      out["nodes"].push_back({{"id", n.node_id},
                              {"host", n.hostname},
                              {"alive", n.alive},
                              {"resources", n.resources},
                              {"workers", n.workers},
                              {"objects", n.objects},
                              {"object_bytes", n.object_bytes},
                              {"store_bytes", n.store_bytes},
                              {"drivers", n.drivers},
                              {"jobs", n.jobs},
                              {"last_seen_ms", n.last_seen_ms}});
    }
    for (const auto& j : s->jobs) {
      std::string command;
      for (const auto& a : j.argv) command += (command.empty() ? "" : " ") + a;
      out["jobs"].push_back({{"id", j.job_id},
                             {"state", to_string(static_cast<JobState>(j.state))},
                             {"node", j.node_id},
                             {"command", command},
                             {"submitted_ms", j.submitted_ms},
                             {"ended_ms", j.ended_ms},
                             {"message", j.message},
                             {"exit_code", j.exit_code}});
    }
    return out;
  }

  http::response<http::string_body> answer(const http::request<http::string_body>& req) {
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::server, "weft");
    res.set(http::field::cache_control, "no-store");
    res.set("Content-Security-Policy",
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
            "connect-src 'self'");
    res.set("X-Content-Type-Options", "nosniff");
    res.keep_alive(false);
    const std::string_view target(req.target().data(), req.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    auto reply = [&](http::status st, const char* type, std::string body) {
      res.result(st);
      res.set(http::field::content_type, type);
      res.body() = std::move(body);
      res.prepare_payload();
      return res;
    };
    if (req.method() != http::verb::get) return reply(http::status::method_not_allowed, "text/plain", "read-only\n");
    if (path != "/" && path != "/api/status") return reply(http::status::not_found, "text/plain", "not found\n");
    if (!same(query_token(target), token)) {
      return reply(http::status::unauthorized, "text/plain",
                   "this page needs the cluster's token: open the URL `weft start --head` printed\n");
    }
    if (path == "/") return reply(http::status::ok, "text/html; charset=utf-8", kPage);
    try {
      return reply(http::status::ok, "application/json", status_json().dump());
    } catch (const std::exception& e) {
      return reply(http::status::bad_gateway, "text/plain", std::string("cannot read the head: ") + e.what() + "\n");
    }
  }

  void accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (ec) {  // out of descriptors, say: try again shortly rather than never
        auto timer = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(100));
        timer->async_wait([this, timer](beast::error_code) { accept(); });
        return;
      }
      auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
      auto buffer = std::make_shared<beast::flat_buffer>(8192);
      auto parser = std::make_shared<http::request_parser<http::string_body>>();
      parser->header_limit(8192);
      parser->body_limit(4096);
      stream->expires_after(std::chrono::seconds(10));
      http::async_read(*stream, *buffer, *parser, [this, stream, buffer, parser](beast::error_code rec, size_t) {
        if (rec) return;
        auto res = std::make_shared<http::response<http::string_body>>(answer(parser->get()));
        http::async_write(*stream, *res, [stream, res](beast::error_code, size_t) {
          beast::error_code ignored;
          stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
        });
      });
      accept();
    });
  }
};

Result<std::unique_ptr<StatusPage>> StatusPage::start(StatusPageOptions options) {
  if (sodium_init() < 0) return Status::internal("libsodium cannot start");
  std::unique_ptr<StatusPage> page(new StatusPage());
  page->impl_ = std::make_unique<Impl>();
  Impl& p = *page->impl_;
  p.options = std::move(options);
  p.token = status_page_token(p.options.credential);
  try {
    const tcp::endpoint at(asio::ip::make_address(p.options.bind), static_cast<uint16_t>(p.options.port));
    p.acceptor.open(at.protocol());
    p.acceptor.set_option(asio::socket_base::reuse_address(true));
    p.acceptor.bind(at);
    p.acceptor.listen();
    p.url =
        "http://" + p.options.bind + ":" + std::to_string(p.acceptor.local_endpoint().port()) + "/?token=" + p.token;
  } catch (const std::exception& e) {
    return Status::unavailable("the status page cannot listen at " + p.options.bind + ":" +
                               std::to_string(p.options.port) + ": " + e.what());
  }
  p.accept();
  p.thread = std::thread([&p] { p.io.run(); });
  return page;
}

StatusPage::~StatusPage() {
  if (impl_ == nullptr) return;
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::string StatusPage::url() const { return impl_->url; }

}  // namespace weft::cluster
