#include "apps/weft/job_commands.h"

#include <cstdio>
#include <ctime>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apps/weft/cli_args.h"
#include "apps/weft/cluster_session.h"
#include "cluster/head.h"
#include "cluster/head_client.h"
#include "cluster/package.h"

namespace weft::cli {
namespace {

using cluster::HeadClient;
using cluster::JobInfo;
using cluster::JobState;

constexpr const char* kJobHelp =
    "usage: weft job submit [--working-dir DIR] [--env NAME=VALUE]... [--resources JSON] [--no-wait]\n"
    "                       -- COMMAND ARGS...\n"
    "       weft job status|logs|stop JOB_ID     weft job logs --follow JOB_ID     weft job list\n"
    "  every subcommand takes --address HOST:PORT (default $WEFT_HEAD_ADDRESS, or the head started\n"
    "  on this machine) and --credential PATH (default $WEFT_CREDENTIAL or ~/.weft/cluster.key)\n"
    "  submit: uploads DIR (at most 256 MiB; a directory already uploaded is not sent again), runs\n"
    "          COMMAND in a copy of it on a node, and follows its output until it ends (exit\n"
    "          status 0 if it succeeded); --no-wait prints the job's id and returns; --resources\n"
    "          '{\"GPU\": 1}' places it only on a node where that much is free, held while it runs\n";

int fail(const char* what, const Status& s) {
  std::fprintf(stderr, "weft %s: %s\n", what, s.to_string().c_str());
  return 1;
}

Result<HeadClient> connect(const Args& a) {
  WEFT_ASSIGN_OR_RETURN(std::string address, head_address(a));
  WEFT_ASSIGN_OR_RETURN(cluster::Credential credential, member_credential(a));
  return HeadClient(address, std::move(credential));
}

std::string when(int64_t ms) {
  if (ms == 0) return "-";
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", std::localtime(&t));
  return buf;
}

std::string command_line(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

void print_job(const JobInfo& j) {
  std::printf("%s  %-9s  %s\n", j.job_id.c_str(), std::string(to_string(static_cast<JobState>(j.state))).c_str(),
              command_line(j.argv).c_str());
}

// Prints the job's output from `offset` until the head holds all of it (follow) or what there is
// now; returns the job's final info when it ended.
Result<JobInfo> print_logs(HeadClient& head, const std::string& job, bool follow) {
  uint64_t offset = 0;
  for (;;) {
    WEFT_ASSIGN_OR_RETURN(auto chunk, head.call<cluster::LogsReply>(cluster::LogsRequest{job, offset}));
    std::fwrite(chunk.data.data.data(), 1, chunk.data.data.size(), stdout);
    std::fflush(stdout);
    offset += chunk.data.data.size();
    if (chunk.finished || (!follow && chunk.data.data.empty())) break;
    if (chunk.data.data.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  WEFT_ASSIGN_OR_RETURN(auto info, head.call<cluster::JobInfoReply>(cluster::JobQuery{job}));
  return info.job;
}

int submit(const Args& a, HeadClient& head) {
  std::vector<std::string> argv(a.positional().begin() + 1, a.positional().end());
  if (argv.empty()) {
    std::fprintf(stderr, "weft job submit: give the command after --, e.g. weft job submit -- python3 job.py\n");
    return 2;
  }
  cluster::JobSubmit submit{.argv = argv};
  for (const std::string& e : a.all("env")) {
    const size_t eq = e.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "weft job submit: --env takes NAME=VALUE, not '%s'\n", e.c_str());
      return 2;
    }
    submit.env[e.substr(0, eq)] = e.substr(eq + 1);
  }
  if (a.has("resources")) {
    try {
      submit.resources = nlohmann::json::parse(a.get("resources", "")).get<std::map<std::string, double>>();
    } catch (const std::exception&) {
      std::fprintf(stderr, "weft job submit: --resources takes a JSON object of numbers, e.g. '{\"GPU\": 1}'\n");
      return 2;
    }
  }
  if (a.has("working-dir")) {
    auto pkg = cluster::pack_directory(a.get("working-dir", ""), cluster::kMaxPackageBytes);
    if (!pkg.ok()) return fail("job submit", pkg.status());
    auto have = head.call<cluster::Reply>(cluster::PackageHave{pkg->hash});
    if (!have.ok() && have.status().code() != StatusCode::kNotFound) return fail("job submit", have.status());
    if (!have.ok()) {
      auto up = head.call<cluster::Reply>(cluster::PackageUpload{pkg->hash, {pkg->bytes}});
      if (!up.ok()) return fail("job submit", up.status());
    }
    std::fprintf(stderr, "weft: working directory %s: %zu files, %zu bytes%s (package %s)\n",
                 a.get("working-dir", "").c_str(), pkg->files, pkg->bytes.size(), have.ok() ? ", already uploaded" : "",
                 pkg->hash.substr(0, 12).c_str());
    if (pkg->skipped > 0) std::fprintf(stderr, "weft: left out %zu links and special files\n", pkg->skipped);
    submit.package = pkg->hash;
  }
  auto job = head.call<cluster::JobSubmitted>(submit);
  if (!job.ok()) return fail("job submit", job.status());
  std::fprintf(stderr, "weft: job %s submitted to %s\n", job->job_id.c_str(), head.address().c_str());
  if (a.has("no-wait")) {
    std::printf("%s\n", job->job_id.c_str());
    return 0;
  }
  auto info = print_logs(head, job->job_id, true);
  if (!info.ok()) return fail("job submit", info.status());
  std::fprintf(stderr, "weft: job %s %s%s\n", job->job_id.c_str(),
               std::string(to_string(static_cast<JobState>(info->state))).c_str(),
               info->message.empty() ? "" : (": " + info->message).c_str());
  return static_cast<JobState>(info->state) == JobState::kSucceeded ? 0 : 1;
}

}  // namespace

int status_command(int argc, char** argv) {
  auto a = Args::parse(argc, argv, {"address", "credential"}, {"help"});
  if (!a.ok() || a->has("help")) {
    std::fprintf(a.ok() ? stdout : stderr,
                 "usage: weft status [--address HOST:PORT] [--credential PATH]\n"
                 "  the cluster's nodes (resources, worker processes, drivers, jobs) and jobs\n");
    return a.ok() ? 0 : 2;
  }
  auto head = connect(*a);
  if (!head.ok()) return fail("status", head.status());
  auto s = head->call<cluster::StatusReply>(cluster::StatusRequest{});
  if (!s.ok()) return fail("status", s.status());
  size_t alive = 0;
  for (const auto& n : s->nodes) alive += n.alive;
  std::printf("head %s: %zu nodes alive, %zu dead\n", s->head_address.c_str(), alive, s->nodes.size() - alive);
  const int64_t now = cluster::now_ms();
  for (const auto& n : s->nodes) {
    std::string resources;
    for (const auto& [name, qty] : n.resources) {
      auto used = n.used.find(name);
      resources += fmt::format("{}{} {:g}/{:g}", resources.empty() ? "" : ", ", name,
                               used == n.used.end() ? 0.0 : used->second, qty);
    }
    std::printf(
        "  %s  %-5s  %s (pid %lld)  %s used  workers %u  drivers %u  jobs %u  objects %llu (%.1f of %.0f MiB)"
        "  last heard %.1f s ago\n",
        n.node_id.c_str(), n.alive ? "alive" : "DEAD", n.hostname.c_str(), static_cast<long long>(n.pid),
        resources.c_str(), n.workers, n.drivers, n.jobs, static_cast<unsigned long long>(n.objects),
        static_cast<double>(n.object_bytes) / (1 << 20), static_cast<double>(n.store_bytes) / (1 << 20),
        static_cast<double>(now - n.last_seen_ms) / 1000.0);
  }
  std::map<std::string, int> by_state;
  for (const auto& j : s->jobs) ++by_state[std::string(to_string(static_cast<JobState>(j.state)))];
  std::printf("jobs: %zu", s->jobs.size());
  for (const auto& [state, count] : by_state) std::printf(", %d %s", count, state.c_str());
  std::printf("\n");
  return 0;
}

int job_command(int argc, char** argv) {
  auto a = Args::parse(argc, argv, {"address", "credential", "working-dir", "env", "resources"},
                       {"no-wait", "follow", "help"});
  if (!a.ok() || a->has("help") || a->positional().empty()) {
    if (!a.ok()) std::fprintf(stderr, "weft job: %s\n", a.status().message().c_str());
    std::fprintf(a.ok() && a->has("help") ? stdout : stderr, "%s", kJobHelp);
    return a.ok() && a->has("help") ? 0 : 2;
  }
  auto head = connect(*a);
  if (!head.ok()) return fail("job", head.status());
  const std::string sub = a->positional()[0];
  if (sub == "submit") return submit(*a, *head);
  if (sub == "list") {
    auto s = head->call<cluster::StatusReply>(cluster::StatusRequest{});
    if (!s.ok()) return fail("job list", s.status());
    for (const auto& j : s->jobs) print_job(j);
    return 0;
  }
  if (a->positional().size() != 2) {
    std::fprintf(stderr, "weft job %s: give one job id\n%s", sub.c_str(), kJobHelp);
    return 2;
  }
  const std::string id = a->positional()[1];
  if (sub == "status") {
    auto info = head->call<cluster::JobInfoReply>(cluster::JobQuery{id});
    if (!info.ok()) return fail("job status", info.status());
    const JobInfo& j = info->job;
    print_job(j);
    if (!j.resources.empty()) {
      std::string r;
      for (const auto& [name, qty] : j.resources) r += fmt::format("{}{} {:g}", r.empty() ? "" : ", ", name, qty);
      std::printf("  resources %s\n", r.c_str());
    }
    std::printf("  node %s\n  submitted %s  started %s  ended %s\n", j.node_id.empty() ? "-" : j.node_id.c_str(),
                when(j.submitted_ms).c_str(), when(j.started_ms).c_str(), when(j.ended_ms).c_str());
    if (!j.message.empty()) std::printf("  %s\n", j.message.c_str());
    return 0;
  }
  if (sub == "logs") {
    auto info = print_logs(*head, id, a->has("follow"));
    return info.ok() ? 0 : fail("job logs", info.status());
  }
  if (sub == "stop") {
    auto r = head->call<cluster::Reply>(cluster::JobStop{id});
    if (!r.ok()) return fail("job stop", r.status());
    std::printf("%s\n", r->message.empty() ? ("job " + id + " is stopping").c_str() : r->message.c_str());
    return 0;
  }
  std::fprintf(stderr, "weft job: unknown subcommand '%s'\n%s", sub.c_str(), kJobHelp);
  return 2;
}

}  // namespace weft::cli
