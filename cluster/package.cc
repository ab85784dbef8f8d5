#include "cluster/package.h"

#include <sodium.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <msgpack.hpp>
#include <sstream>
#include <vector>

namespace weft::cluster {
namespace fs = std::filesystem;
namespace {

struct Entry {
  std::string path;
  uint32_t mode = 0;
  msgpack::type::raw_ref contents;
};

bool safe_relative(std::string_view path) {
  if (path.empty() || path.front() == '/' || path.size() > 4096) return false;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t end = std::min(path.find('/', start), path.size());
    const std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == ".." || part.find('\0') != std::string_view::npos) return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

std::string content_hash(std::string_view bytes) {
  unsigned char digest[32];
  crypto_generichash(digest, sizeof digest, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), nullptr,
                     0);
  char hex[2 * sizeof digest + 1];
  return sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
}

bool is_content_hash(std::string_view s) {
  return s.size() == 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Result<Package> pack_directory(const std::string& dir, uint64_t limit) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::not_found("the working directory " + dir + " is not a directory");
  Package p;
  std::vector<std::pair<std::string, fs::path>> files;
  uint64_t total = 0;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::none, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const auto status = it->symlink_status(ec);
    if (ec) break;
    if (fs::is_directory(status)) continue;
    if (!fs::is_regular_file(status)) {
      ++p.skipped;
      continue;
    }
    total += it->file_size(ec);
    if (ec) break;
    files.emplace_back(fs::relative(it->path(), dir).generic_string(), it->path());
  }
  if (ec) return Status::io_error("cannot read the working directory " + dir + ": " + ec.message());
  if (total > limit) {
    return Status::resource_exhausted("the working directory " + dir + " holds " + std::to_string(total >> 20) +
                                      " MiB in " + std::to_string(files.size()) + " files; a job may carry at most " +
                                      std::to_string(limit >> 20) +
                                      " MiB (leave large data out, or put it in the object store)");
  }
  std::sort(files.begin(), files.end());
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(static_cast<uint32_t>(files.size()));
  for (const auto& [rel, path] : files) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream contents;
    contents << in.rdbuf();
    if (!in && !in.eof()) return Status::io_error("cannot read " + path.string());
    struct stat st {};
    ::stat(path.c_str(), &st);
    const std::string bytes = contents.str();
    pk.pack_array(3);
    pk.pack(rel);
    pk.pack(static_cast<uint32_t>(st.st_mode & 0777));
    pk.pack_bin(static_cast<uint32_t>(bytes.size()));
    pk.pack_bin_body(bytes.data(), static_cast<uint32_t>(bytes.size()));
  }
  p.bytes.assign(buf.data(), buf.size());
  p.hash = content_hash(p.bytes);
  p.files = files.size();
  return p;
}

Status unpack_package(std::string_view bytes, const std::string& dest) {
  std::vector<Entry> entries;
  msgpack::object_handle handle;
  try {
    handle = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object& o = handle.get();
    if (o.type != msgpack::type::ARRAY) throw msgpack::type_error();
    for (uint32_t i = 0; i < o.via.array.size; ++i) {
      const msgpack::object& e = o.via.array.ptr[i];
      if (e.type != msgpack::type::ARRAY || e.via.array.size != 3 || e.via.array.ptr[2].type != msgpack::type::BIN) {
        throw msgpack::type_error();
      }
      Entry entry{e.via.array.ptr[0].as<std::string>(),
                  e.via.array.ptr[1].as<uint32_t>(),
                  {e.via.array.ptr[2].via.bin.ptr, e.via.array.ptr[2].via.bin.size}};
      if (!safe_relative(entry.path)) {
        return Status::corruption("a job package names the path '" + entry.path + "', which would leave its directory");
      }
      entries.push_back(std::move(entry));
    }
  } catch (const std::exception&) {
    return Status::corruption("a job package is not a weft package");
  }
  std::error_code ec;
  fs::create_directories(dest, ec);
  if (ec) return Status::io_error("cannot create " + dest + ": " + ec.message());
  for (const Entry& e : entries) {
    const fs::path path = fs::path(dest) / e.path;
    fs::create_directories(path.parent_path(), ec);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(e.contents.ptr, e.contents.size);
    if (!out) return Status::io_error("cannot write " + path.string());
    out.close();
    ::chmod(path.c_str(), (e.mode & 0755) | 0600);
  }
  return Status::ok();
}

}  // namespace weft::cluster
