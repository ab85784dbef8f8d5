// A fixture that runs each test against a fresh embedded runtime.
#pragma once

#include <gtest/gtest.h>

#include "weft/weft.h"

namespace weft::testing {

template <int kWorkers>
class RuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(weft::init({.num_workers = kWorkers}).is_ok()); }
  void TearDown() override {
    if (weft::is_initialized()) {
      EXPECT_TRUE(weft::shutdown().is_ok());
    }
  }
};

}  // namespace weft::testing
