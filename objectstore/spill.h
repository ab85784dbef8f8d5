// Where the store writes primary copies it has to move out of memory, and reads them back from.
// SpillStorage is the seam; DirectorySpill keeps one file per object in a private directory,
// which it creates, and removes with its contents when destroyed. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "weft/ids.h"
#include "weft/status.h"

namespace weft::objectstore {

class SpillStorage {
 public:
  virtual ~SpillStorage() = default;
  virtual Status write(const ObjectId& id, const uint8_t* data, size_t size) = 0;
  virtual Status read(const ObjectId& id, uint8_t* data, size_t size) = 0;
  virtual void remove(const ObjectId& id) = 0;
};

class DirectorySpill final : public SpillStorage {
 public:
  // Makes a fresh directory inside `parent` (kIoError naming the path when it cannot).
  static Result<std::unique_ptr<DirectorySpill>> create(const std::string& parent);
  ~DirectorySpill() override;

  Status write(const ObjectId& id, const uint8_t* data, size_t size) override;
  Status read(const ObjectId& id, uint8_t* data, size_t size) override;
  void remove(const ObjectId& id) override;
  const std::string& dir() const { return dir_; }

 private:
  explicit DirectorySpill(std::string dir) : dir_(std::move(dir)) {}
  std::string path(const ObjectId& id) const { return dir_ + "/" + id.hex(); }
  std::string dir_;
};

}  // namespace weft::objectstore
