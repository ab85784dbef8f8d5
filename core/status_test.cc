#include "weft/status.h"

#include <gtest/gtest.h>

namespace weft {
namespace {

Result<int> parse_positive(int x) {
  if (x <= 0) return Status::invalid_argument("not positive: " + std::to_string(x));
  return x;
}

Status doubled(int x, int* out) {
  WEFT_ASSIGN_OR_RETURN(int v, parse_positive(x));
  *out = 2 * v;
  return Status::ok();
}

TEST(Status, OkIsCheapAndEmpty) {
  Status s;
  EXPECT_TRUE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.to_string(), "OK");
}

TEST(Status, CarriesCodeAndMessage) {
  Status s = Status::not_found("no such actor");
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.to_string(), "not found: no such actor");
  EXPECT_EQ(s, Status::not_found("no such actor"));
  EXPECT_FALSE(s == Status::not_found("other"));
}

TEST(Result, ValueOrStatusAndMacros) {
  int out = 0;
  EXPECT_TRUE(doubled(21, &out).is_ok());
  EXPECT_EQ(out, 42);
  Status bad = doubled(-1, &out);
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.message(), "not positive: -1");
  Result<int> r = parse_positive(5);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 5);
}

TEST(Result, OkStatusIsRejectedAsAnError) {
  Result<int> r = Status::ok();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace weft
