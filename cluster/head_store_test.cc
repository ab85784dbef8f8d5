#include "cluster/head_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace weft::cluster {
namespace {
namespace fs = std::filesystem;

TEST(HeadStore, NodesAndJobsSurviveReopening) {
  std::string dir = (fs::temp_directory_path() / "weft-head-XXXXXX").string();
  dir = mkdtemp(dir.data());
  const std::string path = dir + "/head.db";
  {
    auto store = HeadStore::open(path);
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    NodeInfo n{.node_id = "node-1", .hostname = "h", .pid = 7, .alive = true, .resources = {{"CPU", 2}, {"GPU", 1}}};
    ASSERT_TRUE((*store)->put_node(n).is_ok());
    JobRecord j;
    j.info = {.job_id = "job-1",
              .argv = {"python3", "x.py"},
              .node_id = "node-1",
              .state = static_cast<uint8_t>(JobState::kRunning),
              .submitted_ms = 5};
    j.env = {{"A", "b"}};
    j.info.resources = {{"GPU", 1}};
    j.package = std::string(64, 'a');
    ASSERT_TRUE((*store)->put_job(j).is_ok());
    j.info.state = static_cast<uint8_t>(JobState::kSucceeded);  // an update replaces the row
    j.final_log_size = 99;
    ASSERT_TRUE((*store)->put_job(j).is_ok());
  }
  auto store = HeadStore::open(path);
  ASSERT_TRUE(store.ok());
  auto nodes = (*store)->nodes();
  ASSERT_TRUE(nodes.ok());
  ASSERT_EQ(nodes->size(), 1u);
  EXPECT_EQ((*nodes)[0].resources.at("GPU"), 1.0);
  EXPECT_TRUE((*nodes)[0].alive);
  auto jobs = (*store)->jobs();
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ((*jobs)[0].info.argv, (std::vector<std::string>{"python3", "x.py"}));
  EXPECT_EQ((*jobs)[0].info.state, static_cast<uint8_t>(JobState::kSucceeded));
  EXPECT_EQ((*jobs)[0].env.at("A"), "b");
  EXPECT_EQ((*jobs)[0].final_log_size, 99u);
  EXPECT_EQ((*jobs)[0].info.resources.at("GPU"), 1.0);
  fs::remove_all(dir);
}

TEST(HeadStore, AFileThatIsNotADatabaseIsAnError) {
  std::string dir = (fs::temp_directory_path() / "weft-head-XXXXXX").string();
  dir = mkdtemp(dir.data());
  std::ofstream(dir + "/head.db") << std::string(8192, 'z');
  auto store = HeadStore::open(dir + "/head.db");
  EXPECT_FALSE(store.ok());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace weft::cluster
