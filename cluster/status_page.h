// The head's read-only status page: its nodes (alive or dead, resources, worker processes,
// drivers, jobs) and its jobs (state, node, command, times), refreshed every two seconds, at
// http://BIND:PORT/?token=TOKEN, and the same as JSON at /api/status?token=TOKEN.
//
//   auto page = StatusPage::start({.head_address = head->address(), .credential = c, .port = 7381});
//   std::cout << page->url();   // with the token
//
// The token is derived from the cluster's credential (BLAKE2b keyed by the member secret), so
// only those who hold the credential, or were given the URL, can read the page; requests without
// it get 401. It reads the head through the head's own authenticated protocol, changes nothing,
// and fetches nothing from elsewhere. Binds to loopback unless told otherwise; one thread serves
// it (Boost.Beast), with limits on request size and time.
#pragma once

#include <memory>
#include <string>

#include "cluster/credential.h"
#include "weft/status.h"

namespace weft::cluster {

struct StatusPageOptions {
  std::string head_address;
  Credential credential;
  std::string bind = "127.0.0.1";
  int port = 7381;  // 0: any free port
};

class StatusPage {
 public:
  static Result<std::unique_ptr<StatusPage>> start(StatusPageOptions options);
  ~StatusPage();

  std::string url() const;  // http://HOST:PORT/?token=...

  struct Impl;

 private:
  StatusPage() = default;
  std::unique_ptr<Impl> impl_;
};

// The page's token for this credential: 32 hex digits.
std::string status_page_token(const Credential& credential);

}  // namespace weft::cluster
