// The head's durable state: its nodes and jobs, in SQLite (write-ahead log), so that a head
// restarted after a crash or kill -9 loses no job and knows its nodes again.
//
//   WEFT_ASSIGN_OR_RETURN(auto store, HeadStore::open("/home/me/.weft/head/head.db"));
//   WEFT_RETURN_IF_ERROR(store->put_job(job));        // written before the submitter is answered
//
// The head keeps its working state in memory and writes each change through: every node
// registration and state change, every job's submission, placement and state change. Heartbeats
// are not written (a restarted head gives every node it knew a fresh timeout instead).
//
// Not thread-safe: the head's one thread owns it.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cluster/protocol.h"
#include "weft/status.h"

struct sqlite3;

namespace weft::cluster {

// A job as the head keeps it: what clients see (JobInfo) and what running it needs.
struct JobRecord {
  JobInfo info;
  std::map<std::string, std::string> env;
  std::string package;
  bool stop_requested = false;
  uint64_t final_log_size = 0;  // the output's length the node reported when the job ended
};

class HeadStore {
 public:
  // Opens (creating) the database at `path`; ":memory:" keeps it in memory. kCorruption when the
  // file is not a weft head database.
  static Result<std::unique_ptr<HeadStore>> open(const std::string& path);
  ~HeadStore();

  Status put_node(const NodeInfo& node);
  Status put_job(const JobRecord& job);
  Result<std::vector<NodeInfo>> nodes() const;
  Result<std::vector<JobRecord>> jobs() const;

 private:
  HeadStore() = default;
  Status exec(const std::string& sql);
  sqlite3* db_ = nullptr;
  std::string path_;
};

}  // namespace weft::cluster
