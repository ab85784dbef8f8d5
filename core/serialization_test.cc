#include "weft/serialization.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace weft {
namespace {

struct Point {
  double x = 0, y = 0;
  std::string label;
  MSGPACK_DEFINE(x, y, label)
  friend bool operator==(const Point&, const Point&) = default;
};
struct Opaque {
  int* p;
};

static_assert(Serializable<int>);
static_assert(Serializable<std::string>);
static_assert(Serializable<std::vector<std::map<std::string, double>>>);
static_assert(Serializable<std::tuple<int, std::optional<Point>>>);
static_assert(Serializable<Point>);
static_assert(!Serializable<Opaque>);
static_assert(!Serializable<std::vector<Opaque>>);
static_assert(!Serializable<int*>);

TEST(Serialization, RoundTripsNestedValues) {
  std::map<std::string, std::vector<Point>> v{{"a", {{1, 2, "p"}, {3, 4, "q"}}}, {"b", {}}};
  Result<decltype(v)> back = unpack<decltype(v)>(pack(v));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, v);
}

TEST(Serialization, MalformedBytesGiveCorruption) {
  Result<std::vector<int>> r = unpack<std::vector<int>>(std::string("\xdd\xff\xff\xff\xff", 5));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
}

TEST(Serialization, TypeMismatchGivesCorruption) {
  Result<int> r = unpack<int>(pack(std::string("not an int")));
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace weft
