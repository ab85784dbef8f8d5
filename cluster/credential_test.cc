#include "cluster/credential.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

namespace weft::cluster {
namespace {

std::string temp_dir() {
  std::string t = (std::filesystem::temp_directory_path() / "weft-cred-XXXXXX").string();
  return mkdtemp(t.data());
}

TEST(Credential, SavedFileIsTheOwnersAloneAndLoadsBack) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/sub/cluster.key";
  auto c = Credential::generate();
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->save(path).is_ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto back = Credential::load(path);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->server_public, c->server_public);
  EXPECT_EQ(back->member_secret, c->member_secret);
  EXPECT_NE(c->server_public, c->member_public);
  std::filesystem::remove_all(dir);
}

TEST(Credential, RefusesFilesOthersCanReadAndMalformedOnes) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/cluster.key";
  ASSERT_TRUE(Credential::generate()->save(path).is_ok());
  ::chmod(path.c_str(), 0644);
  auto open = Credential::load(path);
  ASSERT_FALSE(open.ok());
  EXPECT_EQ(open.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(open.status().message().find("chmod 600"), std::string::npos);

  std::ofstream(path) << "server_public abc\n";
  ::chmod(path.c_str(), 0600);
  auto bad = Credential::load(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("40 Z85"), std::string::npos);

  auto missing = Credential::load(dir + "/none.key");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace weft::cluster
