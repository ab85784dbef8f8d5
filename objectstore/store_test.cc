#include "objectstore/store.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <string>

namespace weft::objectstore {
namespace {

// Spill storage in memory, counting what passes through it.
class MemorySpill final : public SpillStorage {
 public:
  Status write(const ObjectId& id, const uint8_t* data, size_t size) override {
    files[id.hex()] = std::string(reinterpret_cast<const char*>(data), size);
    return Status::ok();
  }
  Status read(const ObjectId& id, uint8_t* data, size_t size) override {
    auto it = files.find(id.hex());
    if (it == files.end() || it->second.size() != size) return Status::not_found("no spill file");
    std::memcpy(data, it->second.data(), size);
    return Status::ok();
  }
  void remove(const ObjectId& id) override { files.erase(id.hex()); }
  std::map<std::string, std::string> files;
};

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { make(1 << 20); }
  void make(size_t capacity) {
    auto arena = SharedArena::create(capacity, "store-test");
    ASSERT_TRUE(arena.ok()) << arena.status();
    auto spill = std::make_unique<MemorySpill>();
    spill_ = spill.get();
    store_ = std::make_unique<Store>(std::move(*arena), std::move(spill));
  }
  // Creates and seals an object of `size` bytes filled with `fill`.
  ObjectId put(size_t size, uint8_t fill, bool primary = true, ClientId client = 1) {
    const ObjectId id = ObjectId::next();
    auto loc = store_->create(client, id, size, {.primary = primary});
    EXPECT_TRUE(loc.ok()) << loc.status();
    if (!loc.ok()) return id;
    std::memset(store_->arena().base() + loc->offset, fill, size);
    EXPECT_TRUE(store_->seal(client, id).is_ok());
    return id;
  }
  bool holds(const ObjectLocation& loc, uint8_t fill) {
    const uint8_t* p = store_->arena().base() + loc.offset;
    for (uint64_t i = 0; i < loc.size; ++i) {
      if (p[i] != fill) return false;
    }
    return true;
  }
  std::unique_ptr<Store> store_;
  MemorySpill* spill_ = nullptr;
};

TEST_F(StoreTest, LifecycleAndPins) {
  const ObjectId id = ObjectId::next();
  auto loc = store_->create(1, id, 1000);
  ASSERT_TRUE(loc.ok());
  EXPECT_EQ(store_->get(2, id).status().code(), StatusCode::kUnavailable);  // not sealed
  EXPECT_EQ(store_->seal(2, id).code(), StatusCode::kFailedPrecondition);  // not the creator
  ASSERT_TRUE(store_->seal(1, id).is_ok());
  EXPECT_EQ(store_->seal(1, id).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->create(1, id, 10).status().code(), StatusCode::kAlreadyExists);
  auto a = store_->get(2, id), b = store_->get(3, id);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->offset, loc->offset);  // readers see the creator's bytes in place
  EXPECT_EQ(store_->stats().pins, 2u);
  ASSERT_TRUE(store_->remove(id).is_ok());   // pinned: deleted when the last pin drops
  EXPECT_EQ(store_->get(4, id).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->release(2, id).is_ok());
  EXPECT_TRUE(store_->contains(id));
  EXPECT_EQ(store_->release(2, id).code(), StatusCode::kFailedPrecondition);  // no pin left for 2
  ASSERT_TRUE(store_->release(3, id).is_ok());
  EXPECT_FALSE(store_->contains(id));
  EXPECT_EQ(store_->stats().used, 0u);
  EXPECT_EQ(store_->create(1, ObjectId::next(), 0).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(StoreTest, DisconnectDropsPinsAndUnsealedObjects) {
  const ObjectId sealed = put(100, 1);
  const ObjectId unsealed = ObjectId::next();
  ASSERT_TRUE(store_->create(7, unsealed, 100).ok());
  ASSERT_TRUE(store_->get(7, sealed).ok());
  ASSERT_TRUE(store_->get(7, sealed).ok());
  store_->disconnect(7);
  EXPECT_EQ(store_->stats().pins, 0u);
  EXPECT_FALSE(store_->contains(unsealed));
  EXPECT_TRUE(store_->contains(sealed));
}

TEST_F(StoreTest, ACreatorThatGoesTakesItsObjectsWithItOnceReadersAreDone) {
  const ObjectId read = put(100, 1, true, 3), unread = put(100, 1, true, 3);
  ASSERT_TRUE(store_->get(8, read).ok());
  store_->disconnect(3);
  EXPECT_FALSE(store_->contains(unread));
  EXPECT_TRUE(store_->contains(read));  // its reader still maps it
  ASSERT_TRUE(store_->release(8, read).is_ok());
  EXPECT_FALSE(store_->contains(read));
  EXPECT_EQ(store_->stats().used, 0u);
}

TEST_F(StoreTest, TransientObjectsGoWithTheirReaderOrTheirCreator) {
  const ObjectId handed = ObjectId::next(), orphan = ObjectId::next();
  ASSERT_TRUE(store_->create(1, handed, 100, {.transient = true}).ok());
  ASSERT_TRUE(store_->seal(1, handed).is_ok());
  ASSERT_TRUE(store_->create(1, orphan, 100, {.transient = true}).ok());
  ASSERT_TRUE(store_->seal(1, orphan).is_ok());
  ASSERT_TRUE(store_->get(2, handed).ok());
  ASSERT_TRUE(store_->release(2, handed).is_ok());
  EXPECT_FALSE(store_->contains(handed));  // its one reader is done with it
  EXPECT_TRUE(store_->contains(orphan));
  store_->disconnect(1);  // the creator goes and nobody ever read it
  EXPECT_FALSE(store_->contains(orphan));
}

TEST_F(StoreTest, AHoldKeepsAnObjectForItsReaderAfterTheSenderLetsGo) {
  const ObjectId id = ObjectId::next();
  ASSERT_TRUE(store_->create(1, id, 100, {.transient = true}).ok());
  ASSERT_TRUE(store_->seal(1, id).is_ok());
  ASSERT_TRUE(store_->get(1, id).ok());  // the sender reads it
  auto hold = store_->hold(1, id);       // and hands its id on
  ASSERT_TRUE(hold.ok());
  ASSERT_TRUE(store_->release(1, id).is_ok());
  ASSERT_TRUE(store_->remove(id).is_ok());  // even removed by its owner
  EXPECT_TRUE(store_->contains(id));  // the hold keeps it
  EXPECT_EQ(store_->get(5, id).status().code(), StatusCode::kNotFound);  // for its reader only
  EXPECT_EQ(store_->get(2, id, *hold + 1).status().code(), StatusCode::kNotFound);  // with its own token
  ASSERT_TRUE(store_->get(2, id, *hold).ok());
  EXPECT_EQ(store_->stats().pins, 1u);  // the hold became the reader's pin
  EXPECT_TRUE(store_->unhold(1, id, *hold).is_ok());  // taken over already: nothing to drop
  EXPECT_EQ(store_->stats().pins, 1u);
  ASSERT_TRUE(store_->release(2, id).is_ok());
  EXPECT_FALSE(store_->contains(id));  // transient: gone with its last reader
  // A hold whose reader never comes goes with its sender.
  const ObjectId lost = ObjectId::next();
  ASSERT_TRUE(store_->create(3, lost, 100).ok());
  ASSERT_TRUE(store_->seal(3, lost).is_ok());
  ASSERT_TRUE(store_->hold(4, lost).ok());
  EXPECT_EQ(store_->stats().pins, 1u);
  store_->disconnect(4);
  EXPECT_EQ(store_->stats().pins, 0u);
}

TEST_F(StoreTest, ASenderDropsTheHoldOfAReaderThatNeverCame) {
  const ObjectId id = ObjectId::next();
  ASSERT_TRUE(store_->create(1, id, 100, {.transient = true}).ok());
  ASSERT_TRUE(store_->seal(1, id).is_ok());
  auto first = store_->hold(1, id);  // two messages carry it
  auto second = store_->hold(1, id);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE(*first, *second);
  EXPECT_EQ(store_->unhold(2, id, *first).code(), StatusCode::kFailedPrecondition);  // not 2's to drop
  ASSERT_TRUE(store_->get(3, id, *second).ok());        // the second's reader took its hold over
  ASSERT_TRUE(store_->unhold(1, id, *first).is_ok());   // the first's reader died before reading
  ASSERT_TRUE(store_->unhold(1, id, *second).is_ok());  // a no-op: it is the reader's pin now
  EXPECT_EQ(store_->stats().pins, 1u);
  ASSERT_TRUE(store_->release(3, id).is_ok());
  EXPECT_FALSE(store_->contains(id));  // transient: gone with its last pin
}

TEST_F(StoreTest, SecondaryCopiesAreEvictedFirstThenPrimariesSpillAndRestore) {
  make(1 << 20);
  const ObjectId secondary = put(300 << 10, 0xAA, /*primary=*/false);
  const ObjectId primary = put(300 << 10, 0xBB);
  const ObjectId third = put(300 << 10, 0xCC);
  // A fourth does not fit: the secondary copy goes first.
  const ObjectId fourth = put(300 << 10, 0xDD);
  EXPECT_FALSE(store_->contains(secondary));
  EXPECT_EQ(store_->stats().evictions, 1u);
  EXPECT_EQ(store_->stats().spills, 0u);
  // A fifth: the least recently used primary (`primary`) is spilled, not lost.
  const ObjectId fifth = put(300 << 10, 0xEE);
  EXPECT_EQ(store_->stats().spills, 1u);
  EXPECT_EQ(spill_->files.count(primary.hex()), 1u);
  // Reading it back restores it (spilling another) with every byte intact.
  auto loc = store_->get(2, primary);
  ASSERT_TRUE(loc.ok()) << loc.status();
  EXPECT_TRUE(holds(*loc, 0xBB));
  EXPECT_EQ(store_->stats().restores, 1u);
  EXPECT_EQ(spill_->files.count(primary.hex()), 0u);
  for (const auto& [id, fill] : {std::pair{third, 0xCC}, {fourth, 0xDD}, {fifth, 0xEE}}) {
    auto l = store_->get(3, id);
    ASSERT_TRUE(l.ok()) << l.status();
    EXPECT_TRUE(holds(*l, static_cast<uint8_t>(fill)));
    ASSERT_TRUE(store_->release(3, id).is_ok());
  }
}

TEST_F(StoreTest, PinnedObjectsNeverMoveAndAFullStoreSaysSo) {
  make(1 << 20);
  const ObjectId a = put(400 << 10, 1), b = put(400 << 10, 2);
  ASSERT_TRUE(store_->get(9, a).ok());
  ASSERT_TRUE(store_->get(9, b).ok());
  auto c = store_->create(1, ObjectId::next(), 400 << 10);
  ASSERT_EQ(c.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(c.status().message().find("store full"), std::string::npos) << c.status();
  EXPECT_NE(c.status().message().find("pinned"), std::string::npos);
  EXPECT_EQ(store_->stats().spills, 0u);
  store_->disconnect(9);  // the reader goes: now the store can make room
  EXPECT_TRUE(store_->create(1, ObjectId::next(), 400 << 10).ok());
}

TEST(StoreOnDisk, SpillsToARealDirectoryAndCleansUp) {
  auto store = Store::create({.capacity = 1 << 20, .spill_dir = ::testing::TempDir()});
  ASSERT_TRUE(store.ok()) << store.status();
  std::vector<ObjectId> ids;
  for (int i = 0; i < 8; ++i) {  // 8 x 256 KiB through a 1 MiB store
    ids.push_back(ObjectId::next());
    auto loc = (*store)->create(1, ids.back(), 256 << 10);
    ASSERT_TRUE(loc.ok()) << loc.status();
    std::memset((*store)->arena().base() + loc->offset, i + 1, 256 << 10);
    ASSERT_TRUE((*store)->seal(1, ids.back()).is_ok());
  }
  EXPECT_GE((*store)->stats().spills, 4u);
  for (int i = 0; i < 8; ++i) {
    auto loc = (*store)->get(2, ids[i]);
    ASSERT_TRUE(loc.ok()) << loc.status();
    const uint8_t* p = (*store)->arena().base() + loc->offset;
    for (size_t k = 0; k < (256 << 10); k += 4093) ASSERT_EQ(p[k], i + 1);
    ASSERT_TRUE((*store)->release(2, ids[i]).is_ok());
  }
}

TEST(SharedArena, RefusesImpossibleSizes) {
  EXPECT_EQ(SharedArena::create(0, "x").status().code(), StatusCode::kInvalidArgument);
  auto huge = SharedArena::create(size_t{1} << 50, "x");
  EXPECT_EQ(huge.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(huge.status().message().find("cannot be had"), std::string::npos);
}

}  // namespace
}  // namespace weft::objectstore
