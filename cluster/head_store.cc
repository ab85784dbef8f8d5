#include "cluster/head_store.h"

#include <sqlite3.h>

#include <nlohmann/json.hpp>

namespace weft::cluster {
namespace {

using json = nlohmann::json;

// One prepared statement, finalized when it goes out of scope.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  void bind(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  int step() { return sqlite3_step(stmt_); }
  std::string text(int i) const {
    const auto* p = sqlite3_column_text(stmt_, i);
    return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(stmt_, i));
  }
  int64_t integer(int i) const { return sqlite3_column_int64(stmt_, i); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

// JSON text that never throws: bytes that are not UTF-8 (a job's argument may be anything) are
// replaced, not refused.
std::string to_text(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Status db_error(sqlite3* db, const std::string& what) {
  return Status::io_error("head database: " + what + ": " + sqlite3_errmsg(db));
}

}  // namespace

Result<std::unique_ptr<HeadStore>> HeadStore::open(const std::string& path) {
  std::unique_ptr<HeadStore> s(new HeadStore());
  s->path_ = path;
  if (sqlite3_open_v2(path.c_str(), &s->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    return Status::io_error("cannot open the head database " + path + ": " +
                            (s->db_ != nullptr ? sqlite3_errmsg(s->db_) : "out of memory"));
  }
  sqlite3_busy_timeout(s->db_, 5000);
  // WAL: a writer never blocks readers and a crash mid-write leaves the last committed state.
  WEFT_RETURN_IF_ERROR(s->exec("PRAGMA journal_mode=WAL"));
  WEFT_RETURN_IF_ERROR(s->exec("PRAGMA synchronous=NORMAL"));
  const Status schema = s->exec(
      "CREATE TABLE IF NOT EXISTS nodes (id TEXT PRIMARY KEY, hostname TEXT, pid INTEGER, alive INTEGER, "
      "resources TEXT, node_socket TEXT, last_seen_ms INTEGER);"
      "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, argv TEXT, env TEXT, package TEXT, node TEXT, "
      "state INTEGER, exit_code INTEGER, message TEXT, submitted_ms INTEGER, started_ms INTEGER, "
      "ended_ms INTEGER, stop_requested INTEGER, final_log_size INTEGER, resources TEXT);");
  if (!schema.is_ok()) {
    return Status::corruption("the head database " + path + " cannot be used: " + schema.message());
  }
  return s;
}

HeadStore::~HeadStore() { sqlite3_close(db_); }

Status HeadStore::exec(const std::string& sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    const std::string message = error != nullptr ? error : "unknown error";
    sqlite3_free(error);
    return Status::io_error("head database " + path_ + ": " + message);
  }
  return Status::ok();
}

Status HeadStore::put_node(const NodeInfo& n) {
  Statement st(db_,
               "INSERT OR REPLACE INTO nodes (id, hostname, pid, alive, resources, node_socket, last_seen_ms) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)");
  if (!st.ok()) return db_error(db_, "prepare");
  st.bind(1, n.node_id);
  st.bind(2, n.hostname);
  st.bind(3, n.pid);
  st.bind(4, static_cast<int64_t>(n.alive));
  st.bind(5, to_text(json(n.resources)));
  st.bind(6, n.node_socket);
  st.bind(7, n.last_seen_ms);
  if (st.step() != SQLITE_DONE) return db_error(db_, "write node " + n.node_id);
  return Status::ok();
}

Status HeadStore::put_job(const JobRecord& j) {
  Statement st(db_,
               "INSERT OR REPLACE INTO jobs (id, argv, env, package, node, state, exit_code, message, submitted_ms, "
               "started_ms, ended_ms, stop_requested, final_log_size, resources) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
               "?, ?, ?, ?)");
  if (!st.ok()) return db_error(db_, "prepare");
  st.bind(1, j.info.job_id);
  st.bind(2, to_text(json(j.info.argv)));
  st.bind(3, to_text(json(j.env)));
  st.bind(4, j.package);
  st.bind(5, j.info.node_id);
  st.bind(6, static_cast<int64_t>(j.info.state));
  st.bind(7, static_cast<int64_t>(j.info.exit_code));
  st.bind(8, j.info.message);
  st.bind(9, j.info.submitted_ms);
  st.bind(10, j.info.started_ms);
  st.bind(11, j.info.ended_ms);
  st.bind(12, static_cast<int64_t>(j.stop_requested));
  st.bind(13, static_cast<int64_t>(j.final_log_size));
  st.bind(14, to_text(json(j.info.resources)));
  if (st.step() != SQLITE_DONE) return db_error(db_, "write job " + j.info.job_id);
  return Status::ok();
}

Result<std::vector<NodeInfo>> HeadStore::nodes() const {
  Statement st(db_, "SELECT id, hostname, pid, alive, resources, node_socket, last_seen_ms FROM nodes ORDER BY rowid");
  if (!st.ok()) return db_error(db_, "prepare");
  std::vector<NodeInfo> out;
  try {
    for (int rc = st.step(); rc != SQLITE_DONE; rc = st.step()) {
      if (rc != SQLITE_ROW) return db_error(db_, "read nodes");
      NodeInfo n;
      n.node_id = st.text(0);
      n.hostname = st.text(1);
      n.pid = st.integer(2);
      n.alive = st.integer(3) != 0;
      n.resources = json::parse(st.text(4)).get<std::map<std::string, double>>();
      n.node_socket = st.text(5);
      n.last_seen_ms = st.integer(6);
      out.push_back(std::move(n));
    }
  } catch (const json::exception& e) {
    return Status::corruption("head database " + path_ + ": a node's resources are malformed: " + e.what());
  }
  return out;
}

Result<std::vector<JobRecord>> HeadStore::jobs() const {
  Statement st(db_,
               "SELECT id, argv, env, package, node, state, exit_code, message, submitted_ms, started_ms, ended_ms, "
               "stop_requested, final_log_size, resources FROM jobs ORDER BY submitted_ms, rowid");
  if (!st.ok()) return db_error(db_, "prepare");
  std::vector<JobRecord> out;
  try {
    for (int rc = st.step(); rc != SQLITE_DONE; rc = st.step()) {
      if (rc != SQLITE_ROW) return db_error(db_, "read jobs");
      JobRecord j;
      j.info.job_id = st.text(0);
      j.info.argv = json::parse(st.text(1)).get<std::vector<std::string>>();
      j.env = json::parse(st.text(2)).get<std::map<std::string, std::string>>();
      j.package = st.text(3);
      j.info.node_id = st.text(4);
      const int64_t state = st.integer(5);
      if (state < 0 || state > static_cast<int64_t>(JobState::kStopped)) {
        return Status::corruption("head database " + path_ + ": job " + j.info.job_id + " has state " +
                                  std::to_string(state));
      }
      j.info.state = static_cast<uint8_t>(state);
      j.info.exit_code = static_cast<int32_t>(st.integer(6));
      j.info.message = st.text(7);
      j.info.submitted_ms = st.integer(8);
      j.info.started_ms = st.integer(9);
      j.info.ended_ms = st.integer(10);
      j.stop_requested = st.integer(11) != 0;
      j.final_log_size = static_cast<uint64_t>(st.integer(12));
      j.info.resources = json::parse(st.text(13)).get<std::map<std::string, double>>();
      out.push_back(std::move(j));
    }
  } catch (const json::exception& e) {
    return Status::corruption("head database " + path_ + ": a job's fields are malformed: " + e.what());
  }
  return out;
}

}  // namespace weft::cluster
