// A job's working directory as one content-hashed package: uploaded to the head once (the hash
// names it), fetched by the node that runs the job, unpacked into a directory of the job's own.
//
//   WEFT_ASSIGN_OR_RETURN(Package p, pack_directory("./my_job", kMaxPackageBytes));
//   ... upload p.bytes under p.hash; on the node:
//   WEFT_RETURN_IF_ERROR(unpack_package(bytes, "/run/user/1000/weft/node-ab12/jobs/job-1"));
//
// The package is a MessagePack array of [path, mode, contents] for each regular file, in path
// order (so one directory always packs to the same bytes and hash); directories come with the
// files in them, symbolic links and special files are left out. Its hash is BLAKE2b-256
// (libsodium) of those bytes, in hex.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "weft/status.h"

namespace weft::cluster {

// The largest working directory a job may carry: stated before anything is read or sent.
inline constexpr uint64_t kMaxPackageBytes = 256ull << 20;

struct Package {
  std::string hash;
  std::string bytes;
  size_t files = 0, skipped = 0;  // regular files packed; links and special files left out
};

// kResourceExhausted when the files' sizes add up to more than `limit` (checked before reading
// any of them), kNotFound / kIoError for a directory that cannot be read.
Result<Package> pack_directory(const std::string& dir, uint64_t limit);

// Writes the package's files under `dest` (created). A package that is not one, or names a path
// that would leave `dest` (absolute, "..", empty parts), is kCorruption and writes nothing.
Status unpack_package(std::string_view bytes, const std::string& dest);

// BLAKE2b-256 of `bytes`, 64 hex digits.
std::string content_hash(std::string_view bytes);
bool is_content_hash(std::string_view s);

}  // namespace weft::cluster
