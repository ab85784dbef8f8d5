#include "cluster/package.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <msgpack.hpp>
#include <sstream>

namespace weft::cluster {
namespace {
namespace fs = std::filesystem;

std::string temp_dir() {
  std::string t = (fs::temp_directory_path() / "weft-pkg-XXXXXX").string();
  return mkdtemp(t.data());
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Package, RoundTripsFilesDirectoriesAndModes) {
  const std::string src = temp_dir(), dst = temp_dir();
  fs::create_directories(src + "/a/b");
  std::ofstream(src + "/run.sh") << "#!/bin/sh\necho hi\n";
  ::chmod((src + "/run.sh").c_str(), 0755);
  std::ofstream(src + "/a/b/data.bin", std::ios::binary) << std::string("\0\1\2binary", 9);
  fs::create_symlink("/etc/passwd", src + "/link");  // left out
  auto p = pack_directory(src, kMaxPackageBytes);
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(p->files, 2u);
  EXPECT_EQ(p->skipped, 1u);
  EXPECT_TRUE(is_content_hash(p->hash));
  EXPECT_EQ(p->hash, content_hash(p->bytes));
  // The same directory packs to the same bytes.
  EXPECT_EQ(pack_directory(src, kMaxPackageBytes)->hash, p->hash);

  ASSERT_TRUE(unpack_package(p->bytes, dst + "/job").is_ok());
  EXPECT_EQ(read(dst + "/job/run.sh"), "#!/bin/sh\necho hi\n");
  EXPECT_EQ(read(dst + "/job/a/b/data.bin"), std::string("\0\1\2binary", 9));
  EXPECT_TRUE((fs::status(dst + "/job/run.sh").permissions() & fs::perms::owner_exec) != fs::perms::none);
  EXPECT_FALSE(fs::exists(dst + "/job/link"));
  fs::remove_all(src);
  fs::remove_all(dst);
}

TEST(Package, TooLargeIsRefusedUpFrontWithTheSizeAndLimit) {
  const std::string src = temp_dir();
  std::ofstream(src + "/big") << std::string(3 << 20, 'x');
  auto p = pack_directory(src, 2 << 20);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(p.status().message().find("3 MiB"), std::string::npos) << p.status().message();
  EXPECT_NE(p.status().message().find("at most 2 MiB"), std::string::npos);
  EXPECT_FALSE(pack_directory(src + "/missing", kMaxPackageBytes).ok());
  fs::remove_all(src);
}

std::string package_of(const std::string& path) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(1);
  pk.pack_array(3);
  pk.pack(path);
  pk.pack(0644u);
  pk.pack_bin(1);
  pk.pack_bin_body("x", 1);
  return std::string(buf.data(), buf.size());
}

TEST(Package, PathsThatWouldLeaveTheDirectoryAndGarbageAreRefused) {
  const std::string dst = temp_dir();
  for (const char* path : {"../escape", "/etc/evil", "a/../../b", "a//b", "", "./x"}) {
    const Status s = unpack_package(package_of(path), dst + "/job");
    EXPECT_EQ(s.code(), StatusCode::kCorruption) << path;
  }
  EXPECT_FALSE(fs::exists(dst + "/escape"));
  EXPECT_EQ(unpack_package("not msgpack at all", dst + "/job").code(), StatusCode::kCorruption);
  EXPECT_TRUE(unpack_package(package_of("ok/file"), dst + "/job").is_ok());
  EXPECT_EQ(read(dst + "/job/ok/file"), "x");
  fs::remove_all(dst);
}

}  // namespace
}  // namespace weft::cluster
